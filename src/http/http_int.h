/*
 * http_int.h — declarations shared by the files of src/http/ only (not part of
 * the module's API; other modules include http.h).
 *
 * http__cc is one constant table of byte classes so every parser in the module
 * answers "is this a token char / field-value char / ..." with one load.
 */
#ifndef GATE_HTTP_INT_H
#define GATE_HTTP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "http/http.h"

#define HTTP__TCHAR 0x01  /* RFC 9110 §5.6.2 tchar */
#define HTTP__VALUE 0x02  /* RFC 9110 §5.5 field-vchar, obs-text, SP, HTAB */
#define HTTP__TARGET 0x04 /* visible ASCII 0x21-0x7E: allowed in a request-target */
#define HTTP__HOST 0x08   /* RFC 3986 §3.2.2 reg-name/IP-literal chars, plus ':' for the port */

extern const unsigned char http__cc[256];

static inline bool http__is(unsigned char c, unsigned char cls)
{
    return (http__cc[c] & cls) != 0;
}

/* ---- scanning shared by the request and response parsers ---- */

/*
 * Header values and targets are most of a head, so they are scanned eight
 * bytes per step: a word with no suspicious byte is skipped whole, and only a
 * word holding one is looked at byte by byte. Loads stay inside [p, end).
 */
#define HTTP__ONES 0x0101010101010101ULL
#define HTTP__HIGHS 0x8080808080808080ULL

static inline uint64_t http__load8(const char *p)
{
    uint64_t x;
    memcpy(&x, p, sizeof(x));
    return x;
}

/* Non-zero when some byte of x is below n (exact for n <= 128). */
static inline uint64_t http__has_less(uint64_t x, uint64_t n)
{
    return (x - HTTP__ONES * n) & ~x & HTTP__HIGHS;
}

static inline uint64_t http__has_byte(uint64_t x, uint64_t b)
{
    return http__has_less(x ^ (HTTP__ONES * b), 1);
}

/* First byte in [p, end) that is not a field-value byte (RFC 9110 §5.5), or end. */
static inline const char *http__scan_value(const char *p, const char *end)
{
    while (end - p >= 8) {
        uint64_t x = http__load8(p);
        uint64_t bad = http__has_less(x, 0x20) | http__has_byte(x, 0x7f);
        if (!bad) {
            p += 8;
            continue;
        }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        /* The lowest flagged byte is exact (borrows only run upwards). HTAB
         * is < 0x20 but allowed: step over it and look again. */
        p += __builtin_ctzll(bad) / 8;
        if (*p != '\t')
            return p;
        p++;
#else
        for (const char *stop = p + 8; p < stop; p++)
            if (!http__is((unsigned char)*p, HTTP__VALUE))
                return p;
#endif
    }
    while (p < end && http__is((unsigned char)*p, HTTP__VALUE))
        p++;
    return p;
}

/* First byte in [p, end) that is not a tchar, or end. */
static inline const char *http__scan_token(const char *p, const char *end)
{
    while (p < end && http__is((unsigned char)*p, HTTP__TCHAR))
        p++;
    return p;
}

/* s[0..n) equals the lower-case literal `lit` of length litlen, ignoring ASCII
 * case. Inline because it runs for most header lines. */
static inline bool http__ieq_lower(const char *s, size_t n, const char *lit, size_t litlen)
{
    if (n != litlen)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((unsigned)(ch - 'A') < 26u)
            ch |= 0x20;
        if (ch != (unsigned char)lit[i])
            return false;
    }
    return true;
}

/* ---- field lines (RFC 9112 §5), shared by the request and response parsers ---- */

enum http__field {
    HTTP__FIELD_MORE = 0, /* the line is not complete yet */
    HTTP__FIELD_OK,       /* *h filled; *pp after its CRLF */
    HTTP__FIELD_END,      /* the empty line ending the head; *pp after it */
    HTTP__FIELD_BAD,      /* malformed; *reason says why */
};

/* Why a header line stops at `p` instead of at ':' after a non-empty name. */
static inline const char *http__bad_name(const char *name, const char *p)
{
    if (*p == '\n')
        return "bare LF";
    if (*p == ' ' || *p == '\t')
        /* RFC 9112 §5.2 obs-fold; RFC 9112 §5.1 whitespace before colon. */
        return p == name ? "obsolete line folding" : "whitespace before colon";
    if (p == name && *p == ':')
        return "empty field name";
    return "invalid field name";
}

/* Reads one field line at *pp (strict: CRLF only, token name, no whitespace
 * before the colon, no CTL in the value, OWS trimmed). */
static inline enum http__field http__field_line(const char **pp, const char *end,
                                                struct http_header *h, const char **reason)
{
    const char *p = *pp;
    if (p == end)
        return HTTP__FIELD_MORE;
    if (*p == '\r') {
        if (p + 1 == end)
            return HTTP__FIELD_MORE;
        if (p[1] != '\n') {
            *reason = "bare CR";
            return HTTP__FIELD_BAD;
        }
        *pp = p + 2;
        return HTTP__FIELD_END;
    }
    const char *name = p;
    p = http__scan_token(p, end);
    if (p == end)
        return HTTP__FIELD_MORE;
    if (*p != ':' || p == name) {
        *reason = http__bad_name(name, p);
        return HTTP__FIELD_BAD;
    }
    size_t name_len = (size_t)(p - name);
    p++;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    const char *value = p;
    p = http__scan_value(p, end);
    if (p == end)
        return HTTP__FIELD_MORE;
    /* RFC 9110 §5.5: CR, LF and NUL (and other CTLs) never belong in a value;
     * a bare LF line ending is refused too (RFC 9112 §2.2, strict). */
    if (*p != '\r') {
        *reason = *p == '\n' ? "bare LF" : "control character in field value";
        return HTTP__FIELD_BAD;
    }
    if (p + 1 == end)
        return HTTP__FIELD_MORE;
    if (p[1] != '\n') {
        *reason = "bare CR";
        return HTTP__FIELD_BAD;
    }
    const char *vend = p;
    while (vend > value && (vend[-1] == ' ' || vend[-1] == '\t'))
        vend--;
    h->name = name;
    h->name_len = name_len;
    h->value = value;
    h->value_len = (size_t)(vend - value);
    *pp = p + 2;
    return HTTP__FIELD_OK;
}

/* Connection = #connection-option (RFC 9110 §7.6.1): one pass for the two
 * options that matter here; ORs into *close and *keep_alive. */
static inline void http__connection_options(const struct http_header *h, bool *close,
                                            bool *keep_alive)
{
    const char *v = h->value, *end = h->value + h->value_len;
    while (v < end) {
        const char *e = v;
        while (e < end && *e != ',')
            e++;
        const char *t = v, *te = e;
        while (t < te && (*t == ' ' || *t == '\t'))
            t++;
        while (te > t && (te[-1] == ' ' || te[-1] == '\t'))
            te--;
        *close |= http__ieq_lower(t, (size_t)(te - t), "close", 5);
        *keep_alive |= http__ieq_lower(t, (size_t)(te - t), "keep-alive", 10);
        v = e + 1;
    }
}

#endif
