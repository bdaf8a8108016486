/*
 * policy — IAM identity-policy validation and evaluation for the one question
 * gatecache asks: may this identity do ACTION on RESOURCE? (IAM User Guide,
 * "Policy evaluation logic": an explicit Deny wins, then an Allow, else the
 * request is implicitly denied.)
 *
 * Supported: Version, Id, Statement (list or single object), Sid, Effect,
 * Action/NotAction, Resource/NotResource (string or list), '*' and '?'
 * wildcards. Not supported, failing closed: Condition, Principal/NotPrincipal
 * and policy variables (a "${...}" is matched literally). Evaluation never
 * trusts that validation ran: any oddity makes an Allow not apply and a Deny
 * apply.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "auth/auth_int.h"

/* ================= wildcards ================= */

static unsigned char fold(unsigned char c, bool ci)
{
    return (ci && c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

bool auth_wildcard_match(const char *pattern, const char *s, bool case_insensitive)
{
    /* Greedy scan remembering the last '*': linear in practice, no recursion,
     * so a hostile pattern cannot blow the stack. '?' is one byte. */
    const char *p = pattern, *star = NULL, *resume = NULL;
    while (*s) {
        if (*p == '*') {
            star = p++;
            resume = s;
        } else if (*p != '\0' && (*p == '?' || fold((unsigned char)*p, case_insensitive) ==
                                                   fold((unsigned char)*s, case_insensitive))) {
            p++;
            s++;
        } else if (star != NULL) {
            p = star + 1;
            s = ++resume;
        } else {
            return false;
        }
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

/* ================= evaluation ================= */

enum match { MATCH_NO = 0, MATCH_YES, MATCH_UNKNOWN };

/* A string or a non-empty list of strings; anything else is UNKNOWN. */
static enum match match_values(const json_t *v, const char *s, bool ci)
{
    if (json_is_string(v))
        return auth_wildcard_match(json_string_value(v), s, ci) ? MATCH_YES : MATCH_NO;
    if (!json_is_array(v) || json_array_size(v) == 0)
        return MATCH_UNKNOWN;
    enum match m = MATCH_NO;
    size_t i;
    const json_t *e;
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e))
            return MATCH_UNKNOWN;
        if (auth_wildcard_match(json_string_value(e), s, ci))
            m = MATCH_YES;
    }
    return m;
}

/* Action/NotAction or Resource/NotResource: exactly one must be there. */
static enum match match_pair(const json_t *st, const char *pos_key, const char *neg_key,
                             const char *s, bool ci)
{
    const json_t *pos = json_object_get(st, pos_key);
    const json_t *neg = json_object_get(st, neg_key);
    if ((pos == NULL) == (neg == NULL))
        return MATCH_UNKNOWN;
    if (pos != NULL)
        return match_values(pos, s, ci);
    enum match m = match_values(neg, s, ci);
    return m == MATCH_UNKNOWN ? m : (m == MATCH_YES ? MATCH_NO : MATCH_YES);
}

static enum match statement_applies(const json_t *st, const char *action, const char *resource)
{
    if (!json_is_object(st))
        return MATCH_UNKNOWN;
    /* IAM User Guide, "IAM JSON policy elements": IAM action names are case
     * insensitive, ARNs are case sensitive. */
    enum match a = match_pair(st, "Action", "NotAction", action, true);
    enum match r = match_pair(st, "Resource", "NotResource", resource, false);
    if (a == MATCH_NO || r == MATCH_NO)
        return MATCH_NO;
    if (json_object_get(st, "Condition") || json_object_get(st, "Principal") ||
        json_object_get(st, "NotPrincipal"))
        return MATCH_UNKNOWN;
    return (a == MATCH_YES && r == MATCH_YES) ? MATCH_YES : MATCH_UNKNOWN;
}

enum auth_decision auth_policy_evaluate(const json_t *policy, const char *action,
                                        const char *resource)
{
    if (!json_is_object(policy) || action == NULL || resource == NULL)
        return AUTH_DENY_IMPLICIT;
    const json_t *stmts = json_object_get(policy, "Statement");
    size_t n = json_is_array(stmts) ? json_array_size(stmts) : (json_is_object(stmts) ? 1 : 0);
    bool allow = false, deny = false;
    for (size_t i = 0; i < n; i++) {
        const json_t *st = json_is_array(stmts) ? json_array_get(stmts, i) : stmts;
        const char *effect = json_string_value(json_object_get(st, "Effect"));
        if (effect == NULL)
            continue;
        enum match m = statement_applies(st, action, resource);
        if (strcmp(effect, "Deny") == 0 && m != MATCH_NO)
            deny = true;
        else if (strcmp(effect, "Allow") == 0 && m == MATCH_YES)
            allow = true;
    }
    if (deny)
        return AUTH_DENY_EXPLICIT;
    return allow ? AUTH_ALLOW : AUTH_DENY_IMPLICIT;
}

/* ================= validation ================= */

static int fail(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t err_len, const char *fmt, ...)
{
    if (err != NULL && err_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
        /* Messages quote keys from the document: keep them printable. */
        for (char *p = err; *p; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
                *p = '?';
    }
    return -1;
}

static bool valid_action(const char *s)
{
    /* "*" or "service:action-pattern" (IAM User Guide, "IAM JSON policy
     * elements: Action": a service prefix, a colon, an action name). */
    if (strcmp(s, "*") == 0)
        return true;
    const char *colon = strchr(s, ':');
    if (colon == NULL || colon == s || colon[1] == '\0')
        return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= ' ' || (unsigned char)*p > 0x7e)
            return false;
    return true;
}

static bool valid_resource(const char *s)
{
    return strcmp(s, "*") == 0 || strncmp(s, "arn:", 4) == 0;
}

/* A string or a non-empty list of strings, each passing `ok`. */
static int validate_values(const json_t *v, const char *loc, const char *key,
                           bool (*ok)(const char *), const char *what, char *err, size_t err_len)
{
    if (json_is_string(v)) {
        if (!ok(json_string_value(v)))
            return fail(err, err_len, "%s.%s must be %s", loc, key, what);
        return 0;
    }
    if (!json_is_array(v) || json_array_size(v) == 0)
        return fail(err, err_len, "%s.%s must be a string or a non-empty list of strings", loc,
                    key);
    size_t i;
    const json_t *e;
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e))
            return fail(err, err_len, "%s.%s[%zu] must be a string", loc, key, i);
        if (!ok(json_string_value(e)))
            return fail(err, err_len, "%s.%s[%zu] must be %s", loc, key, i, what);
    }
    return 0;
}

static int validate_pair(const json_t *st, const char *loc, const char *pos_key,
                         const char *neg_key, bool (*ok)(const char *), const char *what, char *err,
                         size_t err_len)
{
    const json_t *pos = json_object_get(st, pos_key);
    const json_t *neg = json_object_get(st, neg_key);
    if (pos && neg)
        return fail(err, err_len, "%s has both %s and %s", loc, pos_key, neg_key);
    if (!pos && !neg)
        return fail(err, err_len, "%s needs %s or %s", loc, pos_key, neg_key);
    return pos ? validate_values(pos, loc, pos_key, ok, what, err, err_len)
               : validate_values(neg, loc, neg_key, ok, what, err, err_len);
}

static int validate_sid(const json_t *sid, const char *loc, char *err, size_t err_len)
{
    /* IAM accepts ASCII letters and digits in a Sid of an IAM policy. */
    if (!json_is_string(sid))
        return fail(err, err_len, "%s.Sid must be a string", loc);
    for (const char *p = json_string_value(sid); *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
            return fail(err, err_len, "%s.Sid must be letters and digits only", loc);
    return 0;
}

static int validate_statement(const json_t *st, const char *loc, char *err, size_t err_len)
{
    static const char *const known[] = {"Sid",      "Effect",      "Action",   "NotAction",
                                        "Resource", "NotResource", "Condition"};
    if (!json_is_object(st))
        return fail(err, err_len, "%s must be an object", loc);
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)st, key, v)
    {
        bool ok = false;
        for (size_t i = 0; i < GATE_ARRAY_LEN(known); i++)
            ok = ok || strcmp(key, known[i]) == 0;
        if (strcmp(key, "Principal") == 0 || strcmp(key, "NotPrincipal") == 0)
            return fail(err, err_len, "%s.%s is not allowed in an identity policy", loc, key);
        if (!ok)
            return fail(err, err_len, "%s: unknown key '%.40s'", loc, key);
    }
    const json_t *sid = json_object_get(st, "Sid");
    if (sid && validate_sid(sid, loc, err, err_len) != 0)
        return -1;
    const char *effect = json_string_value(json_object_get(st, "Effect"));
    if (effect == NULL)
        return fail(err, err_len, "%s.Effect is required (Allow or Deny)", loc);
    if (strcmp(effect, "Allow") != 0 && strcmp(effect, "Deny") != 0)
        return fail(err, err_len, "%s.Effect must be Allow or Deny", loc);
    if (validate_pair(st, loc, "Action", "NotAction", valid_action, "\"*\" or \"service:action\"",
                      err, err_len) != 0)
        return -1;
    if (validate_pair(st, loc, "Resource", "NotResource", valid_resource, "\"*\" or an ARN", err,
                      err_len) != 0)
        return -1;
    const json_t *cond = json_object_get(st, "Condition");
    if (cond && !json_is_object(cond))
        return fail(err, err_len, "%s.Condition must be an object", loc);
    return 0;
}

/* Sids must be unique within a policy. */
static int check_unique_sids(const json_t *stmts, char *err, size_t err_len)
{
    size_t n = json_array_size(stmts);
    for (size_t i = 0; i < n; i++) {
        const char *a = json_string_value(json_object_get(json_array_get(stmts, i), "Sid"));
        for (size_t j = 0; a && j < i; j++) {
            const char *b = json_string_value(json_object_get(json_array_get(stmts, j), "Sid"));
            if (b && strcmp(a, b) == 0)
                return fail(err, err_len, "Statement[%zu].Sid duplicates Statement[%zu].Sid", i, j);
        }
    }
    return 0;
}

int auth_policy_validate(const json_t *policy, char *err, size_t err_len)
{
    if (!json_is_object(policy))
        return fail(err, err_len, "policy must be an object");
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)policy, key, v)
    {
        if (strcmp(key, "Version") != 0 && strcmp(key, "Id") != 0 && strcmp(key, "Statement") != 0)
            return fail(err, err_len, "unknown key '%.40s' (Version, Id, Statement)", key);
    }
    const json_t *ver = json_object_get(policy, "Version");
    if (ver && !(json_is_string(ver) && (strcmp(json_string_value(ver), "2012-10-17") == 0 ||
                                         strcmp(json_string_value(ver), "2008-10-17") == 0)))
        return fail(err, err_len, "Version must be \"2012-10-17\" or \"2008-10-17\"");
    const json_t *id = json_object_get(policy, "Id");
    if (id && !json_is_string(id))
        return fail(err, err_len, "Id must be a string");
    const json_t *stmts = json_object_get(policy, "Statement");
    if (stmts == NULL)
        return fail(err, err_len, "Statement is required");
    if (json_is_object(stmts))
        return validate_statement(stmts, "Statement", err, err_len);
    if (!json_is_array(stmts))
        return fail(err, err_len, "Statement must be an object or a list of objects");
    size_t i;
    const json_t *st;
    json_array_foreach(stmts, i, st)
    {
        char loc[40];
        snprintf(loc, sizeof(loc), "Statement[%zu]", i);
        if (validate_statement(st, loc, err, err_len) != 0)
            return -1;
    }
    return check_unique_sids(stmts, err, err_len);
}

/* ================= resources ================= */

void auth_execute_api_arn(struct buf *out, const char *region, const char *account, const char *api,
                          const char *stage, const char *method, const char *path)
{
    /* API Gateway developer guide, "Resource format of permissions for executing
     * the API": arn:aws:execute-api:region:account-id:api-id/stage/METHOD/resource-path,
     * the resource path written without its leading slash. */
    buf_appendf(out, "arn:aws:execute-api:%s:%s:%s/%s/%s/", region, account, api, stage, method);
    if (path == NULL)
        path = "";
    if (path[0] == '/')
        path++;
    buf_append_str(out, path);
}
