/*
 * test_response.c — http_parse_response: valid heads and their framing (length,
 * chunked, close-delimited, no body), persistence, every-byte truncation,
 * limits, strictness of the status line and fields, and the refusal of
 * framing that two parsers could read two ways (RFC 9112 §6.3, §11.2).
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

static struct http_response g_res; /* ~8 KiB: kept off the stack */
static const char *g_reason;
static const struct http_limits g_lim = {
    .max_header_bytes = 8192,
    .max_headers = 64,
    .max_url_bytes = 2048,
};

static int parse_full(const char *s, size_t n, const struct http_limits *lim, bool head)
{
    g_reason = NULL;
    int r = http_parse_response(guarded(s, n), n, lim, head, &g_res, &g_reason);
    if (r == HTTP_PARSE_ERROR)
        assert_non_null(g_reason);
    return r;
}

static int parse_n(const char *s, size_t n)
{
    return parse_full(s, n, &g_lim, false);
}

static int parse(const char *s)
{
    return parse_n(s, strlen(s));
}

/* Asserts that s is refused, with `want` as the reason when it is not NULL. */
static void assert_refused_head(const char *s, bool head, const char *want)
{
    int r = parse_full(s, strlen(s), &g_lim, head);
    if (r != HTTP_PARSE_ERROR || (want && strcmp(g_reason, want) != 0))
        print_error("input: %s (r=%d reason=%s)\n", s, r, g_reason ? g_reason : "-");
    assert_int_equal(r, HTTP_PARSE_ERROR);
    if (want)
        assert_string_equal(g_reason, want);
}

static void assert_refused(const char *s, const char *want)
{
    assert_refused_head(s, false, want);
}

/* Asserts that s is one complete head (nothing after it). */
static void assert_ok_head(const char *s, bool head)
{
    int r = parse_full(s, strlen(s), &g_lim, head);
    if (r != (int)strlen(s))
        print_error("input: %s (r=%d reason=%s)\n", s, r, g_reason ? g_reason : "-");
    assert_int_equal(r, (int)strlen(s));
}

static void assert_ok(const char *s)
{
    assert_ok_head(s, false);
}

static void assert_span(const char *p, size_t n, const char *want)
{
    assert_non_null(p);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(p, want, n);
}

/* ================= framing of valid responses ================= */

static void test_simple_200_length(void **state)
{
    const char *head = "HTTP/1.1 200 OK\r\n"
                       "Content-Type: text/plain\r\n"
                       "Content-Length: 5\r\n"
                       "\r\n";
    char s[256];
    snprintf(s, sizeof(s), "%shello", head);
    assert_int_equal(parse(s), (int)strlen(head));
    assert_int_equal(g_res.status, 200);
    assert_int_equal(g_res.minor_version, 1);
    assert_int_equal(g_res.num_headers, 2);
    assert_span(g_res.headers[0].name, g_res.headers[0].name_len, "Content-Type");
    assert_span(g_res.headers[0].value, g_res.headers[0].value_len, "text/plain");
    assert_span(g_res.headers[1].name, g_res.headers[1].name_len, "Content-Length");
    assert_int_equal(g_res.body_kind, HTTP_RBODY_LENGTH);
    assert_int_equal(g_res.content_length, 5);
    assert_true(g_res.keep_alive);

    /* Identical duplicates are one value (RFC 9110 §8.6); 0 and UINT64_MAX. */
    assert_ok("HTTP/1.1 200 OK\r\nContent-Length: 7\r\ncontent-length:7\r\n\r\n");
    assert_int_equal(g_res.content_length, 7);
    assert_ok("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(g_res.status, 404);
    assert_int_equal(g_res.body_kind, HTTP_RBODY_LENGTH);
    assert_int_equal(g_res.content_length, 0);
    assert_ok("HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n");
    assert_true(g_res.content_length == UINT64_MAX);
}

static void test_chunked(void **state)
{
    static const char *const ok[] = {"chunked", "CHUNKED", "Chunked", "  chunked  ", "\tchunked\t"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        char s[256];
        snprintf(s, sizeof(s), "HTTP/1.1 200 OK\r\nTransfer-Encoding: %s\r\n\r\n", ok[i]);
        assert_ok(s);
        assert_int_equal(g_res.body_kind, HTTP_RBODY_CHUNKED);
        assert_int_equal(g_res.content_length, 0);
        assert_true(g_res.keep_alive);
    }
    const char *s = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    assert_int_equal(parse(s), (int)(strstr(s, "\r\n\r\n") + 4 - s));
    assert_int_equal(g_res.body_kind, HTTP_RBODY_CHUNKED);
}

static void test_close_delimited(void **state)
{
    /* RFC 9112 §6.3 (8): neither header, the body runs to the close. */
    const char *s = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html>";
    assert_int_equal(parse(s), (int)strlen(s) - 6);
    assert_int_equal(g_res.body_kind, HTTP_RBODY_CLOSE);
    assert_false(g_res.keep_alive);
    /* Never keep-alive, whatever Connection says. */
    assert_ok("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n");
    assert_int_equal(g_res.body_kind, HTTP_RBODY_CLOSE);
    assert_false(g_res.keep_alive);
    assert_ok("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n");
    assert_int_equal(g_res.body_kind, HTTP_RBODY_CLOSE);
    assert_false(g_res.keep_alive);
    assert_ok("HTTP/1.0 500 Oops\r\n\r\n");
    assert_int_equal(g_res.body_kind, HTTP_RBODY_CLOSE);
    assert_int_equal(g_res.minor_version, 0);
    assert_int_equal(g_res.num_headers, 0);
}

static void test_http10_keep_alive(void **state)
{
    assert_ok("HTTP/1.0 200 OK\r\nContent-Length: 3\r\nConnection: Keep-Alive\r\n\r\n");
    assert_int_equal(g_res.minor_version, 0);
    assert_int_equal(g_res.body_kind, HTTP_RBODY_LENGTH);
    assert_true(g_res.keep_alive);
    assert_ok("HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n");
    assert_false(g_res.keep_alive);
    assert_ok("HTTP/1.0 200 OK\r\nConnection: foo\r\nConnection: , keep-alive \r\n"
              "Content-Length: 3\r\n\r\n");
    assert_true(g_res.keep_alive);
    assert_ok("HTTP/1.0 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 3\r\n\r\n");
    assert_false(g_res.keep_alive);
    assert_ok("HTTP/1.0 200 OK\r\nKeep-Alive: timeout=5\r\nContent-Length: 3\r\n\r\n");
    assert_false(g_res.keep_alive);
}

static void test_connection_close(void **state)
{
    assert_ok("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    assert_int_equal(g_res.body_kind, HTTP_RBODY_LENGTH);
    assert_false(g_res.keep_alive);
    assert_ok("HTTP/1.1 200 OK\r\nConnection: Upgrade, CLOSE\r\nContent-Length: 0\r\n\r\n");
    assert_false(g_res.keep_alive);
    assert_ok("HTTP/1.1 200 OK\r\nConnection: x\r\nconnection:\tclose\t\r\n"
              "Transfer-Encoding: chunked\r\n\r\n");
    assert_int_equal(g_res.body_kind, HTTP_RBODY_CHUNKED);
    assert_false(g_res.keep_alive);
    assert_ok("HTTP/1.1 200 OK\r\nConnection: closed\r\nContent-Length: 0\r\n\r\n");
    assert_true(g_res.keep_alive);
    assert_ok("HTTP/1.1 200 OK\r\nX-Connection: close\r\nContent-Length: 0\r\n\r\n");
    assert_true(g_res.keep_alive);
}

/* RFC 9112 §6.3 (1): 1xx, 204, 304 and answers to HEAD never have a body. */
static void test_no_body(void **state)
{
    assert_ok("HTTP/1.1 204 No Content\r\n\r\n");
    assert_int_equal(g_res.body_kind, HTTP_RBODY_NONE);
    assert_true(g_res.keep_alive);
    assert_ok("HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n");
    assert_int_equal(g_res.body_kind, HTTP_RBODY_NONE);
    assert_int_equal(g_res.content_length, 0);
    assert_ok("HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\nETag: \"x\"\r\n\r\n");
    assert_int_equal(g_res.status, 304);
    assert_int_equal(g_res.body_kind, HTTP_RBODY_NONE);
    assert_int_equal(g_res.content_length, 0);
    assert_true(g_res.keep_alive);
    assert_ok("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_int_equal(g_res.body_kind, HTTP_RBODY_NONE);
    assert_ok("HTTP/1.0 304 Not Modified\r\n\r\n");
    assert_int_equal(g_res.body_kind, HTTP_RBODY_NONE);
    assert_false(g_res.keep_alive);

    /* HEAD: the framing headers describe the GET answer, no body follows. */
    assert_ok_head("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", true);
    assert_int_equal(g_res.body_kind, HTTP_RBODY_NONE);
    assert_true(g_res.keep_alive);
    assert_ok_head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true);
    assert_int_equal(g_res.body_kind, HTTP_RBODY_NONE);
    assert_ok_head("HTTP/1.1 200 OK\r\n\r\n", true);
    assert_int_equal(g_res.body_kind, HTTP_RBODY_NONE);
    assert_true(g_res.keep_alive); /* not close-delimited: nothing to read */
    assert_ok_head("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", true);
    assert_false(g_res.keep_alive);
}

static void test_informational(void **state)
{
    /* A 1xx head is returned alone; the final answer follows it. */
    const char *first = "HTTP/1.1 100 Continue\r\n\r\n";
    const char *second = "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n";
    const char *final = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    char s[512];
    snprintf(s, sizeof(s), "%s%s%s", first, second, final);
    size_t n = strlen(s), off = 0;

    assert_int_equal(parse_n(s, n), (int)strlen(first));
    assert_int_equal(g_res.status, 100);
    assert_int_equal(g_res.body_kind, HTTP_RBODY_NONE);
    off += strlen(first);
    assert_int_equal(parse_n(s + off, n - off), (int)strlen(second));
    assert_int_equal(g_res.status, 103);
    assert_int_equal(g_res.body_kind, HTTP_RBODY_NONE);
    assert_span(g_res.headers[0].value, g_res.headers[0].value_len, "</a.css>; rel=preload");
    off += strlen(second);
    assert_int_equal(parse_n(s + off, n - off), (int)strlen(final) - 2);
    assert_int_equal(g_res.status, 200);
    assert_int_equal(g_res.body_kind, HTTP_RBODY_LENGTH);

    /* A 1xx with Content-Length still has no body. After 101 the connection
     * no longer speaks HTTP, so it cannot carry another request. */
    assert_ok("HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\n");
    assert_int_equal(g_res.body_kind, HTTP_RBODY_NONE);
    assert_ok("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
              "Connection: Upgrade\r\n\r\n");
    assert_int_equal(g_res.body_kind, HTTP_RBODY_NONE);
    assert_false(g_res.keep_alive);
}

/* Bodiless answers still may not carry ambiguous framing. */
static void test_no_body_still_checks_framing(void **state)
{
    assert_refused("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n",
                   "both Content-Length and Transfer-Encoding");
    assert_refused("HTTP/1.1 304 Not Modified\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                   "conflicting Content-Length values");
    assert_refused("HTTP/1.1 100 Continue\r\nContent-Length: x\r\n\r\n",
                   "invalid Content-Length");
    assert_refused("HTTP/1.0 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n",
                   "Transfer-Encoding in HTTP/1.0");
    assert_refused_head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                        true, "both Content-Length and Transfer-Encoding");
    assert_refused_head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", true,
                        "Transfer-Encoding other than chunked");
    assert_refused_head("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n", true,
                        "invalid Content-Length");
}

/* ================= status line ================= */

static void test_status_line(void **state)
{
    assert_ok("HTTP/1.1 200 OK\r\n\r\n");
    /* RFC 9112 §4: the reason may be empty, after its SP... */
    assert_ok("HTTP/1.1 200 \r\n\r\n");
    assert_int_equal(g_res.status, 200);
    /* ...and servers also leave out the SP. */
    assert_ok("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(g_res.status, 200);
    assert_int_equal(g_res.num_headers, 1);
    /* Reason bytes: HTAB, SP, VCHAR, obs-text. */
    assert_ok("HTTP/1.1 404 Not  Found \t!\r\n\r\n");
    assert_ok("HTTP/1.1 200 D\xc3\xa9j\xc3\xa0 vu\r\n\r\n");
    assert_ok("HTTP/1.1 200 HTTP/1.1 200 OK\r\n\r\n");
    assert_ok("HTTP/1.1 100\r\n\r\n");
    assert_int_equal(g_res.status, 100);
    assert_ok("HTTP/1.1 599 Whatever\r\n\r\n");
    assert_int_equal(g_res.status, 599);

    assert_refused("HTTP/1.1 200 O\x01K\r\n\r\n", "control character in reason phrase");
    assert_refused("HTTP/1.1 200 O\x7fK\r\n\r\n", "control character in reason phrase");
    static const char nul[] = "HTTP/1.1 200 O\0K\r\n\r\n";
    assert_int_equal(parse_n(nul, sizeof(nul) - 1), HTTP_PARSE_ERROR);
    assert_refused("HTTP/1.1 200 OK\n\r\n", "bare LF");
    assert_refused("HTTP/1.1 200\n\r\n", "bare LF");
    assert_refused("HTTP/1.1 200 OK\rX: y\r\n\r\n", "bare CR");
    assert_refused("HTTP/1.1 200OK\r\n\r\n", "malformed status line");
    assert_refused("HTTP/1.1 200\tOK\r\n\r\n", "malformed status line");
    assert_refused("HTTP/1.1  200 OK\r\n\r\n", "malformed status code");
    assert_refused("HTTP/1.1\t200 OK\r\n\r\n", "malformed status line");
    assert_refused("HTTP/1.1\r\n\r\n", "malformed status line");
    assert_refused(" HTTP/1.1 200 OK\r\n\r\n", "malformed HTTP version");
    /* No empty lines before the status line (RFC 9112 §2.2 allows that to
     * servers reading requests only). */
    assert_refused("\r\nHTTP/1.1 200 OK\r\n\r\n", "malformed HTTP version");
}

static void test_bad_status(void **state)
{
    static const struct {
        const char *line;
        const char *reason;
    } bad[] = {
        {"HTTP/1.1 20 OK", "malformed status code"},
        {"HTTP/1.1 20\r\n", "malformed status code"},
        {"HTTP/1.1 2000 OK", "malformed status code"},
        {"HTTP/1.1 2000", "malformed status code"},
        {"HTTP/1.1 099 Low", "status code out of range"},
        {"HTTP/1.1 000 Zero", "status code out of range"},
        {"HTTP/1.1 600 High", "status code out of range"},
        {"HTTP/1.1 999 High", "status code out of range"},
        {"HTTP/1.1 OK 200", "malformed status code"},
        {"HTTP/1.1 2OO OK", "malformed status code"},
        {"HTTP/1.1 abc OK", "malformed status code"},
        {"HTTP/1.1 -20 OK", "malformed status code"},
        {"HTTP/1.1 +200 OK", "malformed status code"},
        {"HTTP/1.1  OK", "malformed status code"},
        {"HTTP/1.1 \xd9\xa2\xd9\xa0\xd9\xa0 OK", "malformed status code"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char s[256];
        snprintf(s, sizeof(s), "%s\r\nContent-Length: 0\r\n\r\n", bad[i].line);
        assert_refused(s, bad[i].reason);
    }
}

static void test_bad_version(void **state)
{
    static const struct {
        const char *line;
        const char *reason;
    } bad[] = {
        {"HTTP/2.0 200 OK", "HTTP version not supported"},
        {"HTTP/2 200 OK", "malformed HTTP version"},
        {"HTTP/1.2 200 OK", "HTTP version not supported"},
        {"HTTP/0.9 200 OK", "HTTP version not supported"},
        {"HTTP/3.0 200 OK", "HTTP version not supported"},
        {"HTTP/1.9 200 OK", "HTTP version not supported"},
        {"http/1.1 200 OK", "malformed HTTP version"},
        {"Http/1.1 200 OK", "malformed HTTP version"},
        {"HTTP/11 200 OK", "malformed HTTP version"},
        {"HTTP/1.10 200 OK", "malformed status line"},
        {"HTTP/1 200 OK", "malformed HTTP version"},
        {"HTTP/a.b 200 OK", "malformed HTTP version"},
        {"HTTPS/1.1 200 OK", "malformed HTTP version"},
        {"ICY 200 OK", "malformed HTTP version"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char s[256];
        snprintf(s, sizeof(s), "%s\r\nContent-Length: 0\r\n\r\n", bad[i].line);
        assert_refused(s, bad[i].reason);
    }
    assert_ok("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(g_res.minor_version, 0);
}

/* ================= field syntax ================= */

static void test_bare_lf_and_cr(void **state)
{
    assert_refused("HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n", "bare LF");
    assert_refused("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n", "bare LF");
    assert_refused("HTTP/1.1 200 OK\r\nX: a\nb\r\n\r\n", "bare LF");
    assert_refused("HTTP/1.1 200 OK\r\n\n", "bare LF");
    assert_refused("HTTP/1.1 200 OK\r\nX: a\rY: b\r\n\r\n", "bare CR");
    assert_refused("HTTP/1.1 200 OK\r\nX: a\r\n\rX\r\n", "bare CR");
    assert_refused("HTTP/1.1 200 OK\r\nX: a\r\r\n\r\n", "bare CR");
}

static void test_obs_fold(void **state)
{
    /* RFC 9112 §5.2: a user agent may replace obs-fold; strict here, refused. */
    assert_refused("HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n",
                   "obsolete line folding");
    assert_refused("HTTP/1.1 200 OK\r\nX: a\r\n\tb\r\n\r\n", "obsolete line folding");
    /* Whitespace before the first field line. */
    assert_refused("HTTP/1.1 200 OK\r\n Content-Length: 0\r\n\r\n", "obsolete line folding");
}

static void test_field_names(void **state)
{
    /* RFC 9112 §5.1: no whitespace between name and colon. */
    assert_refused("HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", "whitespace before colon");
    assert_refused("HTTP/1.1 200 OK\r\nContent-Length\t: 0\r\n\r\n", "whitespace before colon");
    assert_refused("HTTP/1.1 200 OK\r\n: empty-name\r\n\r\n", "empty field name");
    assert_refused("HTTP/1.1 200 OK\r\nX(y): a\r\n\r\n", "invalid field name");
    assert_refused("HTTP/1.1 200 OK\r\nX-No-Colon\r\n\r\n", "invalid field name");
    assert_refused("HTTP/1.1 200 OK\r\nX\xc3\xa9: a\r\n\r\n", "invalid field name");
    assert_ok("HTTP/1.1 200 OK\r\nX-!#$%&'*+-.^_`|~09az: v\r\nContent-Length: 0\r\n\r\n");
}

static void test_control_bytes(void **state)
{
    static const char bad[] = {0x00, 0x01, 0x08, 0x0b, 0x0c, 0x1b, 0x1f, 0x7f};
    for (size_t i = 0; i < sizeof(bad); i++) {
        char s[128];
        int n;
        /* In a value, at both word positions of the 8-byte scanner. */
        for (int pad = 0; pad < 10; pad++) {
            n = snprintf(s, sizeof(s), "HTTP/1.1 200 OK\r\nX: %.*s", pad, "abcdefghij");
            s[n++] = bad[i];
            memcpy(s + n, "b\r\nContent-Length: 0\r\n\r\n", 24);
            n += 24;
            assert_int_equal(parse_n(s, (size_t)n), HTTP_PARSE_ERROR);
            assert_string_equal(g_reason, "control character in field value");
        }
        /* In a field name. */
        n = snprintf(s, sizeof(s), "HTTP/1.1 200 OK\r\nX");
        s[n++] = bad[i];
        memcpy(s + n, "Y: b\r\n\r\n", 8);
        n += 8;
        assert_int_equal(parse_n(s, (size_t)n), HTTP_PARSE_ERROR);
    }
    /* HTAB and obs-text are value bytes. */
    assert_ok("HTTP/1.1 200 OK\r\nX: a\tb\xff\x80\r\nContent-Length: 0\r\n\r\n");
    assert_span(g_res.headers[0].value, g_res.headers[0].value_len, "a\tb\xff\x80");
}

static void test_ows_trimmed(void **state)
{
    assert_ok("HTTP/1.1 200 OK\r\nX-A:  a b \t\r\nX-B:\t\r\nX-C:c\r\nX-D:   \r\n"
              "Content-Length: \t 42 \t\r\n\r\n");
    assert_int_equal(g_res.num_headers, 5);
    assert_span(g_res.headers[0].value, g_res.headers[0].value_len, "a b");
    assert_int_equal(g_res.headers[1].value_len, 0);
    assert_span(g_res.headers[2].value, g_res.headers[2].value_len, "c");
    assert_int_equal(g_res.headers[3].value_len, 0);
    assert_span(g_res.headers[4].value, g_res.headers[4].value_len, "42");
    assert_int_equal(g_res.body_kind, HTTP_RBODY_LENGTH);
    assert_int_equal(g_res.content_length, 42);
}

/* ================= framing refusals (RFC 9112 §6.3, §11.2) ================= */

static void test_content_length_refused(void **state)
{
    assert_refused("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                   "conflicting Content-Length values");
    static const char *const bad[] = {
        "+5",
        "-5",
        "5a",
        "0x5",
        "5 5",
        "5,5",
        "5, 5",
        "5,",
        ",5",
        "",
        "99999999999999999999",
        "18446744073709551616",
        "\xd9\xa5",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char s[256];
        snprintf(s, sizeof(s), "HTTP/1.1 200 OK\r\nContent-Length: %s\r\n\r\n", bad[i]);
        assert_refused(s, "invalid Content-Length");
    }
}

static void test_cl_and_te(void **state)
{
    assert_refused("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                   "both Content-Length and Transfer-Encoding");
    assert_refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
                   "both Content-Length and Transfer-Encoding");
}

static void test_transfer_encoding_refused(void **state)
{
    static const char *const bad[] = {
        "gzip",     "gzip, chunked", "chunked, gzip", "chunked, chunked", "chunked,chunked",
        "chunked,", ", chunked",     "identity",      "chunked;x=1",      "xchunked",
        "chu nked", "\"chunked\"",   "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char s[256];
        snprintf(s, sizeof(s), "HTTP/1.1 200 OK\r\nTransfer-Encoding: %s\r\n\r\n", bad[i]);
        assert_refused(s, "Transfer-Encoding other than chunked");
    }
    /* Two field lines, even both "chunked". */
    assert_refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n",
                   "repeated Transfer-Encoding");
    /* RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 is faulty framing. */
    assert_refused("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                   "Transfer-Encoding in HTTP/1.0");
}

/* ================= truncation ================= */

/* Every proper prefix of a valid head is "incomplete" and reads nothing past
 * its end; the whole head (with or without a body after it) gives its length. */
static void test_incomplete_every_prefix(void **state)
{
    static const char *const heads[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
        "HTTP/1.1 200\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 204 \r\n\r\n",
        "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 12345\r\n"
        "content-length: 12345\r\n\r\n",
        "HTTP/1.1 404 Not\tFound \xc3\xa9\r\nX-Tab:\ta\tb\t\r\nX-Empty:\r\nX:   \r\n"
        "X-Long: 0123456789abcdefghijklmnopqrstuvwxyz\r\nConnection: close\r\n\r\n",
        "HTTP/1.1 100 Continue\r\n\r\n",
        "HTTP/1.1 304 Not Modified\r\nETag: \"abc\"\r\nContent-Length: 99\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
        size_t n = strlen(heads[i]);
        for (int head = 0; head < 2; head++) {
            for (size_t k = 0; k < n; k++) {
                int r = parse_full(heads[i], k, &g_lim, head);
                if (r != HTTP_PARSE_INCOMPLETE)
                    print_error("head %zu cut at %zu: r=%d reason=%s\n", i, k, r,
                                g_reason ? g_reason : "-");
                assert_int_equal(r, HTTP_PARSE_INCOMPLETE);
            }
            assert_int_equal(parse_full(heads[i], n, &g_lim, head), (int)n);
        }
        char s[512];
        snprintf(s, sizeof(s), "%sHTTP/1.1 200 OK\r\n", heads[i]);
        assert_int_equal(parse(s), (int)n);
    }
}

/* Errors are final: more bytes after a refused prefix do not change the verdict. */
static void test_error_is_sticky(void **state)
{
    const char *s = "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n";
    for (size_t k = strlen("HTTP/1.1 200 OK\r\nContent-Length "); k <= strlen(s); k++) {
        assert_int_equal(parse_n(s, k), HTTP_PARSE_ERROR);
        assert_string_equal(g_reason, "whitespace before colon");
    }
    const char *t = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_int_equal(parse_n(t, strlen(t) - 3), HTTP_PARSE_INCOMPLETE);
    for (size_t k = strlen(t) - 2; k <= strlen(t); k++) {
        assert_int_equal(parse_n(t, k), HTTP_PARSE_ERROR);
        assert_string_equal(g_reason, "both Content-Length and Transfer-Encoding");
    }
}

/* ================= limits ================= */

static void test_limit_head_bytes(void **state)
{
    const char *s = "HTTP/1.1 200 OK\r\nX-Pad: 0123456789\r\nContent-Length: 0\r\n\r\n";
    size_t n = strlen(s);
    struct http_limits lim = g_lim;

    lim.max_header_bytes = n; /* exactly at the limit (final CRLF included): accepted */
    assert_int_equal(parse_full(s, n, &lim, false), (int)n);
    lim.max_header_bytes = n - 1;
    assert_int_equal(parse_full(s, n, &lim, false), HTTP_PARSE_ERROR);
    assert_string_equal(g_reason, "response head too large");

    /* Incomplete but already past the limit: refused without waiting. */
    lim.max_header_bytes = 20;
    assert_int_equal(parse_full(s, 21, &lim, false), HTTP_PARSE_ERROR);
    assert_string_equal(g_reason, "response head too large");
    assert_int_equal(parse_full(s, 20, &lim, false), HTTP_PARSE_INCOMPLETE);
    /* A malformed byte inside the window is reported as such. */
    assert_int_equal(parse_full("HTTP/1.1 200 OK\r\nX : aaaaaaaaaaaaaaaaaaaa", 40, &lim, false),
                     HTTP_PARSE_ERROR);
    assert_string_equal(g_reason, "whitespace before colon");

    /* An endless header value, and an endless status line. */
    static char big[9000];
    memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
    memset(big + 20, 'a', sizeof(big) - 20);
    assert_int_equal(parse_n(big, sizeof(big)), HTTP_PARSE_ERROR);
    assert_string_equal(g_reason, "response head too large");
    assert_int_equal(parse_n(big, 8192), HTTP_PARSE_INCOMPLETE);
    memcpy(big, "HTTP/1.1 200 ", 13);
    memset(big + 13, 'b', sizeof(big) - 13);
    assert_int_equal(parse_n(big, sizeof(big)), HTTP_PARSE_ERROR);
    assert_string_equal(g_reason, "response head too large");
}

static void test_limit_header_count(void **state)
{
    struct http_limits lim = g_lim;
    const char *three = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nContent-Length: 0\r\n\r\n";
    const char *four = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nContent-Length: 0\r\n\r\n";

    lim.max_headers = 3;
    assert_int_equal(parse_full(three, strlen(three), &lim, false), (int)strlen(three));
    assert_int_equal(g_res.num_headers, 3);
    assert_int_equal(parse_full(four, strlen(four), &lim, false), HTTP_PARSE_ERROR);
    assert_string_equal(g_reason, "too many header fields");
    /* Refused as soon as the 4th field line starts. */
    size_t at = strlen("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nC");
    assert_int_equal(parse_full(four, at, &lim, false), HTTP_PARSE_ERROR);
    assert_string_equal(g_reason, "too many header fields");
    assert_int_equal(parse_full(four, at - 1, &lim, false), HTTP_PARSE_INCOMPLETE);

    lim.max_headers = 0;
    assert_int_equal(parse_full("HTTP/1.1 204 OK\r\n\r\n", 19, &lim, false), 19);
    assert_int_equal(parse_full("HTTP/1.1 204 OK\r\nA", 18, &lim, false), HTTP_PARSE_ERROR);

    /* A configured limit above the array size is clamped to it. */
    static char s[8192];
    size_t n = 0;
    memcpy(s, "HTTP/1.1 204 OK\r\n", 17);
    n = 17;
    for (int i = 0; i < HTTP_MAX_HEADERS_HARD; i++) {
        memcpy(s + n, "X-A: a\r\n", 8);
        n += 8;
    }
    memcpy(s + n, "\r\n", 2);
    lim.max_headers = 100000;
    lim.max_header_bytes = sizeof(s);
    assert_int_equal(parse_full(s, n + 2, &lim, false), (int)n + 2);
    assert_int_equal(g_res.num_headers, HTTP_MAX_HEADERS_HARD);
    memcpy(s + n, "X-A: a\r\n\r\n", 10);
    assert_int_equal(parse_full(s, n + 10, &lim, false), HTTP_PARSE_ERROR);
    assert_string_equal(g_reason, "too many header fields");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_200_length),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_close_delimited),
        cmocka_unit_test(test_http10_keep_alive),
        cmocka_unit_test(test_connection_close),
        cmocka_unit_test(test_no_body),
        cmocka_unit_test(test_informational),
        cmocka_unit_test(test_no_body_still_checks_framing),
        cmocka_unit_test(test_status_line),
        cmocka_unit_test(test_bad_status),
        cmocka_unit_test(test_bad_version),
        cmocka_unit_test(test_bare_lf_and_cr),
        cmocka_unit_test(test_obs_fold),
        cmocka_unit_test(test_field_names),
        cmocka_unit_test(test_control_bytes),
        cmocka_unit_test(test_ows_trimmed),
        cmocka_unit_test(test_content_length_refused),
        cmocka_unit_test(test_cl_and_te),
        cmocka_unit_test(test_transfer_encoding_refused),
        cmocka_unit_test(test_incomplete_every_prefix),
        cmocka_unit_test(test_error_is_sticky),
        cmocka_unit_test(test_limit_head_bytes),
        cmocka_unit_test(test_limit_header_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
