/*
 * crypto — the only module that calls OpenSSL: digests, HMAC, random bytes,
 * hex encoding. Functions never log their inputs (they may be secrets).
 */
#ifndef GATE_CRYPTO_H
#define GATE_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CRY_SHA256_LEN 32

void cry_sha256(const void *data, size_t len, uint8_t out[CRY_SHA256_LEN]);
void cry_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                     uint8_t out[CRY_SHA256_LEN]);
/* Fills out with n cryptographically random bytes; false on failure. */
bool cry_random(void *out, size_t n);
/* Lower-case hex of n bytes into dst (2n + 1 bytes, NUL-terminated). */
void cry_hex(const uint8_t *in, size_t n, char *dst);
/* Compares n bytes of a and b in constant time (CRYPTO_memcmp): the time taken
 * does not depend on where they differ. True when equal. */
bool cry_mem_equal(const void *a, const void *b, size_t n);
/* Overwrites n bytes at p with zeros in a way the compiler cannot drop
 * (OPENSSL_cleanse); for key material on the stack. */
void cry_cleanse(void *p, size_t n);
/* "OpenSSL 3.0.x ..." */
const char *cry_version(void);

#endif
