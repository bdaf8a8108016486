/*
 * l2/url — redis:// and rediss:// URLs (the form redis-cli and most clients
 * accept): redis://[user[:password]@]host[:port][/db].
 *
 * Pure and allocation-free: the result goes into fixed arrays. Error texts
 * never quote the URL (only a well-formed scheme): a password whose '/' or
 * '@' was not escaped would otherwise turn up in "bad port" messages.
 */
#include "l2/l2.h"
#include "util/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#define SCHEME_MAX 16

static int fail(char *err, size_t errlen, const char *msg)
{
    if (errlen > 0)
        snprintf(err, errlen, "%s", msg);
    return -EINVAL;
}

static bool is_alpha(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* ================= scheme ================= */

/* RFC 3986 §3.1: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), compared
 * case-insensitively. Returns the length before "://" or 0. */
static size_t scheme_len(const char *url)
{
    size_t n = 0;
    if (!is_alpha(url[0]))
        return 0;
    while (n < SCHEME_MAX && (is_alpha(url[n]) || is_digit(url[n]) || url[n] == '+' ||
                              url[n] == '-' || url[n] == '.'))
        n++;
    return strncmp(url + n, "://", 3) == 0 ? n : 0;
}

static int parse_scheme(const char *url, size_t n, struct l2_url *out, char *err, size_t errlen)
{
    if (n == 5 && str_ieq_c(url, n, "redis"))
        return 0;
    if (n == 6 && str_ieq_c(url, n, "rediss")) {
        out->tls = true;
        return 0;
    }
    if (errlen > 0)
        snprintf(err, errlen, "unknown scheme \"%.*s\" (expected redis:// or rediss://)", (int)n,
                 url);
    return -EINVAL;
}

/* ================= user info ================= */

/* Copies [s, s+n) percent-decoded into dst (cap bytes with the NUL). Refuses
 * control bytes, space, a decoded NUL, a bad escape, and overflow. */
static bool decode_into(const char *s, size_t n, char *dst, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= 0x20 || ch == 0x7f)
            return false;
        if (ch == '%') {
            if (n - i < 3)
                return false;
            int h = str_hex_digit(s[i + 1]), l = str_hex_digit(s[i + 2]);
            if (h < 0 || l < 0 || (h == 0 && l == 0))
                return false;
            ch = (unsigned char)(h * 16 + l);
            i += 2;
        }
        if (o + 1 >= cap)
            return false;
        dst[o++] = (char)ch;
    }
    dst[o] = '\0';
    return true;
}

static int parse_userinfo(const char *s, size_t n, struct l2_url *out, char *err, size_t errlen)
{
    const char *colon = memchr(s, ':', n);
    size_t ulen = colon ? (size_t)(colon - s) : n;
    if (!decode_into(s, ulen, out->username, sizeof(out->username)))
        return fail(err, errlen, "the user name is malformed or too long");
    if (colon == NULL)
        return 0;
    size_t plen = n - ulen - 1;
    if (plen == 0)
        return fail(err, errlen, "the password after ':' is empty");
    if (!decode_into(colon + 1, plen, out->password, sizeof(out->password)))
        return fail(err, errlen, "the password is malformed or too long (escape '%', '/', '@' "
                                 "and ':' as %25, %2F, %40 and %3A)");
    return 0;
}

/* ================= host and port ================= */

static bool is_name_char(char ch)
{
    return is_alpha(ch) || is_digit(ch) || ch == '-' || ch == '.' || ch == '_';
}

/* "[v6]" or a name / IPv4; returns bytes consumed, or 0 after reporting. */
static size_t parse_host(const char *s, size_t n, struct l2_url *out, char *err, size_t errlen)
{
    if (n > 0 && s[0] == '[') {
        const char *end = memchr(s, ']', n);
        size_t hlen = end ? (size_t)(end - s - 1) : 0;
        unsigned char addr[16];
        if (end == NULL || hlen == 0 || hlen >= sizeof(out->host)) {
            fail(err, errlen, "the IPv6 address is not closed by ']'");
            return 0;
        }
        memcpy(out->host, s + 1, hlen);
        out->host[hlen] = '\0';
        if (inet_pton(AF_INET6, out->host, addr) != 1) {
            fail(err, errlen, "the address in [] is not an IPv6 address");
            return 0;
        }
        return hlen + 2;
    }
    size_t hlen = 0;
    while (hlen < n && s[hlen] != ':')
        hlen++;
    if (hlen == 0) {
        fail(err, errlen, "the host is empty");
        return 0;
    }
    if (hlen > L2_URL_MAX_HOST) {
        fail(err, errlen, "the host is too long");
        return 0;
    }
    for (size_t i = 0; i < hlen; i++) {
        if (!is_name_char(s[i])) {
            fail(err, errlen, "the host has a character other than letters, digits, '-', '.', "
                              "'_' (an IPv6 address goes in [])");
            return 0;
        }
    }
    memcpy(out->host, s, hlen);
    out->host[hlen] = '\0';
    return hlen;
}

static int parse_port(const char *s, size_t n, struct l2_url *out, char *err, size_t errlen)
{
    uint64_t v;
    if (n == 0)
        return fail(err, errlen, "the port after ':' is empty");
    if (!str_to_u64(s, n, &v))
        return fail(err, errlen, "the port is not a number");
    if (v < 1 || v > 65535)
        return fail(err, errlen, "the port is out of range 1..65535");
    out->port = (int)v;
    return 0;
}

/* host[:port] */
static int parse_hostport(const char *s, size_t n, struct l2_url *out, char *err, size_t errlen)
{
    size_t used = parse_host(s, n, out, err, errlen);
    if (used == 0)
        return -EINVAL;
    if (used == n)
        return 0;
    if (s[used] != ':')
        return fail(err, errlen, "unexpected text after the host");
    return parse_port(s + used + 1, n - used - 1, out, err, errlen);
}

/* ================= db ================= */

/* After the authority: "", "/" or "/DB". */
static int parse_path(const char *s, struct l2_url *out, char *err, size_t errlen)
{
    if (*s == '\0')
        return 0;
    if (*s == '?' || *s == '#')
        return fail(err, errlen, "query strings and fragments are not supported");
    s++; /* the '/' that ended the authority */
    size_t n = strlen(s);
    if (n == 0)
        return 0;
    if (strpbrk(s, "?#"))
        return fail(err, errlen, "query strings and fragments are not supported");
    uint64_t v;
    if (!str_to_u64(s, n, &v))
        return fail(err, errlen, "the db is not a number");
    if (v > INT32_MAX)
        return fail(err, errlen, "the db is out of range 0..2147483647");
    out->db = (int)v;
    return 0;
}

/* ================= entry point ================= */

int l2_url_parse(const char *url, struct l2_url *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (errlen > 0)
        err[0] = '\0';
    int rc;
    size_t sn = scheme_len(url);
    if (sn == 0) {
        rc = fail(err, errlen, "not a URL: expected redis://[user[:password]@]host[:port][/db]");
        goto out;
    }
    rc = parse_scheme(url, sn, out, err, errlen);
    if (rc != 0)
        goto out;

    const char *auth = url + sn + 3;
    size_t alen = strcspn(auth, "/?#");
    /* The last '@' ends the user info: an unescaped '@' in a password still
     * parses the way its author meant. */
    const char *at = NULL;
    for (const char *p = auth; p < auth + alen; p++)
        if (*p == '@')
            at = p;
    if (at) {
        rc = parse_userinfo(auth, (size_t)(at - auth), out, err, errlen);
        if (rc != 0)
            goto out;
        alen -= (size_t)(at + 1 - auth);
        auth = at + 1;
    }
    rc = parse_hostport(auth, alen, out, err, errlen);
    if (rc == 0)
        rc = parse_path(auth + alen, out, err, errlen);
    if (rc == 0 && out->port == 0)
        out->port = L2_URL_DEFAULT_PORT;
out:
    if (rc != 0)
        explicit_bzero(out, sizeof(*out)); /* all zero, no half-parsed password left */
    return rc;
}
