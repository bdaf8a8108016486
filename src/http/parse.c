/*
 * parse.c — strict, single-pass HTTP/1.x request-head parser (RFC 9112).
 *
 * http_parse_request() walks the head once, left to right, never looking at a
 * byte twice except the few of a header value it trims, and never allocating:
 * every span it returns points into the caller's buffer. Framing headers
 * (Content-Length, Transfer-Encoding, Host, Connection, Expect) are
 * interpreted as soon as their line is complete, so a smuggling attempt is
 * refused without waiting for the rest of the head.
 *
 * Invariants:
 * - No byte at or past buf + min(len, max_header_bytes) is ever read. When the
 *   head does not end inside that window and len passes the limit, the answer
 *   is 431; otherwise "incomplete" (-2).
 * - The answer is a pure function of the bytes seen: once a prefix of the
 *   input gives a result other than -2, every longer input starting with it
 *   gives the same result. Callers can therefore re-parse from the start when
 *   more bytes arrive (the parser keeps no state between calls).
 * - An error is reported only for bytes that are already wrong; a valid head
 *   cut at any byte gives -2, never -1.
 */
#include <limits.h>
#include <string.h>

#include "http/http.h"
#include "http/http_int.h"
#include "util/util.h"

/* Byte classes, see http_int.h: 1 tchar, 2 field value, 4 target, 8 Host. */
const unsigned char http__cc[256] = {
    0,  0,  0,  0,  0,  0,  0,  0,  0,  2,  0,  0,  0,  0,  0,  0,  /* 0x00 */
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0x10 */
    2,  15, 6,  7,  15, 15, 15, 15, 14, 14, 15, 15, 14, 15, 15, 6,  /* 0x20 */
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 14, 14, 6,  14, 6,  6,  /* 0x30 */
    6,  15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, /* 0x40 */
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 14, 6,  14, 7,  15, /* 0x50 */
    7,  15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, /* 0x60 */
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 6,  7,  6,  15, 0,  /* 0x70 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0x80 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0x90 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xa0 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xb0 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xc0 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xd0 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xe0 */
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xf0 */
};

/* ================= request-target scanning ================= */

/* First byte in [p, end) that is not a target byte (or is '?' when stop_q), or
 * end; eight bytes per step like http__scan_value (http_int.h). */
static inline const char *scan_target(const char *p, const char *end, bool stop_q)
{
    while (end - p >= 8) {
        uint64_t x = http__load8(p);
        uint64_t bad = http__has_less(x, 0x21) | (x & HTTP__HIGHS) | http__has_byte(x, 0x7f);
        if (stop_q)
            bad |= http__has_byte(x, '?');
        if (bad)
            break;
        p += 8;
    }
    for (; p < end; p++) {
        if (!http__is((unsigned char)*p, HTTP__TARGET) || (stop_q && *p == '?'))
            return p;
    }
    return p;
}

/* ================= parser state ================= */

struct ctx {
    const char *end; /* scan bound: buf + min(len, max_header_bytes) */
    const struct http_limits *lim;
    struct http_request *req;
    size_t max_headers;
    int status;
    const char *reason;
    bool seen_cl;
    bool seen_te;
    bool seen_host;
    bool conn_close;
    bool conn_keep_alive;
    bool expect_100;
};

#define NEED_MORE HTTP_PARSE_INCOMPLETE

static int fail(struct ctx *c, int status, const char *reason)
{
    c->status = status;
    c->reason = reason;
    return HTTP_PARSE_ERROR;
}

#define IEQ(s, n, lit) http__ieq_lower((s), (n), (lit), sizeof(lit) - 1)
#define NAME_IS(h, lit) IEQ((h)->name, (h)->name_len, lit)

/* ================= request line (RFC 9112 §3) ================= */

/* Parses the request-target (origin-form only, RFC 9112 §3.2.1). */
static int parse_target(struct ctx *c, const char **pp)
{
    struct http_request *req = c->req;
    const char *t = *pp, *end = c->end;

    if (t == end)
        return NEED_MORE;
    /* RFC 9112 §3.2: a gateway only needs origin-form; absolute-form (proxy
     * requests) and asterisk-form (OPTIONS *) are refused. */
    if (*t != '/')
        return fail(c, 400, "request-target must be origin-form");

    /* Scanning stops at max_url_bytes so an endless target is refused with
     * 414 before the whole of it has arrived. */
    size_t room = (size_t)(end - t);
    const char *tlim = room > c->lim->max_url_bytes ? t + c->lim->max_url_bytes : end;
    const char *p = scan_target(t, tlim, true);
    if (p < tlim && *p == '?') {
        req->query = p + 1;
        p = scan_target(p + 1, tlim, false);
    }
    if (p == tlim) {
        if (tlim == end)
            return NEED_MORE;
        if (http__is((unsigned char)*p, HTTP__TARGET))
            return fail(c, 414, "request-target too long");
    }
    req->target = t;
    req->target_len = (size_t)(p - t);
    if (req->query) {
        req->path_len = (size_t)(req->query - 1 - t);
        req->query_len = (size_t)(p - req->query);
    } else {
        req->path_len = req->target_len;
    }
    req->path = t;
    *pp = p;
    return 0;
}

/* Expects the literal `lit` at *pp, byte by byte so a cut input is "need more". */
static int expect_lit(struct ctx *c, const char **pp, const char *lit, size_t n, const char *reason)
{
    const char *p = *pp;
    for (size_t i = 0; i < n; i++, p++) {
        if (p == c->end)
            return NEED_MORE;
        if (*p != lit[i])
            return fail(c, 400, reason);
    }
    *pp = p;
    return 0;
}

static inline bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* HTTP-version = "HTTP/" DIGIT "." DIGIT, then CRLF (RFC 9112 §2.3, §3). */
static int parse_version(struct ctx *c, const char **pp)
{
    const char *p = *pp;
    int r = expect_lit(c, &p, "HTTP/", 5, "malformed HTTP version");
    if (r)
        return r;
    for (int i = 0; i < 3; i++) {
        if (p + i == c->end)
            return NEED_MORE;
        if (i == 1 ? p[i] != '.' : !is_digit(p[i]))
            return fail(c, 400, "malformed HTTP version");
    }
    int major = p[0] - '0', minor = p[2] - '0';
    p += 3;
    r = expect_lit(c, &p, "\r\n", 2, "request line must end with CRLF");
    if (r)
        return r;
    /* The module speaks 1.0 and 1.1 only (http.h); RFC 9110 §15.6.6. */
    if (major != 1 || minor > 1)
        return fail(c, 505, "HTTP version not supported");
    c->req->minor_version = minor;
    *pp = p;
    return 0;
}

static int parse_request_line(struct ctx *c, const char **pp)
{
    struct http_request *req = c->req;
    const char *p = *pp, *end = c->end;

    /* RFC 9112 §2.2: a server SHOULD ignore at least one empty line (CRLF)
     * before the request-line; clients send one after a POST body. They
     * count towards max_header_bytes, which bounds how many are skipped. */
    while (p < end && *p == '\r') {
        if (p + 1 == end)
            return NEED_MORE;
        if (p[1] != '\n')
            return fail(c, 400, "bare CR");
        p += 2;
    }

    /* method = token, then exactly one SP (RFC 9112 §3). */
    const char *m = http__scan_token(p, end);
    if (m == end)
        return NEED_MORE;
    if (*m != ' ' || m == p)
        return fail(c, 400, "malformed method");
    req->method = p;
    req->method_len = (size_t)(m - p);
    p = m + 1;

    int r = parse_target(c, &p);
    if (r)
        return r;
    if (*p != ' ')
        return fail(c, 400, "malformed request-target");
    p++;
    r = parse_version(c, &p);
    if (r)
        return r;
    *pp = p;
    return 0;
}

/* ================= framing headers ================= */

static int on_content_length(struct ctx *c, const struct http_header *h)
{
    struct http_request *req = c->req;
    uint64_t n;

    /* RFC 9112 §6.3 (5), RFC 9110 §8.6: 1*DIGIT only — no sign, no list,
     * no overflow. Anything else makes the framing uncertain. */
    if (!str_to_u64(h->value, h->value_len, &n))
        return fail(c, 400, "invalid Content-Length");
    if (c->seen_te)
        return fail(c, 400, "both Content-Length and Transfer-Encoding");
    if (c->seen_cl && n != req->content_length)
        return fail(c, 400, "conflicting Content-Length values");
    c->seen_cl = true;
    req->content_length = n;
    req->body_kind = HTTP_BODY_LENGTH;
    return 0;
}

/*
 * Status for a Transfer-Encoding other than exactly "chunked": 501 when it is
 * a well-formed list of codings ending in a single "chunked" (we just do not
 * implement the others, RFC 9112 §6.1), 400 otherwise — chunked missing, not
 * final or repeated means the body length cannot be determined (RFC 9112
 * §6.3 (4), §6.1 "MUST NOT apply chunked more than once").
 */
static int te_status(const char *v, size_t n)
{
    size_t chunked = 0, codings = 0;
    bool last_chunked = false;

    for (size_t i = 0; i <= n; i++) {
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        const char *e = v + s;
        size_t el = i - s;
        str_trim_ows(&e, &el);
        if (el == 0)
            continue; /* RFC 9110 §5.6.1: empty list elements are allowed */
        const char *t = http__scan_token(e, e + el);
        if (t == e)
            return 400;
        size_t tl = (size_t)(t - e);
        if (tl < el) {
            while (t < e + el && (*t == ' ' || *t == '\t'))
                t++;
            if (*t != ';') /* transfer-parameter, RFC 9112 §7 */
                return 400;
        }
        last_chunked = tl == el && str_ieq(e, el, "chunked", 7);
        chunked += last_chunked;
        codings++;
    }
    return (chunked == 1 && last_chunked && codings > 1) ? 501 : 400;
}

static int on_transfer_encoding(struct ctx *c, const struct http_header *h)
{
    /* RFC 9112 §6.1: TE in an HTTP/1.0 message means faulty framing. */
    if (c->req->minor_version == 0)
        return fail(c, 400, "Transfer-Encoding in HTTP/1.0");
    if (c->seen_te)
        return fail(c, 400, "repeated Transfer-Encoding");
    if (c->seen_cl)
        return fail(c, 400, "both Content-Length and Transfer-Encoding");
    if (!IEQ(h->value, h->value_len, "chunked")) {
        int st = te_status(h->value, h->value_len);
        return fail(c, st, st == 501 ? "unsupported transfer coding" : "invalid Transfer-Encoding");
    }
    c->seen_te = true;
    c->req->body_kind = HTTP_BODY_CHUNKED;
    return 0;
}

static int on_host(struct ctx *c, const struct http_header *h)
{
    /* RFC 9112 §3.2: more than one Host line, or an invalid value, is 400. */
    if (c->seen_host)
        return fail(c, 400, "duplicate Host");
    for (size_t i = 0; i < h->value_len; i++)
        if (!http__is((unsigned char)h->value[i], HTTP__HOST))
            return fail(c, 400, "invalid Host");
    c->seen_host = true;
    c->req->host = h->value;
    c->req->host_len = h->value_len;
    return 0;
}

/* Interprets the header just stored, dispatching on the name length first. */
static int on_header(struct ctx *c, const struct http_header *h)
{
    switch (h->name_len) {
    case 4:
        return NAME_IS(h, "host") ? on_host(c, h) : 0;
    case 6:
        if (NAME_IS(h, "expect") && IEQ(h->value, h->value_len, "100-continue"))
            c->expect_100 = true;
        return 0;
    case 10:
        if (NAME_IS(h, "connection"))
            http__connection_options(h, &c->conn_close, &c->conn_keep_alive);
        return 0;
    case 14:
        return NAME_IS(h, "content-length") ? on_content_length(c, h) : 0;
    case 17:
        return NAME_IS(h, "transfer-encoding") ? on_transfer_encoding(c, h) : 0;
    default:
        return 0;
    }
}

/* ================= header fields (RFC 9112 §5) ================= */

/* Parses one field line at *pp; 1 when *pp is the empty line ending the head. */
static int parse_field_line(struct ctx *c, const char **pp)
{
    struct http_request *req = c->req;
    if (*pp < c->end && **pp != '\r' && req->num_headers == c->max_headers)
        return fail(c, 431, "too many header fields");
    const char *reason;
    struct http_header *h = &req->headers[req->num_headers];
    switch (http__field_line(pp, c->end, h, &reason)) {
    case HTTP__FIELD_MORE:
        return NEED_MORE;
    case HTTP__FIELD_END:
        return 1;
    case HTTP__FIELD_BAD:
        return fail(c, 400, reason);
    case HTTP__FIELD_OK:
        break;
    }
    req->num_headers++;
    return on_header(c, h);
}

/* ================= entry point ================= */

static void reset_request(struct http_request *req)
{
    req->method = req->target = req->path = req->query = req->host = NULL;
    req->method_len = req->target_len = req->path_len = req->query_len = req->host_len = 0;
    req->minor_version = 0;
    req->num_headers = 0;
    req->body_kind = HTTP_BODY_NONE;
    req->content_length = 0;
    req->keep_alive = false;
    req->expect_continue = false;
}

/* Checks that need the whole head. */
static int finish(struct ctx *c)
{
    struct http_request *req = c->req;

    /* RFC 9112 §3.2: an HTTP/1.1 request without Host is 400. */
    if (req->minor_version == 1 && !c->seen_host)
        return fail(c, 400, "missing Host");
    /* RFC 9112 §9.3: 1.1 is persistent unless "close"; 1.0 only with
     * "keep-alive" (RFC 9112 Appendix C.2.2). "close" always wins. */
    if (req->minor_version == 1)
        req->keep_alive = !c->conn_close;
    else
        req->keep_alive = c->conn_keep_alive && !c->conn_close;
    /* RFC 9110 §10.1.1: ignore 100-continue in an HTTP/1.0 request. */
    req->expect_continue = c->expect_100 && req->minor_version == 1;
    return 0;
}

static int parse_head(struct ctx *c, const char *buf)
{
    const char *p = buf;
    int r = parse_request_line(c, &p);
    if (r)
        return r;
    while ((r = parse_field_line(c, &p)) == 0)
        ;
    if (r < 0)
        return r;
    r = finish(c);
    if (r)
        return r;
    return (int)(p - buf);
}

int http_parse_request(const char *buf, size_t len, const struct http_limits *lim,
                       struct http_request *req, int *status, const char **reason)
{
    GATE_ASSERT(buf != NULL || len == 0);
    size_t window = GATE_MIN(lim->max_header_bytes, (size_t)INT_MAX);
    struct ctx c = {
        .end = buf + GATE_MIN(len, window),
        .lim = lim,
        .req = req,
        .max_headers = GATE_MIN(lim->max_headers, (size_t)HTTP_MAX_HEADERS_HARD),
        .status = 0,
        .reason = NULL,
    };

    reset_request(req);
    int r = parse_head(&c, buf);
    /* The head did not end inside the window: if more than the window has
     * arrived, it can only end past the limit. */
    if (r == NEED_MORE && len > window)
        r = fail(&c, 431, "request head too large");
    if (r == HTTP_PARSE_ERROR) {
        *status = c.status;
        *reason = c.reason;
    }
    return r;
}
