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

/* State of the request handler; admin thread only. */
struct admin__ctx {
    char *token; /* owned secret or NULL (no auth); never logged or echoed */
    size_t token_len;
    uint64_t seq;                       /* invalidation id fallback when random bytes fail */
    struct admin__stage_counts *counts; /* owned array */
    size_t n_counts;
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
    const char *path; /* without the query */
    size_t path_len;
    const char *authorization; /* the Authorization header value or NULL */
    size_t authorization_len;
    const char *body;
    size_t body_len;
};

struct admin_response {
    int status;
    const char *content_type; /* static */
    const char *allow;        /* static or NULL: the Allow header of a 405 */
    bool www_authenticate;    /* add WWW-Authenticate: Bearer (401) */
    struct buf body;          /* owned: admin__response_free */
};

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
