/*
 * Tests of src/l2/url.c: the redis:// forms accepted and what they give, every
 * refusal, percent-decoding of user info, that no error text carries any part
 * of a password, and that a refused URL leaves nothing behind in *out. Every
 * input sits right before a guard page.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h> /* needs the four above first */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "guard.h"
#include "l2/l2.h"

static struct l2_url g_url;
static char g_err[256];

static int parse(const char *url)
{
    return l2_url_parse(guarded_str(url), &g_url, g_err, sizeof(g_err));
}

/* ================= accepted ================= */

static void test_minimal(void **state)
{
    assert_int_equal(parse("redis://localhost"), 0);
    assert_string_equal(g_url.host, "localhost");
    assert_int_equal(g_url.port, 6379);
    assert_int_equal(g_url.db, 0);
    assert_string_equal(g_url.username, "");
    assert_string_equal(g_url.password, "");
    assert_false(g_url.tls);
    assert_string_equal(g_err, "");
}

static void test_full_forms(void **state)
{
    assert_int_equal(parse("redis://127.0.0.1:6380/2"), 0);
    assert_string_equal(g_url.host, "127.0.0.1");
    assert_int_equal(g_url.port, 6380);
    assert_int_equal(g_url.db, 2);

    assert_int_equal(parse("redis://:pw@cache-1.internal_x"), 0);
    assert_string_equal(g_url.host, "cache-1.internal_x");
    assert_string_equal(g_url.username, "");
    assert_string_equal(g_url.password, "pw");

    assert_int_equal(parse("redis://user:pw@h:1/0"), 0);
    assert_string_equal(g_url.username, "user");
    assert_string_equal(g_url.password, "pw");
    assert_int_equal(g_url.port, 1);

    assert_int_equal(parse("redis://user@h:65535"), 0); /* the config refuses it: no password */
    assert_string_equal(g_url.username, "user");
    assert_int_equal(g_url.port, 65535);

    assert_int_equal(parse("REDIS://H/"), 0);
    assert_string_equal(g_url.host, "H");
    assert_int_equal(g_url.db, 0);

    assert_int_equal(parse("rediss://h/2147483647"), 0);
    assert_true(g_url.tls);
    assert_int_equal(g_url.db, 2147483647);

    assert_int_equal(parse("redis://[::1]:7000/5"), 0);
    assert_string_equal(g_url.host, "::1");
    assert_int_equal(g_url.port, 7000);
    assert_int_equal(g_url.db, 5);

    assert_int_equal(parse("redis://[2001:db8::1]"), 0);
    assert_string_equal(g_url.host, "2001:db8::1");
    assert_int_equal(g_url.port, 6379);
}

static void test_userinfo_escapes(void **state)
{
    assert_int_equal(parse("redis://u%2Dx:p%3Aq%40r%2Fs%25@h"), 0);
    assert_string_equal(g_url.username, "u-x");
    assert_string_equal(g_url.password, "p:q@r/s%");
    /* An unescaped '@' in the password: the last '@' ends the user info. */
    assert_int_equal(parse("redis://u:p@q@h"), 0);
    assert_string_equal(g_url.password, "p@q");
    assert_string_equal(g_url.host, "h");
    /* Further ':' belong to the password. */
    assert_int_equal(parse("redis://u:a:b@h"), 0);
    assert_string_equal(g_url.password, "a:b");
}

static void test_longest_parts(void **state)
{
    char url[2048], host[L2_URL_MAX_HOST + 2], pw[L2_URL_MAX_PASSWORD + 2];
    memset(host, 'h', L2_URL_MAX_HOST);
    host[L2_URL_MAX_HOST] = '\0';
    memset(pw, 'p', L2_URL_MAX_PASSWORD);
    pw[L2_URL_MAX_PASSWORD] = '\0';
    snprintf(url, sizeof(url), "redis://:%s@%s", pw, host);
    assert_int_equal(parse(url), 0);
    assert_int_equal(strlen(g_url.host), L2_URL_MAX_HOST);
    assert_int_equal(strlen(g_url.password), L2_URL_MAX_PASSWORD);

    host[L2_URL_MAX_HOST] = 'h';
    host[L2_URL_MAX_HOST + 1] = '\0';
    snprintf(url, sizeof(url), "redis://%s", host);
    assert_int_equal(parse(url), -EINVAL);
    assert_string_equal(g_err, "the host is too long");
    pw[L2_URL_MAX_PASSWORD] = 'p';
    pw[L2_URL_MAX_PASSWORD + 1] = '\0';
    snprintf(url, sizeof(url), "redis://:%s@h", pw);
    assert_int_equal(parse(url), -EINVAL);
}

/* ================= refused ================= */

struct bad {
    const char *url;
    const char *want; /* start of the message */
};

static const struct bad bad_urls[] = {
    {"", "not a URL"},
    {"redis:/h", "not a URL"},
    {"//h:6379", "not a URL"},
    {"1redis://h", "not a URL"},
    {"http://h", "unknown scheme \"http\""},
    {"unix://h", "unknown scheme \"unix\""},
    {"redis://", "the host is empty"},
    {"redis:///0", "the host is empty"},
    {"redis://u:p@", "the host is empty"},
    {"redis://::1", "the host is empty"},
    {"redis://h:", "the port after ':' is empty"},
    {"redis://h:0", "the port is out of range"},
    {"redis://h:65536", "the port is out of range"},
    {"redis://h:99999999999999999999999", "the port is not a number"},
    {"redis://h:+1", "the port is not a number"},
    {"redis://h:1x", "the port is not a number"},
    {"redis://h/abc", "the db is not a number"},
    {"redis://h/1/2", "the db is not a number"},
    {"redis://h/-1", "the db is not a number"},
    {"redis://h/2147483648", "the db is out of range"},
    {"redis://h?db=1", "query strings"},
    {"redis://h/1?x", "query strings"},
    {"redis://h#frag", "query strings"},
    {"redis://h h", "the host has a character"},
    {"redis://h\x01", "the host has a character"},
    {"redis://[::1", "the IPv6 address is not closed"},
    {"redis://[]", "the IPv6 address is not closed"},
    {"redis://[zz::1]", "the address in [] is not an IPv6 address"},
    {"redis://[::1]x", "unexpected text after the host"},
    {"redis://[fe80::1%25eth0]", "the address in [] is not an IPv6 address"},
    {"redis://u:@h", "the password after ':' is empty"},
    {"redis://u:%zz@h", "the password is malformed"},
    {"redis://u:%4@h", "the password is malformed"},
    {"redis://u:%00@h", "the password is malformed"},
    {"redis://u:a b@h", "the password is malformed"},
    {"redis://u%0@h", "the user name is malformed"},
    {"redis://u\x7f@h", "the user name is malformed"},
};

static void test_refused(void **state)
{
    for (size_t i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++) {
        int rc = parse(bad_urls[i].url);
        if (rc != -EINVAL || strncmp(g_err, bad_urls[i].want, strlen(bad_urls[i].want)) != 0)
            fprintf(stderr, "url %s: rc %d, err \"%s\", want \"%s\"\n", bad_urls[i].url, rc,
                    g_err, bad_urls[i].want);
        assert_int_equal(rc, -EINVAL);
        assert_int_equal(strncmp(g_err, bad_urls[i].want, strlen(bad_urls[i].want)), 0);
        static const struct l2_url zero;
        assert_memory_equal(&g_url, &zero, sizeof(zero)); /* nothing half-parsed is left */
    }
}

/* The parts that may hold a password never reach the message, however the
 * URL is broken; and a refusal leaves no half-parsed password in *out. */
static void test_errors_keep_secrets(void **state)
{
    static const char *const urls[] = {
        "redis://u:SECRETpw@h:99999",   "redis://u:SECRETpw/x@h",  "redis://u:SECRETpw@h/x",
        "redis://u:SECRET%zz@h",        "redis://SECRETuser%@h",   "redis://u:SECRET pw@h",
        "redis://u:SECRETpw@[::1",      "redis://u:SECRETpw@h h",  "redis://u:SECRETpw:1@h:x",
        "redis://u:SECRETpw@h?q",
    };
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        assert_int_equal(parse(urls[i]), -EINVAL);
        assert_null(strstr(g_err, "SECRET"));
        assert_string_equal(g_url.password, "");
        assert_string_equal(g_url.username, "");
    }
}

static void test_small_error_buffers(void **state)
{
    char err[8];
    assert_int_equal(l2_url_parse("bogus", &g_url, err, sizeof(err)), -EINVAL);
    assert_int_equal(strlen(err), sizeof(err) - 1);
    assert_int_equal(l2_url_parse("bogus", &g_url, NULL, 0), -EINVAL);
    assert_int_equal(l2_url_parse("redis://h", &g_url, NULL, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal),
        cmocka_unit_test(test_full_forms),
        cmocka_unit_test(test_userinfo_escapes),
        cmocka_unit_test(test_longest_parts),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_errors_keep_secrets),
        cmocka_unit_test(test_small_error_buffers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
