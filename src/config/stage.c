/*
 * stage — the `stages:` of one api (cache switch, cache size, distribution id)
 * and their `method_settings`, plus the cache size grammar.
 *
 * Sizes: API Gateway's cacheClusterSize values ("0.5" .. "237") mean GiB, as the
 * memory the stage may hold; any other size needs a unit, decimal (KB, MB, GB) or
 * binary (KiB, MiB, GiB). A stage below 64 KiB could not hold one typical entry
 * plus bookkeeping, so it is refused.
 */
#include "config/config_int.h"

#include <stdlib.h>
#include <string.h>

#define CACHE_SIZE_MIN CFG_CACHE_SIZE_MIN
#define STALE_MAX 86400
#define MAX_CACHED_RESPONSE_MAX (64 << 20)

/* ================= cache sizes ================= */

static const struct {
    const char *name;
    uint64_t tenths_gib; /* size in tenths of a GiB */
} aws_sizes[] = {
    {"0.5", 5},    {"1.6", 16},   {"6.1", 61},   {"13.5", 135},
    {"28.4", 284}, {"58.2", 582}, {"118", 1180}, {"237", 2370},
};

static const struct {
    const char *unit;
    uint64_t mult;
} size_units[] = {
    {"B", 1},          {"KB", 1000},       {"KiB", 1024},     {"MB", 1000000},
    {"MiB", 1u << 20}, {"GB", 1000000000}, {"GiB", 1u << 30},
};

/* "<digits>[.<digits>]" at *s: whole part and fraction as num/den; advances *s. */
static bool parse_decimal(const char **s, uint64_t *whole, uint64_t *num, uint64_t *den)
{
    const char *p = *s;
    *whole = 0;
    *num = 0;
    *den = 1;
    if (*p < '0' || *p > '9')
        return false;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (*whole > (UINT64_MAX - 9) / 10)
            return false;
        *whole = *whole * 10 + (uint64_t)(*p - '0');
    }
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return false;
        for (int digits = 0; *p >= '0' && *p <= '9'; p++, digits++) {
            if (digits >= 9) /* finer than a billionth of a unit is noise */
                continue;
            *num = *num * 10 + (uint64_t)(*p - '0');
            *den *= 10;
        }
    }
    *s = p;
    return true;
}

bool cfg_parse_cache_size(const char *s, uint64_t *bytes)
{
    for (size_t i = 0; i < GATE_ARRAY_LEN(aws_sizes); i++) {
        if (strcmp(s, aws_sizes[i].name) == 0) {
            *bytes = aws_sizes[i].tenths_gib * ((uint64_t)1 << 30) / 10;
            return true;
        }
    }
    uint64_t whole, num, den;
    const char *p = s;
    if (!parse_decimal(&p, &whole, &num, &den))
        return false;
    if (*p == ' ')
        p++;
    for (size_t i = 0; i < GATE_ARRAY_LEN(size_units); i++) {
        if (strcmp(p, size_units[i].unit) != 0)
            continue;
        uint64_t m = size_units[i].mult;
        if (whole > UINT64_MAX / m)
            return false;
        /* num < den <= 1e9 and m <= 2^30, so num * m fits in 64 bits. */
        uint64_t frac = num * m / den;
        if (whole * m > UINT64_MAX - frac)
            return false;
        *bytes = whole * m + frac;
        return true;
    }
    return false;
}

static void load_cache_size(struct cfg__ld *ld, struct cfg_stage *st, const struct cfg__node *n)
{
    if (n->kind != CFG__SCALAR || cfg__is_null(n)) {
        cfg__err(ld, n, "cache_cluster_size: expected string or number");
        return;
    }
    char *q = cfg__quoted(n->str);
    uint64_t bytes;
    if (!cfg_parse_cache_size(n->str, &bytes))
        cfg__err(ld, n,
                 "cache_cluster_size: unknown cache size %s (expected 0.5, 1.6, 6.1, "
                 "13.5, 28.4, 58.2, 118, 237 or a number with a unit: B, KB, KiB, MB, "
                 "MiB, GB, GiB)",
                 q);
    else if (bytes < CACHE_SIZE_MIN)
        cfg__err(ld, n, "cache_cluster_size: %s is below the minimum of 64KiB", q);
    free(q);
    free(st->cache_cluster_size);
    st->cache_cluster_size = xstrdup(n->str);
    st->cache_capacity_bytes = bytes;
}

/* ================= method settings ================= */

static void set_strategy(struct cfg__ld *ld, const struct cfg__node *v, void *obj)
{
    static const enum cfg_unauth_strategy all[] = {
        CFG_UNAUTH_FAIL_WITH_403,
        CFG_UNAUTH_SUCCEED_WITH_RESPONSE_HEADER,
        CFG_UNAUTH_SUCCEED_WITHOUT_RESPONSE_HEADER,
    };
    struct cfg_method_setting *ms = obj;
    const char *key = "unauthorized_cache_control_header_strategy";
    char *s = NULL;
    if (!cfg__get_str(ld, v, key, &s))
        return;
    for (size_t i = 0; i < GATE_ARRAY_LEN(all); i++) {
        if (strcmp(s, cfg_unauth_strategy_name(all[i])) == 0) {
            ms->unauthorized_cache_control_header_strategy = all[i];
            ms->has_unauthorized_cache_control_header_strategy = true;
        }
    }
    if (!ms->has_unauthorized_cache_control_header_strategy) {
        char *q = cfg__quoted(s);
        cfg__err(ld, v,
                 "%s: unknown value %s (expected FAIL_WITH_403, "
                 "SUCCEED_WITH_RESPONSE_HEADER or SUCCEED_WITHOUT_RESPONSE_HEADER)",
                 key, q);
        free(q);
    }
    free(s);
}

#define MS struct cfg_method_setting
static const struct cfg__key setting_keys[] = {
    CFG__KEY("resource_path", CFG__K_STR, MS, resource_path, true),
    CFG__KEY("http_method", CFG__K_STR, MS, http_method, true),
    CFG__KEY_OPT("caching_enabled", CFG__K_BOOL, MS, caching_enabled, 0, 0),
    CFG__KEY_OPT("cache_ttl_in_seconds", CFG__K_INT, MS, cache_ttl_in_seconds, 0, CFG_TTL_MAX),
    CFG__KEY_OPT("cache_data_encrypted", CFG__K_BOOL, MS, cache_data_encrypted, 0, 0),
    CFG__KEY_OPT("require_authorization_for_cache_control", CFG__K_BOOL, MS,
                 require_authorization_for_cache_control, 0, 0),
    CFG__KEY_FN("unauthorized_cache_control_header_strategy", set_strategy, false),
    CFG__KEY_OPT("honor_origin_cache_control", CFG__K_BOOL, MS, honor_origin_cache_control, 0, 0),
    CFG__KEY_OPT("min_ttl", CFG__K_INT, MS, min_ttl, 0, CFG_TTL_MAX),
    CFG__KEY_OPT("max_ttl", CFG__K_INT, MS, max_ttl, 0, CFG_TTL_MAX),
    CFG__KEY_OPT("default_ttl", CFG__K_INT, MS, default_ttl, 0, CFG_TTL_MAX),
    CFG__KEY_OPT("stale_if_error_seconds", CFG__K_INT, MS, stale_if_error_seconds, 0, STALE_MAX),
    CFG__KEY_OPT("cache_authorized_requests", CFG__K_BOOL, MS, cache_authorized_requests, 0, 0),
    CFG__KEY_OPT("max_cached_response_bytes", CFG__K_U64, MS, max_cached_response_bytes, 1,
                 MAX_CACHED_RESPONSE_MAX),
};
#undef MS

/* resource_path must be "/" "*" (all) or a resource; http_method "*" or a method it has. */
static void check_setting_target(struct cfg__ld *ld, const struct cfg_api *api,
                                 struct cfg_method_setting *ms, const struct cfg__node *item)
{
    const struct cfg_resource *r = NULL;
    char *qp = cfg__quoted(ms->resource_path);
    if (strcmp(ms->resource_path, "/*") != 0) {
        r = cfg__find_resource(api, ms->resource_path);
        if (r == NULL)
            cfg__err(ld, cfg__map_find(item, "resource_path"),
                     "resource_path: %s is neither \"/*\" nor a resource of this api", qp);
    }
    if (strcmp(ms->http_method, "*") != 0) {
        const char *m = cfg__method_name(ms->http_method);
        const struct cfg__node *at = cfg__map_find(item, "http_method");
        char *qm = cfg__quoted(ms->http_method);
        if (m == NULL)
            cfg__err(ld, at, "http_method: unknown HTTP method %s (expected \"*\" or a method)",
                     qm);
        else if (r != NULL && !cfg__resource_has_method(r, m))
            cfg__err(ld, at, "http_method: resource %s has no %s method", qp, m);
        free(qm);
        if (m != NULL) {
            free(ms->http_method);
            ms->http_method = xstrdup(m);
        }
    }
    free(qp);
}

static void check_setting_ttls(struct cfg__ld *ld, const struct cfg_method_setting *ms,
                               const struct cfg__node *item)
{
    if (ms->has_min_ttl && ms->has_max_ttl && ms->min_ttl > ms->max_ttl)
        cfg__err(ld, cfg__map_find(item, "min_ttl"), "min_ttl: greater than max_ttl");
    if (ms->has_default_ttl && ((ms->has_min_ttl && ms->default_ttl < ms->min_ttl) ||
                                (ms->has_max_ttl && ms->default_ttl > ms->max_ttl)))
        cfg__err(ld, cfg__map_find(item, "default_ttl"), "default_ttl: outside min_ttl..max_ttl");
}

static void load_settings(struct cfg__ld *ld, const struct cfg_api *api, struct cfg_stage *st,
                          const struct cfg__node *n)
{
    struct cfg__node *const *items;
    size_t count;
    if (n == NULL || !cfg__get_seq(ld, n, "method_settings", &items, &count) || count == 0)
        return;
    st->method_settings = xcalloc(count, sizeof(*st->method_settings));
    for (size_t i = 0; i < count; i++) {
        struct cfg_method_setting *ms = &st->method_settings[st->n_method_settings];
        cfg__walk(ld, items[i], "method_settings", setting_keys, GATE_ARRAY_LEN(setting_keys), ms);
        st->n_method_settings++;
        if (ms->resource_path == NULL || ms->http_method == NULL)
            continue;
        check_setting_target(ld, api, ms, items[i]);
        check_setting_ttls(ld, ms, items[i]);
        for (size_t j = 0; j + 1 < st->n_method_settings; j++) {
            const struct cfg_method_setting *o = &st->method_settings[j];
            if (o->resource_path && o->http_method &&
                strcmp(o->resource_path, ms->resource_path) == 0 &&
                strcmp(o->http_method, ms->http_method) == 0) {
                cfg__err(ld, items[i], "method_settings: duplicate setting for %s %s",
                         ms->http_method, ms->resource_path);
                break;
            }
        }
    }
}

/* ================= stages ================= */

struct stage_parse {
    struct cfg_stage s;
    const struct cfg__node *size;
    const struct cfg__node *settings;
    const struct cfg__node *backend;
};

struct stage_backend_parse {
    char *type;
};

static const struct cfg__key stage_backend_keys[] = {
    CFG__KEY("type", CFG__K_STR, struct stage_backend_parse, type, true),
};

/* A stage's cache_backend can only keep it out of the server's shared tier:
 * one Redis serves the whole process (docs/redis.md). */
static void load_stage_backend(struct cfg__ld *ld, struct cfg_stage *st, const struct cfg__node *n)
{
    struct stage_backend_parse b = {0};
    cfg__walk(ld, n, "cache_backend", stage_backend_keys, GATE_ARRAY_LEN(stage_backend_keys), &b);
    const struct cfg__node *tn = cfg__map_find(n, "type");
    if (b.type && strcmp(b.type, "memory") == 0) {
        st->in_process_only = true;
    } else if (b.type && strcmp(b.type, "redis") == 0) {
        cfg__err(ld, tn, "cache_backend: a stage may only set type memory (to stay out of the "
                         "shared tier); redis is set once, in server.cache_backend");
    } else if (b.type) {
        char *q = cfg__quoted(b.type);
        cfg__err(ld, tn, "cache_backend: unknown type %s (a stage may set memory)", q);
        free(q);
    }
    free(b.type);
}

static const struct cfg__key stage_keys[] = {
    CFG__KEY("cache_cluster_enabled", CFG__K_BOOL, struct stage_parse, s.cache_cluster_enabled,
             false),
    CFG__KEY("cache_cluster_size", CFG__K_NODE, struct stage_parse, size, false),
    CFG__KEY("distribution_id", CFG__K_STR, struct stage_parse, s.distribution_id, false),
    CFG__KEY("method_settings", CFG__K_NODE, struct stage_parse, settings, false),
    CFG__KEY("cache_backend", CFG__K_NODE, struct stage_parse, backend, false),
};

static void load_stage(struct cfg__ld *ld, const struct cfg_api *api, struct cfg_stage *st,
                       const struct cfg__node *name, const struct cfg__node *n)
{
    struct stage_parse p = {0};
    cfg__walk(ld, n, "stage", stage_keys, GATE_ARRAY_LEN(stage_keys), &p);
    p.s.name = xstrdup(name->str);
    if (p.size != NULL) {
        load_cache_size(ld, &p.s, p.size);
    } else {
        p.s.cache_cluster_size = xstrdup("0.5");
        cfg_parse_cache_size("0.5", &p.s.cache_capacity_bytes);
    }
    if (p.s.distribution_id == NULL) {
        struct buf b;
        buf_init(&b);
        buf_appendf(&b, "%s-%s", api->id ? api->id : "", name->str);
        p.s.distribution_id = buf_steal(&b, NULL);
    }
    if (p.backend != NULL)
        load_stage_backend(ld, &p.s, p.backend);
    load_settings(ld, api, &p.s, p.settings);
    *st = p.s;
}

void cfg__load_stages(struct cfg__ld *ld, struct cfg_api *api, const struct cfg__node *n)
{
    size_t count = cfg__map_len(n);
    if (n == NULL || !cfg__expect_map(ld, n, "stages") || count == 0)
        return;
    cfg__check_dup_keys(ld, n, "stage", false);
    api->stages = xcalloc(count, sizeof(*api->stages));
    for (size_t i = 0; i < count; i++) {
        const struct cfg__node *k = cfg__map_key(n, i);
        if (k->kind != CFG__SCALAR) {
            cfg__err(ld, k, "stages: keys must be stage names");
            continue;
        }
        if (cfg_find_stage(api, k->str) != NULL)
            continue; /* duplicate, already reported */
        if (!cfg__is_name(k->str)) {
            char *q = cfg__quoted(k->str);
            cfg__err(ld, k, "stage name %s must be 1..128 letters, digits, '-' or '_'", q);
            free(q);
        }
        load_stage(ld, api, &api->stages[api->n_stages], k, cfg__map_val(n, i));
        api->n_stages++;
    }
}
