/*
 * cache — the stage cache store: a sharded hash table of immutable,
 * refcounted entries with TTL, stale-if-error retention, byte-bounded
 * eviction, O(1) flush by generation number, path/tag/method+path
 * invalidation, and the bookkeeping for coalescing concurrent misses.
 *
 * One store per stage (its capacity is the stage's cache_cluster_size).
 * Thread safety: every function may be called from any worker thread; each
 * shard has its own mutex, held only for table operations, never while
 * calling out. Entries are immutable once built: a lookup returns a ref, the
 * caller releases it when its write completes; removal and eviction only
 * unlink, the last release frees.
 *
 * Time: functions that age things take `now_ms` (monotonic milliseconds), so
 * tests never sleep.
 */
#ifndef GATE_CACHE_H
#define GATE_CACHE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CACHE_ENTRY_MAGIC 0x47434531u /* "GCE1" */

/*
 * Limits of one entry, from the field widths below (kept narrow so that the
 * per-entry bookkeeping -- struct + table slot + eviction fields -- stays
 * within 128 bytes). cache_entry_new returns NULL past them: serve uncached.
 */
#define CACHE_ENTRY_MAX_KEY 65535u     /* key_len */
#define CACHE_ENTRY_MAX_PATH 65535u    /* path_len */
#define CACHE_ENTRY_MAX_HEAD 65535u    /* head_len (nginx's default is 4-8 KiB) */
#define CACHE_ENTRY_MAX_CHARGE 0xffffffffu /* the whole allocation, body included */

/*
 * One cached answer: ONE allocation holding this struct followed by key,
 * method, path, tags, head and body. Immutable once put in a store; read any
 * field without a lock while holding a ref. Fields are ordered for packing and
 * locality, not by meaning: a lookup reads the first 40 bytes and the key, a
 * hit's write the next 40 (offsetof(key) is 123 on LP64).
 */
struct cache_entry {
    uint32_t magic;
    atomic_uint refs;            /* private: count in bits 0..30, bit 31 = SIEVE visited */
    uint64_t hash;               /* of the key, as given at insert */
    struct cache_entry *_hnext;  /* private: hash chain (caller holds the shard lock) */
    uint32_t generation;         /* low 32 bits of the store's generation when inserted */
    uint16_t key_len;
    uint16_t head_len;
    int64_t stale_until_ms; /* may be served STALE while now < stale_until_ms */
    int64_t expires_ms;     /* fresh while now < expires_ms */
    int64_t stored_ms;      /* monotonic time of insert (for Age) */
    uint32_t body_len;
    uint32_t charge;    /* bytes accounted against capacity (all of the allocation) */
    /* private: SIEVE queue (caller holds the shard lock) */
    struct cache_entry *_qprev; /* newer neighbour (toward head) */
    struct cache_entry *_qnext; /* older neighbour (toward tail) */
    uint16_t path_len;
    uint8_t flags;      /* CACHE_ENTRY_* bits, set by the builder's caller before the put */
    uint8_t method_len;
    uint32_t tags_size; /* bytes of the tag list, its final '\0' included */
    /* The key, then the spans the accessors below return, in one allocation
     * (owned by the entry). Offsets, not pointers: five pointers were 40 of
     * the bytes each entry costs beyond its key and response (bench/rss). */
    char key[]; /* key_len bytes + NUL; last so it costs no pointer */
};

/* private flag: the key starts with "method\0path\0" (route_build_key's
 * keys do), so method and path are read from the key, not copied. */
#define CACHE__ENTRY_SPANS_IN_KEY 0x80u

/* e.g. "GET", NUL-terminated */
static inline const char *cache_entry_method(const struct cache_entry *e)
{
    if (e->flags & CACHE__ENTRY_SPANS_IN_KEY)
        return e->key;
    return e->key + e->key_len + 1;
}

/* request path within the stage, e.g. "/pets/1", NUL-terminated */
static inline const char *cache_entry_path(const struct cache_entry *e)
{
    return cache_entry_method(e) + e->method_len + 1;
}

/* Cache-Tag values joined by '\0', terminated by an extra '\0'; "" when none */
static inline const char *cache_entry_tags(const struct cache_entry *e)
{
    if (e->flags & CACHE__ENTRY_SPANS_IN_KEY)
        return e->key + e->key_len + 1;
    return cache_entry_path(e) + e->path_len + 1;
}

/* serialised "HTTP/1.1 200 OK\r\n" + header lines, each ending CRLF, WITHOUT
 * the empty line that ends the head (the hit path appends Age /
 * X-Cache-Status before it); NUL-terminated, head_len bytes before the NUL */
static inline const char *cache_entry_head(const struct cache_entry *e)
{
    return cache_entry_tags(e) + e->tags_size;
}

/* body_len bytes (ciphertext when encrypted) */
static inline const char *cache_entry_body(const struct cache_entry *e)
{
    return cache_entry_head(e) + e->head_len + 1;
}

/* The body of an entry not yet put in a store, for the builder's caller to
 * fill (cache_entry_init.body == NULL). */
static inline char *cache_entry_body_mut(struct cache_entry *e)
{
    return (char *)cache_entry_body(e);
}

#define CACHE_ENTRY_ENCRYPTED 0x1u

/* private flag: the entry has pages of its own (cache/entry.c), see below. */
#define CACHE__ENTRY_OWN_PAGES 0x40u

/* Bodies from this size up get pages of their own (mmap), given back to the
 * kernel when the entry is freed and never reused by malloc. */
#define CACHE_ENTRY_OWN_PAGES_MIN (64u * 1024u)

/*
 * True when the body may be handed to a socket by reference (vmsplice): its
 * bytes never change while the entry lives, and the memory is unmapped, not
 * recycled, when the last ref goes -- so a page the kernel still holds after
 * that keeps the bytes it was given. Memory from malloc could be overwritten
 * by the next allocation while a socket still sends from it.
 */
static inline bool cache_entry_body_pinnable(const struct cache_entry *e)
{
    return (e->flags & CACHE__ENTRY_OWN_PAGES) != 0;
}

struct cache_entry_init {
    const char *key;
    size_t key_len;
    uint64_t hash;
    const char *method;
    const char *path;
    size_t path_len;
    const char *head;
    size_t head_len;
    const char *body; /* may be NULL when body_len bytes are to be written into entry->body */
    size_t body_len;
    const char *tags; /* raw Cache-Tag header value ("a, b") or NULL */
    size_t tags_len;
    int64_t stored_ms;
    int64_t expires_ms;
    int64_t stale_until_ms;
};

/* Builds an entry (one allocation, refs = 1). Returns NULL when memory is
 * short (try_malloc) or a length is past its CACHE_ENTRY_MAX_*: the caller
 * serves the answer uncached. key, method and path are required; head, body
 * and tags may be NULL with length 0. owned: release with cache_entry_release. */
struct cache_entry *cache_entry_new(const struct cache_entry_init *init);
struct cache_entry *cache_entry_ref(struct cache_entry *e); /* returns e with a new ref */
void cache_entry_release(struct cache_entry **e);          /* NULLs *e; NULL no-op */
bool cache_entry_has_tag(const struct cache_entry *e, const char *tag, size_t len);

struct cache_store;

/* owned: cache_store_free. capacity_bytes > 0. */
struct cache_store *cache_store_new(uint64_t capacity_bytes);
/* Drops every entry (refs held elsewhere stay valid until released). NULLs *s. */
void cache_store_free(struct cache_store **s);

/*
 * Looks key up. Returns a ref (release with cache_entry_release) to an entry
 * of the current generation that is fresh (*fresh = true) or within its stale
 * window (*fresh = false), else NULL. Entries past their stale window or of an
 * old generation are unlinked on the way. Marks the entry visited for eviction.
 */
struct cache_entry *cache_store_get(struct cache_store *s, const char *key, size_t key_len,
                                    uint64_t hash, int64_t now_ms, bool *fresh);

/*
 * Inserts e (takes over the caller's ref), replacing any entry with the same
 * key, then evicts until the bytes held fit the capacity. An entry larger
 * than the whole capacity is not stored (returns false, the ref is released).
 * e->generation is set to the current generation.
 */
bool cache_store_put(struct cache_store *s, struct cache_entry *e, int64_t now_ms);

/*
 * A count bumped as each flush, invalidation walk or remove begins (any
 * thread). An entry fetched from elsewhere before an invalidation must not
 * be put back after it: read this before fetching, and again after the put;
 * if it moved, remove what was put (server/request.c, the shared tier).
 */
uint64_t cache_store_invalidations(const struct cache_store *s);

/* Removes the entry with this key; true if one was removed. */
bool cache_store_remove(struct cache_store *s, const char *key, size_t key_len, uint64_t hash);

/* Flush: every entry becomes unreachable at once (generation bump, O(1));
 * their bytes are reclaimed by eviction or lazily. Returns the new generation. */
uint64_t cache_store_flush(struct cache_store *s);
uint64_t cache_store_generation(const struct cache_store *s);

/* Invalidation walks (O(entries)); each returns how many entries were removed.
 * path: exact match, or when `prefix` is true every path starting with it
 * (CloudFront's trailing '*', already stripped by the caller). */
size_t cache_store_invalidate_path(struct cache_store *s, const char *path, size_t len,
                                   bool prefix);
/* Every entry whose method and path are exactly these (all key variants). */
size_t cache_store_invalidate_method_path(struct cache_store *s, const char *method,
                                          const char *path, size_t len);
size_t cache_store_invalidate_tag(struct cache_store *s, const char *tag, size_t len);

/*
 * Miss coalescing. On a miss, the first caller for a key becomes its filler
 * (returns true). Later callers get false and `worker_id` (0..63) is recorded
 * in the fill's waiter mask. The filler must call cache_store_end_fill exactly
 * once (after its put, or when the answer was not cacheable or failed); it
 * returns the mask of waiting workers, whom the caller wakes.
 */
bool cache_store_claim_fill(struct cache_store *s, const char *key, size_t key_len,
                            uint64_t hash, unsigned worker_id);
uint64_t cache_store_end_fill(struct cache_store *s, const char *key, size_t key_len,
                              uint64_t hash);

/*
 * entries / bytes are exact for the current generation: entries flushed away
 * stop counting at once, even before they are reclaimed. linked_* count every
 * entry still held by the store (old generations and expired entries awaiting
 * reclaim included): linked_bytes is what is compared with capacity.
 * evictions counts entries removed by the eviction hand (capacity pressure).
 * table_bytes is the hash tables' memory, which capacity does not cover.
 */
struct cache_store_stats {
    uint64_t entries;
    uint64_t bytes;
    uint64_t capacity;
    uint64_t evictions;
    uint64_t generation;
    uint64_t linked_entries;
    uint64_t linked_bytes;
    uint64_t table_bytes;
};
void cache_store_get_stats(struct cache_store *s, struct cache_store_stats *st);

/* The key hash used by callers (XXH3 64-bit). */
uint64_t cache_hash(const void *data, size_t len);

#endif
