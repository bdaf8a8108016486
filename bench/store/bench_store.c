/*
 * bench_store — speed and size of the cache store (a program, not a test:
 * speed is measured here, never asserted in tests).
 *
 * Build and run from the repository root (no CMake needed):
 *   gcc -std=gnu11 -O2 -g -Wall -Wextra -D_GNU_SOURCE -Isrc src/util/util.c src/cache/entry.c \
 *       src/cache/store.c bench/store/bench_store.c -lxxhash -lpthread -o /tmp/bench_store \
 *       && /tmp/bench_store
 *
 * Measures, on a store holding 1,000,000 entries:
 *   - get + release ns/op: a cache-resident hot set, uniform over all 1M keys,
 *     and the uniform case on every CPU at once (shard locks contended);
 *   - put ns/op into a full store (each put evicts);
 *   - flush time (a generation bump: must stay far below 1 ms);
 *   - bookkeeping bytes per entry: the struct before the payload, charge
 *     minus key/body/head (the brief's figure: also counts method, path, tags
 *     and NULs), and the hash-table slot. These come from sizes, not from RSS:
 *     bench/rss/bench_rss.c measures the real cost, malloc overhead included.
 * Keys and hashes are precomputed so the numbers are the store's, not XXH3's.
 */
#include "cache/cache.h"
#include "cache/cache_int.h"
#include "util/util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define N_ENTRIES 1000000u
#define BODY_LEN 64
#define HOT_KEYS 1024u
#define GET_OPS 4000000u
#define PUT_OPS 1000000u
#define MAX_THREADS 64

struct key {
    char s[40];
    size_t len;
    uint64_t hash;
};

static struct key *keys; /* owned: free(); N_ENTRIES + PUT_OPS keys */

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static uint64_t xorshift(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static void make_keys(size_t n)
{
    keys = xmalloc(n * sizeof(*keys));
    for (size_t i = 0; i < n; i++) {
        int len = snprintf(keys[i].s, sizeof(keys[i].s), "GET /items/%zu?v=1", i);
        keys[i].len = (size_t)len;
        keys[i].hash = cache_hash(keys[i].s, keys[i].len);
    }
}

static struct cache_entry *make_entry(const struct key *k)
{
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n";
    static const char body[BODY_LEN];
    struct cache_entry_init in = {
        .key = k->s, .key_len = k->len, .hash = k->hash,
        .method = "GET", .path = "/items/x", .path_len = 8,
        .head = head, .head_len = sizeof(head) - 1,
        .body = body, .body_len = BODY_LEN,
        .expires_ms = INT64_MAX / 2, .stale_until_ms = INT64_MAX / 2,
    };
    struct cache_entry *e = cache_entry_new(&in);
    GATE_ASSERT(e != NULL);
    return e;
}

/* ================= get ================= */

struct get_arg {
    struct cache_store *s;
    unsigned nkeys; /* keys drawn uniformly from [0, nkeys) */
    unsigned ops;
    uint64_t seed;
    unsigned misses;
    double ns;
};

static void *get_loop(void *p)
{
    struct get_arg *a = p;
    uint64_t x = a->seed;
    bool fresh;
    double t0 = now_ns();
    for (unsigned i = 0; i < a->ops; i++) {
        const struct key *k = &keys[xorshift(&x) % a->nkeys];
        struct cache_entry *e = cache_store_get(a->s, k->s, k->len, k->hash, 0, &fresh);
        if (!e) {
            a->misses++;
            continue;
        }
        cache_entry_release(&e);
    }
    a->ns = now_ns() - t0;
    return NULL;
}

/* Runs `threads` getters at once; returns ns per op per thread (mean). */
static double bench_get(struct cache_store *s, unsigned nkeys, unsigned threads)
{
    struct get_arg args[MAX_THREADS];
    pthread_t th[MAX_THREADS];
    double sum = 0;
    for (unsigned i = 0; i < threads; i++) {
        args[i] = (struct get_arg){.s = s, .nkeys = nkeys, .ops = GET_OPS, .seed = 7 + i};
        pthread_create(&th[i], NULL, get_loop, &args[i]);
    }
    for (unsigned i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        GATE_ASSERT(args[i].misses == 0);
        sum += args[i].ns / GET_OPS;
    }
    return sum / threads;
}

/* ================= main ================= */

int main(void)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned cpus = ncpu < 1 ? 1 : ncpu > MAX_THREADS ? MAX_THREADS : (unsigned)ncpu;
    make_keys(N_ENTRIES + PUT_OPS);

    /* Size the capacity to hold exactly the 1M entries, so later puts evict. */
    struct cache_entry *probe = make_entry(&keys[N_ENTRIES - 1]);
    uint64_t cap = (uint64_t)probe->charge * N_ENTRIES;
    cache_entry_release(&probe);
    struct cache_store *s = cache_store_new(cap);

    double t0 = now_ns();
    for (unsigned i = 0; i < N_ENTRIES; i++)
        cache_store_put(s, make_entry(&keys[i]), 0);
    double fill_ns = (now_ns() - t0) / N_ENTRIES;

    struct cache_store_stats st;
    cache_store_get_stats(s, &st);
    GATE_ASSERT(st.entries == N_ENTRIES && st.evictions == 0);

    /* Bookkeeping, from one representative entry and the store's tables. */
    bool fresh;
    struct cache_entry *e = cache_store_get(s, keys[0].s, keys[0].len, keys[0].hash, 0, &fresh);
    double header = (double)CACHE__ENTRY_HEADER;
    double brief = (double)(e->charge - e->key_len - e->body_len - e->head_len);
    double slot = (double)st.table_bytes / (double)st.entries;
    cache_entry_release(&e);

    double get_hot = bench_get(s, HOT_KEYS, 1);
    double get_all = bench_get(s, N_ENTRIES, 1);
    double get_mt = bench_get(s, N_ENTRIES, cpus);

    t0 = now_ns();
    for (unsigned i = 0; i < PUT_OPS; i++)
        cache_store_put(s, make_entry(&keys[N_ENTRIES + i]), 0);
    double put_ns = (now_ns() - t0) / PUT_OPS;
    cache_store_get_stats(s, &st);
    GATE_ASSERT(st.linked_bytes <= cap && st.evictions > PUT_OPS / 2);

    /* Flush with ~1M entries linked: timed alone, and the mean of 1000 calls. */
    uint64_t flushed = st.linked_entries;
    t0 = now_ns();
    cache_store_flush(s);
    double flush_one = now_ns() - t0;
    t0 = now_ns();
    for (int i = 0; i < 1000; i++)
        cache_store_flush(s);
    double flush_mean = (now_ns() - t0) / 1000;
    cache_store_get_stats(s, &st);
    GATE_ASSERT(st.entries == 0 && st.linked_entries == flushed);

    t0 = now_ns();
    cache_store_free(&s);
    double free_ms = (now_ns() - t0) / 1e6;

    printf("cache store, %u entries of %u-byte bodies, 16 shards, %u CPUs\n", N_ENTRIES, BODY_LEN,
           cpus);
    printf("%-46s %12s\n", "measure", "value");
    printf("%-46s %12.1f\n", "put (fill, no eviction)  ns/op", fill_ns);
    printf("%-46s %12.1f\n", "get+release hot 1K keys   ns/op", get_hot);
    printf("%-46s %12.1f\n", "get+release uniform 1M    ns/op", get_all);
    printf("%-46s %12.1f\n", "get+release uniform 1M, all CPUs ns/op/thread", get_mt);
    printf("%-46s %12.2f\n", "get throughput, all CPUs  Mops/s", cpus * 1e3 / get_mt);
    printf("%-46s %12.1f\n", "put into full store (evicts) ns/op", put_ns);
    printf("%-46s %12lu\n", "entries linked at flush", (unsigned long)flushed);
    printf("%-46s %12.3f\n", "flush with 1M entries     us (first call)", flush_one / 1e3);
    printf("%-46s %12.3f\n", "flush with 1M entries     us (mean of 1000)", flush_mean / 1e3);
    printf("%-46s %12.1f\n", "store free, 1M entries    ms", free_ms);
    printf("%-46s %12.1f\n", "entry struct before payload  B/entry", header);
    printf("%-46s %12.2f\n", "hash table slot              B/entry", slot);
    printf("%-46s %12.2f\n", "bookkeeping = struct + slot  B/entry", header + slot);
    printf("%-46s %12.1f\n", "charge - key - body - head   B/entry", brief);
    printf("(struct and slot sizes only: no malloc overhead, no path copy; the figure measured\n"
           " from RSS with 1,000,000 entries is bench/rss/bench_rss.c's)\n");
    free(keys);
    return 0;
}
