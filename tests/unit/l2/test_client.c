/*
 * Tests of src/l2/client.c and conn.c against a real redis-server started by
 * the test (redis_harness.h): GET/SET with binary keys and values under the
 * key prefix, the index sets and their TTLs, the index delete, INCR and the
 * integer GET, PUBLISH, cancel, fail-fast (not connected, too many pending),
 * AUTH with a password and with an ACL user, SELECT, a host name resolved off
 * the loop; Redis killed and restarted on the same port (pending commands
 * answered L2_ERROR at once, fail-fast meanwhile, then a reconnect); Redis
 * stopped (SIGSTOP: commands time out after command_timeout_ms, the
 * connection is dropped and retried, the loop never blocks); freeing the
 * client from inside its callbacks. Each test ends with the loop closed and
 * nothing left open. Skipped when redis-server is not installed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h> /* needs the four above first */

#include "config/config.h"
#include "l2/l2.h"
#include "redis_harness.h"

/* Generous bounds: ASan builds and a busy CI machine must not flake. */
#define CONNECT_WAIT_MS 5000
#define MAX_LOOP_GAP_MS 150

static struct redis_srv g_srv;
static bool g_have_redis;

/* ================= callbacks ================= */

struct got {
    int calls;
    enum l2_result r;
    char data[512];
    size_t len;
    int64_t value;
    uint64_t count;
    int64_t at_ms; /* when it was called */
    struct l2_client **free_me; /* l2_client_free'd from inside the callback */
};

static void on_get(void *arg, enum l2_result r, const char *data, size_t len)
{
    struct got *g = arg;
    g->calls++;
    g->r = r;
    g->len = len;
    g->at_ms = h_now_ms();
    if (data && len <= sizeof(g->data))
        memcpy(g->data, data, len);
    if (g->free_me)
        l2_client_free(g->free_me);
}

static void on_int(void *arg, enum l2_result r, int64_t v)
{
    struct got *g = arg;
    g->calls++;
    g->r = r;
    g->value = v;
    g->at_ms = h_now_ms();
}

static void on_count(void *arg, enum l2_result r, uint64_t n)
{
    struct got *g = arg;
    g->calls++;
    g->r = r;
    g->count = n;
}

static bool called(void *arg)
{
    return ((struct got *)arg)->calls > 0;
}

static bool connected(void *arg)
{
    return l2_client_stats(arg)->connected == 1;
}

static bool disconnected(void *arg)
{
    return l2_client_stats(arg)->connected == 0;
}

/* ================= fixture ================= */

static void flushall(void)
{
    redisContext *c = redis_sync(&g_srv);
    assert_non_null(c);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    redisFree(c);
}

/* PTTL of a raw key through the blocking connection. */
static long long pttl(const char *key)
{
    redisContext *c = redis_sync(&g_srv);
    assert_non_null(c);
    redisReply *r = redisCommand(c, "PTTL %s", key);
    assert_non_null(r);
    long long v = r->integer;
    freeReplyObject(r);
    redisFree(c);
    return v;
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

/* Each test gets an empty, running server and a connected client. */
struct fx {
    struct loop_fx lf;
    struct l2_client *c;
};

static void fx_start(struct fx *f, const struct l2_options *o)
{
    if (g_srv.pid == 0)
        assert_true(redis_start(&g_srv, NULL));
    flushall();
    loop_init(&f->lf);
    f->c = l2_client_new(&f->lf.loop, o);
    assert_non_null(f->c);
    assert_true(run_until(&f->lf, connected, f->c, CONNECT_WAIT_MS));
}

static void fx_end(struct fx *f)
{
    l2_client_free(&f->c);
    assert_null(f->c);
    loop_finish(&f->lf);
}

/* ================= basic operations ================= */

static void test_get_miss_then_set_hit(void **state)
{
    SKIP_WITHOUT_REDIS();
    struct fx f;
    struct l2_options o = h_test_options(g_srv.port);
    fx_start(&f, &o);

    static const char key[] = "GET\0/pets/1\0";
    static const char value[] = "gce\x01\0binary\0value\xff";
    struct got g = {0};
    assert_non_null(l2_get(f.c, key, sizeof(key) - 1, on_get, &g));
    assert_int_equal(g.calls, 0); /* never inside l2_get */
    assert_true(run_until(&f.lf, called, &g, 2000));
    assert_int_equal(g.r, L2_MISS);

    assert_true(l2_set(f.c, key, sizeof(key) - 1, value, sizeof(value) - 1, 60000, NULL, 0));
    memset(&g, 0, sizeof(g));
    assert_non_null(l2_get(f.c, key, sizeof(key) - 1, on_get, &g));
    assert_true(run_until(&f.lf, called, &g, 2000));
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.r, L2_HIT);
    assert_int_equal(g.len, sizeof(value) - 1);
    assert_memory_equal(g.data, value, g.len);

    /* In Redis: under the prefix, binary-exact, with the TTL. */
    redisContext *rc = redis_sync(&g_srv);
    redisReply *r = redisCommand(rc, "GET %b", "t:GET\0/pets/1\0", (size_t)14);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_int_equal(r->len, sizeof(value) - 1);
    assert_memory_equal(r->str, value, r->len);
    freeReplyObject(r);
    r = redisCommand(rc, "PTTL %b", "t:GET\0/pets/1\0", (size_t)14);
    assert_true(r->integer > 55000 && r->integer <= 60000);
    freeReplyObject(r);
    redisFree(rc);

    const struct l2_stats *st = l2_client_stats(f.c);
    assert_int_equal(st->hits, 1);
    assert_int_equal(st->misses, 1);
    assert_int_equal(st->sets, 1);
    assert_int_equal(st->errors, 0);
    assert_int_equal(st->timeouts, 0);
    assert_int_equal(st->reconnects, 0);
    assert_false(l2_set(f.c, "k", 1, "v", 1, 0, NULL, 0)); /* ttl 0 */
    fx_end(&f);
}

static void test_index_sets(void **state)
{
    SKIP_WITHOUT_REDIS();
    struct fx f;
    struct l2_options o = h_test_options(g_srv.port);
    fx_start(&f, &o);

    struct l2_str both[2] = {{"i1", 2}, {"i2", 2}}, one[1] = {{"i1", 2}};
    assert_true(l2_set(f.c, "k1", 2, "v1", 2, 5000, both, 2));
    assert_true(l2_set(f.c, "k2", 2, "v2", 2, 20000, one, 1)); /* lengthens i1 */
    assert_true(l2_set(f.c, "k3", 2, "v3", 2, 1000, one, 1));  /* must not shorten it */
    struct got g = {0};
    assert_true(l2_incr(f.c, "barrier", 7, on_int, &g)); /* answered after the three */
    assert_true(run_until(&f.lf, called, &g, 2000));
    assert_int_equal(l2_client_stats(f.c)->sets, 3);

    long long t1 = pttl("t:i1"), t2 = pttl("t:i2");
    assert_true(t1 > 15000 && t1 <= 20000);
    assert_true(t2 > 1000 && t2 <= 5000);
    redisContext *rc = redis_sync(&g_srv);
    redisReply *r = redisCommand(rc, "SCARD t:i1");
    assert_int_equal(r->integer, 3);
    freeReplyObject(r);
    r = redisCommand(rc, "SISMEMBER t:i2 t:k1");
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);

    memset(&g, 0, sizeof(g));
    assert_true(l2_delete_index(f.c, "i1", 2, 0, on_count, &g));
    assert_true(run_until(&f.lf, called, &g, 2000));
    assert_int_equal(g.r, L2_HIT);
    assert_int_equal(g.count, 3);
    r = redisCommand(rc, "EXISTS t:k1 t:k2 t:k3 t:i1");
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    r = redisCommand(rc, "EXISTS t:i2"); /* other indexes keep their (now stale) names */
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    redisFree(rc);

    memset(&g, 0, sizeof(g));
    assert_true(l2_delete_index(f.c, "nothing", 7, 0, on_count, &g));
    assert_true(run_until(&f.lf, called, &g, 2000));
    assert_int_equal(g.r, L2_HIT);
    assert_int_equal(g.count, 0);
    assert_true(l2_delete_index(f.c, "i2", 2, 0, NULL, NULL)); /* no callback wanted */
    fx_end(&f);
}

/* A delete with a tombstone: until it expires, a SET listed in that index
 * writes nothing (a late fill must not undo the delete); other indexes and
 * plain SETs are not affected. */
static void test_index_tombstone(void **state)
{
    SKIP_WITHOUT_REDIS();
    struct fx f;
    struct l2_options o = h_test_options(g_srv.port);
    fx_start(&f, &o);
    struct l2_str idx = {"ti", 2}, other = {"to", 2};
    struct got g = {0};
    assert_true(l2_delete_index(f.c, "ti", 2, 300, on_count, &g));
    assert_true(run_until(&f.lf, called, &g, 2000));
    assert_int_equal(g.r, L2_HIT);
    assert_true(l2_set(f.c, "late", 4, "old", 3, 60000, &idx, 1));
    assert_true(l2_set(f.c, "free", 4, "new", 3, 60000, &other, 1));
    memset(&g, 0, sizeof(g));
    assert_non_null(l2_get(f.c, "late", 4, on_get, &g));
    assert_true(run_until(&f.lf, called, &g, 2000));
    assert_int_equal(g.r, L2_MISS);
    memset(&g, 0, sizeof(g));
    assert_non_null(l2_get(f.c, "free", 4, on_get, &g));
    assert_true(run_until(&f.lf, called, &g, 2000));
    assert_int_equal(g.r, L2_HIT);
    run_for(&f.lf, 400); /* the tombstone expires */
    assert_true(l2_set(f.c, "late", 4, "new", 3, 60000, &idx, 1));
    memset(&g, 0, sizeof(g));
    assert_non_null(l2_get(f.c, "late", 4, on_get, &g));
    assert_true(run_until(&f.lf, called, &g, 2000));
    assert_int_equal(g.r, L2_HIT);
    assert_memory_equal(g.data, "new", 3);
    fx_end(&f);
}

/* An index holding more keys than Lua's unpack() takes at once. */
static void test_big_index(void **state)
{
    SKIP_WITHOUT_REDIS();
    struct fx f;
    struct l2_options o = h_test_options(g_srv.port);
    fx_start(&f, &o);
    struct l2_str idx = {"big", 3};
    char key[32];
    for (int i = 0; i < 2500; i++) {
        int n = snprintf(key, sizeof(key), "k%d", i);
        assert_true(l2_set(f.c, key, (size_t)n, "v", 1, 60000, &idx, 1));
        if (i % 500 == 499)
            run_for(&f.lf, 20); /* stay under max_pending */
    }
    struct got g = {0};
    assert_true(l2_delete_index(f.c, "big", 3, 0, on_count, &g));
    assert_true(run_until(&f.lf, called, &g, 5000));
    assert_int_equal(g.r, L2_HIT);
    assert_int_equal(g.count, 2500);
    fx_end(&f);
}

static void test_incr_and_get_int(void **state)
{
    SKIP_WITHOUT_REDIS();
    struct fx f;
    struct l2_options o = h_test_options(g_srv.port);
    fx_start(&f, &o);
    struct got g = {0};
    assert_true(l2_get_int(f.c, "g:a/prod", 8, on_int, &g));
    assert_true(run_until(&f.lf, called, &g, 2000));
    assert_int_equal(g.r, L2_MISS);
    assert_int_equal(g.value, 0);
    for (int want = 1; want <= 2; want++) {
        memset(&g, 0, sizeof(g));
        assert_true(l2_incr(f.c, "g:a/prod", 8, on_int, &g));
        assert_true(run_until(&f.lf, called, &g, 2000));
        assert_int_equal(g.r, L2_HIT);
        assert_int_equal(g.value, want);
    }
    memset(&g, 0, sizeof(g));
    assert_true(l2_get_int(f.c, "g:a/prod", 8, on_int, &g));
    assert_true(run_until(&f.lf, called, &g, 2000));
    assert_int_equal(g.r, L2_HIT);
    assert_int_equal(g.value, 2);

    /* A value that is not a number, and INCR on it. */
    assert_true(l2_set(f.c, "junk", 4, "12x", 3, 60000, NULL, 0));
    memset(&g, 0, sizeof(g));
    assert_true(l2_get_int(f.c, "junk", 4, on_int, &g));
    assert_true(run_until(&f.lf, called, &g, 2000));
    assert_int_equal(g.r, L2_ERROR);
    memset(&g, 0, sizeof(g));
    assert_true(l2_incr(f.c, "junk", 4, on_int, &g));
    assert_true(run_until(&f.lf, called, &g, 2000));
    assert_int_equal(g.r, L2_ERROR);
    assert_int_equal(l2_client_stats(f.c)->errors, 2);
    assert_int_equal(l2_client_stats(f.c)->timeouts, 0);
    fx_end(&f);
}

static void test_publish_counted(void **state)
{
    SKIP_WITHOUT_REDIS();
    struct fx f;
    struct l2_options o = h_test_options(g_srv.port);
    fx_start(&f, &o);
    assert_true(l2_publish(f.c, "inv", 3, "m\0x", 3));
    struct got g = {0};
    assert_true(l2_incr(f.c, "barrier", 7, on_int, &g));
    assert_true(run_until(&f.lf, called, &g, 2000));
    assert_int_equal(l2_client_stats(f.c)->publishes, 1);
    fx_end(&f);
}

static void test_cancel(void **state)
{
    SKIP_WITHOUT_REDIS();
    struct fx f;
    struct l2_options o = h_test_options(g_srv.port);
    fx_start(&f, &o);
    struct got cancelled = {0}, later = {0};
    struct l2_op *op = l2_get(f.c, "k", 1, on_get, &cancelled);
    assert_non_null(op);
    l2_op_cancel(&op);
    assert_null(op);
    l2_op_cancel(&op); /* NULL: no-op */
    assert_non_null(l2_get(f.c, "k", 1, on_get, &later));
    assert_true(run_until(&f.lf, called, &later, 2000)); /* replies come in order */
    run_for(&f.lf, 20);
    assert_int_equal(cancelled.calls, 0);
    assert_int_equal(l2_client_stats(f.c)->misses, 2); /* still counted */
    fx_end(&f);
}

/* ================= fail fast ================= */

static void test_fail_fast_when_not_connected(void **state)
{
    SKIP_WITHOUT_REDIS();
    struct loop_fx lf;
    loop_init(&lf);
    struct l2_options o = h_test_options(free_port()); /* nothing listens there */
    struct l2_client *c = l2_client_new(&lf.loop, &o);
    assert_non_null(c);
    struct got g = {0};
    assert_null(l2_get(c, "k", 1, on_get, &g));
    assert_false(l2_set(c, "k", 1, "v", 1, 1000, NULL, 0));
    assert_false(l2_incr(c, "k", 1, on_int, &g));
    assert_false(l2_get_int(c, "k", 1, on_int, &g));
    assert_false(l2_delete_index(c, "k", 1, 0, on_count, &g));
    assert_false(l2_publish(c, "k", 1, "m", 1));
    loop_reset_gap(&lf);
    run_for(&lf, 400); /* refused attempts, retried with backoff */
    assert_true(loop_max_gap_ms(&lf) < MAX_LOOP_GAP_MS);
    assert_null(l2_get(c, "k", 1, on_get, &g));
    assert_int_equal(g.calls, 0);
    const struct l2_stats *st = l2_client_stats(c);
    assert_int_equal(st->connected, 0);
    assert_int_equal(st->errors, 7);
    l2_client_free(&c);
    loop_finish(&lf);
}

static void test_fail_fast_when_too_many_pending(void **state)
{
    SKIP_WITHOUT_REDIS();
    struct fx f;
    struct l2_options o = h_test_options(g_srv.port);
    o.max_pending = 2;
    fx_start(&f, &o);
    struct got a = {0}, b = {0}, c = {0};
    assert_non_null(l2_get(f.c, "a", 1, on_get, &a));
    assert_non_null(l2_get(f.c, "b", 1, on_get, &b));
    assert_null(l2_get(f.c, "c", 1, on_get, &c));
    assert_true(run_until(&f.lf, called, &b, 2000));
    assert_non_null(l2_get(f.c, "c", 1, on_get, &c));
    assert_true(run_until(&f.lf, called, &c, 2000));
    assert_int_equal(l2_client_stats(f.c)->errors, 1);
    fx_end(&f);
}

/* ================= connecting ================= */

static void test_host_name(void **state)
{
    SKIP_WITHOUT_REDIS();
    struct fx f;
    struct l2_options o = h_test_options(g_srv.port);
    o.host = "localhost"; /* resolved in libuv's pool; 127.0.0.1 tried first */
    fx_start(&f, &o);
    fx_end(&f);

    /* A name that does not resolve: retried, never connected, loop free. */
    struct loop_fx lf;
    loop_init(&lf);
    o.host = "no-such-host.invalid";
    struct l2_client *c = l2_client_new(&lf.loop, &o);
    loop_reset_gap(&lf);
    run_for(&lf, 300);
    assert_int_equal(l2_client_stats(c)->connected, 0);
    assert_true(loop_max_gap_ms(&lf) < MAX_LOOP_GAP_MS);
    l2_client_free(&c);
    loop_finish(&lf);
}

static void test_bad_options(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct l2_options o = h_test_options(6379);
    o.host = NULL;
    assert_null(l2_client_new(&loop, &o));
    o = h_test_options(0);
    assert_null(l2_client_new(&loop, &o));
    o = h_test_options(6379);
    o.command_timeout_ms = 0;
    assert_null(l2_client_new(&loop, &o));
    o = h_test_options(6379);
    o.reconnect_min_ms = 300;
    assert_null(l2_client_new(&loop, &o));
    assert_int_equal(uv_loop_close(&loop), 0);
    struct l2_client *none = NULL;
    l2_client_free(&none); /* NULL: no-op */
}

static void test_options(void **state)
{
    struct l2_options o;
    l2_options_init(&o);
    assert_null(o.host);
    assert_int_equal(o.port, 6379);
    assert_int_equal(o.connect_timeout_ms, L2_DEFAULT_CONNECT_TIMEOUT_MS);
    assert_int_equal(o.max_pending, L2_DEFAULT_MAX_PENDING);
    assert_string_equal(o.key_prefix, "gc:");

    static const char yaml[] = "server:\n"
                               "  cache_backend:\n"
                               "    type: redis\n"
                               "    url: \"redis://u:p@10.1.2.3:7001/4\"\n"
                               "    command_timeout_ms: 30\n"
                               "    key_prefix: \"x:\"\n"
                               "apis:\n"
                               "  - id: a\n"
                               "    resources: {/x: {GET: {integration: {type: MOCK}}}}\n"
                               "    stages: {prod: {}}\n";
    struct cfg *c = NULL;
    struct cfg_errors e;
    assert_int_equal(cfg_load_string("t.yaml", yaml, sizeof(yaml) - 1, &c, &e), 0);
    l2_options_from_cfg(&o, &c->server.cache_backend);
    assert_string_equal(o.host, "10.1.2.3");
    assert_int_equal(o.port, 7001);
    assert_int_equal(o.db, 4);
    assert_string_equal(o.username, "u");
    assert_string_equal(o.password, "p");
    assert_int_equal(o.command_timeout_ms, 30);
    assert_int_equal(o.connect_timeout_ms, 200);
    assert_int_equal(o.reconnect_min_ms, 100);
    assert_int_equal(o.reconnect_max_ms, 5000);
    assert_string_equal(o.key_prefix, "x:");
    cfg_release(&c);

    char want[32];
    snprintf(want, sizeof(want), "%d.%d.%d", HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
    assert_string_equal(l2_hiredis_version(), want);
}

static void test_auth_and_select(void **state)
{
    SKIP_WITHOUT_REDIS();
    static const char *const extra[] = {"--requirepass", "pw",   "--user", "alice", "on",
                                        ">apw",          "~*",   "&*",     "+@all", NULL};
    struct redis_srv srv = {.extra = extra};
    assert_true(redis_start(&srv, "pw"));
    struct fx f;
    struct loop_fx *lf = &f.lf;
    loop_init(lf);

    /* The default user's password. */
    struct l2_options o = h_test_options(srv.port);
    o.password = "pw";
    f.c = l2_client_new(&lf->loop, &o);
    assert_true(run_until(lf, connected, f.c, CONNECT_WAIT_MS));
    l2_client_free(&f.c);

    /* An ACL user, and db 3. */
    o.username = "alice";
    o.password = "apw";
    o.db = 3;
    f.c = l2_client_new(&lf->loop, &o);
    assert_true(run_until(lf, connected, f.c, CONNECT_WAIT_MS));
    assert_true(l2_set(f.c, "k", 1, "in3", 3, 60000, NULL, 0));
    struct got g = {0};
    assert_true(l2_incr(f.c, "barrier", 7, on_int, &g));
    assert_true(run_until(lf, called, &g, 2000));
    l2_client_free(&f.c);
    redisContext *rc = redis_sync(&srv);
    freeReplyObject(redisCommand(rc, "AUTH alice apw"));
    redisReply *r = redisCommand(rc, "GET t:k");
    assert_int_equal(r->type, REDIS_REPLY_NIL); /* not in db 0 */
    freeReplyObject(r);
    freeReplyObject(redisCommand(rc, "SELECT 3"));
    r = redisCommand(rc, "GET t:k");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "in3");
    freeReplyObject(r);
    redisFree(rc);

    /* A wrong password, and none at all: never connected, fail fast. */
    const char *passwords[] = {"wrong", NULL};
    for (int i = 0; i < 2; i++) {
        o = h_test_options(srv.port);
        o.password = passwords[i];
        f.c = l2_client_new(&lf->loop, &o);
        loop_reset_gap(lf);
        run_for(lf, 300);
        assert_int_equal(l2_client_stats(f.c)->connected, 0);
        assert_null(l2_get(f.c, "k", 1, on_get, &g));
        assert_true(loop_max_gap_ms(lf) < MAX_LOOP_GAP_MS);
        l2_client_free(&f.c);
    }
    loop_finish(lf);
    redis_kill(&srv);
}

/* ================= Redis going away ================= */

static void test_kill_and_restart(void **state)
{
    SKIP_WITHOUT_REDIS();
    struct fx f;
    struct l2_options o = h_test_options(g_srv.port);
    fx_start(&f, &o);
    assert_true(l2_set(f.c, "k", 1, "v", 1, 60000, NULL, 0));

    /* Killed with commands in flight: they are answered L2_ERROR when the
     * connection drops, well before command_timeout_ms (1 s here). */
    struct got a = {0}, b = {0};
    assert_non_null(l2_get(f.c, "k", 1, on_get, &a));
    assert_non_null(l2_get(f.c, "k", 1, on_get, &b));
    redis_kill(&g_srv);
    int64_t killed = h_now_ms();
    loop_reset_gap(&f.lf);
    assert_true(run_until(&f.lf, disconnected, f.c, 2000));
    assert_true(run_until(&f.lf, called, &b, 2000));
    assert_int_equal(a.calls, 1); /* in order, each once */
    /* The replies may have raced the kill; if not, both are errors. */
    assert_true(a.r == L2_HIT || a.r == L2_ERROR);
    assert_true(b.r == L2_HIT || b.r == L2_ERROR);
    assert_true(b.at_ms - killed < 900);

    /* Down: everything fails fast, attempts keep failing, the loop runs free. */
    struct got c = {0};
    assert_null(l2_get(f.c, "k", 1, on_get, &c));
    run_for(&f.lf, 300);
    assert_null(l2_get(f.c, "k", 1, on_get, &c));
    assert_false(l2_set(f.c, "k", 1, "v", 1, 60000, NULL, 0));
    assert_int_equal(c.calls, 0);
    assert_true(loop_max_gap_ms(&f.lf) < MAX_LOOP_GAP_MS);

    /* Back on the same port: reconnected within the backoff (max 200 ms). */
    assert_true(redis_start(&g_srv, NULL));
    int64_t restarted = h_now_ms();
    assert_true(run_until(&f.lf, connected, f.c, CONNECT_WAIT_MS));
    assert_true(h_now_ms() - restarted < 2000);
    assert_int_equal(l2_client_stats(f.c)->reconnects, 1);
    memset(&c, 0, sizeof(c));
    assert_non_null(l2_get(f.c, "k", 1, on_get, &c));
    assert_true(run_until(&f.lf, called, &c, 2000));
    assert_int_equal(c.r, L2_MISS); /* a new, empty server */
    fx_end(&f);
}

static void test_stopped_redis_times_out(void **state)
{
    SKIP_WITHOUT_REDIS();
    struct fx f;
    struct l2_options o = h_test_options(g_srv.port);
    o.command_timeout_ms = 100;
    o.connect_timeout_ms = 200;
    fx_start(&f, &o);

    kill(g_srv.pid, SIGSTOP);
    loop_reset_gap(&f.lf);
    struct got g[3] = {{0}};
    int64_t sent = h_now_ms();
    assert_non_null(l2_get(f.c, "k", 1, on_get, &g[0]));
    assert_true(run_until(&f.lf, called, &g[0], 2000));
    assert_int_equal(g[0].r, L2_ERROR);
    int64_t took = g[0].at_ms - sent;
    assert_true(took >= 90 && took < 400);
    assert_int_equal(l2_client_stats(f.c)->timeouts, 1);
    assert_int_equal(l2_client_stats(f.c)->connected, 1); /* one timeout is not enough */

    /* Two more in a row: the connection is dropped, then fail fast. */
    assert_non_null(l2_get(f.c, "k", 1, on_get, &g[1]));
    assert_non_null(l2_get(f.c, "k", 1, on_get, &g[2]));
    assert_true(run_until(&f.lf, called, &g[2], 2000));
    assert_true(g[1].calls == 1 && g[1].r == L2_ERROR && g[2].r == L2_ERROR);
    assert_int_equal(l2_client_stats(f.c)->timeouts, 3);
    assert_int_equal(l2_client_stats(f.c)->connected, 0);
    struct got late = {0};
    assert_null(l2_get(f.c, "k", 1, on_get, &late));

    /* Attempts meanwhile: TCP connects (the backlog), PING never answers,
     * connect_timeout_ms ends each one; the loop never waits. */
    run_for(&f.lf, 700);
    assert_int_equal(l2_client_stats(f.c)->connected, 0);
    assert_true(loop_max_gap_ms(&f.lf) < MAX_LOOP_GAP_MS);

    kill(g_srv.pid, SIGCONT);
    assert_true(run_until(&f.lf, connected, f.c, CONNECT_WAIT_MS));
    assert_int_equal(l2_client_stats(f.c)->reconnects, 1);
    memset(&late, 0, sizeof(late));
    assert_non_null(l2_get(f.c, "k", 1, on_get, &late));
    assert_true(run_until(&f.lf, called, &late, 2000));
    assert_int_equal(late.r, L2_MISS);
    assert_int_equal(g[0].calls + g[1].calls + g[2].calls, 3); /* late replies ignored */
    fx_end(&f);
}

/* ================= freeing ================= */

static void test_free_with_pending(void **state)
{
    SKIP_WITHOUT_REDIS();
    struct fx f;
    struct l2_options o = h_test_options(g_srv.port);
    fx_start(&f, &o);
    struct got a = {0}, b = {0};
    assert_non_null(l2_get(f.c, "a", 1, on_get, &a));
    assert_true(l2_incr(f.c, "b", 1, on_int, &b));
    fx_end(&f); /* no callback after free */
    assert_int_equal(a.calls + b.calls, 0);
}

static void test_free_inside_callback(void **state)
{
    SKIP_WITHOUT_REDIS();
    struct fx f;
    struct l2_options o = h_test_options(g_srv.port);
    fx_start(&f, &o);
    struct got a = {.free_me = &f.c}, b = {0};
    assert_non_null(l2_get(f.c, "a", 1, on_get, &a));
    assert_non_null(l2_get(f.c, "b", 1, on_get, &b));
    assert_true(run_until(&f.lf, called, &a, 2000));
    assert_null(f.c);
    run_for(&f.lf, 20);
    assert_int_equal(b.calls, 0);
    loop_finish(&f.lf);
}

/* Freed from a timeout's callback (the timer path), Redis stopped. */
static void test_free_inside_timeout_callback(void **state)
{
    SKIP_WITHOUT_REDIS();
    struct fx f;
    struct l2_options o = h_test_options(g_srv.port);
    o.command_timeout_ms = 50;
    fx_start(&f, &o);
    kill(g_srv.pid, SIGSTOP);
    struct got a = {.free_me = &f.c}, b = {0};
    assert_non_null(l2_get(f.c, "a", 1, on_get, &a));
    assert_non_null(l2_get(f.c, "b", 1, on_get, &b));
    assert_true(run_until(&f.lf, called, &a, 2000));
    assert_int_equal(a.r, L2_ERROR);
    run_for(&f.lf, 100);
    assert_int_equal(b.calls, 0);
    loop_finish(&f.lf);
    kill(g_srv.pid, SIGCONT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_miss_then_set_hit),
        cmocka_unit_test(test_index_sets),
        cmocka_unit_test(test_index_tombstone),
        cmocka_unit_test(test_big_index),
        cmocka_unit_test(test_incr_and_get_int),
        cmocka_unit_test(test_publish_counted),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_fail_fast_when_not_connected),
        cmocka_unit_test(test_fail_fast_when_too_many_pending),
        cmocka_unit_test(test_host_name),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_auth_and_select),
        cmocka_unit_test(test_kill_and_restart),
        cmocka_unit_test(test_stopped_redis_times_out),
        cmocka_unit_test(test_free_with_pending),
        cmocka_unit_test(test_free_inside_callback),
        cmocka_unit_test(test_free_inside_timeout_callback),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
