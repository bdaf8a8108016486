/*
 * Unit tests for the AWS-compatible subset of the admin API (src/admin/aws_*.c)
 * and the live-change path under it (cfg_clone, cfg_stage_patch, srv_update):
 * routing, every error shape of both services, SigV4 (a captured AWS CLI
 * request replayed byte for byte, and requests signed here by hand with the
 * AKIDEXAMPLE pair), patch validation, CallerReference idempotency, the
 * InvalidationBatch and patch-operations parsers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/admin_int.h"
#include "crypto/crypto.h"

#define AKID "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define HOST "127.0.0.1:18211"
#define NOW 1795317245 /* 20261122T031405Z, the captures' clock */

static const char *yaml = "server:\n"
                          "  listen: \"127.0.0.1:1\"\n"
                          "  workers: 1\n"
                          "identities:\n"
                          "  - name: ops\n"
                          "    access_key_id: AKIDEXAMPLE\n"
                          "    secret_access_key_env: TEST_AWS_SECRET\n"
                          "    policy:\n"
                          "      Statement:\n"
                          "        - Effect: Allow\n"
                          "          Action: [\"apigateway:*\", \"cloudfront:*\"]\n"
                          "          Resource: \"*\"\n"
                          "  - name: reader\n"
                          "    access_key_id: AKIDREADER\n"
                          "    secret_access_key_env: TEST_AWS_SECRET\n"
                          "    policy:\n"
                          "      Statement:\n"
                          "        - Effect: Allow\n"
                          "          Action: \"apigateway:GET\"\n"
                          "          Resource: \"arn:aws:apigateway:us-east-1::/restapis*\"\n"
                          "apis:\n"
                          "  - id: a1b2c3d4e5\n"
                          "    resources:\n"
                          "      /pets:\n"
                          "        GET:\n"
                          "          integration: {type: MOCK}\n"
                          "      /pets/{petId}:\n"
                          "        GET:\n"
                          "          integration: {type: MOCK}\n"
                          "    stages:\n"
                          "      prod:\n"
                          "        cache_cluster_enabled: true\n"
                          "        cache_cluster_size: \"1MiB\"\n"
                          "      dev:\n"
                          "        cache_cluster_enabled: false\n"
                          "        cache_cluster_size: \"1MiB\"\n";

static struct cfg *load(void)
{
    struct cfg *cfg = NULL;
    struct cfg_errors errs = {0};
    int rc = cfg_load_string("test.yaml", yaml, strlen(yaml), &cfg, &errs);
    for (size_t i = 0; i < errs.n; i++)
        fprintf(stderr, "%s\n", errs.lines[i]);
    cfg_errors_free(&errs);
    assert_int_equal(rc, 0);
    return cfg;
}

static int setup(void **state)
{
    setenv("TEST_AWS_SECRET", SECRET, 1);
    setenv(SRV_ENCRYPTION_KEY_ENV,
           "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", 1);
    srv_publish_runtime(srv_runtime_new(load(), srv.rt));
    *state = calloc(1, sizeof(struct admin__ctx));
    return 0;
}

static int teardown(void **state)
{
    admin__ctx_free(*state);
    free(*state);
    pthread_mutex_lock(&srv.lock);
    struct srv_runtime *rt = srv.rt;
    srv.rt = NULL;
    pthread_mutex_unlock(&srv.lock);
    srv_runtime_release(&rt);
    return 0;
}

/* ================= hand-made SigV4 ================= */

static void hex_sha256(const char *s, size_t len, char out[65])
{
    uint8_t d[CRY_SHA256_LEN];
    cry_sha256(s, len, d);
    cry_hex(d, sizeof(d), out);
}

static void hmac(const uint8_t *key, size_t klen, const char *msg, uint8_t out[32])
{
    cry_hmac_sha256(key, klen, msg, strlen(msg), out);
}

/* Authorization for method/path?query signed over host;x-amz-date at `amz_date`; the
 * tests' queries are one k=v pair of unreserved characters, so already canonical. */
static void sign(const char *method, const char *path, const char *query, const char *body,
                 const char *service,
                 const char *akid, const char *secret, const char *amz_date, struct buf *auth)
{
    char body_hash[65], creq_hash[65], sig[65];
    hex_sha256(body ? body : "", body ? strlen(body) : 0, body_hash);
    struct buf creq, sts, key;
    buf_init(&creq);
    buf_init(&sts);
    buf_init(&key);
    /* aws-wire.md §6.3: the wire path is encoded once more, so '%' becomes "%25". */
    buf_appendf(&creq, "%s\n", method);
    for (const char *c = path; *c; c++)
        if (*c == '%')
            buf_append_str(&creq, "%25");
        else
            buf_append_char(&creq, *c);
    buf_appendf(&creq, "\n%s\nhost:%s\nx-amz-date:%s\n\nhost;x-amz-date\n%s",
                query ? query : "", HOST, amz_date, body_hash);
    hex_sha256(creq.data, creq.len, creq_hash);
    char day[9];
    snprintf(day, sizeof(day), "%.8s", amz_date);
    buf_appendf(&sts, "AWS4-HMAC-SHA256\n%s\n%s/us-east-1/%s/aws4_request\n%s", amz_date, day,
                service, creq_hash);
    buf_appendf(&key, "AWS4%s", secret);
    uint8_t k1[32], k2[32], k3[32], k4[32], s[32];
    hmac((const uint8_t *)key.data, key.len, day, k1);
    hmac(k1, 32, "us-east-1", k2);
    hmac(k2, 32, service, k3);
    hmac(k3, 32, "aws4_request", k4);
    hmac(k4, 32, sts.data, s);
    cry_hex(s, 32, sig);
    buf_appendf(auth,
                "AWS4-HMAC-SHA256 Credential=%s/%s/us-east-1/%s/aws4_request, "
                "SignedHeaders=host;x-amz-date, Signature=%s",
                akid, day, service, sig);
    buf_free(&creq);
    buf_free(&sts);
    buf_free(&key);
}

struct call {
    struct admin_response rs;
    json_t *doc; /* parsed JSON body or NULL */
};

static int call_at(struct admin__ctx *ctx, const char *method, const char *target,
                   const char *body, const char *akid, const char *secret, int64_t signed_at,
                   struct call *out)
{
    const char *service = strncmp(target, "/2020-05-31", 11) == 0 ? "cloudfront" : "apigateway";
    char amz_date[17];
    time_t t = (time_t)signed_at;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(amz_date, sizeof(amz_date), "%Y%m%dT%H%M%SZ", &tm);
    const char *q = strchr(target, '?');
    size_t plen = q ? (size_t)(q - target) : strlen(target);
    char path[512];
    snprintf(path, sizeof(path), "%.*s", (int)plen, target);
    struct buf auth;
    buf_init(&auth);
    if (akid)
        sign(method, path, q ? q + 1 : NULL, body, service, akid, secret, amz_date, &auth);
    struct http_header h[3] = {
        {"Host", 4, HOST, strlen(HOST)},
        {"X-Amz-Date", 10, amz_date, 16},
        {"Authorization", 13, auth.data, auth.len},
    };
    struct admin_request rq = {
        .method = method,
        .method_len = strlen(method),
        .path = target,
        .path_len = plen,
        .query = q ? q + 1 : NULL,
        .query_len = q ? strlen(q + 1) : 0,
        .target = target,
        .target_len = strlen(target),
        .authorization = akid ? auth.data : NULL,
        .authorization_len = akid ? auth.len : 0,
        .host = HOST,
        .host_len = strlen(HOST),
        .headers = h,
        .n_headers = akid ? 3 : 2,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .now_sec = NOW,
    };
    admin__response_init(&out->rs);
    admin__handle(ctx, &rq, &out->rs);
    out->doc = out->rs.body.len && strcmp(out->rs.content_type, "application/json") == 0
                   ? json_loadb(out->rs.body.data, out->rs.body.len, 0, NULL)
                   : NULL;
    buf_free(&auth);
    return out->rs.status;
}

static int call(struct admin__ctx *ctx, const char *method, const char *target, const char *body,
                struct call *out)
{
    return call_at(ctx, method, target, body, AKID, SECRET, NOW, out);
}

static void call_free(struct call *c)
{
    json_decref(c->doc);
    admin__response_free(&c->rs);
}

static bool has_header(const struct call *c, const char *line)
{
    return c->rs.headers.data && strstr(c->rs.headers.data, line) != NULL;
}

static void assert_apigw_error(struct call *c, int status, const char *type, const char *msg)
{
    char want[128];
    assert_int_equal(c->rs.status, status);
    snprintf(want, sizeof(want), "x-amzn-ErrorType: %s:", type);
    assert_true(has_header(c, want));
    assert_true(has_header(c, "x-amzn-RequestId: "));
    assert_non_null(c->doc);
    const char *m = json_string_value(json_object_get(c->doc, "message"));
    assert_non_null(m);
    if (msg && !strstr(m, msg))
        fail_msg("message '%s' lacks '%s'", m, msg);
}

static void assert_cf_error(struct call *c, int status, const char *code)
{
    char want[128];
    assert_int_equal(c->rs.status, status);
    assert_string_equal(c->rs.content_type, "text/xml");
    snprintf(want, sizeof(want), "<Code>%s</Code>", code);
    assert_non_null(strstr(c->rs.body.data, "<ErrorResponse xmlns=\"http://cloudfront"));
    assert_non_null(strstr(c->rs.body.data, want));
    assert_true(has_header(c, "x-amz-request-id: "));
}

/* ================= SigV4 ================= */

/* The PATCH of captures/awscli-2.9.19.md, replayed byte for byte. */
static void test_captured_update_stage(void **state)
{
    static const char body[] =
        "{\"patchOperations\": [{\"op\": \"replace\", \"path\": \"/cacheClusterEnabled\", "
        "\"value\": \"true\"}, {\"op\": \"replace\", \"path\": \"/cacheClusterSize\", \"value\": "
        "\"1.6\"}, {\"op\": \"replace\", \"path\": \"/*/*/caching/enabled\", \"value\": "
        "\"true\"}, {\"op\": \"replace\", \"path\": \"/*/*/caching/ttlInSeconds\", \"value\": "
        "\"600\"}, {\"op\": \"replace\", \"path\": \"/*/*/caching/dataEncrypted\", \"value\": "
        "\"true\"}, {\"op\": \"replace\", \"path\": "
        "\"/*/*/caching/requireAuthorizationForCacheControl\", \"value\": \"true\"}, {\"op\": "
        "\"replace\", \"path\": \"/*/*/caching/unauthorizedCacheControlHeaderStrategy\", "
        "\"value\": \"SUCCEED_WITH_RESPONSE_HEADER\"}, {\"op\": \"replace\", \"path\": "
        "\"/~1pets/GET/caching/ttlInSeconds\", \"value\": \"60\"}]}";
    static const char auth[] =
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/us-east-1/apigateway/aws4_request, "
        "SignedHeaders=accept;content-type;host;x-amz-date, "
        "Signature=20df38e4736045a58a6c81d781aa6ea7f36b04db5828a274881c6c656257a272";
    struct http_header h[] = {
        {"Host", 4, HOST, strlen(HOST)},
        {"Accept-Encoding", 15, "identity", 8},
        {"Content-Type", 12, "application/json", 16},
        {"Accept", 6, "application/json", 16},
        {"X-Amz-Date", 10, "20261122T031405Z", 16},
        {"Authorization", 13, auth, strlen(auth)},
        {"Content-Length", 14, "664", 3},
    };
    assert_int_equal(strlen(body), 664);
    const char *path = "/restapis/a1b2c3d4e5/stages/dev";
    struct admin_request rq = {
        .method = "PATCH", .method_len = 5, .path = path, .path_len = strlen(path),
        .target = path, .target_len = strlen(path), .authorization = auth,
        .authorization_len = strlen(auth), .host = HOST, .host_len = strlen(HOST),
        .headers = h, .n_headers = GATE_ARRAY_LEN(h), .body = body, .body_len = strlen(body),
        .now_sec = NOW,
    };
    struct admin_response rs;
    admin__response_init(&rs);
    admin__handle(*state, &rq, &rs);
    assert_int_equal(rs.status, 200);
    json_t *doc = json_loadb(rs.body.data, rs.body.len, 0, NULL);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "cacheClusterStatus")),
                        "CREATE_IN_PROGRESS");
    assert_string_equal(json_string_value(json_object_get(doc, "cacheClusterSize")), "1.6");
    json_t *ms = json_object_get(doc, "methodSettings");
    json_t *all = json_object_get(ms, "*/*"), *pets = json_object_get(ms, "~1pets/GET");
    assert_int_equal(json_integer_value(json_object_get(all, "cacheTtlInSeconds")), 600);
    assert_true(json_is_true(json_object_get(all, "cacheDataEncrypted")));
    assert_int_equal(json_integer_value(json_object_get(pets, "cacheTtlInSeconds")), 60);
    /* Inherited from "*" "/" "*", as the data plane resolves it. */
    assert_true(json_is_true(json_object_get(pets, "cacheDataEncrypted")));
    assert_int_equal(json_integer_value(json_object_get(pets, "throttlingBurstLimit")), 5000);
    json_decref(doc);
    admin__response_free(&rs);

    /* Live: the data plane's settings changed; the next GetStage shows the settled status. */
    struct srv_runtime *rt = srv_current_runtime();
    const struct cfg_stage *st = cfg_find_stage(cfg_find_api(rt->cfg, "a1b2c3d4e5"), "dev");
    struct route_settings rs2;
    route_resolve_settings(st, "/pets", "GET", &rs2);
    assert_true(rs2.caching_enabled);
    assert_int_equal(rs2.ttl, 60);
    assert_int_equal(srv_runtime_cache(rt, 0, 1)->capacity, 1717986918u);
    srv_runtime_release(&rt);
    struct call c;
    assert_int_equal(call(*state, "GET", "/restapis/a1b2c3d4e5/stages/dev", NULL, &c), 200);
    assert_string_equal(json_string_value(json_object_get(c.doc, "cacheClusterStatus")),
                        "AVAILABLE");
    call_free(&c);
}

static void test_auth_errors(void **state)
{
    struct admin__ctx *ctx = *state;
    struct call c;
    const char *p = "/restapis/a1b2c3d4e5/stages/prod";
    call_at(ctx, "GET", p, NULL, NULL, NULL, NOW, &c);
    assert_apigw_error(&c, 403, "MissingAuthenticationTokenException",
                       "Missing Authentication Token");
    call_free(&c);
    call_at(ctx, "GET", p, NULL, AKID, "wrong", NOW, &c);
    assert_apigw_error(&c, 403, "InvalidSignatureException", "does not match");
    call_free(&c);
    call_at(ctx, "GET", p, NULL, "AKIDNOBODY", SECRET, NOW, &c);
    assert_apigw_error(&c, 403, "UnrecognizedClientException", "security token");
    call_free(&c);
    call_at(ctx, "GET", p, NULL, AKID, SECRET, NOW - 3600, &c);
    assert_apigw_error(&c, 403, "InvalidSignatureException", "Signature expired: 20261122T0214");
    call_free(&c);
    call_at(ctx, "DELETE", "/restapis/a1b2c3d4e5/stages/prod/cache/data", NULL, "AKIDREADER",
            SECRET, NOW, &c);
    assert_apigw_error(&c, 403, "AccessDeniedException",
                       "user/reader is not authorized to perform: apigateway:DELETE");
    call_free(&c);
    call_at(ctx, "GET", p, NULL, "AKIDREADER", SECRET, NOW, &c);
    assert_int_equal(c.rs.status, 200);
    call_free(&c);
    /* CloudFront's shapes. */
    const char *l = "/2020-05-31/distribution/a1b2c3d4e5-prod/invalidation";
    call_at(ctx, "GET", l, NULL, NULL, NULL, NOW, &c);
    assert_cf_error(&c, 403, "MissingAuthenticationToken");
    call_free(&c);
    call_at(ctx, "GET", l, NULL, AKID, "wrong", NOW, &c);
    assert_cf_error(&c, 403, "SignatureDoesNotMatch");
    call_free(&c);
    call_at(ctx, "GET", l, NULL, "AKIDNOBODY", SECRET, NOW, &c);
    assert_cf_error(&c, 403, "InvalidClientTokenId");
    call_free(&c);
    call_at(ctx, "GET", l, NULL, "AKIDREADER", SECRET, NOW, &c);
    assert_cf_error(&c, 403, "AccessDenied");
    call_free(&c);
}

/* ================= API Gateway routes ================= */

static void test_apigw_routes(void **state)
{
    struct admin__ctx *ctx = *state;
    struct call c;
    assert_int_equal(call(ctx, "GET", "/restapis", NULL, &c), 200);
    json_t *item = json_array_get(json_object_get(c.doc, "item"), 0);
    assert_string_equal(json_string_value(json_object_get(item, "id")), "a1b2c3d4e5");
    assert_true(json_is_integer(json_object_get(item, "createdDate")));
    assert_null(json_object_get(c.doc, "position"));
    call_free(&c);
    assert_int_equal(call(ctx, "GET", "/restapis?limit=0", NULL, &c), 400);
    assert_apigw_error(&c, 400, "BadRequestException", NULL);
    call_free(&c);
    assert_int_equal(call(ctx, "GET", "/restapis/a1b2c3d4e5", NULL, &c), 200);
    call_free(&c);
    call(ctx, "GET", "/restapis/nope", NULL, &c);
    assert_apigw_error(&c, 404, "NotFoundException", "Invalid API identifier specified");
    call_free(&c);
    assert_int_equal(call(ctx, "GET", "/restapis/a1b2c3d4e5/stages", NULL, &c), 200);
    assert_int_equal(json_array_size(json_object_get(c.doc, "item")), 2);
    call_free(&c);
    assert_int_equal(call(ctx, "GET", "/restapis/a1b2c3d4e5/stages/prod", NULL, &c), 200);
    assert_string_equal(json_string_value(json_object_get(c.doc, "cacheClusterStatus")),
                        "AVAILABLE");
    assert_true(json_is_object(json_object_get(c.doc, "methodSettings")));
    call_free(&c);
    call(ctx, "GET", "/restapis/a1b2c3d4e5/stages/nope", NULL, &c);
    assert_apigw_error(&c, 404, "NotFoundException", "Invalid stage identifier specified");
    call_free(&c);
    /* Percent-encoded segments are decoded before the lookup. */
    assert_int_equal(call(ctx, "GET", "/restapis/a1b2c3d4e5/stages/pro%64", NULL, &c), 200);
    call_free(&c);
    call(ctx, "POST", "/restapis/a1b2c3d4e5/stages", "{}", &c);
    assert_apigw_error(&c, 400, "BadRequestException", "not supported");
    call_free(&c);
    call(ctx, "GET", "/restapis/a1b2c3d4e5/resources", NULL, &c);
    assert_apigw_error(&c, 404, "NotFoundException", NULL);
    call_free(&c);
    assert_int_equal(call(ctx, "DELETE", "/restapis/a1b2c3d4e5/stages/prod/cache/data", NULL, &c),
                     202);
    assert_int_equal(c.rs.body.len, 0);
    assert_true(has_header(&c, "x-amzn-RequestId: "));
    call_free(&c);
    const struct admin__stage_counts *sc = admin__counts_find(ctx, "a1b2c3d4e5", "prod");
    assert_non_null(sc);
    assert_int_equal(sc->by_reason[ADMIN_REASON_FLUSH], 1);
}

static void test_update_stage_live(void **state)
{
    struct admin__ctx *ctx = *state;
    struct call c;
    const char *p = "/restapis/a1b2c3d4e5/stages/prod";
    /* A failing operation rejects the whole request: nothing changes. */
    call(ctx, "PATCH", p,
         "{\"patchOperations\":[{\"op\":\"replace\",\"path\":\"/*/*/caching/ttlInSeconds\","
         "\"value\":\"10\"},{\"op\":\"replace\",\"path\":\"/*/*/caching/ttlInSeconds\","
         "\"value\":\"3601\"}]}",
         &c);
    assert_apigw_error(&c, 400, "BadRequestException", "0 to 3600");
    call_free(&c);
    assert_int_equal(call(ctx, "GET", p, NULL, &c), 200);
    assert_int_equal(json_object_size(json_object_get(c.doc, "methodSettings")), 0);
    call_free(&c);
    call(ctx, "PATCH", p, "{\"patchOperations\":[{\"op\":\"replace\"}]}", &c);
    assert_apigw_error(&c, 400, "BadRequestException", "op and path");
    call_free(&c);
    call(ctx, "PATCH", p, "not json", &c);
    assert_apigw_error(&c, 400, "BadRequestException", NULL);
    call_free(&c);
    /* Terraform's spelling updates the entry; the key follows the last spelling. */
    assert_int_equal(call(ctx, "PATCH", p,
                          "{\"patchOperations\":[{\"op\":\"replace\",\"path\":"
                          "\"/~1pets/GET/caching/ttlInSeconds\",\"value\":\"30\"},{\"op\":"
                          "\"replace\",\"path\":\"/pets/GET/logging/loglevel\",\"value\":"
                          "\"INFO\"}]}",
                          &c),
                     200);
    json_t *ms = json_object_get(c.doc, "methodSettings");
    assert_int_equal(json_object_size(ms), 1);
    json_t *e = json_object_get(ms, "pets/GET");
    assert_int_equal(json_integer_value(json_object_get(e, "cacheTtlInSeconds")), 30);
    assert_string_equal(json_string_value(json_object_get(e, "loggingLevel")), "INFO");
    /* No status change: the settled status. */
    assert_string_equal(json_string_value(json_object_get(c.doc, "cacheClusterStatus")),
                        "AVAILABLE");
    call_free(&c);
    /* Disabling: DELETE_IN_PROGRESS in the answer, NOT_AVAILABLE after. */
    assert_int_equal(call(ctx, "PATCH", p,
                          "{\"patchOperations\":[{\"op\":\"replace\",\"path\":"
                          "\"/cacheClusterEnabled\",\"value\":\"false\"}]}",
                          &c),
                     200);
    assert_string_equal(json_string_value(json_object_get(c.doc, "cacheClusterStatus")),
                        "DELETE_IN_PROGRESS");
    call_free(&c);
    assert_int_equal(call(ctx, "GET", p, NULL, &c), 200);
    assert_string_equal(json_string_value(json_object_get(c.doc, "cacheClusterStatus")),
                        "NOT_AVAILABLE");
    call_free(&c);
    call(ctx, "PATCH", "/restapis/a1b2c3d4e5/stages/nope", "{}", &c);
    assert_apigw_error(&c, 404, "NotFoundException", NULL);
    call_free(&c);
}

/* ================= patch validation (config module) ================= */

static void test_patch_validation(void **state)
{
    struct cfg *orig = load();
    struct cfg *c = cfg_clone(orig);
    char err[256];
    const char *api = "a1b2c3d4e5";
#define PATCH(op, path, value) cfg_stage_patch(c, api, "prod", op, path, value, err, sizeof(err))
    assert_int_equal(cfg_stage_patch(c, "nope", "prod", "replace", "/cacheClusterEnabled", "true",
                                     err, sizeof(err)),
                     -ENOENT);
    assert_int_equal(cfg_stage_patch(c, api, "nope", "replace", "/cacheClusterEnabled", "true",
                                     err, sizeof(err)),
                     -ENOENT);
    assert_int_equal(PATCH("frob", "/cacheClusterEnabled", "true"), -EINVAL);
    assert_int_equal(PATCH("add", "/cacheClusterEnabled", "true"), -EINVAL);
    assert_string_equal(err, "Invalid patch path '/cacheClusterEnabled' specified for op 'add'.");
    assert_int_equal(PATCH("replace", "/cacheClusterEnabled", "yes"), -EINVAL);
    assert_int_equal(PATCH("replace", "/cacheClusterEnabled", NULL), -EINVAL);
    assert_int_equal(PATCH("replace", "/cacheClusterSize", "3"), -EINVAL);
    assert_int_equal(PATCH("replace", "/cacheClusterSize", "32KiB"), -EINVAL);
    assert_non_null(strstr(err, "minimum"));
    assert_int_equal(PATCH("replace", "/*/*/caching/ttlInSeconds", "3601"), -EINVAL);
    assert_int_equal(PATCH("replace", "/*/*/caching/ttlInSeconds", "-1"), -EINVAL);
    assert_int_equal(PATCH("replace", "/*/*/caching/ttlInSeconds", "1e3"), -EINVAL);
    assert_int_equal(PATCH("replace", "/*/*/caching/unauthorizedCacheControlHeaderStrategy",
                           "fail_with_403"),
                     -EINVAL);
    assert_int_equal(PATCH("replace", "/~1cats/GET/caching/enabled", "true"), -EINVAL);
    assert_int_equal(PATCH("replace", "/~1pets/POST/caching/enabled", "true"), -EINVAL);
    assert_int_equal(PATCH("replace", "/~1pets/FROB/caching/enabled", "true"), -EINVAL);
    assert_int_equal(PATCH("replace", "/~2pets/GET/caching/enabled", "true"), -EINVAL);
    assert_int_equal(PATCH("replace", "/GET/caching/enabled", "true"), -EINVAL);
    assert_int_equal(PATCH("replace", "/*/*/caching/frob", "true"), -EINVAL);
    assert_int_equal(PATCH("replace", "/*/*/logging/loglevel", "DEBUG"), -EINVAL);
    assert_int_equal(PATCH("replace", "/*/*/throttling/rateLimit", "fast"), -EINVAL);
    assert_int_equal(PATCH("remove", "/*/*", NULL), -EINVAL);
    assert_string_equal(err, "Cannot remove method setting */* because there is no method "
                             "setting for this method");
    /* Accepted ones. */
    assert_int_equal(PATCH("replace", "/cacheClusterSize", "6.1"), 0);
    assert_int_equal(PATCH("replace", "/*/*/caching/ttlInSeconds", "0"), 0);
    assert_int_equal(PATCH("replace", "/~1pets~1{petId}/get/caching/dataEncrypted", "true"), 0);
    assert_int_equal(PATCH("replace", "/pets/{petId}/GET/caching/enabled", "false"), 0);
    assert_int_equal(PATCH("replace", "/*/*/throttling/rateLimit", "12.5"), 0);
    const struct cfg_stage *st = cfg_find_stage(cfg_find_api(c, api), "prod");
    assert_int_equal(st->n_method_settings, 2);
    assert_string_equal(st->cache_cluster_size, "6.1");
    assert_string_equal(st->method_settings[1].resource_path, "/pets/{petId}");
    assert_string_equal(st->method_settings[1].http_method, "GET");
    assert_string_equal(st->method_settings[1].aws_key, "pets/{petId}/GET");
    assert_true(st->method_settings[1].cache_data_encrypted);
    assert_int_equal(PATCH("remove", "/~1pets~1{petId}/GET", NULL), 0);
    assert_int_equal(st->n_method_settings, 1);
    /* The original snapshot is untouched. */
    const struct cfg_stage *o = cfg_find_stage(cfg_find_api(orig, api), "prod");
    assert_string_equal(o->cache_cluster_size, "1MiB");
    assert_int_equal(o->n_method_settings, 0);
#undef PATCH
    cfg_release(&c);
    cfg_release(&orig);
    (void)state;
}

static void test_clone(void **state)
{
    struct cfg *a = load();
    struct cfg *b = cfg_clone(a);
    assert_ptr_not_equal(a->apis, b->apis);
    assert_string_equal(a->path, b->path);
    assert_string_equal(a->server.region, b->server.region);
    assert_int_equal(a->n_identities, b->n_identities);
    assert_ptr_not_equal(a->identities[0].policy, b->identities[0].policy);
    assert_true(json_equal(a->identities[0].policy, b->identities[0].policy));
    assert_string_equal(a->identities[0].secret_access_key, b->identities[0].secret_access_key);
    assert_ptr_not_equal(a->identities[0].secret_access_key, b->identities[0].secret_access_key);
    assert_int_equal(a->apis[0].n_resources, b->apis[0].n_resources);
    assert_string_equal(a->apis[0].resources[1].path, b->apis[0].resources[1].path);
    assert_string_equal(a->apis[0].stages[1].distribution_id, b->apis[0].stages[1].distribution_id);
    assert_int_equal(a->apis[0].stages[0].cache_capacity_bytes,
                     b->apis[0].stages[0].cache_capacity_bytes);
    cfg_release(&a);
    /* b stands alone: building a runtime from it works after a is gone. */
    struct srv_runtime *rt = srv_runtime_new(b, NULL);
    assert_non_null(rt);
    srv_runtime_release(&rt);
    (void)state;
}

/* ================= CloudFront ================= */

static const char *batch(const char *ref, const char *paths, int quantity, struct buf *b)
{
    buf_reset(b);
    buf_appendf(b,
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><InvalidationBatch "
                "xmlns=\"http://cloudfront.amazonaws.com/doc/2020-05-31/\"><Paths><Quantity>%d"
                "</Quantity><Items>%s</Items></Paths><CallerReference>%s</CallerReference>"
                "</InvalidationBatch>",
                quantity, paths, ref);
    return b->data;
}

static void test_cloudfront(void **state)
{
    struct admin__ctx *ctx = *state;
    struct call c;
    struct buf b;
    buf_init(&b);
    const char *l = "/2020-05-31/distribution/a1b2c3d4e5-prod/invalidation";
    assert_int_equal(call(ctx, "POST", l, batch("r1", "<Path>/pets/*</Path><Path>/a</Path>", 2, &b),
                          &c),
                     201);
    assert_true(has_header(&c, "Location: http://" HOST "/2020-05-31/distribution/a1b2c3d4e5-prod"
                                                        "/invalidation/I"));
    assert_non_null(strstr(c.rs.body.data, "<Status>InProgress</Status>"));
    char id1[16];
    const char *p = strstr(c.rs.body.data, "<Id>");
    assert_non_null(p);
    snprintf(id1, sizeof(id1), "%.14s", p + 4);
    call_free(&c);
    /* Same reference, same paths: the same invalidation, now Completed. */
    assert_int_equal(call(ctx, "POST", l, batch("r1", "<Path>/pets/*</Path><Path>/a</Path>", 2, &b),
                          &c),
                     201);
    assert_non_null(strstr(c.rs.body.data, id1));
    assert_non_null(strstr(c.rs.body.data, "<Status>Completed</Status>"));
    call_free(&c);
    call(ctx, "POST", l, batch("r1", "<Path>/b</Path>", 1, &b), &c);
    assert_cf_error(&c, 409, "InvalidationBatchAlreadyExists");
    call_free(&c);
    assert_int_equal(call(ctx, "POST", l, batch("r2", "<Path>/&#x62;</Path>", 1, &b), &c), 201);
    assert_non_null(strstr(c.rs.body.data, "<Path>/b</Path>"));
    call_free(&c);
    /* Errors of the batch. */
    call(ctx, "POST", l, batch("r3", "<Path>/b</Path>", 2, &b), &c);
    assert_cf_error(&c, 400, "InconsistentQuantities");
    call_free(&c);
    call(ctx, "POST", l, batch("r3", "<Path>b*c</Path>", 1, &b), &c);
    assert_cf_error(&c, 400, "InvalidArgument");
    call_free(&c);
    call(ctx, "POST", l, "", &c);
    assert_cf_error(&c, 400, "MissingBody");
    call_free(&c);
    call(ctx, "POST", l, "<!DOCTYPE x><InvalidationBatch/>", &c);
    assert_cf_error(&c, 400, "MalformedInput");
    call_free(&c);
    /* List: newest first, paginated with NextMarker. */
    assert_int_equal(call(ctx, "GET", "/2020-05-31/distribution/a1b2c3d4e5-prod/invalidation"
                                      "?MaxItems=1",
                          NULL, &c),
                     200);
    assert_non_null(strstr(c.rs.body.data, "<IsTruncated>true</IsTruncated><Quantity>1<"));
    assert_non_null(strstr(c.rs.body.data, "<Marker></Marker><NextMarker>I"));
    assert_null(strstr(c.rs.body.data, id1));
    call_free(&c);
    assert_int_equal(call(ctx, "GET", l, NULL, &c), 200);
    assert_non_null(strstr(c.rs.body.data, "<Quantity>2</Quantity>"));
    assert_null(strstr(c.rs.body.data, "InProgress"));
    call_free(&c);
    struct buf g;
    buf_init(&g);
    buf_appendf(&g, "%s/%s", l, id1);
    assert_int_equal(call(ctx, "GET", g.data, NULL, &c), 200);
    assert_non_null(strstr(c.rs.body.data, "<CallerReference>r1</CallerReference>"));
    assert_non_null(strstr(c.rs.body.data, "<Status>Completed</Status>"));
    call_free(&c);
    buf_free(&g);
    call(ctx, "GET", "/2020-05-31/distribution/a1b2c3d4e5-prod/invalidation/INOPE", NULL, &c);
    assert_cf_error(&c, 404, "NoSuchInvalidation");
    call_free(&c);
    call(ctx, "GET", "/2020-05-31/distribution/missingX/invalidation/I1", NULL, &c);
    assert_cf_error(&c, 404, "NoSuchDistribution");
    call_free(&c);
    call(ctx, "GET", "/2020-05-31/distribution/a1b2c3d4e5-prod", NULL, &c);
    assert_cf_error(&c, 404, "NotFound");
    call_free(&c);
    buf_free(&b);
}

/* ================= parsers ================= */

static void test_patch_parse(void **state)
{
    static const struct {
        const char *body;
        int rc;
        size_t n;
    } cases[] = {
        {"", 0, 0},
        {"{}", 0, 0},
        {"{\"patchOperations\":[]}", 0, 0},
        {"{\"patchOperations\":[{\"op\":\"remove\",\"path\":\"/*/*\"}]}", 0, 1},
        {"{\"patchOperations\":[{\"op\":\"replace\",\"path\":\"/a\",\"value\":null}]}", 0, 1},
        {"[]", -1, 0},
        {"{\"patchOperations\":{}}", -1, 0},
        {"{\"patchOperations\":[1]}", -1, 0},
        {"{\"patchOperations\":[{\"op\":1,\"path\":\"/a\"}]}", -1, 0},
        {"{\"patchOperations\":[{\"op\":\"replace\",\"path\":\"/a\",\"value\":true}]}", -1, 0},
        {"{\"patchOperations\":[{\"op\":\"replace\",\"path\":\"/a\",\"x\":\"1\"}]}", -1, 0},
        {"{\"patchOperations\":[],\"patchOperations\":[]}", -1, 0},
        {"{\"other\":1}", -1, 0},
        {"{\"patchOperations\":[{\"op\":\"replace\",\"path\":\"/a\\u0000b\"}]}", -1, 0},
    };
    for (size_t i = 0; i < GATE_ARRAY_LEN(cases); i++) {
        struct admin__patch p;
        const char *err;
        int rc = admin__patch_parse(cases[i].body, strlen(cases[i].body), &p, &err);
        if (rc != cases[i].rc)
            fail_msg("case %zu: rc %d", i, rc);
        assert_int_equal(p.n_ops, cases[i].n);
        if (rc)
            assert_non_null(err);
        admin__patch_free(&p);
    }
    (void)state;
}

static void test_batch_parse(void **state)
{
    struct admin__cf_batch b;
    const char *code, *msg;
    const char *ok = "<!-- x --><InvalidationBatch><CallerReference>a&amp;b</CallerReference>"
                     "<Paths><Items><Path>/x</Path><cf:Path>/y*</cf:Path></Items>"
                     "<Quantity>2</Quantity></Paths></InvalidationBatch>\n";
    assert_int_equal(admin__cf_batch_parse(ok, strlen(ok), &b, &code, &msg), 0);
    assert_string_equal(b.caller_ref, "a&b");
    assert_int_equal(b.n_paths, 2);
    assert_string_equal(b.paths[1], "/y*");
    admin__cf_batch_free(&b);
    static const char *bad[] = {
        "<InvalidationBatch>",
        "<Other/>",
        "<InvalidationBatch></Other>",
        "<InvalidationBatch><CallerReference>r</CallerReference></InvalidationBatch>",
        ("<InvalidationBatch><Paths><Quantity>0</Quantity></Paths>"
         "<CallerReference>r</CallerReference></InvalidationBatch>"),
        "<InvalidationBatch><CallerReference>&bogus;</CallerReference></InvalidationBatch>",
        "<InvalidationBatch><![CDATA[x]]></InvalidationBatch>",
        "<InvalidationBatch/><InvalidationBatch/>",
        "x<InvalidationBatch/>",
    };
    for (size_t i = 0; i < GATE_ARRAY_LEN(bad); i++) {
        if (admin__cf_batch_parse(bad[i], strlen(bad[i]), &b, &code, &msg) != -1)
            fail_msg("accepted %s", bad[i]);
        assert_null(b.caller_ref);
        assert_non_null(code);
    }
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_captured_update_stage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apigw_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_stage_live, setup, teardown),
        cmocka_unit_test_setup_teardown(test_patch_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cloudfront, setup, teardown),
        cmocka_unit_test(test_patch_parse),
        cmocka_unit_test(test_batch_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
