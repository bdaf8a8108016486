/*
 * test_chunked.c — http_chunked_decode and http_chunk_header: whole and split
 * input (every split point and byte by byte), extensions, trailers, malformed
 * codings, limits, in-place decoding, and bytes after the last chunk.
 *
 * Inputs sit right before a PROT_NONE page so an over-read crashes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "http/http.h"

/* ================= guard-page buffers ================= */

static char *g_map;
static size_t g_map_len;

/* A copy of s[0..n) ending right before a PROT_NONE page; valid until the next call. */
static char *guarded(const char *s, size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t data_pages = (n + page - 1) / page;
    if (data_pages == 0)
        data_pages = 1;
    if (g_map)
        munmap(g_map, g_map_len);
    g_map_len = (data_pages + 1) * page;
    g_map = mmap(NULL, g_map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(g_map != MAP_FAILED);
    assert_int_equal(mprotect(g_map + data_pages * page, page, PROT_NONE), 0);
    char *dst = g_map + data_pages * page - n;
    memcpy(dst, s, n);
    return dst;
}

/* ================= helpers ================= */

struct result {
    ssize_t consumed; /* total, or HTTP_PARSE_ERROR */
    size_t out_len;
    bool done;
    char out[32768];
};

static struct result g_a, g_b;

/* Decodes in[0..n) fed as pieces cut at the given offsets (ascending). */
static void decode_pieces(const char *in, size_t n, const size_t *cuts, size_t ncuts,
                          struct result *res)
{
    struct http_chunked d;
    http_chunked_init(&d);
    res->consumed = 0;
    res->out_len = 0;
    size_t start = 0;
    for (size_t c = 0; c <= ncuts; c++) {
        size_t stop = c < ncuts ? cuts[c] : n;
        const char *piece = guarded(in + start, stop - start);
        size_t got;
        ssize_t r = http_chunked_decode(&d, piece, stop - start, res->out + res->out_len, &got);
        if (r < 0) {
            res->consumed = r;
            res->done = false;
            return;
        }
        assert_true((size_t)r <= stop - start);
        res->consumed += r;
        res->out_len += got;
        /* The decoder only stops short of the piece when it is done. */
        if ((size_t)r < stop - start) {
            assert_true(d.done);
            break;
        }
        start = stop;
    }
    res->done = d.done;
}

static void decode_whole(const char *in, size_t n, struct result *res)
{
    decode_pieces(in, n, NULL, 0, res);
}

static void assert_same(const struct result *a, const struct result *b)
{
    assert_int_equal(a->consumed, b->consumed);
    assert_int_equal(a->done, b->done);
    if (a->consumed >= 0) {
        assert_int_equal(a->out_len, b->out_len);
        assert_memory_equal(a->out, b->out, a->out_len);
    }
}

/* Checks the result of one-piece decoding, then that every two-piece split
 * and byte-by-byte feeding agree with it. */
static void check(const char *in, size_t n, ssize_t want_consumed, const char *want_out,
                  bool want_done)
{
    decode_whole(in, n, &g_a);
    if (g_a.consumed != want_consumed)
        print_error("input %.*s: consumed %zd\n", (int)n, in, g_a.consumed);
    assert_int_equal(g_a.consumed, want_consumed);
    if (want_consumed >= 0) {
        assert_int_equal(g_a.done, want_done);
        assert_int_equal(g_a.out_len, strlen(want_out));
        assert_memory_equal(g_a.out, want_out, g_a.out_len);
    }
    for (size_t k = 0; k <= n; k++) {
        decode_pieces(in, n, &k, 1, &g_b);
        assert_same(&g_a, &g_b);
    }
    size_t *cuts = malloc((n + 1) * sizeof(*cuts));
    for (size_t k = 0; k < n; k++)
        cuts[k] = k + 1;
    decode_pieces(in, n, cuts, n ? n - 1 : 0, &g_b);
    assert_same(&g_a, &g_b);
    free(cuts);
}

/* For string literals (which may hold NUL bytes). */
#define CHECK_OK(in, out) check((in), sizeof(in) - 1, (ssize_t)sizeof(in) - 1, (out), true)
#define CHECK_ERR(in) check((in), sizeof(in) - 1, HTTP_PARSE_ERROR, NULL, false)

/* ================= tests ================= */

static void test_simple(void **state)
{
    CHECK_OK("5\r\nhello\r\n0\r\n\r\n", "hello");
    CHECK_OK("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world");
    CHECK_OK("0\r\n\r\n", "");
    CHECK_OK("A\r\n0123456789\r\na\r\nabcdefghij\r\n000\r\n\r\n", "0123456789abcdefghij");
    CHECK_OK("00000000000000000000000003\r\nabc\r\n0\r\n\r\n", "abc"); /* leading zeros */
}

static void test_incomplete(void **state)
{
    /* Not done yet: everything consumed, the data so far produced. */
    static const char *const cut[][2] = {
        {"5\r\nhel", "hel"},
        {"5\r\nhello\r\n0\r\n", "hello"},
        {"5\r\nhello\r\n0\r\n\r", "hello"},
        {"5\r\nhello\r\n0\r\nX: y\r\n", "hello"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++)
        check(cut[i][0], strlen(cut[i][0]), (ssize_t)strlen(cut[i][0]), cut[i][1], false);
}

static void test_extensions(void **state)
{
    CHECK_OK("5;name=value\r\nhello\r\n0;last\r\n\r\n", "hello");
    CHECK_OK("5;a=\"q;\\\"x\";b\r\nhello\r\n0\r\n\r\n", "hello");
    CHECK_OK("5 ;a\r\nhello\r\n0\t;b\r\n\r\n", "hello"); /* BWS before ';' */
    CHECK_OK("5;\x80\xff\r\nhello\r\n0\r\n\r\n", "hello");
    CHECK_ERR("5;a\nb\r\nhello\r\n0\r\n\r\n"); /* LF inside an extension */
    CHECK_ERR("5;a\x01\r\nhello\r\n0\r\n\r\n");
    CHECK_ERR("5;a\x00\r\nhello\r\n0\r\n\r\n");
    CHECK_ERR("5 \r\nhello\r\n0\r\n\r\n"); /* BWS is only allowed before ';' */
}

static void test_trailers(void **state)
{
    CHECK_OK("5\r\nhello\r\n0\r\nX-Sum: abc\r\nY:\r\nZ: \x80 b\t\r\n\r\n", "hello");
    CHECK_ERR("0\r\n folded: x\r\n\r\n");
    CHECK_ERR("0\r\nX-Sum abc\r\n\r\n");
    CHECK_ERR("0\r\nX-Sum : abc\r\n\r\n");
    CHECK_ERR("0\r\n: abc\r\n\r\n");
    CHECK_ERR("0\r\nX: a\x00\r\n\r\n");
    CHECK_ERR("0\r\nX: a\r\n\n");
    CHECK_ERR("0\r\nX: a\n\r\n");
}

static void test_bad_size(void **state)
{
    CHECK_ERR("g\r\nhello\r\n0\r\n\r\n");
    CHECK_ERR("\r\nhello\r\n0\r\n\r\n");
    CHECK_ERR("-5\r\nhello\r\n0\r\n\r\n");
    CHECK_ERR("+5\r\nhello\r\n0\r\n\r\n");
    CHECK_ERR("0x5\r\nhello\r\n0\r\n\r\n");
    CHECK_ERR(" 5\r\nhello\r\n0\r\n\r\n");
    CHECK_ERR(";5\r\nhello\r\n0\r\n\r\n");
}

static void test_size_overflow(void **state)
{
    /* 2^64 does not fit; 2^64 - 1 does (then data is awaited). */
    CHECK_ERR("10000000000000000\r\n");
    CHECK_ERR("fffffffffffffffff\r\n");
    const char *max = "ffffffffffffffff\r\nab";
    check(max, strlen(max), (ssize_t)strlen(max), "ab", false);
}

static void test_missing_crlf_after_data(void **state)
{
    CHECK_ERR("5\r\nhelloX\r\n0\r\n\r\n");
    CHECK_ERR("5\r\nhello0\r\n\r\n");
    CHECK_ERR("5\r\nhello\rX0\r\n\r\n");
    CHECK_ERR("5\r\nhello\n0\r\n\r\n");
    CHECK_ERR("3\r\nhello\r\n0\r\n\r\n"); /* size shorter than the data */
}

static void test_lf_only(void **state)
{
    CHECK_ERR("5\nhello\n0\n\n");
    CHECK_ERR("5\nhello\r\n0\r\n\r\n");
    CHECK_ERR("5\r\nhello\r\n0\n\r\n");
    CHECK_ERR("5\r\nhello\r\n0\r\n\n");
    CHECK_ERR("5\rhello\r\n0\r\n\r\n"); /* bare CR */
}

static void test_long_size_line(void **state)
{
    /* HTTP_CHUNK_MAX_LINE bytes before CRLF are fine, one more is not. */
    static char in[HTTP_CHUNK_MAX_LINE + 64];
    size_t n = 0;
    in[n++] = '1';
    in[n++] = ';';
    memset(in + n, 'a', HTTP_CHUNK_MAX_LINE - 2);
    n += HTTP_CHUNK_MAX_LINE - 2;
    memcpy(in + n, "\r\nx\r\n0\r\n\r\n", 10);
    n += 10;
    decode_whole(in, n, &g_a);
    assert_int_equal(g_a.consumed, (ssize_t)n);
    assert_true(g_a.done);

    memmove(in + 3, in + 2, n - 2);
    in[2] = 'a';
    n++;
    decode_whole(in, n, &g_b);
    assert_int_equal(g_b.consumed, HTTP_PARSE_ERROR);
    /* An endless size line fails without waiting for its CR. */
    decode_whole(in, HTTP_CHUNK_MAX_LINE + 1, &g_b);
    assert_int_equal(g_b.consumed, HTTP_PARSE_ERROR);
    /* The same goes for a long run of leading zeros. */
    memset(in, '0', HTTP_CHUNK_MAX_LINE + 1);
    decode_whole(in, HTTP_CHUNK_MAX_LINE + 1, &g_b);
    assert_int_equal(g_b.consumed, HTTP_PARSE_ERROR);
}

static void test_trailer_limit(void **state)
{
    static char in[HTTP_CHUNK_MAX_TRAILER + 64];
    size_t n = 0;
    memcpy(in, "0\r\n", 3);
    n = 3;
    while (n < sizeof(in) - 8) {
        memcpy(in + n, "X: yy\r\n", 7);
        n += 7;
    }
    memcpy(in + n, "\r\n", 2);
    n += 2;
    decode_whole(in, n, &g_a);
    assert_int_equal(g_a.consumed, HTTP_PARSE_ERROR);
}

static void test_leftover_not_consumed(void **state)
{
    const char *in = "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
    size_t body = strlen("3\r\nabc\r\n0\r\n\r\n");
    check(in, strlen(in), (ssize_t)body, "abc", true);

    /* Once done, further calls consume nothing. */
    struct http_chunked d;
    char out[64];
    size_t got;
    http_chunked_init(&d);
    assert_int_equal(http_chunked_decode(&d, in, strlen(in), out, &got), (ssize_t)body);
    assert_true(d.done);
    assert_int_equal(http_chunked_decode(&d, in + body, strlen(in) - body, out, &got), 0);
    assert_int_equal(got, 0);
}

static void test_in_place(void **state)
{
    char in[] = "3\r\nabc\r\n4;x\r\ndefg\r\n0\r\nT: v\r\n\r\nrest";
    size_t n = strlen(in);
    struct http_chunked d;
    size_t got;
    http_chunked_init(&d);
    ssize_t r = http_chunked_decode(&d, in, n, in, &got);
    assert_int_equal(r, (ssize_t)(n - 4));
    assert_int_equal(got, 7);
    assert_memory_equal(in, "abcdefg", 7);
    assert_true(d.done);
}

static void test_error_is_sticky(void **state)
{
    struct http_chunked d;
    char out[64];
    size_t got;
    http_chunked_init(&d);
    assert_int_equal(http_chunked_decode(&d, "z", 1, out, &got), HTTP_PARSE_ERROR);
    assert_int_equal(http_chunked_decode(&d, "0\r\n\r\n", 5, out, &got), HTTP_PARSE_ERROR);
    assert_false(d.done);
}

static void test_random_roundtrip(void **state)
{
    /* Encode random data with http_chunk_header, then decode it in pieces. */
    static char enc[16384];
    char data[4096];
    unsigned seed = 12345;
    for (int round = 0; round < 20; round++) {
        size_t n = 0, dlen = 0;
        while (dlen < sizeof(data) - 600 && n < sizeof(enc) - 700) {
            seed = seed * 1103515245 + 12345;
            size_t k = (seed >> 16) % 500 + 1;
            for (size_t j = 0; j < k; j++)
                data[dlen + j] = (char)(seed >> (j % 24));
            n += http_chunk_header(enc + n, k);
            memcpy(enc + n, data + dlen, k);
            n += k;
            memcpy(enc + n, "\r\n", 2);
            n += 2;
            dlen += k;
            if ((seed >> 8) % 5 == 0)
                break;
        }
        n += http_chunk_header(enc + n, 0);
        memcpy(enc + n, "\r\n", 2);
        n += 2;
        decode_whole(enc, n, &g_a);
        assert_int_equal(g_a.consumed, (ssize_t)n);
        assert_true(g_a.done);
        assert_int_equal(g_a.out_len, dlen);
        assert_memory_equal(g_a.out, data, dlen);
        size_t cuts[3] = {n / 7, n / 3, n - 1};
        decode_pieces(enc, n, cuts, 3, &g_b);
        assert_same(&g_a, &g_b);
    }
}

static void test_chunk_header(void **state)
{
    char dst[20];
    assert_int_equal(http_chunk_header(dst, 0), 3);
    assert_memory_equal(dst, "0\r\n", 3);
    assert_int_equal(http_chunk_header(dst, 255), 4);
    assert_memory_equal(dst, "ff\r\n", 4);
    assert_int_equal(http_chunk_header(dst, 0x1000), 6);
    assert_memory_equal(dst, "1000\r\n", 6);
    assert_int_equal(http_chunk_header(dst, UINT64_MAX), 18);
    assert_memory_equal(dst, "ffffffffffffffff\r\n", 18);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple),
        cmocka_unit_test(test_incomplete),
        cmocka_unit_test(test_extensions),
        cmocka_unit_test(test_trailers),
        cmocka_unit_test(test_bad_size),
        cmocka_unit_test(test_size_overflow),
        cmocka_unit_test(test_missing_crlf_after_data),
        cmocka_unit_test(test_lf_only),
        cmocka_unit_test(test_long_size_line),
        cmocka_unit_test(test_trailer_limit),
        cmocka_unit_test(test_leftover_not_consumed),
        cmocka_unit_test(test_in_place),
        cmocka_unit_test(test_error_is_sticky),
        cmocka_unit_test(test_random_roundtrip),
        cmocka_unit_test(test_chunk_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
