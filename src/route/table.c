/*
 * route/table.c — building the routing table from a config snapshot:
 * templates split into segments, key parameters parsed, write-triggered
 * invalidation targets compiled, and settings resolved per stage and per
 * request method. The config was validated by config/, so malformed input
 * here is a bug (GATE_ASSERT), not an error to report.
 */
#include <stdlib.h>
#include <string.h>

#include "route/route.h"
#include "route/route_int.h"

static const char *const std_methods[ROUTE_N_METHODS] = {"GET",   "HEAD",   "POST",    "PUT",
                                                          "PATCH", "DELETE", "OPTIONS", "*"};

int route__method_index(const char *m, size_t len)
{
    for (int i = 0; i < ROUTE_N_METHODS - 1; i++)
        if (str_eq_c(m, len, std_methods[i]))
            return i;
    return ROUTE_N_METHODS - 1; /* any other method */
}

/* Splits "/a/{b}/{c+}" into segments borrowed from `tpl`. "/" has none. */
size_t route__split_template(const char *tpl, struct route_seg **out)
{
    size_t n = 0;
    for (const char *p = tpl; *p; p++)
        if (*p == '/' && p[1] != '\0')
            n++;
    struct route_seg *segs = xcalloc(n ? n : 1, sizeof(*segs));
    size_t i = 0;
    const char *p = tpl;
    while (*p == '/' && p[1] != '\0' && i < n) {
        const char *start = p + 1;
        const char *end = strchr(start, '/');
        if (!end)
            end = start + strlen(start);
        size_t len = (size_t)(end - start);
        struct route_seg *s = &segs[i++];
        if (len >= 2 && start[0] == '{' && start[len - 1] == '}') {
            bool greedy = len >= 3 && start[len - 2] == '+';
            s->kind = greedy ? ROUTE_SEG_GREEDY : ROUTE_SEG_PARAM;
            s->text = start + 1;
            s->len = len - 2 - (greedy ? 1 : 0);
        } else {
            s->kind = ROUTE_SEG_LITERAL;
            s->text = start;
            s->len = len;
        }
        p = end;
    }
    *out = segs;
    return i;
}

static void parse_keyparam(const char *s, struct route_keyparam *kp)
{
    static const char q[] = "method.request.querystring.";
    static const char h[] = "method.request.header.";
    static const char pp[] = "method.request.path.";
    memset(kp, 0, sizeof(*kp));
    if (strcmp(s, "method.request.body") == 0) {
        kp->kind = ROUTE_KEY_BODY;
    } else if (strcmp(s, "method.request.querystring.*") == 0) {
        kp->kind = ROUTE_KEY_QUERY_ALL;
    } else if (str_has_prefix(s, q)) {
        kp->kind = ROUTE_KEY_QUERY;
        kp->name = s + sizeof(q) - 1;
    } else if (str_has_prefix(s, h)) {
        kp->kind = ROUTE_KEY_HEADER;
        kp->name = s + sizeof(h) - 1;
    } else {
        GATE_ASSERT(str_has_prefix(s, pp));
        kp->kind = ROUTE_KEY_PATH;
        kp->name = s + sizeof(pp) - 1;
    }
    if (kp->name)
        kp->len = strlen(kp->name);
}

static void build_method(const struct cfg_api *api, const struct cfg_resource *res,
                         const struct cfg_method *cm, struct route_method *rm)
{
    rm->cfg = cm;
    rm->http_method_len = strlen(cm->http_method);
    rm->is_any = strcmp(cm->http_method, "ANY") == 0;
    rm->method_index = route__method_index(cm->http_method, rm->http_method_len);
    rm->n_keyparams = cm->n_cache_key_parameters;
    rm->keyparams = xcalloc(rm->n_keyparams ? rm->n_keyparams : 1, sizeof(*rm->keyparams));
    for (size_t i = 0; i < rm->n_keyparams; i++) {
        struct route_keyparam *kp = &rm->keyparams[i];
        parse_keyparam(cm->cache_key_parameters[i], kp);
        if (kp->kind == ROUTE_KEY_HEADER && str_ieq_c(kp->name, kp->len, "authorization"))
            rm->keys_authorization = true;
        if (kp->kind == ROUTE_KEY_HEADER && str_ieq_c(kp->name, kp->len, "cookie"))
            rm->keys_cookie = true;
    }
    rm->n_invalidates = cm->n_invalidates;
    rm->invalidates = xcalloc(rm->n_invalidates ? rm->n_invalidates : 1, sizeof(*rm->invalidates));
    for (size_t i = 0; i < rm->n_invalidates; i++) {
        /* "GET /projects/{id}/members": method, one space, template. */
        const char *spec = cm->invalidates[i];
        const char *sp = strchr(spec, ' ');
        GATE_ASSERT(sp != NULL);
        struct route_invalidation *inv = &rm->invalidates[i];
        inv->method = xstrndup(spec, (size_t)(sp - spec));
        inv->n_segs = route__split_template(sp + 1, &inv->segs);
    }
    /* One settings block per (stage, request method): an ANY method serves
     * every method, and whether a request is cached depends on its own method
     * (GET by default), so settings cannot be resolved per config method only. */
    size_t n = api->n_stages * ROUTE_N_METHODS;
    rm->settings = xcalloc(n ? n : 1, sizeof(*rm->settings));
    for (size_t s = 0; s < api->n_stages; s++)
        for (int mi = 0; mi < ROUTE_N_METHODS; mi++) {
            const char *method = std_methods[mi];
            if (strcmp(cm->http_method, "ANY") != 0 && mi != ROUTE_N_METHODS - 1)
                method = cm->http_method;
            route_resolve_settings(&api->stages[s], res->path, method,
                                   &rm->settings[s * ROUTE_N_METHODS + (size_t)mi]);
        }
    rm->label_hash = xcalloc(api->n_stages ? api->n_stages : 1, sizeof(*rm->label_hash));
    for (size_t s = 0; s < api->n_stages; s++)
        rm->label_hash[s] =
            route_label_hash(api->id, api->stages[s].name, res->path, cm->http_method);
}

/* FNV-1a over the strings, each with its terminating NUL as separator, then
 * a 64-bit finaliser (MurmurHash3's fmix64) so that the low bits, which pick
 * the slot of an open-addressing table, depend on every input byte. */
uint64_t route_label_hash(const char *api, const char *stage, const char *resource,
                          const char *method)
{
    const char *parts[4] = {api, stage, resource, method};
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < GATE_ARRAY_LEN(parts); i++) {
        const char *p = parts[i];
        do {
            h ^= (unsigned char)*p;
            h *= 0x100000001b3ull;
        } while (*p++);
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static void resolve_mapping(const struct route_table *t, const struct cfg_base_path_mapping *mp,
                            struct route_mapping *out)
{
    out->cfg = mp;
    out->base_path_len = strlen(mp->base_path);
    for (size_t a = 0; a < t->n_apis; a++) {
        const struct cfg_api *ca = t->apis[a].cfg;
        if (strcmp(ca->id, mp->api) != 0)
            continue;
        for (size_t s = 0; s < ca->n_stages; s++)
            if (strcmp(ca->stages[s].name, mp->stage) == 0) {
                out->api_index = a;
                out->stage_index = s;
                out->resolved = true;
                return;
            }
        return;
    }
}

struct route_table *route_table_new(const struct cfg *cfg)
{
    struct route_table *t = xcalloc(1, sizeof(*t));
    t->cfg = cfg;
    t->n_apis = cfg->n_apis;
    t->apis = xcalloc(t->n_apis ? t->n_apis : 1, sizeof(*t->apis));
    for (size_t a = 0; a < cfg->n_apis; a++) {
        const struct cfg_api *ca = &cfg->apis[a];
        struct route_api *ra = &t->apis[a];
        ra->cfg = ca;
        ra->n_resources = ca->n_resources;
        ra->resources = xcalloc(ra->n_resources ? ra->n_resources : 1, sizeof(*ra->resources));
        for (size_t r = 0; r < ca->n_resources; r++) {
            const struct cfg_resource *cr = &ca->resources[r];
            struct route_resource *rr = &ra->resources[r];
            rr->cfg = cr;
            rr->n_segs = route__split_template(cr->path, &rr->segs);
            rr->n_methods = cr->n_methods;
            rr->methods = xcalloc(rr->n_methods ? rr->n_methods : 1, sizeof(*rr->methods));
            for (size_t m = 0; m < cr->n_methods; m++)
                build_method(ca, cr, &cr->methods[m], &rr->methods[m]);
        }
    }
    t->n_mappings = cfg->server.n_mappings;
    t->mappings = xcalloc(t->n_mappings ? t->n_mappings : 1, sizeof(*t->mappings));
    for (size_t i = 0; i < t->n_mappings; i++)
        resolve_mapping(t, &cfg->server.mappings[i], &t->mappings[i]);
    return t;
}

static void free_method(struct route_method *rm)
{
    free(rm->keyparams);
    for (size_t i = 0; i < rm->n_invalidates; i++) {
        free((char *)rm->invalidates[i].method);
        free(rm->invalidates[i].segs);
    }
    free(rm->invalidates);
    free(rm->settings);
    free(rm->label_hash);
}

void route_table_free(struct route_table **tp)
{
    struct route_table *t = *tp;
    if (!t)
        return;
    for (size_t a = 0; a < t->n_apis; a++) {
        struct route_api *ra = &t->apis[a];
        for (size_t r = 0; r < ra->n_resources; r++) {
            for (size_t m = 0; m < ra->resources[r].n_methods; m++)
                free_method(&ra->resources[r].methods[m]);
            free(ra->resources[r].methods);
            free(ra->resources[r].segs);
        }
        free(ra->resources);
    }
    free(t->apis);
    free(t->mappings);
    free(t);
    *tp = NULL;
}

/* ================= settings resolution ================= */

static void apply_setting(const struct cfg_method_setting *ms, struct route_settings *o,
                          bool *caching_set)
{
    if (ms->has_caching_enabled) {
        o->caching_enabled = ms->caching_enabled;
        *caching_set = true;
    }
    if (ms->has_cache_ttl_in_seconds)
        o->ttl = ms->cache_ttl_in_seconds;
    if (ms->has_cache_data_encrypted)
        o->data_encrypted = ms->cache_data_encrypted;
    if (ms->has_require_authorization_for_cache_control)
        o->require_authorization_for_cache_control = ms->require_authorization_for_cache_control;
    if (ms->has_unauthorized_cache_control_header_strategy)
        o->unauthorized_strategy = ms->unauthorized_cache_control_header_strategy;
    if (ms->has_honor_origin_cache_control)
        o->honor_origin_cache_control = ms->honor_origin_cache_control;
    if (ms->has_min_ttl)
        o->min_ttl = ms->min_ttl;
    if (ms->has_max_ttl)
        o->max_ttl = ms->max_ttl;
    if (ms->has_default_ttl)
        o->default_ttl = ms->default_ttl;
    if (ms->has_stale_if_error_seconds)
        o->stale_if_error_seconds = ms->stale_if_error_seconds;
    if (ms->has_cache_authorized_requests)
        o->cache_authorized_requests = ms->cache_authorized_requests;
    if (ms->has_max_cached_response_bytes)
        o->max_cached_response_bytes = ms->max_cached_response_bytes;
}

/* Specificity of a setting for (resource, method): -1 if it does not apply.
 * any resource + any method (0) < any resource + METHOD (1) < resource + any
 * method (2) < resource + METHOD (3). */
static int setting_rank(const struct cfg_method_setting *ms, const char *resource_path,
                        const char *method)
{
    bool any_res = strcmp(ms->resource_path, "/*") == 0;
    bool any_method = strcmp(ms->http_method, "*") == 0;
    if (!any_res && strcmp(ms->resource_path, resource_path) != 0)
        return -1;
    if (!any_method && strcmp(ms->http_method, method) != 0)
        return -1;
    return (any_res ? 0 : 2) + (any_method ? 0 : 1);
}

void route_resolve_settings(const struct cfg_stage *stage, const char *resource_path,
                            const char *http_method, struct route_settings *o)
{
    memset(o, 0, sizeof(*o));
    o->ttl = CFG_TTL_DEFAULT;
    o->require_authorization_for_cache_control = true;
    o->unauthorized_strategy = CFG_UNAUTH_SUCCEED_WITH_RESPONSE_HEADER;
    o->min_ttl = 0;
    o->max_ttl = CFG_TTL_MAX;
    o->default_ttl = -1; /* follows ttl unless set */
    o->stale_if_error_seconds = CFG_STALE_IF_ERROR_DEFAULT;
    o->max_cached_response_bytes = CFG_MAX_CACHED_RESPONSE_DEFAULT;
    bool caching_set = false;
    /* Least specific first, so each more specific setting overrides field by field. */
    for (int rank = 0; rank <= 3; rank++)
        for (size_t i = 0; i < stage->n_method_settings; i++)
            if (setting_rank(&stage->method_settings[i], resource_path, http_method) == rank)
                apply_setting(&stage->method_settings[i], o, &caching_set);
    if (!caching_set)
        o->caching_enabled = strcmp(http_method, "GET") == 0; /* only GET by default */
    if (o->default_ttl < 0)
        o->default_ttl = o->ttl;
    if (!stage->cache_cluster_enabled || o->ttl == 0)
        o->caching_enabled = false;
}
