/*
 * admin/api.c — the native admin API: routing, bearer-token check and the
 * handlers (health, metrics, stage cache status, flush, invalidations).
 *
 * No I/O here: the listener hands in a parsed request and writes out the
 * answer, so the whole API is unit-tested without sockets. Every call reads
 * the current runtime snapshot and releases it before returning.
 *
 * Auth order: GET /healthz is open (load balancers probe it); everything
 * else checks the token BEFORE routing, so a caller without the token learns
 * nothing, not even which apis and stages exist.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_int.h"
#include "crypto/crypto.h"

#define JSON_TYPE "application/json"
#define PROM_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* ================= answers ================= */

void admin__response_init(struct admin_response *rs)
{
    memset(rs, 0, sizeof(*rs));
    buf_init(&rs->headers);
    buf_init(&rs->body);
}

void admin__response_free(struct admin_response *rs)
{
    buf_free(&rs->headers);
    buf_free(&rs->body);
}

static void append_field_text(struct buf *b, const char *s)
{
    for (; *s; s++)
        if (*s != '\r' && *s != '\n')
            buf_append_char(b, *s);
}

void admin__add_header(struct admin_response *rs, const char *name, const char *value)
{
    append_field_text(&rs->headers, name);
    buf_append_str(&rs->headers, ": ");
    append_field_text(&rs->headers, value);
    buf_append_str(&rs->headers, "\r\n");
}

void admin__json(struct admin_response *rs, int status, json_t *doc)
{
    rs->status = status;
    rs->content_type = JSON_TYPE;
    buf_reset(&rs->body);
    char *s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    GATE_ASSERT(s != NULL); /* only fails on allocation failure */
    buf_append_str(&rs->body, s);
    buf_append_char(&rs->body, '\n');
    free(s);
}

void admin__error(struct admin_response *rs, int status, const char *msg)
{
    admin__json(rs, status, json_pack("{s:s}", "message", msg));
}

/* ================= request helpers ================= */

static bool method_is(const struct admin_request *rq, const char *m)
{
    return str_eq_c(rq->method, rq->method_len, m);
}

static bool is_get(const struct admin_request *rq)
{
    return method_is(rq, "GET") || method_is(rq, "HEAD");
}

/* RFC 6750 §2.1: "Bearer" (case-insensitive scheme) SP token. Returns 401 when
 * credentials are missing or not a bearer token, 403 when wrong, 0 when ok. */
static int check_token(const struct admin__ctx *ctx, const struct admin_request *rq)
{
    if (!ctx->token)
        return 0;
    const char *v = rq->authorization;
    size_t len = rq->authorization_len;
    if (!v || len < 7 || !str_ieq(v, 6, "Bearer", 6) || v[6] != ' ')
        return 401;
    v += 7;
    len -= 7;
    str_trim_ows(&v, &len);
    if (len == 0)
        return 401;
    return str_secret_eq(v, len, ctx->token, ctx->token_len) ? 0 : 403;
}

/* Splits "/a/b/c" into at most max segments (borrowed spans); returns the
 * count, or max + 1 when there are more or a segment is empty. */
struct seg {
    const char *p;
    size_t len;
};

static size_t split_path(const char *path, size_t len, struct seg *segs, size_t max)
{
    size_t n = 0, i = 0;
    if (len == 0 || path[0] != '/')
        return max + 1;
    while (i < len) {
        i++; /* the '/' */
        size_t start = i;
        while (i < len && path[i] != '/')
            i++;
        if (i == start || n == max)
            return max + 1;
        segs[n].p = path + start;
        segs[n].len = i - start;
        n++;
    }
    return n;
}

static bool seg_is(const struct seg *s, const char *lit)
{
    return str_eq_c(s->p, s->len, lit);
}

/* ================= stage lookup ================= */

struct stage_ref {
    struct srv_runtime *rt; /* ref: release with srv_runtime_release */
    const struct cfg_api *api;
    const struct cfg_stage *stage;
    struct srv_stage_cache *sc; /* borrowed from rt */
};

static bool find_in(const char *want, size_t want_len, const char *name)
{
    return str_eq_c(want, want_len, name);
}

/* 0 with *out holding a runtime ref, or 404 with a message in rs. */
static int lookup_stage(const struct seg *api, const struct seg *stage, struct stage_ref *out,
                        struct admin_response *rs)
{
    memset(out, 0, sizeof(*out));
    out->rt = srv_current_runtime();
    if (!out->rt) {
        admin__error(rs, 503, "the gateway is not running");
        return -1;
    }
    const struct cfg *cfg = out->rt->cfg;
    for (size_t a = 0; a < cfg->n_apis; a++) {
        if (!find_in(api->p, api->len, cfg->apis[a].id))
            continue;
        out->api = &cfg->apis[a];
        for (size_t s = 0; s < out->api->n_stages; s++) {
            if (!find_in(stage->p, stage->len, out->api->stages[s].name))
                continue;
            out->stage = &out->api->stages[s];
            out->sc = srv_runtime_cache(out->rt, a, s);
            return 0;
        }
        admin__error(rs, 404, "no such stage");
        srv_runtime_release(&out->rt);
        return -1;
    }
    admin__error(rs, 404, "no such api");
    srv_runtime_release(&out->rt);
    return -1;
}

void admin__count(struct admin__ctx *ctx, struct srv_stage_cache *sc, enum admin__reason why,
                  uint64_t n)
{
    if (n == 0)
        return;
    admin__counts_of(ctx, sc->api_id, sc->stage)->by_reason[why] += n;
    atomic_fetch_add_explicit(&sc->counters[SRV_ADMIN_SLOT].invalidations, n,
                              memory_order_relaxed);
}

static void count(struct admin__ctx *ctx, const struct stage_ref *st, enum admin__reason why,
                  uint64_t n)
{
    admin__count(ctx, st->sc, why, n);
}

/* ================= handlers ================= */

static void do_status(const struct stage_ref *st, struct admin_response *rs)
{
    struct cache_store_stats cs;
    uint64_t hits, misses, inv;
    cache_store_get_stats(st->sc->store, &cs);
    srv_stage_cache_totals(st->sc, &hits, &misses, &inv);
    bool on = st->stage->cache_cluster_enabled;
    json_t *doc = json_pack(
        "{s:s, s:s, s:b, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "api", st->api->id, "stage",
        st->stage->name, "cacheClusterEnabled", on, "cacheClusterSize",
        st->stage->cache_cluster_size ? st->stage->cache_cluster_size : "0.5", "status",
        on ? "AVAILABLE" : "NOT_AVAILABLE", "entries", (json_int_t)cs.entries, "bytes",
        (json_int_t)cs.bytes, "capacityBytes", (json_int_t)cs.capacity, "hits", (json_int_t)hits,
        "misses", (json_int_t)misses, "evictions", (json_int_t)cs.evictions, "generation",
        (json_int_t)cs.generation);
    admin__json(rs, 200, doc);
}

bool admin__invalidation_allowed(const struct cfg *cfg, struct srv_stage_cache *sc,
                                 const char *what, long *retry_s)
{
    const struct cfg_limits *l = &cfg->server.limits;
    int64_t retry_ms;
    if (util_bucket_take(&sc->invalidations, l->invalidations_per_second, l->invalidation_burst,
                         util_now_ms(), &retry_ms))
        return true;
    *retry_s = (long)((retry_ms + 999) / 1000);
    log_warn("admin: %s on %s/%s refused: over %u invalidations per second", what, sc->api_id,
             sc->stage, l->invalidations_per_second);
    return false;
}

/* 429 with the wait, in the admin API's JSON error shape. */
static bool refuse_if_throttled(const struct stage_ref *st, const char *what,
                                struct admin_response *rs)
{
    long retry_s;
    if (admin__invalidation_allowed(st->rt->cfg, st->sc, what, &retry_s))
        return false;
    char msg[128];
    snprintf(msg, sizeof(msg), "too many invalidations for this stage; retry in %ld s", retry_s);
    admin__error(rs, 429, msg);
    return true;
}

static void do_flush(struct admin__ctx *ctx, const struct stage_ref *st, struct admin_response *rs)
{
    if (refuse_if_throttled(st, "flush", rs))
        return;
    /* O(1): a generation bump; the bytes come back through eviction. */
    uint64_t gen = cache_store_flush(st->sc->store);
    srv_tier_flushed(st->sc);
    count(ctx, st, ADMIN_REASON_FLUSH, 1);
    log_info("admin: flushed %s/%s (generation %" PRIu64 ")", st->api->id, st->stage->name, gen);
    admin__json(rs, 202, json_pack("{s:b, s:I}", "flushed", 1, "generation", (json_int_t)gen));
}

/* An id in CloudFront's style: 'I' + 13 upper-case hex digits. */
void admin__new_invalidation_id(struct admin__ctx *ctx, char id[16])
{
    uint8_t rnd[7];
    char hex[15];
    if (!cry_random(rnd, sizeof(rnd))) {
        /* Unique within the process is enough for an id nobody looks up yet. */
        uint64_t v = ((uint64_t)util_wall_ms() << 12) ^ ++ctx->seq;
        for (size_t i = 0; i < sizeof(rnd); i++)
            rnd[i] = (uint8_t)(v >> (8 * i));
    }
    cry_hex(rnd, sizeof(rnd), hex);
    id[0] = 'I';
    for (size_t i = 0; i < 13; i++)
        id[1 + i] = (hex[i] >= 'a' && hex[i] <= 'f') ? (char)(hex[i] - 'a' + 'A') : hex[i];
    id[14] = '\0';
}

static bool is_everything(const char *p)
{
    return strcmp(p, "/*") == 0;
}

uint64_t admin__invalidate_paths(struct admin__ctx *ctx, struct srv_stage_cache *sc,
                                 const char *const *paths, size_t n)
{
    struct cache_store *store = sc->store;
    uint64_t removed = 0, n_paths = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_everything(paths[i]))
            continue;
        /* A path of just "/" + "*" is the whole stage: the O(1) flush, not a walk. */
        struct cache_store_stats cs;
        cache_store_get_stats(store, &cs);
        cache_store_flush(store);
        srv_tier_flushed(sc);
        removed += cs.entries;
        admin__count(ctx, sc, ADMIN_REASON_FLUSH, 1);
        break;
    }
    for (size_t i = 0; i < n; i++) {
        const char *p = paths[i];
        size_t len = strlen(p);
        if (is_everything(p))
            continue;
        bool prefix = p[len - 1] == '*';
        removed += cache_store_invalidate_path(store, p, prefix ? len - 1 : len, prefix);
        srv_tier_path_invalidated(sc, p, prefix ? len - 1 : len, prefix);
        n_paths++;
    }
    admin__count(ctx, sc, ADMIN_REASON_PATH, n_paths);
    return removed;
}

/* Applies the paths and tags; returns the entries removed. */
static uint64_t apply_invalidation(struct admin__ctx *ctx, const struct stage_ref *st,
                                   const struct admin__inval *iv)
{
    uint64_t removed = admin__invalidate_paths(ctx, st->sc, iv->paths, iv->n_paths);
    for (size_t i = 0; i < iv->n_tags; i++) {
        removed += cache_store_invalidate_tag(st->sc->store, iv->tags[i], strlen(iv->tags[i]));
        srv_tier_tag_invalidated(st->sc, iv->tags[i], strlen(iv->tags[i]));
    }
    count(ctx, st, ADMIN_REASON_TAG, iv->n_tags);
    return removed;
}

static void do_invalidate(struct admin__ctx *ctx, const struct stage_ref *st,
                          const struct admin_request *rq, struct admin_response *rs)
{
    struct admin__inval iv;
    const char *err;
    if (admin__inval_parse(rq->body ? rq->body : "", rq->body_len, &iv, &err) != 0) {
        admin__error(rs, 400, err);
        return;
    }
    if (refuse_if_throttled(st, "invalidation", rs)) {
        admin__inval_free(&iv);
        return;
    }
    uint64_t removed = apply_invalidation(ctx, st, &iv);
    char id[16];
    admin__new_invalidation_id(ctx, id);
    log_info("admin: invalidation %s on %s/%s: %zu paths, %zu tags, %" PRIu64 " entries removed",
             id, st->api->id, st->stage->name, iv.n_paths, iv.n_tags, removed);
    json_t *doc = json_pack("{s:s, s:s, s:I, s:I, s:I}", "id", id, "status", "Completed", "paths",
                            (json_int_t)iv.n_paths, "tags", (json_int_t)iv.n_tags, "invalidated",
                            (json_int_t)removed);
    admin__inval_free(&iv);
    admin__json(rs, 201, doc);
}

static void do_metrics(struct admin__ctx *ctx, struct admin_response *rs)
{
    struct srv_runtime *rt = srv_current_runtime();
    if (!rt) {
        admin__error(rs, 503, "the gateway is not running");
        return;
    }
    rs->status = 200;
    rs->content_type = PROM_TYPE;
    buf_reset(&rs->body);
    admin__metrics(ctx, rt, &rs->body);
    srv_runtime_release(&rt);
}

/* ================= routing ================= */

static void method_not_allowed(struct admin_response *rs, const char *allow)
{
    admin__error(rs, 405, "method not allowed");
    rs->allow = allow;
}

/* /v1/apis/{api}/stages/{stage}/(cache|invalidations) */
static void route_stage(struct admin__ctx *ctx, const struct admin_request *rq,
                        const struct seg *segs, struct admin_response *rs)
{
    bool is_cache = seg_is(&segs[5], "cache");
    if (!is_cache && !seg_is(&segs[5], "invalidations")) {
        admin__error(rs, 404, "not found");
        return;
    }
    /* The method is checked before the lookup so a 405 does not depend on
     * whether the stage exists. */
    bool ok = is_cache ? is_get(rq) || method_is(rq, "DELETE") : method_is(rq, "POST");
    if (!ok) {
        method_not_allowed(rs, is_cache ? "GET, HEAD, DELETE" : "POST");
        return;
    }
    struct stage_ref st;
    if (lookup_stage(&segs[2], &segs[4], &st, rs) != 0)
        return;
    if (!is_cache)
        do_invalidate(ctx, &st, rq, rs);
    else if (method_is(rq, "DELETE"))
        do_flush(ctx, &st, rs);
    else
        do_status(&st, rs);
    srv_runtime_release(&st.rt);
}

static void route(struct admin__ctx *ctx, const struct admin_request *rq, struct admin_response *rs)
{
    struct seg segs[6];
    size_t n = split_path(rq->path, rq->path_len, segs, 6);
    if (n == 1 && seg_is(&segs[0], "metrics")) {
        if (!is_get(rq))
            method_not_allowed(rs, "GET, HEAD");
        else
            do_metrics(ctx, rs);
        return;
    }
    if (n == 6 && seg_is(&segs[0], "v1") && seg_is(&segs[1], "apis") &&
        seg_is(&segs[3], "stages")) {
        route_stage(ctx, rq, segs, rs);
        return;
    }
    admin__error(rs, 404, "not found");
}

void admin__handle(struct admin__ctx *ctx, const struct admin_request *rq,
                   struct admin_response *rs)
{
    if (str_eq_c(rq->path, rq->path_len, "/healthz")) {
        if (!is_get(rq))
            method_not_allowed(rs, "GET, HEAD");
        else
            admin__json(rs, 200, json_pack("{s:s}", "status", "ok"));
        return;
    }
    /* The AWS subset signs every call with SigV4 against the identities; the
     * bearer token is not accepted there (see docs/admin-api.md). */
    if (admin__aws_is_route(rq)) {
        admin__aws_handle(ctx, rq, rs);
        return;
    }
    int auth = check_token(ctx, rq);
    if (auth == 401) {
        admin__error(rs, 401, "missing bearer token");
        rs->www_authenticate = true;
        return;
    }
    if (auth == 403) {
        admin__error(rs, 403, "invalid token");
        return;
    }
    route(ctx, rq, rs);
}

/* ================= state ================= */

void admin__ctx_free(struct admin__ctx *ctx)
{
    if (ctx->token) {
        /* Do not leave the secret in freed memory. */
        volatile char *p = ctx->token;
        for (size_t i = 0; i < ctx->token_len; i++)
            p[i] = 0;
        free(ctx->token);
    }
    for (size_t i = 0; i < ctx->n_counts; i++) {
        free(ctx->counts[i].api);
        free(ctx->counts[i].stage);
    }
    free(ctx->counts);
    admin__aws_free(ctx);
    memset(ctx, 0, sizeof(*ctx));
}
