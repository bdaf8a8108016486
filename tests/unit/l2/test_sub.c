/*
 * Tests of src/l2/sub.c against a real redis-server (redis_harness.h):
 * messages arrive binary-exact under the key prefix, from l2_publish and from
 * any other publisher; no on_reset on the first subscribe, even when Redis
 * was down at first; Redis killed and restarted on the same port: the
 * subscription is lost, comes back, on_reset fires once, messages flow again
 * and the loop never blocked; AUTH; freeing from inside on_message. Each test
 * ends with the loop closed and nothing left open. Skipped when redis-server
 * is not installed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h> /* needs the four above first */

#include "l2/l2.h"
#include "redis_harness.h"

#define CONNECT_WAIT_MS 5000
#define MAX_LOOP_GAP_MS 150

static struct redis_srv g_srv;
static bool g_have_redis;

/* ================= what the subscriber saw ================= */

struct seen {
    int messages;
    int resets;
    char last[256];
    size_t last_len;
    struct l2_sub **free_me; /* l2_sub_free'd from inside on_message */
};

static void on_message(void *arg, const char *data, size_t len)
{
    struct seen *s = arg;
    s->messages++;
    s->last_len = len;
    if (data && len <= sizeof(s->last))
        memcpy(s->last, data, len);
    if (s->free_me)
        l2_sub_free(s->free_me);
}

static void on_reset(void *arg)
{
    ((struct seen *)arg)->resets++;
}

static bool subscribed(void *arg)
{
    return l2_sub_stats(arg)->subscribed == 1;
}

static bool client_connected(void *arg)
{
    return l2_client_stats(arg)->connected == 1;
}

static bool unsubscribed(void *arg)
{
    return l2_sub_stats(arg)->subscribed == 0;
}

struct want {
    const struct seen *s;
    int messages;
};

static bool got_messages(void *arg)
{
    const struct want *w = arg;
    return w->s->messages >= w->messages;
}

/* ================= fixture ================= */

/* PUBLISH through a blocking connection: another node's message. */
static void publish_raw(const struct redis_srv *srv, const char *password, const char *channel,
                        const char *msg, size_t len)
{
    redisContext *c = redis_sync(srv);
    assert_non_null(c);
    if (password)
        freeReplyObject(redisCommand(c, "AUTH %s", password));
    redisReply *r = redisCommand(c, "PUBLISH %s %b", channel, msg, len);
    assert_non_null(r);
    freeReplyObject(r);
    redisFree(c);
}

static int group_setup(void **state)
{
    return h_redis_group_setup(&g_have_redis, &g_srv);
}

static int group_teardown(void **state)
{
    redis_kill(&g_srv);
    return 0;
}

/* ================= tests ================= */

static void test_messages(void **state)
{
    SKIP_WITHOUT_REDIS();
    struct loop_fx lf;
    loop_init(&lf);
    struct l2_options o = h_test_options(g_srv.port);
    struct seen seen = {0};
    struct l2_sub *s = l2_sub_new(&lf.loop, &o, "inv", 3, on_message, on_reset, &seen);
    assert_non_null(s);
    assert_true(run_until(&lf, subscribed, s, CONNECT_WAIT_MS));
    assert_int_equal(seen.resets, 0); /* not on the first subscribe */

    /* From our client: the prefix is applied on both sides. */
    struct l2_client *c = l2_client_new(&lf.loop, &o);
    static const char m1[] = "gcm\x01\0binary\0message";
    assert_true(run_until(&lf, client_connected, c, CONNECT_WAIT_MS));
    assert_true(l2_publish(c, "inv", 3, m1, sizeof(m1) - 1));
    struct want w = {&seen, 1};
    assert_true(run_until(&lf, got_messages, &w, 2000));
    assert_int_equal(seen.last_len, sizeof(m1) - 1);
    assert_memory_equal(seen.last, m1, seen.last_len);

    /* From anyone else; and nothing from other channels. */
    publish_raw(&g_srv, NULL, "inv", "unprefixed", 10);
    publish_raw(&g_srv, NULL, "t:other", "other", 5);
    publish_raw(&g_srv, NULL, "t:inv", "second", 6);
    w.messages = 2;
    assert_true(run_until(&lf, got_messages, &w, 2000));
    run_for(&lf, 50);
    assert_int_equal(seen.messages, 2);
    assert_int_equal(seen.last_len, 6);
    assert_memory_equal(seen.last, "second", 6);
    const struct l2_sub_stats *st = l2_sub_stats(s);
    assert_int_equal(st->messages, 2);
    assert_int_equal(st->resets, 0);
    assert_int_equal(st->lost, 0);

    l2_client_free(&c);
    l2_sub_free(&s);
    assert_null(s);
    loop_finish(&lf);
}

static void test_reset_after_restart(void **state)
{
    SKIP_WITHOUT_REDIS();
    struct loop_fx lf;
    loop_init(&lf);
    struct l2_options o = h_test_options(g_srv.port);
    struct seen seen = {0};
    struct l2_sub *s = l2_sub_new(&lf.loop, &o, "inv", 3, on_message, on_reset, &seen);
    assert_true(run_until(&lf, subscribed, s, CONNECT_WAIT_MS));

    redis_kill(&g_srv);
    loop_reset_gap(&lf);
    assert_true(run_until(&lf, unsubscribed, s, 2000));
    assert_int_equal(l2_sub_stats(s)->lost, 1);
    run_for(&lf, 300); /* refused attempts meanwhile */
    assert_int_equal(seen.resets, 0);
    assert_true(loop_max_gap_ms(&lf) < MAX_LOOP_GAP_MS);

    assert_true(redis_start(&g_srv, NULL)); /* same port */
    assert_true(run_until(&lf, subscribed, s, CONNECT_WAIT_MS));
    assert_int_equal(seen.resets, 1);
    assert_int_equal(l2_sub_stats(s)->resets, 1);

    publish_raw(&g_srv, NULL, "t:inv", "after", 5);
    struct want w = {&seen, 1};
    assert_true(run_until(&lf, got_messages, &w, 2000));
    assert_memory_equal(seen.last, "after", 5);
    assert_int_equal(seen.resets, 1);
    l2_sub_free(&s);
    loop_finish(&lf);
}

/* Redis down when the subscriber starts: its first subscribe, later, is
 * still the first (nothing was lost that it had). */
static void test_no_reset_on_late_first_subscribe(void **state)
{
    SKIP_WITHOUT_REDIS();
    struct loop_fx lf;
    loop_init(&lf);
    struct redis_srv srv = {.port = free_port()};
    struct l2_options o = h_test_options(srv.port);
    struct seen seen = {0};
    struct l2_sub *s = l2_sub_new(&lf.loop, &o, "inv", 3, on_message, on_reset, &seen);
    run_for(&lf, 200);
    assert_int_equal(l2_sub_stats(s)->subscribed, 0);
    assert_true(redis_start(&srv, NULL));
    assert_true(run_until(&lf, subscribed, s, CONNECT_WAIT_MS));
    assert_int_equal(seen.resets, 0);
    assert_int_equal(l2_sub_stats(s)->lost, 0);
    l2_sub_free(&s);
    loop_finish(&lf);
    redis_kill(&srv);
}

static void test_auth(void **state)
{
    SKIP_WITHOUT_REDIS();
    static const char *const extra[] = {"--requirepass", "pw", NULL};
    struct redis_srv srv = {.extra = extra};
    assert_true(redis_start(&srv, "pw"));
    struct loop_fx lf;
    loop_init(&lf);
    struct l2_options o = h_test_options(srv.port);
    o.password = "pw";
    o.db = 5; /* no SELECT on a subscriber: channels are not per db */
    struct seen seen = {0};
    struct l2_sub *s = l2_sub_new(&lf.loop, &o, "inv", 3, on_message, on_reset, &seen);
    assert_true(run_until(&lf, subscribed, s, CONNECT_WAIT_MS));
    publish_raw(&srv, "pw", "t:inv", "x", 1);
    struct want w = {&seen, 1};
    assert_true(run_until(&lf, got_messages, &w, 2000));
    l2_sub_free(&s);

    o.password = "wrong";
    s = l2_sub_new(&lf.loop, &o, "inv", 3, on_message, on_reset, &seen);
    run_for(&lf, 300);
    assert_int_equal(l2_sub_stats(s)->subscribed, 0);
    l2_sub_free(&s);
    loop_finish(&lf);
    redis_kill(&srv);
}

static void test_free_inside_on_message(void **state)
{
    SKIP_WITHOUT_REDIS();
    struct loop_fx lf;
    loop_init(&lf);
    struct l2_options o = h_test_options(g_srv.port);
    struct l2_sub *s = NULL;
    struct seen seen = {.free_me = &s};
    s = l2_sub_new(&lf.loop, &o, "inv", 3, on_message, on_reset, &seen);
    assert_true(run_until(&lf, subscribed, s, CONNECT_WAIT_MS));
    publish_raw(&g_srv, NULL, "t:inv", "one", 3);
    publish_raw(&g_srv, NULL, "t:inv", "two", 3);
    struct want w = {&seen, 1};
    assert_true(run_until(&lf, got_messages, &w, 2000));
    assert_null(s);
    run_for(&lf, 50);
    assert_int_equal(seen.messages, 1); /* nothing after the free */
    loop_finish(&lf);
}

static void test_bad_arguments(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct l2_options o = h_test_options(6379);
    struct seen seen = {0};
    assert_null(l2_sub_new(&loop, &o, "", 0, on_message, on_reset, &seen));
    o.port = 70000;
    assert_null(l2_sub_new(&loop, &o, "inv", 3, on_message, on_reset, &seen));
    assert_int_equal(uv_loop_close(&loop), 0);
    struct l2_sub *none = NULL;
    l2_sub_free(&none);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_reset_after_restart),
        cmocka_unit_test(test_no_reset_on_late_first_subscribe),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_free_inside_on_message),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
