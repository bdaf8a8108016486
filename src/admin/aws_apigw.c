/*
 * admin/aws_apigw.c — API Gateway's GetRestApis, GetRestApi, GetStages,
 * GetStage, UpdateStage and FlushStageCache (rest-json, aws-wire.md §2, §3)
 * over the running config.
 *
 * Live changes: UpdateStage copies the current snapshot (cfg_clone), applies
 * every patch operation to the copy (cfg_stage_patch: the config's own rules),
 * and publishes it through srv_update; all operations or none. The file is not
 * written: a SIGHUP reload re-reads it and drops live changes.
 *
 * cacheClusterStatus is derived, not stored: changes are instant, so a stage is
 * AVAILABLE when its cache is enabled and NOT_AVAILABLE otherwise, in every
 * snapshot. The transitional status AWS would show (CREATE_IN_PROGRESS,
 * DELETE_IN_PROGRESS) appears only in the answer of the UpdateStage that caused
 * it. createdDate / lastUpdatedDate live in ctx->meta, keyed by names.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_int.h"

#define APIGW_ARN "arn:aws:apigateway:%s::"
#define DEFAULT_LIMIT 25
#define MAX_LIMIT 500

/* ================= stage metadata ================= */

static struct admin__stage_meta *meta_of(struct admin__ctx *ctx, const char *api,
                                         const char *stage, int64_t now)
{
    for (size_t i = 0; i < ctx->n_meta; i++)
        if (strcmp(ctx->meta[i].api, api) == 0 && strcmp(ctx->meta[i].stage, stage) == 0)
            return &ctx->meta[i];
    ctx->meta = xrealloc(ctx->meta, (ctx->n_meta + 1) * sizeof(*ctx->meta));
    struct admin__stage_meta *m = &ctx->meta[ctx->n_meta++];
    m->api = xstrdup(api);
    m->stage = xstrdup(stage);
    m->created = m->updated = now;
    return m;
}

/* ================= JSON shapes ================= */

/* methodSettings key of a setting: as the last patch spelled it, else API Gateway's
 * own spelling ("*" "/" "*", "~1pets~1{id}/GET"). */
static char *setting_key(const struct cfg_method_setting *ms)
{
    if (ms->aws_key)
        return xstrdup(ms->aws_key);
    struct buf b;
    buf_init(&b);
    if (strcmp(ms->resource_path, "/*") == 0) {
        buf_append_char(&b, '*');
    } else {
        for (const char *p = ms->resource_path; *p; p++) { /* "/pets" -> "~1pets" */
            if (*p == '/')
                buf_append_str(&b, "~1");
            else if (*p == '~')
                buf_append_str(&b, "~0");
            else
                buf_append_char(&b, *p);
        }
    }
    buf_appendf(&b, "/%s", ms->http_method);
    return buf_steal(&b, NULL);
}

/* Same specificity as route/ (0 least .. 3 most); -1 when s does not cover e. */
static int rank_for(const struct cfg_method_setting *s, const struct cfg_method_setting *e)
{
    bool any_res = strcmp(s->resource_path, "/*") == 0;
    bool any_method = strcmp(s->http_method, "*") == 0;
    if (!any_res && strcmp(s->resource_path, e->resource_path) != 0)
        return -1;
    if (!any_method && strcmp(s->http_method, e->http_method) != 0)
        return -1;
    return (any_res ? 0 : 2) + (any_method ? 0 : 1);
}

struct caching_view {
    bool enabled;
    int ttl;
    bool encrypted;
    bool require_auth;
    enum cfg_unauth_strategy strategy;
};

/* The caching fields in force for entry e: its own, else inherited from less specific
 * entries (as the data plane resolves them), else the defaults. GET is cached by
 * default, so an entry for every method or for GET reports cachingEnabled true. */
static void resolve(const struct cfg_stage *st, const struct cfg_method_setting *e,
                    struct caching_view *v)
{
    v->enabled = strcmp(e->http_method, "*") == 0 || strcmp(e->http_method, "GET") == 0;
    v->ttl = CFG_TTL_DEFAULT;
    v->encrypted = false;
    v->require_auth = true;
    v->strategy = CFG_UNAUTH_SUCCEED_WITH_RESPONSE_HEADER;
    for (int rank = 0; rank <= 3; rank++)
        for (size_t i = 0; i < st->n_method_settings; i++) {
            const struct cfg_method_setting *s = &st->method_settings[i];
            if (rank_for(s, e) != rank)
                continue;
            if (s->has_caching_enabled)
                v->enabled = s->caching_enabled;
            if (s->has_cache_ttl_in_seconds)
                v->ttl = s->cache_ttl_in_seconds;
            if (s->has_cache_data_encrypted)
                v->encrypted = s->cache_data_encrypted;
            if (s->has_require_authorization_for_cache_control)
                v->require_auth = s->require_authorization_for_cache_control;
            if (s->has_unauthorized_cache_control_header_strategy)
                v->strategy = s->unauthorized_cache_control_header_strategy;
        }
}

static json_t *setting_json(const struct cfg_stage *st, const struct cfg_method_setting *ms)
{
    struct caching_view v;
    resolve(st, ms, &v);
    json_t *o = json_pack(
        "{s:b, s:b, s:i, s:f, s:b, s:i, s:b, s:b, s:s}", "metricsEnabled",
        ms->has_metrics_enabled && ms->metrics_enabled, "dataTraceEnabled",
        ms->has_data_trace_enabled && ms->data_trace_enabled, "throttlingBurstLimit",
        ms->has_throttling_burst_limit ? ms->throttling_burst_limit : 5000, "throttlingRateLimit",
        ms->has_throttling_rate_limit ? ms->throttling_rate_limit : 10000.0, "cachingEnabled",
        v.enabled, "cacheTtlInSeconds", v.ttl, "cacheDataEncrypted", v.encrypted,
        "requireAuthorizationForCacheControl", v.require_auth,
        "unauthorizedCacheControlHeaderStrategy", cfg_unauth_strategy_name(v.strategy));
    if (ms->logging_level)
        json_object_set_new(o, "loggingLevel", json_string(ms->logging_level));
    return o;
}

static const char *settled_status(const struct cfg_stage *st)
{
    return st->cache_cluster_enabled ? "AVAILABLE" : "NOT_AVAILABLE";
}

/* The Stage shape; status NULL = the settled status. */
static json_t *stage_json(struct admin__ctx *ctx, const struct cfg_api *api,
                          const struct cfg_stage *st, const char *status, int64_t now)
{
    const struct admin__stage_meta *m = meta_of(ctx, api->id, st->name, now);
    json_t *settings = json_object();
    for (size_t i = 0; i < st->n_method_settings; i++) {
        char *key = setting_key(&st->method_settings[i]);
        json_object_set_new(settings, key, setting_json(st, &st->method_settings[i]));
        free(key);
    }
    return json_pack("{s:s, s:b, s:s, s:s, s:o, s:b, s:I, s:I}", "stageName", st->name,
                     "cacheClusterEnabled", st->cache_cluster_enabled, "cacheClusterSize",
                     st->cache_cluster_size ? st->cache_cluster_size : "0.5",
                     "cacheClusterStatus", status ? status : settled_status(st),
                     "methodSettings", settings, "tracingEnabled", 0, "createdDate",
                     (json_int_t)m->created, "lastUpdatedDate", (json_int_t)m->updated);
}

static json_t *restapi_json(struct admin__ctx *ctx, const struct cfg_api *api, int64_t now)
{
    /* An api's creation date: the earliest its stages were seen (now when it has none). */
    int64_t created = now;
    for (size_t s = 0; s < api->n_stages; s++) {
        int64_t t = meta_of(ctx, api->id, api->stages[s].name, now)->created;
        created = GATE_MIN(created, t);
    }
    return json_pack("{s:s, s:s, s:I, s:s, s:{s:[s]}, s:b}", "id", api->id, "name", api->id,
                     "createdDate", (json_int_t)created, "apiKeySource", "HEADER",
                     "endpointConfiguration", "types", "REGIONAL", "disableExecuteApiEndpoint",
                     0);
}

/* ================= lookups ================= */

static const struct cfg_api *find_api(struct admin__aws_call *c, const char *id)
{
    const struct cfg_api *a = cfg_find_api(c->cfg, id);
    if (!a)
        admin__apigw_error(c, 404, "NotFoundException", "Invalid API identifier specified");
    return a;
}

static const struct cfg_stage *find_stage(struct admin__aws_call *c, const struct cfg_api *a,
                                          const char *name)
{
    const struct cfg_stage *st = cfg_find_stage(a, name);
    if (!st)
        admin__apigw_error(c, 404, "NotFoundException", "Invalid stage identifier specified");
    return st;
}

/* ================= handlers ================= */

static void get_rest_apis(struct admin__aws_call *c)
{
    char *limit_s = admin__query_param(c->rq, "limit");
    char *position = admin__query_param(c->rq, "position");
    uint64_t limit = DEFAULT_LIMIT;
    size_t start = 0;
    bool ok = !limit_s || (str_to_u64(limit_s, strlen(limit_s), &limit) && limit >= 1 &&
                           limit <= MAX_LIMIT);
    if (ok && position) {
        /* position: the id of the first api of the page (opaque to clients). */
        for (start = 0; start < c->cfg->n_apis; start++)
            if (strcmp(c->cfg->apis[start].id, position) == 0)
                break;
        ok = start < c->cfg->n_apis;
    }
    if (!ok) {
        admin__apigw_error(c, 400, "BadRequestException",
                           limit_s && !position ? "Invalid limit: must be 1..500"
                                                : "Invalid position or limit specified");
        goto out;
    }
    json_t *items = json_array();
    size_t i = start;
    for (; i < c->cfg->n_apis && (uint64_t)(i - start) < limit; i++)
        json_array_append_new(items, restapi_json(c->ctx, &c->cfg->apis[i], c->rq->now_sec));
    json_t *doc = json_pack("{s:o}", "item", items);
    if (i < c->cfg->n_apis)
        json_object_set_new(doc, "position", json_string(c->cfg->apis[i].id));
    admin__apigw_json(c, 200, doc);
out:
    free(limit_s);
    free(position);
}

static void get_stages(struct admin__aws_call *c, const struct cfg_api *a)
{
    json_t *items = json_array();
    for (size_t s = 0; s < a->n_stages; s++)
        json_array_append_new(items,
                              stage_json(c->ctx, a, &a->stages[s], NULL, c->rq->now_sec));
    admin__apigw_json(c, 200, json_pack("{s:o}", "item", items));
}

static struct srv_stage_cache *stage_cache_of(const struct srv_runtime *rt, const char *api,
                                              const char *stage)
{
    for (size_t a = 0; a < rt->cfg->n_apis; a++) {
        if (strcmp(rt->cfg->apis[a].id, api) != 0)
            continue;
        for (size_t s = 0; s < rt->cfg->apis[a].n_stages; s++)
            if (strcmp(rt->cfg->apis[a].stages[s].name, stage) == 0)
                return srv_runtime_cache(rt, a, s);
    }
    return NULL;
}

static void flush_stage(struct admin__aws_call *c, const struct cfg_api *a,
                        const struct cfg_stage *st)
{
    struct srv_runtime *rt = srv_current_runtime();
    struct srv_stage_cache *sc = rt ? stage_cache_of(rt, a->id, st->name) : NULL;
    long retry_s;
    if (sc && !admin__invalidation_allowed(c->cfg, sc, "FlushStageCache", &retry_s)) {
        srv_runtime_release(&rt);
        admin__apigw_error(c, 429, "TooManyRequestsException", "Too Many Requests");
        return;
    }
    if (sc) {
        /* FLUSH_IN_PROGRESS -> AVAILABLE happens within this call: O(1). */
        uint64_t gen = cache_store_flush(sc->store);
        srv_tier_flushed(sc);
        admin__count(c->ctx, sc, ADMIN_REASON_FLUSH, 1);
        log_info("admin: FlushStageCache %s/%s by %s (generation %llu)", a->id, st->name,
                 c->who->name, (unsigned long long)gen);
    }
    srv_runtime_release(&rt);
    admin__apigw_json(c, 202, NULL);
}

/* ---- UpdateStage ---- */

struct patch_job {
    const char *api, *stage;
    const struct admin__patch *patch;
    int rc; /* of the failing cfg_stage_patch */
    bool was_on, now_on;
    bool caching_changed; /* some method's caching/enabled changed */
    uint64_t was_cap, now_cap;
};

/* Equal caching/enabled settings, entry by entry (method_settings keep their
 * order through patches; a patch that adds or removes one changes the list). */
static bool same_caching(const struct cfg_stage *a, const struct cfg_stage *b)
{
    if (a->n_method_settings != b->n_method_settings)
        return false;
    for (size_t i = 0; i < a->n_method_settings; i++) {
        const struct cfg_method_setting *x = &a->method_settings[i], *y = &b->method_settings[i];
        if (strcmp(x->resource_path, y->resource_path) != 0 ||
            strcmp(x->http_method, y->http_method) != 0 ||
            x->has_caching_enabled != y->has_caching_enabled ||
            (x->has_caching_enabled && x->caching_enabled != y->caching_enabled))
            return false;
    }
    return true;
}

/* srv_update callback: the current snapshot with every operation applied, or NULL. */
static struct cfg *apply_patch(const struct cfg *cur, void *arg, char *err, size_t errlen)
{
    struct patch_job *job = arg;
    const struct cfg_api *a = cfg_find_api(cur, job->api);
    const struct cfg_stage *st = a ? cfg_find_stage(a, job->stage) : NULL;
    if (!st) {
        /* A reload removed it since the lookup. */
        snprintf(err, errlen, "%s", a ? "Invalid stage identifier specified"
                                      : "Invalid API identifier specified");
        job->rc = -ENOENT;
        return NULL;
    }
    job->was_on = st->cache_cluster_enabled;
    job->was_cap = st->cache_capacity_bytes;
    struct cfg *next = cfg_clone(cur);
    for (size_t i = 0; i < job->patch->n_ops; i++) {
        const struct admin__patch_op *op = &job->patch->ops[i];
        job->rc = cfg_stage_patch(next, job->api, job->stage, op->op, op->path, op->value, err,
                                  errlen);
        if (job->rc != 0) {
            cfg_release(&next);
            return NULL;
        }
    }
    const struct cfg_stage *was = st;
    st = cfg_find_stage(cfg_find_api(next, job->api), job->stage);
    job->caching_changed = !same_caching(was, st);
    job->now_on = st->cache_cluster_enabled;
    job->now_cap = st->cache_capacity_bytes;
    return next;
}

/* The status AWS would show right after the change (aws-wire.md §2.3), or NULL. */
static const char *transition(const struct patch_job *job)
{
    if (!job->was_on && job->now_on)
        return "CREATE_IN_PROGRESS";
    if (job->was_on && !job->now_on)
        return "DELETE_IN_PROGRESS";
    if (job->now_on && job->was_cap != job->now_cap)
        return "CREATE_IN_PROGRESS"; /* the cluster is replaced: srv_runtime_new built it empty */
    return NULL;
}

/* Switching the cache on or off replaces the cluster in AWS: nothing cached before
 * may be served after, so the (kept) store is flushed. Turning one method's
 * caching off and on again must not bring back what it cached before either:
 * a change of any method's caching/enabled flushes the stage too (O(1)). */
static void drop_old_entries(const struct patch_job *job)
{
    if (job->was_on == job->now_on && !job->caching_changed)
        return;
    struct srv_runtime *rt = srv_current_runtime();
    struct srv_stage_cache *sc = rt ? stage_cache_of(rt, job->api, job->stage) : NULL;
    if (sc) {
        cache_store_flush(sc->store);
        srv_tier_flushed(sc);
    }
    srv_runtime_release(&rt);
}

static void update_stage(struct admin__aws_call *c, const struct cfg_api *a,
                         const struct cfg_stage *st)
{
    struct admin__patch patch;
    const char *perr;
    if (admin__patch_parse(c->rq->body, c->rq->body_len, &patch, &perr) != 0) {
        admin__apigw_error(c, 400, "BadRequestException", perr);
        return;
    }
    struct patch_job job = {.api = a->id, .stage = st->name, .patch = &patch};
    char err[512] = "";
    int rc = srv_update(apply_patch, &job, err, sizeof(err));
    if (rc != 0) {
        bool gone = rc == -1 && job.rc == -ENOENT;
        log_info("admin: UpdateStage %s/%s by %s refused: %s", job.api, job.stage, c->who->name,
                 err);
        admin__apigw_error(c, gone ? 404 : 400, gone ? "NotFoundException" : "BadRequestException",
                           err);
        admin__patch_free(&patch);
        return;
    }
    drop_old_entries(&job);
    log_info("admin: UpdateStage %s/%s by %s: %zu operations applied (live; a reload drops them)",
             job.api, job.stage, c->who->name, patch.n_ops);
    admin__patch_free(&patch);
    meta_of(c->ctx, job.api, job.stage, c->rq->now_sec)->updated = c->rq->now_sec;
    /* Answer from the snapshot just published (a reload may already have replaced it:
     * then that is the truth). */
    struct srv_runtime *rt = srv_current_runtime();
    const struct cfg_api *na = rt ? cfg_find_api(rt->cfg, job.api) : NULL;
    const struct cfg_stage *ns = na ? cfg_find_stage(na, job.stage) : NULL;
    if (ns)
        admin__apigw_json(c, 200, stage_json(c->ctx, na, ns, transition(&job), c->rq->now_sec));
    else
        admin__apigw_error(c, 404, "NotFoundException", "Invalid stage identifier specified");
    srv_runtime_release(&rt);
}

/* ================= routing ================= */

static bool method_is(const struct admin_request *rq, const char *m)
{
    return str_eq_c(rq->method, rq->method_len, m);
}

static bool is_get(const struct admin_request *rq)
{
    return method_is(rq, "GET") || method_is(rq, "HEAD");
}

enum op { OP_NONE = 0, OP_GET_APIS, OP_GET_API, OP_GET_STAGES, OP_GET_STAGE, OP_UPDATE, OP_FLUSH };

/* Which call, which IAM action, which resource ARNs (aws-wire.md; docs/admin-api.md). */
static enum op classify(const struct admin__aws_call *c, bool *known_path)
{
    const struct admin_request *rq = c->rq;
    size_t n = c->n_segs;
    char *const *s = c->seg;
    *known_path = true;
    if (n == 1)
        return is_get(rq) ? OP_GET_APIS : OP_NONE;
    if (n == 2)
        return is_get(rq) ? OP_GET_API : OP_NONE;
    if (n == 3 && strcmp(s[2], "stages") == 0)
        return is_get(rq) ? OP_GET_STAGES : OP_NONE;
    if (n == 4 && strcmp(s[2], "stages") == 0)
        return is_get(rq) ? OP_GET_STAGE : method_is(rq, "PATCH") ? OP_UPDATE : OP_NONE;
    if (n == 6 && strcmp(s[2], "stages") == 0 && strcmp(s[4], "cache") == 0 &&
        strcmp(s[5], "data") == 0)
        return method_is(rq, "DELETE") ? OP_FLUSH : OP_NONE;
    *known_path = false;
    return OP_NONE;
}

static bool authorised(struct admin__aws_call *c, enum op op)
{
    const char *region = c->cfg->server.region;
    struct buf arn[2];
    buf_init(&arn[0]);
    buf_init(&arn[1]);
    buf_appendf(&arn[0], APIGW_ARN "/restapis", region);
    if (op != OP_GET_APIS)
        buf_appendf(&arn[0], "/%s", c->seg[1]);
    if (op == OP_GET_STAGES)
        buf_append_str(&arn[0], "/stages");
    if (op == OP_GET_STAGE || op == OP_UPDATE || op == OP_FLUSH)
        buf_appendf(&arn[0], "/stages/%s", c->seg[3]);
    size_t n = 1;
    if (op == OP_FLUSH) {
        /* IAM names the flush by its own path too; a grant on either works. */
        buf_appendf(&arn[1], "%s/cache/data", arn[0].data);
        n = 2;
    }
    const char *action = op == OP_UPDATE  ? "apigateway:PATCH"
                         : op == OP_FLUSH ? "apigateway:DELETE"
                                          : "apigateway:GET";
    const char *arns[2] = {arn[0].data, arn[1].data};
    bool ok = admin__aws_allowed(c, action, arns, n, false);
    buf_free(&arn[0]);
    buf_free(&arn[1]);
    return ok;
}

void admin__apigw_route(struct admin__aws_call *c)
{
    bool known_path;
    enum op op = c->n_segs <= ADMIN_AWS_MAX_SEGS ? classify(c, &known_path) : OP_NONE;
    if (c->n_segs > ADMIN_AWS_MAX_SEGS)
        known_path = false;
    if (op == OP_NONE) {
        if (known_path)
            admin__apigw_error(c, 400, "BadRequestException",
                               "This operation is not supported by gatecache: apis and stages "
                               "come from the configuration file");
        else
            admin__apigw_error(c, 404, "NotFoundException", "Invalid resource path specified");
        return;
    }
    if (!authorised(c, op))
        return;
    if (op == OP_GET_APIS) {
        get_rest_apis(c);
        return;
    }
    const struct cfg_api *a = find_api(c, c->seg[1]);
    if (!a)
        return;
    if (op == OP_GET_API) {
        admin__apigw_json(c, 200, restapi_json(c->ctx, a, c->rq->now_sec));
        return;
    }
    if (op == OP_GET_STAGES) {
        get_stages(c, a);
        return;
    }
    const struct cfg_stage *st = find_stage(c, a, c->seg[3]);
    if (!st)
        return;
    if (op == OP_GET_STAGE)
        admin__apigw_json(c, 200, stage_json(c->ctx, a, st, NULL, c->rq->now_sec));
    else if (op == OP_UPDATE)
        update_stage(c, a, st);
    else
        flush_stage(c, a, st);
}
