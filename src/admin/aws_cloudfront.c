/*
 * admin/aws_cloudfront.c — CloudFront's CreateInvalidation, GetInvalidation
 * and ListInvalidations (rest-xml, aws-wire.md §5) for the stages of the
 * running config: a stage's distribution_id (default "{api}-{stage}") names it.
 *
 * Invalidation is synchronous (path walk, or an O(1) flush for "/" "*"): the
 * create answer says InProgress as CloudFront's does, every later read says
 * Completed. The last ADMIN_CF_HISTORY invalidations of each distribution are
 * kept in memory, keyed by distribution id, so they survive reloads and live
 * changes but not a restart. CallerReference makes creation idempotent while
 * the earlier batch is in that history.
 *
 * The XML reader accepts exactly what InvalidationBatch needs: elements,
 * attributes (skipped), comments, an XML declaration, the predefined entities
 * and character references. DOCTYPE and CDATA are refused: no entity
 * expansion, nothing to configure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/admin_int.h"

#define CF_NS "http://cloudfront.amazonaws.com/doc/2020-05-31/"
#define XML_MAX_DEPTH 8
#define XML_MAX_NAME 64
#define CALLER_REF_MAX 128
#define LIST_DEFAULT 100
#define LIST_MAX 1000

/* ================= XML reader ================= */

struct xml {
    const char *p, *end;
    char stack[XML_MAX_DEPTH][XML_MAX_NAME + 1]; /* open element names, prefix stripped */
    int depth;
    struct buf text; /* decoded text of the innermost element */
    struct admin__cf_batch *out;
    bool has_quantity, seen_root;
    uint64_t quantity;
    const char *code, *msg; /* first error */
    int status;
};

static int xml_fail(struct xml *x, const char *code, const char *msg)
{
    if (!x->code) {
        x->code = code;
        x->msg = msg;
    }
    return -1;
}

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static bool starts(const struct xml *x, const char *lit)
{
    size_t n = strlen(lit);
    return (size_t)(x->end - x->p) >= n && memcmp(x->p, lit, n) == 0;
}

/* Skips past `lit`; -1 when it never comes. */
static int skip_past(struct xml *x, const char *lit)
{
    size_t n = strlen(lit);
    for (const char *q = x->p; (size_t)(x->end - q) >= n; q++)
        if (memcmp(q, lit, n) == 0) {
            x->p = q + n;
            return 0;
        }
    return xml_fail(x, "MalformedInput", "the body is not well-formed XML");
}

static void put_utf8(struct buf *b, uint32_t cp)
{
    if (cp < 0x80) {
        buf_append_char(b, (char)cp);
    } else if (cp < 0x800) {
        buf_append_char(b, (char)(0xc0 | (cp >> 6)));
        buf_append_char(b, (char)(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
        buf_append_char(b, (char)(0xe0 | (cp >> 12)));
        buf_append_char(b, (char)(0x80 | ((cp >> 6) & 0x3f)));
        buf_append_char(b, (char)(0x80 | (cp & 0x3f)));
    } else {
        buf_append_char(b, (char)(0xf0 | (cp >> 18)));
        buf_append_char(b, (char)(0x80 | ((cp >> 12) & 0x3f)));
        buf_append_char(b, (char)(0x80 | ((cp >> 6) & 0x3f)));
        buf_append_char(b, (char)(0x80 | (cp & 0x3f)));
    }
}

/* One entity at x->p ('&'), decoded into x->text. */
static int read_entity(struct xml *x)
{
    static const struct {
        const char *name;
        char ch;
    } named[] = {{"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&quot;", '"'}, {"&apos;", '\''}};
    for (size_t i = 0; i < GATE_ARRAY_LEN(named); i++)
        if (starts(x, named[i].name)) {
            buf_append_char(&x->text, named[i].ch);
            x->p += strlen(named[i].name);
            return 0;
        }
    if (!starts(x, "&#"))
        return xml_fail(x, "MalformedInput", "the body holds an unknown XML entity");
    const char *q = x->p + 2;
    bool hex = q < x->end && *q == 'x';
    q += hex;
    uint32_t cp = 0;
    int digits = 0;
    for (; q < x->end && *q != ';' && digits < 8; q++, digits++) {
        int v = (*q >= '0' && *q <= '9')                ? *q - '0'
                : hex && (*q | 0x20) >= 'a' && (*q | 0x20) <= 'f' ? (*q | 0x20) - 'a' + 10
                                                                  : -1;
        if (v < 0)
            break;
        cp = cp * (hex ? 16 : 10) + (uint32_t)v;
    }
    if (q >= x->end || *q != ';' || digits == 0 || cp == 0 || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return xml_fail(x, "MalformedInput", "the body holds a bad XML character reference");
    put_utf8(&x->text, cp);
    x->p = q + 1;
    return 0;
}

/* Element name at x->p, prefix ("ns:") dropped, into name. */
static int read_name(struct xml *x, char name[XML_MAX_NAME + 1])
{
    size_t n = 0;
    while (x->p < x->end && !is_space(*x->p) && *x->p != '>' && *x->p != '/') {
        if (*x->p == ':') {
            n = 0; /* keep the local part */
        } else {
            if (n == XML_MAX_NAME || *x->p == '<' || *x->p == '=' || *x->p == '"' || *x->p == '\'')
                return xml_fail(x, "MalformedInput", "the body holds a bad XML element name");
            name[n++] = *x->p;
        }
        x->p++;
    }
    name[n] = '\0';
    return n ? 0 : xml_fail(x, "MalformedInput", "the body holds a bad XML element name");
}

/* Attributes up to '>' or "/>"; sets *empty for "/>". */
static int skip_attributes(struct xml *x, bool *empty)
{
    while (x->p < x->end) {
        char ch = *x->p;
        if (ch == '>') {
            x->p++;
            *empty = false;
            return 0;
        }
        if (ch == '/' && x->p + 1 < x->end && x->p[1] == '>') {
            x->p += 2;
            *empty = true;
            return 0;
        }
        if (ch == '"' || ch == '\'') {
            const char *q = memchr(x->p + 1, ch, (size_t)(x->end - x->p - 1));
            if (!q)
                break;
            x->p = q + 1;
            continue;
        }
        if (ch == '<')
            break;
        x->p++;
    }
    return xml_fail(x, "MalformedInput", "the body is not well-formed XML");
}

static bool path_is(const struct xml *x, const char *const *names, int n)
{
    if (x->depth != n)
        return false;
    for (int i = 0; i < n; i++)
        if (strcmp(x->stack[i], names[i]) != 0)
            return false;
    return true;
}

/* The innermost element closes: take its text when it is one we want. */
static int on_close(struct xml *x)
{
    static const char *const ref[] = {"InvalidationBatch", "CallerReference"};
    static const char *const qty[] = {"InvalidationBatch", "Paths", "Quantity"};
    static const char *const path[] = {"InvalidationBatch", "Paths", "Items", "Path"};
    const char *t = x->text.data ? x->text.data : "";
    size_t len = x->text.len;
    if (path_is(x, ref, 2)) {
        if (x->out->caller_ref || len == 0 || len > CALLER_REF_MAX || memchr(t, '\0', len))
            return xml_fail(x, "InvalidArgument",
                            "CallerReference must be given once, 1..128 characters");
        x->out->caller_ref = xstrndup(t, len);
    } else if (path_is(x, qty, 3)) {
        if (x->has_quantity || !str_to_u64(t, len, &x->quantity))
            return xml_fail(x, "InvalidArgument", "Quantity must be given once, an integer");
        x->has_quantity = true;
    } else if (path_is(x, path, 4)) {
        const char *err = memchr(t, '\0', len) ? "a path holds a NUL byte"
                                               : admin__inval_check_path(t, len);
        if (err)
            return xml_fail(x, "InvalidArgument", err);
        if (x->out->n_paths == ADMIN_MAX_PATHS) {
            x->status = 413;
            return xml_fail(x, "BatchTooLarge", "too many paths (at most 3000 per call)");
        }
        x->out->paths = xrealloc(x->out->paths, (x->out->n_paths + 1) * sizeof(char *));
        x->out->paths[x->out->n_paths++] = xstrndup(t, len);
    }
    return 0;
}

static int read_tag(struct xml *x)
{
    if (starts(x, "<?"))
        return skip_past(x, "?>");
    if (starts(x, "<!--"))
        return skip_past(x, "-->");
    if (starts(x, "<!"))
        return xml_fail(x, "MalformedInput", "DOCTYPE and CDATA are not accepted");
    char name[XML_MAX_NAME + 1];
    if (starts(x, "</")) {
        x->p += 2;
        if (read_name(x, name) != 0)
            return -1;
        while (x->p < x->end && is_space(*x->p))
            x->p++;
        if (x->depth == 0 || x->p >= x->end || *x->p != '>' ||
            strcmp(name, x->stack[x->depth - 1]) != 0)
            return xml_fail(x, "MalformedInput", "the body is not well-formed XML");
        x->p++;
        int rc = on_close(x);
        x->depth--;
        buf_reset(&x->text);
        return rc;
    }
    x->p++;
    if (read_name(x, name) != 0)
        return -1;
    if (x->depth == XML_MAX_DEPTH)
        return xml_fail(x, "MalformedInput", "the XML is nested too deeply");
    if (x->depth == 0 && (x->seen_root || strcmp(name, "InvalidationBatch") != 0))
        return xml_fail(x, "MalformedInput", "the body must be one InvalidationBatch element");
    x->seen_root = true;
    bool empty;
    if (skip_attributes(x, &empty) != 0)
        return -1;
    memcpy(x->stack[x->depth++], name, sizeof(name));
    buf_reset(&x->text);
    if (!empty)
        return 0;
    int rc = on_close(x);
    x->depth--;
    return rc;
}

static int read_text(struct xml *x)
{
    if (*x->p == '&')
        return read_entity(x);
    if (x->depth == 0 && !is_space(*x->p))
        return xml_fail(x, "MalformedInput", "text outside the InvalidationBatch element");
    if (x->text.len > ADMIN_MAX_ITEM)
        return xml_fail(x, "InvalidArgument", "a value is longer than 8192 bytes");
    buf_append_char(&x->text, *x->p++);
    return 0;
}

static int check_batch(struct xml *x)
{
    if (x->depth != 0 || !x->seen_root)
        return xml_fail(x, "MalformedInput", "the body is not well-formed XML");
    if (!x->out->caller_ref)
        return xml_fail(x, "InvalidArgument", "CallerReference is required");
    if (!x->has_quantity)
        return xml_fail(x, "InvalidArgument", "Paths.Quantity is required");
    if (x->quantity != x->out->n_paths)
        return xml_fail(x, "InconsistentQuantities",
                        "Paths.Quantity does not match the number of Path items");
    if (x->out->n_paths == 0)
        return xml_fail(x, "InvalidArgument", "at least one path is required");
    return 0;
}

int admin__cf_batch_parse(const char *body, size_t len, struct admin__cf_batch *out,
                          const char **code, const char **msg)
{
    memset(out, 0, sizeof(*out));
    struct xml x = {.p = body, .end = body + len, .out = out, .status = 400};
    buf_init(&x.text);
    while (x.p < x.end && is_space(*x.p))
        x.p++;
    int rc = 0;
    if (x.p == x.end) {
        rc = xml_fail(&x, "MissingBody", "the request body is missing");
    } else {
        while (rc == 0 && x.p < x.end)
            rc = *x.p == '<' ? read_tag(&x) : read_text(&x);
        if (rc == 0)
            rc = check_batch(&x);
    }
    buf_free(&x.text);
    if (rc != 0) {
        admin__cf_batch_free(out);
        *code = x.code;
        *msg = x.msg;
        return -1;
    }
    return 0;
}

void admin__cf_batch_free(struct admin__cf_batch *b)
{
    free(b->caller_ref);
    for (size_t i = 0; i < b->n_paths; i++)
        free(b->paths[i]);
    free(b->paths);
    memset(b, 0, sizeof(*b));
}

/* ================= history ================= */

static struct admin__cf_dist *dist_of(struct admin__ctx *ctx, const char *id)
{
    for (size_t i = 0; i < ctx->n_dists; i++)
        if (strcmp(ctx->dists[i].id, id) == 0)
            return &ctx->dists[i];
    ctx->dists = xrealloc(ctx->dists, (ctx->n_dists + 1) * sizeof(*ctx->dists));
    struct admin__cf_dist *d = &ctx->dists[ctx->n_dists++];
    memset(d, 0, sizeof(*d));
    d->id = xstrdup(id);
    return d;
}

static void inval_free(struct admin__cf_inval *iv)
{
    free(iv->caller_ref);
    for (size_t i = 0; i < iv->n_paths; i++)
        free(iv->paths[i]);
    free(iv->paths);
}

/* Moves the batch into the history (dropping the oldest past ADMIN_CF_HISTORY). */
static struct admin__cf_inval *remember(struct admin__cf_dist *d, struct admin__cf_batch *b,
                                        const char id[16], int64_t now_ms)
{
    if (d->n_items == ADMIN_CF_HISTORY) {
        inval_free(&d->items[0]);
        memmove(d->items, d->items + 1, (d->n_items - 1) * sizeof(*d->items));
        d->n_items--;
    }
    d->items = xrealloc(d->items, (d->n_items + 1) * sizeof(*d->items));
    struct admin__cf_inval *iv = &d->items[d->n_items++];
    memcpy(iv->id, id, 16);
    iv->caller_ref = b->caller_ref;
    iv->paths = b->paths;
    iv->n_paths = b->n_paths;
    iv->create_ms = now_ms;
    memset(b, 0, sizeof(*b));
    return iv;
}

static struct admin__cf_inval *find_ref(struct admin__cf_dist *d, const char *ref)
{
    for (size_t i = 0; i < d->n_items; i++)
        if (strcmp(d->items[i].caller_ref, ref) == 0)
            return &d->items[i];
    return NULL;
}

static bool same_paths(const struct admin__cf_inval *iv, const struct admin__cf_batch *b)
{
    if (iv->n_paths != b->n_paths)
        return false;
    for (size_t i = 0; i < b->n_paths; i++)
        if (strcmp(iv->paths[i], b->paths[i]) != 0)
            return false;
    return true;
}

void admin__aws_free(struct admin__ctx *ctx)
{
    for (size_t i = 0; i < ctx->n_meta; i++) {
        free(ctx->meta[i].api);
        free(ctx->meta[i].stage);
    }
    free(ctx->meta);
    ctx->meta = NULL;
    ctx->n_meta = 0;
    for (size_t i = 0; i < ctx->n_dists; i++) {
        for (size_t j = 0; j < ctx->dists[i].n_items; j++)
            inval_free(&ctx->dists[i].items[j]);
        free(ctx->dists[i].items);
        free(ctx->dists[i].id);
    }
    free(ctx->dists);
    ctx->dists = NULL;
    ctx->n_dists = 0;
}

/* ================= XML answers ================= */

static void xml_text(struct buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '&')
            buf_append_str(b, "&amp;");
        else if (*s == '<')
            buf_append_str(b, "&lt;");
        else if (*s == '>')
            buf_append_str(b, "&gt;");
        else if ((unsigned char)*s < 0x20 || *s == 0x7f)
            buf_appendf(b, "&#%d;", *s);
        else
            buf_append_char(b, *s);
    }
}

/* ISO-8601 UTC with milliseconds: 2026-11-22T03:14:08.243Z */
static void append_time(struct buf *b, int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char s[32];
    gmtime_r(&t, &tm);
    strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
    buf_appendf(b, "%s.%03dZ", s, (int)(ms % 1000));
}

static void invalidation_xml(struct buf *b, const struct admin__cf_inval *iv, const char *status)
{
    buf_appendf(b, "<Invalidation xmlns=\"" CF_NS "\"><Id>%s</Id><Status>%s</Status><CreateTime>",
                iv->id, status);
    append_time(b, iv->create_ms);
    buf_appendf(b, "</CreateTime><InvalidationBatch><Paths><Quantity>%zu</Quantity><Items>",
                iv->n_paths);
    for (size_t i = 0; i < iv->n_paths; i++) {
        buf_append_str(b, "<Path>");
        xml_text(b, iv->paths[i]);
        buf_append_str(b, "</Path>");
    }
    buf_append_str(b, "</Items></Paths><CallerReference>");
    xml_text(b, iv->caller_ref);
    buf_append_str(b, "</CallerReference></InvalidationBatch></Invalidation>");
}

/* ================= handlers ================= */

/* The stage cache a distribution id names in rt, or NULL. */
static struct srv_stage_cache *stage_of(const struct srv_runtime *rt, const char *dist)
{
    for (size_t a = 0; a < rt->cfg->n_apis; a++)
        for (size_t s = 0; s < rt->cfg->apis[a].n_stages; s++)
            if (strcmp(rt->cfg->apis[a].stages[s].distribution_id, dist) == 0)
                return srv_runtime_cache(rt, a, s);
    return NULL;
}

static void created(struct admin__aws_call *c, const char *dist, const struct admin__cf_inval *iv,
                    const char *status)
{
    struct buf x, loc;
    buf_init(&x);
    buf_init(&loc);
    invalidation_xml(&x, iv, status);
    admin__cf_xml(c, 201, &x);
    buf_append_str(&loc, "http://");
    if (c->rq->host)
        buf_append(&loc, c->rq->host, c->rq->host_len);
    buf_appendf(&loc, "/2020-05-31/distribution/%s/invalidation/%s", dist, iv->id);
    admin__add_header(c->rs, "Location", loc.data);
    buf_free(&x);
    buf_free(&loc);
}

static void create_invalidation(struct admin__aws_call *c, const char *dist,
                                struct srv_stage_cache *sc)
{
    struct admin__cf_batch b;
    const char *code, *msg;
    if (admin__cf_batch_parse(c->rq->body ? c->rq->body : "", c->rq->body_len, &b, &code, &msg)) {
        admin__cf_error(c, strcmp(code, "BatchTooLarge") == 0 ? 413 : 400, code, msg);
        return;
    }
    struct admin__cf_dist *d = dist_of(c->ctx, dist);
    const struct admin__cf_inval *old = find_ref(d, b.caller_ref);
    if (old) {
        /* CloudFront: the same reference with the same batch is the same invalidation. */
        if (same_paths(old, &b))
            created(c, dist, old, "Completed");
        else
            admin__cf_error(c, 409, "InvalidationBatchAlreadyExists",
                            "CallerReference was already used for a different batch");
        admin__cf_batch_free(&b);
        return;
    }
    long retry_s;
    if (!admin__invalidation_allowed(c->cfg, sc, "CreateInvalidation", &retry_s)) {
        /* CloudFront's answer when invalidations come faster than it runs them. */
        admin__cf_error(c, 400, "TooManyInvalidationsInProgress",
                        "Processing your request will cause you to exceed the maximum number "
                        "of in-progress invalidations.");
        admin__cf_batch_free(&b);
        return;
    }
    uint64_t removed =
        admin__invalidate_paths(c->ctx, sc, (const char *const *)b.paths, b.n_paths);
    char id[16];
    admin__new_invalidation_id(c->ctx, id);
    log_info("admin: CreateInvalidation %s on %s by %s: %zu paths, %llu entries removed", id, dist,
             c->who->name, b.n_paths, (unsigned long long)removed);
    const struct admin__cf_inval *iv = remember(d, &b, id, util_wall_ms());
    created(c, dist, iv, "InProgress");
}

static void get_invalidation(struct admin__aws_call *c, const char *dist, const char *id)
{
    struct admin__cf_dist *d = dist_of(c->ctx, dist);
    for (size_t i = 0; i < d->n_items; i++) {
        if (strcmp(d->items[i].id, id) != 0)
            continue;
        struct buf x;
        buf_init(&x);
        invalidation_xml(&x, &d->items[i], "Completed");
        admin__cf_xml(c, 200, &x);
        buf_free(&x);
        return;
    }
    admin__cf_error(c, 404, "NoSuchInvalidation", "The specified invalidation does not exist.");
}

static void list_page(struct admin__aws_call *c, const struct admin__cf_dist *d,
                      const char *marker, size_t start, uint64_t max)
{
    /* Newest first: item k of the page is d->items[d->n_items - 1 - (start + k)]. */
    size_t total = d->n_items - start, n = (size_t)GATE_MIN((uint64_t)total, max);
    bool truncated = total > n;
    struct buf x;
    buf_init(&x);
    buf_append_str(&x, "<InvalidationList xmlns=\"" CF_NS "\"><Marker>");
    xml_text(&x, marker ? marker : "");
    buf_appendf(&x, "</Marker>");
    if (truncated)
        buf_appendf(&x, "<NextMarker>%s</NextMarker>", d->items[d->n_items - start - n].id);
    buf_appendf(&x,
                "<MaxItems>%llu</MaxItems><IsTruncated>%s</IsTruncated><Quantity>%zu</Quantity>",
                (unsigned long long)max, truncated ? "true" : "false", n);
    if (n)
        buf_append_str(&x, "<Items>");
    for (size_t k = 0; k < n; k++) {
        const struct admin__cf_inval *iv = &d->items[d->n_items - 1 - (start + k)];
        buf_appendf(&x, "<InvalidationSummary><Id>%s</Id><CreateTime>", iv->id);
        append_time(&x, iv->create_ms);
        buf_append_str(&x, "</CreateTime><Status>Completed</Status></InvalidationSummary>");
    }
    if (n)
        buf_append_str(&x, "</Items>");
    buf_append_str(&x, "</InvalidationList>");
    admin__cf_xml(c, 200, &x);
    buf_free(&x);
}

static void list_invalidations(struct admin__aws_call *c, const char *dist)
{
    struct admin__cf_dist *d = dist_of(c->ctx, dist);
    char *marker = admin__query_param(c->rq, "Marker");
    char *max_s = admin__query_param(c->rq, "MaxItems");
    uint64_t max = LIST_DEFAULT;
    size_t start = 0;
    if (max_s && (!str_to_u64(max_s, strlen(max_s), &max) || max < 1 || max > LIST_MAX)) {
        admin__cf_error(c, 400, "InvalidArgument", "MaxItems must be 1..1000");
        goto out;
    }
    if (marker && *marker) {
        /* The marker is the id of the last item of the previous page. */
        size_t i = 0;
        while (i < d->n_items && strcmp(d->items[d->n_items - 1 - i].id, marker) != 0)
            i++;
        if (i == d->n_items) {
            admin__cf_error(c, 400, "InvalidArgument", "Marker is not an invalidation id");
            goto out;
        }
        start = i + 1;
    }
    list_page(c, d, marker, start, max);
out:
    free(marker);
    free(max_s);
}

/* ================= routing ================= */

void admin__cf_route(struct admin__aws_call *c)
{
    const struct admin_request *rq = c->rq;
    bool get = str_eq_c(rq->method, rq->method_len, "GET") ||
               str_eq_c(rq->method, rq->method_len, "HEAD");
    bool post = str_eq_c(rq->method, rq->method_len, "POST");
    size_t n = c->n_segs;
    if (n > ADMIN_AWS_MAX_SEGS || n < 4 || n > 5 || strcmp(c->seg[1], "distribution") != 0 ||
        strcmp(c->seg[3], "invalidation") != 0) {
        admin__cf_error(c, 404, "NotFound", "gatecache serves only the invalidation calls");
        return;
    }
    const char *action = n == 5 ? (get ? "cloudfront:GetInvalidation" : NULL)
                         : post ? "cloudfront:CreateInvalidation"
                         : get  ? "cloudfront:ListInvalidations"
                                : NULL;
    if (!action) {
        admin__cf_error(c, 400, "InvalidArgument", "this operation is not supported by gatecache");
        return;
    }
    const char *dist = c->seg[2];
    struct buf arn;
    buf_init(&arn);
    buf_appendf(&arn, "arn:aws:cloudfront::%s:distribution/%s", c->cfg->server.account_id, dist);
    const char *arns[1] = {arn.data};
    bool ok = admin__aws_allowed(c, action, arns, 1, true);
    buf_free(&arn);
    if (!ok)
        return;
    struct srv_runtime *rt = srv_current_runtime();
    struct srv_stage_cache *sc = rt ? stage_of(rt, dist) : NULL;
    if (!sc)
        admin__cf_error(c, 404, "NoSuchDistribution", "The specified distribution does not exist.");
    else if (n == 5)
        get_invalidation(c, dist, c->seg[4]);
    else if (post)
        create_invalidation(c, dist, sc);
    else
        list_invalidations(c, dist);
    srv_runtime_release(&rt);
}
