/*
 * route/match.c — choosing API, stage, resource and method for a request,
 * building the integration URL and the cache key.
 *
 * Precedence (API Gateway's): per path segment a literal beats {param} beats
 * {greedy+}, compared left to right; a method's own entry beats ANY.
 */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "crypto/crypto.h"
#include "route/route.h"
#include "route/route_int.h"

#define MAX_SEGS 64

/* ================= resources ================= */

struct span {
    const char *p;
    size_t len;
};

/* Splits "/a/b/c" into segment spans; a trailing "/" adds no segment.
 * Returns the count, or -1 when there are more than `max`. */
static int split_path(const char *path, size_t len, struct span *segs, int max)
{
    int n = 0;
    size_t i = 0;
    while (i < len) {
        if (path[i] == '/') {
            i++;
            continue;
        }
        size_t start = i;
        while (i < len && path[i] != '/')
            i++;
        if (n == max)
            return -1;
        segs[n].p = path + start;
        segs[n].len = i - start;
        n++;
    }
    return n;
}

/* Matches against pre-split path segments; score encodes per-segment ranks
 * (3 literal, 2 param, 1 greedy) as base-4 digits, most significant first,
 * so a plain integer comparison gives API Gateway's left-to-right precedence. */
/* Only the first 31 segments rank (31 base-4 digits fit in 62 bits); deeper
 * segments still have to match. */
static uint64_t push_rank(uint64_t sc, int depth, unsigned rank)
{
    return depth < 31 ? sc * 4 + rank : sc;
}

static int match_segs(const struct route_resource *r, const struct span *segs, int n,
                      struct route_param *params, size_t *n_params, uint64_t *score)
{
    uint64_t sc = 0;
    size_t np = 0;
    int i = 0;
    for (size_t k = 0; k < r->n_segs; k++) {
        const struct route_seg *s = &r->segs[k];
        if (i >= n)
            return -1;
        if (s->kind == ROUTE_SEG_GREEDY) {
            /* {proxy+} takes every remaining segment (at least one). */
            if (np < ROUTE_MAX_PARAMS) {
                params[np].name = s->text;
                params[np].name_len = s->len;
                params[np].value = segs[i].p;
                params[np].value_len = (size_t)(segs[n - 1].p + segs[n - 1].len - segs[i].p);
                np++;
            }
            for (; i < n; i++)
                sc = push_rank(sc, i, 1);
            break;
        }
        if (s->kind == ROUTE_SEG_LITERAL) {
            if (segs[i].len != s->len || memcmp(segs[i].p, s->text, s->len) != 0)
                return -1;
            sc = push_rank(sc, i, 3);
        } else {
            if (np < ROUTE_MAX_PARAMS) {
                params[np].name = s->text;
                params[np].name_len = s->len;
                params[np].value = segs[i].p;
                params[np].value_len = segs[i].len;
                np++;
            }
            sc = push_rank(sc, i, 2);
        }
        i++;
    }
    if (i != n)
        return -1;
    *n_params = np;
    *score = sc;
    return 0;
}

int route_resource_match(const struct route_resource *r, const char *path, size_t len,
                         struct route_param *params, size_t *n_params)
{
    struct span segs[MAX_SEGS];
    int n = split_path(path, len, segs, MAX_SEGS);
    uint64_t score;
    if (n < 0 || match_segs(r, segs, n, params, n_params, &score) != 0)
        return -1;
    return (int)(score & 0x7fffffff);
}

static bool has_dot_segment(const struct span *segs, int n)
{
    for (int i = 0; i < n; i++) {
        /* Every dot segment starts with '.' or '%' (segments are never empty). */
        if (segs[i].p[0] != '.' && segs[i].p[0] != '%')
            continue;
        if (str_eq_c(segs[i].p, segs[i].len, ".") || str_eq_c(segs[i].p, segs[i].len, ".."))
            return true;
        /* Percent-encoded dots are dot segments to an origin that decodes. */
        if (segs[i].len <= 6 && (str_ieq_c(segs[i].p, segs[i].len, "%2e") ||
                                 str_ieq_c(segs[i].p, segs[i].len, "%2e%2e") ||
                                 str_ieq_c(segs[i].p, segs[i].len, ".%2e") ||
                                 str_ieq_c(segs[i].p, segs[i].len, "%2e.")))
            return true;
    }
    return false;
}

/* The method entry of a resource for a request method: its own entry, else
 * ANY, else NULL. */
static const struct route_method *pick_method(const struct route_resource *res,
                                              const char *method, size_t method_len)
{
    const struct route_method *any = NULL, *own = NULL;
    for (size_t i = 0; i < res->n_methods; i++) {
        const struct route_method *rm = &res->methods[i];
        if (rm->is_any)
            any = rm;
        else if (rm->http_method_len == method_len &&
                 memcmp(method, rm->cfg->http_method, method_len) == 0)
            own = rm;
    }
    return own ? own : any;
}

/* Finds resource and method in an API for a path within a stage. */
static int match_in_api(const struct route_api *api, const char *method, size_t method_len,
                        const char *path, size_t path_len, struct route_match *m)
{
    struct span segs[MAX_SEGS];
    int n = split_path(path, path_len, segs, MAX_SEGS);
    if (n < 0 || has_dot_segment(segs, n))
        return ROUTE_BAD_PATH;
    const struct route_resource *best = NULL;
    uint64_t best_score = 0;
    struct route_param params[ROUTE_MAX_PARAMS];
    size_t np;
    for (size_t r = 0; r < api->n_resources; r++) {
        uint64_t score;
        const struct route_resource *res = &api->resources[r];
        if (match_segs(res, segs, n, params, &np, &score) != 0)
            continue;
        if (!best || score > best_score) {
            best = res;
            best_score = score;
            /* Keep the winner's params: matching it again would cost more. */
            memcpy(m->params, params, np * sizeof(params[0]));
            m->n_params = np;
        }
    }
    if (!best)
        return ROUTE_NO_RESOURCE;
    const struct route_method *rm = pick_method(best, method, method_len);
    if (!rm) {
        m->n_params = 0; /* a failed match fills nothing */
        return ROUTE_NO_METHOD;
    }
    m->api = api;
    m->resource = best;
    m->method = rm;
    m->path = path;
    m->path_len = path_len;
    return ROUTE_OK;
}

static bool find_stage(const struct cfg_api *api, const char *name, size_t len, size_t *idx)
{
    for (size_t i = 0; i < api->n_stages; i++)
        if (str_eq_c(name, len, api->stages[i].name)) {
            *idx = i;
            return true;
        }
    return false;
}

/* Host without its port. */
static size_t host_name_len(const char *host, size_t len)
{
    if (len && host[0] == '[') {
        const char *end = memchr(host, ']', len);
        return end ? (size_t)(end - host) + 1 : len;
    }
    const char *colon = memchr(host, ':', len);
    return colon ? (size_t)(colon - host) : len;
}

/* The base path mapping for this request, most specific first: longer base
 * paths before shorter, host-specific before host-less. */
static const struct route_mapping *find_mapping(const struct route_table *t, const char *host,
                                                size_t host_len, const char *path,
                                                size_t path_len, size_t *rest_off)
{
    const struct route_mapping *best = NULL;
    size_t best_len = 0;
    bool best_host = false;
    size_t hl = host ? host_name_len(host, host_len) : 0;
    for (size_t i = 0; i < t->n_mappings; i++) {
        const struct route_mapping *rmp = &t->mappings[i];
        const struct cfg_base_path_mapping *mp = rmp->cfg;
        if (mp->host && !(host && str_ieq_c(host, hl, mp->host)))
            continue;
        size_t bl = rmp->base_path_len;
        if (bl) {
            /* "/v1" must be followed by "/" or the end: "/v10" is not "/v1". */
            if (path_len < bl + 1 || memcmp(path + 1, mp->base_path, bl) != 0)
                continue;
            if (path_len > bl + 1 && path[bl + 1] != '/')
                continue;
        }
        bool better = !best || bl > best_len || (bl == best_len && mp->host && !best_host);
        if (better) {
            best = rmp;
            best_len = bl;
            best_host = mp->host != NULL;
        }
    }
    *rest_off = best_len ? best_len + 1 : 0;
    return best;
}

static int finish_match(const struct route_table *t, size_t api_idx, size_t stage_idx,
                        const char *method, size_t method_len, const char *rest,
                        size_t rest_len, struct route_match *m)
{
    const struct route_api *api = &t->apis[api_idx];
    static const char root[] = "/";
    if (rest_len == 0) {
        rest = root;
        rest_len = 1;
    }
    int rc = match_in_api(api, method, method_len, rest, rest_len, m);
    if (rc != ROUTE_OK)
        return rc;
    m->api_index = api_idx;
    m->stage_index = stage_idx;
    m->stage = &api->cfg->stages[stage_idx];
    /* A request's own method entry already knows its index; ANY does not. */
    int mi = m->method->is_any ? route__method_index(method, method_len) : m->method->method_index;
    m->settings = &m->method->settings[stage_idx * ROUTE_N_METHODS + (size_t)mi];
    return ROUTE_OK;
}

int route_match(const struct route_table *t, const char *host, size_t host_len,
                const char *method, size_t method_len, const char *path, size_t path_len,
                struct route_match *m)
{
    memset(m, 0, offsetof(struct route_match, params));
    m->n_params = 0;
    if (path_len == 0 || path[0] != '/')
        return ROUTE_BAD_PATH;
    size_t rest_off;
    const struct route_mapping *mp = find_mapping(t, host, host_len, path, path_len, &rest_off);
    if (mp) {
        GATE_ASSERT(mp->resolved);
        return finish_match(t, mp->api_index, mp->stage_index, method, method_len,
                            path + rest_off, path_len - rest_off, m);
    }
    /* Which API: the only one, or the one whose id is the first Host label. */
    size_t ai = 0;
    if (t->n_apis == 0)
        return ROUTE_NO_API;
    if (t->n_apis > 1) {
        bool found = false;
        size_t hl = host ? host_name_len(host, host_len) : 0;
        for (size_t i = 0; i < t->n_apis && !found; i++) {
            size_t idl = strlen(t->apis[i].cfg->id);
            if (hl > idl && host[idl] == '.' && memcmp(host, t->apis[i].cfg->id, idl) == 0) {
                ai = i;
                found = true;
            }
        }
        if (!found)
            return ROUTE_NO_API;
    }
    /* "/{stage}/rest" */
    const char *stage = path + 1;
    const char *slash = memchr(stage, '/', path_len - 1);
    size_t stage_len = slash ? (size_t)(slash - stage) : path_len - 1;
    size_t si;
    if (stage_len == 0 || !find_stage(t->apis[ai].cfg, stage, stage_len, &si))
        return ROUTE_NO_STAGE;
    size_t off = 1 + stage_len;
    return finish_match(t, ai, si, method, method_len, path + off, path_len - off, m);
}

/* ================= integration URL ================= */

static const struct route_param *find_param(const struct route_match *m, const char *name,
                                            size_t len)
{
    for (size_t i = 0; i < m->n_params; i++)
        if (m->params[i].name_len == len && memcmp(m->params[i].name, name, len) == 0)
            return &m->params[i];
    return NULL;
}

void route_build_url(const struct route_match *m, const char *query, size_t query_len,
                     struct buf *out)
{
    const char *uri = m->method->cfg->integration.uri;
    const char *p = uri;
    bool has_query = strchr(uri, '?') != NULL;
    while (*p) {
        const char *open = strchr(p, '{');
        const char *close = open ? strchr(open, '}') : NULL;
        if (!open || !close) {
            buf_append_str(out, p);
            break;
        }
        buf_append(out, p, (size_t)(open - p));
        size_t nlen = (size_t)(close - open - 1);
        if (nlen && open[nlen] == '+') /* "{proxy+}" written in the uri too */
            nlen--;
        const struct route_param *prm = find_param(m, open + 1, nlen);
        if (prm)
            buf_append(out, prm->value, prm->value_len);
        p = close + 1;
    }
    if (query && query_len) {
        buf_append_char(out, has_query ? '&' : '?');
        buf_append(out, query, query_len);
    }
}

/* ================= cache key ================= */

/* True when the raw query name decodes (%XX, and '+' as space, as form
 * decoders read it) to `name`: an origin that decodes "i%64" sees "id", so
 * the key must too, or one client could plant "id=7"'s answer under "no id". */
static bool query_name_is(const char *raw, size_t rlen, const char *name, size_t nlen)
{
    size_t i = 0, j = 0;
    while (i < rlen && j < nlen) {
        char ch = raw[i];
        if (ch == '%' && i + 2 < rlen && str_hex_digit(raw[i + 1]) >= 0 &&
            str_hex_digit(raw[i + 2]) >= 0) {
            ch = (char)(str_hex_digit(raw[i + 1]) * 16 + str_hex_digit(raw[i + 2]));
            i += 3;
        } else {
            ch = ch == '+' ? ' ' : ch;
            i++;
        }
        if (ch != name[j++])
            return false;
    }
    return i == rlen && j == nlen;
}

/* Appends every value of query parameter `name` (raw, in request order,
 * joined by '&', which no raw value can contain, so "?id=1&id=2" and
 * "?id=1,2" get different keys); returns false when the parameter is absent. */
static bool query_values(const char *q, size_t qlen, const char *name, size_t nlen,
                         struct buf *out)
{
    bool found = false;
    size_t i = 0;
    while (i <= qlen && q) {
        size_t start = i;
        while (i < qlen && q[i] != '&')
            i++;
        const char *pair = q + start;
        size_t plen = i - start;
        const char *eq = memchr(pair, '=', plen);
        size_t klen = eq ? (size_t)(eq - pair) : plen;
        if (klen >= nlen && query_name_is(pair, klen, name, nlen)) {
            if (found)
                buf_append_char(out, '&');
            if (eq)
                buf_append(out, eq + 1, plen - klen - 1);
            found = true;
        }
        i++;
    }
    return found;
}

static int cmp_span(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    size_t n = GATE_MIN(x->len, y->len);
    int c = memcmp(x->p, y->p, n);
    return c ? c : (x->len < y->len ? -1 : x->len > y->len);
}

/* Most queries have a handful of parameters: insertion sort beats qsort's
 * setup and indirect calls there. Equal spans are equal bytes, so the key
 * does not depend on which sort ran. */
static void sort_spans(struct span *v, size_t n)
{
    if (n > 16) {
        qsort(v, n, sizeof(v[0]), cmp_span);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        struct span x = v[i];
        size_t j = i;
        for (; j > 0 && cmp_span(&v[j - 1], &x) > 0; j--)
            v[j] = v[j - 1];
        v[j] = x;
    }
}

/* Every query parameter, sorted, so "?a=1&b=2" and "?b=2&a=1" share an entry. */
static void query_all(const char *q, size_t qlen, struct buf *out)
{
    struct span pairs[128];
    size_t n = 0;
    size_t i = 0;
    while (q && i < qlen) {
        size_t start = i;
        const char *amp = memchr(q + start, '&', qlen - start);
        i = amp ? (size_t)(amp - q) : qlen;
        if (i > start) {
            if (n == GATE_ARRAY_LEN(pairs)) {
                /* Too many to sort here: the raw query still keys exactly. */
                buf_append(out, q, qlen);
                return;
            }
            pairs[n].p = q + start;
            pairs[n].len = i - start;
            n++;
        }
        i++;
    }
    sort_spans(pairs, n);
    for (size_t k = 0; k < n; k++) {
        buf_append(out, pairs[k].p, pairs[k].len);
        buf_append_char(out, '&');
    }
}

/* Key layout: METHOD \0 PATH \0 then per parameter: kind letter, name, then
 * '=' value '\0' or '\1' when absent. Values are length-safe: a '\0' cannot
 * appear inside a request head, and bodies enter only as a fixed-size digest. */
/* Appends every field line of header `name`, joined by '\n' (which no field
 * value contains): the integration gets all the lines, so the key must
 * depend on all of them. False when the header is absent. */
static bool header_values(const struct route_request_view *rv, const char *name, size_t len,
                          struct buf *out)
{
    size_t vl = 0, nth = 0;
    const char *v;
    while ((v = rv->header(rv->ctx, name, len, nth, &vl)) != NULL) {
        if (nth++ > 0)
            buf_append_char(out, '\n');
        buf_append(out, v, vl);
    }
    return nth > 0;
}

void route_build_key(const struct route_match *m, const struct route_request_view *rv,
                     struct buf *out)
{
    buf_append(out, rv->method, rv->method_len);
    buf_append_char(out, '\0');
    buf_append(out, m->path, m->path_len);
    buf_append_char(out, '\0');
    for (size_t i = 0; i < m->method->n_keyparams; i++) {
        const struct route_keyparam *kp = &m->method->keyparams[i];
        static const char kinds[] = "qQhpb";
        buf_append_char(out, kinds[kp->kind]);
        buf_append(out, kp->name, kp->len);
        size_t mark = out->len;
        buf_append_char(out, '=');
        bool present = true;
        switch (kp->kind) {
        case ROUTE_KEY_QUERY:
            present = query_values(rv->query, rv->query_len, kp->name, kp->len, out);
            break;
        case ROUTE_KEY_QUERY_ALL:
            query_all(rv->query, rv->query_len, out);
            break;
        case ROUTE_KEY_HEADER:
            present = header_values(rv, kp->name, kp->len, out);
            break;
        case ROUTE_KEY_PATH: {
            const struct route_param *prm = find_param(m, kp->name, kp->len);
            present = prm != NULL;
            if (prm)
                buf_append(out, prm->value, prm->value_len);
            break;
        }
        case ROUTE_KEY_BODY: {
            uint8_t d[CRY_SHA256_LEN];
            cry_sha256(rv->body ? rv->body : "", rv->body_len, d);
            buf_append(out, d, sizeof(d));
            break;
        }
        }
        if (!present) {
            out->len = mark;
            buf_append_char(out, '\1');
        } else {
            buf_append_char(out, '\0');
        }
    }
}

bool route_fill_invalidation(const struct route_invalidation *inv, const struct route_match *m,
                             struct buf *out)
{
    if (inv->n_segs == 0)
        buf_append_char(out, '/');
    for (size_t i = 0; i < inv->n_segs; i++) {
        const struct route_seg *s = &inv->segs[i];
        buf_append_char(out, '/');
        if (s->kind == ROUTE_SEG_LITERAL) {
            buf_append(out, s->text, s->len);
            continue;
        }
        const struct route_param *prm = find_param(m, s->text, s->len);
        if (!prm)
            return false;
        buf_append(out, prm->value, prm->value_len);
    }
    return true;
}
