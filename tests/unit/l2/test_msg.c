/*
 * Tests of src/l2/msg.c: every kind round-trips byte for byte, the exact
 * layout of one message, every truncation and every trailing byte refused,
 * each field rule of each kind enforced on both sides, lengths that point
 * past the end, binary fields. Decoded input sits right before a guard page.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h> /* needs the four above first */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "guard.h"
#include "l2/l2.h"

#define S(lit) ((struct l2_str){lit, sizeof(lit) - 1})

static struct l2_msg msg(enum l2_msg_kind kind)
{
    struct l2_msg m = {.node_id = 0x0102030405060708ull, .kind = kind, .stage = S("pets/prod")};
    switch (kind) {
    case L2_MSG_FLUSH:
        m.generation = 42;
        break;
    case L2_MSG_PATH:
    case L2_MSG_PATH_PREFIX:
        m.a = S("/pets/1");
        break;
    case L2_MSG_METHOD_PATH:
        m.a = S("GET");
        m.b = S("/pets/1");
        break;
    case L2_MSG_TAG:
        m.a = S("pets");
        break;
    case L2_MSG_KEY:
        m.a = S("GET\0/pets/1\0q=1");
        m.hash = 0xdeadbeefcafef00dull;
        break;
    }
    return m;
}

/* Encoded bytes of m (owned: free()). */
static char *encode(const struct l2_msg *m, size_t *len)
{
    *len = l2_msg_size(m);
    char *out = malloc(*len);
    l2_msg_encode(m, out);
    return out;
}

static int decode(const char *data, size_t len, struct l2_msg *out)
{
    return l2_msg_decode(guarded(data, len), len, out);
}

static bool same_str(struct l2_str a, struct l2_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

/* ================= round trips ================= */

static void test_round_trip_every_kind(void **state)
{
    for (int k = L2_MSG_FLUSH; k <= L2_MSG_KEY; k++) {
        struct l2_msg m = msg((enum l2_msg_kind)k), d;
        assert_true(l2_msg_is_valid(&m));
        size_t len;
        char *bytes = encode(&m, &len);
        assert_int_equal(decode(bytes, len, &d), 0);
        assert_int_equal(d.kind, k);
        assert_true(d.node_id == m.node_id && d.generation == m.generation && d.hash == m.hash);
        assert_true(same_str(d.stage, m.stage) && same_str(d.a, m.a) && same_str(d.b, m.b));
        /* Canonical: what was accepted encodes to the same bytes. */
        char *again = encode(&d, &len);
        assert_memory_equal(again, bytes, len);
        free(again);
        free(bytes);
    }
}

static void test_layout(void **state)
{
    struct l2_msg m = msg(L2_MSG_METHOD_PATH);
    size_t len;
    char *b = encode(&m, &len);
    static const char want[] = "gcm\x01\x04"
                               "\x08\x07\x06\x05\x04\x03\x02\x01"
                               "\0\0\0\0\0\0\0\0"
                               "\0\0\0\0\0\0\0\0"
                               "\x09\0\0\0pets/prod"
                               "\x03\0\0\0GET"
                               "\x07\0\0\0/pets/1";
    assert_int_equal(len, sizeof(want) - 1);
    assert_memory_equal(b, want, len);
    free(b);
}

static void test_binary_fields(void **state)
{
    char key[300];
    for (size_t i = 0; i < sizeof(key); i++)
        key[i] = (char)(i * 7);
    struct l2_msg m = {.kind = L2_MSG_KEY, .stage = S("a/b"), .a = {key, sizeof(key)}, .hash = 1};
    size_t len;
    char *b = encode(&m, &len);
    struct l2_msg d;
    assert_int_equal(decode(b, len, &d), 0);
    assert_true(same_str(d.a, m.a));
    free(b);
}

/* ================= refusals ================= */

static void test_every_truncation_and_trailing_byte(void **state)
{
    for (int k = L2_MSG_FLUSH; k <= L2_MSG_KEY; k++) {
        struct l2_msg m = msg((enum l2_msg_kind)k), d;
        size_t len;
        char *b = encode(&m, &len);
        for (size_t n = 0; n < len; n++)
            assert_int_equal(decode(b, n, &d), -EINVAL);
        char *longer = malloc(len + 1);
        memcpy(longer, b, len);
        longer[len] = '\0';
        assert_int_equal(decode(longer, len + 1, &d), -EINVAL);
        free(longer);
        free(b);
    }
}

/* Flips one byte of the encoding of m at offset off to v; expects a refusal. */
static void expect_refused_with(enum l2_msg_kind kind, size_t off, char v)
{
    struct l2_msg m = msg(kind), d;
    size_t len;
    char *b = encode(&m, &len);
    b[off] = v;
    assert_int_equal(decode(b, len, &d), -EINVAL);
    free(b);
}

static void test_header_refusals(void **state)
{
    expect_refused_with(L2_MSG_PATH, 0, 'G');  /* magic */
    expect_refused_with(L2_MSG_PATH, 3, 2);    /* a later version */
    expect_refused_with(L2_MSG_PATH, 3, 0);
    expect_refused_with(L2_MSG_PATH, 4, 0);    /* kind 0 */
    expect_refused_with(L2_MSG_PATH, 4, 7);    /* unknown kind */
    expect_refused_with(L2_MSG_PATH, 13, 1);   /* generation on a PATH */
    expect_refused_with(L2_MSG_TAG, 21, 1);    /* hash on a TAG */
    expect_refused_with(L2_MSG_FLUSH, 21, 1);  /* hash on a FLUSH */
    expect_refused_with(L2_MSG_PATH, 32, 1);   /* stage length past the end */
    expect_refused_with(L2_MSG_PATH, 29, 10);  /* stage length eats into a's length */
    expect_refused_with(L2_MSG_PATH, 33, ' '); /* a space in the stage */
    expect_refused_with(L2_MSG_PATH, 33, '\0');
    /* Length 0xffffffff must not wrap a pointer. */
    struct l2_msg m = msg(L2_MSG_PATH), d;
    size_t len;
    char *b = encode(&m, &len);
    memset(b + 29, 0xff, 4);
    assert_int_equal(decode(b, len, &d), -EINVAL);
    free(b);
}

static void test_field_rules(void **state)
{
    struct l2_msg m;
    m = msg(L2_MSG_FLUSH);
    m.a = S("/x");
    assert_false(l2_msg_is_valid(&m));
    m = msg(L2_MSG_PATH);
    m.a = S("");
    assert_false(l2_msg_is_valid(&m));
    m = msg(L2_MSG_PATH_PREFIX);
    m.b = S("x");
    assert_false(l2_msg_is_valid(&m));
    m = msg(L2_MSG_PATH_PREFIX); /* carries the stage's new generation */
    m.generation = 7;
    assert_true(l2_msg_is_valid(&m));
    m = msg(L2_MSG_PATH);
    m.generation = 7;
    assert_false(l2_msg_is_valid(&m));
    m = msg(L2_MSG_METHOD_PATH);
    m.b = S("");
    assert_false(l2_msg_is_valid(&m));
    m = msg(L2_MSG_KEY);
    m.generation = 1;
    assert_false(l2_msg_is_valid(&m));
    m = msg(L2_MSG_TAG);
    m.stage = S("");
    assert_false(l2_msg_is_valid(&m));
    m = msg(L2_MSG_TAG);
    m.kind = (enum l2_msg_kind)0;
    assert_false(l2_msg_is_valid(&m));
    /* Limits are inclusive. */
    static char big[L2_MSG_MAX_STAGE + 1];
    memset(big, 'x', sizeof(big));
    m = msg(L2_MSG_TAG);
    m.stage = (struct l2_str){big, L2_MSG_MAX_STAGE};
    assert_true(l2_msg_is_valid(&m));
    m.stage.len++;
    assert_false(l2_msg_is_valid(&m));
    static char field[L2_MSG_MAX_FIELD + 1];
    m = msg(L2_MSG_TAG);
    m.a = (struct l2_str){field, L2_MSG_MAX_FIELD};
    assert_true(l2_msg_is_valid(&m));
    m.a.len++;
    assert_false(l2_msg_is_valid(&m));

    /* The decoder applies the same rules to what it reads: a FLUSH that
     * carries a path is refused. */
    m = msg(L2_MSG_PATH);
    size_t len;
    char *b = encode(&m, &len);
    b[4] = L2_MSG_FLUSH;
    struct l2_msg d;
    assert_int_equal(decode(b, len, &d), -EINVAL);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_kind),
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_binary_fields),
        cmocka_unit_test(test_every_truncation_and_trailing_byte),
        cmocka_unit_test(test_header_refusals),
        cmocka_unit_test(test_field_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
