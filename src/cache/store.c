/*
 * cache/store — the sharded store: chained hash tables, SIEVE eviction under
 * one global byte budget, generations for O(1) flush, invalidation walks and
 * the miss-coalescing fill records.
 *
 * Invariants:
 * - An entry's shard is fixed by the top CACHE__SHARD_BITS of its hash; its
 *   bucket by the low bits. A linked entry is in exactly one bucket chain and
 *   in its shard's SIEVE queue, and the store holds one ref on it.
 * - All linkage (_hnext, _qprev, _qnext), the visited bit and the per-shard
 *   counters change only under the shard lock. s->bytes is the sum of the
 *   charges of all linked entries (atomic so puts can test the budget without
 *   taking every lock).
 * - An entry is reachable only while e->generation == the store's generation
 *   (low 32 bits) and now < e->stale_until_ms; others are dead weight that
 *   get, put, invalidation and the eviction hand unlink when they meet them.
 * - Nothing is freed under a lock: unlinked entries are chained (through the
 *   now unused _hnext) onto a local list and released after the unlock.
 * - Every put ends with s->bytes <= capacity unless victims ran out, which
 *   only happens while other puts are in flight (they then evict themselves).
 */
#include "cache/cache.h"
#include "cache/cache_int.h"
#include "util/util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define CACHE__SHARD_BITS 4
#define CACHE__NSHARDS (1u << CACHE__SHARD_BITS)
#define CACHE__BUCKETS_INIT 16
#define CACHE__MAX_LOAD 2 /* entries per bucket before the table doubles */
#define CACHE__FILL_BUCKETS 8
#define CACHE__STORE_MAGIC 0x47435331u /* "GCS1" */

/* An in-progress fill of one key (miss coalescing). */
struct cache__fill {
    struct cache__fill *next;
    uint64_t hash;
    uint64_t waiters; /* bit i = worker i waits for this fill */
    size_t key_len;
    char key[]; /* owned copy */
};

struct cache__shard {
    /* hot: every get touches these */
    pthread_mutex_t lock;
    struct cache_entry **buckets; /* owned: free(); heads of _hnext chains */
    size_t mask;                  /* number of buckets - 1 (a power of two minus one) */
    /* SIEVE queue: head = newest; the hand walks from tail toward head. */
    struct cache_entry *head, *tail;
    struct cache_entry *hand; /* NULL = start at the tail */
    size_t count;             /* linked entries */
    uint64_t bytes;           /* their charges */
    /* exact stats for the current generation (see account_link) */
    uint32_t live_gen;
    size_t live_count;
    uint64_t live_bytes;
    struct cache__fill *fills[CACHE__FILL_BUCKETS];
    char pad[64]; /* keeps the next shard's lock off our last cache line */
};

struct cache_store {
    uint32_t magic;
    uint64_t capacity;
    _Atomic uint64_t generation;
    _Atomic uint64_t invalidations; /* bumped as each flush, walk or remove begins */
    _Atomic uint64_t bytes; /* sum of charges of linked entries, all shards */
    _Atomic uint64_t evictions;
    atomic_uint evict_rr; /* round-robin cursor over other shards */
    struct cache__shard shards[CACHE__NSHARDS];
};

/* ================= small helpers ================= */

static struct cache__shard *shard_of(struct cache_store *s, uint64_t hash)
{
    return &s->shards[hash >> (64 - CACHE__SHARD_BITS)];
}

static uint32_t current_gen(const struct cache_store *s)
{
    return (uint32_t)atomic_load_explicit(&s->generation, memory_order_acquire);
}

static bool key_eq(const struct cache_entry *e, const char *key, size_t key_len, uint64_t hash)
{
    return e->hash == hash && e->key_len == key_len && memcmp(e->key, key, key_len) == 0;
}

static bool is_visited(const struct cache_entry *e)
{
    return atomic_load_explicit(&e->refs, memory_order_relaxed) & CACHE__VISITED;
}

/* Takes a ref for the caller and marks e visited in one atomic add.
 * Caller holds shard lock, which is what keeps the visited bit stable. */
static void ref_and_visit(struct cache_entry *e)
{
    unsigned add = is_visited(e) ? 1u : 1u | CACHE__VISITED;
    atomic_fetch_add_explicit(&e->refs, add, memory_order_relaxed);
}

/* Caller holds shard lock. */
static void clear_visited(struct cache_entry *e)
{
    atomic_fetch_and_explicit(&e->refs, ~CACHE__VISITED, memory_order_relaxed);
}

/* Releases a list chained through _hnext. Never called under a lock. */
static void release_list(struct cache_entry *dead)
{
    while (dead) {
        struct cache_entry *next = dead->_hnext;
        dead->_hnext = NULL; /* a holder may put it again: it must look unlinked */
        cache_entry_release(&dead);
        dead = next;
    }
}

/* ================= queue and table (caller holds shard lock) ================= */

static void queue_push_head(struct cache__shard *sh, struct cache_entry *e)
{
    e->_qprev = NULL;
    e->_qnext = sh->head;
    if (sh->head)
        sh->head->_qprev = e;
    else
        sh->tail = e;
    sh->head = e;
}

static void queue_unlink(struct cache__shard *sh, struct cache_entry *e)
{
    /* SIEVE: the hand moves on toward the head past a removed entry. */
    if (sh->hand == e)
        sh->hand = e->_qprev;
    if (e->_qprev)
        e->_qprev->_qnext = e->_qnext;
    else
        sh->head = e->_qnext;
    if (e->_qnext)
        e->_qnext->_qprev = e->_qprev;
    else
        sh->tail = e->_qprev;
    e->_qprev = e->_qnext = NULL;
}

/* The link that points at e in its bucket chain. Caller holds shard lock; e is linked. */
static struct cache_entry **table_link_of(struct cache__shard *sh, struct cache_entry *e)
{
    struct cache_entry **pp = &sh->buckets[e->hash & sh->mask];
    while (*pp != e) {
        GATE_ASSERT(*pp != NULL);
        pp = &(*pp)->_hnext;
    }
    return pp;
}

/* Doubles the bucket array. Caller holds shard lock. Skipped when memory is
 * short: longer chains are slower, not wrong. */
static void table_grow(struct cache__shard *sh)
{
    size_t n = (sh->mask + 1) * 2;
    struct cache_entry **nb = try_malloc(n * sizeof(*nb));
    if (!nb)
        return;
    memset(nb, 0, n * sizeof(*nb));
    for (size_t i = 0; i <= sh->mask; i++) {
        struct cache_entry *e = sh->buckets[i];
        while (e) {
            struct cache_entry *next = e->_hnext;
            struct cache_entry **slot = &nb[e->hash & (n - 1)];
            e->_hnext = *slot;
            *slot = e;
            e = next;
        }
    }
    free(sh->buckets);
    sh->buckets = nb;
    sh->mask = n - 1;
}

/*
 * Counters for a newly linked entry. Caller holds shard lock.
 * live_* count the entries of generation live_gen; live_gen is moved up to the
 * current generation on every link, so an entry counted live always has
 * generation == live_gen until a flush, and one linked already-old never does.
 */
static void account_link(struct cache_store *s, struct cache__shard *sh, struct cache_entry *e)
{
    uint32_t cur = current_gen(s);
    sh->count++;
    sh->bytes += e->charge;
    atomic_fetch_add_explicit(&s->bytes, e->charge, memory_order_relaxed);
    if (sh->live_gen != cur) {
        sh->live_gen = cur;
        sh->live_count = 0;
        sh->live_bytes = 0;
    }
    if (e->generation == cur) {
        sh->live_count++;
        sh->live_bytes += e->charge;
    }
}

/* Caller holds shard lock. */
static void account_unlink(struct cache_store *s, struct cache__shard *sh, struct cache_entry *e)
{
    sh->count--;
    sh->bytes -= e->charge;
    atomic_fetch_sub_explicit(&s->bytes, e->charge, memory_order_relaxed);
    if (e->generation == sh->live_gen) {
        sh->live_count--;
        sh->live_bytes -= e->charge;
    }
}

/*
 * Unlinks e, found through *pp in its chain, and pushes it on *dead for
 * release after the unlock. Caller holds shard lock; *pp then points at the
 * entry that followed e.
 */
static void unlink_at(struct cache_store *s, struct cache__shard *sh, struct cache_entry **pp,
                      struct cache_entry **dead)
{
    struct cache_entry *e = *pp;
    *pp = e->_hnext;
    queue_unlink(sh, e);
    account_unlink(s, sh, e);
    e->_hnext = *dead;
    *dead = e;
}

static bool is_dead(const struct cache_entry *e, uint32_t cur, int64_t now_ms)
{
    return e->generation != cur || now_ms >= e->stale_until_ms;
}

/* ================= SIEVE eviction ================= */

/*
 * Moves the hand to the next victim and returns it, or NULL when the shard
 * holds nothing but `protect`. Caller holds shard lock. Entries of an old
 * generation or past their stale window count as unvisited. The walk is
 * bounded: gets set visited bits only under this lock, so after one lap every
 * bit is clear.
 */
static struct cache_entry *sieve_victim(struct cache__shard *sh, const struct cache_entry *protect,
                                        uint32_t cur, int64_t now_ms)
{
    struct cache_entry *e = sh->hand ? sh->hand : sh->tail;
    for (size_t steps = 2 * sh->count + 2; e && steps > 0; steps--) {
        struct cache_entry *newer = e->_qprev;
        if (e != protect) {
            if (is_dead(e, cur, now_ms) || !is_visited(e)) {
                sh->hand = newer;
                return e;
            }
            clear_visited(e);
        }
        e = newer ? newer : sh->tail;
    }
    sh->hand = e;
    return NULL;
}

/* Evicts from sh until the store fits or sh has no victim; returns how many.
 * Takes and drops the shard lock. */
static size_t shard_evict(struct cache_store *s, struct cache__shard *sh,
                          const struct cache_entry *protect, int64_t now_ms)
{
    struct cache_entry *dead = NULL;
    size_t n = 0;

    pthread_mutex_lock(&sh->lock);
    uint32_t cur = current_gen(s);
    while (atomic_load_explicit(&s->bytes, memory_order_relaxed) > s->capacity) {
        struct cache_entry *v = sieve_victim(sh, protect, cur, now_ms);
        if (!v)
            break;
        unlink_at(s, sh, table_link_of(sh, v), &dead);
        n++;
    }
    pthread_mutex_unlock(&sh->lock);

    release_list(dead);
    if (n)
        atomic_fetch_add_explicit(&s->evictions, n, memory_order_relaxed);
    return n;
}

/*
 * The budget is global, so an entry may need room from other shards: evict
 * from the putter's own shard first (its lock is warm), then the others
 * round-robin, until the store fits or a whole lap finds nothing to evict.
 */
static void evict_until_fits(struct cache_store *s, struct cache__shard *own,
                             const struct cache_entry *protect, int64_t now_ms)
{
    if (atomic_load_explicit(&s->bytes, memory_order_relaxed) <= s->capacity)
        return;
    shard_evict(s, own, protect, now_ms);
    unsigned idle = 0;
    while (idle < CACHE__NSHARDS &&
           atomic_load_explicit(&s->bytes, memory_order_relaxed) > s->capacity) {
        unsigned i = atomic_fetch_add_explicit(&s->evict_rr, 1, memory_order_relaxed);
        struct cache__shard *sh = &s->shards[i & (CACHE__NSHARDS - 1)];
        idle = shard_evict(s, sh, protect, now_ms) ? 0 : idle + 1;
    }
}

/* ================= lifecycle ================= */

struct cache_store *cache_store_new(uint64_t capacity_bytes)
{
    GATE_ASSERT(capacity_bytes > 0);
    struct cache_store *s = xcalloc(1, sizeof(*s));
    s->magic = CACHE__STORE_MAGIC;
    s->capacity = capacity_bytes;
    atomic_init(&s->generation, 1);
    for (unsigned i = 0; i < CACHE__NSHARDS; i++) {
        struct cache__shard *sh = &s->shards[i];
        int rc = pthread_mutex_init(&sh->lock, NULL);
        GATE_ASSERT(rc == 0);
        sh->buckets = xcalloc(CACHE__BUCKETS_INIT, sizeof(*sh->buckets));
        sh->mask = CACHE__BUCKETS_INIT - 1;
        sh->live_gen = 1;
    }
    return s;
}

static void shard_destroy(struct cache__shard *sh)
{
    struct cache_entry *e = sh->head;
    while (e) {
        struct cache_entry *next = e->_qnext;
        e->_hnext = e->_qprev = e->_qnext = NULL;
        cache_entry_release(&e);
        e = next;
    }
    for (unsigned b = 0; b < CACHE__FILL_BUCKETS; b++) {
        struct cache__fill *f = sh->fills[b];
        while (f) {
            struct cache__fill *next = f->next;
            free(f);
            f = next;
        }
    }
    free(sh->buckets);
    pthread_mutex_destroy(&sh->lock);
}

void cache_store_free(struct cache_store **sp)
{
    struct cache_store *s = *sp;
    if (!s)
        return;
    *sp = NULL;
    GATE_ASSERT(s->magic == CACHE__STORE_MAGIC);
    for (unsigned i = 0; i < CACHE__NSHARDS; i++)
        shard_destroy(&s->shards[i]);
    s->magic = 0;
    free(s);
}

/* ================= lookup, insert, remove ================= */

struct cache_entry *cache_store_get(struct cache_store *s, const char *key, size_t key_len,
                                    uint64_t hash, int64_t now_ms, bool *fresh)
{
    struct cache__shard *sh = shard_of(s, hash);
    struct cache_entry *dead = NULL, *found = NULL;

    pthread_mutex_lock(&sh->lock);
    uint32_t cur = current_gen(s);
    struct cache_entry **pp = &sh->buckets[hash & sh->mask];
    while (*pp) {
        struct cache_entry *e = *pp;
        if (e->generation != cur) {
            unlink_at(s, sh, pp, &dead); /* flushed: reclaim while we are here */
            continue;
        }
        if (key_eq(e, key, key_len, hash)) {
            if (now_ms >= e->stale_until_ms)
                unlink_at(s, sh, pp, &dead);
            else {
                ref_and_visit(e);
                found = e;
            }
            break;
        }
        pp = &e->_hnext;
    }
    pthread_mutex_unlock(&sh->lock);

    release_list(dead);
    if (fresh)
        *fresh = found && now_ms < found->expires_ms;
    return found;
}

bool cache_store_put(struct cache_store *s, struct cache_entry *e, int64_t now_ms)
{
    GATE_ASSERT(e && e->magic == CACHE_ENTRY_MAGIC);
    GATE_ASSERT(!e->_qprev && !e->_qnext && !e->_hnext); /* not linked anywhere */
    if (e->charge > s->capacity) {
        cache_entry_release(&e);
        return false;
    }

    struct cache__shard *sh = shard_of(s, e->hash);
    struct cache_entry *dead = NULL;

    pthread_mutex_lock(&sh->lock);
    uint32_t cur = current_gen(s);
    e->generation = cur;
    struct cache_entry **slot = &sh->buckets[e->hash & sh->mask];
    struct cache_entry **pp = slot;
    while (*pp) {
        struct cache_entry *o = *pp;
        if (o->generation != cur || key_eq(o, e->key, e->key_len, e->hash))
            unlink_at(s, sh, pp, &dead); /* replaced, or flushed and met on the way */
        else
            pp = &o->_hnext;
    }
    e->_hnext = *slot;
    *slot = e;
    queue_push_head(sh, e);
    account_link(s, sh, e);
    if (sh->count > CACHE__MAX_LOAD * (sh->mask + 1))
        table_grow(sh);
    pthread_mutex_unlock(&sh->lock);

    release_list(dead);
    /* e is ours no more: another thread may evict and free it from here on,
     * so only its address is used below (as the entry not to evict). */
    evict_until_fits(s, sh, e, now_ms);
    return true;
}

static void note_invalidation(struct cache_store *s)
{
    atomic_fetch_add_explicit(&s->invalidations, 1, memory_order_acq_rel);
}

uint64_t cache_store_invalidations(const struct cache_store *s)
{
    return atomic_load_explicit(&s->invalidations, memory_order_acquire);
}

bool cache_store_remove(struct cache_store *s, const char *key, size_t key_len, uint64_t hash)
{
    note_invalidation(s);
    struct cache__shard *sh = shard_of(s, hash);
    struct cache_entry *dead = NULL;
    bool removed = false;

    pthread_mutex_lock(&sh->lock);
    uint32_t cur = current_gen(s);
    struct cache_entry **pp = &sh->buckets[hash & sh->mask];
    while (*pp) {
        struct cache_entry *e = *pp;
        if (e->generation != cur)
            unlink_at(s, sh, pp, &dead);
        else if (key_eq(e, key, key_len, hash)) {
            unlink_at(s, sh, pp, &dead);
            removed = true;
        } else
            pp = &e->_hnext;
    }
    pthread_mutex_unlock(&sh->lock);

    release_list(dead);
    return removed;
}

/* ================= generations ================= */

uint64_t cache_store_flush(struct cache_store *s)
{
    note_invalidation(s);
    return atomic_fetch_add_explicit(&s->generation, 1, memory_order_acq_rel) + 1;
}

uint64_t cache_store_generation(const struct cache_store *s)
{
    return atomic_load_explicit(&s->generation, memory_order_acquire);
}

/* ================= invalidation walks ================= */

struct cache__match {
    const char *method; /* NULL: any method */
    const char *path;   /* NULL: no path condition */
    size_t path_len;
    bool prefix;
    const char *tag; /* NULL: no tag condition */
    size_t tag_len;
};

static bool matches(const struct cache_entry *e, const struct cache__match *m)
{
    if (m->method && strcmp(cache_entry_method(e), m->method) != 0)
        return false;
    if (m->path) {
        if (m->prefix ? e->path_len < m->path_len : e->path_len != m->path_len)
            return false;
        if (memcmp(cache_entry_path(e), m->path, m->path_len) != 0)
            return false;
    }
    return !m->tag || cache_entry_has_tag(e, m->tag, m->tag_len);
}

/* Unlinks matching current-generation entries of one shard (and any old-generation
 * entry met: reclaim, not counted). Takes and drops the shard lock. */
static size_t shard_invalidate(struct cache_store *s, struct cache__shard *sh,
                               const struct cache__match *m)
{
    struct cache_entry *dead = NULL;
    size_t n = 0;

    pthread_mutex_lock(&sh->lock);
    uint32_t cur = current_gen(s);
    struct cache_entry *e = sh->head;
    while (e) {
        struct cache_entry *older = e->_qnext;
        bool old_gen = e->generation != cur;
        if (old_gen || matches(e, m)) {
            unlink_at(s, sh, table_link_of(sh, e), &dead);
            n += !old_gen;
        }
        e = older;
    }
    pthread_mutex_unlock(&sh->lock);

    release_list(dead);
    return n;
}

static size_t invalidate(struct cache_store *s, const struct cache__match *m)
{
    note_invalidation(s);
    size_t n = 0;
    for (unsigned i = 0; i < CACHE__NSHARDS; i++)
        n += shard_invalidate(s, &s->shards[i], m);
    return n;
}

size_t cache_store_invalidate_path(struct cache_store *s, const char *path, size_t len,
                                   bool prefix)
{
    struct cache__match m = {.path = path, .path_len = len, .prefix = prefix};
    return invalidate(s, &m);
}

size_t cache_store_invalidate_method_path(struct cache_store *s, const char *method,
                                          const char *path, size_t len)
{
    struct cache__match m = {.method = method, .path = path, .path_len = len};
    return invalidate(s, &m);
}

size_t cache_store_invalidate_tag(struct cache_store *s, const char *tag, size_t len)
{
    if (len == 0)
        return 0; /* an empty tag names nothing (the parser never stores one) */
    struct cache__match m = {.tag = tag, .tag_len = len};
    return invalidate(s, &m);
}

/* ================= miss coalescing ================= */

/* The link to the fill record of this key, or to the NULL ending its chain.
 * Caller holds shard lock. */
static struct cache__fill **fill_link(struct cache__shard *sh, const char *key, size_t key_len,
                                      uint64_t hash)
{
    struct cache__fill **pp = &sh->fills[hash & (CACHE__FILL_BUCKETS - 1)];
    while (*pp) {
        struct cache__fill *f = *pp;
        if (f->hash == hash && f->key_len == key_len && memcmp(f->key, key, key_len) == 0)
            break;
        pp = &f->next;
    }
    return pp;
}

bool cache_store_claim_fill(struct cache_store *s, const char *key, size_t key_len,
                            uint64_t hash, unsigned worker_id)
{
    GATE_ASSERT(worker_id < 64);
    struct cache__shard *sh = shard_of(s, hash);
    /* Allocate before locking so the lock is never held across malloc; a
     * waiter frees it unused, which is cheap next to the fill it waits for. */
    struct cache__fill *nf = xmalloc(sizeof(*nf) + key_len);
    bool filler;

    pthread_mutex_lock(&sh->lock);
    struct cache__fill **pp = fill_link(sh, key, key_len, hash);
    filler = *pp == NULL;
    if (filler) {
        nf->next = NULL;
        nf->hash = hash;
        nf->waiters = 0;
        nf->key_len = key_len;
        memcpy(nf->key, key, key_len);
        *pp = nf;
        nf = NULL;
    } else
        (*pp)->waiters |= UINT64_C(1) << worker_id;
    pthread_mutex_unlock(&sh->lock);

    free(nf);
    return filler;
}

uint64_t cache_store_end_fill(struct cache_store *s, const char *key, size_t key_len,
                              uint64_t hash)
{
    struct cache__shard *sh = shard_of(s, hash);
    struct cache__fill *f;

    pthread_mutex_lock(&sh->lock);
    struct cache__fill **pp = fill_link(sh, key, key_len, hash);
    f = *pp;
    if (f)
        *pp = f->next;
    pthread_mutex_unlock(&sh->lock);

    if (!f)
        return 0;
    uint64_t mask = f->waiters;
    free(f);
    return mask;
}

/* ================= stats ================= */

void cache_store_get_stats(struct cache_store *s, struct cache_store_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->capacity = s->capacity;
    st->evictions = atomic_load_explicit(&s->evictions, memory_order_relaxed);
    st->generation = cache_store_generation(s);
    for (unsigned i = 0; i < CACHE__NSHARDS; i++) {
        struct cache__shard *sh = &s->shards[i];
        pthread_mutex_lock(&sh->lock);
        uint32_t cur = current_gen(s);
        st->linked_entries += sh->count;
        st->linked_bytes += sh->bytes;
        st->table_bytes += (sh->mask + 1) * sizeof(*sh->buckets);
        if (sh->live_gen == cur) {
            st->entries += sh->live_count;
            st->bytes += sh->live_bytes;
        }
        pthread_mutex_unlock(&sh->lock);
    }
}
