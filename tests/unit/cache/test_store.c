/*
 * Unit tests for src/cache/store.c. Deterministic: time is passed as now_ms,
 * hashes are chosen by the tests where placement matters, nothing sleeps.
 * The stress test is the target of the TSan build.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "cache/cache.h"
#include "util/util.h"

/* ================= helpers ================= */

struct spec {
    const char *method; /* default "GET" */
    const char *path;   /* default "/k" */
    const char *tags;
    size_t body_len;
    int64_t now, ttl, stale; /* fresh for ttl, then stale for `stale` more */
};

/* A key hashed with cache_hash unless hash != 0. ttl == stale == 0 means 100 each. */
static struct cache_entry *mk(const char *key, uint64_t hash, const struct spec *sp)
{
    static char body[65536];
    struct spec d = {.ttl = 100, .stale = 100};
    if (!sp)
        sp = &d;
    if (sp->ttl == 0 && sp->stale == 0) {
        d = *sp;
        d.ttl = d.stale = 100;
        sp = &d;
    }
    const char *path = sp->path ? sp->path : "/k";
    struct cache_entry_init in = {
        .key = key,
        .key_len = strlen(key),
        .hash = hash ? hash : cache_hash(key, strlen(key)),
        .method = sp->method ? sp->method : "GET",
        .path = path,
        .path_len = strlen(path),
        .head = "HTTP/1.1 200 OK\r\n",
        .head_len = 17,
        .body = body,
        .body_len = sp->body_len,
        .tags = sp->tags,
        .tags_len = sp->tags ? strlen(sp->tags) : 0,
        .stored_ms = sp->now,
        .expires_ms = sp->now + sp->ttl,
        .stale_until_ms = sp->now + sp->ttl + sp->stale,
    };
    struct cache_entry *e = cache_entry_new(&in);
    assert_non_null(e);
    return e;
}

static bool put(struct cache_store *s, const char *key, uint64_t hash, const struct spec *sp)
{
    return cache_store_put(s, mk(key, hash, sp), sp ? sp->now : 0);
}

/* Looks key up; returns 0 = miss, 1 = fresh hit, 2 = stale hit. */
static int look(struct cache_store *s, const char *key, uint64_t hash, int64_t now)
{
    bool fresh = false;
    size_t n = strlen(key);
    uint64_t h = hash ? hash : cache_hash(key, n);
    struct cache_entry *e = cache_store_get(s, key, n, h, now, &fresh);
    if (!e)
        return 0;
    assert_memory_equal(e->key, key, n);
    cache_entry_release(&e);
    return fresh ? 1 : 2;
}

static struct cache_store_stats stats(struct cache_store *s)
{
    struct cache_store_stats st;
    cache_store_get_stats(s, &st);
    return st;
}

static uint64_t xorshift(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* A hash in shard `shard` (top 4 bits) with low bits `n`. */
static uint64_t in_shard(unsigned shard, uint64_t n)
{
    return ((uint64_t)shard << 60) | (n * 0x9e3779b97f4a7c15ull >> 4);
}

/* ================= basic lookup ================= */

static void test_hit_miss(void **state)
{
    struct cache_store *s = cache_store_new(1 << 20);
    assert_int_equal(look(s, "a", 0, 0), 0);
    assert_true(put(s, "a", 0, NULL));
    assert_int_equal(look(s, "a", 0, 0), 1);
    assert_int_equal(look(s, "b", 0, 0), 0);
    /* get with fresh == NULL is allowed */
    struct cache_entry *e = cache_store_get(s, "a", 1, cache_hash("a", 1), 0, NULL);
    assert_non_null(e);
    cache_entry_release(&e);
    cache_store_free(&s);
    assert_null(s);
    cache_store_free(&s); /* NULL: no-op */
}

static void test_colliding_hashes(void **state)
{
    struct cache_store *s = cache_store_new(1 << 20);
    assert_true(put(s, "alpha", 42, NULL));
    assert_true(put(s, "beta", 42, NULL));
    assert_true(put(s, "alphb", 42, NULL)); /* same length, same hash */
    assert_int_equal(look(s, "alpha", 42, 0), 1);
    assert_int_equal(look(s, "beta", 42, 0), 1);
    assert_int_equal(look(s, "alphb", 42, 0), 1);
    assert_int_equal(look(s, "gamma", 42, 0), 0);
    assert_int_equal(look(s, "alph", 42, 0), 0);
    assert_int_equal(stats(s).entries, 3);
    /* remove honours the full key too */
    assert_false(cache_store_remove(s, "gamma", 5, 42));
    assert_true(cache_store_remove(s, "beta", 4, 42));
    assert_int_equal(look(s, "beta", 42, 0), 0);
    assert_int_equal(look(s, "alpha", 42, 0), 1);
    assert_int_equal(stats(s).entries, 2);
    cache_store_free(&s);
}

static void test_ttl_fresh_stale_gone(void **state)
{
    struct cache_store *s = cache_store_new(1 << 20);
    struct spec sp = {.now = 1000, .ttl = 60, .stale = 30};
    assert_true(put(s, "k", 0, &sp));
    assert_int_equal(look(s, "k", 0, 1000), 1);
    assert_int_equal(look(s, "k", 0, 1059), 1);
    assert_int_equal(look(s, "k", 0, 1060), 2); /* now == expires_ms: stale */
    assert_int_equal(look(s, "k", 0, 1089), 2);
    assert_int_equal(stats(s).linked_entries, 1);
    assert_int_equal(look(s, "k", 0, 1090), 0); /* now == stale_until_ms: gone */
    assert_int_equal(stats(s).linked_entries, 0); /* and unlinked on the way */
    assert_int_equal(stats(s).linked_bytes, 0);
    assert_int_equal(look(s, "k", 0, 1000), 0); /* not coming back */
    cache_store_free(&s);
}

static void test_replace_same_key(void **state)
{
    struct cache_store *s = cache_store_new(1 << 20);
    struct spec a = {.ttl = 100, .stale = 0, .body_len = 10};
    struct spec b = {.ttl = 500, .stale = 0, .body_len = 20};
    assert_true(put(s, "k", 0, &a));
    bool fresh;
    struct cache_entry *old = cache_store_get(s, "k", 1, cache_hash("k", 1), 0, &fresh);
    assert_non_null(old);
    assert_true(put(s, "k", 0, &b));

    struct cache_entry *e = cache_store_get(s, "k", 1, cache_hash("k", 1), 200, &fresh);
    assert_non_null(e);
    assert_true(fresh);
    assert_int_equal(e->body_len, 20);
    struct cache_store_stats st = stats(s);
    assert_int_equal(st.entries, 1);
    assert_int_equal(st.bytes, e->charge);
    assert_int_equal(st.linked_bytes, e->charge);
    /* the replaced entry was unlinked but our ref keeps it readable */
    assert_int_equal(old->body_len, 10);
    assert_string_equal(cache_entry_path(old), "/k");
    cache_entry_release(&old);
    cache_entry_release(&e);
    cache_store_free(&s);
}

/* ================= capacity and eviction ================= */

static void test_capacity_bound(void **state)
{
    const uint64_t cap = 64 * 1024;
    struct cache_store *s = cache_store_new(cap);
    uint64_t x = 88172645463325252ull;
    char key[32];
    for (int i = 0; i < 20000; i++) {
        xorshift(&x);
        snprintf(key, sizeof(key), "key-%d", (int)(x % 5000));
        struct spec sp = {.now = i, .ttl = 1000, .stale = 1000, .body_len = x % 3000};
        assert_true(put(s, key, 0, &sp));
        assert_true(stats(s).linked_bytes <= cap);
    }
    struct cache_store_stats st = stats(s);
    assert_true(st.evictions > 0);
    assert_true(st.linked_bytes > cap / 2); /* eviction stops when it fits */
    cache_store_free(&s);
}

static void test_oversize_refused(void **state)
{
    struct cache_entry *probe = mk("big", 0, &(struct spec){.body_len = 4000});
    const uint64_t cap = probe->charge; /* exactly one big entry fits */
    cache_entry_release(&probe);

    struct cache_store *s = cache_store_new(cap);
    assert_false(put(s, "big", 0, &(struct spec){.body_len = 4001})); /* charge > capacity */
    assert_int_equal(stats(s).linked_entries, 0);

    /* Small entries spread over every shard, then one as large as the whole
     * capacity: it is stored, evicting from other shards (no per-shard split). */
    char key[16];
    for (int i = 0; i < 64; i++) {
        snprintf(key, sizeof(key), "s%d", i);
        assert_true(put(s, key, in_shard((unsigned)i % 16, (uint64_t)i), NULL));
    }
    assert_true(put(s, "big", in_shard(3, 1000), &(struct spec){.body_len = 4000}));
    struct cache_store_stats st = stats(s);
    assert_int_equal(st.linked_entries, 1);
    assert_int_equal(st.linked_bytes, cap);
    assert_int_equal(look(s, "big", in_shard(3, 1000), 0), 1);
    cache_store_free(&s);
}

static void test_sieve_keeps_hot_entry(void **state)
{
    struct cache_entry *probe = mk("hot", 1, &(struct spec){.body_len = 200});
    const uint64_t cap = probe->charge * 20; /* room for ~20 entries */
    cache_entry_release(&probe);

    struct cache_store *s = cache_store_new(cap);
    const unsigned sh = 5; /* everything in one shard: eviction is SIEVE's choice alone */
    struct spec sp = {.ttl = 1000000, .stale = 0, .body_len = 200};
    assert_true(put(s, "hot", in_shard(sh, 1), &sp));
    assert_true(put(s, "cold", in_shard(sh, 2), &sp)); /* inserted with hot, never hit */

    char key[32];
    for (int i = 0; i < 1000; i++) { /* a scan 50x the capacity */
        snprintf(key, sizeof(key), "scan-%d", i);
        sp.now = i;
        /* one access each: the miss that filled it (SIEVE's visited bit stays clear) */
        assert_true(put(s, key, in_shard(sh, 100 + (uint64_t)i), &sp));
        if (i % 10 == 0)
            assert_int_equal(look(s, "hot", in_shard(sh, 1), i), 1);
    }
    assert_int_equal(look(s, "hot", in_shard(sh, 1), 1000), 1);
    assert_int_equal(look(s, "cold", in_shard(sh, 2), 1000), 0);
    assert_true(stats(s).evictions >= 980);
    cache_store_free(&s);
}

static void test_eviction_prefers_dead_entries(void **state)
{
    struct cache_entry *probe = mk("p", 1, &(struct spec){.body_len = 100});
    const uint64_t cap = probe->charge * 4;
    cache_entry_release(&probe);
    struct cache_store *s = cache_store_new(cap);

    /* a, b hit (visited); c expires at 10; d fresh. */
    struct spec live = {.ttl = 1000, .stale = 0, .body_len = 100};
    struct spec brief = {.ttl = 5, .stale = 5, .body_len = 100};
    assert_true(put(s, "a", in_shard(0, 1), &live));
    assert_true(put(s, "b", in_shard(0, 2), &live));
    assert_true(put(s, "c", in_shard(0, 3), &brief));
    assert_true(put(s, "d", in_shard(0, 4), &live));
    assert_int_equal(look(s, "a", in_shard(0, 1), 0), 1);
    assert_int_equal(look(s, "b", in_shard(0, 2), 0), 1);
    assert_int_equal(look(s, "c", in_shard(0, 3), 0), 1); /* visited, but soon dead */

    live.now = 20;
    assert_true(put(s, "e", in_shard(0, 5), &live)); /* must evict one: c, past stale */
    assert_int_equal(look(s, "a", in_shard(0, 1), 20), 1);
    assert_int_equal(look(s, "b", in_shard(0, 2), 20), 1);
    assert_int_equal(look(s, "d", in_shard(0, 4), 20), 1);
    assert_int_equal(look(s, "e", in_shard(0, 5), 20), 1);
    assert_int_equal(stats(s).evictions, 1);
    cache_store_free(&s);
}

/* ================= generations ================= */

static void test_flush(void **state)
{
    struct cache_store *s = cache_store_new(1 << 20);
    char key[16];
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_true(put(s, key, 0, NULL));
    }
    uint64_t g0 = cache_store_generation(s);
    assert_int_equal(cache_store_flush(s), g0 + 1);
    assert_int_equal(cache_store_generation(s), g0 + 1);

    struct cache_store_stats st = stats(s);
    assert_int_equal(st.entries, 0); /* exact at once... */
    assert_int_equal(st.bytes, 0);
    assert_int_equal(st.linked_entries, 100); /* ...while the memory awaits reclaim */
    assert_int_equal(st.generation, g0 + 1);

    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(look(s, key, 0, 0), 0);
    }
    assert_int_equal(stats(s).linked_entries, 0); /* the gets reclaimed them */

    assert_true(put(s, "k7", 0, NULL)); /* puts after the flush are visible */
    assert_int_equal(look(s, "k7", 0, 0), 1);
    st = stats(s);
    assert_int_equal(st.entries, 1);
    assert_int_equal(st.linked_entries, 1);
    cache_store_free(&s); /* and under ASan: no leak of never-reclaimed entries */
}

static void test_flush_then_free_leaks_nothing(void **state)
{
    struct cache_store *s = cache_store_new(1 << 20);
    assert_true(put(s, "a", 0, NULL));
    assert_true(put(s, "b", 0, NULL));
    cache_store_flush(s);
    assert_true(put(s, "a", 0, NULL)); /* meets the old "a" in its chain: reclaims it */
    assert_int_equal(stats(s).entries, 1);
    cache_store_free(&s);
}

static void test_stats(void **state)
{
    struct cache_store *s = cache_store_new(12345);
    struct cache_store_stats st = stats(s);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(st.capacity, 12345);
    assert_int_equal(st.evictions, 0);
    assert_int_equal(st.generation, cache_store_generation(s));

    struct cache_entry *a = mk("a", 0, &(struct spec){.ttl = 10, .body_len = 100});
    struct cache_entry *b = mk("b", 0, &(struct spec){.ttl = 10, .body_len = 200});
    uint64_t b_charge = b->charge;
    uint64_t want = a->charge + b_charge;
    assert_true(cache_store_put(s, a, 0));
    assert_true(cache_store_put(s, b, 0)); /* a and b are the store's now */
    st = stats(s);
    assert_int_equal(st.entries, 2);
    assert_int_equal(st.linked_entries, 2);
    assert_int_equal(st.bytes, want);
    assert_int_equal(st.linked_bytes, want);
    assert_true(cache_store_remove(s, "a", 1, cache_hash("a", 1)));
    assert_false(cache_store_remove(s, "a", 1, cache_hash("a", 1)));
    st = stats(s);
    assert_int_equal(st.entries, 1);
    assert_int_equal(st.bytes, b_charge);
    assert_int_equal(st.evictions, 0);
    assert_int_equal(look(s, "b", 0, 20), 0); /* past stale: reclaimed, not evicted */
    st = stats(s);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(st.evictions, 0);
    cache_store_free(&s);
}

/* ================= invalidation ================= */

static struct cache_store *populated(void)
{
    struct cache_store *s = cache_store_new(1 << 20);
    assert_true(put(s, "GET /pets/1 a", 0, &(struct spec){.path = "/pets/1", .tags = "pets, p1"}));
    assert_true(put(s, "GET /pets/1 b", 0, &(struct spec){.path = "/pets/1", .tags = "pets"}));
    assert_true(put(s, "HEAD /pets/1", 0,
                    &(struct spec){.method = "HEAD", .path = "/pets/1", .tags = "p1"}));
    assert_true(put(s, "GET /pets/12", 0, &(struct spec){.path = "/pets/12", .tags = "pets"}));
    assert_true(put(s, "GET /pets", 0, &(struct spec){.path = "/pets", .tags = "list"}));
    assert_true(put(s, "GET /owners/1", 0, &(struct spec){.path = "/owners/1"}));
    return s;
}

static void test_invalidate_path(void **state)
{
    struct cache_store *s = populated();
    assert_int_equal(cache_store_invalidate_path(s, "/pets/1", 7, false), 3);
    assert_int_equal(look(s, "GET /pets/1 a", 0, 0), 0);
    assert_int_equal(look(s, "HEAD /pets/1", 0, 0), 0);
    assert_int_equal(look(s, "GET /pets/12", 0, 0), 1);
    assert_int_equal(cache_store_invalidate_path(s, "/pets/1", 7, false), 0);
    assert_int_equal(stats(s).entries, 3);
    cache_store_free(&s);

    s = populated();
    assert_int_equal(cache_store_invalidate_path(s, "/pets", 5, true), 5); /* "/pets*" */
    assert_int_equal(look(s, "GET /owners/1", 0, 0), 1);
    assert_int_equal(cache_store_invalidate_path(s, "/", 1, true), 1);
    assert_int_equal(stats(s).linked_entries, 0);
    cache_store_free(&s);
}

/* Every kind of invalidation moves the count, before it walks; lookups and
 * puts do not. */
static void test_invalidation_count(void **state)
{
    struct cache_store *s = populated();
    uint64_t n = cache_store_invalidations(s);
    look(s, "GET /pets/1 a", 0, 0);
    assert_int_equal(cache_store_invalidations(s), n);
    cache_store_invalidate_path(s, "/nothing", 8, false); /* even when nothing matches */
    assert_int_equal(cache_store_invalidations(s), n + 1);
    cache_store_invalidate_method_path(s, "GET", "/pets/1", 7);
    cache_store_invalidate_tag(s, "t", 1);
    cache_store_remove(s, "x", 1, 1);
    cache_store_flush(s);
    assert_int_equal(cache_store_invalidations(s), n + 5);
    cache_store_free(&s);
}

static void test_invalidate_method_path(void **state)
{
    struct cache_store *s = populated();
    assert_int_equal(cache_store_invalidate_method_path(s, "GET", "/pets/1", 7), 2);
    assert_int_equal(look(s, "HEAD /pets/1", 0, 0), 1);
    assert_int_equal(look(s, "GET /pets/12", 0, 0), 1);
    assert_int_equal(cache_store_invalidate_method_path(s, "HEAD", "/pets/1", 7), 1);
    assert_int_equal(cache_store_invalidate_method_path(s, "GET", "/pets/", 6), 0);
    assert_int_equal(stats(s).entries, 3);
    cache_store_free(&s);
}

static void test_invalidate_tag(void **state)
{
    struct cache_store *s = populated();
    assert_int_equal(cache_store_invalidate_tag(s, "p1", 2), 2);
    assert_int_equal(look(s, "GET /pets/1 a", 0, 0), 0);
    assert_int_equal(look(s, "HEAD /pets/1", 0, 0), 0);
    assert_int_equal(cache_store_invalidate_tag(s, "pets", 4), 2);
    assert_int_equal(cache_store_invalidate_tag(s, "pet", 3), 0);
    assert_int_equal(cache_store_invalidate_tag(s, "", 0), 0);
    assert_int_equal(look(s, "GET /pets", 0, 0), 1);
    assert_int_equal(stats(s).entries, 2);
    cache_store_free(&s);
}

static void test_invalidate_skips_old_generation(void **state)
{
    struct cache_store *s = populated();
    cache_store_flush(s);
    assert_true(put(s, "GET /pets/1 a", 0, &(struct spec){.path = "/pets/1"}));
    /* only the current-generation entry counts; the flushed ones are reclaimed */
    assert_int_equal(cache_store_invalidate_path(s, "/pets/1", 7, false), 1);
    assert_int_equal(stats(s).linked_entries, 0);
    cache_store_free(&s);
}

/* ================= miss coalescing ================= */

static void test_fill_masks(void **state)
{
    struct cache_store *s = cache_store_new(1 << 20);
    assert_int_equal(cache_store_end_fill(s, "none", 4, 7), 0); /* no record: 0, no crash */

    assert_true(cache_store_claim_fill(s, "k", 1, 7, 0));
    assert_false(cache_store_claim_fill(s, "k", 1, 7, 3));
    assert_false(cache_store_claim_fill(s, "k", 1, 7, 63));
    assert_false(cache_store_claim_fill(s, "k", 1, 7, 3)); /* same bit twice */
    /* same hash, other key: its own fill */
    assert_true(cache_store_claim_fill(s, "j", 1, 7, 1));
    assert_false(cache_store_claim_fill(s, "j", 1, 7, 2));

    assert_int_equal(cache_store_end_fill(s, "k", 1, 7), (1ull << 3) | (1ull << 63));
    assert_int_equal(cache_store_end_fill(s, "k", 1, 7), 0); /* record gone */
    assert_true(cache_store_claim_fill(s, "k", 1, 7, 5));   /* a new round */
    assert_int_equal(cache_store_end_fill(s, "k", 1, 7), 0); /* nobody waited */
    assert_int_equal(cache_store_end_fill(s, "j", 1, 7), 1ull << 2);

    assert_true(cache_store_claim_fill(s, "left", 4, 9, 0)); /* freed by cache_store_free */
    cache_store_free(&s);
}

/* ================= concurrency ================= */

#define STRESS_THREADS 4
#define STRESS_OPS 100000
#define STRESS_KEYS 3000
#define STRESS_CAP (256 * 1024)
#define STRESS_HELD 8

struct stress_arg {
    struct cache_store *s;
    unsigned id;
    struct cache_entry *held[STRESS_HELD]; /* refs kept past the store's free */
};

static void stress_get(struct stress_arg *a, const char *key, int64_t now, uint64_t r)
{
    bool fresh;
    size_t n = strlen(key);
    struct cache_entry *e = cache_store_get(a->s, key, n, cache_hash(key, n), now, &fresh);
    if (!e)
        return;
    if (memcmp(e->key, key, n) != 0 || e->magic != CACHE_ENTRY_MAGIC)
        fail_msg("wrong entry for %s", key);
    /* Swap it into the held set; the entry it displaces is released. */
    struct cache_entry **slot = &a->held[r % STRESS_HELD];
    cache_entry_release(slot);
    *slot = e;
}

static void *stress_thread(void *p)
{
    struct stress_arg *a = p;
    uint64_t x = 0x9e3779b97f4a7c15ull * (a->id + 1);
    char key[32], path[32];
    for (int i = 0; i < STRESS_OPS; i++) {
        uint64_t r = xorshift(&x);
        unsigned k = (unsigned)(r % STRESS_KEYS);
        int64_t now = i;
        snprintf(key, sizeof(key), "GET /r/%u", k);
        snprintf(path, sizeof(path), "/r/%u", k);
        unsigned op = (unsigned)((r >> 32) % 1000);
        if (op < 600) {
            stress_get(a, key, now, r >> 16);
        } else if (op < 980) {
            struct spec sp = {.path = path, .tags = k % 2 ? "odd, all" : "all", .now = now,
                              .ttl = (int64_t)(r % 500), .stale = 100, .body_len = (r >> 8) % 2000};
            cache_store_put(a->s, mk(key, 0, &sp), now);
        } else if (op < 990) {
            cache_store_remove(a->s, key, strlen(key), cache_hash(key, strlen(key)));
        } else if (op < 995) {
            cache_store_invalidate_path(a->s, path, strlen(path), false);
        } else if (op < 997) {
            cache_store_invalidate_tag(a->s, "odd", 3);
        } else if (op < 998) {
            cache_store_flush(a->s);
        } else if (cache_store_claim_fill(a->s, key, strlen(key), cache_hash(key, strlen(key)),
                                          a->id)) {
            cache_store_end_fill(a->s, key, strlen(key), cache_hash(key, strlen(key)));
        }
    }
    return NULL;
}

static void test_stress_threads(void **state)
{
    struct cache_store *s = cache_store_new(STRESS_CAP);
    struct stress_arg args[STRESS_THREADS];
    pthread_t th[STRESS_THREADS];
    memset(args, 0, sizeof(args));
    for (unsigned i = 0; i < STRESS_THREADS; i++) {
        args[i].s = s;
        args[i].id = i;
        assert_int_equal(pthread_create(&th[i], NULL, stress_thread, &args[i]), 0);
    }
    for (unsigned i = 0; i < STRESS_THREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);

    struct cache_store_stats st = stats(s);
    assert_true(st.linked_bytes <= STRESS_CAP);
    assert_true(st.bytes <= st.linked_bytes);
    assert_true(st.entries <= st.linked_entries);
    assert_true(st.evictions > 0);

    /* Refs held past the free stay valid; releasing them frees (ASan: no leak). */
    cache_store_free(&s);
    for (unsigned i = 0; i < STRESS_THREADS; i++) {
        for (unsigned j = 0; j < STRESS_HELD; j++) {
            struct cache_entry *e = args[i].held[j];
            if (e)
                assert_int_equal(e->magic, CACHE_ENTRY_MAGIC);
            cache_entry_release(&args[i].held[j]);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_miss),
        cmocka_unit_test(test_colliding_hashes),
        cmocka_unit_test(test_ttl_fresh_stale_gone),
        cmocka_unit_test(test_replace_same_key),
        cmocka_unit_test(test_capacity_bound),
        cmocka_unit_test(test_oversize_refused),
        cmocka_unit_test(test_sieve_keeps_hot_entry),
        cmocka_unit_test(test_eviction_prefers_dead_entries),
        cmocka_unit_test(test_flush),
        cmocka_unit_test(test_invalidation_count),
        cmocka_unit_test(test_flush_then_free_leaks_nothing),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_invalidate_path),
        cmocka_unit_test(test_invalidate_method_path),
        cmocka_unit_test(test_invalidate_tag),
        cmocka_unit_test(test_invalidate_skips_old_generation),
        cmocka_unit_test(test_fill_masks),
        cmocka_unit_test(test_stress_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
