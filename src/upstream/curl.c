/*
 * upstream/curl — the libcurl backend (https:// integrations): libcurl multi
 * driven by one libuv loop ("multi_socket" API).
 *
 * Shape: one CURLM per upc_client. curl tells us which sockets to watch
 * (on_curl_socket: one uv_poll_t per (socket, ADD), closed on REMOVE) and when
 * to wake it (on_curl_timer: one uv_timer_t). Poll and timer events call
 * curl_multi_socket_action, then drain_done() reports finished transfers.
 * Connections live in the multi's connection cache; easy handles are reset
 * and pooled per client.
 *
 * Invariants:
 * - Worker thread only: everything runs on c->loop.
 * - User code (on_head, on_data) runs only inside curl's header/write
 *   callbacks; there c->in_curl_cb > 0 and curl forbids the multi API
 *   (add/remove/socket_action/cleanup). Work asked for there (cancel, start,
 *   resume, client free) is recorded in flags and done by on_defer, a uv_idle
 *   that runs once curl has returned. Resume is always deferred, so on_data is
 *   never called from inside upc_resume.
 * - A cancelled transfer never calls back. It stays on the c->first list (with
 *   its easy handle still in the multi) until destroy() runs outside curl.
 * - Every transfer on that list is either added to the multi (t->added) or
 *   waiting for on_defer to add it. n_active counts the ones not cancelled.
 * - on_done is called outside curl callbacks, with t already unlinked and its
 *   easy handle recycled; t is freed after on_done returns.
 * - Client memory is freed by the last libuv close callback (timer, idle,
 *   and one per poll still open or closing), counted in c->open_handles.
 */
#include "upstream/up_int.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/util.h"

#define UP_CLIENT_MAGIC 0x75704331u
#define UP_TRANSFER_MAGIC 0x75705431u
#define UP_POOL_MAX 64       /* idle easy handles kept per client */
#define UP_MAX_CONNECTS 256L /* connection cache size of one multi */
#define UP_CONNECT_TIMEOUT_MS 10000u

/* One watched socket, for one ADD..REMOVE span of curl's interest in it. A
 * fresh struct per ADD means an fd number curl reuses right after REMOVE gets a
 * new uv_poll_t while the old one is still closing. */
struct up_sock {
    uv_poll_t poll; /* data = this; freed in on_sock_closed */
    struct upc_client *c;
    curl_socket_t fd;
    struct up_sock *prev, *next; /* c->socks: open (not closing) ones */
};

struct upc_client {
    uint32_t magic;
    uv_loop_t *loop;                  /* borrowed: outlives the client */
    CURLM *multi;                     /* owned: curl_multi_cleanup in teardown */
    uv_timer_t timer;                 /* curl's single timeout */
    uv_idle_t defer;                  /* work that must wait until curl's callbacks returned */
    struct upc_transfer *first, *last; /* all transfers not yet destroyed */
    struct up_sock *socks;
    CURL *pool[UP_POOL_MAX]; /* owned: idle, reset easy handles */
    size_t n_pool;
    size_t n_active;
    unsigned in_curl_cb; /* > 0 inside curl header/write callbacks */
    unsigned walking;    /* > 0 while on_defer walks the transfer list */
    unsigned open_handles;
    bool closing;
};

/* A response header as offsets into t->head (which may move while growing). */
struct up_span {
    size_t name_off, name_len, value_off, value_len;
};

struct upc_transfer {
    struct up_transfer base; /* first: the front casts */
    uint32_t magic;
    struct upc_client *c;
    struct upc_transfer *prev, *next;
    CURL *easy;              /* owned: back to the pool (pool_put) */
    struct curl_slist *hdrs; /* owned: curl_slist_free_all after removal */
    struct up_callbacks cb;
    void *ud;
    size_t skip;           /* bytes curl re-delivers after a pause: already given */
    struct buf head;       /* owned: header lines of the head being read */
    struct up_span *spans; /* owned: one per header line in head */
    size_t n_spans, cap_spans;
    int status; /* 0 until the status line of the current head */
    bool added, cancelled, paused, resume_pending, head_done, aborted, proto_err, in_done;
    bool send_paused, send_resume_pending; /* streamed request body waits for bytes */
    char errbuf[CURL_ERROR_SIZE];
};

/* ================= small helpers ================= */

static void arm_defer(struct upc_client *c);
static void on_defer(uv_idle_t *h);

/* ================= result mapping ================= */

/* curl's answer → ours; SEND_ERROR before any head means nothing was
 * answered, so the origin is as good as unreachable. Unlisted codes are
 * protocol errors (502, never cached). */
static const struct {
    CURLcode code;
    enum up_result before_head;
    enum up_result after_head;
} up_result_map[] = {
    {CURLE_COULDNT_CONNECT, UP_ERR_CONNECT, UP_ERR_CONNECT},
    {CURLE_COULDNT_RESOLVE_HOST, UP_ERR_CONNECT, UP_ERR_CONNECT},
    {CURLE_SSL_CONNECT_ERROR, UP_ERR_CONNECT, UP_ERR_CONNECT},
    {CURLE_PEER_FAILED_VERIFICATION, UP_ERR_CONNECT, UP_ERR_CONNECT},
    {CURLE_GOT_NOTHING, UP_ERR_CONNECT, UP_ERR_CONNECT},
    {CURLE_SEND_ERROR, UP_ERR_CONNECT, UP_ERR_PROTOCOL},
    {CURLE_OPERATION_TIMEDOUT, UP_ERR_TIMEOUT, UP_ERR_TIMEOUT},
    {CURLE_PARTIAL_FILE, UP_ERR_PROTOCOL, UP_ERR_PROTOCOL},
    {CURLE_RECV_ERROR, UP_ERR_PROTOCOL, UP_ERR_PROTOCOL},
    {CURLE_WEIRD_SERVER_REPLY, UP_ERR_PROTOCOL, UP_ERR_PROTOCOL},
    {CURLE_BAD_CONTENT_ENCODING, UP_ERR_PROTOCOL, UP_ERR_PROTOCOL},
    {CURLE_UNSUPPORTED_PROTOCOL, UP_ERR_PROTOCOL, UP_ERR_PROTOCOL},
};

static enum up_result map_result(const struct upc_transfer *t, CURLcode code)
{
    /* Our own flags first: they explain a CURLE_WRITE_ERROR we caused. */
    if (t->proto_err)
        return UP_ERR_PROTOCOL;
    if (t->aborted)
        return UP_ERR_ABORTED;
    if (code == CURLE_OK)
        return t->head_done ? UP_OK : UP_ERR_PROTOCOL;
    for (size_t i = 0; i < GATE_ARRAY_LEN(up_result_map); i++)
        if (up_result_map[i].code == code)
            return t->head_done ? up_result_map[i].after_head : up_result_map[i].before_head;
    return UP_ERR_PROTOCOL;
}

/* ================= client: handle lifetime ================= */

static void client_handle_closed(struct upc_client *c)
{
    GATE_ASSERT(c->open_handles > 0);
    if (--c->open_handles == 0) {
        c->magic = 0;
        free(c);
    }
}

static void on_client_handle_closed(uv_handle_t *h)
{
    client_handle_closed(h->data);
}

static void on_sock_closed(uv_handle_t *h)
{
    struct up_sock *s = h->data;
    struct upc_client *c = s->c;
    free(s);
    client_handle_closed(c);
}

static void sock_close(struct up_sock *s)
{
    struct upc_client *c = s->c;
    if (s->prev)
        s->prev->next = s->next;
    else
        c->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

/* ================= client: driving curl ================= */

static void finish(struct upc_transfer *t, CURLcode code);

/* Reports every transfer curl has finished. Runs outside curl callbacks, so
 * on_done may start, cancel, or free the client. */
static void drain_done(struct upc_client *c)
{
    CURLMsg *msg;
    int left;
    while (!c->closing && (msg = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct upc_transfer *t = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        GATE_ASSERT(t != NULL && t->magic == UP_TRANSFER_MAGIC);
        finish(t, msg->data.result);
    }
}

static void drive(struct upc_client *c, curl_socket_t fd, int flags)
{
    int running;
    CURLMcode rc = curl_multi_socket_action(c->multi, fd, flags, &running);
    if (rc != CURLM_OK)
        log_warn("upstream: curl_multi_socket_action: %s", curl_multi_strerror(rc));
    drain_done(c);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct up_sock *s = h->data;
    struct upc_client *c = s->c;
    if (c->closing)
        return;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    /* s may be closed inside: do not touch it afterwards. */
    drive(c, s->fd, flags);
}

static void on_timer(uv_timer_t *h)
{
    struct upc_client *c = h->data;
    if (!c->closing)
        drive(c, CURL_SOCKET_TIMEOUT, 0);
}

/* CURLMOPT_TIMERFUNCTION. Never calls curl back from here: a 0 timeout just
 * makes the uv timer fire on the loop's next timer pass. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct upc_client *c = userp;
    if (uv_is_closing((uv_handle_t *)&c->timer))
        return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static struct up_sock *sock_new(struct upc_client *c, curl_socket_t fd)
{
    struct up_sock *s = xcalloc(1, sizeof(*s));
    int err = uv_poll_init_socket(c->loop, &s->poll, fd);
    if (err != 0) {
        log_error("upstream: uv_poll_init_socket(%d): %s", (int)fd, uv_strerror(err));
        free(s);
        return NULL;
    }
    s->poll.data = s;
    s->c = c;
    s->fd = fd;
    s->next = c->socks;
    if (c->socks)
        c->socks->prev = s;
    c->socks = s;
    c->open_handles++;
    return s;
}

/* CURLMOPT_SOCKETFUNCTION: socketp is our up_sock for this ADD, or NULL. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct upc_client *c = userp;
    struct up_sock *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        /* curl forgets the assignment itself once REMOVE returns. */
        if (s)
            sock_close(s);
        return 0;
    }
    if (!s) {
        s = sock_new(c, fd);
        if (!s)
            return -1; /* curl fails the transfers on this socket */
        curl_multi_assign(c->multi, fd, s);
    }
    int events = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    int err = uv_poll_start(&s->poll, events, on_poll);
    if (err != 0) {
        log_error("upstream: uv_poll_start(%d): %s", (int)fd, uv_strerror(err));
        return -1;
    }
    return 0;
}

/* ================= easy handle pool ================= */

static CURL *pool_get(struct upc_client *c)
{
    if (c->n_pool > 0)
        return c->pool[--c->n_pool];
    return curl_easy_init();
}

static void pool_put(struct upc_client *c, CURL *easy)
{
    if (c->n_pool < UP_POOL_MAX && !c->closing) {
        /* Reset drops every option (our slist and body pointers included);
         * the connection stays in the multi's cache. */
        curl_easy_reset(easy);
        c->pool[c->n_pool++] = easy;
    } else {
        curl_easy_cleanup(easy);
    }
}

/* ================= transfer lifetime ================= */

static void link_transfer(struct upc_client *c, struct upc_transfer *t)
{
    t->prev = c->last;
    if (c->last)
        c->last->next = t;
    else
        c->first = t;
    c->last = t;
}

static void unlink_transfer(struct upc_client *c, struct upc_transfer *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        c->first = t->next;
    if (t->next)
        t->next->prev = t->prev;
    else
        c->last = t->prev;
    t->prev = t->next = NULL;
}

/* Takes t out of curl and the client; t itself stays allocated.
 * Outside curl callbacks only. */
static void detach(struct upc_transfer *t)
{
    struct upc_client *c = t->c;
    GATE_ASSERT(c->in_curl_cb == 0);
    if (t->added)
        curl_multi_remove_handle(c->multi, t->easy);
    t->added = false;
    if (t->easy)
        pool_put(c, t->easy);
    t->easy = NULL;
    curl_slist_free_all(t->hdrs);
    t->hdrs = NULL;
    unlink_transfer(c, t);
}

static void transfer_free(struct upc_transfer *t)
{
    buf_free(&t->head);
    free(t->spans);
    t->magic = 0;
    free(t);
}

/* Silently ends a cancelled transfer. */
static void destroy(struct upc_transfer *t)
{
    GATE_ASSERT(t->cancelled);
    detach(t);
    transfer_free(t);
}

/* Ends a transfer curl (or upc_resume) reported finished. */
static void finish(struct upc_transfer *t, CURLcode code)
{
    struct upc_client *c = t->c;
    if (t->cancelled) {
        destroy(t);
        return;
    }
    enum up_result res = map_result(t, code);
    if (res != UP_OK && res != UP_ERR_ABORTED)
        log_debug("upstream: transfer failed (%d): %s", (int)code,
                  t->errbuf[0] ? t->errbuf : curl_easy_strerror(code));
    detach(t);
    c->n_active--;
    t->in_done = true;
    t->cb.on_done(t->ud, res);
    transfer_free(t);
}

/* ================= response head ================= */

static void head_reset(struct upc_transfer *t)
{
    buf_reset(&t->head);
    t->n_spans = 0;
    t->status = 0;
}

/* "HTTP/1.1 200 OK": curl has vetted it; we only need the code. */
static bool parse_status_line(const char *p, size_t len, int *status)
{
    if (len < 12 || memcmp(p, "HTTP/", 5) != 0)
        return false;
    const char *sp = memchr(p, ' ', len);
    if (!sp || (size_t)(p + len - sp) < 4)
        return false;
    int v = 0;
    for (int i = 1; i <= 3; i++) {
        if (sp[i] < '0' || sp[i] > '9')
            return false;
        v = v * 10 + (sp[i] - '0');
    }
    if ((size_t)(p + len - sp) > 4 && sp[4] != ' ')
        return false;
    if (v < 100)
        return false;
    *status = v;
    return true;
}

/* One field line, CRLF already stripped. RFC 9112 §5.2: obs-fold (a line
 * starting with SP/HTAB) is refused; §5.1: no whitespace before the colon. */
static bool add_field_line(struct upc_transfer *t, const char *p, size_t len)
{
    if (p[0] == ' ' || p[0] == '\t')
        return false;
    const char *colon = memchr(p, ':', len);
    if (!colon || !up__is_token(p, (size_t)(colon - p)))
        return false;
    const char *v = colon + 1;
    size_t vlen = len - (size_t)(v - p);
    str_trim_ows(&v, &vlen);
    if (!up__is_field_value(v, vlen))
        return false;
    if (t->n_spans == t->cap_spans) {
        t->cap_spans = t->cap_spans ? 2 * t->cap_spans : 16;
        t->spans = xrealloc(t->spans, t->cap_spans * sizeof(*t->spans));
    }
    struct up_span *sp = &t->spans[t->n_spans++];
    sp->name_off = t->head.len;
    sp->name_len = (size_t)(colon - p);
    buf_append(&t->head, p, sp->name_len);
    sp->value_off = t->head.len;
    sp->value_len = vlen;
    buf_append(&t->head, v, vlen);
    return true;
}

static void deliver_head(struct upc_transfer *t)
{
    curl_off_t cl = -1;
    if (curl_easy_getinfo(t->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) != CURLE_OK)
        cl = -1;
    struct up_header *h = xmalloc(GATE_MAX(t->n_spans, 1) * sizeof(*h));
    for (size_t i = 0; i < t->n_spans; i++) {
        h[i].name = t->head.data + t->spans[i].name_off;
        h[i].name_len = t->spans[i].name_len;
        h[i].value = t->head.data + t->spans[i].value_off;
        h[i].value_len = t->spans[i].value_len;
    }
    t->head_done = true;
    t->cb.on_head(t->ud, t->status, h, t->n_spans, cl < 0 ? -1 : (int64_t)cl);
    free(h);
    buf_free(&t->head);
}

/* Returns false to make curl fail the transfer. */
static bool head_line(struct upc_transfer *t, const char *p, size_t len)
{
    if (len > 0 && p[len - 1] == '\n')
        len--;
    if (len > 0 && p[len - 1] == '\r')
        len--;
    if (t->status == 0) {
        if (!parse_status_line(p, len, &t->status)) {
            t->proto_err = true;
            return false;
        }
        return true;
    }
    if (len > 0) {
        if (!add_field_line(t, p, len)) {
            t->proto_err = true;
            return false;
        }
        return true;
    }
    /* Blank line: end of a head. RFC 9110 §15.2: 1xx heads are interim. */
    if (t->status < 200) {
        head_reset(t);
        return true;
    }
    deliver_head(t);
    return !t->cancelled;
}

/* CURLOPT_HEADERFUNCTION: one whole line per call (status, fields, blank,
 * and chunked trailers after the body, which we ignore). */
static size_t on_curl_header(char *p, size_t size, size_t n, void *arg)
{
    struct upc_transfer *t = arg;
    size_t len = size * n;
    if (t->cancelled || t->proto_err)
        return 0;
    if (t->head_done)
        return len;
    t->c->in_curl_cb++;
    bool ok = head_line(t, p, len);
    t->c->in_curl_cb--;
    return ok ? len : 0;
}

/* ================= response body ================= */

/* CURLOPT_WRITEFUNCTION. After CURL_WRITEFUNC_PAUSE curl keeps the whole
 * buffer of that call and passes it again on unpause; on_data already had
 * it, so t->skip drops exactly those bytes from what follows. */
static size_t on_curl_write(char *p, size_t size, size_t n, void *arg)
{
    struct upc_transfer *t = arg;
    size_t total = size * n;
    if (t->cancelled || t->aborted || t->proto_err)
        return 0;
    if (!t->head_done) {
        t->proto_err = true;
        return 0;
    }
    size_t k = GATE_MIN(t->skip, total);
    t->skip -= k;
    if (k == total)
        return total;
    t->c->in_curl_cb++;
    int r = t->cb.on_data(t->ud, p + k, total - k);
    t->c->in_curl_cb--;
    if (t->cancelled)
        return 0;
    switch (r) {
    case UP_DATA_OK:
        return total;
    case UP_DATA_PAUSE:
        t->paused = true;
        t->skip = total;
        return CURL_WRITEFUNC_PAUSE;
    case UP_DATA_ABORT:
        t->aborted = true;
        return 0;
    default:
        GATE_ASSERT(!"on_data returned an unknown code");
        return 0;
    }
}

/* Streamed request body: asks the caller for bytes; none ready pauses the
 * sending side only (the answer may already be arriving). */
static size_t on_curl_read(char *p, size_t size, size_t n, void *arg)
{
    struct upc_transfer *t = arg;
    if (t->cancelled || t->aborted)
        return CURL_READFUNC_ABORT;
    bool eof = false;
    t->c->in_curl_cb++;
    size_t got = t->cb.on_send(t->ud, p, size * n, &eof);
    t->c->in_curl_cb--;
    if (t->cancelled)
        return CURL_READFUNC_ABORT;
    if (got == 0 && !eof) {
        t->send_paused = true;
        return CURL_READFUNC_PAUSE;
    }
    return got;
}

/* ================= request setup ================= */

static bool is_hdr(const struct up_header *h, const char *name)
{
    return str_ieq_c(h->name, h->name_len, name);
}

/* Appends one "Name: value" line; false if curl could not allocate. */
static bool slist_add(struct curl_slist **list, const char *line)
{
    struct curl_slist *l = curl_slist_append(*list, line);
    if (!l)
        return false;
    *list = l;
    return true;
}

/* The request headers, exactly as given, minus framing, plus empty
 * overrides that stop curl from adding defaults the caller did not send. */
static bool build_headers(const struct up_request *req, struct curl_slist **out)
{
    bool has_accept = false, has_expect = false, has_ctype = false, ok = true;
    struct buf line;
    buf_init(&line);
    for (size_t i = 0; i < req->n_headers && ok; i++) {
        const struct up_header *h = &req->headers[i];
        if (!up__is_token(h->name, h->name_len) || !up__is_field_value(h->value, h->value_len)) {
            ok = false;
            break;
        }
        /* curl frames the body from its length (RFC 9112 §6.2, §6.3). */
        if (is_hdr(h, "Content-Length") || is_hdr(h, "Transfer-Encoding"))
            continue;
        has_accept |= is_hdr(h, "Accept");
        has_expect |= is_hdr(h, "Expect");
        has_ctype |= is_hdr(h, "Content-Type");
        buf_reset(&line);
        buf_append(&line, h->name, h->name_len);
        /* curl reads "Name:" as "remove Name"; "Name;" sends it empty. */
        if (h->value_len == 0) {
            buf_append_char(&line, ';');
        } else {
            buf_append(&line, ": ", 2);
            buf_append(&line, h->value, h->value_len);
        }
        ok = slist_add(out, line.data);
    }
    buf_free(&line);
    /* Expect: no 100-continue round trip for bodies over 1 KiB. */
    if (ok && !has_accept)
        ok = slist_add(out, "Accept:");
    if (ok && !has_expect)
        ok = slist_add(out, "Expect:");
    /* Else POSTFIELDS adds application/x-www-form-urlencoded. */
    if (ok && !has_ctype)
        ok = slist_add(out, "Content-Type:");
    /* A streamed body of unknown length goes chunked (RFC 9112 §7.1); curl
     * does the coding once the header asks for it. */
    if (ok && req->body_stream && req->stream_len < 0)
        ok = slist_add(out, "Transfer-Encoding: chunked");
    return ok;
}

/* Methods are case-sensitive (RFC 9110 §9.1). */
static CURLcode set_method(CURL *e, const struct up_request *req)
{
    const char *m = req->method ? req->method : "GET";
    CURLcode rc = CURLE_OK;
    if (up__is_method(m, "HEAD"))
        return curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    if (req->body_stream) {
        /* UPLOAD pulls the body through the read callback; the method string
         * replaces the PUT that UPLOAD implies. */
        rc |= curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        rc |= curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->stream_len);
        rc |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
        return rc;
    }
    bool wants_length = up__is_method(m, "POST") || up__is_method(m, "PUT") || up__is_method(m, "PATCH");
    if (req->body || wants_length) {
        /* POSTFIELDS borrows the body; "" gives Content-Length: 0. */
        rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                               (curl_off_t)(req->body ? req->body_len : 0));
        rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body ? req->body : "");
    }
    if (!up__is_method(m, "GET") || req->body) {
        if (!up__is_method(m, "POST"))
            rc |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
    }
    return rc;
}

static CURLcode setup_easy(struct upc_transfer *t, const struct up_request *req)
{
    CURL *e = t->easy;
    long timeout = (long)req->timeout_ms;
    long ctimeout = (long)GATE_MIN(req->timeout_ms, UP_CONNECT_TIMEOUT_MS);
    CURLcode rc = CURLE_OK;
    rc |= curl_easy_setopt(e, CURLOPT_URL, req->url);
    rc |= curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    rc |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    rc |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    rc |= curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    rc |= curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    rc |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    /* An origin is configured, never taken from http_proxy in the env. */
    rc |= curl_easy_setopt(e, CURLOPT_PROXY, "");
    /* The path is the caller's: no dot-segment squashing. */
    rc |= curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
    rc |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    /* Bodies pass through as the origin encoded them. */
    rc |= curl_easy_setopt(e, CURLOPT_HTTP_CONTENT_DECODING, 0L);
    rc |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout);
    rc |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, ctimeout);
    rc |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_curl_header);
    rc |= curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
    rc |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_curl_write);
    rc |= curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    rc |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->hdrs);
    if (req->body_stream) {
        rc |= curl_easy_setopt(e, CURLOPT_READFUNCTION, on_curl_read);
        rc |= curl_easy_setopt(e, CURLOPT_READDATA, t);
    }
    rc |= set_method(e, req);
    return rc;
}

/* Hands t to curl; outside curl callbacks only. */
static bool add_to_multi(struct upc_transfer *t)
{
    CURLMcode rc = curl_multi_add_handle(t->c->multi, t->easy);
    if (rc != CURLM_OK) {
        log_error("upstream: curl_multi_add_handle: %s", curl_multi_strerror(rc));
        return false;
    }
    t->added = true;
    return true;
}

/* ================= deferred work ================= */

static void arm_defer(struct upc_client *c)
{
    if (!uv_is_active((uv_handle_t *)&c->defer) && !uv_is_closing((uv_handle_t *)&c->defer))
        uv_idle_start(&c->defer, on_defer);
}

static void resume(struct upc_transfer *t)
{
    bool recv = t->resume_pending && t->paused;
    bool send = t->send_resume_pending && t->send_paused;
    t->resume_pending = false;
    t->send_resume_pending = false;
    if (!recv && !send)
        return;
    if (recv)
        t->paused = false;
    if (send)
        t->send_paused = false;
    /* The new pause state of both directions at once: unpausing one must not
     * unpause the other. May call on_curl_write with the data curl kept. */
    int mask = (t->paused ? CURLPAUSE_RECV : 0) | (t->send_paused ? CURLPAUSE_SEND : 0);
    CURLcode rc = curl_easy_pause(t->easy, mask);
    if (rc != CURLE_OK) {
        /* on_data aborted or cancelled while curl flushed what it kept; curl
         * dropped the rest of that data, so the transfer cannot go on. */
        finish(t, rc);
    }
}

static void client_teardown(struct upc_client *c);

/* Starts, cancels and resumes what callbacks asked for; one pass per loop
 * iteration, so a pause/resume ping-pong cannot starve the loop. */
static void on_defer(uv_idle_t *h)
{
    struct upc_client *c = h->data;
    uv_idle_stop(&c->defer);
    if (c->closing) {
        client_teardown(c);
        return;
    }
    c->walking++;
    struct upc_transfer *next;
    for (struct upc_transfer *t = c->first; t && !c->closing; t = next) {
        next = t->next;
        if (t->cancelled) {
            destroy(t);
        } else if (!t->added) {
            if (!add_to_multi(t)) {
                /* The caller already has t: report it like any failure. */
                finish(t, CURLE_FAILED_INIT);
            }
        } else if (t->resume_pending || t->send_resume_pending) {
            resume(t);
        }
    }
    c->walking--;
    if (c->closing) {
        client_teardown(c);
        return;
    }
    drain_done(c);
}

/* ================= public API ================= */

int upc_global_init(void)
{
    CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
        log_error("upstream: curl_global_init: %s", curl_easy_strerror(rc));
        return -1;
    }
    return 0;
}

void upc_global_cleanup(void)
{
    curl_global_cleanup();
}

struct upc_client *upc_client_new(uv_loop_t *loop)
{
    struct upc_client *c = xcalloc(1, sizeof(*c));
    c->magic = UP_CLIENT_MAGIC;
    c->loop = loop;
    c->multi = curl_multi_init();
    if (!c->multi) {
        free(c);
        return NULL;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, UP_MAX_CONNECTS);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    uv_idle_init(loop, &c->defer);
    c->defer.data = c;
    c->open_handles = 2;
    return c;
}

/* Outside curl callbacks and list walks only. */
static void client_teardown(struct upc_client *c)
{
    while (c->first)
        destroy(c->first);
    while (c->n_pool > 0)
        curl_easy_cleanup(c->pool[--c->n_pool]);
    /* May still call on_curl_socket (REMOVE) and on_curl_timer. */
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    while (c->socks)
        sock_close(c->socks);
    uv_close((uv_handle_t *)&c->timer, on_client_handle_closed);
    uv_close((uv_handle_t *)&c->defer, on_client_handle_closed);
}

void upc_client_free(struct upc_client **cp)
{
    struct upc_client *c = *cp;
    if (!c)
        return;
    *cp = NULL;
    GATE_ASSERT(c->magic == UP_CLIENT_MAGIC && !c->closing);
    c->closing = true;
    for (struct upc_transfer *t = c->first; t; t = t->next)
        t->cancelled = true;
    c->n_active = 0;
    if (c->in_curl_cb || c->walking)
        arm_defer(c);
    else
        client_teardown(c);
}

struct up_transfer *upc_start(struct upc_client *c, const struct up_request *req,
                              const struct up_callbacks *cb, void *ud)
{
    GATE_ASSERT(c && c->magic == UP_CLIENT_MAGIC);
    GATE_ASSERT(cb && cb->on_head && cb->on_data && cb->on_done);
    if (c->closing)
        return NULL;
    struct upc_transfer *t = xcalloc(1, sizeof(*t));
    t->base.backend = UP_BACKEND_CURL;
    t->magic = UP_TRANSFER_MAGIC;
    t->c = c;
    t->cb = *cb;
    t->ud = ud;
    buf_init(&t->head);
    t->easy = pool_get(c);
    if (!t->easy || !build_headers(req, &t->hdrs) || setup_easy(t, req) != CURLE_OK)
        goto fail;
    link_transfer(c, t);
    if (c->in_curl_cb) {
        arm_defer(c); /* curl refuses add_handle from its callbacks */
    } else if (!add_to_multi(t)) {
        unlink_transfer(c, t);
        goto fail;
    }
    c->n_active++;
    return &t->base;
fail:
    if (t->easy)
        pool_put(c, t->easy);
    curl_slist_free_all(t->hdrs);
    transfer_free(t);
    return NULL;
}

void upc_cancel(struct up_transfer *base)
{
    struct upc_transfer *t = (struct upc_transfer *)base;
    GATE_ASSERT(t->magic == UP_TRANSFER_MAGIC);
    if (t->in_done || t->cancelled)
        return;
    struct upc_client *c = t->c;
    t->cancelled = true;
    c->n_active--;
    if (c->in_curl_cb || c->walking)
        arm_defer(c); /* a curl callback returning 0 or on_defer ends it */
    else
        destroy(t);
}

void upc_resume(struct up_transfer *base)
{
    struct upc_transfer *t = (struct upc_transfer *)base;
    GATE_ASSERT(t && t->magic == UP_TRANSFER_MAGIC);
    if (t->cancelled || t->in_done)
        return;
    t->resume_pending = true;
    arm_defer(t->c);
}

void upc_resume_send(struct up_transfer *base)
{
    struct upc_transfer *t = (struct upc_transfer *)base;
    GATE_ASSERT(t && t->magic == UP_TRANSFER_MAGIC);
    if (t->cancelled || t->in_done || !t->send_paused)
        return;
    t->send_resume_pending = true;
    arm_defer(t->c);
}

size_t upc_client_active(const struct upc_client *c)
{
    GATE_ASSERT(c && c->magic == UP_CLIENT_MAGIC);
    return c->n_active;
}
