/*
 * admin/aws_common.c — what the API Gateway and CloudFront subsets share:
 * dispatch on the path (/restapis... vs /2020-05-31/...), SigV4 verification
 * against the configured identities, IAM checks, and each service's answer
 * and error shapes (aws-wire.md §1.1, §1.2).
 *
 * Order, as AWS does it: the signature is verified before anything else, so
 * an unsigned caller learns nothing about apis, stages or distributions; the
 * policy is checked once the call (action + resource ARN) is known; only then
 * are ids looked up. The bearer token of the native API is not accepted here:
 * AWS clients never send it, and a token carries no IAM policy.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_int.h"
#include "auth/auth.h"
#include "crypto/crypto.h"

#define JSON_TYPE "application/json"
#define XML_TYPE "text/xml"
#define CF_NS "http://cloudfront.amazonaws.com/doc/2020-05-31/"
#define APIGW_NS ":http://internal.amazon.com/coral/com.amazonaws.backplane.controlplane/"
#define CF_VERSION "2020-05-31"

/* ================= dispatch ================= */

static bool path_has_prefix(const struct admin_request *rq, const char *prefix, bool whole_seg)
{
    size_t n = strlen(prefix);
    if (rq->path_len < n || memcmp(rq->path, prefix, n) != 0)
        return false;
    return !whole_seg || rq->path_len == n || rq->path[n] == '/';
}

static bool is_cloudfront(const struct admin_request *rq)
{
    return path_has_prefix(rq, "/" CF_VERSION, true);
}

bool admin__aws_is_route(const struct admin_request *rq)
{
    return path_has_prefix(rq, "/restapis", true) || is_cloudfront(rq);
}

/* Percent-decodes one segment (aws-wire.md §1: clients encode path parameters).
 * NULL when an escape is malformed or decodes to NUL. */
static char *decode_segment(const char *s, size_t len)
{
    struct buf b;
    buf_init(&b);
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            buf_append_char(&b, s[i]);
            continue;
        }
        int hi = i + 2 < len ? str_hex_digit(s[i + 1]) : -1;
        int lo = i + 2 < len ? str_hex_digit(s[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi | lo) == 0) {
            buf_free(&b);
            return NULL;
        }
        buf_append_char(&b, (char)(hi * 16 + lo));
        i += 2;
    }
    buf_append_char(&b, '\0');
    return buf_steal(&b, NULL);
}

/* Splits the path into decoded segments; n_segs = MAX + 1 when it is not routable
 * (too many segments, an empty one, a bad escape). */
static void split_segments(struct admin__aws_call *c)
{
    const char *p = c->rq->path;
    size_t len = c->rq->path_len, i = 0;
    c->n_segs = 0;
    while (i < len) {
        size_t start = ++i;
        while (i < len && p[i] != '/')
            i++;
        char *seg = (i > start && c->n_segs < ADMIN_AWS_MAX_SEGS)
                        ? decode_segment(p + start, i - start)
                        : NULL;
        if (!seg) {
            c->n_segs = ADMIN_AWS_MAX_SEGS + 1;
            return;
        }
        c->seg[c->n_segs++] = seg;
    }
}

char *admin__query_param(const struct admin_request *rq, const char *name)
{
    size_t nl = strlen(name), i = 0;
    while (rq->query && i < rq->query_len) {
        size_t end = i;
        while (end < rq->query_len && rq->query[end] != '&')
            end++;
        if (end - i > nl && memcmp(rq->query + i, name, nl) == 0 && rq->query[i + nl] == '=')
            return xstrndup(rq->query + i + nl + 1, end - i - nl - 1);
        i = end + 1;
    }
    return NULL;
}

/* ================= answers ================= */

static void set_request_id(struct admin__aws_call *c)
{
    uint8_t r[16];
    char hex[33];
    if (!cry_random(r, sizeof(r))) {
        uint64_t v = ((uint64_t)util_wall_ms() << 16) ^ ++c->ctx->seq;
        memset(r, 0, sizeof(r));
        memcpy(r, &v, sizeof(v));
    }
    r[6] = (uint8_t)((r[6] & 0x0f) | 0x40); /* RFC 9562 version 4 */
    r[8] = (uint8_t)((r[8] & 0x3f) | 0x80);
    cry_hex(r, sizeof(r), hex);
    snprintf(c->request_id, sizeof(c->request_id), "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8,
             hex + 12, hex + 16, hex + 20);
}

void admin__apigw_json(struct admin__aws_call *c, int status, json_t *doc)
{
    if (doc) {
        admin__json(c->rs, status, doc);
    } else {
        c->rs->status = status;
        c->rs->content_type = JSON_TYPE;
        buf_reset(&c->rs->body);
    }
    admin__add_header(c->rs, "x-amzn-RequestId", c->request_id);
}

void admin__apigw_error(struct admin__aws_call *c, int status, const char *type, const char *msg)
{
    admin__error(c->rs, status, msg);
    admin__add_header(c->rs, "x-amzn-RequestId", c->request_id);
    /* botocore and the JS SDK take the code from this header, up to the first ':'. */
    struct buf t;
    buf_init(&t);
    buf_appendf(&t, "%s%s", type, APIGW_NS);
    admin__add_header(c->rs, "x-amzn-ErrorType", t.data);
    buf_free(&t);
}

/* Appends s with the XML special characters escaped (and control bytes dropped). */
static void xml_escape(struct buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            buf_append_str(b, "&amp;");
            break;
        case '<':
            buf_append_str(b, "&lt;");
            break;
        case '>':
            buf_append_str(b, "&gt;");
            break;
        case '"':
            buf_append_str(b, "&quot;");
            break;
        default:
            if ((unsigned char)*s >= 0x20 && *s != 0x7f)
                buf_append_char(b, *s);
        }
    }
}

void admin__cf_xml(struct admin__aws_call *c, int status, const struct buf *xml)
{
    struct admin_response *rs = c->rs;
    rs->status = status;
    rs->content_type = XML_TYPE;
    buf_reset(&rs->body);
    buf_append_str(&rs->body, "<?xml version=\"1.0\"?>\n");
    buf_append(&rs->body, xml->data, xml->len);
    admin__add_header(rs, "x-amz-request-id", c->request_id);
}

void admin__cf_error(struct admin__aws_call *c, int status, const char *code, const char *msg)
{
    struct buf x;
    buf_init(&x);
    buf_append_str(&x, "<ErrorResponse xmlns=\"" CF_NS "\"><Error><Type>Sender</Type><Code>");
    xml_escape(&x, code);
    buf_append_str(&x, "</Code><Message>");
    xml_escape(&x, msg);
    buf_append_str(&x, "</Message></Error><RequestId>");
    buf_append_str(&x, c->request_id);
    buf_append_str(&x, "</RequestId></ErrorResponse>");
    admin__cf_xml(c, status, &x);
    buf_free(&x);
}

/* ================= authentication ================= */

/* API Gateway's messages for the results of auth_sigv4_verify (aws-wire.md §1.1). */
static void apigw_auth_error(struct admin__aws_call *c, enum auth_result r, const char *why,
                             const char *when)
{
    switch (r) {
    case AUTH_NOT_SIGNED:
        admin__apigw_error(c, 403, "MissingAuthenticationTokenException",
                           "Missing Authentication Token");
        return;
    case AUTH_UNKNOWN_KEY:
        admin__apigw_error(c, 403, "UnrecognizedClientException",
                           "The security token included in the request is invalid.");
        return;
    case AUTH_MALFORMED:
    case AUTH_MISSING_HOST:
        admin__apigw_error(c, 403, "IncompleteSignatureException", why);
        return;
    case AUTH_EXPIRED:
        admin__apigw_error(c, 403, "InvalidSignatureException", when);
        return;
    case AUTH_BAD_SCOPE:
        admin__apigw_error(c, 403, "InvalidSignatureException", why);
        return;
    default:
        admin__apigw_error(c, 403, "InvalidSignatureException",
                           "The request signature we calculated does not match the signature "
                           "you provided. Check your AWS Secret Access Key and signing method. "
                           "Consult the service documentation for details.");
    }
}

static void cf_auth_error(struct admin__aws_call *c, enum auth_result r, const char *why,
                          const char *when)
{
    switch (r) {
    case AUTH_NOT_SIGNED:
        admin__cf_error(c, 403, "MissingAuthenticationToken",
                        "Request is missing Authentication Token");
        return;
    case AUTH_UNKNOWN_KEY:
        admin__cf_error(c, 403, "InvalidClientTokenId",
                        "The security token included in the request is invalid.");
        return;
    case AUTH_MALFORMED:
    case AUTH_MISSING_HOST:
        admin__cf_error(c, 403, "IncompleteSignature", why);
        return;
    case AUTH_EXPIRED:
        admin__cf_error(c, 403, "SignatureDoesNotMatch", when);
        return;
    case AUTH_BAD_SCOPE:
        admin__cf_error(c, 403, "SignatureDoesNotMatch", why);
        return;
    default:
        admin__cf_error(c, 403, "SignatureDoesNotMatch",
                        "The request signature we calculated does not match the signature you "
                        "provided. Check your AWS Secret Access Key and signing method. Consult "
                        "the service documentation for details.");
    }
}

static void fmt_amz_date(int64_t t, char out[17])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

/* "Signature expired: D is now earlier than N-15 (N - 15 min.)", as API Gateway words it. */
static void expiry_message(const struct admin__aws_call *c, const char *why, char *out,
                           size_t len)
{
    const struct http_header *h =
        http_find_header(c->rq->headers, c->rq->n_headers, "X-Amz-Date");
    char now[17], edge[17];
    bool future = strstr(why, "not yet") != NULL;
    int64_t lim = AUTH_MAX_SKEW_SEC / 60;
    fmt_amz_date(c->rq->now_sec, now);
    fmt_amz_date(c->rq->now_sec + (future ? 1 : -1) * AUTH_MAX_SKEW_SEC, edge);
    int dl = h ? (int)GATE_MIN(h->value_len, 32) : 0;
    const char *d = h ? h->value : "";
    if (future)
        snprintf(out, len, "Signature not yet current: %.*s is still later than %s (%s + %d min.)",
                 dl, d, edge, now, (int)lim);
    else
        snprintf(out, len, "Signature expired: %.*s is now earlier than %s (%s - %d min.)", dl, d,
                 edge, now, (int)lim);
}

/* Verifies the signature for the call's service. CloudFront is signed for us-east-1 by
 * AWS, but the CLI signs with its configured region when --endpoint-url is used
 * (aws-wire.md §1): both us-east-1 and the server's region are accepted. */
static bool authenticate(struct admin__aws_call *c, bool cloudfront)
{
    const struct admin_request *rq = c->rq;
    struct auth_request ar = {
        .method = rq->method,
        .method_len = rq->method_len,
        .path = rq->path,
        .path_len = rq->path_len,
        .query = rq->query,
        .query_len = rq->query_len,
        .headers = rq->headers,
        .n_headers = rq->n_headers,
        .body = rq->body,
        .body_len = rq->body_len,
    };
    const char *region = c->cfg->server.region;
    char why[200] = "";
    enum auth_result r = auth_sigv4_verify(c->cfg, &ar, cloudfront ? "cloudfront" : "apigateway",
                                           cloudfront ? "us-east-1" : region, rq->now_sec,
                                           &c->who, why, sizeof(why));
    if (r == AUTH_BAD_SCOPE && cloudfront && strcmp(region, "us-east-1") != 0)
        r = auth_sigv4_verify(c->cfg, &ar, "cloudfront", region, rq->now_sec, &c->who, why,
                              sizeof(why));
    if (r == AUTH_OK)
        return true;
    log_info("admin: %s call refused: %s (%s)", cloudfront ? "CloudFront" : "API Gateway",
             auth_result_name(r), why);
    char when[200] = "";
    if (r == AUTH_EXPIRED)
        expiry_message(c, why, when, sizeof(when));
    if (cloudfront)
        cf_auth_error(c, r, why, when);
    else
        apigw_auth_error(c, r, why, when);
    return false;
}

bool admin__aws_allowed(struct admin__aws_call *c, const char *action, const char *const *arns,
                        size_t n_arns, bool cloudfront)
{
    bool allowed = false, denied = false;
    for (size_t i = 0; i < n_arns; i++) {
        enum auth_decision d = auth_policy_evaluate(c->who->policy, action, arns[i]);
        allowed |= d == AUTH_ALLOW;
        denied |= d == AUTH_DENY_EXPLICIT;
    }
    if (allowed && !denied)
        return true;
    struct buf m;
    buf_init(&m);
    buf_appendf(&m,
                "User: arn:aws:iam::%s:user/%s is not authorized to perform: %s on resource: %s",
                c->cfg->server.account_id, c->who->name, action, n_arns ? arns[0] : "*");
    if (denied)
        buf_append_str(&m, " with an explicit deny");
    log_info("admin: %s", m.data);
    if (cloudfront)
        admin__cf_error(c, 403, "AccessDenied", m.data);
    else
        admin__apigw_error(c, 403, "AccessDeniedException", m.data);
    buf_free(&m);
    return false;
}

/* ================= entry point ================= */

void admin__aws_handle(struct admin__ctx *ctx, const struct admin_request *rq,
                       struct admin_response *rs)
{
    struct admin__aws_call c = {.ctx = ctx, .rq = rq, .rs = rs};
    bool cloudfront = is_cloudfront(rq);
    set_request_id(&c);
    struct srv_runtime *rt = srv_current_runtime();
    if (!rt) {
        if (cloudfront)
            admin__cf_error(&c, 503, "ServiceUnavailable", "the gateway is not running");
        else
            admin__apigw_error(&c, 503, "ServiceUnavailableException",
                               "the gateway is not running");
        return;
    }
    c.cfg = rt->cfg;
    split_segments(&c);
    if (authenticate(&c, cloudfront)) {
        if (cloudfront)
            admin__cf_route(&c);
        else
            admin__apigw_route(&c);
    }
    for (size_t i = 0; i < c.n_segs && i < ADMIN_AWS_MAX_SEGS; i++)
        free(c.seg[i]);
    srv_runtime_release(&rt);
}
