/*
 * upstream — HTTP_PROXY integration calls. One up_client per worker thread,
 * driven by that worker's libuv loop, so integration calls never block and
 * never leave the thread. http:// integrations go through our own HTTP/1.1
 * client (pooled keep-alive connections, the response parser of http/);
 * https:// ones through a libcurl multi handle on the same loop (TLS).
 * Upstream connections are kept alive and reused. Responses are streamed: the
 * head is delivered once, then body bytes as they arrive (transfer coding
 * already removed), then done.
 *
 * Threading: worker thread only; every function and callback runs on the
 * loop the client was created on.
 */
#ifndef GATE_UPSTREAM_H
#define GATE_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct up_client;
struct up_transfer;

struct up_header {
    const char *name; /* borrowed: valid during the on_head call only */
    size_t name_len;
    const char *value;
    size_t value_len;
};

enum up_result {
    UP_OK = 0,
    UP_ERR_CONNECT = -1,  /* could not connect / resolve / TLS handshake: answer 502 */
    UP_ERR_TIMEOUT = -2,  /* past timeout_ms: answer 504 */
    UP_ERR_PROTOCOL = -3, /* malformed or truncated answer (e.g. body shorter than
                             Content-Length, bad chunking): 502, never cache */
    UP_ERR_ABORTED = -4,  /* on_data returned UP_DATA_ABORT; up_cancel() and
                             up_client_free() report nothing at all */
};

/* Return values of on_data. */
#define UP_DATA_OK 0
/* UP_DATA_PAUSE: the bytes of this call count as delivered (they are never
 * delivered again); nothing more until up_resume(). */
#define UP_DATA_PAUSE 1
#define UP_DATA_ABORT 2 /* cancel the transfer; on_done reports UP_ERR_ABORTED */

struct up_callbacks {
    /* The final (non-1xx) status line and headers. `content_length` is the
     * Content-Length the upstream announced, or -1 (chunked / close-delimited).
     * Hop-by-hop headers are still present: the caller filters them. */
    void (*on_head)(void *ud, int status, const struct up_header *h, size_t n,
                    int64_t content_length);
    /* Body bytes (borrowed, valid during the call). Never called for HEAD.
     * Returns UP_DATA_OK, UP_DATA_PAUSE or UP_DATA_ABORT. */
    int (*on_data)(void *ud, const char *data, size_t len);
    /* Streamed request bodies only (up_request.body_stream): copy up to `max`
     * body bytes into buf and return how many. Return 0 with *eof = true at
     * the end of the body, or 0 with *eof = false when no bytes are ready yet:
     * sending pauses until up_resume_send(). NULL when bodies are not streamed. */
    size_t (*on_send)(void *ud, char *buf, size_t max, bool *eof);
    /* Called exactly once when the transfer ends (unless cancelled), after
     * which the transfer is gone. On error, on_head may or may not have been
     * called before. A malformed head (obs-fold, a line without ':', CR/LF/NUL
     * in a value) ends the transfer with UP_ERR_PROTOCOL before on_head. */
    void (*on_done)(void *ud, enum up_result result);
};

struct up_request {
    const char *method;   /* "GET", "POST", ...; "HEAD" fetches no body */
    const char *url;      /* absolute http:// or https:// URL, NUL-terminated */
    const struct up_header *headers; /* end-to-end request headers to send as given;
                                        Content-Length and Transfer-Encoding are
                                        dropped (the body is framed by its length);
                                        an empty value is sent empty */
    size_t n_headers;
    const char *body;     /* borrowed: must stay valid until on_done; NULL = no body */
    size_t body_len;
    uint32_t timeout_ms;  /* whole transfer, connect included, paused time too;
                             must be > 0 (connect alone: at most 10 s) */
    bool body_stream;     /* the body comes through on_send as it arrives */
    int64_t stream_len;   /* its length when known (Content-Length), else -1: chunked */
};

/* Process-wide libcurl setup: call once from the main thread before any
 * worker starts (and up_global_cleanup once after every client is gone).
 * Returns 0 or GATE-style negative error. */
int up_global_init(void);
void up_global_cleanup(void);

/* owned: up_client_free. The loop must outlive the client. */
struct up_client *up_client_new(uv_loop_t *loop);
/* Sends http:// requests through libcurl too (tests run the same cases on
 * both clients; an operator never needs it). */
void up_client_prefer_curl(struct up_client *c, bool yes);
/* Cancels every transfer (no callbacks), closes the handles; the memory is
 * released from libuv close callbacks, so run the loop afterwards. NULLs *c.
 * Safe from inside any callback of this module (the teardown then happens
 * on the next loop iteration). */
void up_client_free(struct up_client **c);

/*
 * Starts a transfer. The request (url, headers) is copied; body is borrowed.
 * Returns the transfer (borrowed: valid until on_done is called or until
 * up_cancel) or NULL when it could not be started (callbacks never called):
 * url not http(s)://, method not a token, a header name not a token or a
 * value with CR/LF/NUL, timeout_ms 0, or the client is closing. Safe from
 * inside callbacks (from on_head/on_data the transfer is added to curl once
 * the current curl callback has returned). Callbacks never run inside up_start.
 */
struct up_transfer *up_start(struct up_client *c, const struct up_request *req,
                             const struct up_callbacks *cb, void *ud);
/* Stops a transfer at once; no callback is called afterwards. NULLs *t.
 * Safe from inside on_head/on_data (of this or another transfer): the curl
 * handle is then released once curl's callback has returned. A no-op on
 * NULL and inside the transfer's own on_done. */
void up_cancel(struct up_transfer **t);
/* Resumes delivery after on_data returned UP_DATA_PAUSE. Never calls on_data
 * from inside up_resume: delivery restarts from the loop (next iteration), so
 * it is safe from anywhere, on_data included (even before that on_data returns
 * UP_DATA_PAUSE). A no-op if the transfer is not paused by then. */
void up_resume(struct up_transfer *t);
/* More streamed body bytes (or its end) are ready: on_send will be asked
 * again from the loop. A no-op unless sending is paused. */
void up_resume_send(struct up_transfer *t);

/* Number of transfers in flight on this client (for drain and tests). */
size_t up_client_active(const struct up_client *c);

#endif
