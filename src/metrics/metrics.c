/*
 * metrics/metrics.c — the registry, the interned label keys and the worker
 * side of the shards: finding a series (one probe on the fast path) and
 * counting into it without a lock.
 *
 * Invariants (see metrics.h): only the shard's worker inserts into or grows
 * its table, always under the shard mutex; it reads its own table without the
 * mutex, which is race-free because no other thread writes it. Counters have
 * one writer, so an increment is a relaxed load and a relaxed store (no locked
 * instruction); scrapers read them with relaxed loads.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics/metrics_int.h"

#define MET_TABLE_MIN 16

const struct met_info met_info[MET__COUNT] = {
#define MET__INFO(id, name, type, scope, cw, help) {name, type, scope, cw, help},
    MET_METRICS(MET__INFO)
#undef MET__INFO
};

const char *const met_inv_reason_names[MET_INV__COUNT] = {
#define MET__INV_NAME(id, name) name,
    MET_INV_REASONS(MET__INV_NAME)
#undef MET__INV_NAME
};

static const uint64_t bucket_ns[MET_N_BUCKETS] = {
#define MET__BUCKET_NS(ns, le) ns,
    MET_BUCKETS(MET__BUCKET_NS)
#undef MET__BUCKET_NS
};

uint64_t met_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ================= registry ================= */

static struct met__table *table_new(size_t cap)
{
    struct met__table *t = xcalloc(1, sizeof(*t) + cap * sizeof(t->slots[0]));
    t->mask = cap - 1;
    return t;
}

struct met_registry *met_registry_new(unsigned n_shards)
{
    GATE_ASSERT(n_shards >= 1);
    struct met_registry *reg = xcalloc(1, sizeof(*reg));
    pthread_mutex_init(&reg->lock, NULL);
    reg->n_shards = n_shards;
    reg->shards = xcalloc(n_shards, sizeof(*reg->shards));
    for (unsigned i = 0; i < n_shards; i++) {
        struct met_shard *s = xcalloc(1, sizeof(*s));
        pthread_mutex_init(&s->lock, NULL);
        atomic_init(&s->table, table_new(MET_TABLE_MIN));
        s->reg = reg;
        reg->shards[i] = s;
    }
    return reg;
}

void met_registry_free(struct met_registry **regp)
{
    struct met_registry *reg = *regp;
    if (!reg)
        return;
    *regp = NULL;
    for (unsigned i = 0; i < reg->n_shards; i++) {
        struct met_shard *s = reg->shards[i];
        struct met__table *t = atomic_load_explicit(&s->table, memory_order_acquire);
        for (size_t k = 0; k <= t->mask; k++)
            free(t->slots[k]);
        free(t);
        pthread_mutex_destroy(&s->lock);
        free(s);
    }
    free(reg->shards);
    for (size_t i = 0; i < reg->n_keys; i++)
        free(reg->keys[i]);
    free(reg->keys);
    pthread_mutex_destroy(&reg->lock);
    free(reg);
}

struct met_shard *met_registry_shard(struct met_registry *reg, unsigned id)
{
    if (!reg || id >= reg->n_shards)
        return NULL;
    return reg->shards[id];
}

/* ================= label keys ================= */

static bool key_is(const struct met_key *k, const struct met_labels *l)
{
    return k->hash == l->hash && strcmp(k->api, l->api) == 0 && strcmp(k->stage, l->stage) == 0 &&
           strcmp(k->resource, l->resource) == 0 && strcmp(k->method, l->method) == 0;
}

/* One allocation: the key, then its four strings. */
static struct met_key *key_new(const struct met_labels *l, size_t id)
{
    const char *in[4] = {l->api, l->stage, l->resource, l->method};
    size_t len[4], total = 0;
    for (size_t i = 0; i < 4; i++) {
        len[i] = strlen(in[i]) + 1;
        total += len[i];
    }
    struct met_key *k = xmalloc(sizeof(*k) + total);
    char *p = (char *)(k + 1);
    const char **out[4] = {&k->api, &k->stage, &k->resource, &k->method};
    for (size_t i = 0; i < 4; i++) {
        memcpy(p, in[i], len[i]);
        *out[i] = p;
        p += len[i];
    }
    k->hash = l->hash;
    k->id = id;
    return k;
}

/* Slow path (a label set's first use on some worker): a linear scan is fine,
 * there are as many keys as routes times stages. */
const struct met_key *met__intern(struct met_registry *reg, const struct met_labels *l)
{
    pthread_mutex_lock(&reg->lock);
    const struct met_key *found = NULL;
    for (size_t i = 0; i < reg->n_keys && !found; i++)
        if (key_is(reg->keys[i], l))
            found = reg->keys[i];
    if (!found) {
        if (reg->n_keys == reg->cap_keys) {
            reg->cap_keys = reg->cap_keys ? reg->cap_keys * 2 : 32;
            reg->keys = xrealloc(reg->keys, reg->cap_keys * sizeof(*reg->keys));
        }
        reg->keys[reg->n_keys] = key_new(l, reg->n_keys);
        found = reg->keys[reg->n_keys++];
    }
    pthread_mutex_unlock(&reg->lock);
    return found;
}

/* ================= shard table (worker thread only) ================= */

static void table_put(struct met__table *t, struct met_series *ser)
{
    size_t i = ser->key->hash & t->mask;
    while (t->slots[i])
        i = (i + 1) & t->mask;
    t->slots[i] = ser;
    t->used++;
}

/* Inserts a new series; grows the table first when it would pass 3/4. The
 * mutex keeps scrapers out while the table changes. */
static struct met_series *shard_insert(struct met_shard *s, const struct met_labels *l)
{
    struct met_series *ser = xcalloc(1, sizeof(*ser)); /* counters start at zero */
    ser->key = met__intern(s->reg, l);
    pthread_mutex_lock(&s->lock);
    struct met__table *t = atomic_load_explicit(&s->table, memory_order_relaxed);
    if ((t->used + 1) * 4 > (t->mask + 1) * 3) {
        struct met__table *bigger = table_new((t->mask + 1) * 2);
        for (size_t k = 0; k <= t->mask; k++)
            if (t->slots[k])
                table_put(bigger, t->slots[k]);
        /* No scraper holds the old table: they read only under the mutex. */
        free(t);
        t = bigger;
        atomic_store_explicit(&s->table, t, memory_order_release);
    }
    table_put(t, ser);
    pthread_mutex_unlock(&s->lock);
    return ser;
}

struct met_series *met_series_get(struct met_shard *s, const struct met_labels *l)
{
    if (!s)
        return NULL;
    /* Our own table: no other thread changes it, so no lock and no ordering
     * beyond program order are needed to read it here. */
    const struct met__table *t = atomic_load_explicit(&s->table, memory_order_relaxed);
    for (size_t i = l->hash & t->mask; t->slots[i]; i = (i + 1) & t->mask)
        if (key_is(t->slots[i]->key, l))
            return t->slots[i];
    return shard_insert(s, l);
}

static struct met_series *no_route(struct met_shard *s)
{
    if (!s->no_route) {
        struct met_labels l = {"", "", "", "", route_label_hash("", "", "", "")};
        s->no_route = met_series_get(s, &l);
    }
    return s->no_route;
}

struct met_series *met_series_of(struct met_shard *s, const struct route_match *m)
{
    if (!s)
        return NULL;
    if (!m)
        return no_route(s);
    struct met_labels l = {
        .api = m->api->cfg->id,
        .stage = m->stage->name,
        .resource = m->resource->cfg->path,
        .method = m->method->cfg->http_method,
        .hash = m->method->label_hash[m->stage_index],
    };
    return met_series_get(s, &l);
}

/* ================= counting (worker thread only) ================= */

/* One writer per counter: a plain read-modify-write of relaxed atomics is
 * exact and keeps readers on other threads race-free. */
static inline void bump(struct met_series *ser, size_t slot, uint64_t n)
{
    uint64_t v = atomic_load_explicit(&ser->v[slot], memory_order_relaxed);
    atomic_store_explicit(&ser->v[slot], v + n, memory_order_relaxed);
}

static struct met_series *series_or_no_route(struct met_shard *s, struct met_series *ser)
{
    return ser ? ser : no_route(s);
}

static uint64_t since(uint64_t start_ns)
{
    uint64_t now = met_now_ns();
    return start_ns && now > start_ns ? now - start_ns : 0;
}

void met_observe(struct met_shard *s, struct met_series *ser, enum met_hist h, uint64_t ns)
{
    if (!s)
        return;
    ser = series_or_no_route(s, ser);
    size_t base = h == MET_HIST_REQUEST ? MET_SLOT_REQ_DUR : MET_SLOT_INT_DUR;
    size_t b = 0;
    while (b < MET_N_BUCKETS && ns > bucket_ns[b]) /* "le": a bound is inclusive */
        b++;
    bump(ser, base + b, 1); /* b == MET_N_BUCKETS is the +Inf bucket */
    bump(ser, base + MET_N_BUCKETS + 1, ns);
}

static size_t class_of(int status)
{
    if (status >= 200 && status < 600)
        return (size_t)(status / 100 - 2);
    return MET_CLASS_5XX;
}

void met_request_done(struct met_shard *s, struct met_series *ser, int status, uint64_t start_ns)
{
    if (!s)
        return;
    ser = series_or_no_route(s, ser);
    bump(ser, MET_SLOT_REQUESTS, 1);
    bump(ser, MET_SLOT_CLASS + class_of(status), 1);
    met_observe(s, ser, MET_HIST_REQUEST, since(start_ns));
}

void met_hit(struct met_shard *s, struct met_series *ser)
{
    if (s)
        bump(series_or_no_route(s, ser), MET_SLOT_HITS, 1);
}

void met_miss(struct met_shard *s, struct met_series *ser)
{
    if (s)
        bump(series_or_no_route(s, ser), MET_SLOT_MISSES, 1);
}

void met_integration_done(struct met_shard *s, struct met_series *ser, uint64_t start_ns)
{
    met_observe(s, ser, MET_HIST_INTEGRATION, since(start_ns));
}

void met_invalidation(struct met_shard *s, struct met_series *ser, enum met_inv_reason why)
{
    if (s)
        bump(series_or_no_route(s, ser), MET_SLOT_INV + (size_t)why, 1);
}
