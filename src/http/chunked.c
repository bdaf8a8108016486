/*
 * chunked.c — incremental decoder for the chunked transfer coding (RFC 9112
 * §7.1) and the chunk-size line writer.
 *
 * The decoder is a byte-driven state machine with no lookahead: the state
 * after a byte depends only on the state before it and that byte, so feeding
 * the input in one piece or in any number of pieces gives the same output,
 * the same total consumed and the same verdict. Chunk data is copied in bulk
 * (memmove, so out may equal in: the write position never passes the read
 * position).
 *
 * Strictness: CRLF only (bare LF or bare CR is an error), at least one hex
 * digit per size, size must fit in 64 bits, a size line (size plus
 * extensions) longer than HTTP_CHUNK_MAX_LINE is an error, chunk data must be
 * followed by CRLF, trailer fields must be `token ":" value` lines with no
 * control bytes and no obs-fold, and the whole trailer section is bounded by
 * HTTP_CHUNK_MAX_TRAILER. After the final CRLF nothing more is consumed.
 */
#include <limits.h>
#include <string.h>

#include "http/http.h"
#include "http/http_int.h"
#include "util/util.h"

enum {
    CS_SIZE_START = 0, /* first hex digit of a chunk-size */
    CS_SIZE,           /* more hex digits */
    CS_SIZE_WS,        /* BWS after the size: only ';' may follow */
    CS_EXT,            /* chunk-ext, skipped up to CR */
    CS_SIZE_LF,        /* LF ending the size line */
    CS_DATA,           /* chunk-data, `remaining` bytes left */
    CS_DATA_CR,        /* CR after chunk-data */
    CS_DATA_LF,        /* LF after chunk-data */
    CS_TRAILER_START,  /* start of a trailer line, or CR of the final CRLF */
    CS_TRAILER_NAME,   /* field name, up to ':' */
    CS_TRAILER_VALUE,  /* field value, up to CR */
    CS_TRAILER_LF,     /* LF ending a trailer line */
    CS_END_LF,         /* LF of the final CRLF */
    CS_DONE,
    CS_ERROR,
};

void http_chunked_init(struct http_chunked *d)
{
    d->state = CS_SIZE_START;
    d->remaining = 0;
    d->line_bytes = 0;
    d->done = false;
}

static inline int hex_val(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch |= 0x20; /* ASCII lower case */
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/* Size-line byte (digits, BWS, extensions): counts towards the line limit. */
static int step_size_line(struct http_chunked *d, unsigned char ch)
{
    if (ch != '\r' && ++d->line_bytes > HTTP_CHUNK_MAX_LINE)
        return CS_ERROR; /* the limit is on the bytes before the CRLF */
    int v = hex_val(ch);
    switch (d->state) {
    case CS_SIZE_START:
        if (v < 0)
            return CS_ERROR;
        d->remaining = (uint64_t)v;
        return CS_SIZE;
    case CS_SIZE:
        if (v >= 0) {
            if (d->remaining > (UINT64_MAX >> 4))
                return CS_ERROR; /* size does not fit in 64 bits */
            d->remaining = d->remaining << 4 | (uint64_t)v;
            return CS_SIZE;
        }
        /* RFC 9112 §7.1.1 allows BWS before ';' (and only there). */
        __attribute__((fallthrough));
    case CS_SIZE_WS:
        if (ch == ' ' || ch == '\t')
            return CS_SIZE_WS;
        if (ch == ';')
            return CS_EXT;
        return (ch == '\r' && d->state == CS_SIZE) ? CS_SIZE_LF : CS_ERROR;
    default: /* CS_EXT: any field-value byte; CR ends it, other CTLs are refused */
        if (ch == '\r')
            return CS_SIZE_LF;
        return http__is(ch, HTTP__VALUE) ? CS_EXT : CS_ERROR;
    }
}

/* Trailer-section byte (RFC 9112 §7.1.2); the section has a total size limit. */
static int step_trailer(struct http_chunked *d, unsigned char ch)
{
    if (++d->line_bytes > HTTP_CHUNK_MAX_TRAILER)
        return CS_ERROR;
    switch (d->state) {
    case CS_TRAILER_START:
        if (ch == '\r')
            return CS_END_LF;
        /* A leading SP/HTAB would be obs-fold, a bare LF a bad line end. */
        return http__is(ch, HTTP__TCHAR) ? CS_TRAILER_NAME : CS_ERROR;
    case CS_TRAILER_NAME:
        if (ch == ':')
            return CS_TRAILER_VALUE;
        return http__is(ch, HTTP__TCHAR) ? CS_TRAILER_NAME : CS_ERROR;
    case CS_TRAILER_VALUE:
        if (ch == '\r')
            return CS_TRAILER_LF;
        return http__is(ch, HTTP__VALUE) ? CS_TRAILER_VALUE : CS_ERROR;
    case CS_TRAILER_LF:
        return ch == '\n' ? CS_TRAILER_START : CS_ERROR;
    default: /* CS_END_LF */
        return ch == '\n' ? CS_DONE : CS_ERROR;
    }
}

/* One byte outside chunk data; returns the next state. */
static int step(struct http_chunked *d, unsigned char ch)
{
    switch (d->state) {
    case CS_SIZE_START:
    case CS_SIZE:
    case CS_SIZE_WS:
    case CS_EXT:
        return step_size_line(d, ch);
    case CS_SIZE_LF:
        if (ch != '\n')
            return CS_ERROR;
        d->line_bytes = 0; /* from here on: trailer-section bytes */
        return d->remaining ? CS_DATA : CS_TRAILER_START;
    case CS_DATA_CR:
        return ch == '\r' ? CS_DATA_LF : CS_ERROR;
    case CS_DATA_LF:
        d->line_bytes = 0;
        return ch == '\n' ? CS_SIZE_START : CS_ERROR;
    default:
        return step_trailer(d, ch);
    }
}

ssize_t http_chunked_decode(struct http_chunked *d, const char *in, size_t len, char *out,
                            size_t *out_len)
{
    GATE_ASSERT(len <= (size_t)SSIZE_MAX);
    size_t i = 0, o = 0;

    *out_len = 0;
    if (d->state == CS_ERROR)
        return HTTP_PARSE_ERROR;
    while (i < len && d->state != CS_DONE) {
        if (d->state == CS_DATA) {
            size_t n = len - i;
            if ((uint64_t)n > d->remaining)
                n = (size_t)d->remaining;
            if (out + o != in + i)
                memmove(out + o, in + i, n);
            i += n;
            o += n;
            d->remaining -= n;
            if (d->remaining == 0)
                d->state = CS_DATA_CR;
            continue;
        }
        d->state = step(d, (unsigned char)in[i++]);
        if (d->state == CS_ERROR)
            return HTTP_PARSE_ERROR;
    }
    d->done = d->state == CS_DONE;
    *out_len = o;
    return (ssize_t)i;
}

size_t http_chunk_header(char *dst, uint64_t n)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[16];
    size_t k = 0;

    do {
        tmp[k++] = hex[n & 0xf];
        n >>= 4;
    } while (n);
    for (size_t j = 0; j < k; j++)
        dst[j] = tmp[k - 1 - j];
    dst[k] = '\r';
    dst[k + 1] = '\n';
    return k + 2;
}
