/*
 * sigv4 — AWS Signature Version 4 verification, header and presigned forms
 * (AWS General Reference, "Signature Version 4 signing process"; aws-wire.md §6).
 *
 * Order of checks: locate the signature, parse its parameters (AUTH_MALFORMED),
 * credential scope (AUTH_BAD_SCOPE), SignedHeaders (AUTH_MALFORMED /
 * AUTH_MISSING_HOST), time window (AUTH_EXPIRED), access key (AUTH_UNKNOWN_KEY),
 * payload hash and signature (AUTH_BAD_SIGNATURE). Everything is recomputed
 * per call: no state, no logging. Invariant: a reason string never contains a
 * secret, a derived key or the expected signature; it is printable ASCII.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth/auth_int.h"
#include "crypto/crypto.h"

#define SIG_HEX_LEN (2 * CRY_SHA256_LEN)
#define AMZ_DATE_LEN 16            /* YYYYMMDD'T'HHMMSS'Z' */
#define PRESIGN_MAX_EXPIRES 604800 /* 7 days, the SigV4 query-form limit */

/* Decoded signature parameters of either form. All buffers owned, freed by params_free. */
struct sig_params {
    bool presigned;
    struct buf credential;
    struct buf signed_headers;
    struct buf signature;
    struct buf amz_date;
    struct buf algorithm;
    struct buf expires;
    bool has_expires;
    int64_t date_sec; /* amz_date as seconds since the epoch */
};

/* The five parts of Credential=AKID/DATE/REGION/SERVICE/aws4_request, borrowed
 * from sig_params.credential. */
struct scope {
    const char *part[5];
    size_t len[5];
};

/* ================= small helpers ================= */

static void set_why(char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_why(char *why, size_t why_len, const char *fmt, ...)
{
    if (why == NULL || why_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
    /* Reasons may quote request bytes (a key id, a region): keep them safe to log. */
    for (char *p = why; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
}

static void params_init(struct sig_params *p)
{
    memset(p, 0, sizeof(*p));
    buf_init(&p->credential);
    buf_init(&p->signed_headers);
    buf_init(&p->signature);
    buf_init(&p->amz_date);
    buf_init(&p->algorithm);
    buf_init(&p->expires);
}

static void params_free(struct sig_params *p)
{
    buf_free(&p->credential);
    buf_free(&p->signed_headers);
    buf_free(&p->signature);
    buf_free(&p->amz_date);
    buf_free(&p->algorithm);
    buf_free(&p->expires);
}

static const char *bstr(const struct buf *b)
{
    return b->data ? b->data : "";
}

/* First header named `name` and how many there are. */
static const struct http_header *find_header(const struct auth_request *req, const char *name,
                                             size_t *count)
{
    const struct http_header *first = NULL;
    *count = 0;
    for (size_t i = 0; i < req->n_headers; i++) {
        if (str_ieq_c(req->headers[i].name, req->headers[i].name_len, name)) {
            if (first == NULL)
                first = &req->headers[i];
            (*count)++;
        }
    }
    return first;
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void trim(const char **s, size_t *n)
{
    while (*n > 0 && is_ws(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && is_ws((*s)[*n - 1]))
        (*n)--;
}

/* True when an Authorization value names the SigV4 algorithm. */
static bool is_sigv4_authorization(const char *v, size_t n)
{
    size_t al = strlen(AUTH__ALGORITHM);
    trim(&v, &n);
    return n >= al && memcmp(v, AUTH__ALGORITHM, al) == 0 && (n == al || is_ws(v[al]));
}

static bool query_has_sig_param(const char *q, size_t len)
{
    if (q == NULL)
        return false;
    struct buf key;
    buf_init(&key);
    bool found = false;
    size_t start = 0;
    for (size_t i = 0; i <= len && !found; i++) {
        if (i < len && q[i] != '&')
            continue;
        const char *part = q + start;
        size_t plen = i - start;
        start = i + 1;
        const char *eq = memchr(part, '=', plen);
        buf_reset(&key);
        auth__percent_decode(&key, part, eq ? (size_t)(eq - part) : plen);
        found = str_eq_c(bstr(&key), key.len, "X-Amz-Signature") ||
                str_eq_c(bstr(&key), key.len, "X-Amz-Algorithm");
    }
    buf_free(&key);
    return found;
}

bool auth_sigv4_present(const struct auth_request *req)
{
    size_t n;
    const struct http_header *h = find_header(req, "authorization", &n);
    if (h && is_sigv4_authorization(h->value, h->value_len))
        return true;
    return query_has_sig_param(req->query, req->query_len);
}

const char *auth_result_name(enum auth_result r)
{
    switch (r) {
    case AUTH_OK:
        return "AUTH_OK";
    case AUTH_NOT_SIGNED:
        return "AUTH_NOT_SIGNED";
    case AUTH_MALFORMED:
        return "AUTH_MALFORMED";
    case AUTH_UNKNOWN_KEY:
        return "AUTH_UNKNOWN_KEY";
    case AUTH_BAD_SCOPE:
        return "AUTH_BAD_SCOPE";
    case AUTH_EXPIRED:
        return "AUTH_EXPIRED";
    case AUTH_BAD_SIGNATURE:
        return "AUTH_BAD_SIGNATURE";
    case AUTH_MISSING_HOST:
        return "AUTH_MISSING_HOST";
    }
    return "AUTH_?";
}

/* ================= dates ================= */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil algorithm, public domain description). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* Parses the ISO 8601 basic format SigV4 uses, YYYYMMDD'T'HHMMSS'Z'. */
static bool parse_amz_date(const char *s, size_t n, int64_t *out)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, se;
    if (n != AMZ_DATE_LEN || s[8] != 'T' || s[15] != 'Z')
        return false;
    if (!digits(s, 4, &y) || !digits(s + 4, 2, &mo) || !digits(s + 6, 2, &d) ||
        !digits(s + 9, 2, &h) || !digits(s + 11, 2, &mi) || !digits(s + 13, 2, &se))
        return false;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 59)
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo == 2 && d == 29 && !leap)
        return false;
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
    return true;
}

static void format_amz_date(int64_t t, struct buf *out)
{
    time_t tt = (time_t)t;
    struct tm tm;
    char tmp[32];
    gmtime_r(&tt, &tm);
    size_t n = strftime(tmp, sizeof(tmp), "%Y%m%dT%H%M%SZ", &tm);
    buf_append(out, tmp, n);
}

/* ================= locating and parsing the parameters ================= */

/* Header form: "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...".
 * Items are split on ',' and trimmed, so ", " and "," both work (aws-wire.md §6.1). */
static enum auth_result parse_authorization(const char *v, size_t n, struct sig_params *p,
                                            char *why, size_t why_len)
{
    trim(&v, &n);
    size_t al = strlen(AUTH__ALGORITHM);
    v += al;
    n -= al;
    struct buf *slot[3] = {&p->credential, &p->signed_headers, &p->signature};
    static const char *const names[3] = {"Credential", "SignedHeaders", "Signature"};
    bool seen[3] = {false, false, false};
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && v[i] != ',')
            continue;
        const char *item = v + start;
        size_t ilen = i - start;
        start = i + 1;
        trim(&item, &ilen);
        if (ilen == 0)
            continue;
        const char *eq = memchr(item, '=', ilen);
        if (eq == NULL) {
            set_why(why, why_len, "Authorization parameter without '='");
            return AUTH_MALFORMED;
        }
        const char *key = item, *val = eq + 1;
        size_t klen = (size_t)(eq - item), vlen = ilen - klen - 1;
        trim(&key, &klen);
        trim(&val, &vlen);
        for (int k = 0; k < 3; k++) {
            if (!str_eq_c(key, klen, names[k]))
                continue;
            if (seen[k]) {
                set_why(why, why_len, "Authorization repeats %s", names[k]);
                return AUTH_MALFORMED;
            }
            seen[k] = true;
            buf_append(slot[k], val, vlen);
        }
    }
    for (int k = 0; k < 3; k++) {
        if (!seen[k] || slot[k]->len == 0) {
            set_why(why, why_len, "Authorization requires %s", names[k]);
            return AUTH_MALFORMED;
        }
    }
    return AUTH_OK;
}

/* Header form date: X-Amz-Date, else Date (RFC 9110 §5.6.7) converted to the
 * basic format, as the string to sign needs it. */
static enum auth_result header_date(const struct auth_request *req, struct sig_params *p, char *why,
                                    size_t why_len)
{
    size_t count;
    const struct http_header *h = find_header(req, "x-amz-date", &count);
    if (count > 1) {
        set_why(why, why_len, "X-Amz-Date repeated");
        return AUTH_MALFORMED;
    }
    if (h != NULL) {
        const char *v = h->value;
        size_t n = h->value_len;
        trim(&v, &n);
        buf_append(&p->amz_date, v, n);
        return AUTH_OK;
    }
    h = find_header(req, "date", &count);
    if (h == NULL || count > 1) {
        set_why(why, why_len, "X-Amz-Date or Date header required");
        return AUTH_MALFORMED;
    }
    int64_t t = http_parse_date(h->value, h->value_len);
    if (t < 0) {
        set_why(why, why_len, "Date header is not an HTTP date");
        return AUTH_MALFORMED;
    }
    format_amz_date(t, &p->amz_date);
    return AUTH_OK;
}

/* Query form: the X-Amz-* parameters, percent-decoded. A repeated one is refused
 * rather than guessing which copy the signer meant. */
static enum auth_result parse_presigned(const char *q, size_t len, struct sig_params *p, char *why,
                                        size_t why_len)
{
    static const char *const names[] = {"X-Amz-Algorithm",     "X-Amz-Credential",
                                        "X-Amz-Date",          "X-Amz-Expires",
                                        "X-Amz-SignedHeaders", "X-Amz-Signature"};
    struct buf *slot[] = {&p->algorithm, &p->credential,     &p->amz_date,
                          &p->expires,   &p->signed_headers, &p->signature};
    bool seen[6] = {false};
    struct buf key;
    buf_init(&key);
    enum auth_result rc = AUTH_OK;
    size_t start = 0;
    for (size_t i = 0; i <= len && rc == AUTH_OK; i++) {
        if (i < len && q[i] != '&')
            continue;
        const char *part = q + start;
        size_t plen = i - start;
        start = i + 1;
        const char *eq = memchr(part, '=', plen);
        size_t klen = eq ? (size_t)(eq - part) : plen;
        buf_reset(&key);
        auth__percent_decode(&key, part, klen);
        for (size_t k = 0; k < GATE_ARRAY_LEN(names); k++) {
            if (!str_eq_c(bstr(&key), key.len, names[k]))
                continue;
            if (seen[k]) {
                set_why(why, why_len, "%s repeated", names[k]);
                rc = AUTH_MALFORMED;
                break;
            }
            seen[k] = true;
            if (eq)
                auth__percent_decode(slot[k], eq + 1, plen - klen - 1);
        }
    }
    buf_free(&key);
    if (rc != AUTH_OK)
        return rc;
    for (size_t k = 0; k < GATE_ARRAY_LEN(names); k++) {
        /* X-Amz-Expires may be absent: the aws4 signer omits it. */
        if (k != 3 && (!seen[k] || slot[k]->len == 0)) {
            set_why(why, why_len, "presigned URL requires %s", names[k]);
            return AUTH_MALFORMED;
        }
    }
    p->has_expires = seen[3];
    if (!str_eq_c(bstr(&p->algorithm), p->algorithm.len, AUTH__ALGORITHM)) {
        set_why(why, why_len, "X-Amz-Algorithm must be " AUTH__ALGORITHM);
        return AUTH_MALFORMED;
    }
    return AUTH_OK;
}

/* Fills p from whichever form the request uses. */
static enum auth_result locate(const struct auth_request *req, struct sig_params *p, char *why,
                               size_t why_len)
{
    size_t count;
    const struct http_header *h = find_header(req, "authorization", &count);
    if (h != NULL && is_sigv4_authorization(h->value, h->value_len)) {
        if (count > 1) {
            set_why(why, why_len, "Authorization repeated");
            return AUTH_MALFORMED;
        }
        enum auth_result rc = parse_authorization(h->value, h->value_len, p, why, why_len);
        if (rc != AUTH_OK)
            return rc;
        return header_date(req, p, why, why_len);
    }
    if (query_has_sig_param(req->query, req->query_len)) {
        p->presigned = true;
        return parse_presigned(req->query, req->query_len, p, why, why_len);
    }
    set_why(why, why_len, "request is not signed");
    return AUTH_NOT_SIGNED;
}

/* ================= checks before hashing ================= */

static enum auth_result check_scope(const struct sig_params *p, struct scope *sc,
                                    const char *service, const char *region, char *why,
                                    size_t why_len)
{
    const char *c = bstr(&p->credential);
    size_t n = p->credential.len, start = 0, k = 0, slashes = 0;
    for (size_t i = 0; i < n; i++)
        slashes += c[i] == '/';
    for (size_t i = 0; i <= n && slashes == 4; i++) {
        if (i < n && c[i] != '/')
            continue;
        sc->part[k] = c + start;
        sc->len[k] = i - start;
        k++;
        start = i + 1;
    }
    if (slashes != 4 || sc->len[0] == 0) {
        set_why(why, why_len, "Credential must be AKID/DATE/REGION/SERVICE/aws4_request");
        return AUTH_MALFORMED;
    }
    if (!str_eq_c(sc->part[4], sc->len[4], "aws4_request")) {
        set_why(why, why_len, "credential scope must end in aws4_request");
        return AUTH_BAD_SCOPE;
    }
    /* The scope date must be the day of the request date (General Reference,
     * "Create a string to sign": credential scope). */
    if (p->amz_date.len < 8 || sc->len[1] != 8 || memcmp(sc->part[1], p->amz_date.data, 8) != 0) {
        set_why(why, why_len, "credential scope date does not match the request date");
        return AUTH_BAD_SCOPE;
    }
    if (!str_eq_c(sc->part[2], sc->len[2], region)) {
        set_why(why, why_len, "credential scope region '%.*s' is not '%s'",
                (int)GATE_MIN(sc->len[2], 40), sc->part[2], region);
        return AUTH_BAD_SCOPE;
    }
    if (!str_eq_c(sc->part[3], sc->len[3], service)) {
        set_why(why, why_len, "credential scope service '%.*s' is not '%s'",
                (int)GATE_MIN(sc->len[3], 40), sc->part[3], service);
        return AUTH_BAD_SCOPE;
    }
    return AUTH_OK;
}

static bool is_header_name_char(unsigned char c)
{
    /* RFC 9110 §5.6.2 tchar, lower case only: SignedHeaders lists lower-cased names. */
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c);
}

/* SignedHeaders: lower-case names, ';'-separated, sorted, unique; must list host
 * ("'Host' or ':authority' must be a 'SignedHeader'", aws-wire.md §6.2). */
static enum auth_result check_signed_headers(const struct buf *sh, char *why, size_t why_len)
{
    const char *s = bstr(sh);
    size_t n = sh->len, start = 0;
    const char *prev = NULL;
    size_t prev_len = 0;
    bool host = false;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != ';') {
            if (s[i] == '\0' || !is_header_name_char((unsigned char)s[i])) {
                set_why(why, why_len, "SignedHeaders must be lower-case header names");
                return AUTH_MALFORMED;
            }
            continue;
        }
        const char *name = s + start;
        size_t len = i - start;
        start = i + 1;
        if (len == 0) {
            set_why(why, why_len, "SignedHeaders has an empty name");
            return AUTH_MALFORMED;
        }
        if (prev != NULL) {
            int c = memcmp(prev, name, GATE_MIN(prev_len, len));
            if (c > 0 || (c == 0 && prev_len >= len)) {
                set_why(why, why_len, "SignedHeaders must be sorted and unique");
                return AUTH_MALFORMED;
            }
        }
        prev = name;
        prev_len = len;
        host = host || str_eq_c(name, len, "host");
    }
    if (!host) {
        set_why(why, why_len, "SignedHeaders must include host");
        return AUTH_MISSING_HOST;
    }
    return AUTH_OK;
}

static enum auth_result check_time(const struct sig_params *p, int64_t now, char *why,
                                   size_t why_len)
{
    int64_t lifetime = AUTH_MAX_SKEW_SEC;
    if (p->presigned && p->has_expires) {
        uint64_t e;
        /* X-Amz-Expires: 1 second to 7 days (General Reference, "presigned URL"). */
        if (!str_to_u64(bstr(&p->expires), p->expires.len, &e) || e < 1 ||
            e > PRESIGN_MAX_EXPIRES) {
            set_why(why, why_len, "X-Amz-Expires must be 1..604800");
            return AUTH_MALFORMED;
        }
        lifetime = (int64_t)e;
    }
    if (p->date_sec - now > AUTH_MAX_SKEW_SEC) {
        set_why(why, why_len, "signature not yet current: %s", bstr(&p->amz_date));
        return AUTH_EXPIRED;
    }
    if (now - p->date_sec > lifetime) {
        set_why(why, why_len, "signature expired: %s", bstr(&p->amz_date));
        return AUTH_EXPIRED;
    }
    return AUTH_OK;
}

static const struct cfg_identity *find_identity(const struct cfg *cfg, const char *akid, size_t len)
{
    for (size_t i = 0; cfg != NULL && i < cfg->n_identities; i++) {
        const struct cfg_identity *id = &cfg->identities[i];
        if (id->access_key_id && id->secret_access_key && str_eq_c(akid, len, id->access_key_id))
            return id;
    }
    return NULL;
}

/* ================= hashing and signing ================= */

/* The payload hashes a signature may be over (one or two), as NUL-terminated strings. */
struct payloads {
    char value[2][SIG_HEX_LEN + 1];
    int n;
};

static enum auth_result payload_hashes(const struct auth_request *req, bool presigned,
                                       struct payloads *out, char *why, size_t why_len)
{
    uint8_t d[CRY_SHA256_LEN];
    char body_hex[SIG_HEX_LEN + 1];
    cry_sha256(req->body ? req->body : "", req->body ? req->body_len : 0, d);
    cry_hex(d, sizeof(d), body_hex);
    size_t count;
    const struct http_header *h = find_header(req, "x-amz-content-sha256", &count);
    out->n = 0;
    if (count > 1) {
        set_why(why, why_len, "x-amz-content-sha256 repeated");
        return AUTH_MALFORMED;
    }
    if (h != NULL) {
        const char *v = h->value;
        size_t n = h->value_len;
        trim(&v, &n);
        if (str_eq_c(v, n, AUTH__UNSIGNED_PAYLOAD)) {
            memcpy(out->value[out->n++], AUTH__UNSIGNED_PAYLOAD, sizeof(AUTH__UNSIGNED_PAYLOAD));
            return AUTH_OK;
        }
        /* The header claims a hash: it must be the body's, or the signature
         * would vouch for a body that was never sent (aws-wire.md §6.3). */
        if (!str_eq_c(v, n, body_hex)) {
            set_why(why, why_len, "x-amz-content-sha256 does not match the body");
            return AUTH_BAD_SIGNATURE;
        }
    }
    memcpy(out->value[out->n++], body_hex, sizeof(body_hex));
    /* botocore's S3 presigner and others sign presigned URLs over UNSIGNED-PAYLOAD,
     * while smithy, aws4 and aws-c-auth hash the (empty) body: accept both. */
    if (presigned && h == NULL)
        memcpy(out->value[out->n++], AUTH__UNSIGNED_PAYLOAD, sizeof(AUTH__UNSIGNED_PAYLOAD));
    return AUTH_OK;
}

/* kSigning = HMAC chain over date, region, service, "aws4_request"
 * (General Reference, "Calculate the signature"). */
static void signing_key(const char *secret, const struct scope *sc, uint8_t key[CRY_SHA256_LEN])
{
    struct buf k0;
    buf_init(&k0);
    buf_append_str(&k0, "AWS4");
    buf_append_str(&k0, secret);
    cry_hmac_sha256(k0.data, k0.len, sc->part[1], sc->len[1], key);
    cry_cleanse(k0.data, k0.cap);
    buf_free(&k0);
    for (int i = 2; i <= 4; i++)
        cry_hmac_sha256(key, CRY_SHA256_LEN, sc->part[i], sc->len[i], key);
}

/* Computes the hex signature for one payload hash; -1 when a signed header is missing. */
static int compute_signature(const struct auth_request *req, const struct sig_params *p,
                             const struct scope *sc, const uint8_t key[CRY_SHA256_LEN],
                             const char *payload, char out[SIG_HEX_LEN + 1], char *why,
                             size_t why_len)
{
    struct buf creq, sts;
    buf_init(&creq);
    buf_init(&sts);
    const char *missing = NULL;
    size_t missing_len = 0;
    int rc = auth__canonical_request(&creq, req, bstr(&p->signed_headers), p->signed_headers.len,
                                     p->presigned, payload, &missing, &missing_len);
    if (rc == 0) {
        uint8_t d[CRY_SHA256_LEN];
        char hex[SIG_HEX_LEN + 1];
        cry_sha256(creq.data, creq.len, d);
        cry_hex(d, sizeof(d), hex);
        buf_append_str(&sts, AUTH__ALGORITHM "\n");
        buf_append(&sts, p->amz_date.data, p->amz_date.len);
        buf_append_char(&sts, '\n');
        /* The scope as the client wrote it: DATE/REGION/SERVICE/aws4_request. */
        buf_append(&sts, sc->part[1], (size_t)(sc->part[4] + sc->len[4] - sc->part[1]));
        buf_append_char(&sts, '\n');
        buf_append_str(&sts, hex);
        cry_hmac_sha256(key, CRY_SHA256_LEN, sts.data, sts.len, d);
        cry_hex(d, sizeof(d), out);
    } else {
        set_why(why, why_len, "signed header '%.*s' is not in the request",
                (int)GATE_MIN(missing_len, 40), missing);
    }
    buf_free(&creq);
    buf_free(&sts);
    return rc;
}

/* Lower-cases a 64-digit hex signature into out; false when it is not one. */
static bool normalize_signature(const struct buf *sig, char out[SIG_HEX_LEN + 1])
{
    if (sig->len != SIG_HEX_LEN)
        return false;
    for (size_t i = 0; i < SIG_HEX_LEN; i++) {
        char c = sig->data[i];
        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
        out[i] = c;
    }
    out[SIG_HEX_LEN] = '\0';
    return true;
}

static enum auth_result check_signature(const struct auth_request *req, const struct sig_params *p,
                                        const struct scope *sc, const struct cfg_identity *id,
                                        char *why, size_t why_len)
{
    struct payloads pl;
    enum auth_result rc = payload_hashes(req, p->presigned, &pl, why, why_len);
    if (rc != AUTH_OK)
        return rc;
    char given[SIG_HEX_LEN + 1];
    bool well_formed = normalize_signature(&p->signature, given);
    uint8_t key[CRY_SHA256_LEN];
    signing_key(id->secret_access_key, sc, key);
    bool match = false;
    for (int i = 0; i < pl.n; i++) {
        char want[SIG_HEX_LEN + 1];
        if (compute_signature(req, p, sc, key, pl.value[i], want, why, why_len) != 0) {
            rc = AUTH_BAD_SIGNATURE;
            break;
        }
        /* Constant time: timing must not reveal how much of a guess was right. */
        match |= well_formed && cry_mem_equal(want, given, SIG_HEX_LEN);
        cry_cleanse(want, sizeof(want));
    }
    cry_cleanse(key, sizeof(key));
    if (rc == AUTH_OK && !match) {
        set_why(why, why_len, "signature does not match (access key %.*s)",
                (int)GATE_MIN(sc->len[0], 64), sc->part[0]);
        rc = AUTH_BAD_SIGNATURE;
    }
    return rc;
}

/* ================= entry point ================= */

enum auth_result auth_sigv4_verify(const struct cfg *cfg, const struct auth_request *req,
                                   const char *service, const char *region, int64_t now_sec,
                                   const struct cfg_identity **who, char *why, size_t why_len)
{
    struct sig_params p;
    struct scope sc;
    const struct cfg_identity *id = NULL;
    params_init(&p);
    if (who)
        *who = NULL;
    set_why(why, why_len, "ok");
    enum auth_result rc = locate(req, &p, why, why_len);
    if (rc != AUTH_OK)
        goto out;
    if (!parse_amz_date(bstr(&p.amz_date), p.amz_date.len, &p.date_sec)) {
        set_why(why, why_len, "X-Amz-Date must be YYYYMMDDTHHMMSSZ");
        rc = AUTH_MALFORMED;
        goto out;
    }
    rc = check_scope(&p, &sc, service, region, why, why_len);
    if (rc != AUTH_OK)
        goto out;
    rc = check_signed_headers(&p.signed_headers, why, why_len);
    if (rc != AUTH_OK)
        goto out;
    rc = check_time(&p, now_sec, why, why_len);
    if (rc != AUTH_OK)
        goto out;
    id = find_identity(cfg, sc.part[0], sc.len[0]);
    if (id == NULL) {
        set_why(why, why_len, "unknown access key id %.*s", (int)GATE_MIN(sc.len[0], 64),
                sc.part[0]);
        rc = AUTH_UNKNOWN_KEY;
        goto out;
    }
    rc = check_signature(req, &p, &sc, id, why, why_len);
    if (rc == AUTH_OK && who)
        *who = id;
out:
    params_free(&p);
    return rc;
}
