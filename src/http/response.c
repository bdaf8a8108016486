/*
 * response.c — strict, single-pass HTTP/1.x response-head parser (RFC 9112
 * §4, §6.3), the client side of parse.c: it reads the integration's answers.
 *
 * http_parse_response() walks the head once, left to right, and never
 * allocates: every span it returns points into the caller's buffer. Framing
 * headers (Content-Length, Transfer-Encoding, Connection) are interpreted as
 * soon as their line is complete, so a response that two parsers could frame
 * two ways is refused without waiting for the rest of the head.
 *
 * Invariants (the same as the request parser's):
 * - No byte at or past buf + min(len, max_header_bytes) is ever read. When the
 *   head does not end inside that window and len passes the limit, the head
 *   is too large; otherwise "incomplete" (-2).
 * - The answer is a pure function of the bytes seen: once a prefix of the
 *   input gives a result other than -2, every longer input starting with it
 *   gives the same result, so callers re-parse from the start when more bytes
 *   arrive.
 * - An error is reported only for bytes that are already wrong; a valid head
 *   cut at any byte gives -2, never -1.
 */
#include <limits.h>

#include "http/http.h"
#include "http/http_int.h"
#include "util/util.h"

struct rctx {
    const char *end; /* scan bound: buf + min(len, max_header_bytes) */
    struct http_response *res;
    size_t max_headers;
    const char *reason;
    bool seen_cl;
    bool seen_te;
    bool conn_close;
    bool conn_keep_alive;
};

#define NEED_MORE HTTP_PARSE_INCOMPLETE

static int fail(struct rctx *c, const char *reason)
{
    c->reason = reason;
    return HTTP_PARSE_ERROR;
}

#define IEQ(s, n, lit) http__ieq_lower((s), (n), (lit), sizeof(lit) - 1)
#define NAME_IS(h, lit) IEQ((h)->name, (h)->name_len, lit)

static inline bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* Expects CRLF at *pp, byte by byte so a cut input is "need more". */
static int expect_crlf(struct rctx *c, const char **pp)
{
    const char *p = *pp;
    if (p == c->end)
        return NEED_MORE;
    if (*p != '\r')
        return fail(c, *p == '\n' ? "bare LF" : "malformed status line");
    if (p + 1 == c->end)
        return NEED_MORE;
    if (p[1] != '\n')
        return fail(c, "bare CR");
    *pp = p + 2;
    return 0;
}

/* ================= status line (RFC 9112 §4) ================= */

/*
 * status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF.
 * "HTTP/1.1 200\r\n" (no SP, no reason) is accepted too: servers send it.
 * No empty lines are skipped before it (RFC 9112 §2.2 allows that only to a
 * server reading a request).
 */
static int parse_status_line(struct rctx *c, const char **pp)
{
    struct http_response *res = c->res;
    const char *p = *pp, *end = c->end;
    /* "HTTP/" DIGIT "." DIGIT SP DIGIT DIGIT DIGIT: fixed shape, byte by byte. */
    static const char shape[] = "HTTP/0.0 000";

    for (size_t i = 0; i < sizeof(shape) - 1; i++, p++) {
        if (p == end)
            return NEED_MORE;
        char want = shape[i];
        if (want == '0' ? !is_digit(*p) : *p != want) {
            if (i < 8)
                return fail(c, "malformed HTTP version");
            return fail(c, i == 8 ? "malformed status line" : "malformed status code");
        }
        /* The module speaks 1.0 and 1.1 only (http.h). */
        if (i == 7 && (p[-2] != '1' || *p > '1'))
            return fail(c, "HTTP version not supported");
    }
    const char *v = *pp;
    res->minor_version = v[7] - '0';
    res->status = (v[9] - '0') * 100 + (v[10] - '0') * 10 + (v[11] - '0');
    if (res->status < 100 || res->status > 599)
        return fail(c, "status code out of range");

    if (p == end)
        return NEED_MORE;
    if (*p == ' ') {
        /* reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ): the field-value
         * bytes, which http__scan_value finds. */
        p = http__scan_value(p + 1, end);
        if (p < end && *p != '\r' && *p != '\n')
            return fail(c, "control character in reason phrase");
    } else if (is_digit(*p)) {
        return fail(c, "malformed status code");
    }
    int r = expect_crlf(c, &p);
    if (r)
        return r;
    *pp = p;
    return 0;
}

/* ================= framing headers ================= */

static int on_content_length(struct rctx *c, const struct http_header *h)
{
    struct http_response *res = c->res;
    uint64_t n;

    /* RFC 9112 §6.3 (5), RFC 9110 §8.6: 1*DIGIT only — no sign, no list
     * (not even of equal values), no overflow. */
    if (!str_to_u64(h->value, h->value_len, &n))
        return fail(c, "invalid Content-Length");
    if (c->seen_te)
        return fail(c, "both Content-Length and Transfer-Encoding");
    if (c->seen_cl && n != res->content_length)
        return fail(c, "conflicting Content-Length values");
    c->seen_cl = true;
    res->content_length = n;
    return 0;
}

static int on_transfer_encoding(struct rctx *c, const struct http_header *h)
{
    /* RFC 9112 §6.1: TE in an HTTP/1.0 message means faulty framing. */
    if (c->res->minor_version == 0)
        return fail(c, "Transfer-Encoding in HTTP/1.0");
    if (c->seen_te)
        return fail(c, "repeated Transfer-Encoding");
    if (c->seen_cl)
        return fail(c, "both Content-Length and Transfer-Encoding");
    /* Anything but exactly "chunked" — another coding, chunked twice or not
     * last — leaves the body length to guesswork (RFC 9112 §6.3 (4)). */
    if (!IEQ(h->value, h->value_len, "chunked"))
        return fail(c, "Transfer-Encoding other than chunked");
    c->seen_te = true;
    return 0;
}

/* Interprets the header just stored, dispatching on the name length first. */
static int on_header(struct rctx *c, const struct http_header *h)
{
    switch (h->name_len) {
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
static int parse_field_line(struct rctx *c, const char **pp)
{
    struct http_response *res = c->res;
    if (*pp < c->end && **pp != '\r' && res->num_headers == c->max_headers)
        return fail(c, "too many header fields");
    const char *reason;
    struct http_header *h = &res->headers[res->num_headers];
    switch (http__field_line(pp, c->end, h, &reason)) {
    case HTTP__FIELD_MORE:
        return NEED_MORE;
    case HTTP__FIELD_END:
        return 1;
    case HTTP__FIELD_BAD:
        return fail(c, reason);
    case HTTP__FIELD_OK:
        break;
    }
    res->num_headers++;
    return on_header(c, h);
}

/* ================= entry point ================= */

static void reset_response(struct http_response *res)
{
    res->status = 0;
    res->minor_version = 0;
    res->num_headers = 0;
    res->body_kind = HTTP_RBODY_NONE;
    res->content_length = 0;
    res->keep_alive = false;
}

/* Derives the body framing and persistence once the head is complete. */
static void finish(struct rctx *c, bool head_request)
{
    struct http_response *res = c->res;
    int st = res->status;

    /* RFC 9112 §6.3 (1): no body after 1xx, 204, 304 or an answer to HEAD,
     * whatever the framing headers say (they were still checked). */
    if (head_request || st < 200 || st == 204 || st == 304)
        res->body_kind = HTTP_RBODY_NONE;
    else if (c->seen_te)
        res->body_kind = HTTP_RBODY_CHUNKED;
    else if (c->seen_cl)
        res->body_kind = HTTP_RBODY_LENGTH;
    else
        res->body_kind = HTTP_RBODY_CLOSE; /* RFC 9112 §6.3 (8) */
    if (res->body_kind != HTTP_RBODY_LENGTH)
        res->content_length = 0;

    /* RFC 9112 §9.3: 1.1 is persistent unless "close"; 1.0 only with
     * "keep-alive" (Appendix C.2.2); "close" always wins. A close-delimited
     * body uses up the connection, and after 101 it no longer speaks HTTP. */
    if (res->minor_version == 1)
        res->keep_alive = !c->conn_close;
    else
        res->keep_alive = c->conn_keep_alive && !c->conn_close;
    if (res->body_kind == HTTP_RBODY_CLOSE || st == 101)
        res->keep_alive = false;
}

static int parse_head(struct rctx *c, const char *buf, bool head_request)
{
    const char *p = buf;
    int r = parse_status_line(c, &p);
    if (r)
        return r;
    while ((r = parse_field_line(c, &p)) == 0)
        ;
    if (r < 0)
        return r;
    finish(c, head_request);
    return (int)(p - buf);
}

int http_parse_response(const char *buf, size_t len, const struct http_limits *lim,
                        bool head_request, struct http_response *res, const char **reason)
{
    GATE_ASSERT(buf != NULL || len == 0);
    size_t window = GATE_MIN(lim->max_header_bytes, (size_t)INT_MAX);
    struct rctx c = {
        .end = buf + GATE_MIN(len, window),
        .res = res,
        .max_headers = GATE_MIN(lim->max_headers, (size_t)HTTP_MAX_HEADERS_HARD),
        .reason = NULL,
    };

    reset_response(res);
    int r = parse_head(&c, buf, head_request);
    /* The head did not end inside the window: if more than the window has
     * arrived, it can only end past the limit. */
    if (r == NEED_MORE && len > window)
        r = fail(&c, "response head too large");
    if (r == HTTP_PARSE_ERROR)
        *reason = c.reason;
    return r;
}
