/*
 * server — declarations shared by the files of the module: workers,
 * connections and requests. Everything here is worker-thread-only unless a
 * field says otherwise.
 */
#ifndef GATE_SERVER_INT_H
#define GATE_SERVER_INT_H

#include <uv.h>

#include "http/http.h"
#include "l2/l2.h"
#include "metrics/metrics.h"
#include "server/server.h"
#include "upstream/upstream.h"
#include "util/util.h"

struct conn;
struct req;

/* A wake-up for miss coalescing: a fill of (store, hash) ended. */
struct wrk_wake {
    const struct cache_store *store; /* compared, never dereferenced */
    uint64_t hash;
    int failed_status; /* 0, or the 502/504 the filler answered: the origin
                          could not be reached or did not answer in time */
};

/* A remembered metrics series of a route: (snapshot version, method entry,
 * stage) determine the series' labels, so equal keys mean the same series. */
struct wrk_series_memo {
    uint64_t rt_version;
    const struct route_method *method; /* compared, never dereferenced */
    size_t stage_index;
    struct met_series *series; /* borrowed from the worker's metrics shard */
};

#define WRK_SERIES_MEMO 16 /* slots, a power of two */

struct wrk {
    unsigned id;
    pthread_t thread;
    uv_loop_t loop;
    uv_tcp_t *listeners; /* owned array */
    size_t n_listeners;
    uv_async_t async;    /* wakes the loop for the inbox, drain and force-close */
    pthread_mutex_t inbox_lock;
    struct wrk_wake *inbox; /* owned; guarded by inbox_lock (any thread appends) */
    size_t inbox_len, inbox_cap;
    bool async_closed;      /* guarded by inbox_lock */
    struct up_client *up;   /* owned */
    struct l2_client *l2;   /* owned: the shared tier's client (NULL: memory backend) */
    struct met_shard *metrics; /* borrowed from srv.metrics: this worker's counters */
    struct srv_runtime *rt; /* ref: the snapshot this worker last saw */
    uint64_t rt_version;
    struct conn *conns;     /* list of open connections */
    struct req *waiting;    /* requests waiting for another request's fill */
    bool stopping;          /* listeners closed, draining */
    size_t n_conns;
    char date[32];          /* cached IMF-fixdate of `date_sec` */
    struct http_request parse_scratch; /* heads are parsed here, then moved to their req */
    int64_t date_sec;
    /* owned: the last finished request, its head and key memory kept, so the
     * next request allocates nothing (req_new); freed with the worker's last
     * connection (conn.c). Always NULL under GATE_ASAN, where every request
     * is a fresh allocation so use-after-free is still caught. */
    struct req *spare_req;  /* owned: finished requests kept for reuse (list) */
    unsigned n_spare_req;
    /* The pipe large hit bodies pass through to the socket (conn.c,
     * zero-copy); empty between calls. fds -1 until the first use. */
    struct wrk_splice {
        int pipe_r, pipe_w, devnull;
        size_t pipe_bytes; /* the pipe's capacity */
        enum { WRK_SPLICE_UNTRIED = 0, WRK_SPLICE_ON, WRK_SPLICE_OFF } state;
    } splice;
    /* Series lookups of recent routes (request.c): direct-mapped by method. */
    struct wrk_series_memo series_memo[WRK_SERIES_MEMO];
};

enum conn_state {
    CONN_IDLE = 0,  /* between requests, nothing buffered */
    CONN_HEAD,      /* reading a request head */
    CONN_BODY,      /* reading a request body */
    CONN_BUSY,      /* request being answered */
    CONN_CLOSING,   /* closing: no more reads or requests */
};

struct conn {
    uv_tcp_t tcp; /* first: handle->data is not needed to get the conn */
    uv_timer_t timer;
    struct wrk *w;
    struct conn *prev, *next; /* worker's list */
    enum conn_state state;
    int closing_handles;   /* close callbacks still to come */
    bool reading;
    bool keep_alive;       /* of the request being answered */
    bool close_after_write;
    bool lingering;        /* FIN sent, discarding input until the client closes */
    bool in_input;         /* inside process_input (no recursion per request) */
    uv_shutdown_t shutdown;
    size_t writes_pending;
    struct buf in;         /* received, not yet consumed */
    struct req *req;       /* the request being read or answered (owned) */
    struct srv_runtime *rt; /* ref held while a request is in flight */
    char peer[64];         /* client IP, for X-Forwarded-For */
    uint64_t met_head_ns;  /* met_now_ns() at the first byte of the current request head */
    /* The connection timer (conn.c): its action runs at deadline_ms (loop
     * time) when timer_on; the libuv timer runs when timer_due_ms != 0. */
    bool timer_on;
    uint64_t deadline_ms;
    uint64_t timer_due_ms;
};

enum req_mode {
    REQ_PLAIN = 0, /* not a caching method: no X-Cache-Status */
    REQ_MISS,
    REQ_BYPASS,
    REQ_REFRESH,
    REQ_EXPIRED,
};

struct req {
    /* req_new zeroes the fields up to `head` only. */
    struct conn *c;         /* borrowed: the connection owns the request */
    struct req *wnext, *wprev; /* worker's waiting list */
    size_t head_len;
    struct buf body;        /* decoded request body (streamed: bytes not yet sent) */
    size_t body_sent;       /* streamed: bytes of `body` already given to the integration */
    uint64_t body_total;    /* decoded body bytes received so far (the size limit) */
    bool body_streaming;    /* dispatched before the body ended; it flows through on_send */
    bool body_done;
    uint64_t body_left;     /* Content-Length bytes still to read */
    struct http_chunked chunked;
    bool sent_continue;

    struct srv_stage_cache *cache; /* borrowed from c->rt */
    struct met_series *met; /* borrowed from the worker's shard (NULL: no route yet) */
    uint64_t met_up_ns;     /* met_now_ns() when the integration call started */
    enum req_mode mode;
    bool is_head;
    bool waited;            /* already waited once for a fill: do not wait again */
    bool filler;            /* holds the fill claim of key/hash */
    bool warn_unauthorized; /* add the Warning header */
    bool invalidation_sig;  /* Authorization is a SigV4 signature asking for max-age=0 */
    uint64_t hash;
    struct cache_entry *stale; /* ref: expired entry kept for stale-if-error */
    struct l2_op *l2;       /* borrowed: the shared tier's lookup in flight, or NULL */
    uint64_t l2_generation; /* the stage's L2 generation when the lookup or fill began */
    uint64_t l2_invalidations; /* cache_store_invalidations when the lookup began */

    /* upstream answer */
    struct up_transfer *up;
    size_t n_up_headers;
    int status;
    bool head_sent;         /* the head is decided (maybe still held) */
    bool chunked_out;       /* framing to the client */
    bool storable;
    bool upstream_paused;
    int64_t ttl_ms;
    size_t tags_off;        /* Cache-Tag value inside store_head */
    size_t tags_len;

    /* Not zeroed by req_new: memory kept when a request is reused, then
     * fields each request writes before it reads them. */
    char *head;             /* owned: copy of the request head bytes (head_cap bytes) */
    size_t head_cap;
    struct buf key;         /* the cache key; empty when a request starts */
    /* Emptied (not freed) when a request starts: a miss would otherwise
     * malloc and grow each of them (callgrind: a fifth of a miss's
     * instructions were in malloc on a heap full of entries). */
    struct buf url;
    struct buf store_head;  /* status line + end-to-end headers, for the entry */
    struct buf store_body;
    struct buf held_head;   /* the head to the client, held until the first body
                               bytes or the end so both go in one write */
    struct up_header *up_headers; /* owned array (values point into head/body) */
    size_t up_headers_cap;
    struct req *spare_next; /* wrk->spare_req list, while kept */
    struct route_match m;   /* written by route_match in req_dispatch */
    char xff[256];          /* written by build_upstream_headers */
    /* Last, so a new request copies only the headers in use (the array holds
     * HTTP_MAX_HEADERS_HARD). */
    struct http_request hr; /* spans point into head */
};

/* tier.c (the shared tier; see the file's comment) */
/* Main thread: before the workers start / after they and the admin ended. */
int tier_start(uv_loop_t *main_loop, const struct cfg *cfg);
void tier_stop(void);
/* A worker's own client (owned: l2_client_free), or NULL with the memory backend. */
struct l2_client *tier_worker_client(uv_loop_t *loop);
/* True when this node may read the stage's L2 now. */
bool tier_stage_readable(const struct srv_stage_cache *sc);
/* Counts a lookup: an enum l2_result, or -1 when it was not asked. */
void tier_count_lookup(int result);
/* The L2 key of a cache key's hash (out: at least TIER_KEY_MAX bytes); 0 if it does not fit. */
#define TIER_KEY_MAX 1024
size_t tier_entry_key(char *out, const struct srv_stage_cache *sc, uint64_t generation,
                      uint64_t hash);
/* generation: the stage's L2 generation when the fill began. */
void tier_store(struct l2_client *c, struct srv_stage_cache *sc, uint64_t generation,
                const struct cache_entry *e, int64_t now);
void tier_method_path_invalidated(struct srv_stage_cache *sc, const char *method,
                                  const char *path, size_t len);
/* A refreshed key (authorised max-age=0) and its path. */
void tier_key_invalidated(struct srv_stage_cache *sc, const char *key, size_t len,
                          uint64_t hash, const char *path, size_t path_len);

/* worker.c */
void wrk_date(struct wrk *w, const char **date);
struct srv_runtime *wrk_runtime(struct wrk *w);
void wrk_notify_fill(struct srv_stage_cache *sc, uint64_t hash, uint64_t mask, int failed_status);
void wrk_wait_add(struct wrk *w, struct req *r);
void wrk_wait_remove(struct wrk *w, struct req *r);
int wrk_start_all(const struct cfg *cfg);
void wrk_wake_all(void);
void wrk_poke(struct wrk *w); /* any thread: run the worker's async handler */
/* Joins every worker thread (any thread but a worker). */
void wrk_join_all(void);
/* Frees the workers once joined: main thread only, after which nothing may
 * wake them (the drain timer and signal handlers are closed first). */
void wrk_free_all(void);

/* conn.c */
void conn_accept(struct wrk *w, uv_stream_t *listener);
/* Queues bytes to the client (copied). */
void conn_write_copy(struct conn *c, const char *data, size_t len);
/* The same for several pieces in one writev (at most 8; adjusted in place). */
void conn_write_copyv(struct conn *c, uv_buf_t *bufs, unsigned n);
/* Queues an entry's head + extra + body (no copy of the body; holds a ref). */
void conn_write_entry(struct conn *c, struct cache_entry *e, const char *extra, size_t extra_len,
                      bool with_body);
/* The request is answered: continue with the next one, or close. */
void conn_request_done(struct conn *c);
void conn_close(struct conn *c);
void conn_linger(struct conn *c);
/* (Re)starts the connection timer: in CONN_BUSY it bounds a coalescing wait. */
void conn_arm_timer(struct conn *c, uint32_t ms);
void conn_stop_timer(struct conn *c);
size_t conn_write_queue(const struct conn *c);
void conn_drain(struct wrk *w);
/* Closes the worker's zero-copy pipe (worker exit). */
void conn_splice_close(struct wrk *w);

/* request.c */
/* A request of c with room for a head of head_len bytes (plus NUL) at
 * r->head; fields up to `head` are zero, the rest are the caller's to fill.
 * owned: req_free. */
struct req *req_new(struct conn *c, size_t head_len);
void req_dispatch(struct req *r);
/* True when the body need not be read whole before dispatch (conn.c asks
 * right after the head): an HTTP_PROXY method that does not cache. */
bool req_body_streamable(struct req *r);
/* More streamed body bytes arrived (or the body ended). */
void req_body_more(struct req *r);
void req_abort(struct req *r); /* the connection is going away */
/* Ends a request; its memory may be kept on the worker's spare_req list. */
void req_free(struct req **r);
/* Frees the worker's spare requests (its last connection closed). */
void req_free_spare(struct wrk *w);
/* Wakes a request that waited for another one's fill. failed_status != 0:
 * that fill failed to reach the origin (502/504); the waiter gives the same
 * answer (or a stale entry) instead of trying again itself. */
void req_resume_waiter(struct req *r, bool timed_out, int failed_status);
void req_write_drained(struct req *r);
/* Error answers: {"message": msg}, with Connection: close when `close`. */
void req_respond_json(struct req *r, int status, const char *msg, const char *error_type);
void conn_respond_error(struct conn *c, int status, const char *msg);

#endif
