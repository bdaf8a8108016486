/*
 * l2/entry — cache entries as values in Redis (layout in l2.h).
 *
 * Decoding parses what another process (or an older build, or anyone with
 * access to Redis) wrote: every length is checked against the input before
 * use, every span is validated as strictly as the L1 builder's inputs would
 * be, and the entry must be for exactly the key asked for. Accepted input
 * re-encodes to the same bytes (given the same clocks).
 *
 * Times: the L1 keeps monotonic milliseconds, which mean nothing in another
 * process, so the wire carries wall-clock instants; both directions convert
 * with the pair (now_ms, wall_now_ms) read together by the caller.
 */
#include "cache/cache.h"
#include "crypto/aead.h"
#include "l2/l2_int.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>

#define ENTRY_VERSION 1

static const char entry_magic[3] = {'g', 'c', 'e'};

/* Field offsets of the fixed header. */
enum {
    OFF_VERSION = 3,
    OFF_FLAGS = 4,
    OFF_METHOD_LEN = 5,
    OFF_KEY_LEN = 6,
    OFF_PATH_LEN = 8,
    OFF_HEAD_LEN = 10,
    OFF_TAGS_SIZE = 12,
    OFF_BODY_LEN = 16,
    OFF_STORED = 20,
    OFF_EXPIRES = 28,
    OFF_STALE = 36,
};
_Static_assert(OFF_STALE + 8 == L2_ENTRY_HEADER, "header layout");

/* ================= encoding ================= */

size_t l2_entry_size(const struct cache_entry *e)
{
    return L2_ENTRY_HEADER + (size_t)e->key_len + e->method_len + e->path_len + e->tags_size +
           e->head_len + e->body_len;
}

static char *put(char *p, const char *s, size_t n)
{
    if (n)
        memcpy(p, s, n);
    return p + n;
}

void l2_entry_encode(const struct cache_entry *e, int64_t now_ms, int64_t wall_now_ms, char *out)
{
    GATE_ASSERT(e->magic == CACHE_ENTRY_MAGIC);
    int64_t shift = wall_now_ms - now_ms;
    memcpy(out, entry_magic, 3);
    out[OFF_VERSION] = ENTRY_VERSION;
    out[OFF_FLAGS] = (char)(e->flags & CACHE_ENTRY_ENCRYPTED);
    out[OFF_METHOD_LEN] = (char)e->method_len;
    l2__put_u16(out + OFF_KEY_LEN, e->key_len);
    l2__put_u16(out + OFF_PATH_LEN, e->path_len);
    l2__put_u16(out + OFF_HEAD_LEN, e->head_len);
    l2__put_u32(out + OFF_TAGS_SIZE, e->tags_size);
    l2__put_u32(out + OFF_BODY_LEN, e->body_len);
    l2__put_u64(out + OFF_STORED, (uint64_t)(e->stored_ms + shift));
    l2__put_u64(out + OFF_EXPIRES, (uint64_t)(e->expires_ms + shift));
    l2__put_u64(out + OFF_STALE, (uint64_t)(e->stale_until_ms + shift));
    char *p = out + L2_ENTRY_HEADER;
    p = put(p, e->key, e->key_len);
    p = put(p, cache_entry_method(e), e->method_len);
    p = put(p, cache_entry_path(e), e->path_len);
    p = put(p, cache_entry_tags(e), e->tags_size);
    p = put(p, cache_entry_head(e), e->head_len);
    p = put(p, cache_entry_body(e), e->body_len);
    GATE_ASSERT((size_t)(p - out) == l2_entry_size(e));
}

/* ================= validation ================= */

/* The spans of one encoded entry, pointing into the input. */
struct spans {
    const char *key, *method, *path, *tags, *head, *body;
    size_t key_len, method_len, path_len, tags_size, head_len, body_len;
    int64_t stored, expires, stale;
    uint8_t flags;
};

/* RFC 9110 §5.6.2 tchar: a method is a token. */
static bool is_tchar(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static bool is_token(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_tchar((unsigned char)s[i]))
            return false;
    return n > 0;
}

static bool is_ows(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* What cache/entry.c builds from a Cache-Tag value: "" alone (no tag), or
 * non-empty items each followed by '\0' and a final '\0'; items are trimmed
 * and hold no ',' (they were cut at commas). */
static bool tags_ok(const char *t, size_t size)
{
    if (size == 0 || t[size - 1] != '\0')
        return false;
    size_t i = 0;
    while (i < size - 1) {
        const char *item = t + i;
        size_t n = strnlen(item, size - 1 - i);
        if (n == 0 || i + n >= size - 1 || memchr(item, ',', n) || is_ows(item[0]) ||
            is_ows(item[n - 1]))
            return false;
        i += n + 1;
    }
    return true;
}

/* The head as server/request.c stores it: "HTTP/1.1 NNN reason\r\n", the
 * headers, and last "Content-Length: N\r\n" with N the body's length (of
 * the plaintext when sealed). A hit sends the head as it is and reads the
 * status from it: another shape would answer the client a broken response
 * or read past the head. */
static bool head_ok(const struct spans *s)
{
    static const char cl[] = "\r\nContent-Length: ";
    const char *h = s->head;
    size_t n = s->head_len;
    if (n < 15 || memcmp(h, "HTTP/1.1 ", 9) != 0 || h[9] < '1' || h[9] > '5' || h[10] < '0' ||
        h[10] > '9' || h[11] < '0' || h[11] > '9' || h[12] != ' ' || h[n - 2] != '\r' ||
        h[n - 1] != '\n')
        return false;
    size_t d = n - 2; /* the digits of the last line end here */
    size_t start = d;
    while (start > 0 && h[start - 1] >= '0' && h[start - 1] <= '9')
        start--;
    if (start == d || d - start > 10 || start < sizeof(cl) - 1 ||
        memcmp(h + start - (sizeof(cl) - 1), cl, sizeof(cl) - 1) != 0)
        return false;
    uint64_t length = 0;
    for (size_t i = start; i < d; i++)
        length = length * 10 + (uint64_t)(h[i] - '0');
    uint64_t body = s->body_len;
    if (s->flags & CACHE_ENTRY_ENCRYPTED) {
        if (body < CRY_AEAD_OVERHEAD)
            return false;
        body -= CRY_AEAD_OVERHEAD;
    }
    return length == body;
}

static bool times_ok(const struct spans *s)
{
    return s->stored >= 0 && s->stored <= s->expires && s->expires <= s->stale &&
           s->stale <= L2_WALL_MAX;
}

/* Cuts the header and spans out of [data, data+len); false when anything is
 * out of bounds, left over or malformed. */
static bool split(const char *data, size_t len, struct spans *s)
{
    if (len < L2_ENTRY_HEADER || memcmp(data, entry_magic, 3) != 0 ||
        data[OFF_VERSION] != ENTRY_VERSION)
        return false;
    s->flags = (uint8_t)data[OFF_FLAGS];
    s->method_len = (unsigned char)data[OFF_METHOD_LEN];
    s->key_len = l2__get_u16(data + OFF_KEY_LEN);
    s->path_len = l2__get_u16(data + OFF_PATH_LEN);
    s->head_len = l2__get_u16(data + OFF_HEAD_LEN);
    s->tags_size = l2__get_u32(data + OFF_TAGS_SIZE);
    s->body_len = l2__get_u32(data + OFF_BODY_LEN);
    s->stored = (int64_t)l2__get_u64(data + OFF_STORED);
    s->expires = (int64_t)l2__get_u64(data + OFF_EXPIRES);
    s->stale = (int64_t)l2__get_u64(data + OFF_STALE);
    /* Each term is below 2^32: the sum cannot wrap a 64-bit size_t. */
    uint64_t total = (uint64_t)L2_ENTRY_HEADER + s->key_len + s->method_len + s->path_len +
                     s->tags_size + s->head_len + s->body_len;
    if (total != len)
        return false;
    const char *p = data + L2_ENTRY_HEADER;
    s->key = p;
    s->method = s->key + s->key_len;
    s->path = s->method + s->method_len;
    s->tags = s->path + s->path_len;
    s->head = s->tags + s->tags_size;
    s->body = s->head + s->head_len;
    return (s->flags & ~CACHE_ENTRY_ENCRYPTED) == 0 && s->key_len > 0 &&
           is_token(s->method, s->method_len) && s->path_len > 0 &&
           !memchr(s->path, '\0', s->path_len) && tags_ok(s->tags, s->tags_size) &&
           !memchr(s->head, '\0', s->head_len) && head_ok(s) && times_ok(s);
}

/* ================= decoding ================= */

/* The tag list turned back into the comma-separated value cache_entry_new
 * parses. owned: free(); NULL with *failed when memory is short, NULL alone
 * when there is no tag. */
static char *tags_as_header(const struct spans *s, size_t *len, bool *failed)
{
    *len = 0;
    *failed = false;
    if (s->tags_size <= 1)
        return NULL;
    size_t n = s->tags_size - 2; /* "a\0b\0\0" -> "a,b" */
    char *raw = try_malloc(n + 1);
    if (raw == NULL) {
        *failed = true;
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        raw[i] = s->tags[i] ? s->tags[i] : ',';
    raw[n] = '\0';
    *len = n;
    return raw;
}

struct cache_entry *l2_entry_decode(const char *data, size_t len, const char *want_key,
                                    size_t want_key_len, uint64_t hash, int64_t now_ms,
                                    int64_t wall_now_ms)
{
    struct spans s;
    if (!split(data, len, &s) || s.key_len != want_key_len ||
        memcmp(s.key, want_key, want_key_len) != 0 || wall_now_ms >= s.stale)
        return NULL;
    char method[256];
    memcpy(method, s.method, s.method_len);
    method[s.method_len] = '\0';
    size_t tags_len;
    bool failed;
    char *tags = tags_as_header(&s, &tags_len, &failed);
    if (failed)
        return NULL;
    int64_t shift = now_ms - wall_now_ms;
    struct cache_entry_init init = {
        .key = s.key,
        .key_len = s.key_len,
        .hash = hash,
        .method = method,
        .path = s.path,
        .path_len = s.path_len,
        .head = s.head,
        .head_len = s.head_len,
        .body = s.body,
        .body_len = s.body_len,
        /* "", not NULL, for no tag: cache/entry.c computes tags + tags_len,
         * and NULL + 0 is what clang's UBSan reports. */
        .tags = tags ? tags : "",
        .tags_len = tags_len,
        .stored_ms = s.stored + shift,
        .expires_ms = s.expires + shift,
        .stale_until_ms = s.stale + shift,
    };
    struct cache_entry *e = cache_entry_new(&init);
    free(tags);
    if (e == NULL)
        return NULL;
    /* tags_ok() admits only lists that round-trip; a mismatch would be our bug
     * in tags_ok, and is still no reason to serve the entry. */
    if (e->tags_size != s.tags_size || memcmp(cache_entry_tags(e), s.tags, s.tags_size) != 0) {
        cache_entry_release(&e);
        return NULL;
    }
    e->flags |= s.flags & CACHE_ENTRY_ENCRYPTED;
    return e;
}
