/*
 * patch — API Gateway UpdateStage patch operations applied to a private copy
 * of a config snapshot (cfg_clone), with the same rules as the YAML: TTL
 * 0..CFG_TTL_MAX, cache sizes through cfg_parse_cache_size and
 * CFG_CACHE_SIZE_MIN, strategy names through cfg_unauth_strategy_name,
 * method settings only for resources and methods the api has.
 *
 * Patch paths are parsed from the right (aws-wire.md §2.2): the last two
 * segments are {group}/{setting}, the one before is the HTTP method, the rest
 * is the resource, with '/' escaped as "~1" (the AWS CLI's spelling) or raw
 * (Terraform's). A setting keeps the key as the patch spelled it, for GetStage.
 * Messages quote user text with control bytes replaced and long text cut.
 */
#include "config/config_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUOTE_MAX 96

/* ================= messages ================= */

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

/* User text safe to put in a message: printable ASCII, at most QUOTE_MAX bytes. */
static const char *safe(const char *s, char out[QUOTE_MAX + 4])
{
    size_t n = 0;
    if (!s)
        s = "";
    for (; s[n] && n < QUOTE_MAX; n++)
        out[n] = (s[n] < 0x20 || s[n] == 0x7f) ? '?' : s[n];
    if (s[n]) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}

static int bad_path(char *err, size_t errlen, const char *op, const char *path)
{
    char qo[QUOTE_MAX + 4], qp[QUOTE_MAX + 4];
    return fail(err, errlen, "Invalid patch path '%s' specified for op '%s'.", safe(path, qp),
                safe(op, qo));
}

static int bad_value(char *err, size_t errlen, const char *path, const char *value,
                     const char *expected)
{
    char qp[QUOTE_MAX + 4], qv[QUOTE_MAX + 4];
    if (!value)
        return fail(err, errlen, "Invalid null or empty value in patch operation for path '%s'",
                    safe(path, qp));
    return fail(err, errlen, "Invalid value '%s' for path '%s': expected %s", safe(value, qv),
                safe(path, qp), expected);
}

/* ================= values ================= */

static bool parse_bool(const char *v, bool *out)
{
    if (v && strcmp(v, "true") == 0)
        *out = true;
    else if (v && strcmp(v, "false") == 0)
        *out = false;
    else
        return false;
    return true;
}

/* An optionally negative decimal integer in [lo, hi]. */
static bool parse_int(const char *v, long lo, long hi, int *out)
{
    if (!v || !*v)
        return false;
    const char *p = v + (*v == '-');
    uint64_t u;
    if (!str_to_u64(p, strlen(p), &u) || u > (uint64_t)GATE_MAX(-lo, hi))
        return false;
    long n = *v == '-' ? -(long)u : (long)u;
    if (n < lo || n > hi)
        return false;
    *out = (int)n;
    return true;
}

static bool parse_rate(const char *v, double *out)
{
    if (!v || !*v || strchr(v, ' '))
        return false;
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (*end || errno || !isfinite(d) || d < -1.0)
        return false;
    *out = d;
    return true;
}

/* ================= targets ================= */

static struct cfg_stage *find_stage(struct cfg *c, const char *api, const char *stage,
                                    struct cfg_api **api_out)
{
    for (size_t a = 0; a < c->n_apis; a++) {
        if (strcmp(c->apis[a].id, api) != 0)
            continue;
        *api_out = &c->apis[a];
        for (size_t s = 0; s < c->apis[a].n_stages; s++)
            if (strcmp(c->apis[a].stages[s].name, stage) == 0)
                return &c->apis[a].stages[s];
        return NULL;
    }
    return NULL;
}

/* A method-setting target: the key as spelled, the resource path and method as config has
 * them ("/" "*" or a template; "*" or an upper-case method). All owned by the caller. */
struct target {
    char *key;
    char *resource;
    char *method;
};

static void target_free(struct target *t)
{
    free(t->key);
    free(t->resource);
    free(t->method);
    memset(t, 0, sizeof(*t));
}

/* "~1pets~1{id}" or "pets/{id}" -> "/pets/{id}", "*" -> "/" "*"; NULL on a bad escape. */
static char *unescape_resource(const char *s, size_t len)
{
    struct buf b;
    buf_init(&b);
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '~') {
            buf_append_char(&b, s[i]);
            continue;
        }
        if (i + 1 < len && (s[i + 1] == '0' || s[i + 1] == '1')) {
            buf_append_char(&b, s[i + 1] == '1' ? '/' : '~');
            i++;
            continue;
        }
        buf_free(&b);
        return NULL; /* RFC 6901 §3: '~' only as ~0 or ~1 */
    }
    buf_append_char(&b, '\0');
    b.len--;
    if (b.data[0] == '/')
        return buf_steal(&b, NULL);
    struct buf r;
    buf_init(&r);
    buf_append_char(&r, '/');
    buf_append(&r, b.data, b.len);
    buf_free(&b);
    return buf_steal(&r, NULL);
}

/* Parses the key of `path` (which ends in `tail` more segments) and checks it names
 * "*" or a resource of the api, and "*" or a method of that resource. */
static int parse_target(const struct cfg_api *api, const char *path, size_t tail,
                        struct target *t, char *err, size_t errlen, const char *op)
{
    memset(t, 0, sizeof(*t));
    size_t end = strlen(path);
    for (size_t k = 0; k < tail; k++) {
        while (end > 0 && path[end - 1] != '/')
            end--;
        if (end == 0)
            return bad_path(err, errlen, op, path);
        end--;
    }
    /* path[0] is '/', the key is path[1..end). */
    if (end < 2)
        return bad_path(err, errlen, op, path);
    const char *key = path + 1;
    size_t key_len = end - 1;
    const char *slash = NULL;
    for (size_t i = key_len; i > 0; i--)
        if (key[i - 1] == '/') {
            slash = key + i - 1;
            break;
        }
    if (!slash || slash == key || slash == key + key_len - 1)
        return bad_path(err, errlen, op, path);
    char *method = xstrndup(slash + 1, (size_t)(key + key_len - slash - 1));
    char *res = unescape_resource(key, (size_t)(slash - key));
    char qm[QUOTE_MAX + 4], qr[QUOTE_MAX + 4];
    int rc = 0;
    const struct cfg_resource *r = NULL;
    if (!res) {
        rc = bad_path(err, errlen, op, path);
    } else if (strcmp(res, "/*") != 0 && !(r = cfg__find_resource(api, res))) {
        rc = fail(err, errlen, "Invalid method setting path: resource '%s' is not a resource of "
                               "api '%s'", safe(res, qr), api->id);
    } else if (strcmp(method, "*") != 0) {
        const char *m = cfg__method_name(method);
        if (!m)
            rc = fail(err, errlen, "Invalid method setting path: unknown HTTP method '%s'",
                      safe(method, qm));
        else if (r && !cfg__resource_has_method(r, m))
            rc = fail(err, errlen, "Invalid method setting path: resource '%s' has no %s method",
                      safe(res, qr), m);
        else {
            free(method);
            method = xstrdup(m);
        }
    }
    if (rc != 0) {
        free(method);
        free(res);
        return rc;
    }
    t->key = xstrndup(key, key_len);
    t->resource = res;
    t->method = method;
    return 0;
}

static struct cfg_method_setting *find_setting(struct cfg_stage *st, const struct target *t)
{
    for (size_t i = 0; i < st->n_method_settings; i++) {
        struct cfg_method_setting *ms = &st->method_settings[i];
        if (strcmp(ms->resource_path, t->resource) == 0 && strcmp(ms->http_method, t->method) == 0)
            return ms;
    }
    return NULL;
}

/* The existing setting of t (its key respelled as the patch has it), or a new one. */
static struct cfg_method_setting *setting_for(struct cfg_stage *st, const struct target *t)
{
    struct cfg_method_setting *ms = find_setting(st, t);
    if (!ms) {
        st->method_settings = xrealloc(st->method_settings,
                                       (st->n_method_settings + 1) * sizeof(*st->method_settings));
        ms = &st->method_settings[st->n_method_settings++];
        memset(ms, 0, sizeof(*ms));
        ms->resource_path = xstrdup(t->resource);
        ms->http_method = xstrdup(t->method);
    }
    free(ms->aws_key);
    ms->aws_key = xstrdup(t->key);
    return ms;
}

/* ================= method-setting fields ================= */

enum field_kind { F_BOOL = 0, F_TTL, F_STRATEGY, F_LOGLEVEL, F_BURST, F_RATE };

#define MS struct cfg_method_setting
static const struct {
    const char *suffix; /* "{group}/{setting}" */
    enum field_kind kind;
    size_t off, has_off;
} fields[] = {
    {"caching/enabled", F_BOOL, offsetof(MS, caching_enabled), offsetof(MS, has_caching_enabled)},
    {"caching/ttlInSeconds", F_TTL, offsetof(MS, cache_ttl_in_seconds),
     offsetof(MS, has_cache_ttl_in_seconds)},
    {"caching/dataEncrypted", F_BOOL, offsetof(MS, cache_data_encrypted),
     offsetof(MS, has_cache_data_encrypted)},
    {"caching/requireAuthorizationForCacheControl", F_BOOL,
     offsetof(MS, require_authorization_for_cache_control),
     offsetof(MS, has_require_authorization_for_cache_control)},
    {"caching/unauthorizedCacheControlHeaderStrategy", F_STRATEGY,
     offsetof(MS, unauthorized_cache_control_header_strategy),
     offsetof(MS, has_unauthorized_cache_control_header_strategy)},
    {"metrics/enabled", F_BOOL, offsetof(MS, metrics_enabled), offsetof(MS, has_metrics_enabled)},
    {"logging/dataTrace", F_BOOL, offsetof(MS, data_trace_enabled),
     offsetof(MS, has_data_trace_enabled)},
    {"logging/loglevel", F_LOGLEVEL, offsetof(MS, logging_level), 0},
    {"throttling/burstLimit", F_BURST, offsetof(MS, throttling_burst_limit),
     offsetof(MS, has_throttling_burst_limit)},
    {"throttling/rateLimit", F_RATE, offsetof(MS, throttling_rate_limit),
     offsetof(MS, has_throttling_rate_limit)},
};
#undef MS

/* Index of the field `path` ends with ("/" + suffix), or -1. */
static int field_of(const char *path)
{
    size_t len = strlen(path);
    for (size_t i = 0; i < GATE_ARRAY_LEN(fields); i++) {
        size_t sl = strlen(fields[i].suffix);
        if (len > sl + 1 && path[len - sl - 1] == '/' &&
            memcmp(path + len - sl, fields[i].suffix, sl) == 0)
            return (int)i;
    }
    return -1;
}

static bool parse_strategy(const char *v, enum cfg_unauth_strategy *out)
{
    static const enum cfg_unauth_strategy all[] = {
        CFG_UNAUTH_FAIL_WITH_403,
        CFG_UNAUTH_SUCCEED_WITH_RESPONSE_HEADER,
        CFG_UNAUTH_SUCCEED_WITHOUT_RESPONSE_HEADER,
    };
    for (size_t i = 0; v && i < GATE_ARRAY_LEN(all); i++)
        if (strcmp(v, cfg_unauth_strategy_name(all[i])) == 0) {
            *out = all[i];
            return true;
        }
    return false;
}

static bool is_loglevel(const char *v)
{
    return v && (strcmp(v, "OFF") == 0 || strcmp(v, "ERROR") == 0 || strcmp(v, "INFO") == 0);
}

/* Checks value for field f; on success stores it into a scratch setting. */
static int check_field(int f, const char *path, const char *value, struct cfg_method_setting *tmp,
                       char *err, size_t errlen)
{
    char *base = (char *)tmp;
    switch (fields[f].kind) {
    case F_BOOL:
        if (!parse_bool(value, (bool *)(base + fields[f].off)))
            return bad_value(err, errlen, path, value, "true or false");
        break;
    case F_TTL:
        if (!parse_int(value, 0, CFG_TTL_MAX, (int *)(base + fields[f].off)) || *value == '-')
            return bad_value(err, errlen, path, value, "an integer from 0 to 3600 (seconds)");
        break;
    case F_STRATEGY:
        if (!parse_strategy(value, (enum cfg_unauth_strategy *)(base + fields[f].off)))
            return bad_value(err, errlen, path, value,
                             "FAIL_WITH_403, SUCCEED_WITH_RESPONSE_HEADER or "
                             "SUCCEED_WITHOUT_RESPONSE_HEADER");
        break;
    case F_LOGLEVEL:
        if (!is_loglevel(value))
            return bad_value(err, errlen, path, value, "OFF, ERROR or INFO");
        break;
    case F_BURST:
        if (!parse_int(value, -1, 2147483647L, (int *)(base + fields[f].off)))
            return bad_value(err, errlen, path, value, "an integer");
        break;
    case F_RATE:
        if (!parse_rate(value, (double *)(base + fields[f].off)))
            return bad_value(err, errlen, path, value, "a number");
        break;
    }
    return 0;
}

/* Copies field f from the scratch setting into ms and marks it set. */
static void store_field(int f, struct cfg_method_setting *ms, const struct cfg_method_setting *tmp,
                        const char *value)
{
    char *d = (char *)ms;
    const char *s = (const char *)tmp;
    switch (fields[f].kind) {
    case F_BOOL:
        *(bool *)(d + fields[f].off) = *(const bool *)(s + fields[f].off);
        break;
    case F_TTL:
    case F_BURST:
        *(int *)(d + fields[f].off) = *(const int *)(s + fields[f].off);
        break;
    case F_STRATEGY:
        ms->unauthorized_cache_control_header_strategy =
            tmp->unauthorized_cache_control_header_strategy;
        break;
    case F_LOGLEVEL:
        free(ms->logging_level);
        ms->logging_level = xstrdup(value);
        return; /* no has_ flag: NULL means unset */
    case F_RATE:
        ms->throttling_rate_limit = tmp->throttling_rate_limit;
        break;
    }
    *(bool *)(d + fields[f].has_off) = true;
}

static int patch_field(struct cfg_api *api, struct cfg_stage *st, const char *op,
                       const char *path, const char *value, char *err, size_t errlen)
{
    int f = field_of(path);
    if (f < 0 || strcmp(op, "replace") != 0)
        return bad_path(err, errlen, op, path);
    struct cfg_method_setting tmp;
    memset(&tmp, 0, sizeof(tmp));
    int rc = check_field(f, path, value, &tmp, err, errlen);
    if (rc != 0)
        return rc;
    struct target t;
    rc = parse_target(api, path, 2, &t, err, errlen, op);
    if (rc != 0)
        return rc;
    store_field(f, setting_for(st, &t), &tmp, value);
    target_free(&t);
    return 0;
}

static int remove_setting(struct cfg_api *api, struct cfg_stage *st, const char *path, char *err,
                          size_t errlen)
{
    struct target t;
    int rc = parse_target(api, path, 0, &t, err, errlen, "remove");
    if (rc != 0)
        return rc;
    struct cfg_method_setting *ms = find_setting(st, &t);
    if (!ms) {
        char qk[QUOTE_MAX + 4];
        rc = fail(err, errlen,
                  "Cannot remove method setting %s because there is no method setting for this "
                  "method",
                  safe(t.key, qk));
        target_free(&t);
        return rc;
    }
    target_free(&t);
    free(ms->resource_path);
    free(ms->http_method);
    free(ms->aws_key);
    free(ms->logging_level);
    size_t i = (size_t)(ms - st->method_settings);
    memmove(ms, ms + 1, (st->n_method_settings - i - 1) * sizeof(*ms));
    st->n_method_settings--;
    return 0;
}

/* ================= stage fields ================= */

static int patch_cluster(struct cfg_stage *st, const char *op, const char *path,
                         const char *value, char *err, size_t errlen)
{
    if (strcmp(op, "replace") != 0)
        return bad_path(err, errlen, op, path);
    if (strcmp(path, "/cacheClusterEnabled") == 0) {
        bool on;
        if (!parse_bool(value, &on))
            return bad_value(err, errlen, path, value, "true or false");
        st->cache_cluster_enabled = on;
        return 0;
    }
    uint64_t bytes;
    char qv[QUOTE_MAX + 4];
    if (!value || !cfg_parse_cache_size(value, &bytes))
        return fail(err, errlen,
                    "Invalid cache cluster size '%s': expected 0.5, 1.6, 6.1, 13.5, 28.4, 58.2, "
                    "118, 237 or a size with a unit (B, KB, KiB, MB, MiB, GB, GiB)",
                    safe(value, qv));
    if (bytes < CFG_CACHE_SIZE_MIN)
        return fail(err, errlen, "Invalid cache cluster size '%s': below the minimum of 64KiB",
                    safe(value, qv));
    free(st->cache_cluster_size);
    st->cache_cluster_size = xstrdup(value);
    st->cache_capacity_bytes = bytes;
    return 0;
}

static bool is_known_op(const char *op)
{
    static const char *const ops[] = {"add", "remove", "replace", "move", "copy", "test"};
    for (size_t i = 0; i < GATE_ARRAY_LEN(ops); i++)
        if (strcmp(op, ops[i]) == 0)
            return true;
    return false;
}

int cfg_stage_patch(struct cfg *c, const char *api, const char *stage, const char *op,
                    const char *path, const char *value, char *err, size_t errlen)
{
    struct cfg_api *a = NULL;
    struct cfg_stage *st = find_stage(c, api, stage, &a);
    if (!st) {
        fail(err, errlen, a ? "Invalid stage identifier specified"
                            : "Invalid API identifier specified");
        return -ENOENT;
    }
    if (!op || !is_known_op(op))
        return fail(err, errlen, "Invalid patch operation specified. Must be one of: [add, "
                                 "remove, replace, move, copy, test]");
    if (!path || path[0] != '/')
        return bad_path(err, errlen, op, path);
    if (strcmp(path, "/cacheClusterEnabled") == 0 || strcmp(path, "/cacheClusterSize") == 0)
        return patch_cluster(st, op, path, value, err, errlen);
    if (strcmp(op, "remove") == 0)
        return remove_setting(a, st, path, err, errlen);
    return patch_field(a, st, op, path, value, err, errlen);
}
