/*
 * test_headers.c — header helpers: lookup, hop-by-hop set, Connection tokens,
 * Cache-Control directives (valid, quoted, repeated, junk), HTTP-date in its
 * three formats with round trips, and reason phrases.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "http/http.h"

#define S(lit) (lit), (sizeof(lit) - 1)

/* ================= lookup, hop-by-hop, Connection ================= */

static void test_find_header(void **state)
{
    const struct http_header h[] = {
        {S("Host"), S("a")},
        {S("X-Dup"), S("1")},
        {S("x-dup"), S("2")},
    };
    assert_ptr_equal(http_find_header(h, 3, "host"), &h[0]);
    assert_ptr_equal(http_find_header(h, 3, "X-DUP"), &h[1]);
    assert_null(http_find_header(h, 3, "X-Du"));
    assert_null(http_find_header(h, 3, "X-Dupe"));
    assert_null(http_find_header(h, 0, "Host"));
}

static void test_hop_by_hop(void **state)
{
    static const char *const yes[] = {
        "Connection",
        "keep-alive",
        "Proxy-Connection",
        "TE",
        "Trailer",
        "TRANSFER-ENCODING",
        "Upgrade",
        "Proxy-Authenticate",
        "proxy-authorization",
    };
    static const char *const no[] = {
        "Host", "Trailers",       "Transfer-Encodings",        "T",
        "",     "Content-Length", "Upgrade-Insecure-Requests",
    };
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        assert_true(http_is_hop_by_hop(yes[i], strlen(yes[i])));
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        assert_false(http_is_hop_by_hop(no[i], strlen(no[i])));
}

static void test_connection_lists(void **state)
{
    assert_true(http_connection_lists(S("close"), S("close")));
    assert_true(http_connection_lists(S("Keep-Alive, Upgrade"), S("upgrade")));
    assert_true(http_connection_lists(S(" , ,CLOSE\t,"), S("close")));
    assert_false(http_connection_lists(S("closed"), S("close")));
    assert_false(http_connection_lists(S("clo se"), S("close")));
    assert_false(http_connection_lists(S(""), S("close")));
    assert_false(http_connection_lists(S(",,,"), S("close")));
}

/* ================= Cache-Control ================= */

static struct http_cache_control cc_of(const char *v)
{
    struct http_cache_control cc;
    http_parse_cache_control(v, strlen(v), &cc);
    return cc;
}

static void test_cc_basic(void **state)
{
    struct http_cache_control cc = cc_of("");
    assert_int_equal(cc.max_age, -1);
    assert_int_equal(cc.s_maxage, -1);
    assert_false(cc.no_store || cc.no_cache || cc.private_);

    cc = cc_of("max-age=60");
    assert_int_equal(cc.max_age, 60);
    assert_int_equal(cc.s_maxage, -1);
    cc = cc_of("public, s-maxage=30, max-age=10");
    assert_int_equal(cc.max_age, 10);
    assert_int_equal(cc.s_maxage, 30);
    cc = cc_of("no-store");
    assert_true(cc.no_store);
    assert_false(cc.no_cache);
    cc = cc_of("No-Cache, PRIVATE");
    assert_true(cc.no_cache);
    assert_true(cc.private_);
    assert_false(cc.no_store);
    cc = cc_of("MAX-AGE=0");
    assert_int_equal(cc.max_age, 0);
}

static void test_cc_quoted(void **state)
{
    /* RFC 9111 §5.2: recipients accept both token and quoted-string forms. */
    struct http_cache_control cc = cc_of("max-age=\"60\"");
    assert_int_equal(cc.max_age, 60);
    /* A comma inside a quoted argument does not end the directive. */
    cc = cc_of("private=\"Set-Cookie, max-age=5\", no-store");
    assert_true(cc.private_);
    assert_true(cc.no_store);
    assert_int_equal(cc.max_age, -1);
    /* Qualified no-cache is read as plain no-cache (conservative). */
    cc = cc_of("no-cache=\"Set-Cookie\"");
    assert_true(cc.no_cache);
    cc = cc_of("x=\"a\\\"b,c\", s-maxage=7");
    assert_int_equal(cc.s_maxage, 7);
    cc = cc_of("max-age=\"6\\0\"");
    assert_int_equal(cc.max_age, 60); /* quoted-pair is the escaped byte */
    cc = cc_of("max-age=\"\"");
    assert_int_equal(cc.max_age, 0);
    cc = cc_of("max-age=\"60");
    assert_int_equal(cc.max_age, 0);
}

static void test_cc_junk(void **state)
{
    /* RFC 9111 §4.2.1: invalid freshness information is treated as stale. */
    struct http_cache_control cc = cc_of("max-age=abc");
    assert_int_equal(cc.max_age, 0);
    cc = cc_of("max-age");
    assert_int_equal(cc.max_age, 0);
    cc = cc_of("max-age=-1");
    assert_int_equal(cc.max_age, 0);
    cc = cc_of("max-age=60 junk, no-store");
    assert_int_equal(cc.max_age, 0);
    assert_true(cc.no_store);
    cc = cc_of(",,, ;;junk;, =, max-age=5,");
    assert_int_equal(cc.max_age, 5);
    cc = cc_of("max-age = 5");
    assert_int_equal(cc.max_age, 5);
    cc = cc_of("\x80\xff, private");
    assert_true(cc.private_);
    /* RFC 9111 §1.2.2: too large means 2^31. */
    cc = cc_of("max-age=99999999999999999999999999");
    assert_int_equal(cc.max_age, 2147483648LL);
    cc = cc_of("s-maxage=2147483649");
    assert_int_equal(cc.s_maxage, 2147483648LL);
    /* Repeated: same value kept, differing values are stale. */
    cc = cc_of("max-age=5, max-age=5");
    assert_int_equal(cc.max_age, 5);
    cc = cc_of("max-age=5, max-age=50");
    assert_int_equal(cc.max_age, 0);
}

static void test_cc_several_lines(void **state)
{
    struct http_cache_control cc;
    http_cache_control_init(&cc);
    http_cache_control_add(&cc, S("max-age=60"));
    http_cache_control_add(&cc, S("private"));
    assert_int_equal(cc.max_age, 60);
    assert_true(cc.private_);
}

/* ================= dates ================= */

static void test_date_known(void **state)
{
    /* The examples of RFC 9110 §5.6.7, all the same instant. */
    assert_int_equal(http_parse_date(S("Sun, 06 Nov 1994 08:49:37 GMT")), 784111777);
    assert_int_equal(http_parse_date(S("Sunday, 06-Nov-94 08:49:37 GMT")), 784111777);
    assert_int_equal(http_parse_date(S("Sun Nov  6 08:49:37 1994")), 784111777);
    assert_int_equal(http_parse_date(S(" Sun, 06 Nov 1994 08:49:37 GMT ")), 784111777);
    assert_int_equal(http_parse_date(S("Thu, 01 Jan 1970 00:00:00 GMT")), 0);
    assert_int_equal(http_parse_date(S("Tue, 29 Feb 2000 12:00:00 GMT")), 951825600);
    assert_int_equal(http_parse_date(S("Wednesday, 01-Jan-30 00:00:00 GMT")), 1893456000);
    assert_int_equal(http_parse_date(S("Fri Dec 31 23:59:59 9999")), 253402300799LL);
    /* Leap second: counted as the next second. */
    assert_int_equal(http_parse_date(S("Sat, 31 Dec 2016 23:59:60 GMT")), 1483228800);
}

static void test_date_invalid(void **state)
{
    static const char *const bad[] = {
        "",
        "Sun, 06 Nov 1994 08:49:37 gmt",
        "Sun, 06 nov 1994 08:49:37 GMT",
        "sun, 06 Nov 1994 08:49:37 GMT",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 06 Nov 1994 08:49:61 GMT",
        "Sun, 31 Feb 1994 08:49:37 GMT",
        "Thu, 29 Feb 1900 00:00:00 GMT",
        "Mon, 01 Jan 1900 00:00:00 GMT", /* before the epoch */
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08-49-37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMTX",
        "Sun, 06 Nov 19a4 08:49:37 GMT",
        "Xyz, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sundae, 06-Nov-94 08:49:37 GMT",
        "Sun Nov 6 08:49:37 1994",
        "Sun Nov  6 08:49:37 1994x",
        "Mon, 29 Feb 2100 00:00:00 GMT", /* 2100 is not a leap year */
        "1994-11-06T08:49:37Z",
        "784111777",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (http_parse_date(bad[i], strlen(bad[i])) != -1)
            print_error("accepted: %s\n", bad[i]);
        assert_int_equal(http_parse_date(bad[i], strlen(bad[i])), -1);
    }
}

static void test_date_roundtrip(void **state)
{
    char buf[30];
    assert_int_equal(http_format_date(buf, 784111777), 29);
    assert_string_equal(buf, "Sun, 06 Nov 1994 08:49:37 GMT");
    http_format_date(buf, 0);
    assert_string_equal(buf, "Thu, 01 Jan 1970 00:00:00 GMT");
    http_format_date(buf, -5); /* clamped */
    assert_string_equal(buf, "Thu, 01 Jan 1970 00:00:00 GMT");
    http_format_date(buf, INT64_MAX); /* clamped */
    assert_string_equal(buf, "Fri, 31 Dec 9999 23:59:59 GMT");
    http_format_date(buf, 951825600);
    assert_string_equal(buf, "Tue, 29 Feb 2000 12:00:00 GMT");

    for (int64_t t = 0; t < 253402300799LL; t += 86400LL * 97 + 3671) {
        assert_int_equal(http_format_date(buf, t), 29);
        assert_int_equal(http_parse_date(buf, 29), t);
    }
    /* Every day across a few leap-year boundaries. */
    for (int64_t t = 946684800 - 86400 * 800; t < 946684800 + 86400 * 800; t += 86400 + 1) {
        http_format_date(buf, t);
        assert_int_equal(http_parse_date(buf, 29), t);
    }
}

/* ================= reason phrases ================= */

static void test_reason(void **state)
{
    assert_string_equal(http_reason(200), "OK");
    assert_string_equal(http_reason(304), "Not Modified");
    assert_string_equal(http_reason(404), "Not Found");
    assert_string_equal(http_reason(414), "URI Too Long");
    assert_string_equal(http_reason(431), "Request Header Fields Too Large");
    assert_string_equal(http_reason(501), "Not Implemented");
    assert_string_equal(http_reason(505), "HTTP Version Not Supported");
    assert_string_equal(http_reason(299), "Unknown");
    assert_string_equal(http_reason(-1), "Unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find_header),      cmocka_unit_test(test_hop_by_hop),
        cmocka_unit_test(test_connection_lists), cmocka_unit_test(test_cc_basic),
        cmocka_unit_test(test_cc_quoted),        cmocka_unit_test(test_cc_junk),
        cmocka_unit_test(test_cc_several_lines), cmocka_unit_test(test_date_known),
        cmocka_unit_test(test_date_invalid),     cmocka_unit_test(test_date_roundtrip),
        cmocka_unit_test(test_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
