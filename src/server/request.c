/*
 * server/request.c — answering one request: routing, the stage cache
 * (lookup, coalescing, refresh, bypass, stale-if-error), the integration
 * call streamed back to the client, storing cacheable answers, and error
 * answers in API Gateway's JSON shape.
 *
 * Worker thread only. A request is owned by its connection (c->req); every
 * path that ends a request calls conn_request_done exactly once, or the
 * connection closes and calls req_abort + req_free. A request that holds a
 * fill claim (r->filler) releases it, and wakes the waiters, on every path.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "crypto/aead.h"
#include "server/server_int.h"

/* ================= small helpers ================= */

static const char *view_header(void *ctx, const char *name, size_t name_len, size_t *value_len)
{
    struct req *r = ctx;
    for (size_t i = 0; i < r->hr.num_headers; i++) {
        const struct http_header *h = &r->hr.headers[i];
        if (h->name_len == name_len && str_ieq(h->name, h->name_len, name, name_len)) {
            *value_len = h->value_len;
            return h->value;
        }
    }
    return NULL;
}

/* The first header `name` (case-insensitive), NULL if absent. Inline, so a
 * literal name's length is a constant: every hit asks for several. */
static inline const char *find_header(struct req *r, const char *name, size_t *len)
{
    return view_header(r, name, strlen(name), len);
}

/* The nth field line named `name`, for the cache key (route_request_view). */
static const char *view_header_nth(void *ctx, const char *name, size_t name_len, size_t nth,
                                   size_t *value_len)
{
    struct req *r = ctx;
    for (size_t i = 0; i < r->hr.num_headers; i++) {
        const struct http_header *h = &r->hr.headers[i];
        if (h->name_len == name_len && str_ieq(h->name, h->name_len, name, name_len) &&
            nth-- == 0) {
            *value_len = h->value_len;
            return h->value;
        }
    }
    return NULL;
}

/* The X-Cache-Status line of a mode, NULL for REQ_PLAIN. */
static const char *cache_status_line(enum req_mode mode)
{
    switch (mode) {
    case REQ_MISS:
        return "X-Cache-Status: MISS\r\n";
    case REQ_BYPASS:
        return "X-Cache-Status: BYPASS\r\n";
    case REQ_REFRESH:
        return "X-Cache-Status: REFRESH\r\n";
    case REQ_EXPIRED:
        return "X-Cache-Status: EXPIRED\r\n";
    default:
        return NULL;
    }
}

/* Warning text for an ignored Cache-Control: max-age=0 (RFC 9111 §5.5 code
 * 199 "miscellaneous warning"; AWS does not document its own text). */
#define WARNING_UNAUTHORIZED                                                                       \
    "Warning: 199 gatecache \"Cache-Control: max-age=0 ignored: not authorized to invalidate "     \
    "the cache\"\r\n"
#define CONNECTION_CLOSE "Connection: close\r\n"

/* Room cache_headers needs: the longest status line, both optional lines. */
#define CACHE_HEADERS_MAX                                                                          \
    (sizeof("X-Cache-Status: REFRESH\r\n") + sizeof(WARNING_UNAUTHORIZED) + sizeof(CONNECTION_CLOSE))

static size_t put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return n;
}

/* Writes the headers gatecache adds to every answer of a caching method
 * (status_line may be NULL) into out, which has CACHE_HEADERS_MAX bytes of
 * room; returns their length. Plain copies: this runs on every hit. */
static size_t cache_headers(const struct req *r, char *out, const char *status_line)
{
    size_t n = 0;
    if (status_line)
        n += put(out + n, status_line, strlen(status_line));
    if (r->warn_unauthorized)
        n += put(out + n, WARNING_UNAUTHORIZED, sizeof(WARNING_UNAUTHORIZED) - 1);
    if (!r->c->keep_alive)
        n += put(out + n, CONNECTION_CLOSE, sizeof(CONNECTION_CLOSE) - 1);
    return n;
}

static void append_cache_headers(struct req *r, struct buf *b, const char *status_line)
{
    buf_reserve(b, CACHE_HEADERS_MAX);
    b->len += cache_headers(r, b->data + b->len, status_line);
    b->data[b->len] = '\0';
}

/* Ends this request's fill and wakes the requests waiting for it. */
static void release_fill_status(struct req *r, int failed_status)
{
    if (!r->filler)
        return;
    r->filler = false;
    uint64_t mask = cache_store_end_fill(r->cache->store, r->key.data, r->key.len, r->hash);
    if (mask)
        wrk_notify_fill(r->cache, r->hash, mask, failed_status);
}

static void release_fill(struct req *r)
{
    release_fill_status(r, 0);
}

/* ================= formatting without printf ================= */

/* Appends src[0..n) at dst[at..] within cap (NUL kept, the rest cut, as
 * snprintf would); returns the new length. */
static size_t copy_bounded(char *dst, size_t cap, size_t at, const char *src, size_t n)
{
    if (at + 1 >= cap)
        return at;
    size_t k = GATE_MIN(n, cap - 1 - at);
    memcpy(dst + at, src, k);
    dst[at + k] = '\0';
    return at + k;
}

/* "HTTP/1.1 NNN Reason\r\n"; status is 100..999 (from the parsers). */
static void append_status_line(struct buf *b, int status)
{
    char code[4] = {(char)('0' + status / 100 % 10), (char)('0' + status / 10 % 10),
                    (char)('0' + status % 10), ' '};
    buf_append_str(b, "HTTP/1.1 ");
    buf_append(b, code, 4);
    buf_append_str(b, http_reason(status));
    buf_append_str(b, "\r\n");
}

static void append_content_length(struct buf *b, uint64_t n)
{
    buf_append_str(b, "Content-Length: ");
    buf_append_u64(b, n);
    buf_append_str(b, "\r\n");
}

/* ================= request memory ================= */

static void req_destroy(struct req *r)
{
    free(r->head);
    buf_free(&r->key);
    buf_free(&r->url);
    buf_free(&r->store_head);
    buf_free(&r->store_body);
    buf_free(&r->held_head);
    free(r->up_headers);
    free(r);
}

#ifndef GATE_ASAN
/* A kept buffer: emptied, or freed when one large answer grew it. */
#define REQ_KEEP_MAX (64u * 1024u)

static void buf_keep(struct buf *b)
{
    if (b->cap > REQ_KEEP_MAX)
        buf_free(b);
    else
        buf_reset(b);
}
#endif

/* Finished requests a worker keeps: a miss waits on the origin, so with 64
 * clients about 64 requests are in flight and one spare was not enough. */
#define REQ_SPARE_MAX 128u

struct req *req_new(struct conn *c, size_t head_len)
{
    struct wrk *w = c->w;
    struct req *r = w->spare_req;
    if (r) {
        w->spare_req = r->spare_next;
        w->n_spare_req--;
    } else {
        r = xmalloc(sizeof(*r));
        r->head = NULL;
        r->head_cap = 0;
        buf_init(&r->key);
        buf_init(&r->url);
        buf_init(&r->store_head);
        buf_init(&r->store_body);
        buf_init(&r->held_head);
        r->up_headers = NULL;
        r->up_headers_cap = 0;
    }
    memset(r, 0, offsetof(struct req, head));
    if (r->head_cap < head_len + 1) {
        free(r->head);
        r->head_cap = head_len + 1;
        r->head = xmalloc(r->head_cap);
    }
    r->c = c;
    return r;
}

/* Frees a buffer only when it holds memory: most requests never touch
 * these, and the calls are per request. */
static void buf_drop(struct buf *b)
{
    if (b->data)
        buf_free(b);
}

void req_free(struct req **rp)
{
    struct req *r = *rp;
    if (!r)
        return;
    *rp = NULL;
    release_fill(r);
    cache_entry_release(&r->stale);
    buf_drop(&r->body);
#ifndef GATE_ASAN
    struct wrk *w = r->c->w;
    if (w->n_spare_req < REQ_SPARE_MAX) {
        buf_reset(&r->key);
        buf_keep(&r->url);
        buf_keep(&r->store_head);
        buf_keep(&r->store_body);
        buf_keep(&r->held_head);
        r->spare_next = w->spare_req;
        w->spare_req = r;
        w->n_spare_req++;
        return;
    }
#endif
    req_destroy(r);
}

void req_free_spare(struct wrk *w)
{
    while (w->spare_req) {
        struct req *r = w->spare_req;
        w->spare_req = r->spare_next;
        req_destroy(r);
    }
    w->n_spare_req = 0;
}

void req_abort(struct req *r)
{
    if (r->up)
        up_cancel(&r->up);
    l2_op_cancel(&r->l2);
    if (r->wnext || r->wprev || r->c->w->waiting == r)
        wrk_wait_remove(r->c->w, r);
    release_fill(r);
}

/* ================= fixed answers ================= */

static void json_escape(struct buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            buf_append_char(b, '\\');
        if (ch < 0x20)
            buf_appendf(b, "\\u%04x", ch);
        else
            buf_append_char(b, (char)ch);
    }
}

/* Builds a complete JSON answer {"message": msg} into b; `extra` holds
 * header lines to add (may be NULL). */
static void build_json(struct wrk *w, struct buf *b, int status, const char *msg,
                       const char *error_type, const char *extra, bool close)
{
    struct buf body;
    buf_init(&body);
    buf_append_str(&body, "{\"message\":\"");
    json_escape(&body, msg);
    buf_append_str(&body, "\"}");
    const char *date;
    wrk_date(w, &date);
    buf_appendf(b, "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: application/json\r\n", status,
                http_reason(status), date);
    buf_appendf(b, "Content-Length: %zu\r\n", body.len);
    if (error_type)
        buf_appendf(b, "x-amzn-ErrorType: %s\r\n", error_type);
    if (extra)
        buf_append_str(b, extra);
    if (close)
        buf_append_str(b, "Connection: close\r\n");
    buf_append_str(b, "\r\n");
    buf_append(b, body.data, body.len);
    buf_free(&body);
}

void req_respond_json(struct req *r, int status, const char *msg, const char *error_type)
{
    struct conn *c = r->c;
    struct buf b;
    buf_init(&b);
    /* An error of a caching method still says what the cache did. */
    build_json(c->w, &b, status, msg, error_type, cache_status_line(r->mode), !c->keep_alive);
    conn_write_copy(c, b.data, r->is_head ? (size_t)(strstr(b.data, "\r\n\r\n") - b.data) + 4
                                          : b.len);
    buf_free(&b);
    met_request_done(c->w->metrics, r->met, status, c->met_head_ns);
    conn_request_done(c);
}

void conn_respond_error(struct conn *c, int status, const char *msg)
{
    met_request_done(c->w->metrics, c->req ? c->req->met : NULL, status, c->met_head_ns);
    if (c->req) {
        req_abort(c->req);
        req_free(&c->req);
    }
    struct buf b;
    buf_init(&b);
    build_json(c->w, &b, status, msg, NULL, NULL, true);
    conn_write_copy(c, b.data, b.len);
    buf_free(&b);
    c->keep_alive = false;
    c->close_after_write = true;
    if (c->writes_pending == 0)
        conn_linger(c);
}

static void respond_mock(struct req *r)
{
    const struct cfg_integration *ig = &r->m.method->cfg->integration;
    struct buf b;
    buf_init(&b);
    const char *date;
    wrk_date(r->c->w, &date);
    buf_appendf(&b, "HTTP/1.1 %d %s\r\nDate: %s\r\n", ig->mock_status, http_reason(ig->mock_status),
                date);
    for (size_t i = 0; i < ig->n_mock_headers; i++)
        buf_appendf(&b, "%s: %s\r\n", ig->mock_headers[i].name, ig->mock_headers[i].value);
    buf_appendf(&b, "Content-Length: %zu\r\n", ig->mock_body_len);
    if (!r->c->keep_alive)
        buf_append_str(&b, "Connection: close\r\n");
    buf_append_str(&b, "\r\n");
    if (!r->is_head)
        buf_append(&b, ig->mock_body, ig->mock_body_len);
    conn_write_copy(r->c, b.data, b.len);
    buf_free(&b);
    met_request_done(r->c->w->metrics, r->met, ig->mock_status, r->c->met_head_ns);
    conn_request_done(r->c);
}

/* ================= serving from the cache ================= */

/* CacheHitCount / CacheMissCount, per worker slot: no shared cache line. */
static void count_hit(struct req *r)
{
    atomic_fetch_add_explicit(&r->cache->counters[r->c->w->id].hits, 1, memory_order_relaxed);
    met_hit(r->c->w->metrics, r->met);
}

static void count_miss(struct req *r)
{
    atomic_fetch_add_explicit(&r->cache->counters[r->c->w->id].misses, 1, memory_order_relaxed);
    met_miss(r->c->w->metrics, r->met);
}

static void count_invalidations(struct req *r, struct srv_stage_cache *sc, uint64_t n)
{
    atomic_fetch_add_explicit(&sc->counters[r->c->w->id].invalidations, n, memory_order_relaxed);
}

/* Opens an encrypted entry's body; NULL when the tag does not verify (a
 * corrupt or tampered entry is a miss, never garbage). owned: free(). */
static char *open_entry(struct req *r, const struct cache_entry *e, size_t *len)
{
    const struct srv_runtime *rt = r->c->rt;
    if (!rt->has_encryption_key || e->body_len < CRY_AEAD_OVERHEAD)
        return NULL;
    *len = e->body_len - CRY_AEAD_OVERHEAD;
    char *plain = xmalloc(*len + 1);
    if (!cry_aead_open(rt->encryption_key, e->key, e->key_len, (const uint8_t *)cache_entry_body(e),
                       e->body_len, (uint8_t *)plain)) {
        free(plain);
        return NULL;
    }
    return plain;
}

/* Writes v in decimal at p; returns the digit count. */
static size_t put_u64(char *p, uint64_t v)
{
    char tmp[20];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return put(p, tmp + i, sizeof(tmp) - i);
}

/* The status code of a stored head, which starts "HTTP/1.1 NNN " (what
 * atoi would read there, without its locale and sign handling). */
static int stored_status(const struct cache_entry *e)
{
    int status = 0;
    const char *h = cache_entry_head(e);
    for (size_t i = 9; i < e->head_len && i < 12 && h[i] >= '0' && h[i] <= '9'; i++)
        status = status * 10 + (h[i] - '0');
    return status;
}

/* Answers from an entry; now (util_now_ms) dates its Age. False (nothing
 * written) when the entry is encrypted and does not open. */
static bool serve_entry(struct req *r, struct cache_entry *e, const char *status_line,
                        bool is_hit, int64_t now)
{
    char *plain = NULL;
    size_t plain_len = 0;
    if (e->flags & CACHE_ENTRY_ENCRYPTED) {
        plain = open_entry(r, e, &plain_len);
        if (!plain) {
            log_warn("cache entry of %.*s failed authentication: dropped", (int)e->path_len,
                     cache_entry_path(e));
            cache_store_remove(r->cache->store, e->key, e->key_len, e->hash);
            return false;
        }
    }
    if (is_hit)
        count_hit(r);
    /* Age and the cache headers, on the stack: no allocation per hit. */
    char extra[sizeof("Age: \r\n") + 20 + CACHE_HEADERS_MAX + 2];
    int64_t age = (now - e->stored_ms) / 1000;
    size_t n = put(extra, "Age: ", 5);
    n += put_u64(extra + n, (uint64_t)(age > 0 ? age : 0));
    n += put(extra + n, "\r\n", 2);
    n += cache_headers(r, extra + n, status_line);
    n += put(extra + n, "\r\n", 2);
    if (plain) {
        /* Decrypted bodies are copies: head, extra and plaintext in one write. */
        struct buf out;
        buf_init(&out);
        buf_append(&out, cache_entry_head(e), e->head_len);
        buf_append(&out, extra, n);
        if (!r->is_head)
            buf_append(&out, plain, plain_len);
        conn_write_copy(r->c, out.data, out.len);
        buf_free(&out);
        free(plain);
    } else {
        conn_write_entry(r->c, e, extra, n, !r->is_head);
    }
    met_request_done(r->c->w->metrics, r->met, stored_status(e), r->c->met_head_ns);
    conn_request_done(r->c);
    return true;
}

static bool stale_usable(const struct req *r)
{
    return r->stale && util_now_ms() < r->stale->stale_until_ms;
}

/* Serves the expired entry kept for stale-if-error; false when it does not
 * open (the caller answers the error instead). */
static bool serve_stale(struct req *r)
{
    struct cache_entry *e = r->stale;
    r->stale = NULL;
    release_fill(r);
    bool ok = serve_entry(r, e, "X-Cache-Status: STALE\r\n", false, util_now_ms());
    cache_entry_release(&e);
    return ok;
}

/* 502 when the integration could not be reached or answered garbage, 504
 * when it did not answer within timeout_ms: API Gateway's messages. */
static void respond_integration_failure(struct req *r, int status)
{
    if (status == 504)
        req_respond_json(r, 504, "Endpoint request timed out", NULL);
    else
        req_respond_json(r, 502, "Internal server error", NULL);
}

/* ================= the integration call ================= */

static void on_up_head(void *ud, int status, const struct up_header *h, size_t n,
                       int64_t content_length);
static int on_up_data(void *ud, const char *data, size_t len);
static void on_up_done(void *ud, enum up_result result);

static size_t on_up_send(void *ud, char *buf, size_t max, bool *eof);

static const struct up_callbacks up_cb = {
    .on_head = on_up_head, .on_data = on_up_data, .on_send = on_up_send, .on_done = on_up_done};

/* Streamed request body: hands over what arrived; none yet pauses sending
 * until req_body_more. */
static size_t on_up_send(void *ud, char *buf, size_t max, bool *eof)
{
    struct req *r = ud;
    size_t avail = r->body.len - r->body_sent;
    size_t n = GATE_MIN(avail, max);
    if (n)
        memcpy(buf, r->body.data + r->body_sent, n);
    r->body_sent += n;
    if (r->body_sent == r->body.len) {
        buf_reset(&r->body); /* all sent: reuse the memory for what comes next */
        r->body_sent = 0;
    }
    *eof = n == 0 && r->body_done;
    return n;
}

void req_body_more(struct req *r)
{
    if (r->up)
        up_resume_send(r->up);
}

bool req_body_streamable(struct req *r)
{
    struct route_match m;
    int rc = route_match(r->c->rt->routes, r->hr.host, r->hr.host_len, r->hr.method,
                         r->hr.method_len, r->hr.path, r->hr.path_len, &m);
    return rc == ROUTE_OK && m.method->cfg->integration.type == CFG_INTEGRATION_HTTP_PROXY &&
           !m.settings->caching_enabled;
}

/* True for request headers that must not reach the integration. */
static bool skip_request_header(const struct req *r, const struct http_header *h,
                                const struct http_header *conn_hdr)
{
    if (http_is_hop_by_hop(h->name, h->name_len))
        return true;
    if (conn_hdr && http_connection_lists(conn_hdr->value, conn_hdr->value_len, h->name,
                                          h->name_len))
        return true;
    static const char *const own[] = {"host", "content-length", "expect", "x-forwarded-for",
                                      "x-forwarded-proto"};
    for (size_t i = 0; i < GATE_ARRAY_LEN(own); i++)
        if (str_ieq_c(h->name, h->name_len, own[i]))
            return true;
    return false;
}

static void build_upstream_headers(struct req *r)
{
    const struct http_header *conn_hdr =
        http_find_header(r->hr.headers, r->hr.num_headers, "connection");
    if (r->up_headers_cap < r->hr.num_headers + 2) {
        free(r->up_headers);
        r->up_headers_cap = r->hr.num_headers + 2;
        r->up_headers = xmalloc(r->up_headers_cap * sizeof(*r->up_headers));
    }
    size_t n = 0;
    for (size_t i = 0; i < r->hr.num_headers; i++) {
        const struct http_header *h = &r->hr.headers[i];
        if (skip_request_header(r, h, conn_hdr))
            continue;
        r->up_headers[n++] = (struct up_header){h->name, h->name_len, h->value, h->value_len};
    }
    /* X-Forwarded-For: the client's chain plus the peer we saw. */
    size_t xl = 0;
    const char *xff = find_header(r, "x-forwarded-for", &xl);
    size_t xn = 0;
    if (xff) {
        xn = copy_bounded(r->xff, sizeof(r->xff), 0, xff, xl);
        xn = copy_bounded(r->xff, sizeof(r->xff), xn, ", ", 2);
    }
    xn = copy_bounded(r->xff, sizeof(r->xff), xn, r->c->peer, strlen(r->c->peer));
    r->up_headers[n++] = (struct up_header){"X-Forwarded-For", 15, r->xff, xn};
    r->up_headers[n++] = (struct up_header){"X-Forwarded-Proto", 17, "http", 4};
    r->n_up_headers = n;
}

static void fetch(struct req *r)
{
    if (r->mode == REQ_MISS || r->mode == REQ_EXPIRED || r->mode == REQ_REFRESH)
        count_miss(r);
    route_build_url(&r->m, r->hr.query, r->hr.query_len, &r->url);
    build_upstream_headers(r);
    char method[32];
    copy_bounded(method, sizeof(method), 0, r->hr.method, r->hr.method_len);
    struct up_request ur = {
        .method = method,
        .url = r->url.data,
        .headers = r->up_headers,
        .n_headers = r->n_up_headers,
        .body = r->hr.body_kind != HTTP_BODY_NONE ? (r->body.data ? r->body.data : "") : NULL,
        .body_len = r->body.len,
        .timeout_ms = r->m.method->cfg->integration.timeout_ms,
        .body_stream = r->body_streaming,
        .stream_len = r->hr.body_kind == HTTP_BODY_LENGTH ? (int64_t)r->hr.content_length : -1,
    };
    if (r->body_streaming)
        ur.body = NULL;
    r->met_up_ns = met_now_ns();
    if (r->cache) /* what the answer may be stored under in L2 (tier_store) */
        r->l2_generation = atomic_load(&r->cache->l2_generation);
    r->up = up_start(r->c->w->up, &ur, &up_cb, r);
    if (!r->up) {
        release_fill(r);
        req_respond_json(r, 502, "Internal server error: integration could not be started", NULL);
    }
}

/* TTL in milliseconds for an answer, 0 when it must not be stored.
 * honor_origin_cache_control follows CloudFront: s-maxage, then max-age,
 * then Expires, else default_ttl; clamped to [min_ttl, max_ttl]. */
static int64_t answer_ttl_ms(const struct route_settings *st, const struct up_header *h,
                             size_t n)
{
    if (!st->honor_origin_cache_control)
        return (int64_t)st->ttl * 1000;
    struct http_cache_control cc = {-1, -1, false, false, false};
    int64_t expires = -1, date = -1;
    bool has_freshness = false;
    for (size_t i = 0; i < n; i++) {
        if (str_ieq_c(h[i].name, h[i].name_len, "cache-control"))
            http_parse_cache_control(h[i].value, h[i].value_len, &cc);
        else if (str_ieq_c(h[i].name, h[i].name_len, "expires"))
            expires = http_parse_date(h[i].value, h[i].value_len), has_freshness = true;
        else if (str_ieq_c(h[i].name, h[i].name_len, "date"))
            date = http_parse_date(h[i].value, h[i].value_len);
    }
    /* RFC 9111 §3: a shared cache stores neither no-store nor private answers;
     * no-cache would need revalidation on every use, which we do not do. */
    if (cc.no_store || cc.private_ || cc.no_cache)
        return 0;
    int64_t ttl;
    if (cc.s_maxage >= 0)
        ttl = cc.s_maxage;
    else if (cc.max_age >= 0)
        ttl = cc.max_age;
    else if (has_freshness) {
        /* An invalid Expires means "already expired" (RFC 9111 §5.3). */
        int64_t base = date >= 0 ? date : util_wall_ms() / 1000;
        ttl = expires >= 0 && expires > base ? expires - base : 0;
    } else
        return (int64_t)st->default_ttl * 1000;
    if (ttl < st->min_ttl)
        ttl = st->min_ttl;
    if (ttl > st->max_ttl)
        ttl = st->max_ttl;
    return ttl * 1000;
}

/* Response headers that gatecache does not pass on or store: hop-by-hop, the
 * ones named by Connection, framing (re-done by us), and the ones we set. */
static bool skip_response_header(const struct up_header *h, const struct up_header *conn_hdr)
{
    if (http_is_hop_by_hop(h->name, h->name_len))
        return true;
    if (conn_hdr && http_connection_lists(conn_hdr->value, conn_hdr->value_len, h->name,
                                          h->name_len))
        return true;
    return str_ieq_c(h->name, h->name_len, "content-length") ||
           str_ieq_c(h->name, h->name_len, "age") ||
           str_ieq_c(h->name, h->name_len, "x-cache-status");
}

static void on_up_head(void *ud, int status, const struct up_header *h, size_t n,
                       int64_t content_length)
{
    struct req *r = ud;
    struct conn *c = r->c;
    r->status = status;
    if (status >= 500 && stale_usable(r)) {
        up_cancel(&r->up);
        if (!serve_stale(r))
            req_respond_json(r, 502, "Internal server error", NULL);
        return;
    }
    const struct route_settings *st = r->m.settings;
    bool cacheable_mode = r->mode == REQ_MISS || r->mode == REQ_REFRESH || r->mode == REQ_EXPIRED;
    r->ttl_ms = cacheable_mode ? answer_ttl_ms(st, h, n) : 0;
    r->storable = cacheable_mode && status >= 200 && status < 300 && !r->is_head &&
                  r->ttl_ms > 0 &&
                  (content_length < 0 || (uint64_t)content_length <= st->max_cached_response_bytes);

    const struct up_header *conn_hdr = NULL;
    for (size_t i = 0; i < n; i++)
        if (str_ieq_c(h[i].name, h[i].name_len, "connection"))
            conn_hdr = &h[i];
    struct buf *sh = &r->store_head;
    append_status_line(sh, status);
    size_t tag_off = 0, tag_len = 0;
    for (size_t i = 0; i < n; i++) {
        if (skip_response_header(&h[i], conn_hdr))
            continue;
        buf_append(sh, h[i].name, h[i].name_len);
        buf_append_str(sh, ": ");
        if (str_ieq_c(h[i].name, h[i].name_len, "cache-tag")) {
            tag_off = sh->len;
            tag_len = h[i].value_len;
        }
        buf_append(sh, h[i].value, h[i].value_len);
        buf_append_str(sh, "\r\n");
    }
    size_t common_len = sh->len;

    /* Framing to the client (RFC 9112 §6). */
    /* Held: the first body bytes (or the end) go out with it in one write,
     * one system call less per miss; and an answer that breaks off before
     * any body byte can still become a clean 502. */
    struct buf *out = &r->held_head;
    buf_append(out, sh->data, common_len);
    bool no_body = r->is_head || status == 204 || status == 304 || status < 200;
    if (content_length >= 0 && (status != 204 && status >= 200))
        append_content_length(out, (uint64_t)content_length);
    else if (!no_body && r->hr.minor_version >= 1) {
        buf_append_str(out, "Transfer-Encoding: chunked\r\n");
        r->chunked_out = true;
    } else if (!no_body) {
        c->keep_alive = false; /* HTTP/1.0: the end of the body is the close */
    }
    append_cache_headers(r, out, cache_status_line(r->mode));
    buf_append_str(out, "\r\n");
    r->head_sent = true;
    /* An offset, not a pointer: store_head grows again before the store. */
    r->tags_off = tag_off;
    r->tags_len = tag_len;
}

/* Writes the held head (if still held) and bufs in one writev. */
static void write_out(struct req *r, uv_buf_t *bufs, unsigned n)
{
    uv_buf_t all[4];
    unsigned k = 0;
    if (r->held_head.len > 0)
        all[k++] = uv_buf_init(r->held_head.data, (unsigned)r->held_head.len);
    for (unsigned i = 0; i < n; i++)
        all[k++] = bufs[i];
    conn_write_copyv(r->c, all, k);
    buf_reset(&r->held_head);
}

static int on_up_data(void *ud, const char *data, size_t len)
{
    struct req *r = ud;
    struct conn *c = r->c;
    if (r->storable) {
        if (r->store_body.len + len > r->m.settings->max_cached_response_bytes) {
            r->storable = false; /* too large to cache: stream it through */
            buf_free(&r->store_body);
        } else {
            buf_append(&r->store_body, data, len);
        }
    }
    if (r->is_head || len == 0)
        return UP_DATA_OK;
    if (r->chunked_out) {
        char hdr[24];
        uv_buf_t b[3] = {uv_buf_init(hdr, (unsigned)http_chunk_header(hdr, len)),
                         uv_buf_init((char *)data, (unsigned)len), uv_buf_init("\r\n", 2)};
        write_out(r, b, 3);
    } else {
        uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
        write_out(r, &b, 1);
    }
    if (conn_write_queue(c) > 1024 * 1024) {
        /* The client reads slower than the integration sends: hold the
         * integration until the queue drains (on_write resumes it). */
        r->upstream_paused = true;
        return UP_DATA_PAUSE;
    }
    return UP_DATA_OK;
}

void req_write_drained(struct req *r)
{
    r->upstream_paused = false;
    if (r->up)
        up_resume(r->up);
}

static void store_answer(struct req *r)
{
    struct buf *sh = &r->store_head;
    append_content_length(sh, r->store_body.len);
    int64_t now = util_now_ms();
    char method[16];
    copy_bounded(method, sizeof(method), 0, r->hr.method, r->hr.method_len);
    struct cache_entry_init init = {
        .key = r->key.data,
        .key_len = r->key.len,
        .hash = r->hash,
        .method = method,
        .path = r->m.path,
        .path_len = r->m.path_len,
        .head = sh->data,
        .head_len = sh->len,
        .body = r->store_body.data ? r->store_body.data : "",
        .body_len = r->store_body.len,
        .tags = r->tags_len ? sh->data + r->tags_off : NULL,
        .tags_len = r->tags_len,
        .stored_ms = now,
        .expires_ms = now + r->ttl_ms,
        .stale_until_ms = now + r->ttl_ms + (int64_t)r->m.settings->stale_if_error_seconds * 1000,
    };
    const struct srv_runtime *rt = r->c->rt;
    bool encrypt = r->m.settings->data_encrypted && rt->has_encryption_key;
    if (encrypt) {
        init.body = NULL; /* sealed straight into the entry */
        init.body_len = r->store_body.len + CRY_AEAD_OVERHEAD;
    }
    struct cache_entry *e = cache_entry_new(&init);
    if (!e)
        return; /* no memory for it: the answer simply is not cached */
    if (encrypt) {
        if (!cry_aead_seal(rt->encryption_key, r->key.data, r->key.len,
                           r->store_body.data ? r->store_body.data : "", r->store_body.len,
                           (uint8_t *)cache_entry_body_mut(e))) {
            cache_entry_release(&e);
            return;
        }
        e->flags |= CACHE_ENTRY_ENCRYPTED;
    }
    tier_store(r->c->w->l2, r->cache, r->l2_generation, e, now);
    cache_store_put(r->cache->store, e, now); /* takes the ref */
}

/* The seeds' PUT /projects/{id}/members: after a 2xx answer, drop every key
 * variant of the listed entries, with this request's path parameters. */
static void invalidate_after_write(struct req *r)
{
    const struct route_method *rm = r->m.method;
    if (rm->n_invalidates == 0 || r->status < 200 || r->status >= 300)
        return;
    struct srv_stage_cache *sc = srv_runtime_cache(r->c->rt, r->m.api_index, r->m.stage_index);
    struct buf path;
    buf_init(&path);
    for (size_t i = 0; i < rm->n_invalidates; i++) {
        buf_reset(&path);
        if (route_fill_invalidation(&rm->invalidates[i], &r->m, &path)) {
            met_invalidation(r->c->w->metrics, r->met, MET_INV_WRITE);
            count_invalidations(r, sc,
                                cache_store_invalidate_method_path(
                                    sc->store, rm->invalidates[i].method, path.data, path.len));
            tier_method_path_invalidated(sc, rm->invalidates[i].method, path.data, path.len);
        }
    }
    buf_free(&path);
}

static void on_up_done(void *ud, enum up_result result)
{
    struct req *r = ud;
    struct conn *c = r->c;
    r->up = NULL;
    met_integration_done(c->w->metrics, r->met, r->met_up_ns);
    if (result == UP_OK && r->head_sent) {
        uv_buf_t last = uv_buf_init("0\r\n\r\n", 5);
        write_out(r, &last, r->chunked_out ? 1 : 0);
        if (r->storable)
            store_answer(r);
        else if (r->mode == REQ_REFRESH && r->status >= 200 && r->status < 300)
            /* The fresh answer cannot be stored (too large, no-store): the
             * old entry must not outlive the refresh that replaced it. */
            cache_store_remove(r->cache->store, r->key.data, r->key.len, r->hash);
        if (r->mode == REQ_REFRESH && r->status >= 200 && r->status < 300)
            /* Other nodes drop their copy (after Redis holds the new one or
             * none): an authorised max-age=0 refreshes the whole cluster. */
            tier_key_invalidated(r->cache, r->key.data, r->key.len, r->hash, r->m.path,
                                 r->m.path_len);
        invalidate_after_write(r);
        release_fill(r);
        met_request_done(c->w->metrics, r->met, r->status, c->met_head_ns);
        conn_request_done(c);
        return;
    }
    if (!r->head_sent || r->held_head.len > 0) {
        /* Nothing reached the client yet: a clean error (or stale) answer. */
        buf_reset(&r->held_head);
        r->head_sent = false;
        r->chunked_out = false;
        int status = result == UP_ERR_TIMEOUT ? 504 : 502;
        release_fill_status(r, status); /* waiters answer the same, or stale */
        if (stale_usable(r) && serve_stale(r))
            return;
        respond_integration_failure(r, status);
        return;
    }
    /* The answer broke off after its head went out: the only honest signal
     * left is closing the connection without the final chunk. Nothing stored. */
    release_fill(r);
    c->keep_alive = false;
    met_request_done(c->w->metrics, r->met, r->status, c->met_head_ns);
    conn_request_done(c);
}

/* ================= cache decisions ================= */

/* Cache-Control: max-age=0 from the client asks to refresh the entry. */
static bool wants_refresh(struct req *r)
{
    size_t len;
    const char *v = find_header(r, "cache-control", &len);
    if (!v)
        return false;
    struct http_cache_control cc = {-1, -1, false, false, false};
    http_parse_cache_control(v, len, &cc);
    return cc.max_age == 0;
}

/* Authorization or Cookie make an answer personal: never shared through
 * the cache unless the header is part of the key or the method says so. A
 * SigV4 signature that came with Cache-Control: max-age=0 is there to ask
 * for the invalidation, not to identify a user to the integration, so it
 * does not count (product contract, section 5). */
static bool has_credentials(struct req *r)
{
    const struct route_method *rm = r->m.method;
    if (r->m.settings->cache_authorized_requests)
        return false;
    size_t len;
    if (!rm->keys_authorization && find_header(r, "authorization", &len) && !r->invalidation_sig)
        return true;
    if (!rm->keys_cookie && find_header(r, "cookie", &len))
        return true;
    return false;
}

/* May this request replace its cache entry? A valid SigV4 signature of a
 * configured identity whose policy allows execute-api:InvalidateCache on
 * arn:aws:execute-api:REGION:ACCOUNT:API/STAGE/METHOD/PATH. */
static bool invalidation_authorized(struct req *r)
{
    struct auth_request ar = {
        .method = r->hr.method,
        .method_len = r->hr.method_len,
        .path = r->hr.path,
        .path_len = r->hr.path_len,
        .query = r->hr.query,
        .query_len = r->hr.query_len,
        .headers = r->hr.headers,
        .n_headers = r->hr.num_headers,
        .body = r->body.data,
        .body_len = r->body.len,
    };
    if (!auth_sigv4_present(&ar))
        return false;
    r->invalidation_sig = true;
    const struct cfg *cfg = r->c->rt->cfg;
    const struct cfg_identity *who = NULL;
    char why[160] = "";
    enum auth_result res = auth_sigv4_verify(cfg, &ar, "execute-api", cfg->server.region,
                                             util_wall_ms() / 1000, &who, why, sizeof(why));
    if (res != AUTH_OK) {
        log_info("cache invalidation refused: %s (%s)", auth_result_name(res), why);
        return false;
    }
    char method[16];
    snprintf(method, sizeof(method), "%.*s", (int)r->hr.method_len, r->hr.method);
    struct buf path, arn;
    buf_init(&path);
    buf_init(&arn);
    buf_append(&path, r->m.path, r->m.path_len);
    auth_execute_api_arn(&arn, cfg->server.region, cfg->server.account_id, r->m.api->cfg->id,
                         r->m.stage->name, method, path.data);
    bool allowed =
        auth_policy_evaluate(who->policy, "execute-api:InvalidateCache", arn.data) == AUTH_ALLOW;
    if (!allowed)
        log_info("cache invalidation refused: %s may not execute-api:InvalidateCache on %s",
                 who->name, arn.data);
    buf_free(&path);
    buf_free(&arn);
    return allowed;
}

#define WAIT_GRACE_MS 1000u

static void lookup_or_fill(struct req *r);

void req_resume_waiter(struct req *r, bool timed_out, int failed_status)
{
    struct conn *c = r->c;
    if (timed_out)
        wrk_wait_remove(c->w, r);
    conn_stop_timer(c);
    r->waited = true;
    if (failed_status && !timed_out) {
        /* The fill we waited for could not reach the origin: asking again at
         * once would only multiply the load on an origin in trouble (and
         * double the client's wait on a timeout). Answer as the filler did,
         * or from a stale entry when stale-if-error allows it. */
        bool fresh = false;
        cache_entry_release(&r->stale);
        r->stale = cache_store_get(r->cache->store, r->key.data, r->key.len, r->hash,
                                   util_now_ms(), &fresh);
        r->mode = REQ_MISS;
        if (r->stale && stale_usable(r) && serve_stale(r))
            return;
        cache_entry_release(&r->stale);
        respond_integration_failure(r, failed_status);
        return;
    }
    lookup_or_fill(r);
}

/* ================= the shared tier (L2) ================= */

/* An answer from L2 for this request's key: into L1, then to the client as
 * a hit. False when it cannot be used (stage invalidated since the lookup
 * began, malformed, another key, expired, does not open). */
static bool serve_from_l2(struct req *r, const char *data, size_t len)
{
    struct srv_stage_cache *sc = r->cache;
    if (!tier_stage_readable(sc) || atomic_load(&sc->l2_generation) != r->l2_generation)
        return false;
    int64_t now = util_now_ms();
    struct cache_entry *e =
        l2_entry_decode(data, len, r->key.data, r->key.len, r->hash, now, util_wall_ms());
    if (!e || e->expires_ms <= now) {
        cache_entry_release(&e);
        return false;
    }
    /* An invalidation that began since the lookup may have missed this
     * entry (it was in Redis, on its way here): then it does not go in. */
    cache_store_put(sc->store, cache_entry_ref(e), now);
    if (cache_store_invalidations(sc->store) != r->l2_invalidations) {
        cache_store_remove(sc->store, e->key, e->key_len, e->hash);
        cache_entry_release(&e);
        return false;
    }
    cache_entry_release(&r->stale);
    release_fill(r); /* waiters find it in L1 */
    bool ok = serve_entry(r, e, "X-Cache-Status: HIT\r\n", true, now);
    cache_entry_release(&e);
    return ok;
}

static void on_l2_answer(void *arg, enum l2_result res, const char *data, size_t len)
{
    struct req *r = arg;
    r->l2 = NULL;
    tier_count_lookup((int)res);
    if (res == L2_HIT && serve_from_l2(r, data, len))
        return;
    fetch(r);
}

/* An in-process miss asks the shared tier before the integration. True when
 * the lookup is under way: its callback goes on with the request. Redis
 * unavailable or slow answers within command_timeout_ms, then the
 * integration is called as without a shared tier. */
static bool ask_l2(struct req *r)
{
    struct l2_client *l2 = r->c->w->l2;
    if (!l2)
        return false;
    char k[TIER_KEY_MAX];
    size_t n = 0;
    if (tier_stage_readable(r->cache)) {
        r->l2_generation = atomic_load(&r->cache->l2_generation);
        r->l2_invalidations = cache_store_invalidations(r->cache->store);
        n = tier_entry_key(k, r->cache, r->l2_generation, r->hash);
    }
    r->l2 = n ? l2_get(l2, k, n, on_l2_answer, r) : NULL;
    if (!r->l2)
        tier_count_lookup(-1);
    return r->l2 != NULL;
}

static void lookup_or_fill(struct req *r)
{
    bool fresh = false;
    int64_t now = util_now_ms();
    struct cache_entry *e =
        cache_store_get(r->cache->store, r->key.data, r->key.len, r->hash, now, &fresh);
    if (e && fresh) {
        if (serve_entry(r, e, "X-Cache-Status: HIT\r\n", true, now)) {
            cache_entry_release(&e);
            return;
        }
        cache_entry_release(&e); /* failed to open: removed, now a miss */
    }
    cache_entry_release(&r->stale);
    r->stale = e;
    r->mode = e ? REQ_EXPIRED : REQ_MISS;
    if (!r->waited) {
        if (!cache_store_claim_fill(r->cache->store, r->key.data, r->key.len, r->hash,
                                    r->c->w->id)) {
            /* Another request is fetching this key: wait for its answer.
             * The filler ends within the integration timeout; the grace
             * covers the wake-up's trip between loops, so a waiter does not
             * give up in the very tick the filler's own timeout fires (then
             * it would call the origin again). A safety net, not a path. */
            cache_entry_release(&r->stale);
            wrk_wait_add(r->c->w, r);
            conn_arm_timer(r->c, r->m.method->cfg->integration.timeout_ms + WAIT_GRACE_MS);
            return;
        }
        r->filler = true;
    }
    if (!ask_l2(r))
        fetch(r);
}

static void build_key(struct req *r)
{
    struct route_request_view rv = {
        .method = r->hr.method,
        .method_len = r->hr.method_len,
        .query = r->hr.query,
        .query_len = r->hr.query_len,
        .header = view_header_nth,
        .ctx = r,
        .body = r->body.data,
        .body_len = r->body.len,
    };
    route_build_key(&r->m, &rv, &r->key);
    r->hash = cache_hash(r->key.data, r->key.len);
}

static void serve_cached_method(struct req *r)
{
    const struct route_settings *st = r->m.settings;
    if (wants_refresh(r)) {
        if (!st->require_authorization_for_cache_control || invalidation_authorized(r)) {
            if (has_credentials(r)) {
                r->mode = REQ_BYPASS;
                fetch(r);
                return;
            }
            r->mode = REQ_REFRESH;
            count_invalidations(r, r->cache, 1);
            met_invalidation(r->c->w->metrics, r->met, MET_INV_MAX_AGE);
            build_key(r);
            fetch(r);
            return;
        }
        switch (st->unauthorized_strategy) {
        case CFG_UNAUTH_FAIL_WITH_403:
            req_respond_json(r, 403, "User is not authorized to invalidate the cache",
                             "AccessDeniedException");
            return;
        case CFG_UNAUTH_SUCCEED_WITH_RESPONSE_HEADER:
            r->warn_unauthorized = true;
            break;
        case CFG_UNAUTH_SUCCEED_WITHOUT_RESPONSE_HEADER:
            break;
        }
    }
    if (has_credentials(r)) {
        r->mode = REQ_BYPASS;
        fetch(r);
        return;
    }
    build_key(r);
    lookup_or_fill(r);
}

static bool api_key_ok(struct req *r)
{
    size_t len;
    const char *v = find_header(r, "x-api-key", &len);
    if (!v)
        return false;
    const struct cfg *cfg = r->c->rt->cfg;
    bool ok = false;
    for (size_t i = 0; i < cfg->n_api_keys; i++)
        ok |= str_secret_eq(v, len, cfg->api_keys[i].value, strlen(cfg->api_keys[i].value));
    return ok;
}

/* The metrics series of a matched request. met_series_of hashes and compares
 * four label strings; a worker mostly sees the same few routes again, so it
 * remembers recent answers. Series never move (metrics.h): reuse is safe. */
static struct met_series *route_series(struct req *r)
{
    struct wrk *w = r->c->w;
    uintptr_t slot = ((uintptr_t)r->m.method >> 4) ^ r->m.stage_index;
    struct wrk_series_memo *memo = &w->series_memo[slot & (WRK_SERIES_MEMO - 1)];
    uint64_t version = r->c->rt->version;
    if (memo->rt_version != version || memo->method != r->m.method ||
        memo->stage_index != r->m.stage_index) {
        memo->series = met_series_of(w->metrics, &r->m);
        memo->rt_version = version;
        memo->method = r->m.method;
        memo->stage_index = r->m.stage_index;
    }
    return memo->series;
}

void req_dispatch(struct req *r)
{
    struct conn *c = r->c;
    r->is_head = str_eq_c(r->hr.method, r->hr.method_len, "HEAD");
    int rc = route_match(c->rt->routes, r->hr.host, r->hr.host_len, r->hr.method,
                         r->hr.method_len, r->hr.path, r->hr.path_len, &r->m);
    r->met = rc == ROUTE_OK ? route_series(r) : met_series_of(c->w->metrics, NULL);
    switch (rc) {
    case ROUTE_OK:
        break;
    case ROUTE_NO_API:
        req_respond_json(r, 404, "Not Found", "NotFoundException");
        return;
    case ROUTE_NO_STAGE:
        req_respond_json(r, 403, "Forbidden", "ForbiddenException");
        return;
    case ROUTE_BAD_PATH:
        req_respond_json(r, 400, "Bad Request", "BadRequestException");
        return;
    default:
        req_respond_json(r, 403, "Missing Authentication Token",
                         "MissingAuthenticationTokenException");
        return;
    }
    const struct cfg_method *cm = r->m.method->cfg;
    if (cm->api_key_required && !api_key_ok(r)) {
        req_respond_json(r, 403, "Forbidden", "ForbiddenException");
        return;
    }
    if (cm->integration.type == CFG_INTEGRATION_MOCK) {
        respond_mock(r);
        return;
    }
    r->cache = srv_runtime_cache(c->rt, r->m.api_index, r->m.stage_index);
    if (!r->m.settings->caching_enabled) {
        r->mode = REQ_PLAIN;
        fetch(r);
        return;
    }
    serve_cached_method(r);
}
