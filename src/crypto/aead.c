/*
 * crypto/aead.c — AES-256-GCM seal/open through OpenSSL's EVP interface, and
 * key parsing. A fresh random nonce per seal: with 96-bit random nonces the
 * collision bound stays far away for the entry counts a cache sees.
 */
#include "crypto/aead.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

#include "util/util.h"

bool cry_aead_seal(const uint8_t key[CRY_AEAD_KEY_LEN], const void *aad, size_t aad_len,
                   const void *in, size_t len, uint8_t *out)
{
    if (len > INT32_MAX || aad_len > INT32_MAX)
        return false;
    uint8_t *nonce = out, *ct = out + CRY_AEAD_NONCE_LEN, *tag = ct + len;
    if (RAND_bytes(nonce, CRY_AEAD_NONCE_LEN) != 1)
        return false;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0;
    bool ok = ctx && EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce) == 1 &&
              EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aad_len) == 1 &&
              EVP_EncryptUpdate(ctx, ct, &n, in, (int)len) == 1 &&
              EVP_EncryptFinal_ex(ctx, ct + n, &n) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, CRY_AEAD_TAG_LEN, tag) == 1;
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}

bool cry_aead_open(const uint8_t key[CRY_AEAD_KEY_LEN], const void *aad, size_t aad_len,
                   const uint8_t *sealed, size_t len, uint8_t *out)
{
    if (len < CRY_AEAD_OVERHEAD || len > INT32_MAX || aad_len > INT32_MAX)
        return false;
    size_t ct_len = len - CRY_AEAD_OVERHEAD;
    const uint8_t *nonce = sealed, *ct = sealed + CRY_AEAD_NONCE_LEN, *tag = ct + ct_len;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0;
    uint8_t tag_copy[CRY_AEAD_TAG_LEN];
    memcpy(tag_copy, tag, sizeof(tag_copy));
    bool ok = ctx && EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce) == 1 &&
              EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aad_len) == 1 &&
              EVP_DecryptUpdate(ctx, out, &n, ct, (int)ct_len) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CRY_AEAD_TAG_LEN, tag_copy) == 1 &&
              EVP_DecryptFinal_ex(ctx, out + n, &n) == 1; /* verifies the tag */
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}

bool cry_aead_parse_key(const char *text, size_t len, uint8_t key[CRY_AEAD_KEY_LEN])
{
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' ' ||
                   text[len - 1] == '\t'))
        len--;
    while (len && (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r'))
        text++, len--;
    if (len == 2 * CRY_AEAD_KEY_LEN) {
        for (size_t i = 0; i < CRY_AEAD_KEY_LEN; i++) {
            int hi = str_hex_digit(text[2 * i]), lo = str_hex_digit(text[2 * i + 1]);
            if (hi < 0 || lo < 0)
                return false;
            key[i] = (uint8_t)(hi << 4 | lo);
        }
        return true;
    }
    if (len == 44 && text[43] == '=' && text[42] != '=') {
        uint8_t out[33];
        int n = EVP_DecodeBlock(out, (const unsigned char *)text, 44);
        if (n != 33) /* EVP_DecodeBlock counts the padding byte */
            return false;
        memcpy(key, out, CRY_AEAD_KEY_LEN);
        OPENSSL_cleanse(out, sizeof(out));
        return true;
    }
    return false;
}
