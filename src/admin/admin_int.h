/*
 * admin — declarations shared by the files of the admin module: the request
 * handler that the listener calls (split from the sockets so the router is
 * unit-tested without I/O), the invalidation body parser, the Prometheus
 * exposition and the handler's state.
 *
 * Threading: everything here runs on the admin thread only (one request at a
 * time), except that it reads stage caches, which any thread may touch.
 */
#ifndef GATE_ADMIN_INT_H
#define GATE_ADMIN_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admin/admin.h"
#include "http/http.h"
#include "server/server.h"
#include "util/util.h"

/* Limits of the admin listener (fixed: the admin API is not the data plane). */
#define ADMIN_MAX_HEAD 16384u
#define ADMIN_MAX_HEADERS 100u
#define ADMIN_MAX_URL 8192u
#define ADMIN_MAX_BODY (1024u * 1024u)
/* Per invalidation call, as CloudFront's quota of paths per call. */
#define ADMIN_MAX_PATHS 3000u
#define ADMIN_MAX_TAGS 100u
/* One path or tag; longer ones cannot match a stored entry's URL anyway. */
#define ADMIN_MAX_ITEM 8192u

/* Why the admin API removed entries: the reason label of
 * gatecache_cache_invalidations_total. One table (STYLE §8). */
#define ADMIN_REASONS(X)                                                                           \
    X(FLUSH, "flush")                                                                              \
    X(PATH, "path")                                                                                \
    X(TAG, "tag")

enum admin__reason {
#define ADMIN__REASON_ENUM(id, name) ADMIN_REASON_##id,
    ADMIN_REASONS(ADMIN__REASON_ENUM)
#undef ADMIN__REASON_ENUM
        ADMIN_REASON__COUNT
};

/* Invalidation counts of one stage by reason, kept by the handler (stage
 * caches do not know reasons). Keyed by names so they survive reloads. */
struct admin__stage_counts {
    char *api;   /* owned */
    char *stage; /* owned */
    uint64_t by_reason[ADMIN_REASON__COUNT];
};

/* ---- AWS-compatible state, keyed by names so it survives reloads and live changes ---- */

/* When the admin API first saw a stage and when UpdateStage last changed it
 * (API Gateway's createdDate / lastUpdatedDate; epoch seconds). */
struct admin__stage_meta {
    char *api;   /* owned */
    char *stage; /* owned */
    int64_t created;
    int64_t updated;
};

/* Invalidations kept per CloudFront distribution (newest last). */
#define ADMIN_CF_HISTORY 1000u

struct admin__cf_inval {
    char id[16];      /* "I" + 13 upper-case hex digits */
    char *caller_ref; /* owned */
    char **paths;     /* owned array of owned strings, in request order */
    size_t n_paths;
    int64_t create_ms; /* wall clock */
};

struct admin__cf_dist {
    char *id;                      /* owned: the distribution id */
    struct admin__cf_inval *items; /* owned array, oldest first, at most ADMIN_CF_HISTORY */
    size_t n_items;
};

/* State of the request handler; admin thread only. */
struct admin__ctx {
    char *token; /* owned secret or NULL (no auth); never logged or echoed */
    size_t token_len;
    uint64_t seq;                       /* invalidation id fallback when random bytes fail */
    struct admin__stage_counts *counts; /* owned array */
    size_t n_counts;
    struct admin__stage_meta *meta; /* owned array (aws_apigw.c) */
    size_t n_meta;
    struct admin__cf_dist *dists; /* owned array (aws_cloudfront.c) */
    size_t n_dists;
};

/* Frees what ctx owns (the token is wiped first); ctx may be reused after. */
void admin__ctx_free(struct admin__ctx *ctx);
/* Reads a token file: trailing whitespace trimmed; empty, unreadable or
 * larger than 4 KiB is an error (-1, *err set to a static message). On success
 * *token is owned (free after wiping). */
int admin__read_token(const char *path, char **token, size_t *len, const char **err);

/* One parsed admin request; every span is borrowed from the listener's
 * buffer for the duration of admin__handle. */
struct admin_request {
    const char *method;
    size_t method_len;
    const char *path; /* without the query, as received (percent-encoded) */
    size_t path_len;
    const char *query; /* after '?', NULL when the target has none */
    size_t query_len;
    const char *target; /* the raw request-target (path and query) */
    size_t target_len;
    const char *authorization; /* the Authorization header value or NULL */
    size_t authorization_len;
    const char *host; /* the Host header value or NULL */
    size_t host_len;
    const struct http_header *headers; /* every header in arrival order (SigV4 signs them) */
    size_t n_headers;
    const char *body;
    size_t body_len;
    int64_t now_sec; /* wall clock, seconds since the epoch (SigV4 window, timestamps) */
};

struct admin_response {
    int status;
    const char *content_type; /* static */
    const char *allow;        /* static or NULL: the Allow header of a 405 */
    bool www_authenticate;    /* add WWW-Authenticate: Bearer (401) */
    struct buf headers;       /* owned: extra "Name: value\r\n" lines (admin__add_header) */
    struct buf body;          /* owned: admin__response_free */
};

/* Appends a header line to rs; CR and LF in name or value are dropped. */
void admin__add_header(struct admin_response *rs, const char *name, const char *value);
/* A new invalidation id in CloudFront's style: 'I' + 13 upper-case hex digits. */
void admin__new_invalidation_id(struct admin__ctx *ctx, char id[16]);

void admin__response_init(struct admin_response *rs);
void admin__response_free(struct admin_response *rs);
/* Sets a JSON error answer {"message": msg}. */
void admin__error(struct admin_response *rs, int status, const char *msg);
/* Sets a JSON answer from doc (steals the caller's ref). */
void admin__json(struct admin_response *rs, int status, json_t *doc);

/*
 * Routes and answers one request (api.c). Never fails: every outcome is an
 * answer in *rs (initialised by the caller). Reads the current runtime
 * snapshot; HEAD is answered as GET (the listener drops the body).
 */
void admin__handle(struct admin__ctx *ctx, const struct admin_request *rq,
                   struct admin_response *rs);

/* ---- invalidation request body (invalidation.c) ---- */

struct admin__inval {
    json_t *doc;        /* ref: the parsed body; released by admin__inval_free */
    const char **paths; /* owned array; strings borrowed from doc */
    size_t n_paths;
    const char **tags; /* owned array; strings borrowed from doc */
    size_t n_tags;
};

/*
 * Parses {"paths": [...], "tags": [...]}: a JSON object (no duplicate or
 * unknown keys) with optional arrays of strings, at least one path or tag in
 * all, at most ADMIN_MAX_PATHS paths and ADMIN_MAX_TAGS tags. A path starts
 * with '/', has no '?', no control byte, and '*' only as its last byte. A tag
 * is non-empty, without ',' or control bytes. Strings hold no NUL.
 * Returns 0, or -1 with *err pointing to a static message (400); *out is
 * then empty. Free a parsed body with admin__inval_free.
 */
int admin__inval_parse(const char *body, size_t len, struct admin__inval *out, const char **err);
void admin__inval_free(struct admin__inval *iv);

/* Counts n invalidations of a stage for `why` (metrics). */
void admin__count(struct admin__ctx *ctx, struct srv_stage_cache *sc, enum admin__reason why,
                  uint64_t n);
/* Invalidates paths (exact, or a prefix when ending in '*'; a lone "/" "*" is a flush)
 * in a stage's store, counting them; returns the entries removed. Paths must have
 * passed admin__inval_check_path. */
/* Flushes and invalidations reset or walk a whole stage, so a client calling
 * them in a loop would keep the cache empty: each stage takes at most
 * limits.invalidations_per_second (burst limits.invalidation_burst) from the
 * admin API, API Gateway's FlushStageCache and CloudFront's
 * CreateInvalidation together. False = refuse the call; *retry_s is the wait. */
bool admin__invalidation_allowed(const struct cfg *cfg, struct srv_stage_cache *sc,
                                 const char *what, long *retry_s);
uint64_t admin__invalidate_paths(struct admin__ctx *ctx, struct srv_stage_cache *sc,
                                 const char *const *paths, size_t n);
/* NULL when p[0..len) is a valid invalidation path, else a static message. */
const char *admin__inval_check_path(const char *p, size_t len);

/* ---- AWS-compatible subset (aws_*.c; docs/admin-api.md) ---- */

/* True when rq is for the API Gateway (/restapis...) or CloudFront (/2020-05-31/...)
 * subset. Those routes authenticate with SigV4, never with the bearer token. */
bool admin__aws_is_route(const struct admin_request *rq);
/* Answers an AWS route: SigV4 + IAM policy, then the call. Never fails. */
void admin__aws_handle(struct admin__ctx *ctx, const struct admin_request *rq,
                       struct admin_response *rs);
/* Frees the AWS state of ctx (stage metadata, invalidation histories). */
void admin__aws_free(struct admin__ctx *ctx);

#define ADMIN_AWS_MAX_SEGS 8

/* One call of the AWS subset while it is answered (aws_common.c builds it). */
struct admin__aws_call {
    struct admin__ctx *ctx;
    const struct admin_request *rq; /* borrowed */
    struct admin_response *rs;      /* borrowed */
    char request_id[37];            /* x-amzn-RequestId / x-amz-request-id: a random UUID */
    char *seg[ADMIN_AWS_MAX_SEGS];  /* owned: percent-decoded path segments */
    size_t n_segs;                  /* ADMIN_AWS_MAX_SEGS + 1 when the path is not routable */
    const struct cfg_identity *who; /* borrowed from cfg: the signer, once verified */
    const struct cfg *cfg;          /* borrowed: the snapshot the signature was checked with */
};

/* API Gateway answers: {"message": msg} + x-amzn-ErrorType: type; JSON (doc stolen; NULL =
 * empty body). */
void admin__apigw_error(struct admin__aws_call *c, int status, const char *type, const char *msg);
void admin__apigw_json(struct admin__aws_call *c, int status, json_t *doc);
/* CloudFront answers: <ErrorResponse> with code/msg; an XML document (xml appended). */
void admin__cf_error(struct admin__aws_call *c, int status, const char *code, const char *msg);
void admin__cf_xml(struct admin__aws_call *c, int status, const struct buf *xml);
/* IAM check of the verified signer for action on every ARN given: allowed when no ARN is
 * explicitly denied and at least one is allowed. Otherwise answers 403 AccessDenied in the
 * service's shape and returns false. */
bool admin__aws_allowed(struct admin__aws_call *c, const char *action, const char *const *arns,
                        size_t n_arns, bool cloudfront);
/* The raw (still percent-encoded) value of query parameter `name`: owned, free();
 * NULL when absent. The first occurrence wins. */
char *admin__query_param(const struct admin_request *rq, const char *name);
/* The services' routers, called after the signature verified. */
void admin__apigw_route(struct admin__aws_call *c);
void admin__cf_route(struct admin__aws_call *c);

/* One UpdateStage patch operation; strings borrowed from the parsed document. */
struct admin__patch_op {
    const char *op;
    const char *path;
    const char *value; /* NULL when absent */
    const char *from;  /* NULL when absent */
};

#define ADMIN_MAX_PATCH_OPS 200u
#define ADMIN_MAX_PATCH_STRING 4096u

struct admin__patch {
    json_t *doc;                 /* ref: released by admin__patch_free */
    struct admin__patch_op *ops; /* owned array */
    size_t n_ops;
};

/*
 * Parses an UpdateStage body {"patchOperations": [{"op", "path", "value", "from"}]}:
 * an object whose only member is patchOperations (absent = no operations), an array
 * of at most ADMIN_MAX_PATCH_OPS objects with string op and path (required) and
 * string value and from (optional; JSON null = absent), no other members, no NUL
 * bytes and at most ADMIN_MAX_PATCH_STRING bytes per string. An empty body is no
 * operations. Returns 0, or -1 with *err pointing to a static message (400); *out
 * is then empty. Free with admin__patch_free.
 */
int admin__patch_parse(const char *body, size_t len, struct admin__patch *out, const char **err);
void admin__patch_free(struct admin__patch *p);

/* A CloudFront InvalidationBatch. */
struct admin__cf_batch {
    char *caller_ref; /* owned */
    char **paths;     /* owned array of owned strings */
    size_t n_paths;
};

/*
 * Parses <InvalidationBatch><CallerReference/><Paths><Quantity/><Items><Path/>...
 * in any element order, with an optional XML declaration, attributes (xmlns),
 * comments and the five predefined entities plus character references. Paths
 * start with '/', hold no control byte and '*' only last; at most ADMIN_MAX_PATHS.
 * Returns 0, or -1 with *code (CloudFront's error code) and *msg static (400,
 * or 413 for BatchTooLarge); *out is then empty. Free with admin__cf_batch_free.
 */
int admin__cf_batch_parse(const char *body, size_t len, struct admin__cf_batch *out,
                          const char **code, const char **msg);
void admin__cf_batch_free(struct admin__cf_batch *b);

/* ---- Prometheus exposition (metrics.c) ---- */

/* Appends every admin metric of every stage of rt in text format 0.0.4. */
void admin__metrics(const struct admin__ctx *ctx, const struct srv_runtime *rt, struct buf *out);
/* The per-reason counts of a stage (created at zero on first use). */
struct admin__stage_counts *admin__counts_of(struct admin__ctx *ctx, const char *api,
                                             const char *stage);
/* The same without creating; NULL when the stage never had one. */
const struct admin__stage_counts *admin__counts_find(const struct admin__ctx *ctx, const char *api,
                                                     const char *stage);

#endif
