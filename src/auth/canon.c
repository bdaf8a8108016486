/*
 * canon — the SigV4 canonical request (AWS General Reference, "Create a
 * canonical request for Signature Version 4"), built from the request exactly
 * as it arrived: raw percent-encoded path and query, headers in arrival order.
 *
 * Rules follow what real signers produce (botocore, @smithy/signature-v4,
 * aws4, aws-c-auth) for services other than S3; see aws-wire.md §6.3 and
 * shared/spec/tools/sigv4_ref.py. All output goes to growable buffers; no
 * input is trusted to be short or well formed.
 */
#include <stdlib.h>
#include <string.h>

#include "auth/auth_int.h"

/* ================= encoding ================= */

static bool is_unreserved(unsigned char c)
{
    /* RFC 3986 §2.3 unreserved characters: SigV4 leaves exactly these as is. */
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

void auth__uri_encode(struct buf *out, const char *s, size_t n, bool keep_slash)
{
    static const char digits[] = "0123456789ABCDEF";
    buf_reserve(out, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_unreserved(c) || (keep_slash && c == '/')) {
            buf_append_char(out, (char)c);
        } else {
            char esc[3] = {'%', digits[c >> 4], digits[c & 0xf]};
            buf_append(out, esc, 3);
        }
    }
}

void auth__percent_decode(struct buf *out, const char *s, size_t n)
{
    buf_reserve(out, n);
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < n && (hi = str_hex_digit((char)s[i + 1])) >= 0 &&
            (lo = str_hex_digit((char)s[i + 2])) >= 0) {
            buf_append_char(out, (char)(hi << 4 | lo));
            i += 2;
        } else {
            /* '+' is not a space in SigV4: signers encode a literal '+' as %2B. */
            buf_append_char(out, s[i]);
        }
    }
}

/* ================= canonical URI ================= */

struct seg {
    const char *p;
    size_t len;
};

void auth__canonical_uri(struct buf *out, const char *path, size_t len)
{
    if (len == 0) {
        buf_append_char(out, '/');
        return;
    }
    /* Non-S3 services normalise the path (RFC 3986 §5.2.4 dot segments) and
     * drop empty segments, as the suite's normalize-path cases and botocore's
     * normalize_url_path do; the survivors are then encoded once more, so a
     * '%' already on the wire becomes %25 (the signers' double encoding). */
    size_t max = 1;
    for (size_t i = 0; i < len; i++)
        max += path[i] == '/';
    struct seg *segs = xmalloc(max * sizeof(*segs));
    size_t n = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && path[i] != '/')
            continue;
        const char *p = path + start;
        size_t sl = i - start;
        start = i + 1;
        if (sl == 0 || (sl == 1 && p[0] == '.'))
            continue;
        if (sl == 2 && p[0] == '.' && p[1] == '.') {
            if (n > 0)
                n--;
            continue;
        }
        segs[n].p = p;
        segs[n].len = sl;
        n++;
    }
    size_t before = out->len;
    if (path[0] == '/')
        buf_append_char(out, '/');
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            buf_append_char(out, '/');
        auth__uri_encode(out, segs[i].p, segs[i].len, false);
    }
    if (n > 0 && path[len - 1] == '/')
        buf_append_char(out, '/');
    if (out->len == before)
        buf_append_char(out, '/');
    free(segs);
}

/* ================= canonical query ================= */

struct qpair {
    size_t koff, klen, voff, vlen; /* offsets into the encoded buffer */
};

static int cmp_span(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, GATE_MIN(alen, blen));
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen;
}

static int cmp_qpair(const void *x, const void *y, void *ctx)
{
    const char *base = ctx;
    const struct qpair *a = x, *b = y;
    /* Sort by encoded name, then encoded value: not by the joined "k=v"
     * (AWS General Reference: "Sort the parameter names ... by code point"). */
    int c = cmp_span(base + a->koff, a->klen, base + b->koff, b->klen);
    if (c != 0)
        return c;
    return cmp_span(base + a->voff, a->vlen, base + b->voff, b->vlen);
}

/* Decodes then strictly re-encodes s[0..n) into enc; returns the offset. */
static size_t reencode(struct buf *enc, struct buf *tmp, const char *s, size_t n)
{
    buf_reset(tmp);
    auth__percent_decode(tmp, s, n);
    size_t off = enc->len;
    auth__uri_encode(enc, tmp->data ? tmp->data : "", tmp->len, false);
    return off;
}

void auth__canonical_query(struct buf *out, const char *q, size_t len, bool drop_signature)
{
    if (q == NULL || len == 0)
        return;
    size_t max = 1;
    for (size_t i = 0; i < len; i++)
        max += q[i] == '&';
    struct qpair *pairs = xmalloc(max * sizeof(*pairs));
    size_t n = 0;
    struct buf enc, tmp;
    buf_init(&enc);
    buf_init(&tmp);
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && q[i] != '&')
            continue;
        const char *part = q + start;
        size_t plen = i - start;
        start = i + 1;
        if (plen == 0)
            continue;
        const char *eq = memchr(part, '=', plen);
        size_t klen = eq ? (size_t)(eq - part) : plen;
        const char *v = eq ? eq + 1 : part + plen;
        size_t vlen = eq ? plen - klen - 1 : 0;
        if (drop_signature) {
            buf_reset(&tmp);
            auth__percent_decode(&tmp, part, klen);
            /* X-Amz-Signature is never part of its own canonical query
             * (AWS General Reference, "Add the signing information to the query string"). */
            if (tmp.len == 15 && memcmp(tmp.data, "X-Amz-Signature", 15) == 0)
                continue;
        }
        struct qpair *qp = &pairs[n++];
        qp->koff = reencode(&enc, &tmp, part, klen);
        qp->klen = enc.len - qp->koff;
        qp->voff = reencode(&enc, &tmp, v, vlen);
        qp->vlen = enc.len - qp->voff;
    }
    if (n > 0) {
        qsort_r(pairs, n, sizeof(*pairs), cmp_qpair, enc.data);
        for (size_t i = 0; i < n; i++) {
            if (i > 0)
                buf_append_char(out, '&');
            buf_append(out, enc.data + pairs[i].koff, pairs[i].klen);
            buf_append_char(out, '=');
            buf_append(out, enc.data + pairs[i].voff, pairs[i].vlen);
        }
    }
    buf_free(&enc);
    buf_free(&tmp);
    free(pairs);
}

/* ================= canonical headers ================= */

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Appends v trimmed, each run of whitespace collapsed to one space (also inside
 * quotes, and obs-fold newlines): what botocore and the newer suite do. */
static void append_collapsed(struct buf *out, const char *v, size_t n)
{
    size_t i = 0;
    while (i < n && is_space((unsigned char)v[i]))
        i++;
    while (n > i && is_space((unsigned char)v[n - 1]))
        n--;
    bool in_space = false;
    for (; i < n; i++) {
        if (is_space((unsigned char)v[i])) {
            in_space = true;
            continue;
        }
        if (in_space)
            buf_append_char(out, ' ');
        in_space = false;
        buf_append_char(out, v[i]);
    }
}

/* Appends "name:v1,v2\n" for every occurrence of `name` in arrival order;
 * false when there is none. */
static bool append_header(struct buf *out, const struct auth_request *req, const char *name,
                          size_t nlen)
{
    bool found = false;
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct http_header *h = &req->headers[i];
        if (!str_ieq(h->name, h->name_len, name, nlen))
            continue;
        if (!found) {
            buf_append(out, name, nlen);
            buf_append_char(out, ':');
        } else {
            buf_append_char(out, ',');
        }
        found = true;
        append_collapsed(out, h->value, h->value_len);
    }
    if (found)
        buf_append_char(out, '\n');
    return found;
}

int auth__canonical_request(struct buf *out, const struct auth_request *req,
                            const char *signed_headers, size_t sh_len, bool presigned,
                            const char *payload_hash, const char **missing, size_t *missing_len)
{
    buf_append(out, req->method, req->method_len);
    buf_append_char(out, '\n');
    auth__canonical_uri(out, req->path, req->path_len);
    buf_append_char(out, '\n');
    auth__canonical_query(out, req->query, req->query_len, presigned);
    buf_append_char(out, '\n');
    size_t start = 0;
    for (size_t i = 0; i <= sh_len; i++) {
        if (i < sh_len && signed_headers[i] != ';')
            continue;
        const char *name = signed_headers + start;
        size_t nlen = i - start;
        start = i + 1;
        if (!append_header(out, req, name, nlen)) {
            *missing = name;
            *missing_len = nlen;
            return -1;
        }
    }
    buf_append_char(out, '\n');
    buf_append(out, signed_headers, sh_len);
    buf_append_char(out, '\n');
    buf_append_str(out, payload_hash);
    return 0;
}
