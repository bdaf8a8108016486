/*
 * Tests of src/l2/entry.c: an L1 entry survives the trip through Redis bytes
 * (key, method, path, tags, head, body, the encrypted flag) with its times
 * moved from one process's monotonic clock to another's; the exact header;
 * every truncation, a trailing byte, a wrong key, an expired entry and each
 * malformed span refused; allocation failure. Decoded input sits right before
 * a guard page.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h> /* needs the four above first */

#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"
#include "crypto/aead.h"
#include "guard.h"
#include "l2/l2.h"
#include "util/util.h"

/* Node A wrote the entry at monotonic 1000 = wall W; node B reads it at
 * monotonic 50000 = wall W + 500. */
#define W 1700000000000LL
#define A_NOW 1000
#define B_NOW 50000
#define B_WALL (W + 500)

static const char key[] = "GET\0/pets/1\0accept=json"; /* route keys start "method\0path\0" */
#define KEY_LEN (sizeof(key) - 1)
static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                           "Content-Length: 11\r\n";
static const char body[] = "{\"id\":1}\0\x01\xff"; /* binary */
#define BODY_LEN 11

static struct cache_entry *make(const char *k, size_t klen, const char *tags)
{
    struct cache_entry_init in = {
        .key = k,
        .key_len = klen,
        .hash = 77,
        .method = "GET",
        .path = "/pets/1",
        .path_len = 7,
        .head = head,
        .head_len = sizeof(head) - 1,
        .body = body,
        .body_len = BODY_LEN,
        .tags = tags,
        .tags_len = tags ? strlen(tags) : 0,
        .stored_ms = A_NOW,
        .expires_ms = A_NOW + 60000,
        .stale_until_ms = A_NOW + 360000,
    };
    struct cache_entry *e = cache_entry_new(&in);
    assert_non_null(e);
    return e;
}

/* Encoded bytes (owned: free()). */
static char *encode(const struct cache_entry *e, size_t *len)
{
    *len = l2_entry_size(e);
    char *out = malloc(*len);
    l2_entry_encode(e, A_NOW, W, out);
    return out;
}

static struct cache_entry *decode_at(const char *data, size_t len, int64_t wall)
{
    return l2_entry_decode(guarded(data, len), len, key, KEY_LEN, 99, B_NOW, wall);
}

static struct cache_entry *decode(const char *data, size_t len)
{
    return decode_at(data, len, B_WALL);
}

static void assert_same_content(const struct cache_entry *a, const struct cache_entry *b)
{
    assert_int_equal(a->key_len, b->key_len);
    assert_memory_equal(a->key, b->key, a->key_len);
    assert_string_equal(cache_entry_method(a), cache_entry_method(b));
    assert_int_equal(a->path_len, b->path_len);
    assert_string_equal(cache_entry_path(a), cache_entry_path(b));
    assert_int_equal(a->tags_size, b->tags_size);
    assert_memory_equal(cache_entry_tags(a), cache_entry_tags(b), a->tags_size);
    assert_int_equal(a->head_len, b->head_len);
    assert_string_equal(cache_entry_head(a), cache_entry_head(b));
    assert_int_equal(a->body_len, b->body_len);
    assert_memory_equal(cache_entry_body(a), cache_entry_body(b), a->body_len);
    assert_int_equal(a->flags, b->flags);
}

/* ================= round trips ================= */

static void test_round_trip(void **state)
{
    struct cache_entry *e = make(key, KEY_LEN, "pets, pet-1 ,x");
    size_t len;
    char *bytes = encode(e, &len);
    assert_int_equal(len, L2_ENTRY_HEADER + KEY_LEN + 3 + 7 + e->tags_size + e->head_len + 11);
    struct cache_entry *d = decode(bytes, len);
    assert_non_null(d);
    assert_same_content(e, d);
    assert_true(cache_entry_has_tag(d, "pet-1", 5));
    assert_int_equal(d->hash, 99); /* the caller's */
    assert_int_equal(d->refs, 1);
    /* Same wall-clock instants, on B's monotonic clock: B's clock reads
     * 49000 more for the same instant, minus the 500 ms that passed. */
    int64_t shift = (B_NOW - B_WALL) - (A_NOW - W);
    assert_int_equal(d->stored_ms, e->stored_ms + shift);
    assert_int_equal(d->expires_ms, e->expires_ms + shift);
    assert_int_equal(d->stale_until_ms, e->stale_until_ms + shift);
    assert_int_equal(B_NOW - d->stored_ms, 500); /* Age carried over */
    /* Re-encoded at B's clocks: the same bytes. */
    char *again = malloc(len);
    l2_entry_encode(d, B_NOW, B_WALL, again);
    assert_memory_equal(again, bytes, len);
    free(again);
    cache_entry_release(&d);
    cache_entry_release(&e);
    free(bytes);
}

static void test_round_trip_variants(void **state)
{
    /* A key that does not start with method and path (spans copied), no tags,
     * the encrypted flag, a sealed empty body (only the AEAD overhead). */
    static const char other_key[] = "opaque-key";
    static const char empty_head[] = "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n";
    static const char sealed[CRY_AEAD_OVERHEAD];
    struct cache_entry_init in = {
        .key = other_key,
        .key_len = sizeof(other_key) - 1,
        .method = "PURGE",
        .path = "/",
        .path_len = 1,
        .head = empty_head,
        .head_len = sizeof(empty_head) - 1,
        .body = sealed,
        .body_len = sizeof(sealed),
        .stored_ms = 5,
        .expires_ms = 5,
        .stale_until_ms = 9000,
    };
    struct cache_entry *e = cache_entry_new(&in);
    e->flags |= CACHE_ENTRY_ENCRYPTED;
    size_t len = l2_entry_size(e);
    char *bytes = malloc(len);
    l2_entry_encode(e, 0, 100, bytes);
    struct cache_entry *d = l2_entry_decode(guarded(bytes, len), len, other_key,
                                            sizeof(other_key) - 1, 1, 0, 100);
    assert_non_null(d);
    assert_same_content(e, d);
    assert_true(d->flags & CACHE_ENTRY_ENCRYPTED);
    assert_string_equal(cache_entry_tags(d), "");
    cache_entry_release(&d);
    cache_entry_release(&e);
    free(bytes);
}

static void test_layout(void **state)
{
    struct cache_entry *e = make(key, KEY_LEN, "t");
    size_t len;
    char *b = encode(e, &len);
    assert_memory_equal(b, "gce\x01\x00\x03", 6);
    assert_memory_equal(b + 6, "\x17\x00\x07\x00", 4); /* key_len 23, path_len 7 */
    assert_int_equal((unsigned char)b[12], 3);           /* tags "t\0\0" */
    assert_int_equal((unsigned char)b[16], BODY_LEN);
    int64_t stored = 0;
    for (int i = 7; i >= 0; i--)
        stored = stored * 256 + (unsigned char)b[20 + i];
    assert_int_equal(stored, W); /* wall clock, little-endian */
    assert_memory_equal(b + L2_ENTRY_HEADER, key, KEY_LEN);
    assert_memory_equal(b + L2_ENTRY_HEADER + KEY_LEN, "GET/pets/1t\0\0HTTP", 17);
    cache_entry_release(&e);
    free(b);
}

/* ================= refusals ================= */

static void test_every_truncation_and_trailing_byte(void **state)
{
    struct cache_entry *e = make(key, KEY_LEN, "a,b");
    size_t len;
    char *b = encode(e, &len);
    for (size_t n = 0; n < len; n++)
        assert_null(decode(b, n));
    char *longer = malloc(len + 1);
    memcpy(longer, b, len);
    longer[len] = 'x';
    assert_null(decode(longer, len + 1));
    free(longer);
    cache_entry_release(&e);
    free(b);
}

static void test_wrong_key(void **state)
{
    struct cache_entry *e = make(key, KEY_LEN, NULL);
    size_t len;
    char *b = encode(e, &len);
    const char *in = guarded(b, len);
    char other[KEY_LEN];
    memcpy(other, key, KEY_LEN);
    other[KEY_LEN - 1] ^= 1;
    assert_null(l2_entry_decode(in, len, other, KEY_LEN, 1, B_NOW, B_WALL));
    assert_null(l2_entry_decode(in, len, key, KEY_LEN - 1, 1, B_NOW, B_WALL)); /* a prefix */
    assert_null(l2_entry_decode(in, len, "", 0, 1, B_NOW, B_WALL));
    struct cache_entry *d = l2_entry_decode(in, len, key, KEY_LEN, 1, B_NOW, B_WALL);
    assert_non_null(d);
    cache_entry_release(&d);
    cache_entry_release(&e);
    free(b);
}

static void test_expired(void **state)
{
    struct cache_entry *e = make(key, KEY_LEN, NULL);
    size_t len;
    char *b = encode(e, &len);
    int64_t stale_wall = W + 360000;
    /* Past expires but within stale-if-error: still returned (not fresh). */
    struct cache_entry *d = decode_at(b, len, W + 60000 + 1);
    assert_non_null(d);
    assert_true(d->expires_ms <= B_NOW);
    assert_true(d->stale_until_ms > B_NOW);
    cache_entry_release(&d);
    d = decode_at(b, len, stale_wall - 1);
    assert_non_null(d);
    cache_entry_release(&d);
    assert_null(decode_at(b, len, stale_wall));
    assert_null(decode_at(b, len, stale_wall + 86400000));
    cache_entry_release(&e);
    free(b);
}

/* Replaces `n` bytes at `off` of a fresh encoding; expects a refusal. */
static void expect_refused(size_t off, const void *bytes, size_t n)
{
    struct cache_entry *e = make(key, KEY_LEN, "a,b");
    size_t len;
    char *b = encode(e, &len);
    memcpy(b + off, bytes, n);
    assert_null(decode(b, len));
    cache_entry_release(&e);
    free(b);
}

static void put_i64(char *p, int64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (char)(((uint64_t)v >> (8 * i)) & 0xff);
}

static void test_malformed_spans(void **state)
{
    size_t m = L2_ENTRY_HEADER + KEY_LEN;       /* method */
    size_t path = m + 3, tags = path + 7;       /* "a\0b\0\0" */
    size_t hd = tags + 5;
    expect_refused(0, "GCE", 3);                /* magic */
    expect_refused(3, "\x02", 1);               /* version */
    expect_refused(4, "\x02", 1);               /* unknown flag */
    expect_refused(4, "\x80", 1);               /* the L1's private flag */
    expect_refused(5, "\x00", 1);               /* no method (lengths then disagree too) */
    expect_refused(m, "G T", 3);                /* method not a token */
    expect_refused(m + 1, "\0", 1);
    expect_refused(path + 3, "\0", 1);          /* NUL in the path */
    expect_refused(tags, ",", 1);               /* tag with a comma */
    expect_refused(tags, " ", 1);               /* untrimmed tag */
    expect_refused(tags, "\0", 1);              /* empty tag */
    expect_refused(tags + 3, "x", 1);           /* list not terminated */
    expect_refused(tags + 4, "x", 1);
    expect_refused(hd + 4, "\0", 1);            /* NUL in the head */
    /* A head a hit could not send as it is. */
    expect_refused(hd, "HTTP/1.0", 8);          /* another version */
    expect_refused(hd + 9, "x", 1);             /* no status code */
    expect_refused(hd + 9, "6", 1);             /* a status outside 1xx..5xx */
    expect_refused(hd + 12, "\r", 1);           /* no space after the code */
    expect_refused(hd + sizeof(head) - 5, "2", 1);     /* Content-Length: 12, body 11 */
    expect_refused(hd + sizeof(head) - 2, "x", 1);     /* not ending in CRLF */
    expect_refused(hd + sizeof(head) - 9, "X", 1);     /* the last line is not Content-Length */
    /* Lengths: a key length that moves every span. */
    expect_refused(6, "\x19\x00", 2);
    expect_refused(12, "\xff\xff\xff\xff", 4);  /* tags_size past the end */
    expect_refused(16, "\xff\xff\xff\xff", 4);  /* body_len past the end */
}

static void test_times(void **state)
{
    char t[8];
    put_i64(t, W + 60001); /* stored after expires */
    expect_refused(20, t, 8);
    put_i64(t, W + 360001); /* expires after stale_until */
    expect_refused(28, t, 8);
    put_i64(t, -1);
    expect_refused(20, t, 8);
    put_i64(t, L2_WALL_MAX + 1);
    expect_refused(36, t, 8);
    put_i64(t, INT64_MIN);
    expect_refused(20, t, 8);
}

/* cache_entry_new and the tag buffer both allocate: either failing means
 * NULL, and nothing leaks (LSan checks in ASan builds). */
static void test_allocation_failure(void **state)
{
    struct cache_entry *e = make(key, KEY_LEN, "a,b");
    size_t len;
    char *b = encode(e, &len);
    const char *in = guarded(b, len);
    for (long n = 1; n <= 2; n++) {
        util_alloc_fail_after(n);
        assert_null(l2_entry_decode(in, len, key, KEY_LEN, 1, B_NOW, B_WALL));
        util_alloc_fail_after(0);
    }
    struct cache_entry *d = l2_entry_decode(in, len, key, KEY_LEN, 1, B_NOW, B_WALL);
    assert_non_null(d);
    cache_entry_release(&d);
    cache_entry_release(&e);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_round_trip_variants),
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_every_truncation_and_trailing_byte),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_expired),
        cmocka_unit_test(test_malformed_spans),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_allocation_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
