/*
 * Tests for util/: buf_appendf (formats once into the spare room, twice only
 * when the answer is longer), the token bucket that limits invalidations,
 * and str_hex_digit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h> /* needs the four above first */

#include <string.h>

#include "util/util.h"

static void test_appendf_short_and_long(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    buf_appendf(&b, "%s=%d", "a", 42);
    assert_string_equal(b.data, "a=42");
    assert_int_equal(b.len, 4);
    /* Longer than any spare room: the second formatting pass. */
    char big[1000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    buf_appendf(&b, "[%s]", big);
    assert_int_equal(b.len, 4 + 2 + 999);
    assert_memory_equal(b.data, "a=42[", 5);
    assert_int_equal(b.data[b.len - 1], ']');
    assert_int_equal(b.data[b.len], '\0');
    /* An empty result leaves the buffer as it was. */
    buf_appendf(&b, "%s", "");
    assert_int_equal(b.len, 4 + 2 + 999);
    buf_free(&b);
}

static void test_bucket_burst_then_rate(void **state)
{
    (void)state;
    struct util_bucket bk = {0};
    int64_t retry, now = 1000;
    for (int i = 0; i < 3; i++)
        assert_true(util_bucket_take(&bk, 2, 3, now, &retry));
    assert_false(util_bucket_take(&bk, 2, 3, now, &retry));
    assert_true(retry > 0 && retry <= 501); /* 2 per second: one every 500 ms */
    assert_false(util_bucket_take(&bk, 2, 3, now + 400, &retry));
    assert_true(util_bucket_take(&bk, 2, 3, now + 520, &retry));
    /* A long pause refills to the burst, never beyond. */
    now += 60000;
    for (int i = 0; i < 3; i++)
        assert_true(util_bucket_take(&bk, 2, 3, now, &retry));
    assert_false(util_bucket_take(&bk, 2, 3, now, &retry));
}

static void test_bucket_unlimited(void **state)
{
    (void)state;
    struct util_bucket bk = {0};
    int64_t retry = -1;
    for (int i = 0; i < 1000; i++)
        assert_true(util_bucket_take(&bk, 0, 1, 5, &retry));
    assert_int_equal(retry, 0);
}

static void test_hex_digit(void **state)
{
    (void)state;
    assert_int_equal(str_hex_digit('0'), 0);
    assert_int_equal(str_hex_digit('9'), 9);
    assert_int_equal(str_hex_digit('a'), 10);
    assert_int_equal(str_hex_digit('F'), 15);
    assert_true(str_hex_digit('g') < 0);
    assert_true(str_hex_digit('%') < 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_appendf_short_and_long),
        cmocka_unit_test(test_bucket_burst_then_rate),
        cmocka_unit_test(test_bucket_unlimited),
        cmocka_unit_test(test_hex_digit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
