/*
 * admin/listener.c — the admin listener: a thread with its own libuv loop,
 * one TCP listener on server.admin_listen, and a small HTTP/1.1 server in
 * front of admin__handle.
 *
 * Invariants: one request at a time per connection, answered synchronously
 * (the handler never blocks on I/O); pipelined bytes wait in c->in and are
 * parsed after the answer is queued, so answers leave in order. Reading
 * pauses while more than WRITE_HIGH bytes wait to be written. Limits: 16 KiB
 * head, 1 MiB body (Content-Length or chunked). A connection is freed only in
 * the close callbacks of its handles (two: tcp and timer).
 *
 * admin_start binds and listens on the caller's thread, so a bind failure is
 * reported to the caller (startup fails) instead of from the thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "admin/admin_int.h"
#include "http/http.h"

#define ADMIN_MAGIC 0x41444d31u /* "ADM1" */
#define READ_CHUNK 65536
#define WRITE_HIGH (1024u * 1024u)
#define MAX_CONNS 256
#define IDLE_MS 60000    /* keep-alive idle */
#define REQUEST_MS 30000 /* a whole request must arrive within this */
#define TOKEN_MAX 4096

struct admin {
    uint32_t magic;
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t stop; /* admin_stop → loop */
    uv_thread_t thread;
    struct admin__ctx ctx;
    struct aconn *conns; /* open connections */
    size_t n_conns;
};

enum aconn_state { AC_HEAD = 0, AC_BODY, AC_CLOSING };

struct aconn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    struct admin *a;
    struct aconn *prev, *next;
    enum aconn_state state;
    int closing_handles;
    bool reading;
    bool close_after_write;
    bool lingering; /* FIN sent after an answer; discarding input until EOF */
    uv_shutdown_t shutdown;
    size_t writes_pending;
    struct buf in;   /* received, not yet consumed */
    struct buf body; /* the current request's decoded body */
    size_t head_len; /* of the current request, once parsed (AC_BODY) */
    struct http_chunked chunked;
    size_t chunk_pos;        /* chunked bytes after the head already decoded into body */
    struct http_request req; /* spans into `in`; stale once `in` grows (see answer) */
};

static void process_input(struct aconn *c);
static void read_start(struct aconn *c);

/* ================= token ================= */

int admin__read_token(const char *path, char **token, size_t *len, const char **err)
{
    *token = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *err = "cannot open admin_token_file";
        return -1;
    }
    char *t = xmalloc(TOKEN_MAX + 1);
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, t + n, TOKEN_MAX + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n > TOKEN_MAX)
            break;
    }
    close(fd);
    *err = NULL;
    if (n > TOKEN_MAX)
        *err = "admin_token_file is larger than 4 KiB";
    while (n > 0 && (t[n - 1] == '\n' || t[n - 1] == '\r' || t[n - 1] == ' ' || t[n - 1] == '\t'))
        n--;
    if (!*err && n == 0)
        *err = "admin_token_file is empty";
    if (!*err && (memchr(t, '\n', n) || memchr(t, '\r', n)))
        *err = "admin_token_file holds more than one line";
    if (*err) {
        memset(t, 0, TOKEN_MAX + 1);
        free(t);
        return -1;
    }
    t[n] = '\0';
    *token = t;
    *len = n;
    return 0;
}

/* ================= writes ================= */

struct awrite {
    uv_write_t w;
    struct aconn *c;
    size_t len;
    char data[];
};

static void conn_close(struct aconn *c);
static void on_timeout(uv_timer_t *t);

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct aconn *c = req->data;
    if (status < 0)
        conn_close(c);
}

/* Closing while request bytes are unread makes the kernel send RST, and the
 * client may lose the answer: send FIN, discard input until the client
 * closes, bounded by a short timer. */
static void linger(struct aconn *c)
{
    c->lingering = true;
    c->shutdown.data = c;
    if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, on_timeout, 1000, 0);
    read_start(c);
}

static void on_write(uv_write_t *w, int status)
{
    struct awrite *wr = (struct awrite *)w;
    struct aconn *c = wr->c;
    free(wr);
    c->writes_pending--;
    if (c->state == AC_CLOSING)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->close_after_write) {
        if (c->writes_pending == 0 && !c->lingering)
            linger(c);
        return;
    }
    if (!c->reading && c->tcp.write_queue_size < WRITE_HIGH) {
        read_start(c);
        process_input(c); /* pipelined requests held back while the queue was full */
    }
}

static void conn_write(struct aconn *c, struct buf *b)
{
    struct awrite *wr = xmalloc(sizeof(*wr) + b->len);
    wr->c = c;
    wr->len = b->len;
    memcpy(wr->data, b->data, b->len);
    uv_buf_t ub = uv_buf_init(wr->data, (unsigned)b->len);
    c->writes_pending++;
    if (uv_write(&wr->w, (uv_stream_t *)&c->tcp, &ub, 1, on_write) != 0) {
        c->writes_pending--;
        free(wr);
        conn_close(c);
    }
}

/* Serialises and queues the answer; HEAD gets the head only. */
static void send_response(struct aconn *c, const struct admin_response *rs, bool head_only,
                          bool keep_alive)
{
    struct buf out;
    buf_init(&out);
    buf_appendf(&out, "HTTP/1.1 %d %s\r\n", rs->status, http_reason(rs->status));
    buf_appendf(&out, "Content-Type: %s\r\nContent-Length: %zu\r\n", rs->content_type,
                rs->body.len);
    buf_append_str(&out, "Cache-Control: no-store\r\n");
    if (rs->allow)
        buf_appendf(&out, "Allow: %s\r\n", rs->allow);
    if (rs->www_authenticate)
        buf_append_str(&out, "WWW-Authenticate: Bearer realm=\"gatecache-admin\"\r\n");
    if (rs->headers.len)
        buf_append(&out, rs->headers.data, rs->headers.len);
    if (!keep_alive)
        buf_append_str(&out, "Connection: close\r\n");
    buf_append_str(&out, "\r\n");
    if (!head_only && rs->body.len)
        buf_append(&out, rs->body.data, rs->body.len);
    conn_write(c, &out);
    buf_free(&out);
    if (!keep_alive)
        c->close_after_write = true;
}

/* An error found by the listener itself (limits, malformed HTTP): answer,
 * then close once written. Later input is discarded (on_read). */
static void send_error_close(struct aconn *c, int status, const char *msg)
{
    struct admin_response rs;
    admin__response_init(&rs);
    admin__error(&rs, status, msg);
    send_response(c, &rs, false, false);
    admin__response_free(&rs);
    buf_reset(&c->in);
}

/* ================= lifecycle ================= */

static void on_handle_closed(uv_handle_t *h)
{
    struct aconn *c = h->data;
    if (--c->closing_handles > 0)
        return;
    buf_free(&c->in);
    buf_free(&c->body);
    free(c);
}

static void conn_close(struct aconn *c)
{
    if (c->state == AC_CLOSING)
        return;
    c->state = AC_CLOSING;
    struct admin *a = c->a;
    if (c->prev)
        c->prev->next = c->next;
    else
        a->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    a->n_conns--;
    c->closing_handles = 2;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

static void on_timeout(uv_timer_t *t)
{
    struct aconn *c = t->data;
    if (c->state == AC_HEAD && c->in.len == 0)
        conn_close(c); /* idle keep-alive connection */
    else if (c->lingering || c->writes_pending || c->close_after_write)
        conn_close(c);
    else
        send_error_close(c, 408, "request timeout"); /* RFC 9110 §15.5.9 */
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct aconn *c = h->data;
    buf_reserve(&c->in, READ_CHUNK);
    *b = uv_buf_init(c->in.data + c->in.len, READ_CHUNK);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct aconn *c = s->data;
    if (n < 0) {
        conn_close(c);
        return;
    }
    if (n == 0 || c->close_after_write)
        return; /* answered with an error: discard what follows */
    c->in.len += (size_t)n;
    c->in.data[c->in.len] = '\0';
    if (c->state == AC_HEAD && c->in.len == (size_t)n)
        uv_timer_start(&c->timer, on_timeout, REQUEST_MS, 0); /* a new request begins */
    process_input(c);
}

static void read_start(struct aconn *c)
{
    if (c->reading || c->state == AC_CLOSING)
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->reading = true;
}

/* ================= requests ================= */

static const struct http_limits limits = {ADMIN_MAX_HEAD, ADMIN_MAX_HEADERS, ADMIN_MAX_URL};

static void answer(struct aconn *c)
{
    /* Reading the body may have moved `in` (realloc): parse the head again so
     * its spans point into the buffer as it is now. Same bytes, same result. */
    int status;
    const char *reason;
    int r = http_parse_request(c->in.data, c->head_len, &limits, &c->req, &status, &reason);
    GATE_ASSERT(r == (int)c->head_len);
    const struct http_request *hr = &c->req;
    const struct http_header *auth =
        http_find_header(hr->headers, hr->num_headers, "Authorization");
    struct admin_request rq = {
        .method = hr->method,
        .method_len = hr->method_len,
        .path = hr->path,
        .path_len = hr->path_len,
        .query = hr->query,
        .query_len = hr->query_len,
        .target = hr->target,
        .target_len = hr->target_len,
        .authorization = auth ? auth->value : NULL,
        .authorization_len = auth ? auth->value_len : 0,
        .host = hr->host,
        .host_len = hr->host_len,
        .headers = hr->headers,
        .n_headers = hr->num_headers,
        .body = c->body.data,
        .body_len = c->body.len,
        .now_sec = util_wall_ms() / 1000,
    };
    struct admin_response rs;
    admin__response_init(&rs);
    admin__handle(&c->a->ctx, &rq, &rs);
    bool keep = hr->keep_alive && !atomic_load(&srv.draining);
    send_response(c, &rs, str_eq_c(hr->method, hr->method_len, "HEAD"), keep);
    admin__response_free(&rs);
}

/* Consumes the current request (head and body) from `in`. */
static void finish_request(struct aconn *c, size_t consumed)
{
    buf_consume(&c->in, consumed);
    buf_reset(&c->body);
    c->state = AC_HEAD;
    c->head_len = 0;
    uv_timer_start(&c->timer, on_timeout, c->in.len ? REQUEST_MS : IDLE_MS, 0);
}

/* Body bytes after the head: returns bytes of `in` the request used in all,
 * 0 when more are needed, -1 after answering an error. `in` is not consumed
 * before the answer, so the head's spans stay valid; chunked input is decoded
 * incrementally (c->chunk_pos: coded bytes already decoded). */
static ssize_t read_body(struct aconn *c)
{
    const char *p = c->in.data + c->head_len;
    size_t avail = c->in.len - c->head_len;
    if (c->req.body_kind == HTTP_BODY_LENGTH) {
        if (avail < c->req.content_length)
            return 0;
        buf_append(&c->body, p, (size_t)c->req.content_length);
        return (ssize_t)(c->head_len + c->req.content_length);
    }
    size_t fresh = avail - c->chunk_pos;
    buf_reserve(&c->body, fresh);
    size_t out_len = 0;
    ssize_t used = http_chunked_decode(&c->chunked, p + c->chunk_pos, fresh,
                                       c->body.data + c->body.len, &out_len);
    if (used < 0) {
        send_error_close(c, 400, "malformed chunked body");
        return -1;
    }
    c->chunk_pos += (size_t)used;
    c->body.len += out_len;
    if (c->body.len > ADMIN_MAX_BODY) {
        send_error_close(c, 413, "request body larger than 1 MiB");
        return -1;
    }
    if (!c->chunked.done)
        return 0;
    return (ssize_t)(c->head_len + c->chunk_pos);
}

/* Parses a head; returns false when more bytes are needed or it failed. */
static bool read_head(struct aconn *c)
{
    int status = 0;
    const char *reason = NULL;
    int r = http_parse_request(c->in.data, c->in.len, &limits, &c->req, &status, &reason);
    if (r == HTTP_PARSE_INCOMPLETE)
        return false;
    if (r < 0) {
        send_error_close(c, status, reason);
        return false;
    }
    if (c->req.body_kind == HTTP_BODY_LENGTH && c->req.content_length > ADMIN_MAX_BODY) {
        send_error_close(c, 413, "request body larger than 1 MiB");
        return false;
    }
    c->head_len = (size_t)r;
    c->state = AC_BODY;
    c->chunk_pos = 0;
    http_chunked_init(&c->chunked);
    /* RFC 9110 §10.1.1: curl waits for this before sending a large body. */
    if (c->req.expect_continue && c->req.body_kind != HTTP_BODY_NONE) {
        struct buf b = {0};
        buf_init(&b);
        buf_append_str(&b, "HTTP/1.1 100 Continue\r\n\r\n");
        conn_write(c, &b);
        buf_free(&b);
    }
    return true;
}

static void process_input(struct aconn *c)
{
    while (c->state != AC_CLOSING && !c->close_after_write) {
        if (c->tcp.write_queue_size >= WRITE_HIGH) {
            /* The client does not read its answers: stop reading its requests. */
            uv_read_stop((uv_stream_t *)&c->tcp);
            c->reading = false;
            return;
        }
        if (c->state == AC_HEAD && !read_head(c))
            return;
        if (c->state != AC_BODY)
            return;
        ssize_t used = c->req.body_kind == HTTP_BODY_NONE ? (ssize_t)c->head_len : read_body(c);
        if (used <= 0)
            return;
        answer(c);
        if (c->state == AC_CLOSING)
            return;
        finish_request(c, (size_t)used);
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    struct admin *a = server->data;
    if (status < 0)
        return;
    struct aconn *c = xcalloc(1, sizeof(*c));
    c->a = a;
    buf_init(&c->in);
    buf_init(&c->body);
    uv_tcp_init(&a->loop, &c->tcp);
    uv_timer_init(&a->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->next = a->conns;
    if (a->conns)
        a->conns->prev = c;
    a->conns = c;
    a->n_conns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || a->n_conns > MAX_CONNS) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_timer_start(&c->timer, on_timeout, IDLE_MS, 0);
    read_start(c);
}

/* ================= thread ================= */

static void on_stop(uv_async_t *h)
{
    struct admin *a = h->data;
    while (a->conns)
        conn_close(a->conns);
    uv_close((uv_handle_t *)&a->listener, NULL);
    uv_close((uv_handle_t *)&a->stop, NULL);
}

static void run_loop(void *arg)
{
    struct admin *a = arg;
    uv_run(&a->loop, UV_RUN_DEFAULT);
}

static int bind_listener(struct admin *a, const struct cfg_listen *l)
{
    struct sockaddr_storage ss;
    int rc = strchr(l->host, ':') ? uv_ip6_addr(l->host, l->port, (struct sockaddr_in6 *)&ss)
                                  : uv_ip4_addr(l->host, l->port, (struct sockaddr_in *)&ss);
    if (rc == 0)
        rc = uv_tcp_bind(&a->listener, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&a->listener, 128, on_connection);
    if (rc != 0)
        log_error("admin_listen %s:%d: %s", l->host, l->port, uv_strerror(rc));
    return rc;
}

/* Closes what admin_start opened after a failure and frees a. */
static void abort_start(struct admin *a)
{
    uv_close((uv_handle_t *)&a->listener, NULL);
    uv_close((uv_handle_t *)&a->stop, NULL);
    uv_run(&a->loop, UV_RUN_DEFAULT);
    uv_loop_close(&a->loop);
    admin__ctx_free(&a->ctx);
    free(a);
}

int admin_start(const struct cfg *cfg, struct admin **out)
{
    *out = NULL;
    const struct cfg_server *s = &cfg->server;
    if (!s->admin_listen.host)
        return 0;
    struct admin *a = xcalloc(1, sizeof(*a));
    a->magic = ADMIN_MAGIC;
    if (s->admin_token_file) {
        const char *err;
        if (admin__read_token(s->admin_token_file, &a->ctx.token, &a->ctx.token_len, &err) != 0) {
            log_error("%s: %s", s->admin_token_file, err);
            free(a);
            return -1;
        }
    }
    uv_loop_init(&a->loop);
    uv_tcp_init(&a->loop, &a->listener);
    uv_async_init(&a->loop, &a->stop, on_stop);
    a->listener.data = a->stop.data = a;
    if (bind_listener(a, &s->admin_listen) != 0 || uv_thread_create(&a->thread, run_loop, a) != 0) {
        abort_start(a);
        return -1;
    }
    log_info("admin API on %s:%d%s", s->admin_listen.host, s->admin_listen.port,
             a->ctx.token ? " (bearer token required)" : " (no token: loopback only)");
    *out = a;
    return 0;
}

void admin_stop(struct admin **ap)
{
    struct admin *a = *ap;
    *ap = NULL;
    if (!a)
        return;
    GATE_ASSERT(a->magic == ADMIN_MAGIC);
    uv_async_send(&a->stop);
    uv_thread_join(&a->thread);
    uv_loop_close(&a->loop);
    admin__ctx_free(&a->ctx);
    a->magic = 0;
    free(a);
}
