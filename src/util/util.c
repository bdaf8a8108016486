/*
 * util — allocation seam, buffers, strings, time and logging.
 * Invariant: a struct buf with data != NULL is always NUL-terminated at len,
 * so its contents can be handed to C string functions for diagnostics.
 */
#include "util/util.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ================= asserts and allocation ================= */

void util_assert_fail(const char *what, const char *file, int line)
{
    fprintf(stderr, "gatecache: assertion failed: %s at %s:%d\n", what, file, line);
    abort();
}

static atomic_long alloc_countdown;

void util_alloc_fail_after(long n)
{
    atomic_store(&alloc_countdown, n);
}

/* True when the test seam says this allocation must fail. */
static bool alloc_should_fail(void)
{
    long n = atomic_load_explicit(&alloc_countdown, memory_order_relaxed);
    if (n <= 0)
        return false;
    return atomic_fetch_sub(&alloc_countdown, 1) == 1;
}

static void *checked(void *p)
{
    if (p == NULL) {
        fputs("gatecache: out of memory\n", stderr);
        abort();
    }
    return p;
}

void *xmalloc(size_t n)
{
    return checked(alloc_should_fail() ? NULL : malloc(n ? n : 1));
}

void *xcalloc(size_t n, size_t sz)
{
    return checked(alloc_should_fail() ? NULL : calloc(n ? n : 1, sz ? sz : 1));
}

void *xrealloc(void *p, size_t n)
{
    return checked(alloc_should_fail() ? NULL : realloc(p, n ? n : 1));
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *d = xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

void *try_malloc(size_t n)
{
    return alloc_should_fail() ? NULL : malloc(n ? n : 1);
}

/* ================= buffers ================= */

void buf_init(struct buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void buf__grow(struct buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

void buf_appendf(struct buf *b, const char *fmt, ...)
{
    /* Format once into the spare room (at least 64 bytes); only an answer
     * longer than that room is formatted a second time. */
    buf_reserve(b, 64);
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    size_t room = b->cap - b->len;
    int n = vsnprintf(b->data + b->len, room, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n >= room) {
        buf_reserve(b, (size_t)n);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
    }
    if (n > 0)
        b->len += (size_t)n;
    else if (b->data)
        b->data[b->len] = '\0';
    va_end(ap2);
}

void buf_append_u64(struct buf *b, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    buf_append(b, tmp + i, sizeof(tmp) - i);
}

void buf_consume(struct buf *b, size_t n)
{
    GATE_ASSERT(n <= b->len);
    if (n == 0)
        return;
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void buf_free(struct buf *b)
{
    free(b->data);
    buf_init(b);
}

char *buf_steal(struct buf *b, size_t *len)
{
    char *d = b->data ? b->data : xstrdup("");
    if (len)
        *len = b->len;
    buf_init(b);
    return d;
}

/* ================= strings ================= */

static inline unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

bool str_ieq(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return false;
    return true;
}

bool str_has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool str_to_u64(const char *s, size_t len, uint64_t *out)
{
    if (len == 0)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

int str_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void str_trim_ows(const char **s, size_t *len)
{
    while (*len && ((*s)[0] == ' ' || (*s)[0] == '\t')) {
        (*s)++;
        (*len)--;
    }
    while (*len && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
        (*len)--;
}

bool str_secret_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    /* Touch every byte of the expected secret whatever the input, so timing
     * says nothing about how many leading bytes matched. */
    unsigned char diff = (unsigned char)(alen != blen);
    for (size_t i = 0; i < blen; i++) {
        unsigned char ca = i < alen ? (unsigned char)a[i] : 0;
        diff |= (unsigned char)(ca ^ (unsigned char)b[i]);
    }
    return diff == 0;
}

/* ================= time ================= */

int64_t util_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t util_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ================= logging ================= */

static atomic_int log_level = LOG_INFO;

void log_set_level(enum log_level lvl)
{
    atomic_store(&log_level, (int)lvl);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    if ((int)lvl < atomic_load_explicit(&log_level, memory_order_relaxed))
        return;
    static const char *const names[] = {"debug", "info", "warn", "error"};
    char line[2048];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02dZ %s: ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, names[lvl]);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof(line))
        vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    /* One fputs per line keeps lines from different threads whole. */
    size_t len = strlen(line);
    if (len + 1 < sizeof(line)) {
        line[len] = '\n';
        line[len + 1] = '\0';
    }
    fputs(line, stderr);
}

bool util_bucket_take(struct util_bucket *b, uint32_t per_second, uint32_t burst, int64_t now_ms,
                      int64_t *retry_ms)
{
    *retry_ms = 0;
    if (per_second == 0)
        return true;
    if (b->last_ms == 0) {
        b->tokens = burst;
        b->last_ms = now_ms;
    }
    if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) * per_second / 1000.0;
        if (b->tokens > burst)
            b->tokens = burst;
        b->last_ms = now_ms;
    }
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return true;
    }
    *retry_ms = (int64_t)((1.0 - b->tokens) * 1000.0 / per_second) + 1;
    return false;
}
