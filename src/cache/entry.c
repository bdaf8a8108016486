/*
 * cache/entry — building, sharing and freeing cache entries, and the key hash.
 *
 * Invariants:
 * - An entry is ONE allocation: the struct, then key, method, path, tags,
 *   head (each NUL-terminated) and the body, in that order; method and path
 *   are left out when the key starts with them (CACHE__ENTRY_SPANS_IN_KEY). charge is the size
 *   of that allocation, so the store's byte budget counts every byte we own.
 * - Entries with bodies of CACHE_ENTRY_OWN_PAGES_MIN bytes or more are
 *   mmap()ed and munmap()ed (CACHE__ENTRY_OWN_PAGES; charge is then the
 *   mapped, page-rounded size), so their pages can be lent to sockets
 *   (cache_entry_body_pinnable). Smaller ones come from malloc.
 * - Once put in a store an entry is immutable; only refs changes. refs counts
 *   in bits 0..30; bit 31 is the store's SIEVE visited bit (cache_int.h),
 *   which this file never sets.
 * - The entry is freed by the release that drops the count to zero, whoever
 *   does it (a worker after its write, or the store after an unlink).
 */
#include "cache/cache.h"
#include "cache/cache_int.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

_Static_assert(CACHE__ENTRY_HEADER + 5 >= sizeof(struct cache_entry),
               "the five NULs always cover the struct's tail padding");
_Static_assert(CACHE__ENTRY_HEADER <= 88, "entry bookkeeping grew: re-run bench/rss");

/* ================= Cache-Tag parsing ================= */

/*
 * Cuts the next tag from the comma-separated list [*p, end): trims SP/HTAB,
 * skips empty items. Returns false when no tag is left.
 */
static bool next_tag(const char **p, const char *end, const char **tag, size_t *len)
{
    while (*p < end) {
        const char *start = *p;
        const char *comma = memchr(start, ',', (size_t)(end - start));
        const char *stop = comma ? comma : end;
        *p = comma ? comma + 1 : end;
        *tag = start;
        *len = (size_t)(stop - start);
        str_trim_ows(tag, len);
        if (*len > 0)
            return true;
    }
    return false;
}

/* Bytes of the '\0'-separated list for a raw Cache-Tag value, final '\0' included. */
static size_t tags_size(const char *raw, size_t raw_len)
{
    const char *p = raw, *end = raw ? raw + raw_len : raw, *tag; /* NULL + 0 is UB */
    size_t len, n = 1;

    while (raw && next_tag(&p, end, &tag, &len))
        n += len + 1;
    return n;
}

/* Writes the list tags_size() measured; returns the first byte after it. */
static char *tags_write(char *dst, const char *raw, size_t raw_len)
{
    const char *p = raw, *end = raw ? raw + raw_len : raw, *tag;
    size_t len;

    while (raw && next_tag(&p, end, &tag, &len)) {
        memcpy(dst, tag, len);
        dst[len] = '\0';
        dst += len + 1;
    }
    *dst++ = '\0';
    return dst;
}

/* ================= building ================= */

/* Copies n bytes and a NUL to dst; returns the byte after the NUL. */
static char *put_str(char *dst, const char *src, size_t n)
{
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
    return dst + n + 1;
}

static bool init_fits(const struct cache_entry_init *in)
{
    return in->key_len <= CACHE_ENTRY_MAX_KEY && in->path_len <= CACHE_ENTRY_MAX_PATH &&
           strlen(in->method) <= UINT8_MAX &&
           in->head_len <= CACHE_ENTRY_MAX_HEAD && in->body_len <= CACHE_ENTRY_MAX_CHARGE &&
           in->tags_len <= CACHE_ENTRY_MAX_CHARGE;
}

/* True when the key starts with "method\0path\0": then the entry reads both
 * from its key and stores no copy (22 of the bytes an entry cost, bench/rss). */
static bool spans_in_key(const struct cache_entry_init *in, size_t method_len)
{
    size_t m = method_len, p = in->path_len;
    return in->key_len >= m + 1 + p + 1 && memcmp(in->key, in->method, m) == 0 &&
           in->key[m] == '\0' && memcmp(in->key + m + 1, in->path, p) == 0 &&
           in->key[m + 1 + p] == '\0';
}

/* ================= memory ================= */

static size_t page_round(uint64_t size)
{
    /* Any worker may be first: relaxed atomics, every thread computes the
     * same value. */
    static _Atomic size_t page;
    size_t p = atomic_load_explicit(&page, memory_order_relaxed);
    if (p == 0) {
        p = (size_t)sysconf(_SC_PAGESIZE);
        atomic_store_explicit(&page, p, memory_order_relaxed);
    }
    return (size_t)((size + p - 1) / p * p);
}

/* The entry's memory: mapped when the body is large (see the file comment).
 * *charge gets the bytes it really occupies. MAP_POPULATE faults the pages in
 * one call: the builder writes all of them next. */
static struct cache_entry *entry_alloc(uint64_t size, size_t body_len, uint64_t *charge,
                                       bool *own_pages)
{
    *own_pages = body_len >= CACHE_ENTRY_OWN_PAGES_MIN;
    *charge = size;
    if (!*own_pages)
        return try_malloc((size_t)size);
    size_t mapped = page_round(size);
    void *m = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                   -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    *charge = mapped;
    return m;
}

static void entry_free(struct cache_entry *e)
{
    if (e->flags & CACHE__ENTRY_OWN_PAGES)
        munmap(e, e->charge);
    else
        free(e);
}

struct cache_entry *cache_entry_new(const struct cache_entry_init *in)
{
    GATE_ASSERT(in && in->key && in->method && in->path);
    if (!init_fits(in))
        return NULL;

    size_t method_len = strlen(in->method);
    size_t tags_len = tags_size(in->tags, in->tags_len);
    bool in_key = spans_in_key(in, method_len);
    size_t spans = in_key ? 0 : method_len + 1 + in->path_len + 1;
    /* Each term was bounded above, so this sum cannot wrap a 64-bit size_t. */
    uint64_t size = (uint64_t)CACHE__ENTRY_HEADER + in->key_len + 1 + spans + tags_len +
                    in->head_len + 1 + in->body_len;
    if (page_round(size) > CACHE_ENTRY_MAX_CHARGE)
        return NULL;

    uint64_t charge;
    bool own_pages;
    struct cache_entry *e = entry_alloc(size, in->body_len, &charge, &own_pages);
    if (!e)
        return NULL;

    /* Zero the fixed part: private links start NULL, flags 0. */
    memset(e, 0, CACHE__ENTRY_HEADER);
    e->magic = CACHE_ENTRY_MAGIC;
    atomic_init(&e->refs, 1);
    e->hash = in->hash;
    e->stored_ms = in->stored_ms;
    e->expires_ms = in->expires_ms;
    e->stale_until_ms = in->stale_until_ms;
    e->charge = (uint32_t)charge;
    e->key_len = (uint16_t)in->key_len;
    e->path_len = (uint16_t)in->path_len;
    e->head_len = (uint16_t)in->head_len;
    e->body_len = (uint32_t)in->body_len;

    e->method_len = (uint8_t)method_len;
    e->tags_size = (uint32_t)tags_len;
    e->flags = (uint8_t)((in_key ? CACHE__ENTRY_SPANS_IN_KEY : 0) |
                         (own_pages ? CACHE__ENTRY_OWN_PAGES : 0));

    char *p = put_str(e->key, in->key, in->key_len);
    if (!in_key) {
        p = put_str(p, in->method, method_len);
        p = put_str(p, in->path, in->path_len);
    }
    p = tags_write(p, in->tags, in->tags_len);
    p = put_str(p, in->head, in->head_len);
    GATE_ASSERT(p == cache_entry_body(e));
    if (in->body && in->body_len)
        memcpy(p, in->body, in->body_len);
    GATE_ASSERT((size_t)(p + in->body_len - (char *)e) == size);
    return e;
}

/* ================= sharing ================= */

struct cache_entry *cache_entry_ref(struct cache_entry *e)
{
    /* Relaxed: the caller already holds a ref, so the entry cannot vanish. */
    unsigned old = atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
    GATE_ASSERT((old & CACHE__REFS_MASK) != 0 && (old & CACHE__REFS_MASK) != CACHE__REFS_MASK);
    return e;
}

void cache_entry_release(struct cache_entry **ep)
{
    struct cache_entry *e = *ep;
    if (!e)
        return;
    *ep = NULL;
    /* acq_rel: our reads of the entry happen-before the free by the last releaser. */
    unsigned old = atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel);
    GATE_ASSERT((old & CACHE__REFS_MASK) != 0);
    if ((old & CACHE__REFS_MASK) == 1) {
        GATE_ASSERT(e->magic == CACHE_ENTRY_MAGIC);
        e->magic = 0; /* a use after free then trips the magic checks */
        entry_free(e);
    }
}

bool cache_entry_has_tag(const struct cache_entry *e, const char *tag, size_t len)
{
    if (len == 0)
        return false;
    for (const char *t = cache_entry_tags(e); *t; ) {
        size_t tl = strlen(t);
        if (tl == len && memcmp(t, tag, len) == 0)
            return true;
        t += tl + 1;
    }
    return false;
}

/* ================= hashing ================= */

uint64_t cache_hash(const void *data, size_t len)
{
    return XXH3_64bits(data, len);
}
