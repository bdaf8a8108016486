/*
 * Unit tests for src/cache/entry.c: the one-allocation layout, Cache-Tag
 * parsing, refcounting, limits and the key hash.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "cache/cache.h"
#include "cache/cache_int.h"
#include "util/util.h"

/* The bookkeeping budget: struct + table slot (4..8 B) stays near 128 B. */
_Static_assert(CACHE__ENTRY_HEADER <= 124, "struct cache_entry grew");

static struct cache_entry *build(const char *tags, const char *body)
{
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n";
    struct cache_entry_init in = {
        .key = "GET /pets/1 k=v",
        .key_len = 15,
        .hash = 99,
        .method = "GET",
        .path = "/pets/1",
        .path_len = 7,
        .head = head,
        .head_len = sizeof(head) - 1,
        .body = body,
        .body_len = body ? strlen(body) : 5,
        .tags = tags,
        .tags_len = tags ? strlen(tags) : 0,
        .stored_ms = 10,
        .expires_ms = 20,
        .stale_until_ms = 30,
    };
    return cache_entry_new(&in);
}

static bool inside(const struct cache_entry *e, const char *p, size_t n)
{
    const char *lo = (const char *)e + CACHE__ENTRY_HEADER;
    return p >= lo && p + n <= (const char *)e + e->charge;
}

static void test_layout_one_allocation(void **state)
{
    struct cache_entry *e = build("a, b", "hello world");
    assert_non_null(e);
    assert_int_equal(e->magic, CACHE_ENTRY_MAGIC);
    assert_int_equal(atomic_load(&e->refs), 1);
    assert_int_equal(e->hash, 99);
    assert_int_equal(e->stored_ms, 10);
    assert_int_equal(e->expires_ms, 20);
    assert_int_equal(e->stale_until_ms, 30);
    assert_int_equal(e->flags, 0);

    assert_memory_equal(e->key, "GET /pets/1 k=v", 16); /* NUL included */
    assert_string_equal(cache_entry_method(e), "GET");
    assert_string_equal(cache_entry_path(e), "/pets/1");
    assert_int_equal(e->path_len, 7);
    assert_int_equal(e->head_len, strlen(cache_entry_head(e)));
    assert_string_equal(cache_entry_head(e), "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n");
    assert_int_equal(e->body_len, 11);
    assert_memory_equal(cache_entry_body(e), "hello world", 11);

    /* Every span lives in the entry's own allocation, and charge is all of it. */
    assert_true(inside(e, e->key, e->key_len + 1u));
    assert_true(inside(e, cache_entry_method(e), 4));
    assert_true(inside(e, cache_entry_path(e), e->path_len + 1u));
    assert_true(inside(e, cache_entry_tags(e), 5));
    assert_true(inside(e, cache_entry_head(e), e->head_len + 1u));
    assert_true(inside(e, cache_entry_body(e), e->body_len));
    size_t want = CACHE__ENTRY_HEADER + 16 + 4 + 8 + 5 + e->head_len + 1u + 11;
    assert_int_equal(e->charge, want);
    assert_ptr_equal(cache_entry_body(e) + e->body_len, (char *)e + e->charge);

    cache_entry_release(&e);
    assert_null(e);
}

static void test_body_written_later(void **state)
{
    struct cache_entry *e = build(NULL, NULL);
    assert_non_null(e);
    memcpy(cache_entry_body_mut(e), "12345", 5); /* body == NULL: the caller fills entry->body */
    assert_memory_equal(cache_entry_body(e), "12345", 5);
    assert_string_equal(cache_entry_tags(e), "");
    cache_entry_release(&e);
}

/* Large bodies get pages of their own (lent to sockets on hits, conn.c):
 * page-rounded charge, all spans inside, and the pages usable to the end. */
static void test_large_body_own_pages(void **state)
{
    static const size_t sizes[] = {CACHE_ENTRY_OWN_PAGES_MIN - 1, CACHE_ENTRY_OWN_PAGES_MIN,
                                   CACHE_ENTRY_OWN_PAGES_MIN + 1, 3u << 20};
    for (size_t i = 0; i < GATE_ARRAY_LEN(sizes); i++) {
        char *body = xmalloc(sizes[i] + 1);
        memset(body, 'a' + (int)i, sizes[i]);
        body[sizes[i]] = '\0';
        struct cache_entry *e = build("t", body);
        assert_non_null(e);
        bool big = sizes[i] >= CACHE_ENTRY_OWN_PAGES_MIN;
        assert_int_equal(cache_entry_body_pinnable(e), big);
        assert_int_equal(e->flags & ~CACHE__ENTRY_OWN_PAGES, 0);
        assert_true(inside(e, cache_entry_body(e), e->body_len));
        assert_memory_equal(cache_entry_body(e), body, sizes[i]);
        size_t used = (size_t)(cache_entry_body(e) + e->body_len - (const char *)e);
        if (big) {
            assert_int_equal(e->charge % 4096, 0);
            assert_true(e->charge >= used && e->charge < used + 4096);
        } else {
            assert_int_equal(e->charge, used);
        }
        e->flags |= CACHE_ENTRY_ENCRYPTED; /* the builder's caller may add flags */
        assert_int_equal(cache_entry_body_pinnable(e), big);
        cache_entry_release(&e);
        free(body);
    }
}

/* Checks the '\0'-separated list against want[] (n items). */
static void check_tags(const char *raw, const char *const *want, size_t n)
{
    struct cache_entry *e = build(raw, "x");
    assert_non_null(e);
    const char *t = cache_entry_tags(e);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(t, want[i]);
        t += strlen(t) + 1;
    }
    assert_int_equal(*t, '\0'); /* the extra terminator */
    cache_entry_release(&e);
}

static void test_tags_parsing(void **state)
{
    const char *abc[] = {"a", "b", "c"};
    check_tags("a, b,c", abc, 3);
    check_tags(" a ,\tb\t, c ", abc, 3);
    const char *xy[] = {"x", "y"};
    check_tags(" , ,x ,, y  ,", xy, 2);
    check_tags("", NULL, 0);
    check_tags(" ,  , ", NULL, 0);
    check_tags(NULL, NULL, 0);
    const char *one[] = {"product-42"};
    check_tags("product-42", one, 1);
}

static void test_has_tag(void **state)
{
    struct cache_entry *e = build("pets, pet-1,  dogs ", "x");
    assert_true(cache_entry_has_tag(e, "pets", 4));
    assert_true(cache_entry_has_tag(e, "pet-1", 5));
    assert_true(cache_entry_has_tag(e, "dogs", 4));
    assert_false(cache_entry_has_tag(e, "pet", 3));   /* no prefix match */
    assert_false(cache_entry_has_tag(e, "pets-", 5));
    assert_false(cache_entry_has_tag(e, "", 0));
    /* len is honoured: "petsX" cut to 4 bytes is "pets" */
    assert_true(cache_entry_has_tag(e, "petsX", 4));
    cache_entry_release(&e);
}

static void test_ref_release(void **state)
{
    struct cache_entry *e = build(NULL, "body");
    struct cache_entry *r = cache_entry_ref(e);
    assert_ptr_equal(r, e);
    assert_int_equal(atomic_load(&e->refs), 2);
    cache_entry_release(&r);
    assert_null(r);
    assert_int_equal(atomic_load(&e->refs), 1);
    assert_memory_equal(cache_entry_body(e), "body", 4); /* still alive */
    cache_entry_release(&e);                 /* frees: ASan would report a leak otherwise */
    assert_null(e);
    cache_entry_release(&e); /* NULL: no-op */
}

static void test_limits(void **state)
{
    static char big[CACHE_ENTRY_MAX_HEAD + 2];
    memset(big, 'k', sizeof(big));
    struct cache_entry_init in = {.key = big, .key_len = CACHE_ENTRY_MAX_KEY + 1, .method = "GET",
                                  .path = "/", .path_len = 1};
    assert_null(cache_entry_new(&in));
    in.key_len = CACHE_ENTRY_MAX_KEY;
    struct cache_entry *e = cache_entry_new(&in);
    assert_non_null(e);
    assert_int_equal(e->key_len, CACHE_ENTRY_MAX_KEY);
    cache_entry_release(&e);

    in.key_len = 1;
    in.head = big;
    in.head_len = CACHE_ENTRY_MAX_HEAD + 1;
    assert_null(cache_entry_new(&in));
    in.head_len = 0;
    in.path = big;
    in.path_len = CACHE_ENTRY_MAX_PATH + 1;
    assert_null(cache_entry_new(&in));
    in.path_len = 1;
    in.body_len = (size_t)CACHE_ENTRY_MAX_CHARGE; /* + header > the 32-bit charge */
    assert_null(cache_entry_new(&in));
}

static void test_alloc_failure(void **state)
{
    util_alloc_fail_after(1);
    assert_null(build("a", "b"));
    util_alloc_fail_after(0);
    struct cache_entry *e = build("a", "b");
    assert_non_null(e);
    cache_entry_release(&e);
}

static void test_hash(void **state)
{
    assert_int_equal(cache_hash("abc", 3), XXH3_64bits("abc", 3));
    assert_int_equal(cache_hash("abc", 3), cache_hash("abc", 3));
    assert_true(cache_hash("abc", 3) != cache_hash("abd", 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_one_allocation),
        cmocka_unit_test(test_body_written_later),
        cmocka_unit_test(test_large_body_own_pages),
        cmocka_unit_test(test_tags_parsing),
        cmocka_unit_test(test_has_tag),
        cmocka_unit_test(test_ref_release),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_alloc_failure),
        cmocka_unit_test(test_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
