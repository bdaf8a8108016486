/*
 * upstream/h1 — our own HTTP/1.1 client for http:// integrations, on the
 * worker's libuv loop. Why not libcurl here: per transfer curl re-registers
 * its socket with epoll, toggles O_NONBLOCK and polls the connection for
 * liveness, which made a miss cost 2.5x HAProxy's CPU (docs/performance.md).
 * This client keeps each connection registered for its whole life and does
 * one write and one read per small answer.
 *
 * Shape:
 * - A connection (h1_conn) is created for a transfer (h1_xfer) and, when the
 *   answer ends cleanly with keep-alive, parked on the client's idle list
 *   (most recent first, at most H1_IDLE_MAX, H1_IDLE_TIMEOUT_MS each). A new
 *   transfer to the same host:port takes an idle connection first.
 * - Reading is always on while a connection is open, idle ones included, so
 *   an origin closing an idle connection is noticed at once (and costs no
 *   epoll_ctl per request). Paused transfers stop reading until resumed.
 * - Responses are parsed by http_parse_response (strict, http/response.c)
 *   and bodies framed by Content-Length, chunked coding (decoded in place) or
 *   the close of the connection.
 * - A request sent on a reused connection that dies before any byte of the
 *   answer is sent again once on a new connection (the origin closed it
 *   while idle), unless streamed body bytes were already consumed.
 *
 * Invariants:
 * - Worker thread only; user callbacks never run inside a public function.
 * - A transfer is freed (1) right after its on_done returns, or (2) by the
 *   deferred pass (on_defer) or the client's final release once cancelled.
 *   Work asked for from callbacks (resume, resume_send, failures found inside
 *   h1_start) is queued on c->pending and done by on_defer, a uv_idle.
 * - A connection's memory lives until its two handles are closed and its
 *   getaddrinfo request (if any) has called back (conn->refs).
 * - The client's memory lives until the defer handle and every connection
 *   are released (c->refs); h1_client_free never frees synchronously.
 */
#include "upstream/up_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/http.h"
#include "util/util.h"

#define H1_CLIENT_MAGIC 0x68314331u
#define H1_XFER_MAGIC 0x68315431u
#define H1_IDLE_MAX 256u
#define H1_IDLE_TIMEOUT_MS 30000u
#define H1_CONNECT_TIMEOUT_MS 10000u
#define H1_RBUF_INITIAL 16384u
#define H1_HEAD_MAX 65536u   /* largest answer head accepted */
#define H1_SEND_CHUNK 65536u /* streamed request body: bytes asked per on_send */
#define H1_HOST_MAX 256u
#define H1_KEY_MAX (H1_HOST_MAX + 8u)
#define H1_SPARE_MAX 128u /* finished transfers kept for reuse per client */

struct h1_conn;

struct h1_client {
    uint32_t magic;
    uv_loop_t *loop;                   /* borrowed: outlives the client */
    uv_idle_t defer;                   /* runs c->pending */
    struct h1_xfer *pending;           /* transfers with deferred work, LIFO */
    struct h1_conn *conns;             /* every connection not closing */
    struct h1_conn *idle_head, *idle_tail;
    size_t n_idle;
    size_t n_active; /* started, not finished, not cancelled */
    struct h1_xfer *spare; /* owned: finished transfers, reused by the next ones
                              (no calloc and no head growth per miss); a list */
    unsigned n_spare;
    unsigned refs;   /* defer handle + connections not yet freed */
    bool closing;
};

struct h1_conn {
    uv_tcp_t tcp;     /* data = this */
    uv_timer_t timer; /* transfer deadline while busy, idle expiry while idle */
    uv_connect_t connect;
    uv_write_t write;
    uv_getaddrinfo_t gai;
    struct h1_client *c;
    struct h1_xfer *x; /* borrowed: the transfer on it; NULL when idle */
    struct h1_conn *prev, *next;           /* c->conns */
    struct h1_conn *idle_prev, *idle_next; /* c->idle_* */
    char key[H1_KEY_MAX]; /* "host:port", the pool key */
    char *rbuf;           /* owned: bytes read, [roff, rlen) not yet used */
    size_t roff, rlen, rcap;
    char *sbuf; /* owned: framing of one streamed body piece */
    unsigned refs;
    unsigned answers; /* answers completed on this connection */
    bool connected, closing, idle, writing;
};

struct h1_xfer {
    struct up_transfer base; /* first: the front casts */
    uint32_t magic;
    struct h1_client *c;
    struct h1_conn *conn; /* borrowed; NULL once finished or cancelled */
    struct up_callbacks cb;
    void *ud;
    struct buf head;  /* owned: the request head, sent as is */
    const char *body; /* borrowed until on_done */
    size_t body_len;
    int64_t stream_len; /* streamed body: announced length, -1 = chunked */
    uint64_t streamed;  /* streamed body bytes taken from on_send */
    uint64_t deadline;  /* uv_now() at which the transfer times out */
    char host[H1_HOST_MAX]; /* without brackets, NUL-terminated */
    char port[6];
    char key[H1_KEY_MAX];
    struct h1_xfer *pending_next;
    /* answer */
    enum http_resp_body body_kind;
    uint64_t remaining; /* HTTP_RBODY_LENGTH: bytes still to come */
    struct http_chunked chunked;
    enum up_result fail_with; /* failure found in h1_start, reported later */
    bool is_head, stream, head_done, keep_alive, got_bytes, sent_all, retried;
    bool paused, resume_pending, send_paused, send_resume_pending;
    bool in_pending, in_pass, cancelled, done, failed_early;
};

static void conn_close(struct h1_conn *k);
static void xfer_fail(struct h1_xfer *x, enum up_result r);
static void send_more(struct h1_conn *k);
static void process(struct h1_conn *k);
static bool conn_open(struct h1_xfer *x);

/* ================= memory ================= */

static void client_release(struct h1_client *c);

static void client_unref(struct h1_client *c)
{
    GATE_ASSERT(c->refs > 0);
    if (--c->refs == 0)
        client_release(c);
}

static void xfer_destroy(struct h1_xfer *x)
{
    buf_free(&x->head);
    x->magic = 0;
    free(x);
}

/* Keeps one finished transfer for the next h1_start (not under ASan, which
 * must see every transfer as its own allocation). */
static void xfer_free(struct h1_xfer *x)
{
#ifndef GATE_ASAN
    struct h1_client *c = x->c;
    if (c->n_spare < H1_SPARE_MAX && !c->closing && x->head.cap <= 16384) {
        x->magic = 0;
        x->pending_next = c->spare; /* the link is free once a transfer is done */
        c->spare = x;
        c->n_spare++;
        return;
    }
#endif
    xfer_destroy(x);
}

static struct h1_xfer *xfer_new(struct h1_client *c)
{
    struct h1_xfer *x = c->spare;
    if (!x)
        return xcalloc(1, sizeof(*x));
    c->spare = x->pending_next;
    c->n_spare--;
    struct buf head = x->head;
    memset(x, 0, sizeof(*x));
    buf_reset(&head);
    x->head = head;
    return x;
}

/* The last reference of a closing client: whatever is queued goes too. */
static void client_release(struct h1_client *c)
{
    GATE_ASSERT(c->closing);
    while (c->pending) {
        struct h1_xfer *x = c->pending;
        c->pending = x->pending_next;
        xfer_destroy(x);
    }
    while (c->spare) {
        struct h1_xfer *x = c->spare;
        c->spare = x->pending_next;
        xfer_destroy(x);
    }
    c->magic = 0;
    free(c);
}

static void on_defer_closed(uv_handle_t *h)
{
    client_unref(h->data);
}

static void conn_unref(struct h1_conn *k)
{
    GATE_ASSERT(k->refs > 0);
    if (--k->refs > 0)
        return;
    struct h1_client *c = k->c;
    free(k->rbuf);
    free(k->sbuf);
    free(k);
    client_unref(c);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
    conn_unref(h->data);
}

/* ================= deferred work ================= */

static void on_defer(uv_idle_t *h);

static void queue(struct h1_xfer *x)
{
    struct h1_client *c = x->c;
    if (x->in_pending)
        return;
    x->in_pending = true;
    x->pending_next = c->pending;
    c->pending = x;
    if (!c->closing && !uv_is_active((uv_handle_t *)&c->defer))
        uv_idle_start(&c->defer, on_defer);
}

/* ================= idle pool ================= */

static void idle_unlink(struct h1_conn *k)
{
    struct h1_client *c = k->c;
    if (!k->idle)
        return;
    if (k->idle_prev)
        k->idle_prev->idle_next = k->idle_next;
    else
        c->idle_head = k->idle_next;
    if (k->idle_next)
        k->idle_next->idle_prev = k->idle_prev;
    else
        c->idle_tail = k->idle_prev;
    k->idle_prev = k->idle_next = NULL;
    k->idle = false;
    c->n_idle--;
}

static void on_idle_expired(uv_timer_t *t)
{
    conn_close(t->data);
}

static void conn_park(struct h1_conn *k)
{
    struct h1_client *c = k->c;
    if (c->n_idle == H1_IDLE_MAX)
        conn_close(c->idle_tail);
    k->idle = true;
    k->idle_prev = NULL;
    k->idle_next = c->idle_head;
    if (c->idle_head)
        c->idle_head->idle_prev = k;
    else
        c->idle_tail = k;
    c->idle_head = k;
    c->n_idle++;
    k->roff = k->rlen = 0;
    uv_timer_start(&k->timer, on_idle_expired, H1_IDLE_TIMEOUT_MS, 0);
}

static struct h1_conn *idle_take(struct h1_client *c, const char *key)
{
    for (struct h1_conn *k = c->idle_head; k; k = k->idle_next) {
        if (strcmp(k->key, key) == 0) {
            idle_unlink(k);
            return k;
        }
    }
    return NULL;
}

/* ================= connections ================= */

static struct h1_conn *conn_new(struct h1_client *c, const char *key)
{
    struct h1_conn *k = xcalloc(1, sizeof(*k));
    k->c = c;
    memcpy(k->key, key, strlen(key) + 1); /* both H1_KEY_MAX */
    uv_tcp_init(c->loop, &k->tcp);
    uv_timer_init(c->loop, &k->timer);
    k->tcp.data = k->timer.data = k;
    k->refs = 2;
    k->next = c->conns;
    if (c->conns)
        c->conns->prev = k;
    c->conns = k;
    c->refs++;
    return k;
}

/* Closes the socket at once; pending connect/write callbacks then see
 * UV_ECANCELED, and the memory goes when the last reference does. */
static void conn_close(struct h1_conn *k)
{
    struct h1_client *c = k->c;
    if (k->closing)
        return;
    k->closing = true;
    idle_unlink(k);
    if (k->prev)
        k->prev->next = k->next;
    else
        c->conns = k->next;
    if (k->next)
        k->next->prev = k->prev;
    k->x = NULL;
    uv_close((uv_handle_t *)&k->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&k->timer, on_conn_handle_closed);
}

/* Detaches x from its connection; the connection goes back to the pool only
 * when the exchange ended cleanly and nothing else is in flight on it. */
static void conn_release(struct h1_xfer *x, bool reusable)
{
    struct h1_conn *k = x->conn;
    x->conn = NULL;
    if (!k)
        return;
    k->x = NULL;
    uv_timer_stop(&k->timer);
    if (reusable && !k->closing && !k->writing && !x->c->closing && k->roff == k->rlen)
        conn_park(k);
    else
        conn_close(k);
}

/* ================= finishing ================= */

/* on_done, then the transfer is gone (unless the defer queue still holds it:
 * the pass frees it there). */
static void xfer_finish(struct h1_xfer *x, enum up_result r)
{
    struct h1_client *c = x->c;
    GATE_ASSERT(!x->done && !x->cancelled);
    x->done = true;
    c->n_active--;
    x->cb.on_done(x->ud, r);
    if (!x->in_pending && !x->in_pass)
        xfer_free(x);
}

static void xfer_fail(struct h1_xfer *x, enum up_result r)
{
    conn_release(x, false);
    xfer_finish(x, r);
}

static void xfer_complete(struct h1_xfer *x)
{
    x->conn->answers++;
    conn_release(x, x->keep_alive && x->sent_all);
    xfer_finish(x, UP_OK);
}

/* A reused connection died before any byte of the answer: the origin closed
 * it while it was idle. Send the request again once on a new connection. */
static bool xfer_retry(struct h1_xfer *x)
{
    struct h1_conn *k = x->conn;
    if (x->retried || x->got_bytes || k->answers == 0 || (x->stream && x->streamed > 0))
        return false;
    x->retried = true;
    conn_release(x, false);
    x->sent_all = false;
    return conn_open(x);
}

/* The connection failed under x (reset, refused write, closed early). With
 * no byte of an answer the origin is as good as unreachable (502 either way,
 * and nothing is cached). */
static void xfer_conn_error(struct h1_xfer *x)
{
    if (xfer_retry(x))
        return;
    xfer_fail(x, x->got_bytes ? UP_ERR_PROTOCOL : UP_ERR_CONNECT);
}

/* A failure found where callbacks must not run (inside h1_start): reported
 * by the deferred pass. */
static void xfer_fail_later(struct h1_xfer *x, enum up_result r)
{
    conn_release(x, false);
    x->failed_early = true;
    x->fail_with = r;
    queue(x);
}

/* ================= sending ================= */

static void on_write(uv_write_t *w, int status)
{
    struct h1_conn *k = w->data;
    k->writing = false;
    if (status == UV_ECANCELED || k->closing)
        return;
    struct h1_xfer *x = k->x;
    if (!x)
        return;
    if (status < 0) {
        xfer_conn_error(x);
        return;
    }
    if (x->stream && !x->sent_all)
        send_more(k);
    else
        x->sent_all = true;
}

/* Writes bufs: 1 when all went out at once (no callback will come), 0 when
 * the rest is queued (on_write follows), -1 on error. */
static int conn_write(struct h1_conn *k, uv_buf_t *bufs, unsigned n)
{
    uv_stream_t *s = (uv_stream_t *)&k->tcp;
    size_t total = 0;
    for (unsigned i = 0; i < n; i++)
        total += bufs[i].len;
    int w = uv_try_write(s, bufs, n);
    if (w >= 0 && (size_t)w == total)
        return 1;
    if (w < 0 && w != UV_EAGAIN)
        return -1;
    size_t skip = w > 0 ? (size_t)w : 0;
    while (n > 0 && skip >= bufs[0].len) {
        skip -= bufs[0].len;
        bufs++;
        n--;
    }
    bufs[0].base += skip;
    bufs[0].len -= skip;
    k->write.data = k;
    if (uv_write(&k->write, s, bufs, n, on_write) != 0)
        return -1;
    k->writing = true;
    return 0;
}

/* The head (and a buffered body). A streamed body follows from the loop:
 * on_send must not run inside h1_start. */
static void send_head(struct h1_conn *k)
{
    struct h1_xfer *x = k->x;
    uv_buf_t b[2];
    unsigned n = 0;
    b[n++] = uv_buf_init(x->head.data, (unsigned)x->head.len);
    if (!x->stream && x->body_len > 0)
        b[n++] = uv_buf_init((char *)x->body, (unsigned)x->body_len);
    int r = conn_write(k, b, n);
    if (r < 0) {
        xfer_fail_later(x, UP_ERR_CONNECT);
    } else if (r == 1 && x->stream) {
        x->send_paused = x->send_resume_pending = true;
        queue(x);
    } else if (r == 1) {
        x->sent_all = true;
    }
}

/* The next piece of a streamed body: "HEX\r\n" data "\r\n" when chunked,
 * "0\r\n\r\n" at the end. Headroom of 24 bytes before the data and 7 after. */
#define H1_CHUNK_HEAD 24u
#define H1_CHUNK_TAIL 7u

static size_t frame_piece(struct h1_xfer *x, char *s, size_t got, bool eof, size_t *start)
{
    char hex[24];
    size_t off = H1_CHUNK_HEAD, end = H1_CHUNK_HEAD + got;
    if (x->stream_len >= 0) {
        *start = off;
        return got;
    }
    if (got > 0) {
        size_t hl = http_chunk_header(hex, got);
        off -= hl;
        memcpy(s + off, hex, hl);
        memcpy(s + end, "\r\n", 2);
        end += 2;
    }
    if (eof) {
        memcpy(s + end, "0\r\n\r\n", 5);
        end += 5;
    }
    *start = off;
    return end - off;
}

/* Asks on_send for body bytes and writes them until none are ready (sending
 * pauses until h1_resume_send), a write is pending, or the body is done.
 * The connection has no write in flight when this runs. */
static void send_more(struct h1_conn *k)
{
    struct h1_xfer *x = k->x;
    if (!k->sbuf)
        k->sbuf = xmalloc(H1_CHUNK_HEAD + H1_SEND_CHUNK + H1_CHUNK_TAIL);
    while (!x->sent_all) {
        bool eof = false;
        size_t got = x->cb.on_send(x->ud, k->sbuf + H1_CHUNK_HEAD, H1_SEND_CHUNK, &eof);
        if (x->cancelled || x->done)
            return;
        if (got == 0 && !eof) {
            x->send_paused = true;
            return;
        }
        x->streamed += got;
        bool known = x->stream_len >= 0;
        if (known && (x->streamed > (uint64_t)x->stream_len ||
                      (eof && x->streamed < (uint64_t)x->stream_len))) {
            xfer_fail(x, UP_ERR_PROTOCOL); /* the body does not match its length */
            return;
        }
        if (known && x->streamed == (uint64_t)x->stream_len)
            eof = true;
        size_t start, len = frame_piece(x, k->sbuf, got, eof, &start);
        x->sent_all = eof;
        if (len == 0)
            return;
        uv_buf_t b = uv_buf_init(k->sbuf + start, (unsigned)len);
        int r = conn_write(k, &b, 1);
        if (r < 0) {
            xfer_conn_error(x);
            return;
        }
        if (r == 0)
            return; /* on_write asks again */
    }
}

/* ================= receiving ================= */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *out)
{
    (void)hint;
    struct h1_conn *k = h->data;
    if (k->roff > 0) {
        memmove(k->rbuf, k->rbuf + k->roff, k->rlen - k->roff);
        k->rlen -= k->roff;
        k->roff = 0;
    }
    if (k->rlen == k->rcap && k->rcap < H1_HEAD_MAX) {
        k->rcap = k->rcap ? 2 * k->rcap : H1_RBUF_INITIAL;
        k->rbuf = xrealloc(k->rbuf, k->rcap);
    }
    /* Full at H1_HEAD_MAX: a zero-length buffer makes libuv report UV_ENOBUFS. */
    *out = uv_buf_init(k->rbuf + k->rlen, (unsigned)(k->rcap - k->rlen));
}

/* Content-Length the origin announced on an answer without a body (HEAD,
 * 304): passed on like curl does, so HEAD answers keep their length. */
static int64_t announced_length(const struct http_response *res)
{
    if (res->body_kind == HTTP_RBODY_LENGTH)
        return (int64_t)res->content_length;
    if (res->body_kind != HTTP_RBODY_NONE)
        return -1;
    const struct http_header *h =
        http_find_header(res->headers, res->num_headers, "content-length");
    uint64_t v;
    if (h && str_to_u64(h->value, h->value_len, &v) && v <= INT64_MAX)
        return (int64_t)v;
    return -1;
}

/* Parses the head at k->rbuf[roff..); false when more bytes are needed or the
 * transfer ended (failed, cancelled). */
static bool read_head(struct h1_conn *k, struct h1_xfer *x)
{
    static const struct http_limits lim = {H1_HEAD_MAX, HTTP_MAX_HEADERS_HARD, 0};
    struct http_response res;
    const char *reason;
    int r = http_parse_response(k->rbuf + k->roff, k->rlen - k->roff, &lim, x->is_head, &res,
                                &reason);
    if (r == HTTP_PARSE_INCOMPLETE)
        return false;
    if (r < 0 || res.status == 101) {
        log_debug("upstream: %s: bad answer head: %s", x->key,
                  r < 0 ? reason : "protocol switch");
        xfer_fail(x, UP_ERR_PROTOCOL);
        return false;
    }
    k->roff += (size_t)r;
    if (res.status < 200)
        return true; /* RFC 9110 §15.2: interim; the final head follows */
    x->head_done = true;
    x->body_kind = res.body_kind;
    x->remaining = res.content_length;
    x->keep_alive = res.keep_alive;
    http_chunked_init(&x->chunked);
    struct up_header h[HTTP_MAX_HEADERS_HARD];
    for (size_t i = 0; i < res.num_headers; i++) {
        h[i].name = res.headers[i].name;
        h[i].name_len = res.headers[i].name_len;
        h[i].value = res.headers[i].value;
        h[i].value_len = res.headers[i].value_len;
    }
    x->cb.on_head(x->ud, res.status, h, res.num_headers, announced_length(&res));
    if (x->cancelled)
        return false;
    if (x->body_kind == HTTP_RBODY_NONE) {
        xfer_complete(x);
        return false;
    }
    return true;
}

/* Hands n body bytes to on_data; false when delivery must stop. */
static bool deliver(struct h1_conn *k, struct h1_xfer *x, const char *p, size_t n)
{
    if (n == 0)
        return true;
    int r = x->cb.on_data(x->ud, p, n);
    if (x->cancelled)
        return false;
    if (r == UP_DATA_ABORT) {
        xfer_fail(x, UP_ERR_ABORTED);
        return false;
    }
    if (r == UP_DATA_PAUSE) {
        x->paused = true;
        uv_read_stop((uv_stream_t *)&k->tcp);
        return false;
    }
    GATE_ASSERT(r == UP_DATA_OK);
    return true;
}

/* The whole body was delivered (the last on_data may have paused). */
static bool body_finished(const struct h1_xfer *x)
{
    if (x->body_kind == HTTP_RBODY_LENGTH)
        return x->remaining == 0;
    return x->body_kind == HTTP_RBODY_CHUNKED && x->chunked.done;
}

/* One step of the body from k->rbuf[roff..rlen); false when nothing more can
 * be done now. */
static bool read_body(struct h1_conn *k, struct h1_xfer *x)
{
    char *p = k->rbuf + k->roff;
    size_t avail = k->rlen - k->roff;
    if (x->body_kind == HTTP_RBODY_LENGTH) {
        size_t n = (size_t)GATE_MIN((uint64_t)avail, x->remaining);
        k->roff += n;
        x->remaining -= n;
        if (!deliver(k, x, p, n))
            return false;
        if (x->remaining == 0) {
            xfer_complete(x); /* bytes after the body: not reusable (conn_release) */
            return false;
        }
        return false;
    }
    if (x->body_kind == HTTP_RBODY_CLOSE) {
        k->roff += avail;
        deliver(k, x, p, avail);
        return false;
    }
    size_t out;
    ssize_t used = http_chunked_decode(&x->chunked, p, avail, p, &out);
    if (used < 0) {
        xfer_fail(x, UP_ERR_PROTOCOL);
        return false;
    }
    k->roff += (size_t)used;
    if (!deliver(k, x, p, out))
        return false;
    if (x->chunked.done) {
        xfer_complete(x);
        return false;
    }
    return (size_t)used < avail && used > 0;
}

static void process(struct h1_conn *k)
{
    struct h1_xfer *x = k->x;
    while (x && !x->paused && k->roff < k->rlen) {
        if (!x->head_done) {
            if (!read_head(k, x))
                break;
            if (!x->head_done)
                continue; /* after a 1xx */
        }
        if (k->roff < k->rlen && !read_body(k, x))
            break;
    }
}

static void on_eof(struct h1_xfer *x, bool clean)
{
    if (x->head_done && x->body_kind == HTTP_RBODY_CLOSE && clean) {
        x->keep_alive = false;
        xfer_complete(x);
        return;
    }
    if (!x->head_done && !x->got_bytes) {
        xfer_conn_error(x);
        return;
    }
    xfer_fail(x, UP_ERR_PROTOCOL); /* truncated: never complete */
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    (void)b;
    struct h1_conn *k = s->data;
    if (nread == 0 || k->closing)
        return;
    struct h1_xfer *x = k->x;
    if (!x) {
        /* Idle: the origin closed it, or sent bytes nobody asked for. */
        conn_close(k);
        return;
    }
    if (nread < 0) {
        if (nread == UV_ENOBUFS)
            xfer_fail(x, UP_ERR_PROTOCOL); /* head over H1_HEAD_MAX */
        else
            on_eof(x, nread == UV_EOF);
        return;
    }
    k->rlen += (size_t)nread;
    x->got_bytes = true;
    process(k);
}

/* ================= connecting ================= */

static void on_conn_timer(uv_timer_t *t)
{
    struct h1_conn *k = t->data;
    if (k->x)
        xfer_fail(k->x, UP_ERR_TIMEOUT);
    else
        conn_close(k);
}

static void arm_deadline(struct h1_conn *k, struct h1_xfer *x, bool connecting)
{
    uint64_t now = uv_now(x->c->loop);
    uint64_t left = x->deadline > now ? x->deadline - now : 0;
    if (connecting)
        left = GATE_MIN(left, (uint64_t)H1_CONNECT_TIMEOUT_MS);
    uv_timer_start(&k->timer, on_conn_timer, left, 0);
}

/* The connection is up (new, or taken from the pool): send the request. */
static void conn_go(struct h1_conn *k)
{
    arm_deadline(k, k->x, false);
    send_head(k);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct h1_conn *k = req->data;
    if (status == UV_ECANCELED || k->closing)
        return;
    struct h1_xfer *x = k->x;
    if (status < 0) {
        log_debug("upstream: connect %s: %s", k->key, uv_strerror(status));
        xfer_fail(x, UP_ERR_CONNECT);
        return;
    }
    k->connected = true;
    uv_tcp_nodelay(&k->tcp, 1);
    if (uv_read_start((uv_stream_t *)&k->tcp, on_alloc, on_read) != 0) {
        xfer_fail(x, UP_ERR_CONNECT);
        return;
    }
    conn_go(k);
}

static int conn_connect(struct h1_conn *k, const struct sockaddr *sa)
{
    k->connect.data = k;
    return uv_tcp_connect(&k->connect, &k->tcp, sa, on_connect);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *ai)
{
    struct h1_conn *k = req->data;
    if (k->closing || status == UV_ECANCELED || !k->x) {
        uv_freeaddrinfo(ai);
        conn_unref(k);
        return;
    }
    k->refs--; /* the request's reference; the handles still hold k */
    int rc = status < 0 ? status : conn_connect(k, ai->ai_addr);
    uv_freeaddrinfo(ai);
    if (rc < 0) {
        log_debug("upstream: resolve/connect %s: %s", k->key, uv_strerror(rc));
        xfer_fail(k->x, UP_ERR_CONNECT);
    }
}

/* A literal address connects at once; a name goes through getaddrinfo on
 * libuv's thread pool. */
static int conn_start(struct h1_conn *k, const struct h1_xfer *x)
{
    struct sockaddr_storage ss;
    int port = atoi(x->port);
    if (uv_ip4_addr(x->host, port, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(x->host, port, (struct sockaddr_in6 *)&ss) == 0)
        return conn_connect(k, (const struct sockaddr *)&ss);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    k->gai.data = k;
    k->refs++;
    int rc = uv_getaddrinfo(x->c->loop, &k->gai, on_resolved, x->host, x->port, &hints);
    if (rc != 0)
        k->refs--;
    return rc;
}

/* Puts x on a connection: an idle one to the same origin, else a new one.
 * False when a new connection could not even be started (x then failed
 * with UP_ERR_CONNECT, reported from here: callers are never inside a
 * public function, or they queue the failure instead). */
static bool conn_attach(struct h1_xfer *x, bool allow_idle)
{
    struct h1_client *c = x->c;
    struct h1_conn *k = allow_idle ? idle_take(c, x->key) : NULL;
    if (k) {
        k->x = x;
        x->conn = k;
        conn_go(k);
        return true;
    }
    k = conn_new(c, x->key);
    k->x = x;
    x->conn = k;
    arm_deadline(k, x, true);
    int rc = conn_start(k, x);
    if (rc != 0) {
        log_debug("upstream: connect %s: %s", x->key, uv_strerror(rc));
        return false;
    }
    return true;
}

/* From callbacks (retry): a failure to start is reported at once. */
static bool conn_open(struct h1_xfer *x)
{
    if (conn_attach(x, false))
        return true;
    xfer_fail(x, UP_ERR_CONNECT);
    return true; /* handled: reported */
}

/* ================= the request head ================= */

/* Splits "http://host[:port]/target" into x->host, x->port, x->key and the
 * target (borrowed from url). False for what we do not send: userinfo, an
 * empty or over-long host, a bad port, bytes that cannot go in a target. */
static bool parse_url(struct h1_xfer *x, const char *url, const char **target,
                      const char **authority, size_t *authority_len)
{
    const char *p = url + 7; /* after "http://" (checked by the front) */
    const char *a = p;
    while (*p && *p != '/' && *p != '?' && *p != '#')
        p++;
    size_t alen = (size_t)(p - a);
    if (alen == 0 || memchr(a, '@', alen))
        return false;
    const char *h = a, *hend, *port = NULL;
    if (*a == '[') {
        hend = memchr(a, ']', alen);
        if (!hend)
            return false;
        h = a + 1;
        if (hend + 1 < p) {
            if (hend[1] != ':')
                return false;
            port = hend + 2;
        }
    } else {
        hend = memchr(a, ':', alen);
        if (hend)
            port = hend + 1;
        else
            hend = p;
    }
    size_t hlen = (size_t)(hend - h);
    if (hlen == 0 || hlen >= H1_HOST_MAX)
        return false;
    memcpy(x->host, h, hlen);
    x->host[hlen] = '\0';
    uint64_t pn = 80;
    if (port && port < p && !(str_to_u64(port, (size_t)(p - port), &pn) && pn > 0 && pn < 65536))
        return false;
    /* No printf here: it was a third of a miss's instructions (callgrind). */
    char digits[8];
    size_t nd = 0;
    do {
        digits[nd++] = (char)('0' + pn % 10);
        pn /= 10;
    } while (pn);
    for (size_t i = 0; i < nd; i++)
        x->port[i] = digits[nd - 1 - i];
    x->port[nd] = '\0';
    for (size_t i = 0; i < hlen; i++) {
        char ch = x->host[i];
        x->key[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
    }
    x->key[hlen] = ':';
    memcpy(x->key + hlen + 1, x->port, nd + 1);
    for (const char *q = p; *q && *q != '#'; q++)
        if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f)
            return false;
    *target = p;
    *authority = a;
    *authority_len = alen;
    return true;
}

static bool is_hdr(const struct up_header *h, const char *name)
{
    return str_ieq_c(h->name, h->name_len, name);
}

/* "METHOD target HTTP/1.1", Host (from the URL unless given), the caller's
 * headers as given minus framing, then our framing. Nothing else is added. */
static bool build_head(struct h1_xfer *x, const struct up_request *req)
{
    const char *m = req->method ? req->method : "GET";
    const char *target, *auth;
    size_t auth_len;
    if (!parse_url(x, req->url, &target, &auth, &auth_len))
        return false;
    const char *frag = strchr(target, '#');
    size_t tlen = frag ? (size_t)(frag - target) : strlen(target);
    struct buf *b = &x->head;
    buf_append_str(b, m);
    buf_append_char(b, ' ');
    if (tlen == 0 || target[0] != '/')
        buf_append_char(b, '/');
    buf_append(b, target, tlen);
    buf_append_str(b, " HTTP/1.1\r\n");
    bool has_host = false;
    for (size_t i = 0; i < req->n_headers; i++)
        has_host |= is_hdr(&req->headers[i], "Host");
    if (!has_host) {
        buf_append_str(b, "Host: ");
        buf_append(b, auth, auth_len);
        buf_append_str(b, "\r\n");
    }
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct up_header *h = &req->headers[i];
        /* We frame the body from its length (RFC 9112 §6.2, §6.3). */
        if (is_hdr(h, "Content-Length") || is_hdr(h, "Transfer-Encoding"))
            continue;
        buf_append(b, h->name, h->name_len);
        buf_append_char(b, ':');
        if (h->value_len > 0) {
            buf_append_char(b, ' ');
            buf_append(b, h->value, h->value_len);
        }
        buf_append_str(b, "\r\n");
    }
    if (x->is_head) {
        /* HEAD carries no body. */
    } else if (req->body_stream && req->stream_len < 0) {
        buf_append_str(b, "Transfer-Encoding: chunked\r\n");
    } else if (req->body_stream) {
        buf_append_str(b, "Content-Length: ");
        buf_append_u64(b, (uint64_t)req->stream_len);
        buf_append_str(b, "\r\n");
    } else if (req->body || up__is_method(m, "POST") || up__is_method(m, "PUT") ||
               up__is_method(m, "PATCH")) {
        buf_append_str(b, "Content-Length: ");
        buf_append_u64(b, req->body ? req->body_len : 0);
        buf_append_str(b, "\r\n");
    }
    buf_append_str(b, "\r\n");
    return true;
}

/* ================= deferred pass ================= */

static void run_pending(struct h1_xfer *x)
{
    struct h1_conn *k = x->conn;
    if (x->failed_early) {
        xfer_finish(x, x->fail_with);
        return;
    }
    if (x->resume_pending && x->paused && k) {
        x->resume_pending = false;
        x->paused = false;
        if (body_finished(x)) {
            xfer_complete(x); /* the last bytes were paused on */
            return;
        }
        process(k);
        if (!x->cancelled && !x->done && !x->paused && x->conn == k && !k->closing) {
            if (uv_read_start((uv_stream_t *)&k->tcp, on_alloc, on_read) != 0)
                xfer_fail(x, UP_ERR_PROTOCOL);
        }
    }
    if (x->cancelled || x->done)
        return;
    if (x->send_resume_pending && x->send_paused && x->conn) {
        GATE_ASSERT(!x->conn->writing);
        x->send_resume_pending = false;
        x->send_paused = false;
        send_more(x->conn);
    }
}

/* One pass over what callbacks asked for. Work queued during the pass waits
 * for the next one, so a pause/resume ping-pong cannot starve the loop. */
static void on_defer(uv_idle_t *h)
{
    struct h1_client *c = h->data;
    struct h1_xfer *list = c->pending;
    c->pending = NULL;
    uv_idle_stop(&c->defer);
    while (list && !c->closing) {
        struct h1_xfer *x = list;
        list = x->pending_next;
        x->in_pending = false;
        x->in_pass = true;
        if (!x->cancelled && !x->done)
            run_pending(x);
        x->in_pass = false;
        if ((x->cancelled || x->done) && !x->in_pending)
            xfer_free(x);
    }
    /* Closing: what is left goes with the client (client_release). */
    while (list) {
        struct h1_xfer *x = list;
        list = x->pending_next;
        x->in_pending = false;
        queue(x);
    }
}

/* ================= public (to the front) ================= */

struct h1_client *h1_client_new(uv_loop_t *loop)
{
    struct h1_client *c = xcalloc(1, sizeof(*c));
    c->magic = H1_CLIENT_MAGIC;
    c->loop = loop;
    uv_idle_init(loop, &c->defer);
    c->defer.data = c;
    c->refs = 1;
    return c;
}

void h1_client_free(struct h1_client **cp)
{
    struct h1_client *c = *cp;
    if (!c)
        return;
    *cp = NULL;
    GATE_ASSERT(c->magic == H1_CLIENT_MAGIC && !c->closing);
    c->closing = true;
    c->n_active = 0;
    while (c->conns) {
        struct h1_conn *k = c->conns;
        struct h1_xfer *x = k->x;
        if (x && !x->done) {
            x->cancelled = true;
            x->conn = NULL;
            queue(x); /* freed by client_release, after any callback returns */
        }
        conn_close(k);
    }
    uv_close((uv_handle_t *)&c->defer, on_defer_closed);
}

struct up_transfer *h1_start(struct h1_client *c, const struct up_request *req,
                             const struct up_callbacks *cb, void *ud)
{
    GATE_ASSERT(c && c->magic == H1_CLIENT_MAGIC);
    if (c->closing)
        return NULL;
    struct h1_xfer *x = xfer_new(c);
    x->base.backend = UP_BACKEND_H1;
    x->magic = H1_XFER_MAGIC;
    x->c = c;
    x->cb = *cb;
    x->ud = ud;
    x->is_head = up__is_method(req->method ? req->method : "GET", "HEAD");
    x->body = x->is_head ? NULL : req->body;
    x->body_len = x->body ? req->body_len : 0;
    x->stream = req->body_stream && !x->is_head;
    x->stream_len = req->stream_len;
    x->sent_all = !x->stream;
    if (!build_head(x, req)) {
        xfer_free(x);
        return NULL;
    }
    x->deadline = uv_now(c->loop) + req->timeout_ms;
    c->n_active++;
    if (!conn_attach(x, true))
        xfer_fail_later(x, UP_ERR_CONNECT); /* callbacks never run inside up_start */
    return &x->base;
}

void h1_cancel(struct up_transfer *base)
{
    struct h1_xfer *x = (struct h1_xfer *)base;
    GATE_ASSERT(x->magic == H1_XFER_MAGIC);
    if (x->done || x->cancelled)
        return;
    x->cancelled = true;
    x->c->n_active--;
    conn_release(x, false);
    queue(x); /* freed by the pass: we may be inside one of its callbacks */
}

void h1_resume(struct up_transfer *base)
{
    struct h1_xfer *x = (struct h1_xfer *)base;
    GATE_ASSERT(x->magic == H1_XFER_MAGIC);
    if (x->done || x->cancelled)
        return;
    x->resume_pending = true;
    queue(x);
}

void h1_resume_send(struct up_transfer *base)
{
    struct h1_xfer *x = (struct h1_xfer *)base;
    GATE_ASSERT(x->magic == H1_XFER_MAGIC);
    if (x->done || x->cancelled || !x->send_paused)
        return;
    x->send_resume_pending = true;
    queue(x);
}

size_t h1_client_active(const struct h1_client *c)
{
    GATE_ASSERT(c && c->magic == H1_CLIENT_MAGIC);
    return c->n_active;
}
