/*
 * Tests for upstream/: both clients (ours for http://, and libcurl, the one for
 * https://), each run through every case on a real uv loop against a tiny
 * HTTP/1.1 origin started inside the test (blocking sockets, one thread per
 * connection, 127.0.0.1 only). The origin's answers are chosen by path; /echo
 * sends back the exact request bytes so tests can assert what went on the
 * wire. Every test ends with up_client_free + uv_run and uv_loop_close == 0:
 * nothing left open, and ASan/LSan see every free.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h> /* needs the four above first */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "upstream/upstream.h"
#include "util/util.h"

#define WAIT_MS 10000 /* bound on any one wait: a hang fails, never blocks CI */

/* ================= origin ================= */

#define MAX_CONNS 512

struct origin {
    int lfd;
    int port;
    int wake[2]; /* written once at stop: every origin thread polls it */
    pthread_t acceptor;
    atomic_int accepts;
    pthread_mutex_t mu;
    pthread_t conns[MAX_CONNS];
    int n_conns;
};

static struct origin g_origin;

struct conn {
    struct origin *o;
    int fd;
    int served; /* requests answered on this connection */
};

/* Waits for fd to be readable; false when the origin is stopping or on timeout. */
static bool wait_readable(struct origin *o, int fd, int timeout_ms)
{
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = o->wake[0], .events = POLLIN}};
    int n = poll(p, 2, timeout_ms);
    return n > 0 && !(p[1].revents & POLLIN) && p[0].revents != 0;
}

static bool send_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static bool send_str(int fd, const char *s)
{
    return send_all(fd, s, strlen(s));
}

static uint8_t pattern(size_t i)
{
    return (uint8_t)((i * 31u + (i >> 8)) & 0xffu);
}

/* Reads one request (head + Content-Length body) into b; returns the head
 * length, or 0 when the peer closed or the origin stops. */
static size_t read_request(struct conn *cn, struct buf *b, size_t *body_len)
{
    for (;;) {
        char *end = b->data ? strstr(b->data, "\r\n\r\n") : NULL;
        if (end) {
            size_t head_len = (size_t)(end - b->data) + 4;
            size_t cl = 0;
            char *h = strcasestr(b->data, "\r\nContent-Length:");
            if (h && h < end)
                cl = strtoul(h + 17, NULL, 10);
            if (b->len >= head_len + cl) {
                *body_len = cl;
                return head_len;
            }
        }
        if (!wait_readable(cn->o, cn->fd, 30000))
            return 0;
        char tmp[16384];
        ssize_t n = recv(cn->fd, tmp, sizeof(tmp), 0);
        if (n <= 0)
            return 0;
        buf_append(b, tmp, (size_t)n);
    }
}

static bool answer_big(int fd, const char *target, bool head)
{
    const char *q = strstr(target, "n=");
    size_t n = q ? strtoul(q + 2, NULL, 10) : 1000;
    char hdr[128];
    snprintf(hdr, sizeof(hdr), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", n);
    if (!send_str(fd, hdr))
        return false;
    if (head)
        return true;
    char chunk[65536];
    for (size_t off = 0; off < n;) {
        size_t k = GATE_MIN(sizeof(chunk), n - off);
        for (size_t i = 0; i < k; i++)
            chunk[i] = (char)pattern(off + i);
        if (!send_all(fd, chunk, k))
            return false;
        off += k;
    }
    return true;
}

static bool answer_echo(int fd, const char *req, size_t len)
{
    char hdr[128];
    snprintf(hdr, sizeof(hdr), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", len);
    return send_str(fd, hdr) && send_all(fd, req, len);
}

/* Answers one request; false closes the connection. */
static bool answer(struct conn *cn, const char *req, size_t head_len, size_t body_len)
{
    int fd = cn->fd;
    char method[16] = "", target[256] = "";
    if (sscanf(req, "%15s %255s", method, target) != 2)
        return false;
    bool head = strcmp(method, "HEAD") == 0;
    if (str_has_prefix(target, "/ok"))
        return send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-Origin: yes\r\n"
                            "X-Pad:   padded \t\r\n\r\n") &&
               (head || send_str(fd, "hello world"));
    if (str_has_prefix(target, "/chunked"))
        return send_str(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "5\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n");
    if (str_has_prefix(target, "/continue"))
        return send_str(fd, "HTTP/1.1 100 Continue\r\n\r\n"
                            "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                            "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok");
    if (str_has_prefix(target, "/short")) {
        send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
        return false;
    }
    if (str_has_prefix(target, "/eof")) {
        send_str(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil-close");
        return false;
    }
    if (str_has_prefix(target, "/slow")) {
        /* Never answers: waits for the client to give up. */
        char tmp[64];
        while (wait_readable(cn->o, fd, 5000) && recv(fd, tmp, sizeof(tmp), 0) > 0)
            ;
        return false;
    }
    if (str_has_prefix(target, "/fold"))
        return send_str(fd, "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n");
    if (str_has_prefix(target, "/nocolon"))
        return send_str(fd, "HTTP/1.1 200 OK\r\nNoColonHere\r\nContent-Length: 0\r\n\r\n");
    if (str_has_prefix(target, "/spacename"))
        return send_str(fd, "HTTP/1.1 200 OK\r\nX-A : a\r\nContent-Length: 0\r\n\r\n");
    if (str_has_prefix(target, "/gzip")) {
        static const char gz[] = "\x1f\x8b\x08\x00not-really-gzip";
        char hdr[128];
        snprintf(hdr, sizeof(hdr),
                 "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %zu\r\n\r\n",
                 sizeof(gz) - 1);
        return send_str(fd, hdr) && send_all(fd, gz, sizeof(gz) - 1);
    }
    if (str_has_prefix(target, "/big"))
        return answer_big(fd, target, head);
    if (str_has_prefix(target, "/dropsecond")) {
        /* An origin that closed a kept-alive connection just as it was reused. */
        if (cn->served > 0)
            return false;
        return send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    }
    if (str_has_prefix(target, "/extra"))
        return send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA");
    if (str_has_prefix(target, "/hugehead")) {
        static char big[70000];
        memset(big, 'a', sizeof(big) - 1);
        return send_str(fd, "HTTP/1.1 200 OK\r\nX-Big: ") && send_str(fd, big) &&
               send_str(fd, "\r\nContent-Length: 0\r\n\r\n");
    }
    if (str_has_prefix(target, "/echo"))
        return answer_echo(fd, req, head_len + body_len);
    return send_str(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
}

static void *conn_main(void *arg)
{
    struct conn *cn = arg;
    struct buf b;
    buf_init(&b);
    size_t head_len, body_len;
    while ((head_len = read_request(cn, &b, &body_len)) > 0) {
        if (!answer(cn, b.data, head_len, body_len))
            break;
        cn->served++;
        buf_consume(&b, head_len + body_len);
    }
    buf_free(&b);
    close(cn->fd);
    free(cn);
    return NULL;
}

static void *accept_main(void *arg)
{
    struct origin *o = arg;
    for (;;) {
        if (!wait_readable(o, o->lfd, -1))
            return NULL;
        int fd = accept(o->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        atomic_fetch_add(&o->accepts, 1);
        struct conn *cn = xcalloc(1, sizeof(*cn));
        cn->o = o;
        cn->fd = fd;
        pthread_mutex_lock(&o->mu);
        assert_true(o->n_conns < MAX_CONNS);
        assert_int_equal(pthread_create(&o->conns[o->n_conns++], NULL, conn_main, cn), 0);
        pthread_mutex_unlock(&o->mu);
    }
}

static int listen_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 256) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0)
        return -1;
    *port = ntohs(sa.sin_port);
    return fd;
}

static int origin_start(void **state)
{
    struct origin *o = &g_origin;
    memset(o, 0, sizeof(*o));
    pthread_mutex_init(&o->mu, NULL);
    o->lfd = listen_loopback(&o->port);
    if (o->lfd < 0 || pipe(o->wake) != 0)
        return -1;
    if (pthread_create(&o->acceptor, NULL, accept_main, o) != 0)
        return -1;
    return up_global_init();
}

static int origin_stop(void **state)
{
    struct origin *o = &g_origin;
    if (write(o->wake[1], "x", 1) != 1)
        return -1;
    pthread_join(o->acceptor, NULL);
    for (int i = 0; i < o->n_conns; i++)
        pthread_join(o->conns[i], NULL);
    close(o->lfd);
    close(o->wake[0]);
    close(o->wake[1]);
    pthread_mutex_destroy(&o->mu);
    up_global_cleanup();
    return 0;
}

/* ================= client side fixture ================= */

struct fx {
    uv_loop_t loop;
    struct up_client *c;
    uv_timer_t wd; /* keeps UV_RUN_ONCE returning so waits stay bounded */
};

static void on_wd(uv_timer_t *h)
{
}

/* Which client the group runs on: ours (http://) or libcurl. */
static bool g_prefer_curl;

static int fx_setup(void **state)
{
    struct fx *f = xcalloc(1, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_timer_init(&f->loop, &f->wd);
    f->c = up_client_new(&f->loop);
    assert_non_null(f->c);
    up_client_prefer_curl(f->c, g_prefer_curl);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    up_client_free(&f->c);
    assert_null(f->c);
    uv_close((uv_handle_t *)&f->wd, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

/* Runs the loop until *count >= want or max_ms passed; true if reached. */
static bool run_until(struct fx *f, const int *count, int want, int64_t max_ms)
{
    int64_t end = util_now_ms() + max_ms;
    uv_timer_start(&f->wd, on_wd, 10, 10);
    while (*count < want && util_now_ms() < end)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_timer_stop(&f->wd);
    return *count >= want;
}

static void run_for(struct fx *f, int64_t ms)
{
    static const int never = 0;
    run_until(f, &never, 1, ms);
}

/* What one transfer saw, plus how its callbacks should behave. */
struct xfer {
    struct fx *f;
    struct up_transfer *t;
    int heads, dones;
    int status;
    int64_t clen;
    struct buf hdrs; /* "name=value\n" per header, as delivered */
    struct buf body;
    enum up_result res;
    int data_calls;
    /* behaviour */
    bool cancel_in_head, cancel_in_data, abort_in_data, free_client_in_head;
    int pause_mode; /* 0 none, 1 resume from a timer, 2 resume inside on_data,
                       3 pause once and stay paused */
    int pauses;
    uv_timer_t resume_timer;
    bool timer_used;
    struct xfer *start_in_head; /* started from inside on_head */
    struct xfer *start_in_done; /* started from inside on_done */
    int *done_counter;
};

static void xfer_init(struct xfer *x, struct fx *f)
{
    memset(x, 0, sizeof(*x));
    x->f = f;
    x->clen = -2;
    buf_init(&x->hdrs);
    buf_init(&x->body);
}

static void on_resume_timer(uv_timer_t *h)
{
    struct xfer *x = h->data;
    if (x->t)
        up_resume(x->t);
}

static void xfer_free(struct xfer *x)
{
    buf_free(&x->hdrs);
    buf_free(&x->body);
    if (x->timer_used) {
        uv_close((uv_handle_t *)&x->resume_timer, NULL);
        uv_run(&x->f->loop, UV_RUN_NOWAIT);
    }
}

static struct up_transfer *start_get(struct xfer *x, const char *path);

static void cb_head(void *ud, int status, const struct up_header *h, size_t n, int64_t clen)
{
    struct xfer *x = ud;
    x->heads++;
    x->status = status;
    x->clen = clen;
    for (size_t i = 0; i < n; i++) {
        buf_append(&x->hdrs, h[i].name, h[i].name_len);
        buf_append_char(&x->hdrs, '=');
        buf_append(&x->hdrs, h[i].value, h[i].value_len);
        buf_append_char(&x->hdrs, '\n');
    }
    if (x->start_in_head)
        assert_non_null(start_get(x->start_in_head, "/ok"));
    if (x->cancel_in_head)
        up_cancel(&x->t);
    if (x->free_client_in_head)
        up_client_free(&x->f->c);
}

static int cb_data(void *ud, const char *data, size_t len)
{
    struct xfer *x = ud;
    assert_int_equal(x->heads, 1);
    x->data_calls++;
    buf_append(&x->body, data, len);
    if (x->cancel_in_data) {
        up_cancel(&x->t);
        return UP_DATA_OK;
    }
    if (x->abort_in_data)
        return UP_DATA_ABORT;
    if (x->pause_mode == 1) {
        x->pauses++;
        uv_timer_start(&x->resume_timer, on_resume_timer, 1, 0);
        return UP_DATA_PAUSE;
    }
    if (x->pause_mode == 3) {
        x->pauses++;
        return UP_DATA_PAUSE;
    }
    if (x->pause_mode == 2 && x->data_calls % 2 == 0) {
        x->pauses++;
        up_resume(x->t); /* before returning PAUSE: must still resume */
        return UP_DATA_PAUSE;
    }
    return UP_DATA_OK;
}

static void cb_done(void *ud, enum up_result res)
{
    struct xfer *x = ud;
    x->dones++;
    x->res = res;
    x->t = NULL;
    if (x->done_counter)
        (*x->done_counter)++;
    if (x->start_in_done)
        assert_non_null(start_get(x->start_in_done, "/ok"));
}

static const struct up_callbacks g_cb = {.on_head = cb_head, .on_data = cb_data, .on_done = cb_done};

static void url_of(char *url, size_t n, const char *path)
{
    snprintf(url, n, "http://127.0.0.1:%d%s", g_origin.port, path);
}

static struct up_transfer *start_req(struct xfer *x, const char *method, const char *path,
                                     const struct up_header *h, size_t nh, const char *body,
                                     size_t body_len, uint32_t timeout_ms)
{
    char url[256];
    url_of(url, sizeof(url), path);
    struct up_request req = {.method = method, .url = url, .headers = h, .n_headers = nh,
                             .body = body, .body_len = body_len, .timeout_ms = timeout_ms};
    if (x->pause_mode == 1 && !x->timer_used) {
        uv_timer_init(&x->f->loop, &x->resume_timer);
        x->resume_timer.data = x;
        x->timer_used = true;
    }
    x->t = up_start(x->f->c, &req, &g_cb, x);
    return x->t;
}

static struct up_transfer *start_get(struct xfer *x, const char *path)
{
    return start_req(x, "GET", path, NULL, 0, NULL, 0, 5000);
}

/* Runs one transfer to its end. */
static void run_one(struct fx *f, struct xfer *x)
{
    assert_non_null(x->t);
    assert_true(run_until(f, &x->dones, 1, WAIT_MS));
    assert_int_equal(x->dones, 1);
}

static bool has_line(const struct buf *b, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = b->data; p && *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && memcmp(p, line, n) == 0)
            return true;
        p = e ? e + 1 : p + len;
    }
    return false;
}

/* Asserts the echoed request: its request line, exactly these header lines
 * (any order, CRLF-terminated "Name: value"), and the body. */
static void expect_echo(const struct xfer *x, const char *request_line, const char *const *headers,
                        const char *body, size_t body_len)
{
    assert_int_equal(x->res, UP_OK);
    assert_int_equal(x->status, 200);
    const char *req = x->body.data;
    assert_non_null(req);
    const char *end = strstr(req, "\r\n\r\n");
    assert_non_null(end);
    size_t rl = strlen(request_line);
    assert_memory_equal(req, request_line, rl);
    assert_memory_equal(req + rl, "\r\n", 2);
    struct buf lines;
    buf_init(&lines);
    size_t n_sent = 0;
    for (const char *p = req + rl + 2; p < end + 2;) {
        const char *e = strstr(p, "\r\n");
        buf_append(&lines, p, (size_t)(e - p));
        buf_append_char(&lines, '\n');
        n_sent++;
        p = e + 2;
    }
    size_t n_want = 0;
    for (; headers[n_want]; n_want++)
        if (!has_line(&lines, headers[n_want]))
            fail_msg("header '%s' not sent; sent:\n%s", headers[n_want], lines.data);
    if (n_sent != n_want)
        fail_msg("sent %zu headers, want %zu; sent:\n%s", n_sent, n_want, lines.data);
    buf_free(&lines);
    size_t got_body = x->body.len - (size_t)(end + 4 - req);
    assert_int_equal(got_body, body_len);
    if (body_len)
        assert_memory_equal(end + 4, body, body_len);
}

static char g_host[64];

static const char *host_line(void)
{
    snprintf(g_host, sizeof(g_host), "Host: 127.0.0.1:%d", g_origin.port);
    return g_host;
}

/* ================= tests: answers ================= */

static void test_get_content_length(void **state)
{
    struct fx *f = *state;
    struct xfer x;
    xfer_init(&x, f);
    start_get(&x, "/ok");
    assert_int_equal(up_client_active(f->c), 1);
    run_one(f, &x);
    assert_int_equal(x.res, UP_OK);
    assert_int_equal(x.heads, 1);
    assert_int_equal(x.status, 200);
    assert_int_equal(x.clen, 11);
    assert_true(has_line(&x.hdrs, "Content-Length=11"));
    assert_true(has_line(&x.hdrs, "X-Origin=yes"));
    assert_true(has_line(&x.hdrs, "X-Pad=padded")); /* OWS trimmed */
    assert_int_equal(x.body.len, 11);
    assert_memory_equal(x.body.data, "hello world", 11);
    assert_int_equal(up_client_active(f->c), 0);
    xfer_free(&x);
}

static void test_chunked_and_trailers(void **state)
{
    struct fx *f = *state;
    struct xfer x;
    xfer_init(&x, f);
    start_get(&x, "/chunked");
    run_one(f, &x);
    assert_int_equal(x.res, UP_OK);
    assert_int_equal(x.clen, -1);
    assert_true(has_line(&x.hdrs, "Transfer-Encoding=chunked"));
    assert_false(has_line(&x.hdrs, "X-Trailer=t")); /* trailers are not head */
    assert_int_equal(x.body.len, 11);
    assert_memory_equal(x.body.data, "hello world", 11);
    xfer_free(&x);
}

static void test_close_delimited(void **state)
{
    struct fx *f = *state;
    struct xfer x;
    xfer_init(&x, f);
    start_get(&x, "/eof");
    run_one(f, &x);
    assert_int_equal(x.res, UP_OK);
    assert_int_equal(x.clen, -1);
    assert_int_equal(x.body.len, 11);
    assert_memory_equal(x.body.data, "until-close", 11);
    xfer_free(&x);
}

static void test_interim_heads_skipped(void **state)
{
    struct fx *f = *state;
    struct xfer x;
    xfer_init(&x, f);
    start_get(&x, "/continue");
    run_one(f, &x);
    assert_int_equal(x.res, UP_OK);
    assert_int_equal(x.heads, 1);
    assert_int_equal(x.status, 201);
    assert_false(has_line(&x.hdrs, "Link=</a>")); /* from the 103 */
    assert_true(has_line(&x.hdrs, "Content-Length=2"));
    assert_int_equal(x.body.len, 2);
    xfer_free(&x);
}

static void test_head(void **state)
{
    struct fx *f = *state;
    struct xfer x;
    xfer_init(&x, f);
    start_req(&x, "HEAD", "/ok", NULL, 0, NULL, 0, 5000);
    run_one(f, &x);
    assert_int_equal(x.res, UP_OK);
    assert_int_equal(x.heads, 1);
    assert_int_equal(x.status, 200);
    assert_int_equal(x.clen, 11);
    assert_int_equal(x.data_calls, 0);
    xfer_free(&x);
}

static void test_gzip_passes_through(void **state)
{
    struct fx *f = *state;
    struct xfer x;
    xfer_init(&x, f);
    start_get(&x, "/gzip");
    run_one(f, &x);
    assert_int_equal(x.res, UP_OK);
    assert_true(has_line(&x.hdrs, "Content-Encoding=gzip"));
    assert_int_equal(x.body.len, 19);
    assert_memory_equal(x.body.data, "\x1f\x8b\x08\x00not-really-gzip", 19);
    xfer_free(&x);
}

/* ================= tests: errors ================= */

static void test_timeout(void **state)
{
    struct fx *f = *state;
    struct xfer x;
    xfer_init(&x, f);
    int64_t t0 = util_now_ms();
    start_req(&x, "GET", "/slow", NULL, 0, NULL, 0, 300);
    run_one(f, &x);
    int64_t took = util_now_ms() - t0;
    assert_int_equal(x.res, UP_ERR_TIMEOUT);
    assert_int_equal(x.heads, 0);
    assert_true(took >= 250 && took < 3000);
    xfer_free(&x);
}

static void test_short_body_is_protocol_error(void **state)
{
    struct fx *f = *state;
    struct xfer x;
    xfer_init(&x, f);
    start_get(&x, "/short");
    run_one(f, &x);
    assert_int_equal(x.res, UP_ERR_PROTOCOL);
    assert_int_equal(x.heads, 1);
    assert_int_equal(x.clen, 100);
    assert_int_equal(x.body.len, 10);
    xfer_free(&x);
}

static void test_malformed_heads(void **state)
{
    struct fx *f = *state;
    static const char *const paths[] = {"/fold", "/nocolon", "/spacename"};
    for (size_t i = 0; i < GATE_ARRAY_LEN(paths); i++) {
        struct xfer x;
        xfer_init(&x, f);
        start_get(&x, paths[i]);
        run_one(f, &x);
        if (x.res != UP_ERR_PROTOCOL)
            fail_msg("%s: result %d", paths[i], x.res);
        assert_int_equal(x.heads, 0);
        xfer_free(&x);
    }
}

static void test_connection_refused(void **state)
{
    struct fx *f = *state;
    int port;
    int fd = listen_loopback(&port);
    assert_true(fd >= 0);
    close(fd);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
    struct xfer x;
    xfer_init(&x, f);
    struct up_request req = {.method = "GET", .url = url, .timeout_ms = 5000};
    x.t = up_start(f->c, &req, &g_cb, &x);
    run_one(f, &x);
    assert_int_equal(x.res, UP_ERR_CONNECT);
    assert_int_equal(x.heads, 0);
    xfer_free(&x);
}

static void test_start_refuses_bad_requests(void **state)
{
    struct fx *f = *state;
    struct xfer x;
    xfer_init(&x, f);
    char url[128];
    url_of(url, sizeof(url), "/ok");
    const struct up_header crlf = {"X-A", 3, "a\r\nX-B: b", 9};
    const struct up_header badname = {"X A", 3, "a", 1};
    const struct up_request bad[] = {
        {"GET", "ftp://127.0.0.1/", NULL, 0, NULL, 0, 1000, false, 0},
        {"GET", "/relative", NULL, 0, NULL, 0, 1000, false, 0},
        {"G T", url, NULL, 0, NULL, 0, 1000, false, 0},
        {"", url, NULL, 0, NULL, 0, 1000, false, 0},
        {"GET", url, &crlf, 1, NULL, 0, 1000, false, 0},
        {"GET", url, &badname, 1, NULL, 0, 1000, false, 0},
        {"POST", url, NULL, 0, NULL, 0, 1000, true, 5}, /* streamed, but g_cb has no on_send */
        {"GET", url, NULL, 0, NULL, 0, 0, false, 0},
    };
    for (size_t i = 0; i < GATE_ARRAY_LEN(bad); i++)
        assert_null(up_start(f->c, &bad[i], &g_cb, &x));
    assert_int_equal(up_client_active(f->c), 0);
    run_for(f, 50);
    assert_int_equal(x.heads + x.dones, 0);
    xfer_free(&x);
}

/* ================= tests: what goes on the wire ================= */

static void test_get_sends_exact_headers(void **state)
{
    struct fx *f = *state;
    struct xfer x;
    xfer_init(&x, f);
    const struct up_header h[] = {
        {"X-Test", 6, "one", 3},
        {"X-Empty", 7, "", 0},
        {"Content-Length", 14, "5", 1},       /* dropped: no body */
        {"Transfer-Encoding", 17, "gzip", 4}, /* dropped */
    };
    start_req(&x, "GET", "/echo/a/../b?a=1&b=x%20y", h, GATE_ARRAY_LEN(h), NULL, 0, 5000);
    run_one(f, &x);
    const char *want[] = {host_line(), "X-Test: one", "X-Empty:", NULL};
    expect_echo(&x, "GET /echo/a/../b?a=1&b=x%20y HTTP/1.1", want, NULL, 0);
    xfer_free(&x);
}

static void test_post_body_without_content_type(void **state)
{
    struct fx *f = *state;
    static char body[4096]; /* > 1 KiB: curl would add Expect: 100-continue */
    for (size_t i = 0; i < sizeof(body); i++)
        body[i] = (char)('a' + i % 26);
    struct xfer x;
    xfer_init(&x, f);
    start_req(&x, "POST", "/echo", NULL, 0, body, sizeof(body), 5000);
    run_one(f, &x);
    const char *want[] = {host_line(), "Content-Length: 4096", NULL};
    expect_echo(&x, "POST /echo HTTP/1.1", want, body, sizeof(body));
    xfer_free(&x);
}

static void test_post_keeps_caller_framing_out(void **state)
{
    struct fx *f = *state;
    const struct up_header h[] = {
        {"Content-Type", 12, "application/json", 16}, {"Content-Length", 14, "999", 3},
        {"Transfer-Encoding", 17, "chunked", 7},      {"Accept", 6, "text/plain", 10},
        {"Host", 4, "api.example.test", 16},
    };
    struct xfer x;
    xfer_init(&x, f);
    start_req(&x, "POST", "/echo", h, GATE_ARRAY_LEN(h), "{\"a\":1}", 7, 5000);
    run_one(f, &x);
    const char *want[] = {"Host: api.example.test", "Content-Type: application/json",
                          "Accept: text/plain", "Content-Length: 7", NULL};
    expect_echo(&x, "POST /echo HTTP/1.1", want, "{\"a\":1}", 7);
    xfer_free(&x);
}

static void test_methods_and_empty_bodies(void **state)
{
    struct fx *f = *state;
    const char *cl0[] = {host_line(), "Content-Length: 0", NULL};
    const char *none[] = {host_line(), NULL};
    const char *cl3[] = {host_line(), "Content-Length: 3", NULL};
    static const struct {
        const char *method, *body, *line;
        int want; /* 0 cl0, 1 none, 2 cl3 */
    } cases[] = {
        {"POST", NULL, "POST /echo HTTP/1.1", 0},
        {"PUT", NULL, "PUT /echo HTTP/1.1", 0},
        {"PATCH", NULL, "PATCH /echo HTTP/1.1", 0},
        {"DELETE", NULL, "DELETE /echo HTTP/1.1", 1},
        {"OPTIONS", NULL, "OPTIONS /echo HTTP/1.1", 1},
        {"PATCH", "abc", "PATCH /echo HTTP/1.1", 2},
        {"DELETE", "abc", "DELETE /echo HTTP/1.1", 2},
        {"GET", "abc", "GET /echo HTTP/1.1", 2},
        {"PUT", "abc", "PUT /echo HTTP/1.1", 2},
    };
    for (size_t i = 0; i < GATE_ARRAY_LEN(cases); i++) {
        struct xfer x;
        xfer_init(&x, f);
        const char *b = cases[i].body;
        start_req(&x, cases[i].method, "/echo", NULL, 0, b, b ? strlen(b) : 0, 5000);
        run_one(f, &x);
        const char *const *want = cases[i].want == 0 ? cl0 : cases[i].want == 1 ? none : cl3;
        expect_echo(&x, cases[i].line, want, b, b ? strlen(b) : 0);
        xfer_free(&x);
    }
}

/* ================= tests: reuse, streaming, concurrency ================= */

/* A streamed request body: bytes arrive in three pieces while the transfer
 * runs (on_send pauses the sending side when none are ready). */
struct stream_src {
    const char *parts[3];
    size_t next_part;   /* parts released so far */
    size_t part_off;    /* bytes of parts[sent_part] already sent */
    size_t sent_part;
    uv_timer_t timer;
    struct xfer *x;
    int sends, empty_sends;
};

static struct stream_src g_src;

static size_t cb_send(void *ud, char *buf, size_t max, bool *eof)
{
    struct stream_src *s = &g_src;
    s->sends++;
    while (s->sent_part < s->next_part) {
        const char *p = s->parts[s->sent_part];
        size_t left = strlen(p) - s->part_off;
        if (left == 0) {
            s->sent_part++;
            s->part_off = 0;
            continue;
        }
        size_t k = GATE_MIN(left, max);
        memcpy(buf, p + s->part_off, k);
        s->part_off += k;
        return k;
    }
    *eof = s->next_part == 3;
    if (!*eof)
        s->empty_sends++;
    return 0;
}

static void on_release_part(uv_timer_t *t)
{
    struct stream_src *s = &g_src;
    s->next_part++;
    up_resume_send(s->x->t);
    if (s->next_part < 3)
        uv_timer_start(&s->timer, on_release_part, 20, 0);
}

static void test_streamed_request_body(void **state)
{
    struct fx *f = *state;
    struct xfer x;
    xfer_init(&x, f);
    memset(&g_src, 0, sizeof(g_src));
    g_src.parts[0] = "first-";
    g_src.parts[1] = "second-";
    g_src.parts[2] = "third";
    g_src.x = &x;
    uv_timer_init(&f->loop, &g_src.timer);
    static const struct up_callbacks scb = {
        .on_head = cb_head, .on_data = cb_data, .on_send = cb_send, .on_done = cb_done};
    char url[256];
    url_of(url, sizeof(url), "/echo");
    struct up_request req = {.method = "POST", .url = url, .timeout_ms = 5000,
                             .body_stream = true, .stream_len = 18};
    x.t = up_start(f->c, &req, &scb, &x);
    assert_non_null(x.t);
    uv_timer_start(&g_src.timer, on_release_part, 20, 0);
    run_one(f, &x);
    const char *want[] = {host_line(), "Content-Length: 18", NULL};
    expect_echo(&x, "POST /echo HTTP/1.1", want, "first-second-third", 18);
    assert_true(g_src.empty_sends >= 1); /* it did wait for bytes */
    uv_close((uv_handle_t *)&g_src.timer, NULL);
    xfer_free(&x);
}

static void test_keepalive_reuses_one_connection(void **state)
{
    struct fx *f = *state;
    int before = atomic_load(&g_origin.accepts);
    for (int i = 0; i < 3; i++) {
        struct xfer x;
        xfer_init(&x, f);
        if (i == 1)
            start_req(&x, "POST", "/echo", NULL, 0, "abc", 3, 5000);
        else
            start_get(&x, "/ok");
        run_one(f, &x);
        assert_int_equal(x.res, UP_OK);
        xfer_free(&x);
    }
    assert_int_equal(atomic_load(&g_origin.accepts) - before, 1);
}

static void check_big_body(const struct xfer *x, size_t n)
{
    assert_int_equal(x->res, UP_OK);
    assert_int_equal(x->clen, (int64_t)n);
    assert_int_equal(x->body.len, n);
    for (size_t i = 0; i < n; i++)
        if ((uint8_t)x->body.data[i] != pattern(i))
            fail_msg("byte %zu differs", i);
}

static void test_pause_resume_from_timer(void **state)
{
    struct fx *f = *state;
    struct xfer x;
    xfer_init(&x, f);
    x.pause_mode = 1;
    start_get(&x, "/big?n=1000000");
    run_one(f, &x);
    check_big_body(&x, 1000000);
    assert_true(x.pauses > 10);
    xfer_free(&x);
}

static void test_pause_resume_inside_on_data(void **state)
{
    struct fx *f = *state;
    struct xfer x;
    xfer_init(&x, f);
    x.pause_mode = 2;
    start_get(&x, "/big?n=1000000");
    run_one(f, &x);
    check_big_body(&x, 1000000);
    assert_true(x.pauses > 10);
    xfer_free(&x);
}

static void test_fifty_concurrent(void **state)
{
    struct fx *f = *state;
    enum { N = 50 };
    struct xfer *xs = xcalloc(N, sizeof(*xs));
    int done = 0;
    for (int i = 0; i < N; i++) {
        xfer_init(&xs[i], f);
        xs[i].done_counter = &done;
        char path[64];
        snprintf(path, sizeof(path), i % 2 ? "/echo?i=%d" : "/big?n=%d", i % 2 ? i : 100000 + i);
        assert_non_null(start_get(&xs[i], path));
    }
    assert_int_equal(up_client_active(f->c), N);
    assert_true(run_until(f, &done, N, WAIT_MS));
    for (int i = 0; i < N; i++) {
        assert_int_equal(xs[i].dones, 1);
        if (i % 2) {
            char line[64];
            snprintf(line, sizeof(line), "GET /echo?i=%d HTTP/1.1\r\n", i);
            assert_int_equal(xs[i].res, UP_OK);
            assert_true(str_has_prefix(xs[i].body.data, line));
        } else {
            check_big_body(&xs[i], (size_t)(100000 + i));
        }
        xfer_free(&xs[i]);
    }
    assert_int_equal(up_client_active(f->c), 0);
    free(xs);
}

/* ================= tests: cancel, abort, free ================= */

static void test_cancel_inside_on_head(void **state)
{
    struct fx *f = *state;
    struct xfer x;
    xfer_init(&x, f);
    x.cancel_in_head = true;
    start_get(&x, "/big?n=5000000");
    run_until(f, &x.heads, 1, WAIT_MS);
    assert_null(x.t);
    assert_int_equal(up_client_active(f->c), 0);
    run_for(f, 200);
    assert_int_equal(x.heads, 1);
    assert_int_equal(x.data_calls, 0);
    assert_int_equal(x.dones, 0);
    xfer_free(&x);
    /* The client still works afterwards. */
    xfer_init(&x, f);
    start_get(&x, "/ok");
    run_one(f, &x);
    assert_int_equal(x.res, UP_OK);
    xfer_free(&x);
}

static void test_cancel_inside_on_data(void **state)
{
    struct fx *f = *state;
    struct xfer x;
    xfer_init(&x, f);
    x.cancel_in_data = true;
    start_get(&x, "/big?n=5000000");
    run_until(f, &x.data_calls, 1, WAIT_MS);
    run_for(f, 200);
    assert_int_equal(x.data_calls, 1);
    assert_int_equal(x.dones, 0);
    assert_int_equal(up_client_active(f->c), 0);
    xfer_free(&x);
}

static void test_cancel_outside_callbacks(void **state)
{
    struct fx *f = *state;
    struct xfer x;
    xfer_init(&x, f);
    start_req(&x, "GET", "/slow", NULL, 0, NULL, 0, 5000);
    run_for(f, 50);
    assert_int_equal(up_client_active(f->c), 1);
    up_cancel(&x.t);
    assert_null(x.t);
    up_cancel(&x.t); /* NULL: no-op */
    assert_int_equal(up_client_active(f->c), 0);
    run_for(f, 100);
    assert_int_equal(x.heads + x.dones, 0);
    xfer_free(&x);
}

static void test_abort_from_on_data(void **state)
{
    struct fx *f = *state;
    struct xfer x;
    xfer_init(&x, f);
    x.abort_in_data = true;
    start_get(&x, "/big?n=5000000");
    run_one(f, &x);
    assert_int_equal(x.res, UP_ERR_ABORTED);
    assert_int_equal(x.data_calls, 1);
    xfer_free(&x);
}

static void test_start_from_callbacks(void **state)
{
    struct fx *f = *state;
    struct xfer a, b, c;
    xfer_init(&a, f);
    xfer_init(&b, f);
    xfer_init(&c, f);
    a.start_in_head = &b; /* added once curl's header callback returned */
    b.start_in_done = &c;
    start_get(&a, "/ok");
    assert_true(run_until(f, &c.dones, 1, WAIT_MS));
    assert_true(run_until(f, &a.dones, 1, WAIT_MS));
    assert_int_equal(a.res, UP_OK);
    assert_int_equal(b.res, UP_OK);
    assert_int_equal(c.res, UP_OK);
    assert_int_equal(b.body.len, 11);
    assert_int_equal(c.body.len, 11);
    xfer_free(&a);
    xfer_free(&b);
    xfer_free(&c);
}

static void test_client_free_with_transfers_in_flight(void **state)
{
    struct fx *f = *state;
    struct xfer x[3];
    for (int i = 0; i < 3; i++)
        xfer_init(&x[i], f);
    start_req(&x[0], "GET", "/slow", NULL, 0, NULL, 0, 5000);
    x[1].pause_mode = 3; /* certainly still in flight at the free */
    start_get(&x[1], "/big?n=5000000");
    x[2].pause_mode = 1;
    start_get(&x[2], "/big?n=5000000");
    assert_true(run_until(f, &x[1].pauses, 1, WAIT_MS));
    assert_true(run_until(f, &x[2].pauses, 1, WAIT_MS));
    assert_int_equal(up_client_active(f->c), 3);
    up_client_free(&f->c);
    assert_null(f->c);
    for (int i = 0; i < 3; i++)
        x[i].t = NULL; /* gone with the client */
    run_for(f, 100);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(x[i].dones, 0);
        xfer_free(&x[i]);
    }
}

static void test_client_free_inside_on_head(void **state)
{
    struct fx *f = *state;
    struct xfer x, y;
    xfer_init(&x, f);
    xfer_init(&y, f);
    x.free_client_in_head = true;
    start_get(&x, "/big?n=5000000");
    start_req(&y, "GET", "/slow", NULL, 0, NULL, 0, 5000);
    run_until(f, &x.heads, 1, WAIT_MS);
    assert_null(f->c);
    run_for(f, 100);
    assert_int_equal(x.data_calls + x.dones + y.heads + y.dones, 0);
    xfer_free(&x);
    xfer_free(&y);
}

/* A reused connection the origin closes as the request arrives: the request
 * goes again on a new connection and the caller never sees the failure. */
static void test_stale_connection_retried(void **state)
{
    struct fx *f = *state;
    int before = atomic_load(&g_origin.accepts);
    for (int i = 0; i < 2; i++) {
        struct xfer x;
        xfer_init(&x, f);
        start_get(&x, "/dropsecond");
        run_one(f, &x);
        assert_int_equal(x.res, UP_OK);
        assert_int_equal(x.body.len, 2);
        xfer_free(&x);
    }
    assert_int_equal(atomic_load(&g_origin.accepts) - before, 2);
}

/* Bytes after a complete body: the answer is fine, the connection is not
 * trusted again. */
static void test_bytes_after_body_not_reused(void **state)
{
    struct fx *f = *state;
    int before = atomic_load(&g_origin.accepts);
    for (int i = 0; i < 2; i++) {
        struct xfer x;
        xfer_init(&x, f);
        start_get(&x, "/extra");
        run_one(f, &x);
        assert_int_equal(x.res, UP_OK);
        assert_int_equal(x.body.len, 2);
        assert_memory_equal(x.body.data, "ok", 2);
        xfer_free(&x);
    }
    assert_int_equal(atomic_load(&g_origin.accepts) - before, 2);
}

/* Our client's limit on an answer head (64 KiB; libcurl has its own). */
static void test_huge_head_is_protocol_error(void **state)
{
    struct fx *f = *state;
    if (g_prefer_curl)
        skip();
    struct xfer x;
    xfer_init(&x, f);
    start_get(&x, "/hugehead");
    run_one(f, &x);
    assert_int_equal(x.res, UP_ERR_PROTOCOL);
    assert_int_equal(x.heads, 0);
    xfer_free(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_content_length, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_chunked_and_trailers, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_close_delimited, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_interim_heads_skipped, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_head, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_gzip_passes_through, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_timeout, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_short_body_is_protocol_error, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_malformed_heads, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_connection_refused, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_start_refuses_bad_requests, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_get_sends_exact_headers, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_post_body_without_content_type, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_post_keeps_caller_framing_out, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_methods_and_empty_bodies, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_streamed_request_body, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_keepalive_reuses_one_connection, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_pause_resume_from_timer, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_pause_resume_inside_on_data, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_fifty_concurrent, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cancel_inside_on_head, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cancel_inside_on_data, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cancel_outside_callbacks, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_abort_from_on_data, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_start_from_callbacks, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_client_free_with_transfers_in_flight, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_client_free_inside_on_head, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stale_connection_retried, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_bytes_after_body_not_reused, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_huge_head_is_protocol_error, fx_setup, fx_teardown),
    };
    /* The same cases on both clients: http:// normally goes through ours. */
    int failed = cmocka_run_group_tests_name("own HTTP/1.1 client", tests, origin_start, origin_stop);
    g_prefer_curl = true;
    failed += cmocka_run_group_tests_name("libcurl", tests, origin_start, origin_stop);
    return failed;
}
