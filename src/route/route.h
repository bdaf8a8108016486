/*
 * route — from a config snapshot to a routing table: which API, stage,
 * resource and method a request path selects, the effective cache settings of
 * that method in that stage (method settings resolved most specific first),
 * the integration URL with path parameters filled in, and the cache key.
 *
 * The table is immutable once built and owned by whoever built it (the
 * server's runtime snapshot); it borrows strings from the cfg snapshot, which
 * must outlive it. Matching and key building take plain parameters and never
 * allocate except into caller-given buffers.
 */
#ifndef GATE_ROUTE_H
#define GATE_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "util/util.h"

#define ROUTE_MAX_PARAMS 16

/* The effective cache settings of one method in one stage. */
struct route_settings {
    bool caching_enabled; /* stage cache on, the method's setting on, and ttl > 0 */
    int ttl;              /* seconds, 0..3600 */
    bool data_encrypted;
    bool require_authorization_for_cache_control;
    enum cfg_unauth_strategy unauthorized_strategy;
    bool honor_origin_cache_control;
    int min_ttl, max_ttl, default_ttl;
    int stale_if_error_seconds;
    bool cache_authorized_requests;
    uint64_t max_cached_response_bytes;
};

enum route_seg_kind { ROUTE_SEG_LITERAL = 0, ROUTE_SEG_PARAM, ROUTE_SEG_GREEDY };

struct route_seg {
    enum route_seg_kind kind;
    const char *text; /* borrowed from cfg: literal text or parameter name */
    size_t len;
};

enum route_keyparam_kind {
    ROUTE_KEY_QUERY = 0, /* method.request.querystring.NAME */
    ROUTE_KEY_QUERY_ALL, /* method.request.querystring.* */
    ROUTE_KEY_HEADER,    /* method.request.header.NAME */
    ROUTE_KEY_PATH,      /* method.request.path.NAME */
    ROUTE_KEY_BODY,      /* method.request.body (digest) */
};

struct route_keyparam {
    enum route_keyparam_kind kind;
    const char *name; /* borrowed from cfg; NULL for QUERY_ALL and BODY */
    size_t len;
};

/* A write-triggered invalidation target: "GET /projects/{id}/members". */
struct route_invalidation {
    const char *method;          /* borrowed */
    struct route_seg *segs;      /* owned by the table */
    size_t n_segs;
};

struct route_method {
    const struct cfg_method *cfg; /* borrowed */
    /* Precomputed from cfg->http_method so matching compares no C strings. */
    size_t http_method_len;
    bool is_any;              /* "ANY" */
    int method_index;         /* route__method_index of http_method (not ANY) */
    struct route_keyparam *keyparams; /* owned by the table */
    size_t n_keyparams;
    bool keys_authorization; /* Authorization is a key header: no BYPASS for it */
    bool keys_cookie;
    struct route_invalidation *invalidates; /* owned by the table */
    size_t n_invalidates;
    struct route_settings *settings; /* owned: one per stage of the api, stage order */
    /* owned: one per stage of the api, stage order: route_label_hash of (api id,
     * stage name, resource path, http_method), the metrics label key, computed
     * here so that a request finds its metrics series with one probe. */
    uint64_t *label_hash;
};

struct route_resource {
    const struct cfg_resource *cfg; /* borrowed */
    struct route_seg *segs;         /* owned by the table */
    size_t n_segs;
    struct route_method *methods; /* owned by the table, cfg order */
    size_t n_methods;
};

struct route_api {
    const struct cfg_api *cfg; /* borrowed */
    struct route_resource *resources; /* owned by the table */
    size_t n_resources;
};

/* A base path mapping resolved to table indexes once, not per request. */
struct route_mapping {
    const struct cfg_base_path_mapping *cfg; /* borrowed */
    size_t base_path_len;
    bool resolved; /* api and stage exist (config validation guarantees it) */
    size_t api_index, stage_index;
};

struct route_table {
    const struct cfg *cfg; /* borrowed */
    struct route_api *apis; /* owned */
    size_t n_apis;
    struct route_mapping *mappings; /* owned: cfg->server.mappings, same order */
    size_t n_mappings;
};

/* Builds the table of a validated snapshot. owned: route_table_free. */
struct route_table *route_table_new(const struct cfg *cfg);
void route_table_free(struct route_table **t);

struct route_param {
    const char *name; /* borrowed from cfg */
    size_t name_len;
    const char *value; /* borrowed from the request path (still percent-encoded) */
    size_t value_len;
};

struct route_match {
    size_t api_index;
    size_t stage_index;
    const struct route_api *api;
    const struct cfg_stage *stage;
    const struct route_resource *resource;
    const struct route_method *method;
    const struct route_settings *settings;
    const char *path; /* borrowed: the request path within the stage, "/pets/1" */
    size_t path_len;
    struct route_param params[ROUTE_MAX_PARAMS];
    size_t n_params;
};

enum route_status {
    ROUTE_OK = 0,
    ROUTE_NO_API = -1,      /* no API for this Host: 404 */
    ROUTE_NO_STAGE = -2,    /* 403 Forbidden */
    ROUTE_NO_RESOURCE = -3, /* 403 Missing Authentication Token (API Gateway's answer) */
    ROUTE_NO_METHOD = -4,   /* 403 Missing Authentication Token */
    ROUTE_BAD_PATH = -5,    /* dot segments, empty path: 400 */
};

/*
 * Matches a request. host may be NULL. path is the request path without the
 * query. Base path mappings are tried first (longest base path, host-specific
 * before host-less), then "/{stage}/..." of the API chosen by Host (or the only
 * API). Returns ROUTE_OK and fills *m, or a negative route_status.
 */
int route_match(const struct route_table *t, const char *host, size_t host_len,
                const char *method, size_t method_len, const char *path, size_t path_len,
                struct route_match *m);

/* Template match of one resource against a path within a stage; fills params.
 * Returns the specificity score (higher wins) or -1 when it does not match. */
int route_resource_match(const struct route_resource *r, const char *path, size_t len,
                         struct route_param *params, size_t *n_params);

/* Appends the integration URL (uri with {param}s filled, plus "?query" when the
 * request has one) to out. */
void route_build_url(const struct route_match *m, const char *query, size_t query_len,
                     struct buf *out);

/* What the key builder reads from a request. */
struct route_request_view {
    const char *method;
    size_t method_len;
    const char *query; /* NULL when absent */
    size_t query_len;
    /* header lookup: the value of the nth (0-based) field line named `name`
     * (case-insensitive), NULL when there are fewer lines */
    const char *(*header)(void *ctx, const char *name, size_t name_len, size_t nth,
                          size_t *value_len);
    void *ctx;
    const char *body;
    size_t body_len;
};

/* Appends the cache key of the matched request (method, path within the stage,
 * then each key parameter as name=value or name absent) to out. Parameters not
 * named in the method's cache_key_parameters never enter the key. */
void route_build_key(const struct route_match *m, const struct route_request_view *rv,
                     struct buf *out);

/* Fills the path of a write-triggered invalidation target with the params of
 * the matched write request ("/projects/{id}/members" -> "/projects/ABC/members").
 * Returns false when a parameter is missing. */
bool route_fill_invalidation(const struct route_invalidation *inv, const struct route_match *m,
                             struct buf *out);

/* Hash of a metrics label set (pure; any strings, "" allowed). Strings are
 * separated, so ("ab", "c") and ("a", "bc") differ. */
uint64_t route_label_hash(const char *api, const char *stage, const char *resource,
                          const char *method);

/* Resolves the settings of (resource_path, http_method) in a stage; exposed for tests. */
void route_resolve_settings(const struct cfg_stage *stage, const char *resource_path,
                            const char *http_method, struct route_settings *out);

#endif
