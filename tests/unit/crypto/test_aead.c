/*
 * Unit tests for crypto/aead: AES-256-GCM round trip, tamper detection
 * (every byte of a sealed body), binding to the associated data, fresh
 * nonces, and key parsing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "crypto/aead.h"
#include "crypto/crypto.h"

static const uint8_t key[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static void test_round_trip(void **state)
{
    const char msg[] = "{\"pets\":[1,2,3]}";
    uint8_t sealed[sizeof(msg) + CRY_AEAD_OVERHEAD];
    assert_true(cry_aead_seal(key, "k", 1, msg, sizeof(msg), sealed));
    /* The ciphertext does not contain the plaintext. */
    assert_null(memmem(sealed, sizeof(sealed), "pets", 4));
    char out[sizeof(msg)];
    assert_true(cry_aead_open(key, "k", 1, sealed, sizeof(sealed), (uint8_t *)out));
    assert_memory_equal(out, msg, sizeof(msg));
    /* Empty bodies seal too. */
    uint8_t empty[CRY_AEAD_OVERHEAD];
    assert_true(cry_aead_seal(key, "k", 1, "", 0, empty));
    assert_true(cry_aead_open(key, "k", 1, empty, sizeof(empty), (uint8_t *)out));
}

static void test_every_byte_is_authenticated(void **state)
{
    const char msg[] = "cached body";
    uint8_t sealed[sizeof(msg) + CRY_AEAD_OVERHEAD];
    assert_true(cry_aead_seal(key, "key", 3, msg, sizeof(msg), sealed));
    char out[sizeof(msg)];
    for (size_t i = 0; i < sizeof(sealed); i++) {
        sealed[i] ^= 0x01;
        assert_false(cry_aead_open(key, "key", 3, sealed, sizeof(sealed), (uint8_t *)out));
        sealed[i] ^= 0x01;
    }
    assert_true(cry_aead_open(key, "key", 3, sealed, sizeof(sealed), (uint8_t *)out));
    /* Truncated input, another key, another associated data: all refused. */
    assert_false(cry_aead_open(key, "key", 3, sealed, sizeof(sealed) - 1, (uint8_t *)out));
    assert_false(cry_aead_open(key, "key", 3, sealed, CRY_AEAD_OVERHEAD - 1, (uint8_t *)out));
    uint8_t other[32];
    memcpy(other, key, 32);
    other[31] ^= 0x80;
    assert_false(cry_aead_open(other, "key", 3, sealed, sizeof(sealed), (uint8_t *)out));
    assert_false(cry_aead_open(key, "kex", 3, sealed, sizeof(sealed), (uint8_t *)out));
}

static void test_fresh_nonce_per_seal(void **state)
{
    uint8_t a[4 + CRY_AEAD_OVERHEAD], b[4 + CRY_AEAD_OVERHEAD];
    assert_true(cry_aead_seal(key, "k", 1, "same", 4, a));
    assert_true(cry_aead_seal(key, "k", 1, "same", 4, b));
    assert_memory_not_equal(a, b, CRY_AEAD_NONCE_LEN);
    assert_memory_not_equal(a, b, sizeof(a));
}

static void test_parse_key(void **state)
{
    uint8_t k[32];
    const char *hex = "000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F\n";
    assert_true(cry_aead_parse_key(hex, strlen(hex), k));
    for (int i = 0; i < 32; i++)
        assert_int_equal(k[i], i);
    const char *b64 = "  AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=  ";
    memset(k, 0xff, sizeof(k));
    assert_true(cry_aead_parse_key(b64, strlen(b64), k));
    for (int i = 0; i < 32; i++)
        assert_int_equal(k[i], i);
    const char *bad[] = {"", "00", "zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
                         "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e",
                         "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", "not a key at all"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(cry_aead_parse_key(bad[i], strlen(bad[i]), k));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_every_byte_is_authenticated),
        cmocka_unit_test(test_fresh_nonce_per_seal),
        cmocka_unit_test(test_parse_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
