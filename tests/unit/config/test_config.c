/*
 * Unit tests of src/config/: every validation error with its exact position,
 * multi-error collection, a full valid config read back field by field, cache
 * sizes, defaults, the product.md §2 example, the shipped examples, secrets
 * kept out of messages, and load/release cycles that LSan checks for leaks.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "config/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GATE_TEST_LEN(a) (sizeof(a) / sizeof((a)[0]))

#ifndef GATE_SOURCE_DIR
#define GATE_SOURCE_DIR "."
#endif

/* ================= helpers ================= */

static int load(const char *yaml, struct cfg **c, struct cfg_errors *e)
{
    return cfg_load_string("t.yaml", yaml, strlen(yaml), c, e);
}

static void print_errors(const struct cfg_errors *e)
{
    for (size_t i = 0; i < e->n; i++)
        fprintf(stderr, "    got: %s\n", e->lines[i]);
}

/* Loads `yaml`, expects failure with exactly one error containing `want`. */
static bool expect_one_error(const char *yaml, const char *want)
{
    struct cfg *c = NULL;
    struct cfg_errors e;
    int rc = load(yaml, &c, &e);
    bool ok = rc == -1 && c == NULL && e.n == 1 && strstr(e.lines[0], want) != NULL;
    if (!ok) {
        fprintf(stderr, "--- yaml:\n%s--- want: %s\n", yaml, want);
        print_errors(&e);
    }
    cfg_errors_free(&e);
    cfg_release(&c);
    return ok;
}

static struct cfg *load_ok(const char *yaml)
{
    struct cfg *c = NULL;
    struct cfg_errors e;
    int rc = load(yaml, &c, &e);
    if (rc != 0)
        print_errors(&e);
    assert_int_equal(rc, 0);
    assert_int_equal(e.n, 0);
    assert_non_null(c);
    cfg_errors_free(&e);
    return c;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char data[65536];
    size_t n = fread(data, 1, sizeof(data) - 1, f);
    fclose(f);
    data[n] = '\0';
    return data;
}

#define BAD_POLICY "/tmp/gate_cfg_test_bad.json"

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* A minimal valid api; lines 1-8. */
#define MIN_API                                                                                    \
    "apis:\n"                                                                                      \
    "  - id: a\n"                                                                                  \
    "    resources:\n"                                                                             \
    "      /x:\n"                                                                                  \
    "        GET:\n"                                                                               \
    "          integration: {type: MOCK}\n"                                                        \
    "    stages:\n"                                                                                \
    "      prod: {}\n"

/* An api whose method GET /x/{id} starts at line 5; the method body continues at
 * line 7 (indent 10), then STAGES closes it. */
#define METHOD_HEAD                                                                                \
    "apis:\n"                                                                                      \
    "  - id: a\n"                                                                                  \
    "    resources:\n"                                                                             \
    "      /x/{id}:\n"                                                                             \
    "        GET:\n"                                                                               \
    "          integration: {type: MOCK}\n"
#define STAGES                                                                                     \
    "    stages:\n"                                                                                \
    "      prod: {}\n"

/* Resource template at line 4 col 7, one MOCK GET. */
#define RESOURCE(tmpl)                                                                             \
    "apis:\n"                                                                                      \
    "  - id: a\n"                                                                                  \
    "    resources:\n"                                                                             \
    "      " tmpl ":\n"                                                                            \
    "        GET:\n"                                                                               \
    "          integration: {type: MOCK}\n" STAGES

/* Integration flow mapping at line 6, col 24. */
#define INTEG(tmpl, flow)                                                                          \
    "apis:\n"                                                                                      \
    "  - id: a\n"                                                                                  \
    "    resources:\n"                                                                             \
    "      " tmpl ":\n"                                                                            \
    "        GET:\n"                                                                               \
    "          integration: " flow "\n" STAGES

/* Stage body at line 9 (indent 8) of stage prod of an api with GET /x. */
#define STAGE_HEAD                                                                                 \
    "apis:\n"                                                                                      \
    "  - id: a\n"                                                                                  \
    "    resources:\n"                                                                             \
    "      /x:\n"                                                                                  \
    "        GET:\n"                                                                               \
    "          integration: {type: MOCK}\n"                                                        \
    "    stages:\n"                                                                                \
    "      prod:\n"

/* One method setting whose extra line is line 11 (indent 12). */
#define SETTING_HEAD                                                                               \
    STAGE_HEAD "        method_settings:\n"                                                        \
               "          - resource_path: /x\n"

/* A redis cache_backend: `extra` at line 4 (indent 4, a value at col 10 after "url: "),
 * further lines from line 5. */
#define BACKEND(extra)                                                                             \
    "server:\n"                                                                                    \
    "  cache_backend:\n"                                                                           \
    "    type: redis\n"                                                                            \
    "    " extra "\n" MIN_API

/* MIN_API with a stage whose cache_backend is `value` (line 9). */
#define STAGE_BACKEND(value)                                                                       \
    "apis:\n"                                                                                      \
    "  - id: a\n"                                                                                  \
    "    resources:\n"                                                                             \
    "      /x:\n"                                                                                  \
    "        GET:\n"                                                                               \
    "          integration: {type: MOCK}\n"                                                        \
    "    stages:\n"                                                                                \
    "      prod:\n"                                                                                \
    "        cache_backend: " value "\n"

/* ================= bad configs ================= */

struct bad_case {
    const char *yaml;
    const char *want;
};

static const struct bad_case bad_cases[] = {
    /* YAML itself */
    {"apis: [a, b\n", "t.yaml:2:1: YAML syntax error: did not find expected ',' or ']'"},
    {"apis:\n  - id: a\n   bad\n",
     "t.yaml:3:4: YAML syntax error: did not find expected '-' indicator"},
    {"", "t.yaml:1:1: the file is empty"},
    {MIN_API "---\nfoo: 1\n", "t.yaml:9:1: only one YAML document is allowed"},
    {"apis:\n  - id: &a a\n    resources:\n      /x:\n        GET:\n          integration: {type: "
     "MOCK, body: *a}\n" STAGES,
     "t.yaml:6:43: YAML aliases are not supported"},
    {INTEG("/x", "{type: MOCK, body: \"a\\0b\"}"),
     "t.yaml:6:43: NUL bytes are not allowed in values"},
    /* top level and types */
    {"foo: 1\n" MIN_API, "t.yaml:1:1: unknown key \"foo\" in the top level"},
    {"server: {}\n", "t.yaml:1:1: missing key \"apis\" in the top level"},
    {"apis: {}\n", "t.yaml:1:7: apis: expected list, got a mapping"},
    {"apis: []\n", "t.yaml:1:7: apis: at least one api is required"},
    {"server: 5\n" MIN_API, "t.yaml:1:9: server: expected mapping, got a scalar"},
    {MIN_API "apis: []\n", "t.yaml:9:1: duplicate key \"apis\" (first at 1:1)"},
    /* server */
    {"server:\n  foo: 1\n" MIN_API, "t.yaml:2:3: unknown key \"foo\" in server"},
    {"server:\n  workers: 65\n" MIN_API, "t.yaml:2:12: workers: must be between 1 and 64"},
    {"server:\n  workers: lots\n" MIN_API,
     "t.yaml:2:12: workers: expected integer 1..64 or \"auto\""},
    {"server:\n  workers: \"4\"\n" MIN_API, "t.yaml:2:12: workers: expected integer 1..64 or"},
    {"server:\n  listen: \"127.0.0.1\"\n" MIN_API,
     "t.yaml:2:11: listen: \"127.0.0.1\" is not HOST:PORT"},
    {"server:\n  listen: \"::1:80\"\n" MIN_API,
     "t.yaml:2:11: listen: \"::1:80\" has an IPv6 address without brackets"},
    {"server:\n  listen: [\"127.0.0.1:8080\", \"127.0.0.1:0\"]\n" MIN_API,
     "t.yaml:2:30: listen: \"127.0.0.1:0\" has no port in 1..65535"},
    {"server:\n  listen: \"example.com:80\"\n" MIN_API,
     "t.yaml:2:11: listen: \"example.com:80\" is not a numeric IPv4 or IPv6 address"},
    {"server:\n  listen: [\"[::1]:80\", \"[::1]:80\"]\n" MIN_API,
     "t.yaml:2:24: listen: duplicate address"},
    {"server:\n  admin_listen: \"0.0.0.0:9080\"\n" MIN_API,
     "t.yaml:2:17: admin_listen: 0.0.0.0 is not a loopback address, so admin_token_file is "
     "required"},
    {"server:\n  admin_listen: \"127.0.0.1:8080\"\n" MIN_API,
     "t.yaml:2:17: admin_listen: the same address as a listen address"},
    {"server:\n  admin_token_file: /nonexistent/token\n" MIN_API,
     "t.yaml:2:21: admin_token_file: cannot read \"/nonexistent/token\""},
    {"server:\n  limits:\n    max_headers: 300\n" MIN_API,
     "t.yaml:3:18: max_headers: must be between 1 and 256"},
    {"server:\n  limits: {max_foo: 1}\n" MIN_API,
     "t.yaml:2:12: unknown key \"max_foo\" in server.limits"},
    {"server:\n  limits: {header_timeout_ms: -5}\n" MIN_API,
     "t.yaml:2:31: header_timeout_ms: must be between 100 and 3600000"},
    {"server:\n  limits: {max_body_bytes: 0x10}\n" MIN_API,
     "t.yaml:2:28: max_body_bytes: expected integer"},
    /* server.cache_backend (redis: docs/redis.md) */
    {"server:\n  cache_backend: {type: redis}\n" MIN_API,
     "t.yaml:2:18: missing key \"url\" in server.cache_backend (required with type redis)"},
    {BACKEND("url: \"http://h:1\""),
     "t.yaml:4:10: url: unknown scheme \"http\" (expected redis:// or rediss://)"},
    {BACKEND("url: \"h:6379\""), "t.yaml:4:10: url: not a URL: expected redis://"},
    {BACKEND("url: \"redis://h:70000\""), "t.yaml:4:10: url: the port is out of range 1..65535"},
    {BACKEND("url: \"redis://h:0\""), "t.yaml:4:10: url: the port is out of range 1..65535"},
    {BACKEND("url: \"redis://h:6x\""), "t.yaml:4:10: url: the port is not a number"},
    {BACKEND("url: \"redis://h/x\""), "t.yaml:4:10: url: the db is not a number"},
    {BACKEND("url: \"redis://h/-1\""), "t.yaml:4:10: url: the db is not a number"},
    {BACKEND("url: \"redis://:6379\""), "t.yaml:4:10: url: the host is empty"},
    {BACKEND("url: \"redis://h?db=1\""),
     "t.yaml:4:10: url: query strings and fragments are not supported"},
    {BACKEND("url: \"rediss://h\""),
     "t.yaml:4:10: url: TLS to Redis needs hiredis >= 1.0 (with hiredis_ssl) and this build "
     "links hiredis 0."},
    {BACKEND("url: \"redis://h\"\n    tls: true"),
     "t.yaml:5:10: tls: TLS to Redis needs hiredis >= 1.0"},
    {BACKEND("url: \"redis://h\"\n    tls: yes"), "t.yaml:5:10: tls: expected boolean"},
    {BACKEND("url: \"redis://h\"\n    connect_timeout_ms: 0"),
     "t.yaml:5:25: connect_timeout_ms: must be between 1 and 60000"},
    {BACKEND("url: \"redis://h\"\n    command_timeout_ms: 60001"),
     "t.yaml:5:25: command_timeout_ms: must be between 1 and 60000"},
    {BACKEND("url: \"redis://h\"\n    reconnect_max_ms: 50"),
     "t.yaml:5:23: reconnect_min_ms: 100 is above reconnect_max_ms 50"},
    {BACKEND("url: \"redis://h\"\n    reconnect_min_ms: 900\n    reconnect_max_ms: 800"),
     "t.yaml:5:23: reconnect_min_ms: 900 is above reconnect_max_ms 800"},
    {BACKEND("url: \"redis://:a@h\"\n    password: b"),
     "t.yaml:5:15: password: the url has one already: give it once"},
    {BACKEND("url: \"redis://u:a@h\"\n    username: v"),
     "t.yaml:5:15: username: the url has one already: give it once"},
    {BACKEND("url: \"redis://u@h\""),
     "t.yaml:4:10: username: an ACL user needs a password (in the url, `password`, "
     "`password_env` or `password_file`)"},
    {STAGE_BACKEND("{type: redis}"),
     "t.yaml:9:31: cache_backend: a stage may only set type memory (to stay out of the shared "
     "tier); redis is set once, in server.cache_backend"},
    {STAGE_BACKEND("{type: disk}"),
     "t.yaml:9:31: cache_backend: unknown type \"disk\" (a stage may set memory)"},
    {STAGE_BACKEND("{type: memory, url: \"redis://h\"}"), "t.yaml:9:39: unknown key \"url\" in cache_backend"},
    {BACKEND("url: \"redis://:a@h\"\n    password_env: GATE_TEST_REDIS_PW"),
     "t.yaml:5:19: password_env: a password is given already: give it once"},
    {BACKEND("url: \"redis://h\"\n    password_env: GATE_TEST_REDIS_PW\n"
             "    password_file: /nonexistent"),
     "t.yaml:6:20: exactly one of password_env or password_file is required"},
    {BACKEND("url: \"redis://h\"\n    password_env: GATE_TEST_UNSET_VARIABLE"),
     "t.yaml:5:19: password_env: environment variable \"GATE_TEST_UNSET_VARIABLE\" is not set"},
    {BACKEND("url: \"redis://h\"\n    password: \"\""), "t.yaml:5:15: password: is empty"},
    {BACKEND("url: \"redis://h\"\n    key_prefix: "
             "\"0123456789012345678901234567890123456789012345678901234567890123456789012345678"
             "901234567890123456789012345678901234567890123456789\""),
     "t.yaml:5:17: key_prefix: longer than 128 bytes"},
    {BACKEND("url: \"redis://h\"\n    colour: blue"),
     "t.yaml:5:5: unknown key \"colour\" in server.cache_backend"},
    {"server:\n  cache_backend: {type: memory, url: \"redis://h\"}\n" MIN_API,
     "t.yaml:2:38: url: only used with cache_backend type redis"},
    {"server:\n  cache_backend: {type: disk}\n" MIN_API,
     "t.yaml:2:25: cache_backend: unknown type \"disk\""},
    {"server:\n  base_path_mappings:\n    - {api: b, stage: prod}\n" MIN_API,
     "t.yaml:3:13: base_path_mappings: unknown api \"b\""},
    {"server:\n  base_path_mappings:\n    - {api: a, stage: dev}\n" MIN_API,
     "t.yaml:3:23: base_path_mappings: api \"a\" has no stage \"dev\""},
    {"server:\n  base_path_mappings:\n    - {api: a, stage: prod}\n    - {base_path: /, api: "
     "a, stage: prod}\n" MIN_API,
     "t.yaml:4:19: base_path_mappings: duplicate base_path \"\""},
    {"server:\n  base_path_mappings:\n    - {base_path: a/b, api: a, stage: prod}\n" MIN_API,
     "t.yaml:3:19: base_path: must be \"\" or one path segment"},
    {"server:\n  base_path_mappings:\n    - {api: a}\n" MIN_API,
     "t.yaml:3:7: missing key \"stage\" in server.base_path_mappings"},
    /* identities and api keys */
    {"identities:\n  - name: ops\n    access_key_id: AK1\n    secret_access_key_env: "
     "GATE_TEST_UNSET_VAR\n" MIN_API,
     "t.yaml:4:28: secret_access_key_env: environment variable \"GATE_TEST_UNSET_VAR\" is not "
     "set"},
    {"identities:\n  - name: ops\n    access_key_id: AK1\n" MIN_API,
     "t.yaml:2:5: exactly one of secret_access_key_env or secret_access_key_file is required"},
    {"identities:\n  - name: ops\n    access_key_id: AK1\n    secret_access_key_env: "
     "GATE_TEST_SECRET\n    secret_access_key_file: /etc/hostname\n" MIN_API,
     "t.yaml:5:29: exactly one of secret_access_key_env or secret_access_key_file"},
    {"identities:\n  - name: ops\n    access_key_id: AK1\n    secret_access_key_file: "
     "/nonexistent/s\n" MIN_API,
     "t.yaml:4:29: secret_access_key_file: cannot read \"/nonexistent/s\": No such file"},
    {"identities:\n  - name: ops\n    access_key_id: AK/1\n    secret_access_key_env: "
     "GATE_TEST_SECRET\n" MIN_API,
     "t.yaml:3:20: access_key_id: only letters and digits are allowed"},
    {"identities:\n  - {name: a, access_key_id: K1, secret_access_key_env: GATE_TEST_SECRET}\n"
     "  - {name: b, access_key_id: K1, secret_access_key_env: GATE_TEST_SECRET}\n" MIN_API,
     "t.yaml:3:30: duplicate access_key_id \"K1\""},
    {"identities:\n  - name: ops\n    access_key_id: AK1\n    secret_access_key_env: "
     "GATE_TEST_SECRET\n    policy: [a]\n" MIN_API,
     "t.yaml:5:13: policy: expected mapping"},
    {"identities:\n  - name: ops\n    access_key_id: AK1\n    secret_access_key_env: "
     "GATE_TEST_SECRET\n    policy_file: /nonexistent/p.json\n" MIN_API,
     "t.yaml:5:18: policy_file: cannot read \"/nonexistent/p.json\": No such file"},
    {"identities:\n  - name: ops\n    access_key_id: AK1\n    secret_access_key_file: "
     "/dev/null\n" MIN_API,
     "t.yaml:4:29: secret_access_key_file: cannot read \"/dev/null\": not a regular file"},
    {"identities:\n  - name: ops\n    access_key_id: AK1\n    secret_access_key_env: "
     "GATE_TEST_SECRET\n    policy_file: /tmp/gate_cfg_test_bad.json\n" MIN_API,
     "t.yaml:5:18: policy_file: \"/tmp/gate_cfg_test_bad.json\": line 1 column 26: duplicate "
     "object key"},
    {INTEG("/x", "{type: HTTP_PROXY, uri: \"http://h/a\\tb\"}"),
     "t.yaml:6:48: uri: \"http://h/a\\x09b\" contains spaces or control characters"},
    {"identities:\n  - name: ops\n    access_key_id: AK1\n    secret_access_key_env: "
     "GATE_TEST_SECRET\n    policy: {Version: \"2012-10-17\", Version: x}\n" MIN_API,
     "t.yaml:5:37: duplicate key \"Version\" (first at 5:14)"},
    {"identities:\n  - name: ops\n    access_key_id: AK1\n    secret_access_key_env: "
     "GATE_TEST_SECRET\n    accesskey: AK1\n" MIN_API,
     "t.yaml:5:5: unknown key "
     "\"accesskey\" in identities"},
    {"api_keys:\n  - name: k\n" MIN_API,
     "t.yaml:2:5: exactly one of value_env or value_file is required"},
    {"api_keys:\n  - name: k\n    value_env: ~\n" MIN_API,
     "t.yaml:3:16: value_env: expected string, got null"},
    /* apis */
    {"apis:\n  - id: a\n    resources: {}\n    stages: {}\n  - id: a\n    resources: {}\n"
     "    stages: {}\n",
     "t.yaml:5:9: duplicate api id \"a\""},
    {"apis:\n  - id: a.b\n    resources: {}\n    stages: {}\n",
     "t.yaml:2:9: id: \"a.b\" must be 1..128 letters, digits, '-' or '_'"},
    {"apis:\n  - id: a\n    stages: {}\n", "t.yaml:2:5: missing key \"resources\" in apis"},
    {"apis:\n  - id: a\n    resources: {}\n    stages: {}\n    region: x\n",
     "t.yaml:5:5: unknown key \"region\" in apis"},
    /* resource templates */
    {RESOURCE("/x/"), "t.yaml:4:7: resource \"/x/\" must not end with '/'"},
    {RESOURCE("x"), "t.yaml:4:7: resource \"x\" must start with '/'"},
    {RESOURCE("/a//b"), "t.yaml:4:7: resource \"/a//b\" has an empty path segment"},
    {RESOURCE("/{p+}/b"),
     "t.yaml:4:7: resource \"/{p+}/b\" has a greedy {name+} parameter that is not the last"},
    {RESOURCE("/{a}/{a}"), "t.yaml:4:7: resource \"/{a}/{a}\" has a duplicate path parameter"},
    {RESOURCE("/{a-b}"), "t.yaml:4:7: resource \"/{a-b}\" has a parameter name that is not an "
                         "identifier"},
    {RESOURCE("/a{b}"), "t.yaml:4:7: resource \"/a{b}\" has a segment with braces"},
    {RESOURCE("/a b"), "t.yaml:4:7: resource \"/a b\" has a character not allowed"},
    {"apis:\n  - id: a\n    resources:\n      /x/{id}: {GET: {integration: {type: MOCK}}}\n"
     "      /x/{other}: {GET: {integration: {type: MOCK}}}\n" STAGES,
     "t.yaml:5:7: duplicate resource \"/x/{other}\" (matches the same requests as \"/x/{id}\" "
     "at 4:7)"},
    {"apis:\n  - id: a\n    resources:\n      /x: {GET: {integration: {type: MOCK}}}\n"
     "      /x: {PUT: {integration: {type: MOCK}}}\n" STAGES,
     "t.yaml:5:7: duplicate resource \"/x\" (first at 4:7)"},
    {"apis:\n  - id: a\n    resources:\n      /x:\n        GET: {integration: {type: MOCK}}\n"
     "        get: {integration: {type: MOCK}}\n" STAGES,
     "t.yaml:6:9: duplicate method \"get\" (first at 5:9)"},
    {"apis:\n  - id: a\n    resources:\n      /x:\n        FETCH: {integration: {type: "
     "MOCK}}\n" STAGES,
     "t.yaml:5:9: unknown HTTP method \"FETCH\""},
    /* methods */
    {"apis:\n  - id: a\n    resources:\n      /x:\n        GET: {}\n" STAGES,
     "t.yaml:5:14: missing key \"integration\" in method"},
    {METHOD_HEAD "          api_key_required: yes\n" STAGES,
     "t.yaml:7:29: api_key_required: expected boolean (true or false)"},
    {METHOD_HEAD "          cache: true\n" STAGES, "t.yaml:7:11: unknown key \"cache\" in method"},
    {METHOD_HEAD "          cache_key_parameters: [\"method.request.path.nope\"]\n" STAGES,
     "t.yaml:7:34: cache_key_parameters: \"method.request.path.nope\" names a path parameter "
     "the resource does not have"},
    {METHOD_HEAD "          cache_key_parameters: [\"foo\"]\n" STAGES,
     "t.yaml:7:34: cache_key_parameters: \"foo\" is not method.request.querystring.NAME"},
    {METHOD_HEAD "          cache_key_parameters: [\"method.request.header.a b\"]\n" STAGES,
     "t.yaml:7:34: cache_key_parameters: \"method.request.header.a b\" has an invalid header"},
    {METHOD_HEAD
     "          cache_key_parameters: [method.request.body, method.request.body]\n" STAGES,
     "t.yaml:7:55: cache_key_parameters: duplicate entry \"method.request.body\""},
    {METHOD_HEAD "          invalidates: [\"GET /nope\"]\n" STAGES,
     "t.yaml:7:25: invalidates: \"GET /nope\" names a path that is not a resource of this api"},
    {METHOD_HEAD "          invalidates: [\"POST /x/{id}\"]\n" STAGES,
     "t.yaml:7:25: invalidates: \"POST /x/{id}\" names a method the resource does not have"},
    {METHOD_HEAD "          invalidates: [\"GET\"]\n" STAGES,
     "t.yaml:7:25: invalidates: \"GET\" is not \"METHOD /path\""},
    {"apis:\n  - id: a\n    resources:\n      /x/{id}:\n        PUT:\n          integration: "
     "{type: MOCK}\n          invalidates: [\"GET /y/{other}\"]\n      /y/{other}:\n        "
     "GET: {integration: {type: MOCK}}\n" STAGES,
     "t.yaml:7:25: invalidates: \"GET /y/{other}\" uses a path parameter that the writing "
     "resource does not have"},
    /* integrations */
    {INTEG("/x/{id}", "{type: HTTP_PROXY, uri: \"http://h/{other}\"}"),
     "t.yaml:6:48: uri: \"http://h/{other}\" uses {other}, which is not a path parameter of "
     "\"/x/{id}\""},
    {INTEG("/x", "{type: HTTP_PROXY, uri: \"ftp://h/x\"}"),
     "t.yaml:6:48: uri: \"ftp://h/x\" must start with http:// or https://"},
    {INTEG("/x", "{type: HTTP_PROXY, uri: \"http:///x\"}"),
     "t.yaml:6:48: uri: \"http:///x\" has no host"},
    {INTEG("/{proxy+}", "{type: HTTP_PROXY, uri: \"http://h/{proxy+}\"}"),
     "t.yaml:6:48: uri: \"http://h/{proxy+}\" writes a greedy parameter with '+'"},
    {INTEG("/{h}", "{type: HTTP_PROXY, uri: \"http://{h}/\"}"),
     "t.yaml:6:48: uri: \"http://{h}/\" may use parameters only in its path"},
    {INTEG("/x", "{type: HTTP_PROXY, uri: \"http://h/{a\"}"),
     "t.yaml:6:48: uri: \"http://h/{a\" has an unbalanced '{'"},
    {INTEG("/x", "{type: HTTP_PROXY}"),
     "t.yaml:6:24: missing key \"uri\" in integration (required by HTTP_PROXY)"},
    {INTEG("/x", "{type: HTTP_PROXY, uri: \"http://h/\", timeout_ms: 10}"),
     "t.yaml:6:73: timeout_ms: must be between 50 and 300000"},
    {INTEG("/x", "{type: MOCK, status: 700}"), "t.yaml:6:45: status: must be between 100 and 599"},
    {INTEG("/x", "{type: MOCK, uri: \"http://h/\"}"),
     "t.yaml:6:37: integration: uri is not used with type MOCK"},
    {INTEG("/x", "{type: AWS}"),
     "t.yaml:6:31: integration: type \"AWS\" is not supported (expected HTTP_PROXY or MOCK)"},
    {INTEG("/x", "{uri: \"http://h/\"}"), "t.yaml:6:24: missing key \"type\" in integration"},
    {INTEG("/x", "{type: MOCK, headers: {a b: c}}"), "t.yaml:6:47: headers: invalid header name"},
    {INTEG("/x", "{type: MOCK, headers: {X-A: \"1\", x-a: \"2\"}}"),
     "t.yaml:6:57: duplicate header \"x-a\" (first at 6:47)"},
    {INTEG("/x", "{type: MOCK, headers: {X-A: \"a\\r\\nSet-Cookie: x\"}}"),
     "t.yaml:6:52: X-A: header values must not contain line breaks"},
    /* stages */
    {"apis:\n  - id: a\n    resources: {}\n    stages:\n      prod: {}\n      prod: {}\n",
     "t.yaml:6:7: duplicate stage \"prod\" (first at 5:7)"},
    {"apis:\n  - id: a\n    resources: {}\n    stages:\n      pr/od: {}\n",
     "t.yaml:5:7: stage name \"pr/od\" must be 1..128 letters"},
    {STAGE_HEAD "        cache_cluster_size: \"2\"\n", "t.yaml:9:29: cache_cluster_size: unknown "
                                                       "cache size \"2\""},
    {STAGE_HEAD "        cache_cluster_size: 1KiB\n",
     "t.yaml:9:29: cache_cluster_size: \"1KiB\" is below the minimum of 64KiB"},
    {STAGE_HEAD "        cache_cluster_size: 64 Mib\n", "t.yaml:9:29: cache_cluster_size: "
                                                        "unknown cache size \"64 Mib\""},
    {STAGE_HEAD "        cache_cluster_enabled: \"true\"\n",
     "t.yaml:9:32: cache_cluster_enabled: expected boolean"},
    {STAGE_HEAD "        cache_cluster_enabled: True\n",
     "t.yaml:9:32: cache_cluster_enabled: expected boolean"},
    {STAGE_HEAD "        variables: {}\n", "t.yaml:9:9: unknown key \"variables\" in stage"},
    {STAGE_HEAD "        method_settings: {}\n",
     "t.yaml:9:26: method_settings: expected list, got a mapping"},
    {SETTING_HEAD "            http_method: GET\n            cache_ttl_in_seconds: 3601\n",
     "t.yaml:12:35: cache_ttl_in_seconds: must be between 0 and 3600"},
    {SETTING_HEAD "            http_method: GET\n            min_ttl: -1\n",
     "t.yaml:12:22: min_ttl: must be between 0 and 3600"},
    {SETTING_HEAD "            http_method: GET\n            max_ttl: 4000\n",
     "t.yaml:12:22: max_ttl: must be between 0 and 3600"},
    {SETTING_HEAD "            http_method: GET\n            default_ttl: 99999\n",
     "t.yaml:12:26: default_ttl: must be between 0 and 3600"},
    {SETTING_HEAD
     "            http_method: GET\n            min_ttl: 60\n            max_ttl: 30\n",
     "t.yaml:12:22: min_ttl: greater than max_ttl"},
    {SETTING_HEAD "            http_method: POST\n",
     "t.yaml:11:26: http_method: resource \"/x\" has no POST method"},
    {SETTING_HEAD "            http_method: FETCH\n",
     "t.yaml:11:26: http_method: unknown HTTP method \"FETCH\""},
    {STAGE_HEAD "        method_settings:\n          - resource_path: /nope\n            "
                "http_method: GET\n",
     "t.yaml:10:28: resource_path: \"/nope\" is neither \"/*\" nor a resource of this api"},
    {SETTING_HEAD "            http_method: GET\n            unauthorized_cache_control_header_"
                  "strategy: FAIL\n",
     "t.yaml:12:57: unauthorized_cache_control_header_strategy: unknown value \"FAIL\""},
    {SETTING_HEAD "            http_method: GET\n            caching: true\n",
     "t.yaml:12:13: unknown key \"caching\" in method_settings"},
    {SETTING_HEAD "            http_method: GET\n          - resource_path: /x\n"
                  "            http_method: get\n",
     "t.yaml:12:13: method_settings: duplicate setting for GET /x"},
    {SETTING_HEAD, "t.yaml:10:13: missing key \"http_method\" in method_settings"},
    {SETTING_HEAD "            http_method: GET\n            max_cached_response_bytes: 0\n",
     "t.yaml:12:40: max_cached_response_bytes: must be between 1 and 67108864"},
};

static void test_bad_configs(void **state)
{
    setenv("GATE_TEST_SECRET", "not-a-real-secret", 1);
    unsetenv("GATE_TEST_UNSET_VAR");
    write_file(BAD_POLICY, "{\"Version\": \"1\", \"Version\": \"2\"}\n");
    int failed = 0;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++)
        failed += !expect_one_error(bad_cases[i].yaml, bad_cases[i].want);
    unlink(BAD_POLICY);
    assert_int_equal(failed, 0);
}

static void test_policy_rejected_as_iam_would(void **state)
{
    setenv("GATE_TEST_SECRET", "x", 1);
    const char *yaml = "identities:\n  - name: a\n    access_key_id: K\n"
                       "    secret_access_key_env: GATE_TEST_SECRET\n"
                       "    policy: {Statement: [{Effect: Maybe, Action: \"*\", Resource: \"*\"}]}\n"
                       MIN_API;
    struct cfg *c = NULL;
    struct cfg_errors errs = {0};
    assert_int_equal(cfg_load_string("t.yaml", yaml, strlen(yaml), &c, &errs), -1);
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.lines[0],
                        "t.yaml:5:13: policy: Statement[0].Effect must be Allow or Deny");
    cfg_errors_free(&errs);
}

/* The admin CLI reads the config for admin_listen only: unset secrets do not
 * stop it, and no secret is read. */
static void test_load_without_secrets(void **state)
{
    const char *path = "/tmp/gate_cfg_test_nosecrets.yaml";
    write_file(path, "identities:\n  - {name: a, access_key_id: K, secret_access_key_env: "
                     "GATE_TEST_UNSET_SECRET}\n" MIN_API);
    unsetenv("GATE_TEST_UNSET_SECRET");
    struct cfg *c = NULL;
    struct cfg_errors errs = {0};
    assert_int_equal(cfg_load(path, &c, &errs), -1); /* serving needs it */
    cfg_errors_free(&errs);
    assert_int_equal(cfg_load_flags(path, CFG_LOAD_NO_SECRETS, &c, &errs), 0);
    assert_string_equal(c->identities[0].secret_access_key, "");
    cfg_release(&c);
    unlink(path);
}

static void test_policy_file(void **state)
{
    const char *path = "/tmp/gate_cfg_test_good.json";
    write_file(path, "{\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"Deny\", "
                     "\"Action\": \"*\", \"Resource\": \"*\"}]}");
    setenv("GATE_TEST_SECRET", "x", 1);
    struct cfg *c =
        load_ok("identities:\n  - {name: a, access_key_id: K, secret_access_key_env: "
                "GATE_TEST_SECRET, policy_file: /tmp/gate_cfg_test_good.json}\n" MIN_API);
    unlink(path);
    json_t *st = json_array_get(json_object_get(c->identities[0].policy, "Statement"), 0);
    assert_string_equal(json_string_value(json_object_get(st, "Effect")), "Deny");
    assert_int_equal(c->identities[0].policy_line, 2);
    assert_int_equal(c->identities[0].policy_col, 87);
    cfg_release(&c);
}

static void test_deep_nesting(void **state)
{
    char yaml[512];
    size_t n = 0;
    n += (size_t)snprintf(yaml, sizeof(yaml), "apis: ");
    for (int i = 0; i < 100; i++)
        yaml[n++] = '[';
    yaml[n] = '\0';
    struct cfg *c = NULL;
    struct cfg_errors e;
    assert_int_equal(load(yaml, &c, &e), -1);
    assert_int_equal(e.n, 1);
    assert_non_null(strstr(e.lines[0], "nesting deeper than 64 levels"));
    cfg_errors_free(&e);
}

static void test_multi_errors(void **state)
{
    const char *yaml = "server:\n"
                       "  workers: 0\n"
                       "  bogus: 1\n" MIN_API "    more: 1\n";
    struct cfg *c = NULL;
    struct cfg_errors e;
    assert_int_equal(load(yaml, &c, &e), -1);
    assert_null(c);
    assert_int_equal(e.n, 3);
    /* Checked apis first, then server; reported in file order. */
    assert_string_equal(e.lines[0], "t.yaml:2:12: workers: must be between 1 and 64");
    assert_string_equal(e.lines[1], "t.yaml:3:3: unknown key \"bogus\" in server");
    assert_string_equal(e.lines[2], "t.yaml:12:5: unknown key \"more\" in apis");
    cfg_errors_free(&e);
    assert_int_equal(e.n, 0);
    assert_null(e.lines);
}

static void test_missing_file(void **state)
{
    struct cfg *c = (struct cfg *)1;
    struct cfg_errors e;
    assert_int_equal(cfg_load("/nonexistent/gatecache.yaml", &c, &e), -1);
    assert_null(c);
    assert_int_equal(e.n, 1);
    assert_string_equal(e.lines[0],
                        "/nonexistent/gatecache.yaml:0:0: cannot read: No such file or directory");
    cfg_errors_free(&e);
    /* errs may be NULL when the caller only wants the verdict. */
    assert_int_equal(cfg_load("/nonexistent/gatecache.yaml", &c, NULL), -1);
    assert_int_equal(cfg_load_string("t", "foo: 1\n", 7, &c, NULL), -1);
}

/* ================= valid configs ================= */

static void test_defaults(void **state)
{
    struct cfg *c = load_ok(MIN_API);
    assert_string_equal(c->path, "t.yaml");
    assert_int_equal(c->server.n_listen, 1);
    assert_string_equal(c->server.listen[0].host, "127.0.0.1");
    assert_int_equal(c->server.listen[0].port, 8080);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    assert_int_equal(c->server.workers, cpus > 64 ? 64 : cpus);
    assert_null(c->server.admin_listen.host);
    assert_null(c->server.admin_token_file);
    assert_string_equal(c->server.region, "us-east-1");
    assert_string_equal(c->server.account_id, "123456789012");
    assert_int_equal(c->server.limits.max_header_bytes, 16384);
    assert_int_equal(c->server.limits.max_headers, 100);
    assert_int_equal(c->server.limits.max_url_bytes, 8192);
    assert_int_equal(c->server.limits.max_body_bytes, 10485760);
    assert_int_equal(c->server.limits.header_timeout_ms, 10000);
    assert_int_equal(c->server.limits.body_timeout_ms, 30000);
    assert_int_equal(c->server.limits.idle_timeout_ms, 60000);
    assert_int_equal(c->server.limits.max_connections, 10000);
    assert_int_equal(c->server.limits.drain_timeout_ms, 10000);
    assert_int_equal(c->n_identities, 0);
    assert_int_equal(c->n_api_keys, 0);
    assert_int_equal(c->n_apis, 1);
    const struct cfg_api *a = cfg_find_api(c, "a");
    assert_non_null(a);
    assert_null(cfg_find_api(c, "b"));
    const struct cfg_stage *s = cfg_find_stage(a, "prod");
    assert_non_null(s);
    assert_null(cfg_find_stage(a, "dev"));
    assert_false(s->cache_cluster_enabled);
    assert_string_equal(s->cache_cluster_size, "0.5");
    assert_int_equal(s->cache_capacity_bytes, 536870912);
    assert_string_equal(s->distribution_id, "a-prod");
    assert_int_equal(s->n_method_settings, 0);
    const struct cfg_method *m = &a->resources[0].methods[0];
    assert_string_equal(m->http_method, "GET");
    assert_int_equal(m->line, 5);
    assert_false(m->api_key_required);
    assert_int_equal(m->integration.type, CFG_INTEGRATION_MOCK);
    assert_int_equal(m->integration.mock_status, 200);
    assert_string_equal(m->integration.mock_body, "");
    assert_int_equal(m->integration.mock_body_len, 0);
    assert_int_equal(m->integration.timeout_ms, CFG_TIMEOUT_MS_DEFAULT);
    cfg_release(&c);
    assert_null(c);
    cfg_release(&c); /* NULL is a no-op */
}

static void test_null_sections_are_empty(void **state)
{
    struct cfg *c = load_ok("server:\nidentities:\napi_keys: ~\n" MIN_API);
    assert_int_equal(c->n_identities, 0);
    assert_int_equal(c->server.n_listen, 1);
    cfg_release(&c);
}

static const char *const full_yaml =
    "server:\n"
    "  listen: [\"0.0.0.0:80\", \"[::1]:8080\", \"localhost:81\"]\n"
    "  workers: 3\n"
    "  admin_listen: \"[::1]:9080\"\n"
    "  region: eu-west-1\n"
    "  account_id: 000000000042\n"
    "  limits: {max_headers: 64, max_body_bytes: 1024, drain_timeout_ms: 0}\n"
    "  cache_backend: {type: memory}\n"
    "  base_path_mappings:\n"
    "    - {base_path: \"\", api: pets, stage: prod}\n"
    "    - {base_path: /v1, api: pets, stage: dev, host: API.example.test}\n"
    "identities:\n"
    "  - name: ops\n"
    "    access_key_id: AKIAOPS\n"
    "    secret_access_key_env: GATE_TEST_SECRET\n"
    "    policy:\n"
    "      Version: \"2012-10-17\"\n"
    "      Statement:\n"
    "        - Effect: Allow\n"
    "          Action: [\"execute-api:InvalidateCache\"]\n"
    "          Resource: \"*\"\n"
    "          Condition: {Bool: {\"aws:SecureTransport\": true}, NumericLessThan: {n: 5}}\n"
    "  - name: nopolicy\n"
    "    access_key_id: AKIANONE\n"
    "    secret_access_key_file: SECRET_FILE\n"
    "api_keys:\n"
    "  - {name: partner, value_env: GATE_TEST_SECRET}\n"
    "apis:\n"
    "  - id: pets\n"
    "    resources:\n"
    "      /:\n"
    "        GET: {integration: {type: MOCK, status: 204}}\n"
    "      /pets/{id}:\n"
    "        get:\n"
    "          api_key_required: true\n"
    "          integration: {type: HTTP_PROXY, uri: \"https://origin:8443/p/{id}?x=1\", "
    "timeout_ms: 300000}\n"
    "          cache_key_parameters: [method.request.path.id, method.request.querystring.*,\n"
    "                                 method.request.header.Accept, method.request.body,\n"
    "                                 method.request.querystring.type]\n"
    "        put:\n"
    "          integration: {type: HTTP_PROXY, uri: \"http://origin/p/{id}\"}\n"
    "          invalidates: [\"get /pets/{id}\", \"GET /\"]\n"
    "      /{proxy+}:\n"
    "        ANY:\n"
    "          integration: {type: HTTP_PROXY, uri: \"http://origin/{proxy}\"}\n"
    "      /health:\n"
    "        GET:\n"
    "          integration:\n"
    "            type: MOCK\n"
    "            status: 503\n"
    "            headers: {Content-Type: application/json, X-Two: \"2\"}\n"
    "            body: '{\"ok\":false}'\n"
    "    stages:\n"
    "      prod:\n"
    "        cache_cluster_enabled: true\n"
    "        cache_cluster_size: 6.1\n"
    "        distribution_id: EDFDVBD6EXAMPLE\n"
    "        method_settings:\n"
    "          - resource_path: /*\n"
    "            http_method: \"*\"\n"
    "            caching_enabled: true\n"
    "            cache_ttl_in_seconds: 0\n"
    "            cache_data_encrypted: true\n"
    "            require_authorization_for_cache_control: false\n"
    "            unauthorized_cache_control_header_strategy: FAIL_WITH_403\n"
    "            honor_origin_cache_control: true\n"
    "            min_ttl: 1\n"
    "            default_ttl: 2\n"
    "            max_ttl: 3600\n"
    "            stale_if_error_seconds: 86400\n"
    "            cache_authorized_requests: true\n"
    "            max_cached_response_bytes: 67108864\n"
    "          - {resource_path: \"/pets/{id}\", http_method: put}\n"
    "      dev:\n"
    "        cache_cluster_size: \"64 MiB\"\n";

static void test_full_config(void **state)
{
    char secret_path[] = "/tmp/gate_cfg_secretXXXXXX";
    int fd = mkstemp(secret_path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "file-secret\n", 12), 12);
    close(fd);
    setenv("GATE_TEST_SECRET", "env-secret", 1);
    char yaml[8192];
    const char *mark = strstr(full_yaml, "SECRET_FILE");
    snprintf(yaml, sizeof(yaml), "%.*s%s%s", (int)(mark - full_yaml), full_yaml, secret_path,
             mark + strlen("SECRET_FILE"));
    struct cfg *c = load_ok(yaml);
    unlink(secret_path);

    const struct cfg_server *sv = &c->server;
    assert_int_equal(sv->n_listen, 3);
    assert_string_equal(sv->listen[0].host, "0.0.0.0");
    assert_int_equal(sv->listen[0].port, 80);
    assert_string_equal(sv->listen[1].host, "::1");
    assert_int_equal(sv->listen[1].port, 8080);
    assert_string_equal(sv->listen[2].host, "127.0.0.1");
    assert_int_equal(sv->workers, 3);
    assert_string_equal(sv->admin_listen.host, "::1");
    assert_int_equal(sv->admin_listen.port, 9080);
    assert_string_equal(sv->region, "eu-west-1");
    assert_string_equal(sv->account_id, "000000000042");
    assert_int_equal(sv->limits.max_headers, 64);
    assert_int_equal(sv->limits.max_body_bytes, 1024);
    assert_int_equal(sv->limits.drain_timeout_ms, 0);
    assert_int_equal(sv->limits.max_url_bytes, 8192);
    assert_int_equal(sv->n_mappings, 2);
    assert_string_equal(sv->mappings[0].base_path, "");
    assert_null(sv->mappings[0].host);
    assert_string_equal(sv->mappings[1].base_path, "v1");
    assert_string_equal(sv->mappings[1].stage, "dev");
    assert_string_equal(sv->mappings[1].host, "API.example.test");

    assert_int_equal(c->n_identities, 2);
    assert_string_equal(c->identities[0].access_key_id, "AKIAOPS");
    assert_string_equal(c->identities[0].secret_access_key, "env-secret");
    assert_string_equal(c->identities[1].secret_access_key, "file-secret");
    json_t *p = c->identities[0].policy;
    assert_int_equal(c->identities[0].policy_line, 17);
    assert_int_equal(c->identities[0].policy_col, 7);
    assert_string_equal(json_string_value(json_object_get(p, "Version")), "2012-10-17");
    json_t *st = json_array_get(json_object_get(p, "Statement"), 0);
    assert_string_equal(json_string_value(json_object_get(st, "Resource")), "*");
    assert_string_equal(json_string_value(json_array_get(json_object_get(st, "Action"), 0)),
                        "execute-api:InvalidateCache");
    json_t *cond = json_object_get(st, "Condition");
    assert_true(
        json_is_true(json_object_get(json_object_get(cond, "Bool"), "aws:SecureTransport")));
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(cond, "NumericLessThan"), "n")), 5);
    /* No policy: an empty one, which allows nothing. */
    json_t *none = c->identities[1].policy;
    assert_int_equal(json_array_size(json_object_get(none, "Statement")), 0);
    assert_int_equal(c->n_api_keys, 1);
    assert_string_equal(c->api_keys[0].value, "env-secret");

    const struct cfg_api *a = cfg_find_api(c, "pets");
    assert_int_equal(a->n_resources, 4);
    assert_string_equal(a->resources[0].path, "/");
    assert_int_equal(a->resources[0].methods[0].integration.mock_status, 204);
    const struct cfg_resource *r = &a->resources[1];
    assert_string_equal(r->path, "/pets/{id}");
    assert_int_equal(r->n_methods, 2);
    const struct cfg_method *get = &r->methods[0];
    assert_string_equal(get->http_method, "GET");
    assert_true(get->api_key_required);
    assert_int_equal(get->integration.type, CFG_INTEGRATION_HTTP_PROXY);
    assert_string_equal(get->integration.uri, "https://origin:8443/p/{id}?x=1");
    assert_int_equal(get->integration.timeout_ms, 300000);
    assert_int_equal(get->n_cache_key_parameters, 5);
    assert_string_equal(get->cache_key_parameters[1], "method.request.querystring.*");
    assert_string_equal(get->cache_key_parameters[4], "method.request.querystring.type");
    const struct cfg_method *put = &r->methods[1];
    assert_string_equal(put->http_method, "PUT");
    assert_int_equal(put->n_invalidates, 2);
    assert_string_equal(put->invalidates[0], "GET /pets/{id}");
    assert_string_equal(put->invalidates[1], "GET /");
    assert_string_equal(a->resources[2].methods[0].http_method, "ANY");
    const struct cfg_integration *mock = &a->resources[3].methods[0].integration;
    assert_int_equal(mock->type, CFG_INTEGRATION_MOCK);
    assert_int_equal(mock->mock_status, 503);
    assert_int_equal(mock->n_mock_headers, 2);
    assert_string_equal(mock->mock_headers[0].name, "Content-Type");
    assert_string_equal(mock->mock_headers[0].value, "application/json");
    assert_string_equal(mock->mock_headers[1].value, "2");
    assert_string_equal(mock->mock_body, "{\"ok\":false}");
    assert_int_equal(mock->mock_body_len, 12);

    assert_int_equal(a->n_stages, 2);
    const struct cfg_stage *prod = cfg_find_stage(a, "prod");
    assert_true(prod->cache_cluster_enabled);
    assert_string_equal(prod->cache_cluster_size, "6.1");
    assert_int_equal(prod->cache_capacity_bytes, 61ULL * 1073741824 / 10);
    assert_string_equal(prod->distribution_id, "EDFDVBD6EXAMPLE");
    assert_int_equal(prod->n_method_settings, 2);
    const struct cfg_method_setting *ms = &prod->method_settings[0];
    assert_string_equal(ms->resource_path, "/*");
    assert_string_equal(ms->http_method, "*");
    assert_true(ms->has_caching_enabled && ms->caching_enabled);
    assert_true(ms->has_cache_ttl_in_seconds);
    assert_int_equal(ms->cache_ttl_in_seconds, 0);
    assert_true(ms->has_cache_data_encrypted && ms->cache_data_encrypted);
    assert_true(ms->has_require_authorization_for_cache_control);
    assert_false(ms->require_authorization_for_cache_control);
    assert_true(ms->has_unauthorized_cache_control_header_strategy);
    assert_int_equal(ms->unauthorized_cache_control_header_strategy, CFG_UNAUTH_FAIL_WITH_403);
    assert_true(ms->has_honor_origin_cache_control && ms->honor_origin_cache_control);
    assert_int_equal(ms->min_ttl, 1);
    assert_int_equal(ms->default_ttl, 2);
    assert_int_equal(ms->max_ttl, 3600);
    assert_int_equal(ms->stale_if_error_seconds, 86400);
    assert_true(ms->has_cache_authorized_requests && ms->cache_authorized_requests);
    assert_int_equal(ms->max_cached_response_bytes, 67108864);
    const struct cfg_method_setting *ms2 = &prod->method_settings[1];
    assert_string_equal(ms2->http_method, "PUT");
    assert_false(ms2->has_caching_enabled);
    assert_false(ms2->has_cache_ttl_in_seconds);
    assert_false(ms2->has_unauthorized_cache_control_header_strategy);
    const struct cfg_stage *dev = cfg_find_stage(a, "dev");
    assert_false(dev->cache_cluster_enabled);
    assert_int_equal(dev->cache_capacity_bytes, 64ULL << 20);
    assert_string_equal(dev->distribution_id, "pets-dev");

    struct cfg *ref = cfg_ref(c);
    assert_ptr_equal(ref, c);
    cfg_release(&c);
    assert_string_equal(ref->server.region, "eu-west-1"); /* still alive */
    cfg_release(&ref);
}

/* ================= cache sizes ================= */

static void test_cache_sizes(void **state)
{
    static const struct {
        const char *s;
        uint64_t bytes;
    } ok[] = {
        {"0.5", 536870912ULL},    {"1.6", 1717986918ULL},   {"6.1", 6549825126ULL},
        {"13.5", 14495514624ULL}, {"28.4", 30494267801ULL}, {"58.2", 62491774156ULL},
        {"118", 118ULL << 30},    {"237", 237ULL << 30},    {"64MiB", 64ULL << 20},
        {"64 MiB", 64ULL << 20},  {"1GB", 1000000000ULL},   {"1GiB", 1ULL << 30},
        {"512KiB", 512ULL << 10}, {"65536B", 65536},        {"1.5MB", 1500000},
        {"0.5GiB", 536870912ULL}, {"100KB", 100000},        {"2MB", 2000000},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        uint64_t b = 0;
        assert_true(cfg_parse_cache_size(ok[i].s, &b));
        assert_int_equal(b, ok[i].bytes);
    }
    static const char *const bad[] = {"",
                                      "2",
                                      "0.50",
                                      "64",
                                      "64mib",
                                      "MiB",
                                      "1.GiB",
                                      "-1GiB",
                                      "1 GiB ",
                                      "1TB",
                                      "1e3MB",
                                      "0x10MB",
                                      " 1MB",
                                      "64  MiB",
                                      "99999999999999999999GB",
                                      "18446744073709551615GiB"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t b = 0;
        assert_false(cfg_parse_cache_size(bad[i], &b));
    }
    assert_string_equal(cfg_unauth_strategy_name(CFG_UNAUTH_SUCCEED_WITHOUT_RESPONSE_HEADER),
                        "SUCCEED_WITHOUT_RESPONSE_HEADER");
}

/* ================= product example and shipped examples ================= */

static const char *const product_example =
    "server:\n"
    "  listen: \"127.0.0.1:8080\"          # data plane; several allowed\n"
    "  workers: auto                     # event-loop threads; auto = cores\n"
    "  admin_listen: \"127.0.0.1:9080\"    # admin API, metrics, health\n"
    "  region: us-east-1                 # used in ARNs and SigV4 scope\n"
    "  account_id: \"123456789012\"\n"
    "\n"
    "identities:\n"
    "  - name: ops\n"
    "    access_key_id: AKIAEXAMPLEOPS\n"
    "    secret_access_key_env: OPS_SECRET   # or secret_access_key_file\n"
    "    policy:                             # an IAM policy document, as in AWS\n"
    "      Version: \"2012-10-17\"\n"
    "      Statement:\n"
    "        - Effect: Allow\n"
    "          Action: [\"execute-api:InvalidateCache\"]\n"
    "          Resource: [\"arn:aws:execute-api:us-east-1:123456789012:petstore/prod/GET/pets*\"]\n"
    "\n"
    "api_keys:\n"
    "  - name: partner-a\n"
    "    value_env: PARTNER_A_KEY\n"
    "\n"
    "apis:\n"
    "  - id: petstore\n"
    "    resources:\n"
    "      /pets:\n"
    "        GET:\n"
    "          api_key_required: false\n"
    "          integration: { type: HTTP_PROXY, uri: \"http://127.0.0.1:3000/petstore/pets\", "
    "timeout_ms: 29000 }\n"
    "          cache_key_parameters: [\"method.request.querystring.type\"]\n"
    "      /pets/{id}:\n"
    "        GET:\n"
    "          integration: { type: HTTP_PROXY, uri: \"http://127.0.0.1:3000/petstore/pets/{id}\" "
    "}\n"
    "      /projects/{id}/members:\n"
    "        GET:\n"
    "          integration: { type: HTTP_PROXY, uri: "
    "\"http://127.0.0.1:3000/projects/{id}/members\" "
    "}\n"
    "        PUT:\n"
    "          integration: { type: HTTP_PROXY, uri: "
    "\"http://127.0.0.1:3000/projects/{id}/members\" "
    "}\n"
    "          invalidates: [\"GET /projects/{id}/members\"]   # beyond AWS\n"
    "      /{proxy+}:\n"
    "        ANY:\n"
    "          integration: { type: HTTP_PROXY, uri: \"http://127.0.0.1:3000/{proxy}\" }\n"
    "      /health:\n"
    "        GET:\n"
    "          integration: { type: MOCK, status: 200, headers: {content-type: application/json}, "
    "body: '{\"ok\":true}' }\n"
    "    stages:\n"
    "      prod:\n"
    "        cache_cluster_enabled: true\n"
    "        cache_cluster_size: \"0.5\"        # GB\n"
    "                                         # or any size with a unit: \"64MiB\"\n"
    "        method_settings:\n"
    "          - resource_path: \"/*\"          # \"/*\" + \"*\" = every method of the stage\n"
    "            http_method: \"*\"\n"
    "            caching_enabled: true\n"
    "            cache_ttl_in_seconds: 300\n"
    "            cache_data_encrypted: false\n"
    "            require_authorization_for_cache_control: true\n"
    "            unauthorized_cache_control_header_strategy: SUCCEED_WITH_RESPONSE_HEADER\n"
    "          - resource_path: \"/pets\"\n"
    "            http_method: GET\n"
    "            cache_ttl_in_seconds: 60\n"
    "      dev:\n"
    "        cache_cluster_enabled: false\n";

static void test_product_example(void **state)
{
    setenv("OPS_SECRET", "ops-secret-value", 1);
    setenv("PARTNER_A_KEY", "partner-a-key-value-0123456789", 1);
    struct cfg *c = load_ok(product_example);
    assert_int_equal(c->n_apis, 1);
    const struct cfg_api *a = cfg_find_api(c, "petstore");
    assert_int_equal(a->n_resources, 5);
    assert_int_equal(a->n_stages, 2);
    assert_string_equal(c->identities[0].secret_access_key, "ops-secret-value");
    assert_string_equal(c->api_keys[0].value, "partner-a-key-value-0123456789");
    const struct cfg_stage *prod = cfg_find_stage(a, "prod");
    assert_int_equal(prod->method_settings[0].unauthorized_cache_control_header_strategy,
                     CFG_UNAUTH_SUCCEED_WITH_RESPONSE_HEADER);
    assert_int_equal(prod->method_settings[1].cache_ttl_in_seconds, 60);
    cfg_release(&c);

    unsetenv("OPS_SECRET");
    struct cfg_errors e;
    assert_int_equal(load(product_example, &c, &e), -1);
    assert_int_equal(e.n, 1);
    assert_string_equal(e.lines[0], "t.yaml:11:28: secret_access_key_env: environment variable "
                                    "\"OPS_SECRET\" is not set");
    cfg_errors_free(&e);
}

static void test_demo_example(void **state)
{
    struct cfg *c = NULL;
    struct cfg_errors e;
    int rc = cfg_load(GATE_SOURCE_DIR "/examples/gatecache.yaml", &c, &e);
    print_errors(&e);
    assert_int_equal(rc, 0);
    cfg_errors_free(&e);
    assert_string_equal(c->server.listen[0].host, "127.0.0.1");
    assert_int_equal(c->server.listen[0].port, 8080);
    assert_int_equal(c->server.admin_listen.port, 9080);
    assert_int_equal(c->server.n_mappings, 0);
    const struct cfg_api *a = cfg_find_api(c, "demo");
    assert_non_null(a);
    assert_int_equal(a->n_resources, 4);
    assert_string_equal(a->resources[1].path, "/items/{id}");
    assert_string_equal(a->resources[1].methods[0].integration.uri,
                        "http://127.0.0.1:8081/items/{id}");
    const struct cfg_stage *s = cfg_find_stage(a, "prod");
    assert_true(s->cache_cluster_enabled);
    assert_int_equal(s->cache_capacity_bytes, 536870912);
    assert_int_equal(s->method_settings[0].cache_ttl_in_seconds, 300);
    assert_false(s->method_settings[0].has_caching_enabled);
    cfg_release(&c);

    setenv("OPS_SECRET", "ops-secret-value", 1);
    setenv("PARTNER_A_KEY", "partner-a-key-value-0123456789", 1);
    rc = cfg_load(GATE_SOURCE_DIR "/examples/full.yaml", &c, &e);
    print_errors(&e);
    assert_int_equal(rc, 0);
    cfg_errors_free(&e);
    cfg_release(&c);
}

/* ================= secrets ================= */

static void test_secrets_not_in_errors(void **state)
{
    const char *secret = "TOPSECRET-do-not-print";
    setenv("GATE_TEST_SECRET", secret, 1);
    char path[] = "/tmp/gate_cfg_secretXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, secret, strlen(secret)), (ssize_t)strlen(secret));
    close(fd);
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "identities:\n"
             "  - {name: a, access_key_id: K1, secret_access_key_env: GATE_TEST_SECRET,\n"
             "     secret_access_key_file: %s}\n"
             "  - {name: a, access_key_id: K2, secret_access_key_file: %s, bogus: 1}\n"
             "api_keys:\n"
             "  - {name: k, value_env: GATE_TEST_SECRET, value_file: %s}\n"
             "  - {name: k, value_file: %s}\n" MIN_API "    oops: 1\n",
             path, path, path, path);
    struct cfg *c = NULL;
    struct cfg_errors e;
    assert_int_equal(load(yaml, &c, &e), -1);
    assert_true(e.n >= 4);
    for (size_t i = 0; i < e.n; i++)
        assert_null(strstr(e.lines[i], secret));
    cfg_errors_free(&e);
    unlink(path);
}

/* ================= cache_backend ================= */

static void test_cache_backend_memory_default(void **state)
{
    struct cfg *c = load_ok(MIN_API);
    const struct cfg_cache_backend *b = &c->server.cache_backend;
    assert_int_equal(b->type, CFG_BACKEND_MEMORY);
    assert_null(b->host);
    assert_null(b->password);
    cfg_release(&c);
    c = load_ok("server:\n  cache_backend: {type: memory}\n" MIN_API);
    assert_int_equal(c->server.cache_backend.type, CFG_BACKEND_MEMORY);
    cfg_release(&c);
}

static void test_cache_backend_redis(void **state)
{
    struct cfg *c = load_ok(BACKEND("url: \"redis://10.0.0.7\""));
    const struct cfg_cache_backend *b = &c->server.cache_backend;
    assert_int_equal(b->type, CFG_BACKEND_REDIS);
    assert_string_equal(b->host, "10.0.0.7");
    assert_int_equal(b->port, 6379);
    assert_int_equal(b->db, 0);
    assert_null(b->username);
    assert_null(b->password);
    assert_int_equal(b->connect_timeout_ms, 200);
    assert_int_equal(b->command_timeout_ms, 50);
    assert_int_equal(b->reconnect_min_ms, 100);
    assert_int_equal(b->reconnect_max_ms, 5000);
    assert_string_equal(b->key_prefix, "gc:");
    cfg_release(&c);

    c = load_ok(BACKEND("url: \"REDIS://ops:p%40ss%2Fw:rd@[::1]:6380/3\"\n"
                        "    connect_timeout_ms: 1\n"
                        "    command_timeout_ms: 60000\n"
                        "    reconnect_min_ms: 7\n"
                        "    reconnect_max_ms: 7\n"
                        "    key_prefix: \"\"\n"
                        "    tls: false"));
    b = &c->server.cache_backend;
    assert_string_equal(b->host, "::1");
    assert_int_equal(b->port, 6380);
    assert_int_equal(b->db, 3);
    assert_string_equal(b->username, "ops");
    assert_string_equal(b->password, "p@ss/w:rd");
    assert_int_equal(b->connect_timeout_ms, 1);
    assert_int_equal(b->command_timeout_ms, 60000);
    assert_int_equal(b->reconnect_min_ms, 7);
    assert_int_equal(b->reconnect_max_ms, 7);
    assert_string_equal(b->key_prefix, "");

    /* A clone owns copies: releasing the original leaves it whole. */
    struct cfg *d = cfg_clone(c);
    const struct cfg_cache_backend *db = &d->server.cache_backend;
    assert_ptr_not_equal(db->host, b->host);
    assert_ptr_not_equal(db->password, b->password);
    cfg_release(&c);
    assert_string_equal(db->host, "::1");
    assert_string_equal(db->username, "ops");
    assert_string_equal(db->password, "p@ss/w:rd");
    assert_string_equal(db->key_prefix, "");
    assert_int_equal(db->db, 3);
    cfg_release(&d);

    /* The password and user may also be keys of their own. */
    c = load_ok(BACKEND("url: \"redis://cache.internal:7000\"\n"
                        "    username: gate\n"
                        "    password: \"s3cret\""));
    b = &c->server.cache_backend;
    assert_string_equal(b->host, "cache.internal");
    assert_int_equal(b->port, 7000);
    assert_string_equal(b->username, "gate");
    assert_string_equal(b->password, "s3cret");
    cfg_release(&c);

    /* ... or, as every other secret, come from the environment. */

    setenv("GATE_TEST_REDIS_PW", "from-env", 1);
    c = load_ok(BACKEND("url: \"redis://h\"\n    username: gate\n"
                        "    password_env: GATE_TEST_REDIS_PW"));
    assert_string_equal(c->server.cache_backend.password, "from-env");
    cfg_release(&c);
    unsetenv("GATE_TEST_REDIS_PW");

    /* A stage may stay out of the shared tier. */
    c = load_ok(STAGE_BACKEND("{type: memory}"));
    assert_true(c->apis[0].stages[0].in_process_only);
    struct cfg *d2 = cfg_clone(c);
    assert_true(d2->apis[0].stages[0].in_process_only);
    cfg_release(&d2);
    cfg_release(&c);
    c = load_ok(MIN_API);
    assert_false(c->apis[0].stages[0].in_process_only);
    cfg_release(&c);
}

/* A password in a url never shows in a message, even when a '/' it should
 * have escaped makes the rest of it look like a host, port or db. */
static void test_cache_backend_password_not_in_errors(void **state)
{
    const char *yamls[] = {
        BACKEND("url: \"redis://u:HUNTER2x@h:99999\""),
        BACKEND("url: \"redis://u:HUNTER2x/y@h\""),
        BACKEND("url: \"redis://u:HUNTER2x:1@h:x\""),
        BACKEND("url: \"redis://u:HUNTER2x@h\"\n    password: HUNTER2x"),
        BACKEND("url: \"redis://h\"\n    password: [HUNTER2x]"),
        "server:\n  cache_backend: {type: memory, password: HUNTER2x}\n" MIN_API,
    };
    for (size_t i = 0; i < GATE_TEST_LEN(yamls); i++) {
        struct cfg *c = NULL;
        struct cfg_errors e;
        assert_int_equal(load(yamls[i], &c, &e), -1);
        assert_true(e.n >= 1);
        for (size_t j = 0; j < e.n; j++) {
            if (strstr(e.lines[j], "HUNTER2"))
                fprintf(stderr, "leaked: %s\n", e.lines[j]);
            assert_null(strstr(e.lines[j], "HUNTER2"));
        }
        cfg_errors_free(&e);
    }
}

/* ================= memory ================= */

/* Every case loaded and released again: LSan (ASan builds) reports any leak at exit,
 * on both the success and the failure paths. */
static void test_no_leaks(void **state)
{
    setenv("GATE_TEST_SECRET", "x", 1);
    setenv("OPS_SECRET", "y", 1);
    setenv("PARTNER_A_KEY", "z", 1);
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
            struct cfg *c = NULL;
            struct cfg_errors e;
            load(bad_cases[i].yaml, &c, &e);
            cfg_errors_free(&e);
            cfg_release(&c);
        }
        struct cfg *c = load_ok(product_example);
        struct cfg *c2 = cfg_ref(c);
        cfg_release(&c);
        cfg_release(&c2);
    }
    char *demo = slurp(GATE_SOURCE_DIR "/examples/gatecache.yaml");
    struct cfg *c = load_ok(demo);
    cfg_release(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_configs),
        cmocka_unit_test(test_policy_file),
        cmocka_unit_test(test_policy_rejected_as_iam_would),
        cmocka_unit_test(test_load_without_secrets),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_multi_errors),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_null_sections_are_empty),
        cmocka_unit_test(test_full_config),
        cmocka_unit_test(test_cache_sizes),
        cmocka_unit_test(test_product_example),
        cmocka_unit_test(test_demo_example),
        cmocka_unit_test(test_secrets_not_in_errors),
        cmocka_unit_test(test_cache_backend_memory_default),
        cmocka_unit_test(test_cache_backend_redis),
        cmocka_unit_test(test_cache_backend_password_not_in_errors),
        cmocka_unit_test(test_no_leaks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
