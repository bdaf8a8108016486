/*
 * fuzz_http_request.c — libFuzzer driver for http_parse_request.
 *
 * Beyond "no crash, no over-read" (libFuzzer hands us a buffer of exactly
 * `size` bytes, so ASan sees any read past it), it checks the parser's
 * contract and aborts when it breaks:
 * - a result is > 0 (head length <= size), -2, or -1 with a known status;
 * - every returned span lies inside the head; names are tokens; values hold
 *   no CR/LF/NUL and carry no leading/trailing OWS; the path starts with '/';
 * - monotonicity: a prefix that already gives a verdict (not -2) gives the
 *   same verdict as the whole input, and a complete head cut one byte short
 *   is -2; re-parsing the head alone returns its length again.
 * Each input runs under two limit sets: roomy, and tight enough that the
 * 431/414 paths are reached by short inputs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"

static struct http_request g_req; /* ~8 KiB: kept off the stack */

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static int is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static void check_span(const char *buf, int head, const char *p, size_t n)
{
    CHECK(p >= buf && p + n <= buf + head);
}

static void check_request(const char *buf, int head, const struct http_limits *lim)
{
    const struct http_request *r = &g_req;

    check_span(buf, head, r->method, r->method_len);
    CHECK(r->method_len > 0);
    for (size_t i = 0; i < r->method_len; i++)
        CHECK(is_tchar((unsigned char)r->method[i]));
    check_span(buf, head, r->target, r->target_len);
    CHECK(r->target_len > 0 && r->target[0] == '/' && r->target_len <= lim->max_url_bytes);
    CHECK(r->path == r->target && r->path_len <= r->target_len);
    if (r->query) {
        CHECK(r->query == r->path + r->path_len + 1 && r->path[r->path_len] == '?');
        CHECK(r->path_len + 1 + r->query_len == r->target_len);
    } else {
        CHECK(r->path_len == r->target_len);
    }
    CHECK(r->minor_version == 0 || r->minor_version == 1);
    CHECK(r->num_headers <= lim->max_headers && r->num_headers <= HTTP_MAX_HEADERS_HARD);
    for (size_t i = 0; i < r->num_headers; i++) {
        const struct http_header *h = &r->headers[i];
        check_span(buf, head, h->name, h->name_len);
        check_span(buf, head, h->value, h->value_len);
        CHECK(h->name_len > 0);
        for (size_t j = 0; j < h->name_len; j++)
            CHECK(is_tchar((unsigned char)h->name[j]));
        for (size_t j = 0; j < h->value_len; j++)
            CHECK(h->value[j] != '\r' && h->value[j] != '\n' && h->value[j] != '\0');
        if (h->value_len) {
            CHECK(h->value[0] != ' ' && h->value[0] != '\t');
            CHECK(h->value[h->value_len - 1] != ' ' && h->value[h->value_len - 1] != '\t');
        }
    }
    if (r->minor_version == 1)
        CHECK(r->host != NULL);
    if (r->host)
        check_span(buf, head, r->host, r->host_len);
    CHECK(r->body_kind == HTTP_BODY_NONE || r->body_kind == HTTP_BODY_LENGTH ||
          r->body_kind == HTTP_BODY_CHUNKED);
    CHECK(r->body_kind != HTTP_BODY_CHUNKED || r->minor_version == 1);
    CHECK(!r->expect_continue || r->minor_version == 1);
    CHECK(memcmp(buf + head - 2, "\r\n", 2) == 0);
}

static int parse(const char *buf, size_t len, const struct http_limits *lim, int *status)
{
    const char *reason = NULL;
    *status = 0;
    int r = http_parse_request(buf, len, lim, &g_req, status, &reason);
    CHECK(r > 0 || r == HTTP_PARSE_INCOMPLETE || r == HTTP_PARSE_ERROR);
    if (r > 0)
        CHECK((size_t)r <= len);
    if (r == HTTP_PARSE_ERROR) {
        CHECK(reason != NULL);
        CHECK(*status == 400 || *status == 414 || *status == 431 || *status == 501 ||
              *status == 505);
    }
    return r;
}

/* A cheap, deterministic cut point taken from the input itself. */
static size_t cut_of(const uint8_t *data, size_t size)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 16777619u;
    return size ? h % size : 0;
}

static void run(const uint8_t *data, size_t size, const struct http_limits *lim)
{
    const char *buf = (const char *)data;
    int st, st2;
    int r = parse(buf, size, lim, &st);
    if (r > 0) {
        check_request(buf, r, lim);
        CHECK(parse(buf, (size_t)r, lim, &st2) == r);
        CHECK(parse(buf, (size_t)r - 1, lim, &st2) == HTTP_PARSE_INCOMPLETE);
    }
    size_t cuts[2] = {cut_of(data, size), size / 2};
    for (int i = 0; i < 2; i++) {
        int rk = parse(buf, cuts[i], lim, &st2);
        if (rk == HTTP_PARSE_INCOMPLETE)
            continue;
        CHECK(rk == r);
        if (rk == HTTP_PARSE_ERROR)
            CHECK(st2 == st);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct http_limits roomy = {65536, 100, 8192};
    static const struct http_limits tight = {96, 4, 24};
    run(data, size, &roomy);
    run(data, size, &tight);
    return 0;
}
