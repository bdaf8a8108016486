/*
 * server — the process context (srv), worker threads with one libuv loop
 * each, listeners (SO_REUSEPORT: every worker accepts on its own socket),
 * connections, timeouts, reload and graceful drain.
 *
 * The only mutable global of the program is `srv` (STYLE §4). The current
 * runtime snapshot (config + routing table + stage caches) is swapped under
 * srv.lock; workers notice a new version with one atomic load per request.
 */
#ifndef GATE_SERVER_H
#define GATE_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cache/cache.h"
#include "config/config.h"
#include "route/route.h"
#include "util/util.h"

/* A stage's cache store, shared by successive runtime snapshots while the
 * stage keeps its capacity (a resize builds a new, empty one, as in the seeds). */
#define SRV_MAX_WORKERS 64
#define SRV_ADMIN_SLOT SRV_MAX_WORKERS /* counter slot of the admin thread */

/* Per-worker counters of a stage cache, each on its own cache line: a worker
 * only ever writes its own slot (relaxed), readers sum the slots. */
struct srv_stage_counters {
    _Atomic uint64_t hits;
    _Atomic uint64_t misses;
    _Atomic uint64_t invalidations;
    char _pad[64 - 3 * sizeof(uint64_t)];
};

struct srv_stage_cache {
    atomic_int refs;       /* private */
    char *api_id;          /* owned */
    char *stage;           /* owned */
    uint64_t capacity;
    struct cache_store *store; /* owned */
    struct srv_stage_counters counters[SRV_MAX_WORKERS + 1]; /* by worker id, then admin */
    struct util_bucket invalidations; /* admin thread only: limits.invalidations_per_second */
    /* The shared tier (tier.c; unused with the memory backend): the stage's
     * generation in Redis, part of every L2 key, valid once l2_ready; and the
     * invalidations made here that Redis has not taken yet (while any, this
     * node does not read the stage's L2). */
    _Atomic uint64_t l2_generation;
    atomic_bool l2_ready;
    atomic_int l2_pending;
    atomic_bool l2_off; /* the stage's cache_backend is memory: no entry in Redis */
};

/* A stage cache outlives the snapshots that share it (refcounted). */
struct srv_stage_cache *srv_stage_cache_ref(struct srv_stage_cache *sc);
void srv_stage_cache_release(struct srv_stage_cache **sc);

/* Sums of a stage cache's per-worker counters (any thread). */
void srv_stage_cache_totals(const struct srv_stage_cache *sc, uint64_t *hits, uint64_t *misses,
                            uint64_t *invalidations);

/* Everything derived from one config snapshot. Immutable once published. */
struct srv_runtime {
    atomic_int refs;            /* private */
    uint64_t version;
    struct cfg *cfg;            /* ref */
    struct route_table *routes; /* owned */
    struct srv_stage_cache **caches; /* owned array, ref each: index = api_offset[a] + stage */
    size_t *api_offset;         /* owned: first cache index of each api */
    size_t n_caches;
    bool has_encryption_key;    /* some method sets cache_data_encrypted */
    uint8_t encryption_key[32]; /* secret: wiped on release, never logged */
};

/* Environment variable holding the cache encryption key when the config has
 * no cache_encryption_key_file. */
#define SRV_ENCRYPTION_KEY_ENV "GATECACHE_CACHE_ENCRYPTION_KEY"

struct wrk;
struct met_registry;

struct srv {
    pthread_mutex_t lock;        /* guards rt swaps */
    pthread_mutex_t update_lock; /* serialises writers: read current -> build -> publish
                                    (SIGHUP reload, admin UpdateStage); taken before lock */
    struct srv_runtime *rt;      /* ref; current snapshot (under lock) */
    atomic_uint_fast64_t rt_version;
    struct wrk *workers;         /* owned array */
    struct met_registry *metrics; /* owned, process lifetime: every worker's metrics shard;
                                     created by wrk_start_all, read by the admin thread */
    unsigned n_workers;
    atomic_int n_conns;          /* open client connections, all workers */
    atomic_bool draining;
    atomic_bool force_close;
};

extern struct srv srv;

/* Runtime snapshots (runtime.c). Takes over the ref on cfg. Returns NULL
 * after logging why when the snapshot cannot be built (an encrypted method
 * without a usable key); cfg is released then. */
struct srv_runtime *srv_runtime_new(struct cfg *cfg, const struct srv_runtime *prev);
struct srv_runtime *srv_runtime_ref(struct srv_runtime *rt);
void srv_runtime_release(struct srv_runtime **rt);
/* The current snapshot with a new ref (takes srv.lock). */
struct srv_runtime *srv_current_runtime(void);
/* Publishes rt (takes over the caller's ref). */
void srv_publish_runtime(struct srv_runtime *rt);
struct srv_stage_cache *srv_runtime_cache(const struct srv_runtime *rt, size_t api, size_t stage);

/* Builds the next config from the current one: returns a new snapshot (one ref, handed
 * over) or NULL with a message in err. Called with srv.update_lock held. */
typedef struct cfg *(*srv_mutate_cb)(const struct cfg *cur, void *arg, char *err, size_t errlen);

/*
 * The one way to replace the running config: under srv.update_lock, reads the current
 * snapshot, calls mutate, builds a runtime from its result (stage stores kept while
 * their capacity is unchanged) and publishes it. Two writers (SIGHUP on the main
 * thread, UpdateStage on the admin thread) therefore never build from the same
 * snapshot and lose each other's change. Returns 0; -1 when mutate refused (err set
 * by it) or nothing is running; -2 when the runtime could not be built (err set; the
 * reason is logged). On failure the running config is untouched. Any thread.
 */
int srv_update(srv_mutate_cb mutate, void *arg, char *err, size_t errlen);

/*
 * The shared tier (tier.c), for the invalidations made on this node. Call
 * after the local store was changed; any thread; no-ops with the memory
 * backend. Each is applied to Redis and published to the other nodes, in
 * the background, retried until Redis takes it.
 */
void srv_tier_flushed(struct srv_stage_cache *sc);
/* prefix: path is a prefix (CloudFront's trailing '*' stripped). */
void srv_tier_path_invalidated(struct srv_stage_cache *sc, const char *path, size_t len,
                               bool prefix);
void srv_tier_tag_invalidated(struct srv_stage_cache *sc, const char *tag, size_t len);
/* The shared tier's counters in Prometheus text (nothing with the memory
 * backend); any thread. */
void srv_tier_expose(struct buf *out);

/*
 * Runs the gateway on `cfg` (takes over the caller's ref) until SIGTERM or
 * SIGINT has drained it. Installs SIGHUP (reload from cfg->path). Returns the
 * process exit code.
 */
int srv_serve(struct cfg *cfg);

#endif
