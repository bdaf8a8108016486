/*
 * admin/metrics.c — GET /metrics: the stage cache metrics in Prometheus text
 * exposition format 0.0.4, one series per api/stage (and reason).
 *
 * Every metric is listed once in ADMIN_METRICS (STYLE §8): name, type, help
 * and how to read it. Counters are read from the per-worker slots of each
 * stage cache and the store's stats at scrape time; nothing is cached here.
 * Also the per-reason invalidation counts the handler keeps, keyed by
 * api/stage names so they survive reloads.
 */
#include <stdlib.h>
#include <string.h>

#include "admin/admin_int.h"

/* One stage read at scrape time. */
struct sample {
    uint64_t hits, misses, invalidations;
    struct cache_store_stats st;
};

/* id, name, type, help, value expression over `const struct sample *s`.
 * Invalidations are written separately, with their reason label. */
#define ADMIN_METRICS(X)                                                                           \
    X(HITS, "gatecache_cache_hits_total", "counter",                                               \
      "Requests answered from the stage cache (CacheHitCount).", s->hits)                          \
    X(MISSES, "gatecache_cache_misses_total", "counter",                                           \
      "Cacheable requests answered by the integration (CacheMissCount).", s->misses)               \
    X(ENTRIES, "gatecache_cache_entries", "gauge",                                                 \
      "Entries of the current generation held by the stage cache.", s->st.entries)                 \
    X(BYTES, "gatecache_cache_bytes", "gauge",                                                     \
      "Bytes of the current generation held by the stage cache.", s->st.bytes)                     \
    X(CAPACITY, "gatecache_cache_capacity_bytes", "gauge",                                         \
      "Capacity of the stage cache (cache_cluster_size) in bytes.", s->st.capacity)                \
    X(EVICTIONS, "gatecache_cache_evictions_total", "counter",                                     \
      "Entries evicted to keep the stage cache within its capacity.", s->st.evictions)

#define INVALIDATIONS_NAME "gatecache_cache_invalidations_total"
#define INVALIDATIONS_HELP                                                                         \
    "Invalidations of the stage cache by reason: flush (one per flush), path and tag (one per "    \
    "path or tag of an invalidation call), other (the data plane's own)."

static void sample_stage(struct srv_stage_cache *sc, struct sample *s)
{
    srv_stage_cache_totals(sc, &s->hits, &s->misses, &s->invalidations);
    cache_store_get_stats(sc->store, &s->st);
}

/* Label values: Prometheus escapes backslash, double quote and newline. */
static void append_label(struct buf *out, const char *name, const char *v)
{
    buf_append_str(out, name);
    buf_append_str(out, "=\"");
    for (const char *p = v; *p; p++) {
        if (*p == '\\' || *p == '"')
            buf_append_char(out, '\\');
        if (*p == '\n') {
            buf_append_str(out, "\\n");
            continue;
        }
        buf_append_char(out, *p);
    }
    buf_append_char(out, '"');
}

static void append_series(struct buf *out, const char *name, const struct srv_stage_cache *sc,
                          const char *reason, uint64_t v)
{
    buf_append_str(out, name);
    buf_append_char(out, '{');
    append_label(out, "api", sc->api_id);
    buf_append_char(out, ',');
    append_label(out, "stage", sc->stage);
    if (reason) {
        buf_append_char(out, ',');
        append_label(out, "reason", reason);
    }
    buf_append_str(out, "} ");
    buf_append_u64(out, v);
    buf_append_char(out, '\n');
}

static void append_meta(struct buf *out, const char *name, const char *type, const char *help)
{
    buf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static const char *const reason_names[ADMIN_REASON__COUNT] = {
#define ADMIN__REASON_NAME(id, name) name,
    ADMIN_REASONS(ADMIN__REASON_NAME)
#undef ADMIN__REASON_NAME
};

static void append_invalidations(const struct admin__ctx *ctx, struct buf *out,
                                 const struct srv_runtime *rt, const struct sample *samples)
{
    append_meta(out, INVALIDATIONS_NAME, "counter", INVALIDATIONS_HELP);
    for (size_t i = 0; i < rt->n_caches; i++) {
        const struct srv_stage_cache *sc = rt->caches[i];
        const struct admin__stage_counts *c = admin__counts_find(ctx, sc->api_id, sc->stage);
        uint64_t mine = 0;
        for (size_t r = 0; r < ADMIN_REASON__COUNT; r++) {
            uint64_t v = c ? c->by_reason[r] : 0;
            mine += v;
            append_series(out, INVALIDATIONS_NAME, sc, reason_names[r], v);
        }
        /* The slots count every invalidation, ours included (admin slot); the
         * rest came from the data plane. A store shared across a reload may
         * count ours under another ctx: never go below zero. */
        uint64_t all = samples[i].invalidations;
        append_series(out, INVALIDATIONS_NAME, sc, "other", all > mine ? all - mine : 0);
    }
}

void admin__metrics(const struct admin__ctx *ctx, const struct srv_runtime *rt, struct buf *out)
{
    struct sample *samples = xcalloc(rt->n_caches ? rt->n_caches : 1, sizeof(*samples));
    for (size_t i = 0; i < rt->n_caches; i++)
        sample_stage(rt->caches[i], &samples[i]);

#define ADMIN__METRIC_EMIT(id, name, type, help, expr)                                             \
    append_meta(out, name, type, help);                                                            \
    for (size_t i = 0; i < rt->n_caches; i++) {                                                    \
        const struct sample *s = &samples[i];                                                      \
        append_series(out, name, rt->caches[i], NULL, (expr));                                     \
    }
    ADMIN_METRICS(ADMIN__METRIC_EMIT)
#undef ADMIN__METRIC_EMIT

    append_invalidations(ctx, out, rt, samples);
    free(samples);
}

/* ================= per-reason counts ================= */

const struct admin__stage_counts *admin__counts_find(const struct admin__ctx *ctx, const char *api,
                                                     const char *stage)
{
    for (size_t i = 0; i < ctx->n_counts; i++) {
        const struct admin__stage_counts *c = &ctx->counts[i];
        if (strcmp(c->api, api) == 0 && strcmp(c->stage, stage) == 0)
            return c;
    }
    return NULL;
}

struct admin__stage_counts *admin__counts_of(struct admin__ctx *ctx, const char *api,
                                             const char *stage)
{
    const struct admin__stage_counts *found = admin__counts_find(ctx, api, stage);
    if (found)
        return &ctx->counts[found - ctx->counts];
    ctx->counts = xrealloc(ctx->counts, (ctx->n_counts + 1) * sizeof(*ctx->counts));
    struct admin__stage_counts *c = &ctx->counts[ctx->n_counts++];
    memset(c, 0, sizeof(*c));
    c->api = xstrdup(api);
    c->stage = xstrdup(stage);
    return c;
}
