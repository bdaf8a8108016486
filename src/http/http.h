/*
 * http — strict HTTP/1.1 request parsing, chunked transfer coding, header
 * helpers and serialisation. No I/O and no allocation in the parsers: parsed
 * spans point into the caller's buffer (borrowed: valid while that buffer is).
 *
 * Strictness (RFC 9112): CRLF line endings only (a bare LF is malformed),
 * no obs-fold, no whitespace between field name and colon, token characters
 * only in methods and field names, no control bytes (other than HTAB) in field
 * values, origin-form targets only ('/'...; absolute-form and '*' refused),
 * HTTP/1.0 and HTTP/1.1 only. Request smuggling defences (RFC 9112 §6.3):
 * Content-Length together with Transfer-Encoding, differing duplicate
 * Content-Length values, a Content-Length that is not all digits, and a
 * Transfer-Encoding other than exactly "chunked" are all refused.
 */
#ifndef GATE_HTTP_H
#define GATE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HTTP_MAX_HEADERS_HARD 256 /* array size; the configured limit may be lower */

struct http_header {
    const char *name; /* borrowed: points into the parse buffer */
    size_t name_len;
    const char *value; /* borrowed: OWS trimmed */
    size_t value_len;
};

struct http_limits {
    size_t max_header_bytes; /* request line + headers + final CRLF; over: 431 */
    size_t max_headers;      /* header field count; over: 431 (<= HTTP_MAX_HEADERS_HARD) */
    size_t max_url_bytes;    /* request-target length; over: 414 */
};

enum http_body_kind { HTTP_BODY_NONE = 0, HTTP_BODY_LENGTH, HTTP_BODY_CHUNKED };

struct http_request {
    const char *method; /* borrowed */
    size_t method_len;
    const char *target; /* borrowed: origin-form path + optional ?query */
    size_t target_len;
    const char *path;  /* borrowed: target up to '?' */
    size_t path_len;
    const char *query; /* borrowed: after '?', NULL when there is no '?' */
    size_t query_len;
    int minor_version; /* 0 or 1 */
    struct http_header headers[HTTP_MAX_HEADERS_HARD];
    size_t num_headers;
    /* Derived from the headers by the parser: */
    enum http_body_kind body_kind;
    uint64_t content_length; /* valid when body_kind == HTTP_BODY_LENGTH */
    bool keep_alive;         /* 1.1 default true, "Connection: close" false; 1.0 needs keep-alive */
    bool expect_continue;    /* "Expect: 100-continue" */
    const char *host;        /* borrowed: Host header value or NULL */
    size_t host_len;
};

#define HTTP_PARSE_INCOMPLETE (-2)
#define HTTP_PARSE_ERROR (-1)

/*
 * Parses one request head from buf[0..len). Returns the number of bytes of the
 * head (> 0) when complete, HTTP_PARSE_INCOMPLETE when more bytes are needed,
 * or HTTP_PARSE_ERROR with *status set to the answer to give (400, 414, 431,
 * 501 for an unknown transfer coding, 505 for another HTTP version) and
 * *reason to a short static message. Limits are checked on incomplete input
 * too, so an endless header is refused as soon as it passes the limit.
 */
int http_parse_request(const char *buf, size_t len, const struct http_limits *lim,
                       struct http_request *req, int *status, const char **reason);

/* ---- responses (the integration's answers, RFC 9112 §4, §6.3) ---- */

enum http_resp_body {
    HTTP_RBODY_NONE = 0, /* 1xx, 204, 304, or the answer to HEAD */
    HTTP_RBODY_LENGTH,   /* Content-Length bytes */
    HTTP_RBODY_CHUNKED,  /* Transfer-Encoding: chunked */
    HTTP_RBODY_CLOSE,    /* neither: the body ends when the connection closes */
};

struct http_response {
    int status;        /* 100..599 */
    int minor_version; /* 0 or 1 */
    struct http_header headers[HTTP_MAX_HEADERS_HARD];
    size_t num_headers;
    /* Derived from the status, the request method and the headers: */
    enum http_resp_body body_kind;
    uint64_t content_length; /* valid when body_kind == HTTP_RBODY_LENGTH */
    bool keep_alive; /* the connection may carry another request after this
                        answer: 1.1 without "Connection: close", 1.0 only
                        with "keep-alive"; never for HTTP_RBODY_CLOSE */
};

/*
 * Parses one response head (status line, fields, empty line) from buf[0..len).
 * `head_request`: this answers a HEAD request, so it has no body whatever its
 * framing headers say (they are still checked). Returns the bytes of the head
 * (> 0), HTTP_PARSE_INCOMPLETE, or HTTP_PARSE_ERROR with *reason set to a
 * short static message. Limits (lim->max_header_bytes, lim->max_headers; the
 * URL limit is unused) are checked on incomplete input too.
 *
 * Same strictness as requests: CRLF only, no obs-fold, token field names, no
 * control bytes in values; the status is exactly three digits 100..599 and
 * the version HTTP/1.0 or HTTP/1.1. Framing that two parsers could read two
 * ways is refused (RFC 9112 §6.3, §11.2): Content-Length with
 * Transfer-Encoding, differing or non-digit Content-Length, a
 * Transfer-Encoding other than exactly "chunked", Transfer-Encoding in 1.0.
 * A 1xx head is returned like any other (status < 200, body NONE): the caller
 * reads the next head after it.
 */
int http_parse_response(const char *buf, size_t len, const struct http_limits *lim,
                        bool head_request, struct http_response *res, const char **reason);

/* ---- chunked transfer coding (RFC 9112 §7.1) ---- */

struct http_chunked {
    int state;          /* private */
    uint64_t remaining; /* private: bytes left in the current chunk */
    size_t line_bytes;  /* private: bytes of the current size/trailer line */
    bool done;          /* read-only: last chunk and trailers consumed */
};

/* Longest chunk-size line (size digits, BWS and extensions, CRLF excluded). */
#define HTTP_CHUNK_MAX_LINE 4096
/* Largest trailer section (all trailer lines and the final CRLF). */
#define HTTP_CHUNK_MAX_TRAILER 16384

void http_chunked_init(struct http_chunked *d);
/*
 * Decodes in[0..len) into out (which must hold len bytes; may equal in for
 * in-place decoding). Returns the bytes of `in` consumed (stops right after
 * the final CRLF when done, leaving the rest for the next request) and sets
 * *out_len to the decoded bytes produced, or HTTP_PARSE_ERROR when the coding
 * is malformed (bad hex, size overflow, missing CRLF, over-long line).
 * Chunk extensions are skipped; trailer fields are skipped.
 */
ssize_t http_chunked_decode(struct http_chunked *d, const char *in, size_t len, char *out,
                            size_t *out_len);
/* Writes "HEX\r\n" for a chunk of n bytes into dst (>= 20 bytes); returns its length. */
size_t http_chunk_header(char *dst, uint64_t n);

/* ---- headers ---- */

/* Finds the first header named `name` (case-insensitive); NULL if absent. */
const struct http_header *http_find_header(const struct http_header *h, size_t n,
                                           const char *name);
/* True for the hop-by-hop fields of RFC 9110 §7.6.1 (Connection, Keep-Alive,
 * Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade, Proxy-Authenticate,
 * Proxy-Authorization). */
bool http_is_hop_by_hop(const char *name, size_t len);
/* True when `name` is one of the comma-separated tokens of a Connection value. */
bool http_connection_lists(const char *conn_value, size_t conn_len, const char *name,
                           size_t len);

/* Cache-Control directives gatecache reads (RFC 9111 §5.2). -1 = absent. */
struct http_cache_control {
    int64_t max_age;
    int64_t s_maxage;
    bool no_store;
    bool no_cache;
    bool private_;
};
/* Resets *cc, then reads one Cache-Control field value into it. */
void http_parse_cache_control(const char *v, size_t len, struct http_cache_control *cc);
/* For several Cache-Control field lines: init once, then add each value in order. */
void http_cache_control_init(struct http_cache_control *cc);
void http_cache_control_add(struct http_cache_control *cc, const char *v, size_t len);
/* Parses an IMF-fixdate (RFC 9110 §5.6.7) to seconds since the epoch; -1 if invalid.
 * The obsolete rfc850-date (2-digit year: 70-99 → 19xx, 00-69 → 20xx) and
 * asctime-date forms are accepted too, as §5.6.7 requires; dates before 1970 give -1. */
int64_t http_parse_date(const char *v, size_t len);
/* Writes an IMF-fixdate for `t` into dst (>= 30 bytes); returns its length (29). */
size_t http_format_date(char *dst, int64_t t);

/* Reason phrase for a status code ("OK", "Not Found", ...; "Unknown" otherwise). */
const char *http_reason(int status);

#endif
