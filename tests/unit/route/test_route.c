/*
 * Unit tests for route/: template precedence, stage and base path selection,
 * settings resolution (most specific first), integration URLs and cache keys.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route/route.h"

static const char base_yaml[] =
    "apis:\n"
    "  - id: petstore\n"
    "    resources:\n"
    "      /pets:\n"
    "        GET:\n"
    "          integration: { type: HTTP_PROXY, uri: \"http://127.0.0.1:3000/petstore/pets\" }\n"
    "          cache_key_parameters: [\"method.request.querystring.type\"]\n"
    "        POST:\n"
    "          integration: { type: HTTP_PROXY, uri: \"http://127.0.0.1:3000/petstore/pets\" }\n"
    "          cache_key_parameters: [\"method.request.body\"]\n"
    "      /pets/{id}:\n"
    "        GET:\n"
    "          integration: { type: HTTP_PROXY, uri: \"http://127.0.0.1:3000/p/{id}?x=1\" }\n"
    "          cache_key_parameters: [\"method.request.header.Accept\", "
    "\"method.request.path.id\"]\n"
    "      /pets/special:\n"
    "        GET:\n"
    "          integration: { type: MOCK, body: special }\n"
    "      /projects/{id}/members:\n"
    "        GET:\n"
    "          integration: { type: HTTP_PROXY, uri: \"http://127.0.0.1:3000/projects/{id}/members\" }\n"
    "          cache_key_parameters: [\"method.request.querystring.*\"]\n"
    "        PUT:\n"
    "          integration: { type: HTTP_PROXY, uri: \"http://127.0.0.1:3000/projects/{id}/members\" }\n"
    "          invalidates: [\"GET /projects/{id}/members\"]\n"
    "      /{proxy+}:\n"
    "        ANY:\n"
    "          integration: { type: HTTP_PROXY, uri: \"http://127.0.0.1:3000/{proxy}\" }\n"
    "        DELETE:\n"
    "          integration: { type: MOCK, status: 204 }\n"
    "    stages:\n"
    "      prod:\n"
    "        cache_cluster_enabled: true\n"
    "        method_settings:\n"
    "          - resource_path: \"/*\"\n"
    "            http_method: \"*\"\n"
    "            cache_ttl_in_seconds: 100\n"
    "            require_authorization_for_cache_control: false\n"
    "          - resource_path: \"/pets\"\n"
    "            http_method: \"*\"\n"
    "            cache_ttl_in_seconds: 50\n"
    "          - resource_path: \"/pets\"\n"
    "            http_method: POST\n"
    "            caching_enabled: true\n"
    "            cache_ttl_in_seconds: 20\n"
    "      dev:\n"
    "        cache_cluster_enabled: false\n";

struct fixture {
    struct cfg *cfg;
    struct route_table *t;
};

static int setup_yaml(void **state, const char *yaml)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct cfg_errors errs = {0};
    int rc = cfg_load_string("test.yaml", yaml, strlen(yaml), &f->cfg, &errs);
    for (size_t i = 0; i < errs.n; i++)
        fprintf(stderr, "%s\n", errs.lines[i]);
    cfg_errors_free(&errs);
    if (rc != 0)
        return -1;
    f->t = route_table_new(f->cfg);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_yaml(state, base_yaml);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    route_table_free(&f->t);
    assert_null(f->t);
    cfg_release(&f->cfg);
    free(f);
    return 0;
}

static int match(struct fixture *f, const char *method, const char *path, struct route_match *m)
{
    return route_match(f->t, "localhost", 9, method, strlen(method), path, strlen(path), m);
}

static const char *resource_of(const struct route_match *m)
{
    return m->resource->cfg->path;
}

static void test_precedence(void **state)
{
    struct fixture *f = *state;
    struct route_match m;
    assert_int_equal(match(f, "GET", "/prod/pets/special", &m), ROUTE_OK);
    assert_string_equal(resource_of(&m), "/pets/special"); /* literal over {id} */
    assert_int_equal(match(f, "GET", "/prod/pets/7", &m), ROUTE_OK);
    assert_string_equal(resource_of(&m), "/pets/{id}");   /* {id} over {proxy+} */
    assert_int_equal(m.n_params, 1);
    assert_int_equal(m.params[0].value_len, 1);
    assert_memory_equal(m.params[0].value, "7", 1);
    assert_int_equal(match(f, "GET", "/prod/pets/7/toys", &m), ROUTE_OK);
    assert_string_equal(resource_of(&m), "/{proxy+}");
    assert_int_equal(match(f, "DELETE", "/prod/anything", &m), ROUTE_OK);
    assert_string_equal(m.method->cfg->http_method, "DELETE"); /* own method over ANY */
    assert_int_equal(match(f, "PATCH", "/prod/anything", &m), ROUTE_OK);
    assert_string_equal(m.method->cfg->http_method, "ANY");
    assert_int_equal(match(f, "DELETE", "/prod/pets", &m), ROUTE_NO_METHOD);
    assert_int_equal(match(f, "GET", "/nostage/pets", &m), ROUTE_NO_STAGE);
    assert_int_equal(match(f, "GET", "/prod/../dev/pets", &m), ROUTE_BAD_PATH);
    assert_int_equal(match(f, "GET", "/prod/%2e%2e/x", &m), ROUTE_BAD_PATH);
    /* {proxy+} needs one segment at least: the stage root has no resource. */
    assert_int_equal(match(f, "GET", "/prod", &m), ROUTE_NO_RESOURCE);
    assert_int_equal(match(f, "GET", "/prod/pets", &m), ROUTE_OK);
    assert_int_equal(m.path_len, 5);
    assert_memory_equal(m.path, "/pets", 5);
}

static void test_settings(void **state)
{
    struct fixture *f = *state;
    struct route_match m;
    assert_int_equal(match(f, "GET", "/prod/pets", &m), ROUTE_OK);
    assert_true(m.settings->caching_enabled);
    assert_int_equal(m.settings->ttl, 50);          /* /pets * over / * * */
    assert_false(m.settings->require_authorization_for_cache_control);
    assert_int_equal(match(f, "POST", "/prod/pets", &m), ROUTE_OK);
    assert_true(m.settings->caching_enabled);       /* turned on for POST /pets */
    assert_int_equal(m.settings->ttl, 20);
    assert_int_equal(match(f, "PUT", "/prod/projects/A/members", &m), ROUTE_OK);
    assert_false(m.settings->caching_enabled);      /* only GET by default */
    assert_int_equal(match(f, "PATCH", "/prod/x", &m), ROUTE_OK);
    assert_false(m.settings->caching_enabled);      /* ANY serving PATCH */
    assert_int_equal(match(f, "GET", "/prod/x", &m), ROUTE_OK);
    assert_true(m.settings->caching_enabled);       /* ANY serving GET */
    assert_int_equal(m.settings->ttl, 100);
    assert_int_equal(match(f, "GET", "/dev/pets", &m), ROUTE_OK);
    assert_false(m.settings->caching_enabled);      /* stage cache off */
    assert_int_equal(m.settings->ttl, 300);         /* defaults */
    assert_true(m.settings->require_authorization_for_cache_control);
    assert_int_equal(m.settings->unauthorized_strategy, CFG_UNAUTH_SUCCEED_WITH_RESPONSE_HEADER);
    assert_int_equal(m.settings->max_cached_response_bytes, 1048576);
}

static void test_url(void **state)
{
    struct fixture *f = *state;
    struct route_match m;
    struct buf b;
    buf_init(&b);
    assert_int_equal(match(f, "GET", "/prod/pets/42", &m), ROUTE_OK);
    route_build_url(&m, "a=b", 3, &b);
    assert_string_equal(b.data, "http://127.0.0.1:3000/p/42?x=1&a=b");
    buf_reset(&b);
    assert_int_equal(match(f, "GET", "/prod/a/b/c", &m), ROUTE_OK);
    route_build_url(&m, NULL, 0, &b);
    assert_string_equal(b.data, "http://127.0.0.1:3000/a/b/c");
    buf_reset(&b);
    assert_int_equal(match(f, "GET", "/prod/pets", &m), ROUTE_OK);
    route_build_url(&m, "type=x", 6, &b);
    assert_string_equal(b.data, "http://127.0.0.1:3000/petstore/pets?type=x");
    buf_free(&b);
}

struct hdrs {
    const char *name;
    const char *value;
};

static const char *hdr_lookup(void *ctx, const char *name, size_t len, size_t nth,
                              size_t *vlen)
{
    for (struct hdrs *h = ctx; h->name; h++)
        if (strlen(h->name) == len && strncasecmp(h->name, name, len) == 0 && nth-- == 0) {
            *vlen = strlen(h->value);
            return h->value;
        }
    return NULL;
}

/* Builds the key of METHOD PATH?QUERY with the given headers and body. */
static void key_of(struct fixture *f, const char *method, const char *path, const char *query,
                   struct hdrs *h, const char *body, struct buf *out)
{
    struct route_match m;
    assert_int_equal(match(f, method, path, &m), ROUTE_OK);
    struct route_request_view rv = {method, strlen(method), query, query ? strlen(query) : 0,
                                    hdr_lookup, h, body, body ? strlen(body) : 0};
    buf_reset(out);
    route_build_key(&m, &rv, out);
}

static bool same_key(struct buf *a, struct buf *b)
{
    return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

static void test_keys(void **state)
{
    struct fixture *f = *state;
    struct hdrs none[] = {{NULL, NULL}};
    struct hdrs json[] = {{"accept", "application/json"}, {NULL, NULL}};
    struct hdrs xml[] = {{"Accept", "text/xml"}, {NULL, NULL}};
    struct buf a, b;
    buf_init(&a);
    buf_init(&b);
    /* The seeds' example: only `type` is in the key. */
    key_of(f, "GET", "/prod/pets", "type=admin&department=A", none, NULL, &a);
    key_of(f, "GET", "/prod/pets", "type=admin&department=B", none, NULL, &b);
    assert_true(same_key(&a, &b));
    key_of(f, "GET", "/prod/pets", "department=B&type=admin", none, NULL, &b);
    assert_true(same_key(&a, &b));
    key_of(f, "GET", "/prod/pets", "type=user&department=A", none, NULL, &b);
    assert_false(same_key(&a, &b));
    /* Absent differs from empty. */
    key_of(f, "GET", "/prod/pets", NULL, none, NULL, &a);
    key_of(f, "GET", "/prod/pets", "type=", none, NULL, &b);
    assert_false(same_key(&a, &b));
    /* Path always keyed; header parameter keyed. */
    key_of(f, "GET", "/prod/pets/1", NULL, json, NULL, &a);
    key_of(f, "GET", "/prod/pets/2", NULL, json, NULL, &b);
    assert_false(same_key(&a, &b));
    key_of(f, "GET", "/prod/pets/1", NULL, xml, NULL, &b);
    assert_false(same_key(&a, &b));
    key_of(f, "GET", "/prod/pets/1", "zzz=1", json, NULL, &b);
    assert_true(same_key(&a, &b));
    /* Body digest for POST. */
    key_of(f, "POST", "/prod/pets", NULL, none, "{\"a\":1}", &a);
    key_of(f, "POST", "/prod/pets", NULL, none, "{\"a\":2}", &b);
    assert_false(same_key(&a, &b));
    key_of(f, "POST", "/prod/pets", NULL, none, "{\"a\":1}", &b);
    assert_true(same_key(&a, &b));
    /* querystring.*: every parameter, order-insensitive. */
    key_of(f, "GET", "/prod/projects/A/members", "page=1&size=2", none, NULL, &a);
    key_of(f, "GET", "/prod/projects/A/members", "size=2&page=1", none, NULL, &b);
    assert_true(same_key(&a, &b));
    key_of(f, "GET", "/prod/projects/A/members", "page=2&size=2", none, NULL, &b);
    assert_false(same_key(&a, &b));
    /* Found by tests/load/crosstalk.py: three ways two answers shared a key. */
    /* A repeated parameter is not the same as one value with a comma. */
    key_of(f, "GET", "/prod/pets", "type=1&type=2", none, NULL, &a);
    key_of(f, "GET", "/prod/pets", "type=1,2", none, NULL, &b);
    assert_false(same_key(&a, &b));
    /* A percent-encoded name is the name an origin decodes: keyed as "type". */
    key_of(f, "GET", "/prod/pets", "typ%65=admin", none, NULL, &a);
    key_of(f, "GET", "/prod/pets", NULL, none, NULL, &b);
    assert_false(same_key(&a, &b));
    key_of(f, "GET", "/prod/pets", "type=admin", none, NULL, &b);
    assert_true(same_key(&a, &b));
    key_of(f, "GET", "/prod/pets", "typ%6=admin", none, NULL, &a); /* not an escape */
    key_of(f, "GET", "/prod/pets", NULL, none, NULL, &b);
    assert_true(same_key(&a, &b));
    /* Every line of a keyed header counts, not only the first. */
    struct hdrs two[] = {{"Accept", "application/json"}, {"Accept", "text/xml"}, {NULL, NULL}};
    key_of(f, "GET", "/prod/pets/1", NULL, two, NULL, &a);
    key_of(f, "GET", "/prod/pets/1", NULL, json, NULL, &b);
    assert_false(same_key(&a, &b));
    buf_free(&a);
    buf_free(&b);
}

static void test_invalidation_fill(void **state)
{
    struct fixture *f = *state;
    struct route_match m;
    assert_int_equal(match(f, "PUT", "/prod/projects/ABC/members", &m), ROUTE_OK);
    assert_int_equal(m.method->n_invalidates, 1);
    struct buf b;
    buf_init(&b);
    assert_true(route_fill_invalidation(&m.method->invalidates[0], &m, &b));
    assert_string_equal(b.data, "/projects/ABC/members");
    assert_string_equal(m.method->invalidates[0].method, "GET");
    buf_free(&b);
}

static const char mapped_yaml[] =
    "server:\n"
    "  base_path_mappings:\n"
    "    - { base_path: \"\", api: shop, stage: live }\n"
    "    - { base_path: \"v2\", api: shop, stage: beta }\n"
    "    - { base_path: \"\", api: pets, stage: prod, host: pets.example.com }\n"
    "apis:\n"
    "  - id: shop\n"
    "    resources:\n"
    "      /items:\n"
    "        GET: { integration: { type: MOCK, body: shop } }\n"
    "    stages: { live: {}, beta: {} }\n"
    "  - id: pets\n"
    "    resources:\n"
    "      /items:\n"
    "        GET: { integration: { type: MOCK, body: pets } }\n"
    "    stages: { prod: {} }\n";

static int setup_mapped(void **state)
{
    return setup_yaml(state, mapped_yaml);
}

static void test_base_path_mappings(void **state)
{
    struct fixture *f = *state;
    struct route_match m;
    const char *p = "/items";
    assert_int_equal(route_match(f->t, "shop.local", 10, "GET", 3, p, strlen(p), &m), ROUTE_OK);
    assert_string_equal(m.api->cfg->id, "shop");
    assert_string_equal(m.stage->name, "live");
    p = "/v2/items";
    assert_int_equal(route_match(f->t, NULL, 0, "GET", 3, p, strlen(p), &m), ROUTE_OK);
    assert_string_equal(m.stage->name, "beta");
    assert_memory_equal(m.path, "/items", 6);
    p = "/v2x/items"; /* not the v2 mapping: falls to "" -> /v2x/items in live */
    assert_int_equal(route_match(f->t, NULL, 0, "GET", 3, p, strlen(p), &m), ROUTE_NO_RESOURCE);
    p = "/items";
    assert_int_equal(route_match(f->t, "pets.example.com:8080", 21, "GET", 3, p, strlen(p), &m),
                     ROUTE_OK);
    assert_string_equal(m.api->cfg->id, "pets");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_precedence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_url, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalidation_fill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_base_path_mappings, setup_mapped, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
