/*
 * guard — test inputs placed right before a PROT_NONE page, so a parser that
 * reads one byte too far crashes instead of passing (STYLE.md §9). Shared by
 * the codec tests of tests/unit/l2/; header-only, one buffer per binary.
 */
#ifndef GATE_TEST_L2_GUARD_H
#define GATE_TEST_L2_GUARD_H

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static char *g_guard_map;
static size_t g_guard_len;

/* A copy of s[0..n) whose last byte sits right before an unreadable page.
 * Valid until the next call. */
static inline const char *guarded(const void *s, size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t pages = n ? (n + page - 1) / page : 1;
    if (g_guard_map)
        munmap(g_guard_map, g_guard_len);
    g_guard_len = (pages + 1) * page;
    g_guard_map = mmap(NULL, g_guard_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
    assert_true(g_guard_map != MAP_FAILED);
    assert_int_equal(mprotect(g_guard_map + pages * page, page, PROT_NONE), 0);
    char *dst = g_guard_map + pages * page - n;
    if (n)
        memcpy(dst, s, n);
    return dst;
}

/* The same for a C string: its NUL is the last readable byte. */
static inline const char *guarded_str(const char *s)
{
    return guarded(s, strlen(s) + 1);
}

#endif
