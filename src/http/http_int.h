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

#define HTTP__TCHAR 0x01  /* RFC 9110 §5.6.2 tchar */
#define HTTP__VALUE 0x02  /* RFC 9110 §5.5 field-vchar, obs-text, SP, HTAB */
#define HTTP__TARGET 0x04 /* visible ASCII 0x21-0x7E: allowed in a request-target */
#define HTTP__HOST 0x08   /* RFC 3986 §3.2.2 reg-name/IP-literal chars, plus ':' for the port */

extern const unsigned char http__cc[256];

static inline bool http__is(unsigned char c, unsigned char cls)
{
    return (http__cc[c] & cls) != 0;
}

#endif
