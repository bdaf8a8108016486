/*
 * server/tier.c — the shared second tier (Redis, through src/l2/) as the
 * gateway uses it: cluster-wide invalidation and the stage generations.
 *
 * Every node keeps its own L1 (the stage stores). What must be the same on
 * every node is what was invalidated, so:
 * - A stage's L2 keys carry the stage's generation, kept in Redis (key
 *   "g:<api>/<stage>"): a flush is one INCR, after which no node reads the
 *   old keys again (they expire by their TTL).
 * - Every invalidation made here (admin API, write-triggered, an authorised
 *   max-age=0 refresh) is applied to the local L1 by the caller, then handed
 *   to this file as a job: it is applied to Redis (INCR, or deleting an index
 *   set of keys) and then published on the channel "inv"; every other node
 *   applies the message to its L1 (on_message). Publishing after Redis is
 *   clean means a node that drops its L1 copy cannot re-read the old answer
 *   from L2.
 * - A write to L2 travels on a worker's own connection while an invalidation
 *   goes on the main loop's, so nothing orders them: a fill's SET could
 *   land after the delete that should have removed it. Deleting an index
 *   therefore leaves a tombstone for as long as any fill begun before it can
 *   still arrive (the longest integration timeout + two Redis timeouts), and
 *   the SET script writes nothing an index with a tombstone would list. A
 *   flush needs none: a fill writes under the generation it began with, and
 *   not at all when that is no longer the stage's.
 * - While a stage has jobs not yet applied to Redis, this node does not read
 *   the stage's L2 (srv_stage_cache.l2_pending): it could find there what it
 *   has just invalidated. A job that fails is retried (timer) until Redis
 *   takes it; if too many pile up, they collapse into a flush of every
 *   stage they concern.
 * - A subscriber that lost its connection may have missed messages: when it
 *   is back (on_reset) every stage's L1 is flushed and the generations are
 *   read again.
 * Prefix invalidations (CloudFront's "/images/" + "*") take a new generation:
 * Redis has no index of paths by prefix, so the whole stage's L2 is dropped,
 * while each node's L1 drops only the matching paths.
 *
 * Threads: the client, the subscriber, the job queue's consumer and the
 * timer live on the main thread's loop (serve.c). srv_tier_* may be called
 * from any thread (workers, admin): they only queue a job and wake the loop.
 * Workers have their own clients (tier_worker_client) for GET and SET.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "l2/l2.h"
#include "server/server_int.h"

#define TIER_CHANNEL "inv"
#define TIER_TICK_MS 100 /* generation reads and job retries */
#define TIER_RECHECK_TICKS 10 /* every stage's generation read again: each second */
#define TIER_MAX_JOBS 4096    /* queued + waiting for a retry */

enum tier_kind { JOB_FLUSH, JOB_PATH, JOB_PREFIX, JOB_METHOD_PATH, JOB_TAG, JOB_KEY, JOB_READ_GEN };

/*
 * One invalidation to apply to Redis and publish (or, JOB_READ_GEN, a read of
 * a stage's generation). Queued by any thread; on the main loop every job is
 * in the `all` list until job_free, whether waiting, in flight (the l2
 * operation's arg) or waiting for a retry, so tier_stop frees them all.
 */
struct tier_job {
    struct tier_job *next;         /* queue, or retry list */
    struct tier_job *aprev, *anext; /* the `all` list (main loop) */
    enum tier_kind kind;
    bool counts_pending;           /* holds one of sc->l2_pending */
    struct srv_stage_cache *sc; /* ref */
    char *a, *b;                /* owned copies (NUL-terminated), or NULL */
    size_t a_len, b_len;
    uint64_t hash;
};

/* Counters for /metrics: any thread adds (relaxed), the admin thread reads. */
struct tier_stats {
    _Atomic uint64_t lookups[3]; /* by enum l2_result: hit, miss, error */
    _Atomic uint64_t lookups_skipped; /* not asked: not connected, busy, generation unknown */
    _Atomic uint64_t stores, stores_failed;
    _Atomic uint64_t published, received, resets, jobs_failed;
};

static struct {
    bool on;
    uint64_t node_id;
    struct l2_options opt;
    char *host, *username, *password, *prefix; /* owned copies for opt */
    uv_loop_t *loop; /* the main loop (borrowed) */
    uv_async_t wake;
    uv_timer_t tick;
    struct l2_client *client; /* owned */
    struct l2_sub *sub;       /* owned */
    pthread_mutex_t lock;     /* guards queue, n_jobs, closed */
    struct tier_job *queue, **queue_tail;
    size_t n_jobs; /* queued + retrying + in flight */
    bool closed;
    struct tier_job *retry; /* main loop only: jobs Redis did not take */
    struct tier_job *all;   /* main loop only: every job taken off the queue */
    bool subscribed_once;   /* main loop only */
    uint64_t ticks;         /* main loop only */
    struct tier_stats st;
} tier = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* ================= keys ================= */

/* "<kind>:<api>/<stage>[:<generation>]" into out (cap TIER_KEY_MAX);
 * gen NULL: without. */
static size_t stage_key(char *out, char kind, const struct srv_stage_cache *sc,
                        const uint64_t *gen)
{
    int n = gen ? snprintf(out, TIER_KEY_MAX, "%c:%s/%s:%" PRIu64, kind, sc->api_id, sc->stage,
                           *gen)
                : snprintf(out, TIER_KEY_MAX, "%c:%s/%s", kind, sc->api_id, sc->stage);
    return n > 0 && n < TIER_KEY_MAX ? (size_t)n : 0;
}

/* The L2 key of a cache key: stage, generation and the key's hash. The
 * value holds the whole key, checked on read (l2_entry_decode). */
size_t tier_entry_key(char *out, const struct srv_stage_cache *sc, uint64_t generation,
                      uint64_t hash)
{
    char k[TIER_KEY_MAX];
    size_t n = stage_key(k, 'e', sc, &generation);
    int m = snprintf(out, TIER_KEY_MAX, "%.*s:%016" PRIx64, (int)n, k, hash);
    return m > 0 && m < TIER_KEY_MAX ? (size_t)m : 0;
}

/* An index set: "p:" (path) or "t:" (tag) + stage + generation + value. */
static struct buf index_key(char kind, const struct srv_stage_cache *sc, uint64_t generation,
                            const char *v, size_t len)
{
    char k[TIER_KEY_MAX];
    size_t n = stage_key(k, kind, sc, &generation);
    struct buf b;
    buf_init(&b);
    buf_append(&b, k, n);
    buf_append(&b, ":", 1);
    buf_append(&b, v, len);
    return b;
}

/* ================= worker side ================= */

struct l2_client *tier_worker_client(uv_loop_t *loop)
{
    return tier.on ? l2_client_new(loop, &tier.opt) : NULL;
}

bool tier_stage_readable(const struct srv_stage_cache *sc)
{
    return tier.on && !atomic_load_explicit(&sc->l2_off, memory_order_relaxed) &&
           atomic_load_explicit(&sc->l2_ready, memory_order_acquire) &&
           atomic_load_explicit(&sc->l2_pending, memory_order_acquire) == 0;
}

void tier_count_lookup(int result)
{
    if (result < 0)
        atomic_fetch_add_explicit(&tier.st.lookups_skipped, 1, memory_order_relaxed);
    else if (result <= L2_ERROR)
        atomic_fetch_add_explicit(&tier.st.lookups[result], 1, memory_order_relaxed);
}

/* Writes a fresh L1 entry to L2 with its remaining TTL, indexed by its path
 * and tags (so path, write-triggered and tag invalidations can find it).
 * generation: the stage's when the fill began; nothing is written when it
 * changed since (the answer may predate a flush). */
void tier_store(struct l2_client *c, struct srv_stage_cache *sc, uint64_t generation,
                const struct cache_entry *e, int64_t now)
{
    if (!c || !tier_stage_readable(sc) || e->expires_ms <= now ||
        atomic_load(&sc->l2_generation) != generation)
        return;
    char key[TIER_KEY_MAX];
    size_t key_len = tier_entry_key(key, sc, generation, e->hash);
    size_t n_tags = 0;
    for (const char *t = cache_entry_tags(e); *t; t += strlen(t) + 1)
        n_tags++;
    struct buf *idx = xcalloc(1 + n_tags, sizeof(*idx));
    struct l2_str *ix = xcalloc(1 + n_tags, sizeof(*ix));
    idx[0] = index_key('p', sc, generation, cache_entry_path(e), e->path_len);
    size_t i = 1;
    for (const char *t = cache_entry_tags(e); *t; t += strlen(t) + 1)
        idx[i++] = index_key('t', sc, generation, t, strlen(t));
    for (i = 0; i < 1 + n_tags; i++)
        ix[i] = (struct l2_str){idx[i].data, idx[i].len};
    size_t size = l2_entry_size(e);
    char *value = malloc(size);
    bool ok = false;
    if (value && key_len) {
        l2_entry_encode(e, now, util_wall_ms(), value);
        ok = l2_set(c, key, key_len, value, size, (uint64_t)(e->expires_ms - now), ix, 1 + n_tags);
    }
    atomic_fetch_add_explicit(ok ? &tier.st.stores : &tier.st.stores_failed, 1,
                              memory_order_relaxed);
    free(value);
    for (i = 0; i < 1 + n_tags; i++)
        buf_free(&idx[i]);
    free(idx);
    free(ix);
}

/* ================= jobs ================= */

static void all_add(struct tier_job *j)
{
    j->aprev = NULL;
    j->anext = tier.all;
    if (tier.all)
        tier.all->aprev = j;
    tier.all = j;
}

static void job_free(struct tier_job *j)
{
    if (j->aprev)
        j->aprev->anext = j->anext;
    else if (tier.all == j)
        tier.all = j->anext;
    if (j->anext)
        j->anext->aprev = j->aprev;
    if (j->counts_pending)
        atomic_fetch_sub_explicit(&j->sc->l2_pending, 1, memory_order_acq_rel);
    srv_stage_cache_release(&j->sc);
    free(j->a);
    free(j->b);
    free(j);
    pthread_mutex_lock(&tier.lock);
    tier.n_jobs--;
    pthread_mutex_unlock(&tier.lock);
}

static char *dup_n(const char *s, size_t len)
{
    if (!s)
        return NULL;
    char *d = xmalloc(len + 1);
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

/* Queues a job (any thread). Past TIER_MAX_JOBS the job becomes a flush of
 * its stage: coarser, never wrong. */
static void submit(enum tier_kind kind, struct srv_stage_cache *sc, const char *a, size_t a_len,
                   const char *b, size_t b_len, uint64_t hash)
{
    if (!tier.on)
        return;
    pthread_mutex_lock(&tier.lock);
    if (tier.closed) {
        pthread_mutex_unlock(&tier.lock);
        return;
    }
    bool full = tier.n_jobs >= TIER_MAX_JOBS;
    tier.n_jobs++;
    pthread_mutex_unlock(&tier.lock);
    struct tier_job *j = xcalloc(1, sizeof(*j));
    j->kind = full ? JOB_FLUSH : kind;
    j->sc = srv_stage_cache_ref(sc);
    j->counts_pending = true;
    if (!full) {
        j->a = dup_n(a, a_len);
        j->a_len = a_len;
        j->b = dup_n(b, b_len);
        j->b_len = b_len;
        j->hash = hash;
    }
    atomic_fetch_add_explicit(&sc->l2_pending, 1, memory_order_acq_rel);
    pthread_mutex_lock(&tier.lock);
    *tier.queue_tail = j;
    tier.queue_tail = &j->next;
    pthread_mutex_unlock(&tier.lock);
    uv_async_send(&tier.wake);
}

void srv_tier_flushed(struct srv_stage_cache *sc)
{
    submit(JOB_FLUSH, sc, NULL, 0, NULL, 0, 0);
}

void srv_tier_path_invalidated(struct srv_stage_cache *sc, const char *path, size_t len,
                               bool prefix)
{
    if (prefix && len <= 1) /* "/" + "*": everything */
        submit(JOB_FLUSH, sc, NULL, 0, NULL, 0, 0);
    else
        submit(prefix ? JOB_PREFIX : JOB_PATH, sc, path, len, NULL, 0, 0);
}

void srv_tier_tag_invalidated(struct srv_stage_cache *sc, const char *tag, size_t len)
{
    submit(JOB_TAG, sc, tag, len, NULL, 0, 0);
}

void tier_method_path_invalidated(struct srv_stage_cache *sc, const char *method,
                                  const char *path, size_t len)
{
    submit(JOB_METHOD_PATH, sc, method, strlen(method), path, len, 0);
}

void tier_key_invalidated(struct srv_stage_cache *sc, const char *key, size_t len,
                          uint64_t hash, const char *path, size_t path_len)
{
    submit(JOB_KEY, sc, key, len, path, path_len, hash);
}

/* ================= applying a job (main loop) ================= */

static void job_failed(struct tier_job *j)
{
    atomic_fetch_add_explicit(&tier.st.jobs_failed, 1, memory_order_relaxed);
    j->next = tier.retry;
    tier.retry = j;
}

static void publish(struct tier_job *j, enum l2_msg_kind kind)
{
    struct srv_stage_cache *sc = j->sc;
    char stage[TIER_KEY_MAX];
    int n = snprintf(stage, sizeof(stage), "%s/%s", sc->api_id, sc->stage);
    struct l2_msg m = {
        .node_id = tier.node_id,
        .kind = kind,
        .stage = {stage, n > 0 ? (size_t)n : 0},
        .a = {j->a, j->a_len},
        .b = {j->b, j->b_len},
    };
    if (kind == L2_MSG_FLUSH || kind == L2_MSG_PATH_PREFIX)
        m.generation = atomic_load(&sc->l2_generation);
    if (kind == L2_MSG_KEY) {
        m.hash = j->hash;
        m.b = (struct l2_str){NULL, 0}; /* the job's b is the path, for Redis only */
    }
    if (kind == L2_MSG_FLUSH)
        m.a = m.b = (struct l2_str){NULL, 0};
    if (!l2_msg_is_valid(&m)) {
        /* e.g. a path longer than a message field: the other nodes cannot
         * be told what, so they are told everything of the stage. */
        m = (struct l2_msg){.node_id = tier.node_id, .kind = L2_MSG_FLUSH, .stage = m.stage,
                            .generation = atomic_load(&sc->l2_generation)};
        if (!l2_msg_is_valid(&m)) {
            job_free(j);
            return;
        }
    }
    char *buf = xmalloc(l2_msg_size(&m));
    l2_msg_encode(&m, buf);
    bool ok = l2_publish(tier.client, TIER_CHANNEL, sizeof(TIER_CHANNEL) - 1, buf, l2_msg_size(&m));
    free(buf);
    if (!ok) {
        job_failed(j);
        return;
    }
    atomic_fetch_add_explicit(&tier.st.published, 1, memory_order_relaxed);
    job_free(j);
}

static enum l2_msg_kind msg_kind(enum tier_kind k)
{
    switch (k) {
    case JOB_FLUSH:
        return L2_MSG_FLUSH;
    case JOB_PATH:
        return L2_MSG_PATH;
    case JOB_PREFIX:
        return L2_MSG_PATH_PREFIX;
    case JOB_METHOD_PATH:
        return L2_MSG_METHOD_PATH;
    case JOB_TAG:
        return L2_MSG_TAG;
    case JOB_KEY:
    case JOB_READ_GEN:
        break;
    }
    return L2_MSG_KEY;
}

static void raise_generation(struct srv_stage_cache *sc, uint64_t gen)
{
    uint64_t cur = atomic_load(&sc->l2_generation);
    while (gen > cur && !atomic_compare_exchange_weak(&sc->l2_generation, &cur, gen)) {
    }
}

/* INCR answered: the stage's new generation, then tell the others. */
static void on_new_generation(void *arg, enum l2_result r, int64_t value)
{
    struct tier_job *j = arg;
    if (r != L2_HIT || value <= 0) {
        job_failed(j);
        return;
    }
    raise_generation(j->sc, (uint64_t)value);
    atomic_store(&j->sc->l2_ready, true);
    publish(j, msg_kind(j->kind));
}

/* An index set (or an entry) deleted: tell the others. */
static void on_deleted(void *arg, enum l2_result r, uint64_t count)
{
    (void)count;
    struct tier_job *j = arg;
    if (r != L2_HIT) {
        job_failed(j);
        return;
    }
    publish(j, msg_kind(j->kind));
}

static void on_generation(void *arg, enum l2_result r, int64_t value);

/* How long a fill begun before an invalidation may still reach Redis: the
 * longest integration timeout of the running config, two command timeouts
 * (the fill's GET and its SET), the 5 s the SET script allows a write to
 * travel (l2/client.c), and a second of slack. */
static uint64_t tombstone_ms(void)
{
    uint64_t longest = 0;
    struct srv_runtime *rt = srv_current_runtime();
    const struct cfg *cfg = rt ? rt->cfg : NULL;
    for (size_t a = 0; cfg && a < cfg->n_apis; a++)
        for (size_t r = 0; r < cfg->apis[a].n_resources; r++)
            for (size_t m = 0; m < cfg->apis[a].resources[r].n_methods; m++) {
                uint64_t t = cfg->apis[a].resources[r].methods[m].integration.timeout_ms;
                longest = t > longest ? t : longest;
            }
    srv_runtime_release(&rt);
    return longest + 2u * tier.opt.command_timeout_ms + 6000u;
}

static void run_job(struct tier_job *j)
{
    struct srv_stage_cache *sc = j->sc;
    bool ok;
    if (j->kind == JOB_READ_GEN) {
        char k[TIER_KEY_MAX];
        size_t n = stage_key(k, 'g', sc, NULL);
        ok = l2_raise_to(tier.client, k, n, atomic_load(&sc->l2_generation), on_generation, j);
    } else if (j->kind == JOB_FLUSH || j->kind == JOB_PREFIX) {
        char k[TIER_KEY_MAX];
        size_t n = stage_key(k, 'g', sc, NULL);
        ok = l2_incr_above(tier.client, k, n, atomic_load(&sc->l2_generation), on_new_generation,
                           j);
    } else if (!atomic_load(&sc->l2_ready)) {
        /* The generation is not known yet, so neither are the keys: later. */
        ok = false;
    } else {
        /* A refreshed key (JOB_KEY) drops its path's index: the entry key
         * alone would leave the tombstone nothing to guard. */
        /* The index of the generation Redis has now, which may be newer
         * than this node has heard of: "<p|t>:<stage>:" + it + ":" + value. */
        bool tag = j->kind == JOB_TAG;
        bool in_b = j->kind == JOB_METHOD_PATH || j->kind == JOB_KEY;
        const char *v = in_b ? j->b : j->a;
        size_t len = in_b ? j->b_len : j->a_len;
        char g[TIER_KEY_MAX], head[TIER_KEY_MAX];
        size_t gn = stage_key(g, 'g', sc, NULL);
        size_t hn = stage_key(head, tag ? 't' : 'p', sc, NULL);
        struct buf tail;
        buf_init(&tail);
        buf_append(&tail, ":", 1);
        buf_append(&tail, v, len);
        head[hn++] = ':';
        ok = gn && hn > 1 &&
             l2_delete_index_at(tier.client, g, gn, head, hn, tail.data, tail.len,
                                tombstone_ms(), on_deleted, j);
        buf_free(&tail);
    }
    if (!ok)
        job_failed(j);
}

static void on_wake(uv_async_t *a)
{
    (void)a;
    pthread_mutex_lock(&tier.lock);
    struct tier_job *j = tier.queue;
    tier.queue = NULL;
    tier.queue_tail = &tier.queue;
    pthread_mutex_unlock(&tier.lock);
    while (j) {
        struct tier_job *next = j->next;
        j->next = NULL;
        all_add(j);
        run_job(j);
        j = next;
    }
}

/* ================= generations and retries (timer) ================= */

static void on_generation(void *arg, enum l2_result r, int64_t value)
{
    struct tier_job *j = arg;
    struct srv_stage_cache *sc = j->sc;
    if (r != L2_ERROR && value >= 0) {
        bool was_ready = atomic_load(&sc->l2_ready);
        uint64_t before = atomic_load(&sc->l2_generation);
        raise_generation(sc, (uint64_t)value);
        if (was_ready && (uint64_t)value > before) {
            /* A flush this node never heard of (a lost message): what its
             * L1 holds may be older than it. */
            cache_store_flush(sc->store);
            log_warn("shared tier: %s/%s: a flush reached this node only through its "
                     "generation: in-process cache dropped",
                     sc->api_id, sc->stage);
        }
        atomic_store_explicit(&sc->l2_ready, true, memory_order_release);
    }
    job_free(j); /* not retried: the next tick reads again */
}

/* Reads the generation of every stage whose generation is not known, or of
 * every stage (all): so that a flush whose message was lost reaches this
 * node within TIER_RECHECK_TICKS, and a generation Redis lost is put back
 * (l2_raise_to with this node's as the floor). */
static void read_generations(bool all)
{
    struct srv_runtime *rt = srv_current_runtime();
    for (size_t i = 0; rt && i < rt->n_caches; i++) {
        struct srv_stage_cache *sc = rt->caches[i];
        if (!all && atomic_load(&sc->l2_ready))
            continue;
        struct tier_job *j = xcalloc(1, sizeof(*j));
        j->kind = JOB_READ_GEN;
        j->sc = srv_stage_cache_ref(sc);
        pthread_mutex_lock(&tier.lock);
        tier.n_jobs++;
        pthread_mutex_unlock(&tier.lock);
        all_add(j);
        char k[TIER_KEY_MAX];
        size_t n = stage_key(k, 'g', sc, NULL);
        if (!l2_raise_to(tier.client, k, n, atomic_load(&sc->l2_generation), on_generation, j))
            job_free(j);
    }
    srv_runtime_release(&rt);
}

static void drop_every_l1(void);

static void on_tick(uv_timer_t *t)
{
    (void)t;
    if (!tier.subscribed_once) {
        /* No stage is read from L2 before the first subscription: the node
         * would not hear of invalidations. When it comes, if Redis was
         * unreachable at start, this node cached on its own meanwhile and
         * may hold what another node invalidated: drop it (at a normal
         * start the stores are empty). */
        if (!l2_sub_stats(tier.sub)->subscribed)
            return;
        tier.subscribed_once = true;
        drop_every_l1(); /* and reads the generations */
    }
    read_generations(++tier.ticks % TIER_RECHECK_TICKS == 0);
    struct tier_job *j = tier.retry;
    tier.retry = NULL;
    while (j) {
        struct tier_job *next = j->next;
        j->next = NULL;
        run_job(j);
        j = next;
    }
}

/* ================= messages from other nodes ================= */

static struct srv_stage_cache *find_stage(const struct srv_runtime *rt, struct l2_str stage)
{
    for (size_t i = 0; rt && i < rt->n_caches; i++) {
        struct srv_stage_cache *sc = rt->caches[i];
        size_t al = strlen(sc->api_id), sl = strlen(sc->stage);
        if (stage.len == al + 1 + sl && memcmp(stage.data, sc->api_id, al) == 0 &&
            stage.data[al] == '/' && memcmp(stage.data + al + 1, sc->stage, sl) == 0)
            return sc;
    }
    return NULL;
}

static void apply_message(struct srv_stage_cache *sc, const struct l2_msg *m)
{
    struct cache_store *s = sc->store;
    switch (m->kind) {
    case L2_MSG_FLUSH:
        /* The new generation first: a lookup that sees the old one after
         * the flush is then refused by serve_from_l2's check. */
        raise_generation(sc, m->generation);
        cache_store_flush(s);
        break;
    case L2_MSG_PATH:
        cache_store_invalidate_path(s, m->a.data, m->a.len, false);
        break;
    case L2_MSG_PATH_PREFIX:
        raise_generation(sc, m->generation);
        cache_store_invalidate_path(s, m->a.data, m->a.len, true);
        break;
    case L2_MSG_METHOD_PATH: {
        char method[32];
        if (m->a.len >= sizeof(method) || memchr(m->a.data, '\0', m->a.len)) {
            cache_store_flush(s);
            break;
        }
        memcpy(method, m->a.data, m->a.len);
        method[m->a.len] = '\0';
        cache_store_invalidate_method_path(s, method, m->b.data, m->b.len);
        break;
    }
    case L2_MSG_TAG:
        cache_store_invalidate_tag(s, m->a.data, m->a.len);
        break;
    case L2_MSG_KEY:
        cache_store_remove(s, m->a.data, m->a.len, m->hash);
        break;
    }
}

static void on_message(void *arg, const char *data, size_t len)
{
    (void)arg;
    struct l2_msg m;
    if (l2_msg_decode(data, len, &m) != 0) {
        log_warn("shared tier: a malformed message on the channel was ignored");
        return;
    }
    if (m.node_id == tier.node_id)
        return;
    atomic_fetch_add_explicit(&tier.st.received, 1, memory_order_relaxed);
    struct srv_runtime *rt = srv_current_runtime();
    struct srv_stage_cache *sc = find_stage(rt, m.stage);
    if (sc)
        apply_message(sc, &m);
    srv_runtime_release(&rt);
}

/* The subscription is back after a loss: what was published meanwhile is
 * unknown, so every L1 starts over and the generations are read again. */
static void drop_every_l1(void)
{
    struct srv_runtime *rt = srv_current_runtime();
    for (size_t i = 0; rt && i < rt->n_caches; i++) {
        atomic_store(&rt->caches[i]->l2_ready, false);
        cache_store_flush(rt->caches[i]->store);
    }
    srv_runtime_release(&rt);
    read_generations(false);
}

static void on_reset(void *arg)
{
    (void)arg;
    atomic_fetch_add_explicit(&tier.st.resets, 1, memory_order_relaxed);
    log_warn("shared tier: subscription lost and restored: every stage's in-process cache "
             "was dropped");
    drop_every_l1();
}

/* ================= start and stop (main thread) ================= */

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

/* The copies tier.opt points to (the password wiped first). */
static void free_options(void)
{
    if (tier.password)
        OPENSSL_cleanse(tier.password, strlen(tier.password));
    free(tier.host);
    free(tier.username);
    free(tier.password);
    free(tier.prefix);
    tier.host = tier.username = tier.password = tier.prefix = NULL;
}

int tier_start(uv_loop_t *loop, const struct cfg *cfg)
{
    const struct cfg_cache_backend *b = &cfg->server.cache_backend;
    if (b->type != CFG_BACKEND_REDIS)
        return 0;
    l2_options_from_cfg(&tier.opt, b);
    tier.host = dup_or_null(tier.opt.host);
    tier.username = dup_or_null(tier.opt.username);
    tier.password = dup_or_null(tier.opt.password);
    tier.prefix = dup_or_null(tier.opt.key_prefix);
    tier.opt.host = tier.host;
    tier.opt.username = tier.username;
    tier.opt.password = tier.password;
    tier.opt.key_prefix = tier.prefix;
    if (!cry_random((uint8_t *)&tier.node_id, sizeof(tier.node_id)))
        tier.node_id = (uint64_t)util_wall_ms() ^ ((uint64_t)getpid() << 40);
    tier.loop = loop;
    tier.queue_tail = &tier.queue;
    tier.client = l2_client_new(loop, &tier.opt);
    tier.sub = l2_sub_new(loop, &tier.opt, TIER_CHANNEL, sizeof(TIER_CHANNEL) - 1, on_message,
                          on_reset, NULL);
    if (!tier.client || !tier.sub) {
        log_error("shared tier: unusable Redis options");
        l2_client_free(&tier.client);
        l2_sub_free(&tier.sub);
        free_options();
        return -1;
    }
    uv_async_init(loop, &tier.wake, on_wake);
    uv_timer_init(loop, &tier.tick);
    uv_timer_start(&tier.tick, on_tick, 0, TIER_TICK_MS);
    tier.on = true;
    log_info("shared tier: redis %s:%d db %d (node %016" PRIx64 ")", tier.opt.host, tier.opt.port,
             tier.opt.db, tier.node_id);
    return 0;
}

/* At exit: invalidations Redis never took are lost with the process (the
 * others' L1s may keep what they cover until their TTL; logged). */
void tier_stop(void)
{
    if (!tier.on)
        return;
    pthread_mutex_lock(&tier.lock);
    tier.closed = true;
    struct tier_job *q = tier.queue;
    tier.queue = NULL;
    tier.queue_tail = &tier.queue;
    pthread_mutex_unlock(&tier.lock);
    /* No callback runs after this: every job left is ours to free. */
    l2_client_free(&tier.client);
    l2_sub_free(&tier.sub);
    for (struct tier_job *j = q; j;) {
        struct tier_job *next = j->next;
        all_add(j);
        j = next;
    }
    size_t dropped = 0;
    while (tier.all) {
        dropped += tier.all->kind != JOB_READ_GEN;
        job_free(tier.all);
    }
    tier.retry = NULL;
    if (dropped)
        log_warn("shared tier: %zu invalidations never reached Redis", dropped);
    uv_close((uv_handle_t *)&tier.wake, NULL);
    uv_close((uv_handle_t *)&tier.tick, NULL);
    free_options();
    tier.on = false;
}

/* ================= metrics ================= */

static void expose_counter(struct buf *out, const char *name, const char *help, const char *label,
                           _Atomic uint64_t *v)
{
    char line[256];
    int n = snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    buf_append(out, line, (size_t)n);
    n = snprintf(line, sizeof(line), "%s%s %" PRIu64 "\n", name, label ? label : "",
                 atomic_load_explicit(v, memory_order_relaxed));
    buf_append(out, line, (size_t)n);
}

void srv_tier_expose(struct buf *out)
{
    if (!tier.on)
        return;
    char line[256];
    int n = snprintf(line, sizeof(line),
                     "# HELP gatecache_l2_lookups_total Lookups in the shared tier after an "
                     "in-process miss, by result (skipped: not asked, Redis unavailable).\n"
                     "# TYPE gatecache_l2_lookups_total counter\n");
    buf_append(out, line, (size_t)n);
    static const char *const names[] = {"hit", "miss", "error"};
    for (int i = 0; i < 3; i++) {
        n = snprintf(line, sizeof(line), "gatecache_l2_lookups_total{result=\"%s\"} %" PRIu64 "\n",
                     names[i], atomic_load(&tier.st.lookups[i]));
        buf_append(out, line, (size_t)n);
    }
    n = snprintf(line, sizeof(line), "gatecache_l2_lookups_total{result=\"skipped\"} %" PRIu64 "\n",
                 atomic_load(&tier.st.lookups_skipped));
    buf_append(out, line, (size_t)n);
    size_t ready = 0;
    struct srv_runtime *rt = srv_current_runtime();
    for (size_t i = 0; rt && i < rt->n_caches; i++)
        ready += tier_stage_readable(rt->caches[i]);
    srv_runtime_release(&rt);
    n = snprintf(line, sizeof(line),
                 "# HELP gatecache_l2_stages_readable Stages whose shared tier this node reads "
                 "now (generation known, no invalidation of its own waiting for Redis).\n"
                 "# TYPE gatecache_l2_stages_readable gauge\n"
                 "gatecache_l2_stages_readable %zu\n",
                 ready);
    buf_append(out, line, (size_t)n);
    expose_counter(out, "gatecache_l2_stores_total", "Entries written to the shared tier.", NULL,
                   &tier.st.stores);
    expose_counter(out, "gatecache_l2_store_failures_total",
                   "Entries not written to the shared tier (Redis unavailable or busy).", NULL,
                   &tier.st.stores_failed);
    expose_counter(out, "gatecache_l2_invalidations_published_total",
                   "Invalidations made here, applied to Redis and published to the other nodes.",
                   NULL, &tier.st.published);
    expose_counter(out, "gatecache_l2_invalidations_received_total",
                   "Invalidations published by other nodes and applied to this node's cache.",
                   NULL, &tier.st.received);
    expose_counter(out, "gatecache_l2_invalidation_retries_total",
                   "Invalidations Redis did not take at once (retried until it does).", NULL,
                   &tier.st.jobs_failed);
    expose_counter(out, "gatecache_l2_resets_total",
                   "Times the subscription was lost and restored (every stage's in-process "
                   "cache dropped).",
                   NULL, &tier.st.resets);
}
