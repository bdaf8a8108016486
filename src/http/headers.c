/*
 * headers.c — helpers over parsed header fields: lookup, hop-by-hop fields,
 * Connection tokens, Cache-Control directives, HTTP-date parse/format and
 * reason phrases.
 *
 * Invariants: nothing here allocates or keeps state; every input is a
 * (pointer, length) span that need not be NUL-terminated, and no byte past
 * the span is read. Dates are computed arithmetically (no libc time zone,
 * no locale), in UTC.
 */
#include <string.h>

#include "http/http.h"
#include "http/http_int.h"
#include "util/util.h"

/* ================= lookup, hop-by-hop, Connection ================= */

const struct http_header *http_find_header(const struct http_header *h, size_t n, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < n; i++)
        if (str_ieq(h[i].name, h[i].name_len, name, len))
            return &h[i];
    return NULL;
}

#define IS(lit) str_ieq(name, len, (lit), sizeof(lit) - 1)

bool http_is_hop_by_hop(const char *name, size_t len)
{
    /* RFC 9110 §7.6.1 plus the non-standard Keep-Alive / Proxy-Connection
     * that old clients still send; dispatch on length to compare once. */
    switch (len) {
    case 2:
        return IS("te");
    case 7:
        return IS("trailer") || IS("upgrade");
    case 10:
        return IS("connection") || IS("keep-alive");
    case 16:
        return IS("proxy-connection");
    case 17:
        return IS("transfer-encoding");
    case 18:
        return IS("proxy-authenticate");
    case 19:
        return IS("proxy-authorization");
    default:
        return false;
    }
}

#undef IS

bool http_connection_lists(const char *conn_value, size_t conn_len, const char *name, size_t len)
{
    /* Connection = #connection-option (RFC 9110 §7.6.1): a comma list whose
     * elements may be empty and carry OWS. */
    size_t i = 0;
    while (i < conn_len) {
        size_t s = i;
        while (i < conn_len && conn_value[i] != ',')
            i++;
        const char *e = conn_value + s;
        size_t el = i - s;
        str_trim_ows(&e, &el);
        if (str_ieq(e, el, name, len))
            return true;
        i++;
    }
    return false;
}

/* ================= Cache-Control (RFC 9111 §5.2) ================= */

/* RFC 9111 §1.2.2: a delta-seconds too large to represent becomes 2^31. */
#define DELTA_SECONDS_MAX 2147483648LL

enum cc_arg { CC_NONE, CC_VALID, CC_INVALID };

struct cc_directive {
    const char *name;
    size_t name_len;
    enum cc_arg arg;
    int64_t seconds; /* when arg == CC_VALID and the argument is all digits */
    bool numeric;
};

static bool is_ows(char ch)
{
    return ch == ' ' || ch == '\t';
}

static size_t skip_ows(const char *v, size_t len, size_t i)
{
    while (i < len && is_ows(v[i]))
        i++;
    return i;
}

/* Accumulates one digit of a delta-seconds, saturating at 2^31. */
static void add_digit(struct cc_directive *d, char ch)
{
    if (ch < '0' || ch > '9') {
        d->numeric = false;
        return;
    }
    d->seconds = d->seconds * 10 + (ch - '0');
    if (d->seconds > DELTA_SECONDS_MAX)
        d->seconds = DELTA_SECONDS_MAX;
}

/* quoted-string (RFC 9110 §5.6.4) starting at v[i] == '"'; returns the index
 * after the closing quote, or len when it is unterminated (then invalid). */
static size_t read_quoted(const char *v, size_t len, size_t i, struct cc_directive *d)
{
    bool empty = true;
    for (i++; i < len; i++) {
        if (v[i] == '"') {
            if (empty)
                d->numeric = false;
            return i + 1;
        }
        if (v[i] == '\\' && i + 1 < len)
            i++; /* quoted-pair: the escaped byte is taken literally */
        add_digit(d, v[i]);
        empty = false;
    }
    d->arg = CC_INVALID;
    return len;
}

/* Skips to the next top-level comma (commas inside quotes do not count). */
static size_t skip_to_comma(const char *v, size_t len, size_t i)
{
    bool quoted = false;
    for (; i < len; i++) {
        if (quoted && v[i] == '\\')
            i++;
        else if (v[i] == '"')
            quoted = !quoted;
        else if (!quoted && v[i] == ',')
            return i;
    }
    return len;
}

/* Reads `token [ "=" ( token / quoted-string ) ]` at v[i]; returns the index of
 * the comma ending it (or len). Junk makes the argument invalid. */
static size_t read_directive(const char *v, size_t len, size_t i, struct cc_directive *d)
{
    size_t s = i;
    while (i < len && http__is((unsigned char)v[i], HTTP__TCHAR))
        i++;
    d->name = v + s;
    d->name_len = i - s;
    d->arg = CC_NONE;
    d->seconds = 0;
    d->numeric = true;
    i = skip_ows(v, len, i);
    if (i < len && v[i] == '=') {
        d->arg = CC_VALID;
        i = skip_ows(v, len, i + 1);
        if (i < len && v[i] == '"') {
            i = read_quoted(v, len, i, d);
        } else {
            s = i;
            for (; i < len && http__is((unsigned char)v[i], HTTP__TCHAR); i++)
                add_digit(d, v[i]);
            if (i == s)
                d->arg = CC_INVALID;
        }
        i = skip_ows(v, len, i);
    }
    if (i < len && v[i] != ',') {
        d->arg = CC_INVALID;
        i = skip_to_comma(v, len, i);
    }
    return i;
}

/* max-age / s-maxage: RFC 9111 §4.2.1 encourages treating an invalid value as
 * stale (0); a repeated directive with another value is made stale too
 * (RFC 9111 §4.2.1 "either the first occurrence ... or considered stale"). */
static void set_delta(int64_t *slot, const struct cc_directive *d)
{
    int64_t v = (d->arg == CC_VALID && d->numeric) ? d->seconds : 0;
    if (*slot >= 0 && *slot != v)
        v = 0;
    *slot = v;
}

#define DIR_IS(d, lit) str_ieq((d)->name, (d)->name_len, (lit), sizeof(lit) - 1)

static void apply_directive(struct http_cache_control *cc, const struct cc_directive *d)
{
    /* Directive names are case-insensitive (RFC 9111 §5.2). The qualified
     * forms no-cache="f" and private="f" are treated as the unqualified ones:
     * not storing is always a safe reading for a shared cache. */
    if (DIR_IS(d, "max-age"))
        set_delta(&cc->max_age, d);
    else if (DIR_IS(d, "s-maxage"))
        set_delta(&cc->s_maxage, d);
    else if (DIR_IS(d, "no-store"))
        cc->no_store = true;
    else if (DIR_IS(d, "no-cache"))
        cc->no_cache = true;
    else if (DIR_IS(d, "private"))
        cc->private_ = true;
}

void http_cache_control_init(struct http_cache_control *cc)
{
    cc->max_age = -1;
    cc->s_maxage = -1;
    cc->no_store = false;
    cc->no_cache = false;
    cc->private_ = false;
}

void http_cache_control_add(struct http_cache_control *cc, const char *v, size_t len)
{
    size_t i = 0;
    while (i < len) {
        i = skip_ows(v, len, i);
        if (i < len && v[i] == ',') {
            i++; /* empty list element, RFC 9110 §5.6.1 */
            continue;
        }
        if (i == len)
            break;
        struct cc_directive d;
        i = read_directive(v, len, i, &d);
        if (d.name_len > 0)
            apply_directive(cc, &d);
        i++; /* past the comma */
    }
}

void http_parse_cache_control(const char *v, size_t len, struct http_cache_control *cc)
{
    http_cache_control_init(cc);
    http_cache_control_add(cc, v, len);
}

/* ================= HTTP-date (RFC 9110 §5.6.7) ================= */

static const char day_names[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const day_names_long[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                              "Thursday", "Friday", "Saturday"};
static const char month_names[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Days since 1970-01-01 of a proleptic Gregorian date (m 1..12, d 1..31),
 * counting from March so the leap day is the last day of the shifted year. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    if (m <= 2)
        y--;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;                                   /* 0..399 */
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* 0..365 */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* 0..146096 */
    return era * 146097 + doe - 719468;
}

/* Inverse of days_from_civil for days >= 0. */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = z / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* n decimal digits at s; -1 if any is not a digit. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* month = "Jan" / ... (case-sensitive, RFC 9110 §5.6.7); 1..12 or -1. */
static int month_of(const char *s)
{
    for (int i = 0; i < 12; i++)
        if (memcmp(s, month_names[i], 3) == 0)
            return i + 1;
    return -1;
}

static bool is_day_name(const char *s)
{
    for (int i = 0; i < 7; i++)
        if (memcmp(s, day_names[i], 3) == 0)
            return true;
    return false;
}

/* time-of-day = hour ":" minute ":" second, 8 bytes at s; -1 if invalid. */
static int64_t time_of_day(const char *s)
{
    if (s[2] != ':' || s[5] != ':')
        return -1;
    int h = digits(s, 2), mi = digits(s + 3, 2), se = digits(s + 6, 2);
    /* second 60 is allowed for leap seconds (RFC 9110 §5.6.7). */
    if (h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 || se > 60)
        return -1;
    return (int64_t)h * 3600 + mi * 60 + se;
}

static int64_t to_epoch(int64_t y, int m, int d, int64_t tod)
{
    if (m < 1 || d < 1 || d > days_in_month(y, m) || tod < 0 || y < 1970)
        return -1; /* before the epoch: reported as invalid (treated as expired) */
    return days_from_civil(y, m, d) * 86400 + tod;
}

/* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" (29 bytes). */
static int64_t parse_imf_fixdate(const char *s)
{
    if (!is_day_name(s) || memcmp(s + 3, ", ", 2) != 0 || s[7] != ' ' || s[11] != ' ' ||
        s[16] != ' ' || memcmp(s + 25, " GMT", 4) != 0)
        return -1;
    int d = digits(s + 5, 2), y = digits(s + 12, 4);
    if (d < 0 || y < 0)
        return -1;
    return to_epoch(y, month_of(s + 8), d, time_of_day(s + 17));
}

/* rfc850-date: "Sunday, 06-Nov-94 08:49:37 GMT" (day name 6..9 letters). */
static int64_t parse_rfc850(const char *s, size_t len)
{
    size_t n = len - 24; /* length of the day name */
    bool named = false;
    for (int i = 0; i < 7; i++)
        if (strlen(day_names_long[i]) == n && memcmp(s, day_names_long[i], n) == 0)
            named = true;
    s += n;
    if (!named || memcmp(s, ", ", 2) != 0 || s[4] != '-' || s[8] != '-' || s[11] != ' ' ||
        memcmp(s + 20, " GMT", 4) != 0)
        return -1;
    int d = digits(s + 2, 2), yy = digits(s + 9, 2);
    if (d < 0 || yy < 0)
        return -1;
    /* RFC 9110 §5.6.7 wants the year nearest "now" within 50 years; with no
     * clock here the window is fixed: 70-99 → 19xx, 00-69 → 20xx. */
    int y = yy >= 70 ? 1900 + yy : 2000 + yy;
    return to_epoch(y, month_of(s + 5), d, time_of_day(s + 12));
}

/* asctime-date: "Sun Nov  6 08:49:37 1994" (24 bytes; day is SP DIGIT or 2DIGIT). */
static int64_t parse_asctime(const char *s)
{
    if (!is_day_name(s) || s[3] != ' ' || s[7] != ' ' || s[10] != ' ' || s[19] != ' ')
        return -1;
    int d = s[8] == ' ' ? digits(s + 9, 1) : digits(s + 8, 2), y = digits(s + 20, 4);
    if (d < 0 || y < 0)
        return -1;
    return to_epoch(y, month_of(s + 4), d, time_of_day(s + 11));
}

int64_t http_parse_date(const char *v, size_t len)
{
    /* RFC 9110 §5.6.7: a recipient MUST accept all three formats. */
    str_trim_ows(&v, &len);
    if (len == 29 && v[3] == ',')
        return parse_imf_fixdate(v);
    if (len == 24 && v[3] == ' ')
        return parse_asctime(v);
    if (len >= 30 && len <= 33)
        return parse_rfc850(v, len);
    return -1;
}

/* Latest time an IMF-fixdate can show: 9999-12-31 23:59:59. */
#define DATE_MAX 253402300799LL

static void put2(char *dst, int v)
{
    dst[0] = (char)('0' + v / 10);
    dst[1] = (char)('0' + v % 10);
}

size_t http_format_date(char *dst, int64_t t)
{
    /* The format has a 4-digit year from 1970 on here: clamp rather than
     * write something unparseable. */
    if (t < 0)
        t = 0;
    if (t > DATE_MAX)
        t = DATE_MAX;
    int64_t days = t / 86400, secs = t % 86400, y;
    int m, d;
    civil_from_days(days, &y, &m, &d);

    memcpy(dst, day_names[(days + 4) % 7], 3); /* 1970-01-01 was a Thursday */
    memcpy(dst + 3, ", ", 2);
    put2(dst + 5, d);
    dst[7] = ' ';
    memcpy(dst + 8, month_names[m - 1], 3);
    dst[11] = ' ';
    put2(dst + 12, (int)(y / 100));
    put2(dst + 14, (int)(y % 100));
    dst[16] = ' ';
    put2(dst + 17, (int)(secs / 3600));
    dst[19] = ':';
    put2(dst + 20, (int)(secs / 60 % 60));
    dst[22] = ':';
    put2(dst + 23, (int)(secs % 60));
    memcpy(dst + 25, " GMT", 5); /* with the NUL */
    return 29;
}

/* ================= reason phrases (RFC 9110 §15) ================= */

/* One code per line reads best as a table. */
/* clang-format off */
const char *http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}
/* clang-format on */
