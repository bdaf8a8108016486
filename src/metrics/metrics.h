/*
 * metrics — per-worker counters and histograms, summed on scrape (product.md
 * §7; the list of metrics is metrics_list.h).
 *
 * A registry (process lifetime: counters survive config reloads because
 * nothing here hangs off a runtime snapshot or route table) holds:
 *   - interned label keys (api, stage, resource, method): one immutable
 *     struct met_key per label set, never freed before the registry;
 *   - one shard per worker: an open-addressing table from a key to a counter
 *     block (struct met_series). Only the shard's worker writes its counters
 *     (relaxed atomic load + store: one writer, no lock, no locked
 *     instruction) and only that worker changes the table (insert, grow),
 *     under the shard mutex. The worker looks up without the mutex: nobody
 *     else mutates its table. The scraper takes each shard mutex in turn,
 *     so it never sees a table mid-change; a new table is also published with
 *     a release store (acquire load on the scraper side).
 * Series blocks never move or go away while the registry lives, so a request
 * keeps a pointer to its series from dispatch to its last event.
 *
 * Invariants: a series belongs to exactly one shard; a key appears at most
 * once per shard table; key ids are dense (0..n_keys-1) in order of first use.
 */
#ifndef GATE_METRICS_H
#define GATE_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "metrics/metrics_list.h"
#include "route/route.h"
#include "util/util.h"

enum met_type { MET_COUNTER = 0, MET_GAUGE, MET_HISTOGRAM };
enum met_scope { MET_ROUTE = 0, MET_STAGE };

enum met_id {
#define MET__ID(id, name, type, scope, cw, help) MET_##id,
    MET_METRICS(MET__ID)
#undef MET__ID
        MET__COUNT
};

enum met_inv_reason {
#define MET__INV(id, name) MET_INV_##id,
    MET_INV_REASONS(MET__INV)
#undef MET__INV
        MET_INV__COUNT
};

enum met_class {
#define MET__CLASS(id, name) MET_CLASS_##id,
    MET_CLASSES(MET__CLASS)
#undef MET__CLASS
        MET_CLASS__COUNT
};

enum met_hist { MET_HIST_REQUEST = 0, MET_HIST_INTEGRATION };

#define MET__ONE(ns, le) +1
#define MET_N_BUCKETS (0 MET_BUCKETS(MET__ONE))
/* A histogram's slots: one per bucket (not cumulative), +Inf, sum in ns. */
#define MET_HIST_SLOTS (MET_N_BUCKETS + 2)

/* The value slots of one series. */
enum met_slot {
    MET_SLOT_REQUESTS = 0,
    MET_SLOT_HITS,
    MET_SLOT_MISSES,
    MET_SLOT_CLASS,                                      /* + enum met_class */
    MET_SLOT_INV = MET_SLOT_CLASS + MET_CLASS__COUNT,    /* + enum met_inv_reason */
    MET_SLOT_REQ_DUR = MET_SLOT_INV + MET_INV__COUNT,    /* + bucket, +Inf, sum */
    MET_SLOT_INT_DUR = MET_SLOT_REQ_DUR + MET_HIST_SLOTS, /* + bucket, +Inf, sum */
    MET_N_SLOTS = MET_SLOT_INT_DUR + MET_HIST_SLOTS,
};

struct met_info {
    const char *name;
    enum met_type type;
    enum met_scope scope;
    const char *cloudwatch; /* the API Gateway CloudWatch metric it mirrors, "-" if none */
    const char *help;
};
extern const struct met_info met_info[MET__COUNT];
extern const char *const met_inv_reason_names[MET_INV__COUNT];

/* A label set as the caller has it; strings borrowed for the call. hash is
 * route_label_hash() of the four strings (precomputed per route). */
struct met_labels {
    const char *api, *stage, *resource, *method;
    uint64_t hash;
};

/* An interned label set. Read-only; owned by the registry. */
struct met_key {
    uint64_t hash;
    size_t id; /* dense, order of first use */
    const char *api, *stage, *resource, *method; /* owned by the key (one allocation) */
};

struct met_registry;
struct met_shard;
struct met_series;

/* ---- setup (one thread, before the workers run) ---- */

/* owned: met_registry_free. n_shards >= 1. */
struct met_registry *met_registry_new(unsigned n_shards);
/* Frees everything; no worker or scraper may use it any more. NULL is a no-op. */
void met_registry_free(struct met_registry **reg);
/* borrowed: valid while the registry lives. NULL when reg is NULL or id is
 * out of range (the met_* calls below do nothing on a NULL shard). */
struct met_shard *met_registry_shard(struct met_registry *reg, unsigned id);

/* CLOCK_MONOTONIC nanoseconds: the time stamps the *_done calls take. */
uint64_t met_now_ns(void);

/* ---- worker thread of the shard only ---- */

/* The series of a label set, created (zero) on first use. borrowed: valid
 * while the registry lives. NULL only when s is NULL. */
struct met_series *met_series_get(struct met_shard *s, const struct met_labels *l);
/* The series of a matched route (labels from m, the hash precomputed in
 * m->method->label_hash), or of "no route" (all four labels empty) when m
 * is NULL. */
struct met_series *met_series_of(struct met_shard *s, const struct route_match *m);

/* In the calls below a NULL series means "no route". */

/* An answer is queued whole: requests + 1, its status class + 1, and the
 * request duration since start_ns (0 = unknown: observed as 0). A status
 * outside 200..599 counts as 5xx (the gateway does not send 1xx finals). */
void met_request_done(struct met_shard *s, struct met_series *ser, int status, uint64_t start_ns);
void met_hit(struct met_shard *s, struct met_series *ser);
void met_miss(struct met_shard *s, struct met_series *ser);
/* The integration call started at start_ns ended (any result). */
void met_integration_done(struct met_shard *s, struct met_series *ser, uint64_t start_ns);
void met_invalidation(struct met_shard *s, struct met_series *ser, enum met_inv_reason why);
/* One observation of `ns` nanoseconds (the *_done calls use it; tests too). */
void met_observe(struct met_shard *s, struct met_series *ser, enum met_hist h, uint64_t ns);

/* ---- scraping (any thread) ---- */

struct met_sample {
    const struct met_key *key; /* borrowed from the registry */
    uint64_t v[MET_N_SLOTS];   /* summed over every shard */
};

struct met_snapshot {
    struct met_sample *samples; /* owned: met_snapshot_free; by key id */
    size_t n;
};

/* Sums every shard (takes each shard mutex in turn, never two at once). A
 * NULL reg gives an empty snapshot. */
void met_snapshot_take(struct met_registry *reg, struct met_snapshot *out);
void met_snapshot_free(struct met_snapshot *snap);

/* One stage cache as the exposition shows it; inv[] holds the admin API's
 * reasons (the data plane's are added from the snapshot). */
struct met_stage_view {
    const char *api, *stage; /* borrowed */
    uint64_t entries, bytes, capacity, evictions;
    uint64_t inv[MET_INV__COUNT];
};

/* Appends every metric of met_info in Prometheus text format 0.0.4: each
 * with one HELP and one TYPE line, route series in key order, stage series
 * in `stages` order. */
void met_expose(const struct met_snapshot *snap, const struct met_stage_view *stages,
                size_t n_stages, struct buf *out);

#endif
