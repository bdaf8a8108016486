/*
 * Unit tests for src/admin/: the router and handlers (admin__handle) against a
 * published runtime snapshot, the invalidation body parser, the Prometheus
 * exposition, the token file reader, and one loop test of the listener over
 * loopback (keep-alive, pipelining, chunked bodies, limits), which ends with
 * admin_stop joining the thread and closing its loop.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "admin/admin_int.h"

#define TOKEN "s3cret-token"

static const char *yaml_fmt = "server:\n"
                              "  listen: \"127.0.0.1:1\"\n"
                              "  workers: 1\n"
                              "%s"
                              "apis:\n"
                              "  - id: petstore\n"
                              "    resources:\n"
                              "      /pets/{id}:\n"
                              "        GET:\n"
                              "          integration: {type: MOCK}\n"
                              "    stages:\n"
                              "      prod:\n"
                              "        cache_cluster_enabled: true\n"
                              "        cache_cluster_size: \"64MiB\"\n"
                              "      dev:\n"
                              "        cache_cluster_enabled: false\n"
                              "        cache_cluster_size: \"1MiB\"\n";

/* Publishes a runtime for a config with `server_extra` appended to server:. */
static void publish(const char *server_extra)
{
    struct buf y;
    buf_init(&y);
    buf_appendf(&y, yaml_fmt, server_extra);
    struct cfg *cfg = NULL;
    struct cfg_errors errs = {0};
    int rc = cfg_load_string("test.yaml", y.data, y.len, &cfg, &errs);
    for (size_t i = 0; i < errs.n; i++)
        fprintf(stderr, "%s\n", errs.lines[i]);
    cfg_errors_free(&errs);
    buf_free(&y);
    assert_int_equal(rc, 0);
    srv_publish_runtime(srv_runtime_new(cfg, srv.rt));
}

static void unpublish(void)
{
    pthread_mutex_lock(&srv.lock);
    struct srv_runtime *rt = srv.rt;
    srv.rt = NULL;
    pthread_mutex_unlock(&srv.lock);
    srv_runtime_release(&rt);
}

static int setup(void **state)
{
    publish("");
    struct admin__ctx *ctx = calloc(1, sizeof(*ctx));
    ctx->token = xstrdup(TOKEN);
    ctx->token_len = strlen(TOKEN);
    *state = ctx;
    return 0;
}

static int teardown(void **state)
{
    struct admin__ctx *ctx = *state;
    admin__ctx_free(ctx);
    free(ctx);
    unpublish();
    return 0;
}

static struct srv_stage_cache *stage_cache(const char *stage)
{
    struct srv_runtime *rt = srv_current_runtime();
    size_t s = strcmp(stage, "prod") == 0 ? 0 : 1;
    struct srv_stage_cache *sc = srv_runtime_cache(rt, 0, s);
    srv_runtime_release(&rt); /* the published snapshot keeps sc alive */
    return sc;
}

static void put(const char *stage, const char *path, const char *tags)
{
    struct srv_stage_cache *sc = stage_cache(stage);
    struct buf key;
    buf_init(&key);
    buf_appendf(&key, "GET %s", path);
    struct cache_entry_init in = {
        .key = key.data,
        .key_len = key.len,
        .hash = cache_hash(key.data, key.len),
        .method = "GET",
        .path = path,
        .path_len = strlen(path),
        .head = "HTTP/1.1 200 OK\r\n",
        .head_len = 17,
        .body = "hello",
        .body_len = 5,
        .tags = tags,
        .tags_len = tags ? strlen(tags) : 0,
        .stored_ms = 0,
        .expires_ms = INT64_MAX / 2,
        .stale_until_ms = INT64_MAX / 2,
    };
    struct cache_entry *e = cache_entry_new(&in);
    assert_non_null(e);
    assert_true(cache_store_put(sc->store, e, 0));
    buf_free(&key);
}

static uint64_t entries(const char *stage)
{
    struct cache_store_stats st;
    cache_store_get_stats(stage_cache(stage)->store, &st);
    return st.entries;
}

/* One call through the handler; *doc is the parsed JSON body (or NULL). */
static int call(struct admin__ctx *ctx, const char *method, const char *path, const char *auth,
                const char *body, struct admin_response *rs, json_t **doc)
{
    struct admin_request rq = {
        .method = method,
        .method_len = strlen(method),
        .path = path,
        .path_len = strlen(path),
        .authorization = auth,
        .authorization_len = auth ? strlen(auth) : 0,
        .body = body,
        .body_len = body ? strlen(body) : 0,
    };
    admin__response_init(rs);
    admin__handle(ctx, &rq, rs);
    if (doc)
        *doc = strcmp(rs->content_type, "application/json") == 0
                   ? json_loadb(rs->body.data, rs->body.len, 0, NULL)
                   : NULL;
    return rs->status;
}

#define AUTH "Bearer " TOKEN

static void assert_message(json_t *doc, const char *msg)
{
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "message")), msg);
}

static json_int_t jint(json_t *doc, const char *k)
{
    json_t *v = json_object_get(doc, k);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

/* ================= routing and auth ================= */

static void test_healthz_open(void **state)
{
    struct admin_response rs;
    json_t *doc;
    assert_int_equal(call(*state, "GET", "/healthz", NULL, NULL, &rs, &doc), 200);
    assert_string_equal(json_string_value(json_object_get(doc, "status")), "ok");
    json_decref(doc);
    admin__response_free(&rs);

    assert_int_equal(call(*state, "POST", "/healthz", NULL, NULL, &rs, NULL), 405);
    assert_string_equal(rs.allow, "GET, HEAD");
    admin__response_free(&rs);
}

static void test_auth(void **state)
{
    struct admin_response rs;
    json_t *doc;
    const char *p = "/v1/apis/petstore/stages/prod/cache";

    assert_int_equal(call(*state, "GET", p, NULL, NULL, &rs, &doc), 401);
    assert_true(rs.www_authenticate);
    assert_message(doc, "missing bearer token");
    json_decref(doc);
    admin__response_free(&rs);

    assert_int_equal(call(*state, "GET", p, "Basic " TOKEN, NULL, &rs, NULL), 401);
    admin__response_free(&rs);
    assert_int_equal(call(*state, "GET", p, "Bearer ", NULL, &rs, NULL), 401);
    admin__response_free(&rs);

    assert_int_equal(call(*state, "GET", p, "Bearer wrong", NULL, &rs, &doc), 403);
    assert_false(rs.www_authenticate);
    assert_message(doc, "invalid token");
    /* The token never appears in an answer. */
    assert_null(strstr(rs.body.data, TOKEN));
    json_decref(doc);
    admin__response_free(&rs);

    assert_int_equal(call(*state, "GET", p, "Bearer " TOKEN "x", NULL, &rs, NULL), 403);
    admin__response_free(&rs);
    assert_int_equal(call(*state, "GET", p, "bearer " TOKEN, NULL, &rs, NULL), 200);
    admin__response_free(&rs);

    /* Unknown routes need the token too: nothing is revealed without it. */
    assert_int_equal(call(*state, "GET", "/nope", NULL, NULL, &rs, NULL), 401);
    admin__response_free(&rs);
    assert_int_equal(call(*state, "GET", "/metrics", NULL, NULL, &rs, NULL), 401);
    admin__response_free(&rs);
}

static void test_no_token_configured(void **state)
{
    struct admin__ctx ctx = {0};
    struct admin_response rs;
    assert_int_equal(
        call(&ctx, "GET", "/v1/apis/petstore/stages/prod/cache", NULL, NULL, &rs, NULL), 200);
    admin__response_free(&rs);
    admin__ctx_free(&ctx);
}

static void test_not_found(void **state)
{
    static const char *paths[] = {
        "/",
        "/v1",
        "/v1/apis/petstore/stages/prod",
        "/v1/apis/petstore/stages/prod/cache/x",
        "/v1/apis/petstore/stages/prod/other",
        "/v1/apis//stages/prod/cache",
        "/v2/apis/petstore/stages/prod/cache",
        "/metrics/x",
        "/healthz/",
    };
    for (size_t i = 0; i < GATE_ARRAY_LEN(paths); i++) {
        struct admin_response rs;
        assert_int_equal(call(*state, "GET", paths[i], AUTH, NULL, &rs, NULL), 404);
        admin__response_free(&rs);
    }
    struct admin_response rs;
    json_t *doc;
    assert_int_equal(call(*state, "GET", "/v1/apis/nope/stages/prod/cache", AUTH, NULL, &rs, &doc),
                     404);
    assert_message(doc, "no such api");
    json_decref(doc);
    admin__response_free(&rs);
    assert_int_equal(
        call(*state, "DELETE", "/v1/apis/petstore/stages/nope/cache", AUTH, NULL, &rs, &doc), 404);
    assert_message(doc, "no such stage");
    json_decref(doc);
    admin__response_free(&rs);
}

static void test_method_not_allowed(void **state)
{
    struct admin_response rs;
    assert_int_equal(
        call(*state, "PUT", "/v1/apis/petstore/stages/prod/cache", AUTH, NULL, &rs, NULL), 405);
    assert_string_equal(rs.allow, "GET, HEAD, DELETE");
    admin__response_free(&rs);
    assert_int_equal(
        call(*state, "GET", "/v1/apis/petstore/stages/prod/invalidations", AUTH, NULL, &rs, NULL),
        405);
    assert_string_equal(rs.allow, "POST");
    admin__response_free(&rs);
    assert_int_equal(call(*state, "DELETE", "/metrics", AUTH, NULL, &rs, NULL), 405);
    admin__response_free(&rs);
}

/* ================= status, flush, invalidations ================= */

static void test_status(void **state)
{
    put("prod", "/pets/1", NULL);
    struct srv_stage_cache *sc = stage_cache("prod");
    atomic_fetch_add(&sc->counters[0].hits, 1);
    atomic_fetch_add(&sc->counters[0].misses, 1);

    struct admin_response rs;
    json_t *doc;
    assert_int_equal(
        call(*state, "GET", "/v1/apis/petstore/stages/prod/cache", AUTH, NULL, &rs, &doc), 200);
    assert_string_equal(json_string_value(json_object_get(doc, "api")), "petstore");
    assert_string_equal(json_string_value(json_object_get(doc, "stage")), "prod");
    assert_true(json_is_true(json_object_get(doc, "cacheClusterEnabled")));
    assert_string_equal(json_string_value(json_object_get(doc, "cacheClusterSize")), "64MiB");
    assert_string_equal(json_string_value(json_object_get(doc, "status")), "AVAILABLE");
    assert_int_equal(jint(doc, "entries"), 1);
    assert_true(jint(doc, "bytes") > 0);
    assert_int_equal(jint(doc, "capacityBytes"), 64 * 1024 * 1024);
    assert_int_equal(jint(doc, "hits"), 1);
    assert_int_equal(jint(doc, "misses"), 1);
    assert_int_equal(jint(doc, "evictions"), 0);
    assert_non_null(json_object_get(doc, "generation"));
    json_decref(doc);
    admin__response_free(&rs);

    assert_int_equal(
        call(*state, "GET", "/v1/apis/petstore/stages/dev/cache", AUTH, NULL, &rs, &doc), 200);
    assert_true(json_is_false(json_object_get(doc, "cacheClusterEnabled")));
    assert_string_equal(json_string_value(json_object_get(doc, "status")), "NOT_AVAILABLE");
    json_decref(doc);
    admin__response_free(&rs);

    /* HEAD is answered as GET (the listener drops the body). */
    assert_int_equal(
        call(*state, "HEAD", "/v1/apis/petstore/stages/dev/cache", AUTH, NULL, &rs, NULL), 200);
    admin__response_free(&rs);
}

static void test_flush(void **state)
{
    put("prod", "/pets/1", NULL);
    put("prod", "/pets/2", NULL);
    put("dev", "/pets/1", NULL);
    struct srv_stage_cache *sc = stage_cache("prod");
    uint64_t gen0 = cache_store_generation(sc->store);

    struct admin_response rs;
    json_t *doc;
    assert_int_equal(
        call(*state, "DELETE", "/v1/apis/petstore/stages/prod/cache", AUTH, NULL, &rs, &doc), 202);
    assert_true(json_is_true(json_object_get(doc, "flushed")));
    assert_int_equal(jint(doc, "generation"), gen0 + 1);
    json_decref(doc);
    admin__response_free(&rs);

    assert_int_equal(entries("prod"), 0);
    assert_int_equal(entries("dev"), 1); /* other stages untouched */
    assert_int_equal(atomic_load(&sc->counters[SRV_ADMIN_SLOT].invalidations), 1);
}

static json_t *invalidate(struct admin__ctx *ctx, const char *body, int want)
{
    struct admin_response rs;
    json_t *doc;
    assert_int_equal(
        call(ctx, "POST", "/v1/apis/petstore/stages/prod/invalidations", AUTH, body, &rs, &doc),
        want);
    admin__response_free(&rs);
    assert_non_null(doc);
    return doc;
}

static void test_invalidations(void **state)
{
    put("prod", "/pets/1", NULL);
    put("prod", "/pets/10", NULL);
    put("prod", "/pets/2", "a, b");
    put("prod", "/users/1", "b");
    put("prod", "/users/2", NULL);

    json_t *doc = invalidate(*state, "{\"paths\": [\"/pets/1\"]}", 201);
    assert_int_equal(jint(doc, "invalidated"), 1);
    assert_int_equal(jint(doc, "paths"), 1);
    assert_int_equal(jint(doc, "tags"), 0);
    assert_string_equal(json_string_value(json_object_get(doc, "status")), "Completed");
    const char *id = json_string_value(json_object_get(doc, "id"));
    assert_non_null(id);
    assert_int_equal(strlen(id), 14);
    assert_int_equal(id[0], 'I');
    char first[16];
    snprintf(first, sizeof(first), "%s", id);
    json_decref(doc);
    assert_int_equal(entries("prod"), 4);

    doc = invalidate(*state, "{\"paths\": [\"/pets/1*\", \"/nothing\"], \"tags\": [\"b\"]}", 201);
    /* /pets/10 by prefix, /pets/2 and /users/1 by tag */
    assert_int_equal(jint(doc, "invalidated"), 3);
    assert_int_equal(jint(doc, "paths"), 2);
    assert_int_equal(jint(doc, "tags"), 1);
    assert_string_not_equal(json_string_value(json_object_get(doc, "id")), first);
    json_decref(doc);
    assert_int_equal(entries("prod"), 1);

    put("prod", "/a", NULL);
    doc = invalidate(*state, "{\"paths\": [\"/*\", \"/a\"]}", 201);
    assert_int_equal(jint(doc, "invalidated"), 2);
    json_decref(doc);
    assert_int_equal(entries("prod"), 0);

    doc = invalidate(*state, "{\"paths\": [\"/pets/*x\"]}", 400);
    assert_message(doc, "paths: '*' is only allowed at the end of a path");
    json_decref(doc);
    doc = invalidate(*state, "not json", 400);
    assert_message(doc, "request body is not valid JSON");
    json_decref(doc);
    doc = invalidate(*state, NULL, 400);
    json_decref(doc);

    /* 1 flush (the lone "/" + "*"), 1 + 2 + 1 paths, 1 tag */
    struct srv_stage_cache *sc = stage_cache("prod");
    assert_int_equal(atomic_load(&sc->counters[SRV_ADMIN_SLOT].invalidations), 1 + 4 + 1);
    const struct admin__stage_counts *c = admin__counts_find(*state, "petstore", "prod");
    assert_non_null(c);
    assert_int_equal(c->by_reason[ADMIN_REASON_FLUSH], 1);
    assert_int_equal(c->by_reason[ADMIN_REASON_PATH], 4);
    assert_int_equal(c->by_reason[ADMIN_REASON_TAG], 1);
}

/* ================= the body parser ================= */

static void parse_ok(const char *body, size_t n_paths, size_t n_tags)
{
    struct admin__inval iv;
    const char *err = NULL;
    int rc = admin__inval_parse(body, strlen(body), &iv, &err);
    if (rc != 0)
        fail_msg("%s: %s", body, err);
    assert_int_equal(iv.n_paths, n_paths);
    assert_int_equal(iv.n_tags, n_tags);
    admin__inval_free(&iv);
}

static void parse_bad(const char *body, size_t len, const char *want)
{
    struct admin__inval iv;
    const char *err = NULL;
    if (admin__inval_parse(body, len, &iv, &err) == 0)
        fail_msg("accepted: %.*s", (int)GATE_MIN(len, 200), body);
    assert_non_null(err);
    if (want)
        assert_string_equal(err, want);
    assert_null(iv.doc);
    assert_null(iv.paths);
}

#define BAD(s, want) parse_bad(s, strlen(s), want)

static void test_parse_body(void **state)
{
    parse_ok("{\"paths\": [\"/pets/1\", \"/pets/*\", \"/*\"]}", 3, 0);
    parse_ok("{\"tags\": [\"a\", \"b c\"]}", 0, 2);
    parse_ok("{\"paths\": [], \"tags\": [\"a\"]}", 0, 1);
    parse_ok("{\"paths\": [\"/caf\\u00e9\"]}", 1, 0);

    BAD("", "request body is not valid JSON");
    BAD("{", "request body is not valid JSON");
    BAD("{} {}", "request body is not valid JSON");
    BAD("[]", "request body must be a JSON object");
    BAD("\"x\"", "request body is not valid JSON"); /* no JSON_DECODE_ANY */
    BAD("{}", "give at least one path or tag");
    BAD("{\"paths\": [], \"tags\": []}", "give at least one path or tag");
    BAD("{\"paths\": \"/a\"}", "paths must be an array of strings");
    BAD("{\"paths\": [1]}", "paths must be an array of strings");
    BAD("{\"tags\": [null]}", "tags must be an array of strings");
    BAD("{\"paths\": [\"a\"]}", "paths: every path must start with '/'");
    BAD("{\"paths\": [\"\"]}", "paths: every path must start with '/'");
    BAD("{\"paths\": [\"/a*b\"]}", "paths: '*' is only allowed at the end of a path");
    BAD("{\"paths\": [\"/**\"]}", "paths: '*' is only allowed at the end of a path");
    BAD("{\"paths\": [\"/a?b=1\"]}", NULL);
    BAD("{\"paths\": [\"/a\\nb\"]}", "paths: a path holds a control character");
    BAD("{\"paths\": [\"/a\\u0000b\"]}", "request body is not valid JSON");
    BAD("{\"tags\": [\"\"]}", "tags: a tag must not be empty");
    BAD("{\"tags\": [\"a,b\"]}", NULL);
    BAD("{\"path\": [\"/a\"]}", "unknown field (expected \"paths\" and/or \"tags\")");
    BAD("{\"paths\": [\"/a\"], \"paths\": [\"/b\"]}", "request body is not valid JSON");
    BAD("{\"paths\": [\"/\xff\"]}", "request body is not valid JSON");
}

static void test_parse_limits(void **state)
{
    struct buf b;
    buf_init(&b);
    buf_append_str(&b, "{\"paths\": [");
    for (int i = 0; i < 3000; i++)
        buf_appendf(&b, "%s\"/p/%d\"", i ? "," : "", i);
    buf_append_str(&b, "]}");
    parse_ok(b.data, 3000, 0);
    buf_reset(&b);
    buf_append_str(&b, "{\"paths\": [");
    for (int i = 0; i < 3001; i++)
        buf_appendf(&b, "%s\"/p/%d\"", i ? "," : "", i);
    buf_append_str(&b, "]}");
    parse_bad(b.data, b.len, "too many paths (at most 3000 per call)");

    buf_reset(&b);
    buf_append_str(&b, "{\"tags\": [");
    for (int i = 0; i < 101; i++)
        buf_appendf(&b, "%s\"t%d\"", i ? "," : "", i);
    buf_append_str(&b, "]}");
    parse_bad(b.data, b.len, "too many tags (at most 100 per call)");

    /* Not NUL-terminated: the parser must respect len. */
    const char *s = "{\"tags\": [\"a\"]}trailing";
    struct admin__inval iv;
    const char *err;
    assert_int_equal(admin__inval_parse(s, 15, &iv, &err), 0);
    admin__inval_free(&iv);
    buf_free(&b);
}

/* ================= metrics ================= */

static void test_metrics(void **state)
{
    /* Route counters live in the workers' shards (src/metrics/, tested
     * there); no workers run here, so only the stage series have values. */
    put("prod", "/pets/1", NULL);
    json_t *doc = invalidate(*state, "{\"tags\": [\"x\"]}", 201);
    json_decref(doc);

    struct admin_response rs;
    assert_int_equal(call(*state, "GET", "/metrics", AUTH, NULL, &rs, NULL), 200);
    assert_string_equal(rs.content_type, "text/plain; version=0.0.4; charset=utf-8");
    const char *m = rs.body.data;
    static const char *want[] = {
        "# TYPE gatecache_cache_hits_total counter\n",
        "# HELP gatecache_cache_hits_total ",
        "# TYPE gatecache_cache_misses_total counter\n",
        "# TYPE gatecache_requests_total counter\n",
        "# TYPE gatecache_request_duration_seconds histogram\n",
        "# TYPE gatecache_cache_entries gauge\n",
        "gatecache_cache_entries{api=\"petstore\",stage=\"prod\"} 1\n",
        "# TYPE gatecache_cache_bytes gauge\n",
        "gatecache_cache_capacity_bytes{api=\"petstore\",stage=\"prod\"} 67108864\n",
        "gatecache_cache_capacity_bytes{api=\"petstore\",stage=\"dev\"} 1048576\n",
        "# TYPE gatecache_cache_evictions_total counter\n",
        "# TYPE gatecache_cache_invalidations_total counter\n",
        "gatecache_cache_invalidations_total{api=\"petstore\",stage=\"prod\",reason=\"tag\"} 1\n",
        "gatecache_cache_invalidations_total{api=\"petstore\",stage=\"prod\",reason=\"flush\"} 0\n",
        "stage=\"prod\",reason=\"max_age\"} 0\n",
        "gatecache_cache_invalidations_total{api=\"petstore\",stage=\"prod\",reason=\"write\"} 0\n",
    };
    for (size_t i = 0; i < GATE_ARRAY_LEN(want); i++)
        if (!strstr(m, want[i]))
            fail_msg("missing %s in:\n%s", want[i], m);
    assert_null(strstr(m, "reason=\"other\""));
    /* Each metric has exactly one HELP and one TYPE line. */
    size_t n_type = 0;
    for (const char *p = m; (p = strstr(p, "# TYPE ")) != NULL; p++)
        n_type++;
    assert_int_equal(n_type, 11);
    admin__response_free(&rs);
}

/* ================= token file ================= */

static void write_file(const char *path, const char *data)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(data, f);
    fclose(f);
}

static void test_read_token(void **state)
{
    char path[] = "/tmp/gatecache-admin-token-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    char *t;
    size_t len;
    const char *err;

    write_file(path, "abc123 \r\n\n");
    assert_int_equal(admin__read_token(path, &t, &len, &err), 0);
    assert_string_equal(t, "abc123");
    assert_int_equal(len, 6);
    free(t);

    write_file(path, " \n");
    assert_int_equal(admin__read_token(path, &t, &len, &err), -1);
    assert_string_equal(err, "admin_token_file is empty");
    assert_null(t);

    write_file(path, "a\nb\n");
    assert_int_equal(admin__read_token(path, &t, &len, &err), -1);

    unlink(path);
    assert_int_equal(admin__read_token(path, &t, &len, &err), -1);
    assert_string_equal(err, "cannot open admin_token_file");
}

/* ================= the listener over loopback ================= */

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t n = sizeof(a);
    getsockname(s, (struct sockaddr *)&a, &n);
    close(s);
    return ntohs(a.sin_port);
}

static int connect_to(int port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(s, (struct sockaddr *)&a, sizeof(a)), 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return s;
}

/* Reads until `want` answers' worth of "HTTP/1.1 " status lines with their
 * bodies arrived, or EOF; returns what came (owned by b). */
static void read_answers(int s, struct buf *b, int want)
{
    for (;;) {
        int n = 0;
        for (const char *p = b->data; p && (p = strstr(p, "HTTP/1.1 ")) != NULL; p++)
            n++;
        if (n >= want && b->len > 0 && b->data[b->len - 1] == '\n')
            return;
        char tmp[4096];
        ssize_t r = read(s, tmp, sizeof(tmp));
        if (r <= 0)
            return;
        buf_append(b, tmp, (size_t)r);
    }
}

static void send_all(int s, const char *data, size_t len)
{
    assert_int_equal(write(s, data, len), (ssize_t)len);
}

static void test_listener(void **state)
{
    char path[] = "/tmp/gatecache-admin-token-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, TOKEN "\n", strlen(TOKEN) + 1), (ssize_t)strlen(TOKEN) + 1);
    close(fd);
    int port = free_port();
    struct buf extra;
    buf_init(&extra);
    buf_appendf(&extra, "  admin_listen: \"127.0.0.1:%d\"\n  admin_token_file: \"%s\"\n", port,
                path);
    publish(extra.data);
    buf_free(&extra);
    struct srv_runtime *rt = srv_current_runtime();
    struct admin *a = NULL;
    assert_int_equal(admin_start(rt->cfg, &a), 0);
    assert_non_null(a);
    srv_runtime_release(&rt);
    put("prod", "/pets/1", NULL);

    /* Keep-alive and pipelining: three requests in one write, answered in order. */
    int s = connect_to(port);
    const char *reqs = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /v1/apis/petstore/stages/prod/cache HTTP/1.1\r\nHost: x\r\n\r\n"
                       "POST /v1/apis/petstore/stages/prod/invalidations HTTP/1.1\r\nHost: x\r\n"
                       "Authorization: Bearer " TOKEN "\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "6\r\n{\"path\r\n"
                       "10\r\ns\": [\"/pets/1\"]}\r\n0\r\n\r\n";
    send_all(s, reqs, strlen(reqs));
    struct buf b;
    buf_init(&b);
    read_answers(s, &b, 3);
    const char *r1 = strstr(b.data, "HTTP/1.1 200 OK\r\n");
    const char *r2 = r1 ? strstr(r1 + 1, "HTTP/1.1 401 Unauthorized\r\n") : NULL;
    const char *r3 = r2 ? strstr(r2 + 1, "HTTP/1.1 201 Created\r\n") : NULL;
    if (!r1 || !r2 || !r3)
        fail_msg("answers: %s", b.data);
    assert_non_null(strstr(r2, "WWW-Authenticate: Bearer"));
    assert_non_null(strstr(r3, "\"invalidated\":1"));
    assert_non_null(strstr(b.data, "Content-Type: application/json\r\n"));
    assert_int_equal(entries("prod"), 0);

    /* Expect: 100-continue gets its interim answer. */
    buf_reset(&b);
    const char *exp = "POST /v1/apis/petstore/stages/prod/invalidations HTTP/1.1\r\nHost: x\r\n"
                      "Authorization: Bearer " TOKEN "\r\nContent-Length: 16\r\n"
                      "Expect: 100-continue\r\n\r\n";
    send_all(s, exp, strlen(exp));
    read_answers(s, &b, 1);
    assert_non_null(strstr(b.data, "HTTP/1.1 100 Continue\r\n\r\n"));
    send_all(s, "{\"tags\": [\"t\"]}\n", 16);
    read_answers(s, &b, 2);
    assert_non_null(strstr(b.data, "HTTP/1.1 201 Created\r\n"));

    /* Too large a body: 413, then the connection closes. */
    buf_reset(&b);
    const char *big = "POST /v1/apis/petstore/stages/prod/invalidations HTTP/1.1\r\nHost: x\r\n"
                      "Content-Length: 2000000\r\n\r\n";
    send_all(s, big, strlen(big));
    read_answers(s, &b, 1);
    assert_non_null(strstr(b.data, "HTTP/1.1 413 "));
    assert_non_null(strstr(b.data, "Connection: close\r\n"));
    char tmp[64];
    assert_true(read(s, tmp, sizeof(tmp)) <= 0);
    close(s);

    /* Malformed JSON through the socket: 400 with a JSON message. */
    s = connect_to(port);
    buf_reset(&b);
    const char *bad = "POST /v1/apis/petstore/stages/prod/invalidations HTTP/1.1\r\nHost: x\r\n"
                      "Authorization: Bearer " TOKEN "\r\nContent-Length: 3\r\n"
                      "Connection: close\r\n\r\n{x}";
    send_all(s, bad, strlen(bad));
    read_answers(s, &b, 1);
    assert_non_null(strstr(b.data, "HTTP/1.1 400 "));
    assert_non_null(strstr(b.data, "{\"message\":\"request body is not valid JSON\"}"));
    close(s);

    /* A head past 16 KiB: 431. */
    s = connect_to(port);
    buf_reset(&b);
    struct buf h;
    buf_init(&h);
    buf_append_str(&h, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ");
    for (int i = 0; i < 17000; i++)
        buf_append_char(&h, 'a');
    buf_append_str(&h, "\r\n\r\n");
    send_all(s, h.data, h.len);
    read_answers(s, &b, 1);
    assert_non_null(strstr(b.data, "HTTP/1.1 431 "));
    buf_free(&h);
    close(s);

    /* HEAD: Content-Length of the GET answer, no body. */
    s = connect_to(port);
    buf_reset(&b);
    const char *head = "HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    send_all(s, head, strlen(head));
    for (ssize_t r; (r = read(s, tmp, sizeof(tmp))) > 0;)
        buf_append(&b, tmp, (size_t)r);
    assert_non_null(strstr(b.data, "Content-Length: 16\r\n"));
    assert_non_null(strstr(b.data, "\r\n\r\n"));
    assert_string_equal(strstr(b.data, "\r\n\r\n"), "\r\n\r\n");
    close(s);

    /* An open idle connection does not keep admin_stop waiting. */
    s = connect_to(port);
    admin_stop(&a);
    assert_null(a);
    assert_true(read(s, tmp, sizeof(tmp)) <= 0);
    close(s);
    buf_free(&b);
    unlink(path);
}

static void test_start_errors(void **state)
{
    /* Token file that is empty: refused. */
    char path[] = "/tmp/gatecache-admin-token-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    struct buf extra;
    buf_init(&extra);
    buf_appendf(&extra, "  admin_listen: \"127.0.0.1:%d\"\n  admin_token_file: \"%s\"\n",
                free_port(), path);
    publish(extra.data);
    struct srv_runtime *rt = srv_current_runtime();
    struct admin *a = NULL;
    assert_int_equal(admin_start(rt->cfg, &a), -1);
    assert_null(a);
    srv_runtime_release(&rt);

    /* Port already taken: refused. */
    int busy = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(busy, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(listen(busy, 1), 0);
    socklen_t n = sizeof(addr);
    getsockname(busy, (struct sockaddr *)&addr, &n);
    buf_reset(&extra);
    buf_appendf(&extra, "  admin_listen: \"127.0.0.1:%d\"\n", ntohs(addr.sin_port));
    publish(extra.data);
    rt = srv_current_runtime();
    assert_int_equal(admin_start(rt->cfg, &a), -1);
    srv_runtime_release(&rt);
    close(busy);

    /* No admin_listen: nothing started, not an error. */
    publish("");
    rt = srv_current_runtime();
    assert_int_equal(admin_start(rt->cfg, &a), 0);
    assert_null(a);
    admin_stop(&a);
    srv_runtime_release(&rt);
    buf_free(&extra);
    unlink(path);
}

static void test_cli_verbs(void **state)
{
    assert_true(admin_cli_is_verb("flush"));
    assert_true(admin_cli_is_verb("invalidate"));
    assert_true(admin_cli_is_verb("status"));
    assert_true(admin_cli_is_verb("stats"));
    assert_false(admin_cli_is_verb("serve"));
    assert_false(admin_cli_is_verb("flus"));
    char *a1[] = {"gatecache", "flush", "--api", "x", NULL};
    assert_int_equal(admin_cli_main(4, a1), 2); /* --stage missing */
    char *a2[] = {"gatecache", "invalidate", "--api", "x", "--stage", "y", NULL};
    assert_int_equal(admin_cli_main(6, a2), 2); /* no path or tag */
    char *a3[] = {"gatecache", "stats", "--bogus", NULL};
    assert_int_equal(admin_cli_main(3, a3), 2);
    char *a4[] = {"gatecache", "status", "--api", NULL};
    assert_int_equal(admin_cli_main(3, a4), 2);
}

int main(void)
{
    log_set_level(LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_healthz_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_token_configured, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_method_not_allowed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalidations, setup, teardown),
        cmocka_unit_test(test_parse_body),
        cmocka_unit_test(test_parse_limits),
        cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
        cmocka_unit_test(test_read_token),
        cmocka_unit_test_setup_teardown(test_listener, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_errors, setup, teardown),
        cmocka_unit_test(test_cli_verbs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
