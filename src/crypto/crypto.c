/*
 * crypto — thin wrappers over OpenSSL 3 so the rest of the code never
 * includes OpenSSL headers. One-shot functions: no state kept between calls.
 */
#include "crypto/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "util/util.h"

void cry_sha256(const void *data, size_t len, uint8_t out[CRY_SHA256_LEN])
{
    SHA256(data, len, out);
}

void cry_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                     uint8_t out[CRY_SHA256_LEN])
{
    unsigned int out_len = CRY_SHA256_LEN;
    unsigned char *r = HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &out_len);
    GATE_ASSERT(r != NULL && out_len == CRY_SHA256_LEN);
}

bool cry_random(void *out, size_t n)
{
    return RAND_bytes(out, (int)n) == 1;
}

void cry_hex(const uint8_t *in, size_t n, char *dst)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        dst[2 * i] = digits[in[i] >> 4];
        dst[2 * i + 1] = digits[in[i] & 0xf];
    }
    dst[2 * n] = '\0';
}

bool cry_mem_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

void cry_cleanse(void *p, size_t n)
{
    OPENSSL_cleanse(p, n);
}

const char *cry_version(void)
{
    return OpenSSL_version(OPENSSL_VERSION);
}
