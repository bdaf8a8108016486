/*
 * l2/conn — one Redis connection kept up on a libuv loop: resolve (off-loop),
 * connect (non-blocking), AUTH and SELECT, the owner's first command, then
 * READY; on any failure drop it and try again after an exponential backoff.
 * The client and the subscriber each embed one.
 *
 * Invariants:
 * - c->ac is the only live hiredis context of this connection, and
 *   ac->data == c. A context is set to NULL here *before* it is freed, so the
 *   callbacks hiredis makes while freeing it (NULL replies, onDisconnect)
 *   recognise it as gone and do nothing to the connection.
 * - The timer is the backoff while DOWN and the connect deadline while
 *   CONNECTING; nothing else runs it.
 * - The loop never waits here: names are resolved with uv_getaddrinfo,
 *   hiredis only connects to numeric addresses.
 *
 * hiredis 0.14's libuv adapter ignores poll errors: when libuv reports POLLERR
 * (a refused connect, a reset, Redis killed while we were writing) it stops
 * watching the socket and hiredis is never told, so the connection would hang
 * forever. The check handle looks after every loop iteration for a socket the
 * adapter still wants events for but libuv no longer watches, and drops it.
 */
#include "l2/l2_int.h"
#include "util/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct l2__resolve {
    uv_getaddrinfo_t req;
    struct l2__conn *conn; /* NULL once the connection gave up on this lookup */
};

static void schedule_retry(struct l2__conn *c);
static void start_attempt(struct l2__conn *c);
static void on_timer(uv_timer_t *t);

/* ================= options ================= */

bool l2__options_ok(const struct l2_options *o)
{
    return o && o->host && o->host[0] && o->port >= 1 && o->port <= 65535 && o->db >= 0 &&
           o->connect_timeout_ms > 0 && o->command_timeout_ms > 0 && o->reconnect_min_ms > 0 &&
           o->reconnect_min_ms <= o->reconnect_max_ms;
}

char *l2__prefixed(const struct l2_options *opt, const char *s, size_t n, size_t *len)
{
    const char *prefix = opt->key_prefix ? opt->key_prefix : "";
    size_t plen = strlen(prefix);
    char *out = xmalloc(plen + n + 1);
    memcpy(out, prefix, plen);
    if (n)
        memcpy(out + plen, s, n);
    out[plen + n] = '\0';
    *len = plen + n;
    return out;
}

static char *dup_nonempty(const char *s)
{
    return s && s[0] ? xstrdup(s) : NULL;
}

void l2__conn_init(struct l2__conn *c, uv_loop_t *loop, const struct l2_options *opt,
                   bool select_db, const struct l2__conn_ops *ops, const char *what)
{
    memset(c, 0, sizeof(*c));
    c->loop = loop;
    c->ops = ops;
    c->what = what;
    c->state = L2__DOWN;
    c->host = xstrdup(opt->host);
    c->username = dup_nonempty(opt->username);
    c->password = dup_nonempty(opt->password);
    c->port = opt->port;
    c->db = opt->db;
    c->select_db = select_db;
    c->connect_timeout_ms = opt->connect_timeout_ms;
    c->reconnect_min_ms = opt->reconnect_min_ms;
    c->reconnect_max_ms = opt->reconnect_max_ms;
    c->backoff_ms = opt->reconnect_min_ms;
    c->rng = (uv_hrtime() ^ (uint64_t)(uintptr_t)c) | 1;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    uv_check_init(loop, &c->check);
    c->check.data = c;
}

/* ================= dropping and retrying ================= */

/* Logs a failure once per outage (a ready connection lost, or the first
 * failed attempt), so a Redis that stays down does not flood the log. */
static void log_failure(struct l2__conn *c, bool was_ready, const char *why)
{
    if (was_ready)
        log_warn("l2 %s: lost %s:%d: %s; reconnecting", c->what, c->host, c->port, why);
    else if (!c->logged_down)
        log_warn("l2 %s: cannot reach %s:%d: %s; retrying", c->what, c->host, c->port, why);
    else
        log_debug("l2 %s: attempt on %s:%d failed: %s", c->what, c->host, c->port, why);
    c->logged_down = true;
}

/* Abandons a running lookup: its callback frees it and finds no connection. */
static void detach_resolve(struct l2__conn *c)
{
    if (c->resolve == NULL)
        return;
    c->resolve->conn = NULL;
    uv_cancel((uv_req_t *)&c->resolve->req);
    c->resolve = NULL;
}

/*
 * The common end of a connection or an attempt. to_free is the context to
 * free (NULL when hiredis frees it itself, in its connect/disconnect
 * callbacks). Freeing answers the owner's pending replies with NULL, and an
 * owner callback may close the connection meanwhile: checked after it.
 */
static void conn_over(struct l2__conn *c, const char *why, struct redisAsyncContext *to_free)
{
    bool was_ready = c->state == L2__READY;
    log_failure(c, was_ready, why); /* before the free: why may live in the context */
    c->attempt = was_ready ? 0 : c->attempt + 1;
    c->state = L2__DOWN;
    c->ac = NULL;
    detach_resolve(c);
    uv_timer_stop(&c->timer);
    if (to_free)
        redisAsyncFree(to_free);
    if (c->state == L2__CLOSED)
        return;
    if (was_ready && c->ops->lost)
        c->ops->lost(c);
    if (c->state == L2__CLOSED)
        return;
    schedule_retry(c);
}

void l2__conn_drop(struct l2__conn *c, const char *why)
{
    if (c->state == L2__DOWN || c->state == L2__CLOSED)
        return;
    conn_over(c, why, c->ac);
}

/* Next attempt after the current backoff, minus up to 25% so that the nodes
 * of a fleet do not all come back to a restarted Redis in the same instant. */
static void schedule_retry(struct l2__conn *c)
{
    uint32_t d = c->backoff_ms;
    c->rng ^= c->rng << 13;
    c->rng ^= c->rng >> 7;
    c->rng ^= c->rng << 17;
    d -= (uint32_t)(c->rng % (d / 4 + 1));
    c->backoff_ms = (uint32_t)GATE_MIN((uint64_t)c->backoff_ms * 2, c->reconnect_max_ms);
    uv_timer_start(&c->timer, on_timer, GATE_MAX(d, 1u), 0);
}

/* ================= hiredis callbacks ================= */

/* hiredis frees the context itself after both of these return: never free it
 * here, only forget it. */
static void on_connect(const redisAsyncContext *ac, int status)
{
    struct l2__conn *c = ac->data;
    if (status == REDIS_OK || c == NULL || c->ac != ac)
        return; /* connected: the handshake's answers decide */
    conn_over(c, ac->errstr[0] ? ac->errstr : "connect failed", NULL);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct l2__conn *c = ac->data;
    if (c == NULL || c->ac != ac)
        return; /* freed by us: already handled */
    conn_over(c, ac->errstr[0] ? ac->errstr : "connection closed", NULL);
}

/* AUTH and SELECT: an error answer ends the attempt (wrong password, no such
 * db); a NULL one means the context is going away, which is handled there. */
static void on_handshake_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct l2__conn *c = ac->data;
    redisReply *reply = r;
    if (reply == NULL || c == NULL || c->ac != ac || reply->type != REDIS_REPLY_ERROR)
        return;
    char why[160];
    snprintf(why, sizeof(why), "%s refused: %.*s", (const char *)privdata,
             (int)GATE_MIN(reply->len, 120), reply->str);
    l2__conn_drop(c, why);
}

/* ================= one attempt ================= */

static void send_handshake(struct l2__conn *c)
{
    if (c->password) {
        const char *argv[3] = {"AUTH"};
        size_t lens[3] = {4};
        int argc = 1;
        if (c->username) {
            argv[argc] = c->username;
            lens[argc++] = strlen(c->username);
        }
        argv[argc] = c->password;
        lens[argc++] = strlen(c->password);
        redisAsyncCommandArgv(c->ac, on_handshake_reply, (void *)"AUTH", argc, argv, lens);
    }
    if (c->select_db && c->db > 0) {
        char db[16];
        int n = snprintf(db, sizeof(db), "%d", c->db);
        const char *argv[2] = {"SELECT", db};
        size_t lens[2] = {6, (size_t)n};
        redisAsyncCommandArgv(c->ac, on_handshake_reply, (void *)"SELECT", 2, argv, lens);
    }
    c->ops->start(c);
}

/* hiredis 0.14's redisLibuvAttach sets the cleanup hook before it allocates,
 * so a failed attach must not reach that hook on free. */
static void forget_adapter(redisAsyncContext *ac)
{
    ac->ev.addRead = ac->ev.delRead = ac->ev.addWrite = ac->ev.delWrite = NULL;
    ac->ev.cleanup = NULL;
    ac->ev.data = NULL;
}

/* Connects to a numeric address; commands may be queued at once (hiredis
 * sends them when the socket becomes writable). */
static void open_context(struct l2__conn *c, const char *ip)
{
    redisAsyncContext *ac = redisAsyncConnect(ip, c->port);
    if (ac == NULL) {
        conn_over(c, "out of memory", NULL);
        return;
    }
    if (ac->err) {
        char why[128];
        snprintf(why, sizeof(why), "%s", ac->errstr);
        redisAsyncFree(ac);
        conn_over(c, why, NULL);
        return;
    }
    if (redisLibuvAttach(ac, c->loop) != REDIS_OK) {
        forget_adapter(ac);
        redisAsyncFree(ac);
        conn_over(c, "cannot watch the socket", NULL);
        return;
    }
    ac->data = c;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    /* A peer that vanished without a FIN/RST is noticed by keepalive probes. */
    redisEnableKeepAlive(&ac->c);
    c->ac = ac;
    send_handshake(c);
}

/* The address for this attempt as text: IPv4 ones first (hiredis's own
 * order), then IPv6, moving to the next one on each failed attempt so that a
 * dead address among several (or "localhost" as ::1 when Redis listens on
 * 127.0.0.1 only) is not the only one ever tried. */
static bool pick_address(const struct addrinfo *res, uint32_t attempt, char *ip, size_t cap)
{
    size_t n = 0, i = 0;
    for (const struct addrinfo *p = res; p; p = p->ai_next)
        n += p->ai_family == AF_INET || p->ai_family == AF_INET6;
    if (n == 0)
        return false;
    size_t want = attempt % n;
    for (int pass = 0; pass < 2; pass++) {
        int family = pass == 0 ? AF_INET : AF_INET6;
        for (const struct addrinfo *p = res; p; p = p->ai_next) {
            if (p->ai_family != family || i++ != want)
                continue;
            const void *addr =
                family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)p->ai_addr)->sin6_addr
                                   : (const void *)&((struct sockaddr_in *)p->ai_addr)->sin_addr;
            return inet_ntop(family, addr, ip, (socklen_t)cap) != NULL;
        }
    }
    return false;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct l2__resolve *r = req->data;
    struct l2__conn *c = r->conn;
    free(r);
    char ip[INET6_ADDRSTRLEN] = "";
    bool found = status == 0 && c && pick_address(res, c->attempt, ip, sizeof(ip));
    uv_freeaddrinfo(res);
    if (c == NULL)
        return; /* abandoned */
    c->resolve = NULL;
    if (!found) {
        char why[128];
        snprintf(why, sizeof(why), "cannot resolve the host: %s",
                 status ? uv_strerror(status) : "no address");
        conn_over(c, why, NULL);
        return;
    }
    open_context(c, ip);
}

static bool is_numeric(const char *host)
{
    unsigned char addr[16];
    return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
}

static void start_attempt(struct l2__conn *c)
{
    c->state = L2__CONNECTING;
    uv_timer_start(&c->timer, on_timer, c->connect_timeout_ms, 0);
    if (is_numeric(c->host)) {
        open_context(c, c->host);
        return;
    }
    /* hiredis would call getaddrinfo on the loop thread: resolve in libuv's pool. */
    struct l2__resolve *r = xcalloc(1, sizeof(*r));
    r->conn = c;
    r->req.data = r;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int rc = uv_getaddrinfo(c->loop, &r->req, on_resolved, c->host, NULL, &hints);
    if (rc != 0) {
        free(r);
        char why[128];
        snprintf(why, sizeof(why), "cannot resolve the host: %s", uv_strerror(rc));
        conn_over(c, why, NULL);
        return;
    }
    c->resolve = r;
}

static void on_timer(uv_timer_t *t)
{
    struct l2__conn *c = t->data;
    if (c->state == L2__DOWN)
        start_attempt(c);
    else if (c->state == L2__CONNECTING)
        l2__conn_drop(c, "no answer within connect_timeout_ms");
}

/* ================= the adapter's lost errors ================= */

/* The adapter wants events but libuv stopped watching: libuv does that, and
 * tells only the callback the adapter ignores, when the socket has an error. */
static bool adapter_stopped(const redisAsyncContext *ac)
{
    const redisLibuvEvents *p = ac->ev.data;
    return p && p->events != 0 && !uv_is_active((const uv_handle_t *)&p->handle) &&
           !uv_is_closing((const uv_handle_t *)&p->handle);
}

static void on_check(uv_check_t *h)
{
    struct l2__conn *c = h->data;
    if (c->ac == NULL || !adapter_stopped(c->ac))
        return;
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->ac->c.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err == 0)
        err = EIO;
    char why[128];
    snprintf(why, sizeof(why), "socket error: %s", strerror(err));
    l2__conn_drop(c, why);
}

/* ================= state ================= */

void l2__conn_start(struct l2__conn *c)
{
    uv_check_start(&c->check, on_check);
    uv_unref((uv_handle_t *)&c->check); /* it watches; it is no reason to keep the loop */
    start_attempt(c);
}

bool l2__conn_usable(const struct l2__conn *c)
{
    return c->state == L2__READY && c->ac &&
           !(c->ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING)) && !adapter_stopped(c->ac);
}

void l2__conn_ready(struct l2__conn *c)
{
    if (c->state != L2__CONNECTING)
        return;
    c->state = L2__READY;
    uv_timer_stop(&c->timer);
    c->backoff_ms = c->reconnect_min_ms;
    c->ready_count++;
    if (c->ready_count == 1)
        log_info("l2 %s: connected to %s:%d", c->what, c->host, c->port);
    else
        log_info("l2 %s: reconnected to %s:%d", c->what, c->host, c->port);
    c->logged_down = false;
}

/* ================= closing ================= */

static void free_secret(char *s)
{
    if (s == NULL)
        return;
    explicit_bzero(s, strlen(s));
    free(s);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct l2__conn *c = h->data;
    if (--c->open_handles > 0)
        return;
    free(c->host);
    free(c->username);
    free_secret(c->password);
    c->host = c->username = c->password = NULL;
    c->ops->closed(c);
}

void l2__conn_close(struct l2__conn *c)
{
    GATE_ASSERT(c->state != L2__CLOSED);
    c->state = L2__CLOSED;
    detach_resolve(c);
    redisAsyncContext *ac = c->ac;
    c->ac = NULL;
    /* Pending replies are answered NULL now, or (inside a hiredis callback)
     * once that callback returns: both before the close callbacks below. */
    if (ac)
        redisAsyncFree(ac);
    c->open_handles = 2;
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->check, on_handle_closed);
}

/* ================= version ================= */

#define L2__STR2(x) #x
#define L2__STR(x) L2__STR2(x)

const char *l2_hiredis_version(void)
{
    return L2__STR(HIREDIS_MAJOR) "." L2__STR(HIREDIS_MINOR) "." L2__STR(HIREDIS_PATCH);
}
