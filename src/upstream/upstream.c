/*
 * upstream — the front of the module: checks each request once, then sends
 * http:// integrations to our own HTTP/1.1 client (h1.c) and https:// ones to
 * libcurl (curl.c). Both backends live on the worker's loop; the curl one is
 * created on the first request that needs it, so a gateway whose integrations
 * are all plain HTTP never starts a curl multi handle.
 */
#include "upstream/up_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/util.h"

#define UP_FRONT_MAGIC 0x75704631u

struct up_client {
    uint32_t magic;
    uv_loop_t *loop;         /* borrowed */
    struct h1_client *h1;    /* owned: h1_client_free */
    struct upc_client *curl; /* owned: upc_client_free; NULL until needed */
    bool prefer_curl;
};

/* ================= field syntax (shared with the backends) ================= */

/* RFC 9110 §5.6.2 tchar, as a table: every header name of every integration
 * call goes through it. */
static const bool up_tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
    ['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1,
};

bool up__is_token(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!up_tchar[(unsigned char)s[i]])
            return false;
    return true;
}

/* RFC 9110 §5.5: CR, LF and NUL are never valid in a field value. */
bool up__is_field_value(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
            return false;
    return true;
}

/* Methods are case-sensitive (RFC 9110 §9.1). */
bool up__is_method(const char *m, const char *name)
{
    return strcmp(m, name) == 0;
}

/* ================= checks ================= */

static bool is_https(const char *url)
{
    return strncasecmp(url, "https://", 8) == 0;
}

static bool headers_ok(const struct up_request *req)
{
    if (req->n_headers > 0 && !req->headers)
        return false;
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct up_header *h = &req->headers[i];
        if (!up__is_token(h->name, h->name_len) || !up__is_field_value(h->value, h->value_len))
            return false;
    }
    return true;
}

static bool request_ok(const struct up_request *req, const struct up_callbacks *cb)
{
    const char *m = req->method ? req->method : "GET";
    if (!req->url || req->timeout_ms == 0 || !up__is_token(m, strlen(m)))
        return false;
    if (strncasecmp(req->url, "http://", 7) != 0 && !is_https(req->url))
        return false;
    if (req->body_stream && !cb->on_send)
        return false;
    return headers_ok(req);
}

/* ================= public API ================= */

int up_global_init(void)
{
    return upc_global_init();
}

void up_global_cleanup(void)
{
    upc_global_cleanup();
}

struct up_client *up_client_new(uv_loop_t *loop)
{
    struct up_client *c = xcalloc(1, sizeof(*c));
    c->magic = UP_FRONT_MAGIC;
    c->loop = loop;
    c->h1 = h1_client_new(loop);
    return c;
}

void up_client_prefer_curl(struct up_client *c, bool yes)
{
    GATE_ASSERT(c && c->magic == UP_FRONT_MAGIC);
    c->prefer_curl = yes;
}

/* Each backend releases its memory from its own close callbacks and never
 * looks back at the front, so the front can go at once. */
void up_client_free(struct up_client **cp)
{
    struct up_client *c = *cp;
    if (!c)
        return;
    *cp = NULL;
    GATE_ASSERT(c->magic == UP_FRONT_MAGIC);
    h1_client_free(&c->h1);
    upc_client_free(&c->curl);
    c->magic = 0;
    free(c);
}

struct up_transfer *up_start(struct up_client *c, const struct up_request *req,
                             const struct up_callbacks *cb, void *ud)
{
    GATE_ASSERT(c && c->magic == UP_FRONT_MAGIC);
    GATE_ASSERT(cb && cb->on_head && cb->on_data && cb->on_done);
    if (!req || !request_ok(req, cb))
        return NULL;
    if (!c->prefer_curl && !is_https(req->url))
        return h1_start(c->h1, req, cb, ud);
    if (!c->curl && !(c->curl = upc_client_new(c->loop)))
        return NULL;
    return upc_start(c->curl, req, cb, ud);
}

void up_cancel(struct up_transfer **tp)
{
    struct up_transfer *t = *tp;
    if (!t)
        return;
    *tp = NULL;
    if (t->backend == UP_BACKEND_H1)
        h1_cancel(t);
    else
        upc_cancel(t);
}

void up_resume(struct up_transfer *t)
{
    GATE_ASSERT(t);
    if (t->backend == UP_BACKEND_H1)
        h1_resume(t);
    else
        upc_resume(t);
}

void up_resume_send(struct up_transfer *t)
{
    GATE_ASSERT(t);
    if (t->backend == UP_BACKEND_H1)
        h1_resume_send(t);
    else
        upc_resume_send(t);
}

size_t up_client_active(const struct up_client *c)
{
    GATE_ASSERT(c && c->magic == UP_FRONT_MAGIC);
    return h1_client_active(c->h1) + (c->curl ? upc_client_active(c->curl) : 0);
}
