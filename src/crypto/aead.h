/*
 * crypto/aead — AES-256-GCM for cache entries at rest (part of the crypto
 * module, the only OpenSSL caller). Sealed layout: nonce (12 random bytes) ||
 * ciphertext || tag (16 bytes). The associated data binds a sealed body to
 * its cache key, so a body moved under another key fails to open.
 */
#ifndef GATE_CRYPTO_AEAD_H
#define GATE_CRYPTO_AEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CRY_AEAD_KEY_LEN 32
#define CRY_AEAD_NONCE_LEN 12
#define CRY_AEAD_TAG_LEN 16
#define CRY_AEAD_OVERHEAD (CRY_AEAD_NONCE_LEN + CRY_AEAD_TAG_LEN)

/* Seals in[0..len) into out (len + CRY_AEAD_OVERHEAD bytes). False on failure. */
bool cry_aead_seal(const uint8_t key[CRY_AEAD_KEY_LEN], const void *aad, size_t aad_len,
                   const void *in, size_t len, uint8_t *out);
/* Opens sealed[0..len) into out (len - CRY_AEAD_OVERHEAD bytes). False when the
 * input is too short or the tag does not verify (tampered, wrong key or aad). */
bool cry_aead_open(const uint8_t key[CRY_AEAD_KEY_LEN], const void *aad, size_t aad_len,
                   const uint8_t *sealed, size_t len, uint8_t *out);
/* Parses a 256-bit key written as 64 hex digits or as base64 (44 chars),
 * surrounding whitespace ignored. False when it is neither. */
bool cry_aead_parse_key(const char *text, size_t len, uint8_t key[CRY_AEAD_KEY_LEN]);

#endif
