/*
 * util — allocation, growable buffers, strings, logging and asserts shared by
 * every module. Nothing here knows about HTTP or caching.
 *
 * Allocation: x*() abort on failure (small, bounded allocations). Every
 * allocation in the project passes through util_alloc_hook so tests can make
 * the Nth call fail (util_alloc_fail_after). try_malloc() returns NULL instead
 * of aborting: use it for cached bodies, whose failure means "serve uncached".
 */
#ifndef GATE_UTIL_H
#define GATE_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- asserts: invariants only, never on network or config input ---- */
#define GATE_ASSERT(cond)                                                                          \
    do {                                                                                           \
        if (!(cond))                                                                               \
            util_assert_fail(#cond, __FILE__, __LINE__);                                           \
    } while (0)
void util_assert_fail(const char *what, const char *file, int line) __attribute__((noreturn));

#define GATE_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define GATE_MIN(a, b) ((a) < (b) ? (a) : (b))
#define GATE_MAX(a, b) ((a) > (b) ? (a) : (b))

/* ---- allocation ---- */
void *xmalloc(size_t n);            /* owned: free() */
void *xcalloc(size_t n, size_t sz); /* owned: free() */
void *xrealloc(void *p, size_t n);  /* owned: free() */
char *xstrdup(const char *s);       /* owned: free() */
char *xstrndup(const char *s, size_t n); /* owned: free(); always NUL-terminated */
void *try_malloc(size_t n);         /* owned: free(); NULL on failure */
/* Test seam: the Nth allocation from now fails (x* abort, try_* return NULL);
 * 0 disables. Not thread-safe: tests only. */
void util_alloc_fail_after(long n);

/* ---- growable byte buffer ---- */
struct buf {
    char *data; /* owned: buf_free(); always NUL-terminated when non-NULL */
    size_t len;
    size_t cap;
};
void buf_init(struct buf *b);
void buf__grow(struct buf *b, size_t extra); /* internal: buf_reserve's slow path */
/* Reserve and appends are inline: they run several times per request, and
 * with a string literal the compiler folds strlen into a constant. */
static inline void buf_reserve(struct buf *b, size_t extra)
{
    if (b->len + extra + 1 > b->cap)
        buf__grow(b, extra);
}
static inline void buf_append(struct buf *b, const void *data, size_t n)
{
    buf_reserve(b, n);
    if (n)
        __builtin_memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}
static inline void buf_append_str(struct buf *b, const char *s)
{
    buf_append(b, s, __builtin_strlen(s));
}
static inline void buf_append_char(struct buf *b, char c)
{
    buf_append(b, &c, 1);
}
void buf_appendf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_append_u64(struct buf *b, uint64_t v);
void buf_consume(struct buf *b, size_t n); /* drop n bytes from the front */
void buf_reset(struct buf *b);             /* len = 0, keeps memory */
void buf_free(struct buf *b);              /* frees; b may be reused after buf_init */
char *buf_steal(struct buf *b, size_t *len); /* owned: free(); leaves b empty */

/* ---- strings ---- */
bool str_ieq(const char *a, size_t alen, const char *b, size_t blen);
/* Inline so that a literal's length is a compile-time constant. */
static inline bool str_ieq_c(const char *a, size_t alen, const char *cstr)
{
    return str_ieq(a, alen, cstr, __builtin_strlen(cstr));
}
static inline bool str_eq_c(const char *a, size_t alen, const char *cstr)
{
    size_t n = __builtin_strlen(cstr);
    return alen == n && __builtin_memcmp(a, cstr, n) == 0;
}
bool str_has_prefix(const char *s, const char *prefix);
/* Parses a decimal uint64 of the whole span; false on empty, sign, overflow. */
bool str_to_u64(const char *s, size_t len, uint64_t *out);
/* Value of one hex digit (either case), or -1. */
int str_hex_digit(char c);

/* A token bucket: `per_second` tokens a second, at most `burst` saved. One
 * thread only (no lock). Zero-initialised = full on first use. */
struct util_bucket {
    double tokens;
    int64_t last_ms; /* 0 = never used */
};
/* Takes one token; false (and *retry_ms = the wait for the next one) when
 * there is none. per_second 0 = unlimited. */
bool util_bucket_take(struct util_bucket *b, uint32_t per_second, uint32_t burst, int64_t now_ms,
                      int64_t *retry_ms);
/* Trims optional whitespace (SP / HTAB) from both ends of [*s, *s+*len). */
void str_trim_ows(const char **s, size_t *len);
/* Constant-time comparison of equal-length secrets; false if lengths differ. */
bool str_secret_eq(const char *a, size_t alen, const char *b, size_t blen);

/* ---- time ---- */
int64_t util_now_ms(void);       /* CLOCK_MONOTONIC milliseconds */
int64_t util_wall_ms(void);      /* CLOCK_REALTIME milliseconds */

/* ---- logging (stderr, one line per call, thread-safe by stdio) ---- */
enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };
void log_set_level(enum log_level lvl);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
