/*
 * server/conn.c — client connections: reading and parsing request heads and
 * bodies, pipelining (one request answered at a time, in order), writes,
 * timeouts, limits and closing.
 *
 * Invariants: a connection has at most one request (c->req); bytes of later
 * pipelined requests wait in c->in and are parsed only after the current
 * answer has been queued, so answers leave in request order. Reading stops
 * while a request is busy and c->in holds more than a head's worth of bytes.
 * The connection is freed only after both of its handles' close callbacks,
 * and its request with it (aborted at conn_close, so nothing runs for it
 * any more, but still readable by a caller that closed the connection
 * through a failed write).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "server/server_int.h"

#define READ_CHUNK 65536

static void conn_read_start(struct conn *c);
static void conn_read_stop(struct conn *c);
static void fail_body(struct conn *c, int status, const char *msg);
static void process_input(struct conn *c);

/* ================= writes ================= */

struct wreq {
    uv_write_t w;
    struct conn *c;
    struct cache_entry *entry; /* ref or NULL */
    size_t len;
    char data[];               /* copied bytes (head/extra for entries) */
};

size_t conn_write_queue(const struct conn *c)
{
    return c->tcp.write_queue_size;
}

static void on_write(uv_write_t *w, int status)
{
    struct wreq *wr = (struct wreq *)w;
    struct conn *c = wr->c;
    cache_entry_release(&wr->entry);
    free(wr);
    c->writes_pending--;
    if (status < 0 && c->state != CONN_CLOSING) {
        conn_close(c);
        return;
    }
    if (c->state == CONN_CLOSING)
        return; /* its request is aborted; the handles are closing */
    if (c->req && c->req->upstream_paused && conn_write_queue(c) < 256 * 1024)
        req_write_drained(c->req);
    if (c->close_after_write && c->writes_pending == 0)
        conn_linger(c);
}

static void submit(struct conn *c, struct wreq *wr, uv_buf_t *bufs, unsigned n)
{
    wr->c = c;
    c->writes_pending++;
    if (uv_write(&wr->w, (uv_stream_t *)&c->tcp, bufs, n, on_write) != 0) {
        c->writes_pending--;
        cache_entry_release(&wr->entry);
        free(wr);
        conn_close(c);
    }
}

_Static_assert(sizeof(uv_buf_t) == sizeof(struct iovec) &&
                   offsetof(uv_buf_t, base) == offsetof(struct iovec, iov_base) &&
                   offsetof(uv_buf_t, len) == offsetof(struct iovec, iov_len),
               "uv_buf_t is an iovec");

/* Writes as much as the socket takes right now (one sendmsg, no request
 * object). Returns the bytes written, or -1 when the connection failed. With
 * nothing queued before, a direct write keeps answers in order and spares
 * libuv's write queue, which costs an epoll_ctl per write. */
static ssize_t write_now(struct conn *c, const uv_buf_t *bufs, unsigned n)
{
    if (c->writes_pending)
        return 0;
    /* sendmsg on the socket itself rather than uv_try_write's writev: the
     * same bytes, without the VFS layers a write() to a file goes through
     * (a few percent of a hit's CPU). libuv's uv_buf_t is laid out as a
     * struct iovec on Unix. */
    uv_os_fd_t fd;
    if (uv_fileno((const uv_handle_t *)&c->tcp, &fd) != 0)
        return -1;
    struct msghdr mh = {.msg_iov = (struct iovec *)bufs, .msg_iovlen = n};
    ssize_t rc = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (rc < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS ? 0 : -1;
    return rc;
}

/* Drops the first `done` bytes of bufs; returns the index of the first
 * buffer with bytes left (adjusted in place). */
static unsigned skip_written(uv_buf_t *bufs, unsigned n, size_t done)
{
    unsigned i = 0;
    while (i < n && done >= bufs[i].len) {
        done -= bufs[i].len;
        i++;
    }
    if (i < n) {
        bufs[i].base += done;
        bufs[i].len -= done;
    }
    return i;
}

void conn_write_copyv(struct conn *c, uv_buf_t *bufs, unsigned n)
{
    size_t len = 0;
    for (unsigned i = 0; i < n; i++)
        len += bufs[i].len;
    if (c->state == CONN_CLOSING || len == 0)
        return;
    ssize_t done = write_now(c, bufs, n);
    if (done < 0) {
        conn_close(c);
        return;
    }
    if ((size_t)done == len)
        return;
    size_t rest = len - (size_t)done;
    struct wreq *wr = xmalloc(sizeof(*wr) + rest);
    wr->entry = NULL;
    wr->len = rest;
    size_t off = 0;
    for (unsigned i = skip_written(bufs, n, (size_t)done); i < n; i++) {
        memcpy(wr->data + off, bufs[i].base, bufs[i].len);
        off += bufs[i].len;
    }
    uv_buf_t b = uv_buf_init(wr->data, (unsigned)rest);
    submit(c, wr, &b, 1);
}

void conn_write_copy(struct conn *c, const char *data, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    conn_write_copyv(c, &b, 1);
}

/* ================= zero-copy bodies ================= */

/*
 * A large body on a hit goes to the socket by reference: vmsplice lends the
 * entry's pages to a pipe, splice hands them on to the socket, and no byte of
 * the body is copied on our side (what nginx gets from sendfile). Only bodies
 * whose pages are pinnable (cache_entry_body_pinnable) go this way. The pipe
 * is the worker's and empty between calls: what the socket did not take is
 * dropped from the pipe (spliced to /dev/null) and the rest of the body goes
 * the ordinary way (uv_write from the same entry). A pipe that cannot be
 * emptied is closed for good: its bytes must never reach another client.
 */
#define SPLICE_PIPE_BYTES (1024 * 1024) /* fs.pipe-max-size's default */

void conn_splice_close(struct wrk *w)
{
    if (w->splice.state == WRK_SPLICE_ON) {
        close(w->splice.pipe_r);
        close(w->splice.pipe_w);
        close(w->splice.devnull);
    }
    w->splice.state = WRK_SPLICE_OFF;
}

static bool splice_ready(struct wrk *w)
{
    struct wrk_splice *z = &w->splice;
    if (z->state != WRK_SPLICE_UNTRIED)
        return z->state == WRK_SPLICE_ON;
    z->state = WRK_SPLICE_OFF;
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0)
        return false;
    int nul = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (nul < 0) {
        close(p[0]);
        close(p[1]);
        return false;
    }
    (void)fcntl(p[1], F_SETPIPE_SZ, SPLICE_PIPE_BYTES); /* may be refused: 64 KiB then */
    int cap = fcntl(p[1], F_GETPIPE_SZ);
    *z = (struct wrk_splice){.pipe_r = p[0], .pipe_w = p[1], .devnull = nul,
                             .pipe_bytes = cap > 0 ? (size_t)cap : 65536,
                             .state = WRK_SPLICE_ON};
    return true;
}

/* Empties the pipe of `len` bytes the socket did not take. */
static void splice_discard(struct wrk *w, size_t len)
{
    struct wrk_splice *z = &w->splice;
    for (int tries = 0; len > 0 && tries < 16; tries++) {
        ssize_t n = splice(z->pipe_r, NULL, z->devnull, NULL, len, SPLICE_F_NONBLOCK);
        if (n <= 0)
            break;
        len -= (size_t)n;
    }
    int left = 0;
    if (len > 0 || ioctl(z->pipe_r, FIONREAD, &left) != 0 || left != 0) {
        log_warn("worker %u: zero-copy pipe not emptied: closed, bodies are copied from now on",
                 w->id);
        conn_splice_close(w);
    }
}

/* Sends as much of the body as the socket takes now, by reference. Returns
 * the bytes sent, or -1 when the connection is broken. */
static ssize_t splice_body(struct wrk *w, int fd, const char *body, size_t len)
{
    struct wrk_splice *z = &w->splice;
    size_t sent = 0;
    while (sent < len && z->state == WRK_SPLICE_ON) {
        size_t want = len - sent < z->pipe_bytes ? len - sent : z->pipe_bytes;
        struct iovec iov = {.iov_base = (char *)body + sent, .iov_len = want};
        ssize_t in = vmsplice(z->pipe_w, &iov, 1, SPLICE_F_NONBLOCK);
        if (in <= 0) {
            conn_splice_close(w); /* not supported here (e.g. under valgrind) */
            break;
        }
        unsigned more = sent + (size_t)in < len ? SPLICE_F_MORE : 0;
        ssize_t out = splice(z->pipe_r, NULL, fd, NULL, (size_t)in, SPLICE_F_NONBLOCK | more);
        int err = errno;
        if (out < (ssize_t)in)
            splice_discard(w, (size_t)in - (size_t)(out > 0 ? out : 0));
        if (out < 0)
            return err == EAGAIN ? (ssize_t)sent : -1;
        sent += (size_t)out;
        if (out < in)
            break; /* the socket is full */
    }
    return (ssize_t)sent;
}

/* write_now for head + extra + a pinnable body: the head is copied (with
 * MSG_MORE, so it leaves in one segment with the body), the body lent. */
static ssize_t write_now_spliced(struct conn *c, const uv_buf_t *b)
{
    uv_os_fd_t fd;
    if (uv_fileno((const uv_handle_t *)&c->tcp, &fd) != 0)
        return write_now(c, b, 3);
    struct iovec iov[2] = {{.iov_base = b[0].base, .iov_len = b[0].len},
                           {.iov_base = b[1].base, .iov_len = b[1].len}};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
    size_t head = b[0].len + b[1].len;
    ssize_t n = sendmsg(fd, &mh, MSG_MORE | MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    if ((size_t)n < head)
        return n;
    ssize_t body = splice_body(c->w, fd, b[2].base, b[2].len);
    return body < 0 ? -1 : (ssize_t)head + body;
}

void conn_write_entry(struct conn *c, struct cache_entry *e, const char *extra, size_t extra_len,
                      bool with_body)
{
    if (c->state == CONN_CLOSING)
        return;
    /* One writev: stored head, the per-hit headers, the body straight from
     * the entry (no copy; large bodies lent to the socket, see above). */
    uv_buf_t b[3];
    unsigned n = 0;
    b[n++] = uv_buf_init((char *)cache_entry_head(e), (unsigned)e->head_len);
    b[n++] = uv_buf_init((char *)extra, (unsigned)extra_len);
    if (with_body && e->body_len)
        b[n++] = uv_buf_init((char *)cache_entry_body(e), (unsigned)e->body_len);
    size_t total = 0;
    for (unsigned i = 0; i < n; i++)
        total += b[i].len;
    bool lend = n == 3 && cache_entry_body_pinnable(e) && !c->writes_pending &&
                splice_ready(c->w);
    ssize_t done = lend ? write_now_spliced(c, b) : write_now(c, b, n);
    if (done < 0) {
        conn_close(c);
        return;
    }
    if ((size_t)done == total)
        return;
    /* The socket is full: queue the rest. The extra headers are copied (the
     * caller's buffer is gone after the call); the entry ref keeps the head
     * and body alive until the write completes. */
    unsigned first = skip_written(b, n, (size_t)done);
    struct wreq *wr = xmalloc(sizeof(*wr) + extra_len);
    wr->entry = cache_entry_ref(e);
    wr->len = extra_len;
    memcpy(wr->data, extra, extra_len);
    if (first <= 1 && b[1].len) {
        /* b[1] still points into `extra`: move it into the request's copy. */
        size_t off = extra_len - b[1].len;
        b[1].base = wr->data + off;
    }
    submit(c, wr, b + first, n - first);
}

/* ================= lifecycle ================= */

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct conn *c = req->data;
    if (status < 0)
        conn_close(c);
}

/* Closing right after an error answer while request bytes are still unread
 * makes the kernel send RST, and the client may lose the answer. So: send
 * FIN, read and discard until the client closes, bounded by a short timer. */
void conn_linger(struct conn *c)
{
    if (c->lingering || c->state == CONN_CLOSING)
        return;
    c->lingering = true;
    c->state = CONN_BUSY;
    req_free(&c->req);
    c->shutdown.data = c;
    if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        conn_close(c);
        return;
    }
    conn_arm_timer(c, 1000); /* on_timer closes a lingering connection */
    conn_read_start(c);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    if (--c->closing_handles > 0)
        return;
    struct wrk *w = c->w;
    req_free(&c->req);
    buf_free(&c->in);
    free(c);
    w->n_conns--;
    if (w->n_conns == 0)
        req_free_spare(w); /* no request can come before the next accept */
    atomic_fetch_sub(&srv.n_conns, 1);
    if (w->stopping && w->n_conns == 0)
        wrk_poke(w); /* let the drain see the last connection go */
}

void conn_close(struct conn *c)
{
    if (c->state == CONN_CLOSING)
        return;
    c->state = CONN_CLOSING;
    /* Aborted now, freed with the connection (on_handle_closed): a write
     * that fails closes the connection from inside the request's own code,
     * which goes on reading the request after the write returns. */
    if (c->req)
        req_abort(c->req);
    srv_runtime_release(&c->rt);
    struct wrk *w = c->w;
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->closing_handles = 2;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

/* ================= the connection timer ================= */

/* One timer per connection with one deadline (c->deadline_ms, loop time).
 * The libuv timer may be due before the deadline; it then re-arms itself
 * for the rest (a lazy timer). Every request on a keep-alive connection moves
 * the deadline later (header, idle, header...), and this way that costs no
 * timer-heap update; stopping only clears c->timer_on. */

static void on_timeout(struct conn *c)
{
    if (c->lingering) {
        conn_close(c); /* the client did not close in time */
        return;
    }
    switch (c->state) {
    case CONN_HEAD:
    case CONN_BODY:
        /* RFC 9110 §15.5.9: the client took too long to send its request. */
        conn_respond_error(c, 408, "Request Timeout");
        break;
    case CONN_BUSY:
        if (c->req && c->req->body_streaming && !c->req->body_done)
            fail_body(c, 408, "Request Timeout"); /* the streamed body stalled */
        else if (c->req)
            req_resume_waiter(c->req, true, 0); /* bounded wait for a coalesced fill */
        else
            conn_close(c); /* an error answer the client does not read */
        break;
    default:
        conn_close(c);
    }
}

static void start_uv_timer(struct conn *c, uint64_t now);

static void on_timer(uv_timer_t *t)
{
    struct conn *c = t->data;
    c->timer_due_ms = 0; /* a one-shot timer: not running any more */
    if (!c->timer_on)
        return;
    uint64_t now = uv_now(&c->w->loop);
    if (now < c->deadline_ms) {
        start_uv_timer(c, now); /* the deadline moved on since it was started */
        return;
    }
    c->timer_on = false;
    on_timeout(c);
}

static void start_uv_timer(struct conn *c, uint64_t now)
{
    uv_timer_start(&c->timer, on_timer, c->deadline_ms - now, 0);
    c->timer_due_ms = c->deadline_ms;
}

void conn_arm_timer(struct conn *c, uint32_t ms)
{
    uint64_t now = uv_now(&c->w->loop);
    c->deadline_ms = now + ms;
    c->timer_on = true;
    /* A running timer due no later than the deadline will re-arm itself. */
    if (c->timer_due_ms == 0 || c->timer_due_ms > c->deadline_ms)
        start_uv_timer(c, now);
}

void conn_stop_timer(struct conn *c)
{
    c->timer_on = false;
}

static const struct cfg_limits *limits(struct conn *c)
{
    return &wrk_runtime(c->w)->cfg->server.limits;
}

void conn_accept(struct wrk *w, uv_stream_t *listener)
{
    struct conn *c = xcalloc(1, sizeof(*c));
    c->w = w;
    uv_tcp_init(&w->loop, &c->tcp);
    uv_timer_init(&w->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    buf_init(&c->in);
    w->n_conns++;
    atomic_fetch_add(&srv.n_conns, 1);
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET)
            uv_ip4_name((struct sockaddr_in *)&ss, c->peer, sizeof(c->peer));
        else
            uv_ip6_name((struct sockaddr_in6 *)&ss, c->peer, sizeof(c->peer));
    }
    const struct cfg_limits *lim = limits(c);
    if ((uint32_t)atomic_load(&srv.n_conns) > lim->max_connections) {
        /* Over the limit: say so and close, rather than leave it hanging. */
        conn_respond_error(c, 503, "Too many connections");
        return;
    }
    c->state = CONN_IDLE;
    conn_arm_timer(c, lim->idle_timeout_ms);
    conn_read_start(c);
}

/* ================= reading ================= */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct conn *c = h->data;
    buf_reserve(&c->in, READ_CHUNK);
    b->base = c->in.data + c->in.len;
    b->len = c->in.cap - c->in.len - 1;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct conn *c = s->data;
    if (n < 0) {
        if (c->lingering) {
            conn_close(c);
            return;
        }
        /* A client may half-close after its request and still read the
         * answer; anything else (error, EOF mid-request) ends the connection. */
        if (n == UV_EOF && c->state == CONN_BUSY && c->req) {
            conn_read_stop(c);
            c->keep_alive = false;
            return;
        }
        conn_close(c);
        return;
    }
    if (c->lingering) {
        c->in.len = 0; /* discard: we are only waiting for the client's FIN */
        return;
    }
    if (n == 0)
        return;
    c->in.len += (size_t)n;
    c->in.data[c->in.len] = '\0';
    if (c->state == CONN_IDLE) {
        c->state = CONN_HEAD;
        c->met_head_ns = met_now_ns(); /* Latency starts at the head's first byte */
        conn_arm_timer(c, limits(c)->header_timeout_ms);
    }
    process_input(c);
}

static void conn_read_start(struct conn *c)
{
    if (!c->reading && c->state != CONN_CLOSING) {
        c->reading = true;
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    }
}

static void conn_read_stop(struct conn *c)
{
    if (c->reading) {
        c->reading = false;
        uv_read_stop((uv_stream_t *)&c->tcp);
    }
}

static void process_input_loop(struct conn *c);

/* Moves the parsed head out of c->in into the request (its spans are
 * rebased), so later reads may grow c->in freely. */
static struct req *take_head(struct conn *c, size_t head_len, const struct http_request *parsed)
{
    struct req *r = req_new(c, head_len);
    memcpy(r->head, c->in.data, head_len);
    r->head[head_len] = '\0';
    r->head_len = head_len;
    /* Everything but the unused tail of the header array. */
    memcpy(&r->hr, parsed, offsetof(struct http_request, headers));
    memcpy(r->hr.headers, parsed->headers, parsed->num_headers * sizeof(parsed->headers[0]));
    memcpy(&r->hr.num_headers, &parsed->num_headers,
           sizeof(struct http_request) - offsetof(struct http_request, num_headers));
    ptrdiff_t d = r->head - c->in.data;
#define REBASE(p)                                                                                  \
    do {                                                                                           \
        if (p)                                                                                     \
            (p) += d;                                                                              \
    } while (0)
    REBASE(r->hr.method);
    REBASE(r->hr.target);
    REBASE(r->hr.path);
    REBASE(r->hr.query);
    REBASE(r->hr.host);
    for (size_t i = 0; i < r->hr.num_headers; i++) {
        REBASE(r->hr.headers[i].name);
        REBASE(r->hr.headers[i].value);
    }
#undef REBASE
    buf_consume(&c->in, head_len);
    return r;
}

static void start_request(struct conn *c)
{
    if (!c->req->body_streaming)
        conn_stop_timer(c);
    c->state = CONN_BUSY;
    c->keep_alive = c->req->hr.keep_alive && !c->w->stopping;
    req_dispatch(c->req);
}

/* A body error while the request runs: an answer can still be given only if
 * none has started; otherwise closing is the only signal left. */
static void fail_body(struct conn *c, int status, const char *msg)
{
    if (c->req && c->req->head_sent)
        conn_close(c);
    else
        conn_respond_error(c, status, msg);
}

/* Reads body bytes from c->in; true when the body is complete. */
static bool read_body(struct conn *c)
{
    struct req *r = c->req;
    const struct cfg_limits *lim = limits(c);
    if (r->hr.body_kind == HTTP_BODY_LENGTH) {
        size_t take = (size_t)GATE_MIN((uint64_t)c->in.len, r->body_left);
        buf_append(&r->body, c->in.data, take);
        buf_consume(&c->in, take);
        r->body_left -= take;
        r->body_total += take;
        return r->body_left == 0;
    }
    /* Chunked: decode what we have; the decoder keeps its state across reads. */
    buf_reserve(&r->body, c->in.len);
    size_t out_len = 0;
    ssize_t used = http_chunked_decode(&r->chunked, c->in.data, c->in.len,
                                       r->body.data + r->body.len, &out_len);
    if (used < 0) {
        fail_body(c, 400, "Malformed chunked request body");
        return false;
    }
    r->body.len += out_len;
    r->body.data[r->body.len] = '\0';
    r->body_total += out_len;
    buf_consume(&c->in, (size_t)used);
    if (r->body_total > lim->max_body_bytes) {
        fail_body(c, 413, "Request body too large");
        return false;
    }
    return r->chunked.done;
}

/* A request head is complete: decide how its body comes. */
static void begin_body(struct conn *c)
{
    struct req *r = c->req;
    const struct cfg_limits *lim = limits(c);
    if (r->hr.body_kind == HTTP_BODY_LENGTH && r->hr.content_length > lim->max_body_bytes) {
        conn_respond_error(c, 413, "Request body too large");
        return;
    }
    r->body_left = r->hr.body_kind == HTTP_BODY_LENGTH ? r->hr.content_length : 0;
    http_chunked_init(&r->chunked);
    if (r->hr.body_kind == HTTP_BODY_NONE) {
        start_request(c);
        return;
    }
    c->state = CONN_BODY;
    conn_arm_timer(c, lim->body_timeout_ms);
    /* RFC 9110 §10.1.1: answer 100 only if the body has not started arriving. */
    if (r->hr.expect_continue && c->in.len == 0 && r->hr.minor_version >= 1) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        conn_write_copy(c, cont, sizeof(cont) - 1);
        r->sent_continue = true;
    }
    /* Bodies that nothing here needs whole (no cache key, no signature)
     * stream to the integration as they arrive. */
    if (req_body_streamable(r)) {
        r->body_streaming = true;
        start_request(c);
    }
}

/* Moves body bytes that arrived while a streamed request runs. */
static void stream_body(struct conn *c)
{
    struct req *r = c->req;
    if (c->in.len == 0)
        return;
    bool done = read_body(c);
    if (c->req != r || c->state == CONN_CLOSING)
        return; /* failed and answered or closed */
    conn_arm_timer(c, limits(c)->body_timeout_ms);
    if (done) {
        r->body_done = true;
        conn_stop_timer(c);
    }
    req_body_more(r);
}

static void process_input(struct conn *c)
{
    c->in_input = true;
    process_input_loop(c);
    c->in_input = false;
}

static void process_input_loop(struct conn *c)
{
    for (;;) {
        if (c->state == CONN_CLOSING)
            return;
        if (c->state == CONN_BUSY && c->req && c->req->body_streaming && !c->req->body_done) {
            stream_body(c);
            return;
        }
        if (c->state == CONN_BUSY) {
            /* Pipelined bytes wait; stop reading once a head's worth is buffered. */
            if (c->in.len > limits(c)->max_header_bytes)
                conn_read_stop(c);
            return;
        }
        if (c->state == CONN_BODY) {
            bool done = read_body(c);
            if (c->state == CONN_CLOSING || !done)
                return;
            start_request(c);
            continue;
        }
        if (c->in.len == 0)
            return;
        const struct cfg_limits *lim = limits(c);
        struct http_limits hl = {lim->max_header_bytes, lim->max_headers, lim->max_url_bytes};
        struct http_request *parsed = &c->w->parse_scratch;
        int status = 400;
        const char *reason = "Bad Request";
        int rc = http_parse_request(c->in.data, c->in.len, &hl, parsed, &status, &reason);
        if (rc == HTTP_PARSE_INCOMPLETE) {
            if (c->state == CONN_IDLE) {
                c->state = CONN_HEAD;
                c->met_head_ns = met_now_ns();
                conn_arm_timer(c, lim->header_timeout_ms);
            }
            return;
        }
        if (rc < 0) {
            /* Smuggling and framing errors: answer and close (RFC 9112 §11.2). */
            conn_respond_error(c, status, reason);
            return;
        }
        c->req = take_head(c, (size_t)rc, parsed);
        c->rt = srv_runtime_ref(wrk_runtime(c->w)); /* held until the request is done */
        begin_body(c);
    }
}

void conn_request_done(struct conn *c)
{
    if (c->state == CONN_CLOSING)
        return;
    /* Answered before its streamed body ended: the rest of that body is
     * still on the wire, so the connection cannot carry another request. */
    if (c->req && c->req->body_streaming && !c->req->body_done)
        c->keep_alive = false;
    req_free(&c->req);
    srv_runtime_release(&c->rt);
    if (!c->keep_alive) {
        c->close_after_write = true;
        c->state = CONN_BUSY;
        conn_read_stop(c);
        conn_arm_timer(c, limits(c)->idle_timeout_ms);
        if (c->writes_pending == 0)
            conn_linger(c);
        return;
    }
    /* A pipelined head starts now; an idle connection restamps on its next read. */
    c->met_head_ns = met_now_ns();
    c->state = c->in.len ? CONN_HEAD : CONN_IDLE;
    const struct cfg_limits *lim = limits(c);
    conn_arm_timer(c, c->in.len ? lim->header_timeout_ms : lim->idle_timeout_ms);
    conn_read_start(c);
    /* Inside process_input (a hit answered synchronously), its loop goes on
     * with the next pipelined request: no recursion per request. */
    if (!c->in_input)
        process_input(c);
}

/* Drain: idle connections close now; busy ones close after their answer
 * (keep_alive is turned off); on force-close everything goes. */
void conn_drain(struct wrk *w)
{
    bool force = atomic_load(&srv.force_close);
    struct conn *c = w->conns;
    while (c) {
        struct conn *next = c->next;
        if (force || c->state == CONN_IDLE || c->state == CONN_HEAD)
            conn_close(c);
        else
            c->keep_alive = false;
        c = next;
    }
}
