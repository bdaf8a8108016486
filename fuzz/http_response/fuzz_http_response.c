/*
 * fuzz_http_response.c — libFuzzer driver for http_parse_response.
 *
 * The input is what an origin could send on one connection: a response head,
 * its body, and maybe more responses after it. Beyond "no crash", it checks
 * the parser's contract and aborts when it breaks:
 * - a result is > 0 (head length <= size and <= max_header_bytes), -2, or -1
 *   with a reason;
 * - every span lies inside the head; names are tokens; values hold no control
 *   byte but HTAB and carry no leading/trailing OWS; the status, version and
 *   header count agree with the bytes and the limits;
 * - the derived framing agrees with the headers, recomputed here: NONE for
 *   HEAD/1xx/204/304, else CHUNKED, LENGTH or CLOSE; content_length is 0 unless
 *   LENGTH; keep_alive follows Connection and is never true for CLOSE or 101;
 * - the verdict does not depend on head_request, except for the body kind;
 * - monotonicity: every prefix (each copied so it ends the allocation, letting
 *   ASan see a read past it) gives -2 or the whole input's verdict and
 *   reason, and a prefix shorter than a complete head gives -2.
 * After a complete head the rest is followed like a client would: past a 1xx
 * or bodiless answer to the next head, past Content-Length bytes, or through
 * http_chunked_decode (in one piece and in two, which must agree) for a
 * chunked body; a close-delimited body ends the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"

static struct http_response g_res; /* ~8 KiB: kept off the stack */

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

/* Every prefix up to this length is parsed; longer inputs get a few cuts. */
#define PREFIX_CAP 768
/* Responses followed along one input. */
#define MAX_DEPTH 4

static int is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int ieq(const char *s, size_t n, const char *lit)
{
    if (n != strlen(lit))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)s[i]) != lit[i])
            return 0;
    return 1;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Does the Connection value list `opt` (lower case)? */
static int lists(const char *v, size_t n, const char *opt)
{
    size_t i = 0;
    while (i <= n) {
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t a = s, b = i;
        while (a < b && is_ows(v[a]))
            a++;
        while (b > a && is_ows(v[b - 1]))
            b--;
        if (ieq(v + a, b - a, opt))
            return 1;
        i++;
    }
    return 0;
}

static int all_digits_value(const char *v, size_t n, uint64_t *out)
{
    uint64_t x = 0;
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return 0;
        uint64_t d = (uint64_t)(v[i] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return 0;
        x = x * 10 + d;
    }
    *out = x;
    return 1;
}

/* The invariants of a complete head buf[0..head). */
static void check_response(const char *buf, int head, const struct http_limits *lim, bool head_req)
{
    const struct http_response *r = &g_res;
    size_t max_headers = lim->max_headers < HTTP_MAX_HEADERS_HARD ? lim->max_headers
                                                                    : HTTP_MAX_HEADERS_HARD;

    CHECK(head >= 16 && (size_t)head <= lim->max_header_bytes);
    CHECK(memcmp(buf, "HTTP/1.", 7) == 0 && memcmp(buf + head - 4, "\r\n\r\n", 4) == 0);
    CHECK(r->minor_version == buf[7] - '0' && (r->minor_version == 0 || r->minor_version == 1));
    CHECK(r->status >= 100 && r->status <= 599);
    CHECK(r->status == (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0'));
    CHECK(buf[8] == ' ' && (buf[12] == ' ' || buf[12] == '\r'));
    CHECK(r->num_headers <= max_headers);

    int cl = 0, te = 0, conn_close = 0, conn_ka = 0;
    uint64_t cl_value = 0;
    for (size_t i = 0; i < r->num_headers; i++) {
        const struct http_header *h = &r->headers[i];
        CHECK(h->name > buf + 12 && h->name + h->name_len <= buf + head);
        CHECK(h->value >= h->name + h->name_len && h->value + h->value_len <= buf + head);
        CHECK(h->name_len > 0 && h->name[h->name_len] == ':');
        if (i > 0)
            CHECK(h->name > r->headers[i - 1].value + r->headers[i - 1].value_len);
        for (size_t j = 0; j < h->name_len; j++)
            CHECK(is_tchar((unsigned char)h->name[j]));
        for (size_t j = 0; j < h->value_len; j++) {
            unsigned char c = (unsigned char)h->value[j];
            CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
        }
        if (h->value_len) {
            CHECK(!is_ows(h->value[0]) && !is_ows(h->value[h->value_len - 1]));
        }
        if (ieq(h->name, h->name_len, "content-length")) {
            uint64_t v;
            CHECK(all_digits_value(h->value, h->value_len, &v));
            CHECK(!cl || v == cl_value);
            cl_value = v;
            cl++;
        } else if (ieq(h->name, h->name_len, "transfer-encoding")) {
            CHECK(ieq(h->value, h->value_len, "chunked"));
            te++;
        } else if (ieq(h->name, h->name_len, "connection")) {
            conn_close |= lists(h->value, h->value_len, "close");
            conn_ka |= lists(h->value, h->value_len, "keep-alive");
        }
    }
    CHECK(!(cl && te) && te <= 1);
    CHECK(!te || r->minor_version == 1);

    enum http_resp_body want;
    if (head_req || r->status < 200 || r->status == 204 || r->status == 304)
        want = HTTP_RBODY_NONE;
    else if (te)
        want = HTTP_RBODY_CHUNKED;
    else if (cl)
        want = HTTP_RBODY_LENGTH;
    else
        want = HTTP_RBODY_CLOSE;
    CHECK(r->body_kind == want);
    CHECK(r->content_length == (want == HTTP_RBODY_LENGTH ? cl_value : 0));

    bool ka = r->minor_version == 1 ? !conn_close : (conn_ka && !conn_close);
    if (want == HTTP_RBODY_CLOSE || r->status == 101)
        ka = false;
    CHECK(r->keep_alive == ka);
}

struct verdict {
    int r;
    const char *reason;
};

static int same(struct verdict a, struct verdict b)
{
    if (a.r != b.r)
        return 0;
    return a.r != HTTP_PARSE_ERROR || strcmp(a.reason, b.reason) == 0;
}

static struct verdict parse(const char *buf, size_t len, const struct http_limits *lim,
                            bool head_req)
{
    struct verdict v = {0, NULL};
    v.r = http_parse_response(buf, len, lim, head_req, &g_res, &v.reason);
    CHECK(v.r > 0 || v.r == HTTP_PARSE_INCOMPLETE || v.r == HTTP_PARSE_ERROR);
    if (v.r > 0) {
        CHECK((size_t)v.r <= len);
        check_response(buf, v.r, lim, head_req);
    }
    if (v.r == HTTP_PARSE_ERROR)
        CHECK(v.reason != NULL && v.reason[0] != '\0');
    return v;
}

/* Parses data[0..k) from a copy that ends its allocation (`scratch` holds at
 * least `size` bytes), so a read past k is an ASan error. */
static struct verdict parse_prefix(const uint8_t *data, size_t k, char *scratch, size_t size,
                                   const struct http_limits *lim)
{
    char *p = scratch + size - k;
    memcpy(p, data, k);
    return parse(p, k, lim, false);
}

static size_t cut_of(const uint8_t *data, size_t size)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 16777619u;
    return size ? h % size : 0;
}

/* Decodes a chunked body in one piece and in two; both must agree. Returns
 * the bytes consumed when the body is complete, or -1. */
static ssize_t run_chunked(const char *in, size_t size)
{
    char *o1 = malloc(size + 1), *o2 = malloc(size + 1);
    struct http_chunked d1, d2;
    size_t got1 = 0, got2a = 0, got2b = 0;
    size_t cut = cut_of((const uint8_t *)in, size);

    http_chunked_init(&d1);
    ssize_t r1 = http_chunked_decode(&d1, in, size, o1, &got1);
    if (r1 >= 0)
        CHECK((size_t)r1 <= size && got1 <= (size_t)r1 && (d1.done || (size_t)r1 == size));

    http_chunked_init(&d2);
    ssize_t r2 = http_chunked_decode(&d2, in, cut, o2, &got2a);
    if (r2 >= 0 && !d2.done) {
        CHECK((size_t)r2 == cut);
        ssize_t r2b = http_chunked_decode(&d2, in + cut, size - cut, o2 + got2a, &got2b);
        r2 = r2b < 0 ? r2b : r2 + r2b;
    }
    CHECK(r1 == r2);
    if (r1 >= 0) {
        CHECK(d1.done == d2.done && got1 == got2a + got2b);
        CHECK(memcmp(o1, o2, got1) == 0);
    }
    ssize_t ret = (r1 >= 0 && d1.done) ? r1 : -1;
    free(o1);
    free(o2);
    return ret;
}

static void run(const uint8_t *data, size_t size, const struct http_limits *lim, int depth)
{
    const char *buf = (const char *)data;
    struct verdict whole = parse(buf, size, lim, false);

    /* head_request changes the body kind only. */
    struct verdict as_head = parse(buf, size, lim, true);
    CHECK(same(whole, as_head));

    /* Prefixes: -2, or the same verdict; never a verdict before a complete head ends. */
    char *scratch = malloc(size ? size : 1);
    size_t upto = whole.r > 0 ? (size_t)whole.r : size;
    size_t every = upto < PREFIX_CAP ? upto : PREFIX_CAP;
    size_t extra[] = {cut_of(data, size), size / 2, upto ? upto - 1 : 0, upto, size,
                      lim->max_header_bytes, lim->max_header_bytes + 1};
    for (size_t n = 0; n < every + sizeof(extra) / sizeof(extra[0]); n++) {
        size_t k = n < every ? n : extra[n - every];
        if (k > size)
            continue;
        struct verdict v = parse_prefix(data, k, scratch, size, lim);
        if (whole.r > 0 && k < (size_t)whole.r)
            CHECK(v.r == HTTP_PARSE_INCOMPLETE);
        else if (v.r != HTTP_PARSE_INCOMPLETE)
            CHECK(same(v, whole));
    }
    free(scratch);

    if (whole.r <= 0 || depth + 1 >= MAX_DEPTH)
        return;
    /* Re-parse for the fields (the prefixes overwrote g_res), then follow the body. */
    struct verdict again = parse(buf, size, lim, false);
    CHECK(same(again, whole));
    size_t off = (size_t)whole.r;
    switch (g_res.body_kind) {
    case HTTP_RBODY_NONE:
        break;
    case HTTP_RBODY_LENGTH:
        if (g_res.content_length > size - off)
            return;
        off += (size_t)g_res.content_length;
        break;
    case HTTP_RBODY_CHUNKED: {
        ssize_t used = run_chunked(buf + off, size - off);
        if (used < 0)
            return;
        off += (size_t)used;
        break;
    }
    case HTTP_RBODY_CLOSE:
        return;
    default:
        CHECK(0);
    }
    if (off < size)
        run(data + off, size - off, lim, depth + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct http_limits roomy = {65536, 100, 0};
    static const struct http_limits tight = {64, 3, 0};
    run(data, size, &roomy, 0);
    run(data, size, &tight, 0);
    return 0;
}
