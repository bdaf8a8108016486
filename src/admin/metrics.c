/*
 * admin/metrics.c — GET /metrics: the exposition of the metrics module
 * (src/metrics/, the list in metrics_list.h) fed with what only the admin
 * side knows: each stage cache's store numbers (read at scrape time) and the
 * admin API's own invalidations by reason (flush, path, tag), kept here by
 * api/stage name so that they survive reloads. The data plane's counters and
 * histograms come from the per-worker shards of srv.metrics, summed at scrape.
 *
 * Admin thread only; reads the stage caches and the shards, which any thread
 * may do.
 */
#include <stdlib.h>
#include <string.h>

#include "admin/admin_int.h"
#include "metrics/metrics.h"

/* The admin API's reasons in the metrics module's reason list. */
static const enum met_inv_reason admin_to_met[ADMIN_REASON__COUNT] = {
    [ADMIN_REASON_FLUSH] = MET_INV_FLUSH,
    [ADMIN_REASON_PATH] = MET_INV_PATH,
    [ADMIN_REASON_TAG] = MET_INV_TAG,
};

static void view_stage(const struct admin__ctx *ctx, struct srv_stage_cache *sc,
                       struct met_stage_view *v)
{
    struct cache_store_stats st;
    cache_store_get_stats(sc->store, &st);
    memset(v, 0, sizeof(*v));
    v->api = sc->api_id;
    v->stage = sc->stage;
    v->entries = st.entries;
    v->bytes = st.bytes;
    v->capacity = st.capacity;
    v->evictions = st.evictions;
    const struct admin__stage_counts *c = admin__counts_find(ctx, sc->api_id, sc->stage);
    for (size_t r = 0; c && r < ADMIN_REASON__COUNT; r++)
        v->inv[admin_to_met[r]] = c->by_reason[r];
}

void admin__metrics(const struct admin__ctx *ctx, const struct srv_runtime *rt, struct buf *out)
{
    struct met_stage_view *views = xcalloc(rt->n_caches ? rt->n_caches : 1, sizeof(*views));
    for (size_t i = 0; i < rt->n_caches; i++)
        view_stage(ctx, rt->caches[i], &views[i]);
    struct met_snapshot snap;
    met_snapshot_take(srv.metrics, &snap);
    met_expose(&snap, views, rt->n_caches, out);
    srv_tier_expose(out);
    met_snapshot_free(&snap);
    free(views);
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
