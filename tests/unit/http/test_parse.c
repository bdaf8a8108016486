/*
 * test_parse.c — http_parse_request: valid heads, pipelining, every-byte
 * truncation, limits, strictness (RFC 9112 framing and smuggling defences),
 * versions, keep-alive, Expect and Host rules.
 *
 * Every input is copied so that it ends right before a PROT_NONE page: a read
 * past `len` crashes the test instead of passing unnoticed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "http/http.h"

/* ================= guard-page buffers ================= */

static char *g_map;
static size_t g_map_len;

/* Returns a copy of s[0..n) whose last byte sits right before a PROT_NONE page.
 * Valid until the next call. */
static const char *guarded(const char *s, size_t n)
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

static struct http_request g_req; /* ~8 KiB: kept off the stack */
static const struct http_limits g_lim = {
    .max_header_bytes = 8192,
    .max_headers = 64,
    .max_url_bytes = 2048,
};

static int parse_n_lim(const char *s, size_t n, const struct http_limits *lim, int *status)
{
    const char *reason = NULL;
    *status = 0;
    int r = http_parse_request(guarded(s, n), n, lim, &g_req, status, &reason);
    if (r == HTTP_PARSE_ERROR)
        assert_non_null(reason);
    return r;
}

static int parse_lim(const char *s, const struct http_limits *lim, int *status)
{
    return parse_n_lim(s, strlen(s), lim, status);
}

static int parse(const char *s, int *status)
{
    return parse_lim(s, &g_lim, status);
}

/* Asserts that s is refused with `want`. */
static void assert_refused(const char *s, int want)
{
    int status;
    int r = parse(s, &status);
    if (r != HTTP_PARSE_ERROR || status != want)
        print_error("input: %s\n", s);
    assert_int_equal(r, HTTP_PARSE_ERROR);
    assert_int_equal(status, want);
}

static void assert_ok(const char *s)
{
    int status;
    int r = parse(s, &status);
    if (r != (int)strlen(s))
        print_error("input: %s (r=%d status=%d)\n", s, r, status);
    assert_int_equal(r, (int)strlen(s));
}

static void assert_span(const char *p, size_t n, const char *want)
{
    assert_non_null(p);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(p, want, n);
}

#define H11 "Host: example.com\r\n"

/* ================= valid requests ================= */

static void test_simple_get(void **state)
{
    const char *s = "GET /index.html HTTP/1.1\r\n"
                    "Host: example.com\r\n"
                    "User-Agent:  curl/8  \r\n"
                    "Accept:\t*/*\r\n"
                    "\r\n";
    int status;
    assert_int_equal(parse(s, &status), (int)strlen(s));
    assert_span(g_req.method, g_req.method_len, "GET");
    assert_span(g_req.target, g_req.target_len, "/index.html");
    assert_span(g_req.path, g_req.path_len, "/index.html");
    assert_null(g_req.query);
    assert_int_equal(g_req.minor_version, 1);
    assert_int_equal(g_req.num_headers, 3);
    assert_span(g_req.headers[0].name, g_req.headers[0].name_len, "Host");
    assert_span(g_req.headers[1].value, g_req.headers[1].value_len, "curl/8");
    assert_span(g_req.headers[2].value, g_req.headers[2].value_len, "*/*");
    assert_span(g_req.host, g_req.host_len, "example.com");
    assert_int_equal(g_req.body_kind, HTTP_BODY_NONE);
    assert_true(g_req.keep_alive);
    assert_false(g_req.expect_continue);
}

static void test_query_split(void **state)
{
    int status;
    assert_true(parse("GET /a/b?x=1&y=2?z HTTP/1.1\r\n" H11 "\r\n", &status) > 0);
    assert_span(g_req.path, g_req.path_len, "/a/b");
    assert_span(g_req.query, g_req.query_len, "x=1&y=2?z");
    assert_span(g_req.target, g_req.target_len, "/a/b?x=1&y=2?z");

    /* "/?" has an empty, present query. */
    assert_true(parse("GET /? HTTP/1.1\r\n" H11 "\r\n", &status) > 0);
    assert_span(g_req.path, g_req.path_len, "/");
    assert_non_null(g_req.query);
    assert_int_equal(g_req.query_len, 0);
}

static void test_empty_value_and_obs_text(void **state)
{
    int status;
    assert_true(parse("GET / HTTP/1.1\r\n" H11 "X-Empty:\r\nX-Sp:   \r\n"
                      "X-Utf8: caf\xc3\xa9\r\nX-Tab: a\tb\r\n\r\n",
                      &status) > 0);
    assert_int_equal(g_req.num_headers, 5);
    assert_int_equal(g_req.headers[1].value_len, 0);
    assert_int_equal(g_req.headers[2].value_len, 0);
    assert_span(g_req.headers[3].value, g_req.headers[3].value_len, "caf\xc3\xa9");
    assert_span(g_req.headers[4].value, g_req.headers[4].value_len, "a\tb");
}

static void test_leading_empty_lines(void **state)
{
    /* RFC 9112 §2.2: empty lines before the request-line are skipped, and
     * counted in the returned length. */
    const char *s = "\r\n\r\nGET / HTTP/1.1\r\n" H11 "\r\n";
    int status;
    assert_int_equal(parse(s, &status), (int)strlen(s));
    assert_span(g_req.method, g_req.method_len, "GET");
    assert_refused("\n\nGET / HTTP/1.1\r\n" H11 "\r\n", 400);
}

static void test_methods(void **state)
{
    assert_ok("PURGE /x HTTP/1.1\r\n" H11 "\r\n");
    assert_ok("get / HTTP/1.1\r\n" H11 "\r\n"); /* methods are case-sensitive tokens */
    assert_ok("M-SEARCH! / HTTP/1.1\r\n" H11 "\r\n");
    assert_refused("G@T / HTTP/1.1\r\n" H11 "\r\n", 400);
    assert_refused(" GET / HTTP/1.1\r\n" H11 "\r\n", 400);
    assert_refused("GET  / HTTP/1.1\r\n" H11 "\r\n", 400);
    assert_refused("GET /  HTTP/1.1\r\n" H11 "\r\n", 400);
    assert_refused("GET\t/ HTTP/1.1\r\n" H11 "\r\n", 400);
    assert_refused("GET /\tHTTP/1.1\r\n" H11 "\r\n", 400);
}

static void test_pipelined(void **state)
{
    const char *a = "GET /a HTTP/1.1\r\n" H11 "\r\n";
    const char *b = "POST /b HTTP/1.1\r\n" H11 "Content-Length: 3\r\n\r\n";
    char s[512];
    size_t n = 0;
    memcpy(s + n, a, strlen(a));
    n += strlen(a);
    memcpy(s + n, b, strlen(b));
    n += strlen(b);
    memcpy(s + n, "abcGET /c HT", 12); /* body of b, then a partial request */
    n += 12;

    int status;
    assert_int_equal(parse_n_lim(s, n, &g_lim, &status), (int)strlen(a));
    assert_span(g_req.path, g_req.path_len, "/a");
    size_t off = strlen(a);
    assert_int_equal(parse_n_lim(s + off, n - off, &g_lim, &status), (int)strlen(b));
    assert_span(g_req.path, g_req.path_len, "/b");
    assert_int_equal(g_req.body_kind, HTTP_BODY_LENGTH);
    assert_int_equal(g_req.content_length, 3);
    off += strlen(b) + 3;
    assert_int_equal(parse_n_lim(s + off, n - off, &g_lim, &status), HTTP_PARSE_INCOMPLETE);
}

/* Every proper prefix of a valid head is "incomplete" and reads nothing past
 * its end; the whole head (and re-parsing it) gives its exact length. */
static void test_incomplete_every_byte(void **state)
{
    static const char *const reqs[] = {
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "\r\nGET /p/q?x=1&y=%20 HTTP/1.0\r\n\r\n",
        "POST /upload HTTP/1.1\r\nHost: example.com:8080\r\nTransfer-Encoding: chunked\r\n"
        "Expect: 100-continue\r\nConnection: keep-alive, Upgrade\r\nX-Tab:\ta\tb\t\r\n\r\n",
        "PUT /0123456789abcdef0123456789 HTTP/1.1\r\nContent-Length: 12345\r\n"
        "Content-Length: 12345\r\nHost: [::1]:80\r\nX-Obs: \x80\xff\r\nX:\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        size_t n = strlen(reqs[i]);
        int status;
        for (size_t k = 0; k < n; k++) {
            int r = parse_n_lim(reqs[i], k, &g_lim, &status);
            if (r != HTTP_PARSE_INCOMPLETE)
                print_error("request %zu cut at %zu: r=%d status=%d\n", i, k, r, status);
            assert_int_equal(r, HTTP_PARSE_INCOMPLETE);
        }
        assert_int_equal(parse_n_lim(reqs[i], n, &g_lim, &status), (int)n);
        assert_int_equal(parse_n_lim(reqs[i], n, &g_lim, &status), (int)n);
    }
}

/* ================= limits ================= */

static void test_limit_header_bytes(void **state)
{
    const char *s = "GET / HTTP/1.1\r\n" H11 "X-Pad: 0123456789\r\n\r\n";
    size_t n = strlen(s);
    struct http_limits lim = g_lim;
    int status;

    lim.max_header_bytes = n; /* exactly at the limit: accepted */
    assert_int_equal(parse_lim(s, &lim, &status), (int)n);
    lim.max_header_bytes = n - 1;
    assert_int_equal(parse_lim(s, &lim, &status), HTTP_PARSE_ERROR);
    assert_int_equal(status, 431);

    /* Incomplete but already past the limit: refused without waiting. */
    lim.max_header_bytes = 20;
    assert_int_equal(parse_n_lim(s, 21, &lim, &status), HTTP_PARSE_ERROR);
    assert_int_equal(status, 431);
    assert_int_equal(parse_n_lim(s, 20, &lim, &status), HTTP_PARSE_INCOMPLETE);

    /* An endless header value. */
    char big[9000];
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    memset(big + 19, 'a', sizeof(big) - 19);
    assert_int_equal(parse_n_lim(big, sizeof(big), &g_lim, &status), HTTP_PARSE_ERROR);
    assert_int_equal(status, 431);
}

static void test_limit_header_count(void **state)
{
    struct http_limits lim = g_lim;
    int status;
    const char *three = "GET / HTTP/1.1\r\n" H11 "A: 1\r\nB: 2\r\n\r\n";
    const char *four = "GET / HTTP/1.1\r\n" H11 "A: 1\r\nB: 2\r\nC: 3\r\n\r\n";

    lim.max_headers = 3;
    assert_int_equal(parse_lim(three, &lim, &status), (int)strlen(three));
    assert_int_equal(g_req.num_headers, 3);
    assert_int_equal(parse_lim(four, &lim, &status), HTTP_PARSE_ERROR);
    assert_int_equal(status, 431);
    /* Refused as soon as the 4th field line starts. */
    assert_int_equal(parse_n_lim(four, strlen(three) - 1, &lim, &status), HTTP_PARSE_ERROR);
    assert_int_equal(status, 431);

    /* A configured limit above the array size is clamped to it. */
    char s[8192];
    size_t n = 0;
    memcpy(s, "GET / HTTP/1.1\r\n", 16);
    n = 16;
    for (int i = 0; i < HTTP_MAX_HEADERS_HARD + 1; i++) {
        memcpy(s + n, "X-A: a\r\n", 8);
        n += 8;
    }
    memcpy(s + n, "\r\n", 2);
    n += 2;
    lim.max_headers = 100000;
    lim.max_header_bytes = sizeof(s);
    assert_int_equal(parse_n_lim(s, n, &lim, &status), HTTP_PARSE_ERROR);
    assert_int_equal(status, 431);
}

static void test_limit_url(void **state)
{
    struct http_limits lim = g_lim;
    int status;
    lim.max_url_bytes = 10;
    assert_int_equal(parse_lim("GET /123456789 HTTP/1.1\r\n" H11 "\r\n", &lim, &status),
                     (int)strlen("GET /123456789 HTTP/1.1\r\n" H11 "\r\n"));
    assert_int_equal(parse_lim("GET /1234567890 HTTP/1.1\r\n" H11 "\r\n", &lim, &status),
                     HTTP_PARSE_ERROR);
    assert_int_equal(status, 414);
    assert_int_equal(parse_lim("GET /1?34567890 HTTP/1.1\r\n" H11 "\r\n", &lim, &status),
                     HTTP_PARSE_ERROR);
    assert_int_equal(status, 414);
    /* Known too long before the request line is complete. */
    assert_int_equal(parse_lim("GET /1234567890", &lim, &status), HTTP_PARSE_ERROR);
    assert_int_equal(status, 414);
    assert_int_equal(parse_lim("GET /123456789", &lim, &status), HTTP_PARSE_INCOMPLETE);
}

/* ================= field syntax ================= */

static void test_bare_lf(void **state)
{
    assert_refused("GET / HTTP/1.1\n" H11 "\r\n", 400);
    assert_refused("GET / HTTP/1.1\r\nHost: a\n\r\n", 400);
    assert_refused("GET / HTTP/1.1\r\nHost: a\r\n\n", 400);
    assert_refused("GET / HTTP/1.1\r\nHost: a\r\nX: a\nb\r\n\r\n", 400);
    /* Bare CR too. */
    assert_refused("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400);
    assert_refused("GET / HTTP/1.1\r\nHost: a\r\n\rX\r\n", 400);
}

static void test_obs_fold(void **state)
{
    /* RFC 9112 §5.2: a server may reject obs-fold with 400; we always do. */
    assert_refused("GET / HTTP/1.1\r\n" H11 "X: a\r\n b\r\n\r\n", 400);
    assert_refused("GET / HTTP/1.1\r\n" H11 "X: a\r\n\tb\r\n\r\n", 400);
    /* Whitespace before the first field line (RFC 9112 §2.2). */
    assert_refused("GET / HTTP/1.1\r\n " H11 "\r\n", 400);
}

static void test_space_before_colon(void **state)
{
    /* RFC 9112 §5.1: MUST reject with 400. */
    assert_refused("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400);
    assert_refused("GET / HTTP/1.1\r\n" H11 "Content-Length\t: 0\r\n\r\n", 400);
    assert_refused("GET / HTTP/1.1\r\n" H11 ": empty-name\r\n\r\n", 400);
    assert_refused("GET / HTTP/1.1\r\n" H11 "X(y): a\r\n\r\n", 400);
    assert_refused("GET / HTTP/1.1\r\n" H11 "X-No-Colon\r\n\r\n", 400);
}

static void test_control_bytes(void **state)
{
    static const char bad[] = {0x00, 0x01, 0x08, 0x0b, 0x0c, 0x1b, 0x1f, 0x7f};
    int status;
    for (size_t i = 0; i < sizeof(bad); i++) {
        char s[64];
        int n = 0;
        memcpy(s, "GET / HTTP/1.1\r\nHost: a\r\nX: a", 29);
        n = 29;
        s[n++] = bad[i];
        memcpy(s + n, "b\r\n\r\n", 5);
        n += 5;
        assert_int_equal(parse_n_lim(s, (size_t)n, &g_lim, &status), HTTP_PARSE_ERROR);
        assert_int_equal(status, 400);
        /* In a field name and in the target too. */
        memcpy(s, "GET / HTTP/1.1\r\nHost: a\r\nX", 26);
        s[26] = bad[i];
        memcpy(s + 27, "Y: b\r\n\r\n", 8);
        assert_int_equal(parse_n_lim(s, 35, &g_lim, &status), HTTP_PARSE_ERROR);
        memcpy(s, "GET /a", 6);
        s[6] = bad[i];
        memcpy(s + 7, " HTTP/1.1\r\nHost: a\r\n\r\n", 22);
        assert_int_equal(parse_n_lim(s, 29, &g_lim, &status), HTTP_PARSE_ERROR);
        assert_int_equal(status, 400);
    }
    /* Raw non-ASCII in the target is refused (RFC 3986: percent-encode it). */
    assert_refused("GET /caf\xc3\xa9 HTTP/1.1\r\n" H11 "\r\n", 400);
}

/* ================= framing: Content-Length / Transfer-Encoding ================= */

static void test_content_length(void **state)
{
    int status;
    assert_ok("POST / HTTP/1.1\r\n" H11 "Content-Length: 0\r\n\r\n");
    assert_int_equal(g_req.body_kind, HTTP_BODY_LENGTH);
    assert_int_equal(g_req.content_length, 0);
    assert_true(parse("POST / HTTP/1.1\r\n" H11 "Content-Length: 18446744073709551615\r\n\r\n",
                      &status) > 0);
    assert_true(g_req.content_length == UINT64_MAX);

    /* Identical duplicates are one value (RFC 9110 §8.6). */
    assert_ok("POST / HTTP/1.1\r\n" H11 "Content-Length: 5\r\ncontent-length:5\r\n\r\n");
    assert_int_equal(g_req.content_length, 5);
    assert_refused("POST / HTTP/1.1\r\n" H11 "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", 400);

    static const char *const bad[] = {
        "+5",
        "-5",
        "5a",
        "0x5",
        "5 5",
        "5,5",
        "5, 5",
        "",
        "18446744073709551616",
        "99999999999999999999999",
        "\xd9\xa5",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char s[256];
        snprintf(s, sizeof(s), "POST / HTTP/1.1\r\n" H11 "Content-Length: %s\r\n\r\n", bad[i]);
        assert_refused(s, 400);
    }
}

static void test_cl_and_te(void **state)
{
    /* RFC 9112 §6.1/§6.3: the classic smuggling combination, both orders. */
    assert_refused("POST / HTTP/1.1\r\n" H11 "Content-Length: 5\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n",
                   400);
    assert_refused("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n"
                   "Content-Length: 5\r\n\r\n",
                   400);
}

static void test_transfer_encoding(void **state)
{
    static const char *const ok[] = {"chunked", "CHUNKED", "Chunked", "  chunked  ", "\tchunked"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        char s[256];
        snprintf(s, sizeof(s), "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: %s\r\n\r\n", ok[i]);
        assert_ok(s);
        assert_int_equal(g_req.body_kind, HTTP_BODY_CHUNKED);
    }

    /* 501: a well-formed coding list ending in one "chunked", with codings
     * we do not implement before it (RFC 9112 §6.1). 400: everything else,
     * since the body length cannot be determined (RFC 9112 §6.3 (4)). */
    static const struct {
        const char *te;
        int status;
    } bad[] = {
        {"gzip, chunked", 501},
        {"gzip;q=1, chunked", 501},
        {"chunked, chunked", 400},
        {"chunked,chunked", 400},
        {"xchunked", 400},
        {"chunkedx", 400},
        {"chunked, gzip", 400},
        {"gzip", 400},
        {"identity", 400},
        {", chunked", 400},
        {"chunked,", 400},
        {"chunked;x=1", 400},
        {"chu nked", 400},
        {"\"chunked\"", 400},
        {"", 400},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char s[256];
        snprintf(s, sizeof(s), "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: %s\r\n\r\n",
                 bad[i].te);
        assert_refused(s, bad[i].status);
    }
    /* Two field lines, even both "chunked". */
    assert_refused("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n",
                   400);
    /* RFC 9112 §6.1: TE in HTTP/1.0 is faulty framing. */
    assert_refused("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
}

/* ================= request-target and version ================= */

static void test_target_forms(void **state)
{
    assert_refused("GET http://example.com/ HTTP/1.1\r\n" H11 "\r\n", 400);
    assert_refused("OPTIONS * HTTP/1.1\r\n" H11 "\r\n", 400);
    assert_refused("CONNECT example.com:443 HTTP/1.1\r\n" H11 "\r\n", 400);
    assert_refused("GET  HTTP/1.1\r\n" H11 "\r\n", 400);
    assert_refused("GET a/b HTTP/1.1\r\n" H11 "\r\n", 400);
}

static void test_versions(void **state)
{
    assert_refused("GET / HTTP/2.0\r\n" H11 "\r\n", 505);
    assert_refused("GET / HTTP/0.9\r\n\r\n", 505);
    assert_refused("GET / HTTP/1.2\r\n" H11 "\r\n", 505);
    assert_refused("GET / HTTP/3.0\r\n\r\n", 505);
    assert_refused("GET / http/1.1\r\n" H11 "\r\n", 400);
    assert_refused("GET / HTTP/11\r\n" H11 "\r\n", 400);
    assert_refused("GET / HTTP/1.1 \r\n" H11 "\r\n", 400);
    assert_refused("GET / HTTP/1.10\r\n" H11 "\r\n", 400);
    assert_refused("GET / HTTP/1\r\n" H11 "\r\n", 400);
    assert_refused("GET /\r\n\r\n", 400); /* HTTP/0.9 simple request */
    assert_ok("GET / HTTP/1.0\r\n\r\n");
    assert_int_equal(g_req.minor_version, 0);
}

/* ================= keep-alive, Expect, Host ================= */

static void test_keep_alive(void **state)
{
    assert_ok("GET / HTTP/1.1\r\n" H11 "\r\n");
    assert_true(g_req.keep_alive);
    assert_ok("GET / HTTP/1.1\r\n" H11 "Connection: close\r\n\r\n");
    assert_false(g_req.keep_alive);
    assert_ok("GET / HTTP/1.1\r\n" H11 "Connection: Upgrade, CLOSE\r\n\r\n");
    assert_false(g_req.keep_alive);
    assert_ok("GET / HTTP/1.1\r\n" H11 "Connection: closed\r\n\r\n");
    assert_true(g_req.keep_alive);

    assert_ok("GET / HTTP/1.0\r\n\r\n");
    assert_false(g_req.keep_alive);
    assert_ok("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    assert_true(g_req.keep_alive);
    assert_ok("GET / HTTP/1.0\r\nConnection: foo\r\nConnection: , keep-alive \r\n\r\n");
    assert_true(g_req.keep_alive);
    assert_ok("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n");
    assert_false(g_req.keep_alive);
    assert_ok("GET / HTTP/1.0\r\nKeep-Alive: timeout=5\r\n\r\n");
    assert_false(g_req.keep_alive);
}

static void test_expect(void **state)
{
    assert_ok("PUT / HTTP/1.1\r\n" H11 "Content-Length: 1\r\nExpect: 100-continue\r\n\r\n");
    assert_true(g_req.expect_continue);
    assert_ok("PUT / HTTP/1.1\r\n" H11 "Expect: 100-Continue\r\n\r\n");
    assert_true(g_req.expect_continue);
    assert_ok("PUT / HTTP/1.1\r\n" H11 "Expect: 200-ok\r\n\r\n");
    assert_false(g_req.expect_continue);
    /* RFC 9110 §10.1.1: ignored in HTTP/1.0. */
    assert_ok("PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n");
    assert_false(g_req.expect_continue);
}

static void test_host(void **state)
{
    /* RFC 9112 §3.2. */
    assert_refused("GET / HTTP/1.1\r\n\r\n", 400);
    assert_refused("GET / HTTP/1.1\r\nX: y\r\n\r\n", 400);
    assert_refused("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400);
    assert_refused("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400);
    assert_refused("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400);
    assert_refused("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400);
    assert_refused("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400);
    assert_refused("GET / HTTP/1.1\r\nHost: a@b\r\n\r\n", 400);
    assert_refused("GET / HTTP/1.1\r\nHost: \xc3\xa9\r\n\r\n", 400);

    assert_ok("GET / HTTP/1.0\r\n\r\n");
    assert_null(g_req.host);
    assert_ok("GET / HTTP/1.1\r\nhOsT:  Example.COM:8080 \r\n\r\n");
    assert_span(g_req.host, g_req.host_len, "Example.COM:8080");
    assert_ok("GET / HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n");
    assert_ok("GET / HTTP/1.1\r\nHost:\r\n\r\n"); /* empty is grammatical */
    assert_int_equal(g_req.host_len, 0);
}

/* Errors are final: more bytes after a refused prefix do not change the verdict. */
static void test_error_is_sticky(void **state)
{
    int status;
    const char *s = "GET / HTTP/1.1\r\nHost : a\r\n\r\n";
    for (size_t k = strlen("GET / HTTP/1.1\r\nHost "); k <= strlen(s); k++) {
        assert_int_equal(parse_n_lim(s, k, &g_lim, &status), HTTP_PARSE_ERROR);
        assert_int_equal(status, 400);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_query_split),
        cmocka_unit_test(test_empty_value_and_obs_text),
        cmocka_unit_test(test_leading_empty_lines),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_incomplete_every_byte),
        cmocka_unit_test(test_limit_header_bytes),
        cmocka_unit_test(test_limit_header_count),
        cmocka_unit_test(test_limit_url),
        cmocka_unit_test(test_bare_lf),
        cmocka_unit_test(test_obs_fold),
        cmocka_unit_test(test_space_before_colon),
        cmocka_unit_test(test_control_bytes),
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_cl_and_te),
        cmocka_unit_test(test_transfer_encoding),
        cmocka_unit_test(test_target_forms),
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_expect),
        cmocka_unit_test(test_host),
        cmocka_unit_test(test_error_is_sticky),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
