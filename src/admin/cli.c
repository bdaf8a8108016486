/*
 * admin/cli.c — the admin client verbs: `gatecache flush | invalidate |
 * status | stats`, one blocking libcurl call each to the admin API.
 *
 * Exit codes: 0 success (the answer is printed on stdout), 1 the call failed
 * (HTTP error: its message on stderr; connection failure; unreadable token
 * or config), 2 usage error. The token is never printed.
 *
 * Where things come from, first match wins:
 *   admin URL  --admin URL, then -c FILE's admin_listen, then http://127.0.0.1:9080
 *   token      --token, --token-file, $GATECACHE_ADMIN_TOKEN, -c FILE's admin_token_file
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_int.h"

#define DEFAULT_ADMIN "http://127.0.0.1:9080"
#define CLI_TIMEOUT_S 30L

/* Verbs, once (STYLE §8): name, what it needs, usage line. */
#define ADMIN_VERBS(X)                                                                             \
    X(FLUSH, "flush", true, "flush --api A --stage S            delete every entry of a stage")    \
    X(INVALIDATE, "invalidate", true, "invalidate --api A --stage S [--path P]... [--tag T]...")   \
    X(STATUS, "status", true, "status --api A --stage S           a stage cache's status")         \
    X(STATS, "stats", false, "stats                              Prometheus metrics")

enum verb {
#define VERB_ENUM(id, name, needs_stage, usage) VERB_##id,
    ADMIN_VERBS(VERB_ENUM)
#undef VERB_ENUM
        VERB__COUNT
};

static const struct {
    const char *name;
    bool needs_stage;
    const char *usage;
} verbs[VERB__COUNT] = {
#define VERB_ROW(id, name, needs_stage, usage) {name, needs_stage, usage},
    ADMIN_VERBS(VERB_ROW)
#undef VERB_ROW
};

struct cli_opts {
    enum verb verb;
    const char *admin;
    const char *token;
    const char *token_file;
    const char *config;
    const char *api;
    const char *stage;
    const char **paths; /* owned array; strings borrowed from argv */
    size_t n_paths;
    const char **tags; /* owned array; strings borrowed from argv */
    size_t n_tags;
};

bool admin_cli_is_verb(const char *verb)
{
    for (size_t i = 0; i < VERB__COUNT; i++)
        if (strcmp(verb, verbs[i].name) == 0)
            return true;
    return false;
}

static void usage(FILE *f)
{
    for (size_t i = 0; i < VERB__COUNT; i++)
        fprintf(f, "%s gatecache %s\n", i ? "      " : "usage:", verbs[i].usage);
    fputs("options: --admin URL (default " DEFAULT_ADMIN " or -c FILE's admin_listen)\n"
          "         --token TOKEN | --token-file FILE | env GATECACHE_ADMIN_TOKEN\n"
          "         -c FILE (admin_listen and admin_token_file of a config)\n",
          f);
}

/* ================= arguments ================= */

static const char **push(const char **arr, size_t *n, const char *v)
{
    arr = xrealloc(arr, (*n + 1) * sizeof(*arr));
    arr[(*n)++] = v;
    return arr;
}

/* "--name VALUE" or "--name=VALUE"; advances *i past what it used. */
static bool opt_value(int argc, char **argv, int *i, const char *name, const char **out)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return false;
    if (a[n] == '=') {
        *out = a + n + 1;
        return true;
    }
    if (a[n] != '\0')
        return false;
    if (*i + 1 >= argc) {
        *out = NULL; /* reported by the caller as a usage error */
        return true;
    }
    *out = argv[++*i];
    return true;
}

/* Returns 0 or 2 (usage error, already reported). */
static int parse_args(int argc, char **argv, struct cli_opts *o)
{
    for (size_t v = 0; v < VERB__COUNT; v++)
        if (strcmp(argv[1], verbs[v].name) == 0)
            o->verb = (enum verb)v;
    for (int i = 2; i < argc; i++) {
        const char *v = NULL;
        const char *arg = argv[i];
        if (opt_value(argc, argv, &i, "--admin", &v))
            o->admin = v;
        else if (opt_value(argc, argv, &i, "--token-file", &v))
            o->token_file = v;
        else if (opt_value(argc, argv, &i, "--token", &v))
            o->token = v;
        else if (opt_value(argc, argv, &i, "-c", &v) || opt_value(argc, argv, &i, "--config", &v))
            o->config = v;
        else if (opt_value(argc, argv, &i, "--api", &v))
            o->api = v;
        else if (opt_value(argc, argv, &i, "--stage", &v))
            o->stage = v;
        else if (o->verb == VERB_INVALIDATE && opt_value(argc, argv, &i, "--path", &v))
            o->paths = v ? push(o->paths, &o->n_paths, v) : o->paths;
        else if (o->verb == VERB_INVALIDATE && opt_value(argc, argv, &i, "--tag", &v))
            o->tags = v ? push(o->tags, &o->n_tags, v) : o->tags;
        else {
            fprintf(stderr, "gatecache %s: unknown argument \"%s\"\n", argv[1], arg);
            return 2;
        }
        if (!v) {
            fprintf(stderr, "gatecache %s: %s needs a value\n", argv[1], arg);
            return 2;
        }
    }
    if (verbs[o->verb].needs_stage && (!o->api || !o->stage || !*o->api || !*o->stage)) {
        fprintf(stderr, "gatecache %s: --api and --stage are required\n", argv[1]);
        return 2;
    }
    if (o->verb == VERB_INVALIDATE && o->n_paths + o->n_tags == 0) {
        fprintf(stderr, "gatecache invalidate: give at least one --path or --tag\n");
        return 2;
    }
    return 0;
}

/* ================= where to call, with what ================= */

struct target {
    struct buf base; /* the admin URL without a trailing '/' */
    char *token;     /* owned secret or NULL */
    size_t token_len;
};

static void wipe_free(char *s, size_t len)
{
    if (!s)
        return;
    volatile char *p = s;
    for (size_t i = 0; i < len; i++)
        p[i] = 0;
    free(s);
}

static int token_from_file(const char *verb, const char *path, struct target *t)
{
    const char *err;
    if (admin__read_token(path, &t->token, &t->token_len, &err) != 0) {
        fprintf(stderr, "gatecache %s: %s: %s\n", verb, path, err);
        return 1;
    }
    return 0;
}

/* Reads -c FILE: its admin listener (unless --admin) and its token file
 * (unless a token came another way). Returns 0 or 1. */
static int from_config(const struct cli_opts *o, const char *verb, struct target *t)
{
    struct cfg *cfg = NULL;
    struct cfg_errors errs = {0};
    if (cfg_load_flags(o->config, CFG_LOAD_NO_SECRETS, &cfg, &errs) != 0) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.lines[i]);
        cfg_errors_free(&errs);
        return 1;
    }
    int rc = 0;
    const struct cfg_listen *l = &cfg->server.admin_listen;
    if (!o->admin && !l->host) {
        fprintf(stderr, "gatecache %s: %s has no server.admin_listen\n", verb, o->config);
        rc = 1;
    } else if (!o->admin) {
        bool v6 = strchr(l->host, ':') != NULL;
        buf_appendf(&t->base, v6 ? "http://[%s]:%d" : "http://%s:%d", l->host, l->port);
    }
    if (rc == 0 && !t->token && cfg->server.admin_token_file)
        rc = token_from_file(verb, cfg->server.admin_token_file, t);
    cfg_release(&cfg);
    return rc;
}

static int resolve_target(const struct cli_opts *o, const char *verb, struct target *t)
{
    buf_init(&t->base);
    const char *env = getenv("GATECACHE_ADMIN_TOKEN");
    if (o->token) {
        t->token_len = strlen(o->token);
        t->token = xstrndup(o->token, t->token_len);
    } else if (o->token_file) {
        if (token_from_file(verb, o->token_file, t) != 0)
            return 1;
    } else if (env && *env) {
        t->token_len = strlen(env);
        t->token = xstrndup(env, t->token_len);
    }
    if (o->admin)
        buf_append_str(&t->base, o->admin);
    if (o->config && from_config(o, verb, t) != 0)
        return 1;
    if (t->base.len == 0)
        buf_append_str(&t->base, DEFAULT_ADMIN);
    while (t->base.len > 0 && t->base.data[t->base.len - 1] == '/')
        t->base.data[--t->base.len] = '\0';
    return 0;
}

/* ================= the call ================= */

static size_t on_body(char *p, size_t size, size_t n, void *userdata)
{
    buf_append(userdata, p, size * n);
    return size * n;
}

/* Appends "/v1/apis/{api}/stages/{stage}/" with both names escaped. */
static void stage_url(CURL *h, struct buf *url, const struct cli_opts *o)
{
    char *api = curl_easy_escape(h, o->api, 0);
    char *stage = curl_easy_escape(h, o->stage, 0);
    buf_appendf(url, "/v1/apis/%s/stages/%s/", api ? api : "", stage ? stage : "");
    curl_free(api);
    curl_free(stage);
}

static char *invalidation_body(const struct cli_opts *o)
{
    json_t *doc = json_object();
    json_t *paths = json_array();
    json_t *tags = json_array();
    for (size_t i = 0; i < o->n_paths; i++)
        json_array_append_new(paths, json_string(o->paths[i]));
    for (size_t i = 0; i < o->n_tags; i++)
        json_array_append_new(tags, json_string(o->tags[i]));
    if (o->n_paths)
        json_object_set(doc, "paths", paths);
    if (o->n_tags)
        json_object_set(doc, "tags", tags);
    json_decref(paths);
    json_decref(tags);
    char *s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return s; /* NULL only for a string that is not UTF-8: reported by the caller */
}

/* Prints the outcome; returns the exit code. */
static int report(const char *verb, long status, const struct buf *body)
{
    if (status >= 200 && status < 300) {
        if (body->len)
            fwrite(body->data, 1, body->len, stdout);
        if (body->len && body->data[body->len - 1] != '\n')
            fputc('\n', stdout);
        return 0;
    }
    const char *msg = NULL;
    json_t *doc = body->len ? json_loadb(body->data, body->len, 0, NULL) : NULL;
    if (doc && json_is_string(json_object_get(doc, "message")))
        msg = json_string_value(json_object_get(doc, "message"));
    fprintf(stderr, "gatecache %s: HTTP %ld: %s\n", verb, status, msg ? msg : "no message");
    if (doc)
        json_decref(doc);
    return 1;
}

static int call(const struct cli_opts *o, const char *verb, const struct target *t)
{
    CURL *h = curl_easy_init();
    if (!h) {
        fprintf(stderr, "gatecache %s: cannot initialise libcurl\n", verb);
        return 1;
    }
    struct buf url, auth, body;
    buf_init(&url);
    buf_init(&auth);
    buf_init(&body);
    struct curl_slist *hdrs = NULL;
    char *payload = NULL;
    int rc = 1;

    buf_append(&url, t->base.data, t->base.len);
    if (o->verb == VERB_STATS) {
        buf_append_str(&url, "/metrics");
    } else {
        stage_url(h, &url, o);
        buf_append_str(&url, o->verb == VERB_INVALIDATE ? "invalidations" : "cache");
    }
    if (o->verb == VERB_FLUSH)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
    if (o->verb == VERB_INVALIDATE) {
        payload = invalidation_body(o);
        if (!payload) {
            fprintf(stderr, "gatecache %s: paths and tags must be UTF-8\n", verb);
            rc = 2;
            goto out;
        }
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    }
    if (t->token) {
        buf_append_str(&auth, "Authorization: Bearer ");
        buf_append(&auth, t->token, t->token_len);
        hdrs = curl_slist_append(hdrs, auth.data);
    }
    curl_easy_setopt(h, CURLOPT_URL, url.data);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, CLI_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    /* The admin API is reached directly: an http_proxy meant for the
     * outside world must not see the bearer token. */
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    CURLcode cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        fprintf(stderr, "gatecache %s: %s: %s\n", verb, t->base.data, curl_easy_strerror(cc));
        goto out;
    }
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    rc = report(verb, status, &body);
out:
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    free(payload);
    if (auth.data)
        memset(auth.data, 0, auth.len);
    buf_free(&auth);
    buf_free(&url);
    buf_free(&body);
    return rc;
}

int admin_cli_main(int argc, char **argv)
{
    GATE_ASSERT(argc >= 2 && admin_cli_is_verb(argv[1]));
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
    }
    struct cli_opts o = {0};
    struct target t = {0};
    int rc = parse_args(argc, argv, &o);
    if (rc != 0) {
        usage(stderr);
        goto out;
    }
    rc = resolve_target(&o, argv[1], &t);
    if (rc != 0)
        goto out;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = call(&o, argv[1], &t);
    curl_global_cleanup();
out:
    wipe_free(t.token, t.token_len);
    buf_free(&t.base);
    free(o.paths);
    free(o.tags);
    return rc;
}
