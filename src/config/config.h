/*
 * config — the YAML configuration file turned into one immutable, refcounted
 * snapshot (struct cfg). A reload builds a new snapshot and swaps it in; code
 * that serves a request holds a ref to the snapshot it started with.
 *
 * Validation collects every error as "FILE:LINE:COL: message" (1-based line and
 * column of the offending key or value) and keeps going, so `gatecache check`
 * can print them all. Unknown keys, wrong types, out-of-range values, unknown
 * cache sizes, duplicate resources/methods/stages and bad templates are errors.
 * Secrets (identity keys, api key values) are read from env or files at load
 * time and never appear in error messages.
 */
#ifndef GATE_CONFIG_H
#define GATE_CONFIG_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CFG_TTL_DEFAULT 300
#define CFG_TTL_MAX 3600
#define CFG_MAX_CACHED_RESPONSE_DEFAULT 1048576
#define CFG_STALE_IF_ERROR_DEFAULT 300
#define CFG_TIMEOUT_MS_DEFAULT 29000

struct cfg_listen {
    char *host; /* owned; numeric IPv4/IPv6 address, e.g. "127.0.0.1" or "::1" */
    int port;
};

struct cfg_limits {
    size_t max_header_bytes;     /* default 16384 */
    size_t max_headers;          /* default 100 */
    size_t max_url_bytes;        /* default 8192 */
    uint64_t max_body_bytes;     /* default 10 MiB (API Gateway's payload limit) */
    uint32_t header_timeout_ms;  /* default 10000: whole head must arrive within */
    uint32_t body_timeout_ms;    /* default 30000: gap allowed between body reads */
    uint32_t idle_timeout_ms;    /* default 60000: keep-alive idle */
    uint32_t max_connections;    /* default 10000, per process */
    uint32_t drain_timeout_ms;   /* default 10000: SIGTERM waits this long at most */
    uint32_t invalidations_per_second; /* default 10 per stage; 0 = no limit (admin/AWS calls) */
    uint32_t invalidation_burst;       /* default 20: calls allowed at once */
};

struct cfg_base_path_mapping {
    char *base_path; /* owned; "" = the root, otherwise without slashes, e.g. "v1" */
    char *api;       /* owned; api id */
    char *stage;     /* owned */
    char *host;      /* owned or NULL: only this Host (case-insensitive, port ignored) */
};

enum cfg_backend_type { CFG_BACKEND_MEMORY = 0, CFG_BACKEND_REDIS };

#define CFG_BACKEND_TIMEOUT_MAX_MS 60000

/* server.cache_backend. Everything but type is for redis only (docs/redis.md). */
struct cfg_cache_backend {
    enum cfg_backend_type type; /* default memory */
    char *host;       /* owned (redis): from url; IPv6 without brackets */
    int port;         /* redis: from url, default 6379 */
    int db;           /* redis: from url, default 0 */
    char *username;   /* owned or NULL: url's user or `username` */
    char *password;   /* owned secret or NULL: url's password or `password`; wiped on free */
    uint32_t connect_timeout_ms; /* default 200; 1..60000 */
    uint32_t command_timeout_ms; /* default 50; 1..60000 */
    uint32_t reconnect_min_ms;   /* default 100; 1..60000 */
    uint32_t reconnect_max_ms;   /* default 5000; reconnect_min_ms..60000 */
    char *key_prefix; /* owned (redis); default "gc:"; may be "" */
};

struct cfg_server {
    struct cfg_listen *listen; /* owned array; default 127.0.0.1:8080 */
    size_t n_listen;
    int workers;                 /* resolved: "auto" = number of online CPUs */
    struct cfg_listen admin_listen; /* host NULL = no admin listener */
    char *admin_token_file;      /* owned or NULL */
    char *region;                /* owned; default "us-east-1" */
    char *account_id;            /* owned; default "123456789012" */
    char *cache_encryption_key_file; /* owned or NULL: AES-256 key for cache_data_encrypted */
    struct cfg_limits limits;
    struct cfg_base_path_mapping *mappings; /* owned array */
    size_t n_mappings;
    struct cfg_cache_backend cache_backend;
};

struct cfg_identity {
    char *name;              /* owned */
    char *access_key_id;     /* owned */
    char *secret_access_key; /* owned secret, resolved from env/file at load time */
    json_t *policy;          /* ref (json_decref): IAM policy document, YAML converted to JSON */
    int policy_line;         /* where the policy starts, for later error messages */
    int policy_col;
};

struct cfg_api_key {
    char *name;  /* owned */
    char *value; /* owned secret */
};

enum cfg_integration_type { CFG_INTEGRATION_HTTP_PROXY = 0, CFG_INTEGRATION_MOCK };

struct cfg_kv {
    char *name;  /* owned */
    char *value; /* owned */
};

struct cfg_integration {
    enum cfg_integration_type type;
    char *uri;           /* owned (HTTP_PROXY): http(s)://host[:port]/path with {param} / {greedy} */
    uint32_t timeout_ms; /* HTTP_PROXY; default 29000, 50..29000 as API Gateway (we allow up to 300000) */
    int mock_status;     /* MOCK; default 200 */
    struct cfg_kv *mock_headers; /* owned array (MOCK) */
    size_t n_mock_headers;
    char *mock_body;     /* owned (MOCK); "" default */
    size_t mock_body_len;
};

struct cfg_method {
    char *http_method; /* owned; upper case: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, ANY */
    bool api_key_required;
    struct cfg_integration integration;
    char **cache_key_parameters; /* owned array of owned strings, validated forms:
                                    method.request.querystring.NAME | .querystring.*
                                    method.request.header.NAME | method.request.path.NAME
                                    method.request.body */
    size_t n_cache_key_parameters;
    char **invalidates; /* owned array: "GET /projects/{id}/members" */
    size_t n_invalidates;
    int line; /* position of the method key, for diagnostics */
};

struct cfg_resource {
    char *path; /* owned; template, e.g. "/pets/{id}" or "/{proxy+}"; validated */
    struct cfg_method *methods; /* owned array */
    size_t n_methods;
};

enum cfg_unauth_strategy {
    CFG_UNAUTH_FAIL_WITH_403 = 0,
    CFG_UNAUTH_SUCCEED_WITH_RESPONSE_HEADER,
    CFG_UNAUTH_SUCCEED_WITHOUT_RESPONSE_HEADER,
};

/* One entry of a stage's method_settings. Every optional field has a has_
 * flag: resolution (route/) takes each field from the most specific setting
 * that sets it. */
struct cfg_method_setting {
    char *resource_path; /* owned; "/" "*" (all resources) or a resource path */
    char *http_method;   /* owned; "*" or a method */
    bool has_caching_enabled;
    bool caching_enabled;
    bool has_cache_ttl_in_seconds;
    int cache_ttl_in_seconds; /* 0..3600 */
    bool has_cache_data_encrypted;
    bool cache_data_encrypted;
    bool has_require_authorization_for_cache_control;
    bool require_authorization_for_cache_control;
    bool has_unauthorized_cache_control_header_strategy;
    enum cfg_unauth_strategy unauthorized_cache_control_header_strategy;
    bool has_honor_origin_cache_control;
    bool honor_origin_cache_control;
    bool has_min_ttl;
    int min_ttl; /* 0..3600 */
    bool has_max_ttl;
    int max_ttl; /* 0..3600 */
    bool has_default_ttl;
    int default_ttl; /* 0..3600 */
    bool has_stale_if_error_seconds;
    int stale_if_error_seconds; /* 0..86400 */
    bool has_cache_authorized_requests;
    bool cache_authorized_requests;
    bool has_max_cached_response_bytes;
    uint64_t max_cached_response_bytes; /* 1..64 MiB */
    /* Set only by UpdateStage (cfg_stage_patch); no YAML key. The API Gateway members below
     * have no effect here: they are kept so GetStage returns what UpdateStage stored. */
    char *aws_key; /* owned or NULL: the methodSettings key as a patch last spelled it
                      ("~1pets/GET", "pets/GET"); NULL = derived from resource_path */
    bool has_metrics_enabled;
    bool metrics_enabled;
    bool has_data_trace_enabled;
    bool data_trace_enabled;
    char *logging_level; /* owned or NULL: OFF, ERROR or INFO */
    bool has_throttling_burst_limit;
    int throttling_burst_limit;
    bool has_throttling_rate_limit;
    double throttling_rate_limit;
};

struct cfg_stage {
    char *name; /* owned */
    bool cache_cluster_enabled;
    char *cache_cluster_size; /* owned; as written ("0.5", "64MiB"); default "0.5" */
    uint64_t cache_capacity_bytes; /* resolved: 0.5 -> 0.5 GB = 536870912 (GiB units as AWS) */
    char *distribution_id; /* owned; default "{api-id}-{stage}" */
    bool in_process_only;  /* cache_backend: {type: memory} on the stage: its entries stay
                              out of the shared tier (invalidations are still shared) */
    struct cfg_method_setting *method_settings; /* owned array, in file order */
    size_t n_method_settings;
};

struct cfg_api {
    char *id; /* owned */
    struct cfg_resource *resources; /* owned array, file order */
    size_t n_resources;
    struct cfg_stage *stages; /* owned array, file order */
    size_t n_stages;
};

struct cfg {
    atomic_int refs;   /* private */
    char *path;        /* owned; the file it was loaded from */
    struct cfg_server server;
    struct cfg_identity *identities; /* owned array */
    size_t n_identities;
    struct cfg_api_key *api_keys; /* owned array */
    size_t n_api_keys;
    struct cfg_api *apis; /* owned array */
    size_t n_apis;
};

/* Errors gathered by a load: every line already formatted as FILE:LINE:COL: message. */
struct cfg_errors {
    char **lines; /* owned array of owned strings */
    size_t n;
};
void cfg_errors_free(struct cfg_errors *e);

/*
 * Loads and validates `path`. On success returns 0 and *out is a new snapshot
 * with one ref (release with cfg_release). On failure returns -1, *out is
 * NULL and `errs` holds at least one line. An unreadable file is one error
 * "FILE:0:0: cannot read: <strerror>".
 */
int cfg_load(const char *path, struct cfg **out, struct cfg_errors *errs);
/* cfg_load_flags: the secrets (identity keys, api key values) are not read:
 * for the admin CLI, which needs only admin_listen and admin_token_file and
 * should not need the gateway's secrets in its environment. Such a snapshot
 * holds "" for every secret and must never serve traffic. */
#define CFG_LOAD_NO_SECRETS 0x1u
int cfg_load_flags(const char *path, unsigned flags, struct cfg **out, struct cfg_errors *errs);

/* The same from a string in memory; `name` stands for FILE in messages. */
int cfg_load_string(const char *name, const char *yaml, size_t len, struct cfg **out,
                    struct cfg_errors *errs);

struct cfg *cfg_ref(struct cfg *c); /* returns c; a new ref */
void cfg_release(struct cfg **c);   /* drops a ref, frees at zero, NULLs *c; NULL is a no-op */

/* Lookups (borrowed results, valid while the snapshot is held; NULL if absent). */
const struct cfg_api *cfg_find_api(const struct cfg *c, const char *id);
const struct cfg_stage *cfg_find_stage(const struct cfg_api *api, const char *name);

/* Smallest stage cache accepted (config and UpdateStage). */
#define CFG_CACHE_SIZE_MIN (64u << 10)

/*
 * A deep copy of c with one ref (release with cfg_release): every string and
 * array is duplicated, secrets included, policies with json_deep_copy. Used to
 * change a live stage: copy the current snapshot, patch the copy, publish it.
 */
struct cfg *cfg_clone(const struct cfg *c);

/*
 * Applies one API Gateway UpdateStage patch operation to stage `stage` of api
 * `api` in c (a private copy from cfg_clone; never a published snapshot).
 * op is "add", "remove", "replace", "move", "copy" or "test"; path and value
 * as on the wire (aws-wire.md §3.5; value NULL when absent). Supported:
 *   replace /cacheClusterEnabled            "true" | "false"
 *   replace /cacheClusterSize               as cache_cluster_size (API Gateway sizes or
 *                                           a size with a unit, at least 64KiB)
 *   replace /{key}/caching/enabled | dataEncrypted | requireAuthorizationForCacheControl
 *                                           "true" | "false"
 *   replace /{key}/caching/ttlInSeconds     0..3600
 *   replace /{key}/caching/unauthorizedCacheControlHeaderStrategy  a strategy name
 *   replace /{key}/metrics/enabled, /{key}/logging/dataTrace   "true" | "false" (stored only)
 *   replace /{key}/logging/loglevel         OFF | ERROR | INFO (stored only)
 *   replace /{key}/throttling/burstLimit    integer; /{key}/throttling/rateLimit decimal
 *   remove  /{key}                          deletes that method setting
 * {key} is "*" "/" "*" or RESOURCE/METHOD, parsed from the right; RESOURCE with '/' escaped
 * as "~1" (and '~' as "~0") or raw, leading '/' optional; it must name a resource of the
 * api (or "*") and METHOD "*" or a method that resource has. A setting that does not exist
 * yet is created (its unset fields inherit, as config method settings do).
 * Returns 0; -ENOENT when the api or stage does not exist; -EINVAL with a message in err
 * (API Gateway's wording where known) for anything else. On error c may be half patched:
 * discard it.
 */
int cfg_stage_patch(struct cfg *c, const char *api, const char *stage, const char *op,
                    const char *path, const char *value, char *err, size_t errlen);

/* Parses a cache_cluster_size ("0.5", "6.1", ..., or "64MiB", "1GB", "512KiB")
 * into bytes; false when it is neither an API Gateway size nor a size with a unit. */
bool cfg_parse_cache_size(const char *s, uint64_t *bytes);
/* Name of a strategy as in the API ("FAIL_WITH_403", ...). */
const char *cfg_unauth_strategy_name(enum cfg_unauth_strategy s);

#endif
