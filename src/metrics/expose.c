/*
 * metrics/expose.c — the scrape: summing every shard into a snapshot, and
 * writing the snapshot plus the stage caches' numbers in the Prometheus text
 * exposition format 0.0.4.
 *
 * Any thread. A snapshot takes each shard mutex in turn (never two at once,
 * never while holding the registry lock), so a worker is held up at most
 * while one table is read, and only when it is inserting a new series.
 * Output invariants: every metric of met_info has exactly one HELP and one
 * TYPE line, then its series; no label set appears twice in one metric
 * (keys are interned); histogram buckets are cumulative and the +Inf bucket
 * equals _count (both come from the same bucket counts).
 */
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics_int.h"

/* ================= snapshot ================= */

static void add_shard(struct met_shard *s, struct met_snapshot *snap)
{
    pthread_mutex_lock(&s->lock);
    const struct met__table *t = atomic_load_explicit(&s->table, memory_order_acquire);
    for (size_t k = 0; k <= t->mask; k++) {
        const struct met_series *ser = t->slots[k];
        /* A key interned after our count of keys shows at the next scrape. */
        if (!ser || ser->key->id >= snap->n)
            continue;
        uint64_t *v = snap->samples[ser->key->id].v;
        for (size_t i = 0; i < MET_N_SLOTS; i++)
            v[i] += atomic_load_explicit(&ser->v[i], memory_order_relaxed);
    }
    pthread_mutex_unlock(&s->lock);
}

void met_snapshot_take(struct met_registry *reg, struct met_snapshot *out)
{
    memset(out, 0, sizeof(*out));
    if (!reg)
        return;
    pthread_mutex_lock(&reg->lock);
    out->n = reg->n_keys;
    out->samples = xcalloc(out->n ? out->n : 1, sizeof(*out->samples));
    for (size_t i = 0; i < out->n; i++)
        out->samples[i].key = reg->keys[i];
    pthread_mutex_unlock(&reg->lock);
    for (unsigned i = 0; i < reg->n_shards; i++)
        add_shard(reg->shards[i], out);
}

void met_snapshot_free(struct met_snapshot *snap)
{
    free(snap->samples);
    snap->samples = NULL;
    snap->n = 0;
}

/* ================= text format ================= */

static const char *const type_names[] = {"counter", "gauge", "histogram"};

static const char *const class_names[MET_CLASS__COUNT] = {
#define MET__CLASS_NAME(id, name) name,
    MET_CLASSES(MET__CLASS_NAME)
#undef MET__CLASS_NAME
};

static const char *const bucket_les[MET_N_BUCKETS] = {
#define MET__BUCKET_LE(ns, le) le,
    MET_BUCKETS(MET__BUCKET_LE)
#undef MET__BUCKET_LE
};

/* HELP text escapes backslash and newline; label values also the double
 * quote (exposition format 0.0.4). */
static void append_escaped(struct buf *out, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            buf_append_str(out, "\\\\");
        else if (*s == '\n')
            buf_append_str(out, "\\n");
        else if (*s == '"' && quote)
            buf_append_str(out, "\\\"");
        else
            buf_append_char(out, *s);
    }
}

static void append_label(struct buf *out, const char *name, const char *value, bool first)
{
    if (!first)
        buf_append_char(out, ',');
    buf_append_str(out, name);
    buf_append_str(out, "=\"");
    append_escaped(out, value, true);
    buf_append_char(out, '"');
}

static void append_meta(struct buf *out, enum met_id id)
{
    const struct met_info *mi = &met_info[id];
    buf_append_str(out, "# HELP ");
    buf_append_str(out, mi->name);
    buf_append_char(out, ' ');
    append_escaped(out, mi->help, false);
    buf_appendf(out, "\n# TYPE %s %s\n", mi->name, type_names[mi->type]);
}

/* name[suffix]{api,stage,resource,method[,extra=value]} */
static void append_route_series(struct buf *out, enum met_id id, const char *suffix,
                                const struct met_key *k, const char *extra, const char *value)
{
    buf_append_str(out, met_info[id].name);
    buf_append_str(out, suffix);
    buf_append_char(out, '{');
    append_label(out, "api", k->api, true);
    append_label(out, "stage", k->stage, false);
    append_label(out, "resource", k->resource, false);
    append_label(out, "method", k->method, false);
    if (extra)
        append_label(out, extra, value, false);
    buf_append_str(out, "} ");
}

static void append_u64_line(struct buf *out, uint64_t v)
{
    buf_append_u64(out, v);
    buf_append_char(out, '\n');
}

static void append_histogram(struct buf *out, enum met_id id, const struct met_sample *s,
                             size_t base)
{
    uint64_t cum = 0;
    for (size_t b = 0; b <= MET_N_BUCKETS; b++) {
        cum += s->v[base + b];
        append_route_series(out, id, "_bucket", s->key, "le",
                            b < MET_N_BUCKETS ? bucket_les[b] : "+Inf");
        append_u64_line(out, cum);
    }
    uint64_t sum_ns = s->v[base + MET_N_BUCKETS + 1];
    append_route_series(out, id, "_sum", s->key, NULL, NULL);
    buf_appendf(out, "%llu.%09llu\n", (unsigned long long)(sum_ns / 1000000000ull),
                (unsigned long long)(sum_ns % 1000000000ull));
    append_route_series(out, id, "_count", s->key, NULL, NULL);
    append_u64_line(out, cum);
}

static void append_route_metric(struct buf *out, enum met_id id, const struct met_snapshot *snap)
{
    for (size_t i = 0; i < snap->n; i++) {
        const struct met_sample *s = &snap->samples[i];
        switch (id) {
        case MET_REQUESTS:
        case MET_HITS:
        case MET_MISSES: {
            size_t slot = id == MET_REQUESTS ? MET_SLOT_REQUESTS
                          : id == MET_HITS   ? MET_SLOT_HITS
                                             : MET_SLOT_MISSES;
            append_route_series(out, id, "", s->key, NULL, NULL);
            append_u64_line(out, s->v[slot]);
            break;
        }
        case MET_RESPONSES:
            for (size_t c = 0; c < MET_CLASS__COUNT; c++) {
                append_route_series(out, id, "", s->key, "class", class_names[c]);
                append_u64_line(out, s->v[MET_SLOT_CLASS + c]);
            }
            break;
        case MET_REQUEST_DURATION:
            append_histogram(out, id, s, MET_SLOT_REQ_DUR);
            break;
        case MET_INTEGRATION_DURATION:
            append_histogram(out, id, s, MET_SLOT_INT_DUR);
            break;
        default:
            GATE_ASSERT(!"a route metric without a writer");
        }
    }
}

/* The data plane's invalidations of one stage: the sum over its routes. */
static uint64_t stage_sum(const struct met_snapshot *snap, const struct met_stage_view *st,
                          size_t slot)
{
    uint64_t v = 0;
    for (size_t i = 0; i < snap->n; i++) {
        const struct met_key *k = snap->samples[i].key;
        if (strcmp(k->api, st->api) == 0 && strcmp(k->stage, st->stage) == 0)
            v += snap->samples[i].v[slot];
    }
    return v;
}

static void append_stage_series(struct buf *out, enum met_id id, const struct met_stage_view *st,
                                const char *reason, uint64_t v)
{
    buf_append_str(out, met_info[id].name);
    buf_append_char(out, '{');
    append_label(out, "api", st->api, true);
    append_label(out, "stage", st->stage, false);
    if (reason)
        append_label(out, "reason", reason, false);
    buf_append_str(out, "} ");
    append_u64_line(out, v);
}

static void append_stage_metric(struct buf *out, enum met_id id, const struct met_snapshot *snap,
                                const struct met_stage_view *stages, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct met_stage_view *st = &stages[i];
        switch (id) {
        case MET_CACHE_ENTRIES:
            append_stage_series(out, id, st, NULL, st->entries);
            break;
        case MET_CACHE_BYTES:
            append_stage_series(out, id, st, NULL, st->bytes);
            break;
        case MET_CACHE_CAPACITY:
            append_stage_series(out, id, st, NULL, st->capacity);
            break;
        case MET_CACHE_EVICTIONS:
            append_stage_series(out, id, st, NULL, st->evictions);
            break;
        case MET_CACHE_INVALIDATIONS:
            for (size_t r = 0; r < MET_INV__COUNT; r++)
                append_stage_series(out, id, st, met_inv_reason_names[r],
                                    st->inv[r] + stage_sum(snap, st, MET_SLOT_INV + r));
            break;
        default:
            GATE_ASSERT(!"a stage metric without a writer");
        }
    }
}

void met_expose(const struct met_snapshot *snap, const struct met_stage_view *stages,
                size_t n_stages, struct buf *out)
{
    for (int id = 0; id < MET__COUNT; id++) {
        append_meta(out, (enum met_id)id);
        if (met_info[id].scope == MET_ROUTE)
            append_route_metric(out, (enum met_id)id, snap);
        else
            append_stage_metric(out, (enum met_id)id, snap, stages, n_stages);
    }
}
