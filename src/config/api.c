/*
 * api — `apis:`: each api's resources (path templates), their methods and
 * integrations, cache key parameters and write-triggered invalidations; stages
 * are delegated to stage.c once the resources are known.
 *
 * Resources are read in two passes: first every template and its method names,
 * then the method bodies, because `invalidates` may name a resource written
 * further down the file.
 *
 * Template rules (docs/config.md): "/" or '/'-separated non-empty segments, no
 * trailing '/'; a segment is literal text or exactly {name} / {name+} with name
 * an identifier; {name+} (greedy) only last; parameter names unique; two
 * templates that differ only in parameter names are duplicates.
 */
#include "config/config_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TIMEOUT_MS_MIN 50
#define TIMEOUT_MS_MAX 300000

static const char *const method_names[] = {"GET",   "HEAD",   "POST",    "PUT",
                                           "PATCH", "DELETE", "OPTIONS", "ANY"};

const char *cfg__method_name(const char *s)
{
    for (size_t i = 0; i < GATE_ARRAY_LEN(method_names); i++)
        if (str_ieq_c(s, strlen(s), method_names[i]))
            return method_names[i];
    return NULL;
}

/* ================= templates ================= */

static bool is_ident(const char *s, size_t len)
{
    if (len == 0 || ('0' <= s[0] && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!(('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') ||
              c == '_'))
            return false;
    }
    return true;
}

/* RFC 3986 §3.3 pchar minus '%'-escapes' validity, which the router compares raw. */
static bool is_pchar(char c)
{
    return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') ||
           (c != '\0' && strchr("-._~!$&'()*+,;=:@%", c) != NULL);
}

/* Iterates the segments of a template: *seg / *len for each; false at the end. */
static bool next_segment(const char **cursor, const char **seg, size_t *len)
{
    const char *p = *cursor;
    if (*p != '/')
        return false;
    p++;
    const char *end = strchr(p, '/');
    *seg = p;
    *len = end ? (size_t)(end - p) : strlen(p);
    *cursor = p + *len;
    return true;
}

/* Parameter name of a {name} / {name+} segment, NULL for a literal. */
static const char *param_of(const char *seg, size_t len, size_t *name_len, bool *greedy)
{
    if (len < 2 || seg[0] != '{' || seg[len - 1] != '}')
        return NULL;
    *greedy = len > 2 && seg[len - 2] == '+';
    *name_len = len - 2 - (*greedy ? 1 : 0);
    return seg + 1;
}

bool cfg__template_has_param(const char *tmpl, const char *name, size_t name_len)
{
    const char *cur = tmpl;
    const char *seg;
    size_t len;
    while (next_segment(&cur, &seg, &len)) {
        size_t nl;
        bool greedy;
        const char *p = param_of(seg, len, &nl, &greedy);
        if (p && nl == name_len && memcmp(p, name, nl) == 0)
            return true;
    }
    return false;
}

/* Checks one segment; returns an error text or NULL. */
static const char *check_segment(const char *tmpl, const char *seg, size_t len, bool last)
{
    if (len == 0)
        return "has an empty path segment";
    size_t nl;
    bool greedy;
    const char *name = param_of(seg, len, &nl, &greedy);
    if (name == NULL) {
        for (size_t i = 0; i < len; i++) {
            if (seg[i] == '{' || seg[i] == '}')
                return "has a segment with braces that is not {name} or {name+}";
            if (!is_pchar(seg[i]))
                return "has a character not allowed in a URL path";
        }
        return NULL;
    }
    if (!is_ident(name, nl))
        return "has a parameter name that is not an identifier (letters, digits, '_')";
    if (greedy && !last)
        return "has a greedy {name+} parameter that is not the last segment";
    /* A name seen earlier in the template is a duplicate. */
    const char *cur = tmpl;
    const char *s2;
    size_t l2;
    while (next_segment(&cur, &s2, &l2) && s2 < seg) {
        size_t nl2;
        bool g2;
        const char *n2 = param_of(s2, l2, &nl2, &g2);
        if (n2 && nl2 == nl && memcmp(n2, name, nl) == 0)
            return "has a duplicate path parameter name";
    }
    return NULL;
}

static bool check_template(struct cfg__ld *ld, const struct cfg__node *key)
{
    const char *t = key->str;
    const char *why = NULL;
    if (strcmp(t, "/") == 0)
        return true;
    if (t[0] != '/')
        why = "must start with '/'";
    else if (t[key->len - 1] == '/')
        why = "must not end with '/'";
    const char *cur = t;
    const char *seg;
    size_t len;
    while (why == NULL && next_segment(&cur, &seg, &len))
        why = check_segment(t, seg, len, *cur == '\0');
    if (why == NULL)
        return true;
    char *q = cfg__quoted(t);
    cfg__err(ld, key, "resource %s %s", q, why);
    free(q);
    return false;
}

/* The template with parameter names erased: "/a/{id}" and "/a/{x}" match the same
 * requests, so they are the same resource. */
static char *template_shape(const char *t)
{
    struct buf b;
    buf_init(&b);
    buf_append_str(&b, "");
    const char *cur = t;
    const char *seg;
    size_t len;
    while (next_segment(&cur, &seg, &len)) {
        size_t nl;
        bool greedy;
        buf_append_char(&b, '/');
        if (param_of(seg, len, &nl, &greedy))
            buf_append_str(&b, greedy ? "{+}" : "{}");
        else
            buf_append(&b, seg, len);
    }
    return buf_steal(&b, NULL);
}

/* ================= lookups ================= */

const struct cfg_resource *cfg__find_resource(const struct cfg_api *api, const char *path)
{
    for (size_t i = 0; i < api->n_resources; i++)
        if (strcmp(api->resources[i].path, path) == 0)
            return &api->resources[i];
    return NULL;
}

bool cfg__resource_has_method(const struct cfg_resource *r, const char *method)
{
    for (size_t i = 0; i < r->n_methods; i++)
        if (strcmp(r->methods[i].http_method, method) == 0 ||
            strcmp(r->methods[i].http_method, "ANY") == 0)
            return true;
    return false;
}

/* ================= integration ================= */

struct integ_parse {
    struct cfg_integration i;
    char *type;
    const struct cfg__node *headers;
};

static const struct cfg__key integ_keys[] = {
    CFG__KEY("type", CFG__K_STR, struct integ_parse, type, true),
    CFG__KEY("uri", CFG__K_STR, struct integ_parse, i.uri, false),
    CFG__KEY_INT("timeout_ms", CFG__K_U32, struct integ_parse, i.timeout_ms, TIMEOUT_MS_MIN,
                 TIMEOUT_MS_MAX),
    CFG__KEY_INT("status", CFG__K_INT, struct integ_parse, i.mock_status, 100, 599),
    CFG__KEY("headers", CFG__K_NODE, struct integ_parse, headers, false),
    CFG__KEY("body", CFG__K_STR, struct integ_parse, i.mock_body, false),
};

static bool is_tchar(char c)
{
    return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool is_token(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (!is_tchar(*s))
            return false;
    return true;
}

static void load_mock_headers(struct cfg__ld *ld, struct cfg_integration *in,
                              const struct cfg__node *n)
{
    if (n == NULL || !cfg__expect_map(ld, n, "headers") || cfg__map_len(n) == 0)
        return;
    cfg__check_dup_keys(ld, n, "header", true);
    in->mock_headers = xcalloc(cfg__map_len(n), sizeof(*in->mock_headers));
    for (size_t i = 0; i < cfg__map_len(n); i++) {
        const struct cfg__node *k = cfg__map_key(n, i);
        const struct cfg__node *v = cfg__map_val(n, i);
        if (k->kind != CFG__SCALAR || !is_token(k->str)) {
            cfg__err(ld, k, "headers: invalid header name");
            continue;
        }
        struct cfg_kv *kv = &in->mock_headers[in->n_mock_headers];
        if (!cfg__get_str(ld, v, k->str, &kv->value))
            continue;
        /* CR/LF in a value would let the config inject response headers. */
        if (strpbrk(kv->value, "\r\n") != NULL)
            cfg__err(ld, v, "%s: header values must not contain line breaks", k->str);
        kv->name = xstrdup(k->str);
        in->n_mock_headers++;
    }
}

/* Checks every {x} of the uri against the resource's path parameters. */
static const char *check_uri_params(const char *uri, const char *path_start, const char *tmpl,
                                    const char **bad, size_t *bad_len)
{
    for (const char *p = uri; *p; p++) {
        if (*p == '}')
            return "has an unbalanced '}'";
        if (*p != '{')
            continue;
        const char *end = strchr(p, '}');
        if (end == NULL)
            return "has an unbalanced '{'";
        if (p < path_start)
            return "may use parameters only in its path, not in the host";
        *bad = p + 1;
        *bad_len = (size_t)(end - p - 1);
        if (*bad_len > 0 && p[*bad_len] == '+')
            return "writes a greedy parameter with '+': write {proxy}, not {proxy+}";
        if (!cfg__template_has_param(tmpl, *bad, *bad_len))
            return "uses a parameter that is not a path parameter of the resource";
        p = end;
    }
    return NULL;
}

static bool has_space_or_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || *s == 0x7f)
            return true;
    return false;
}

static void check_uri(struct cfg__ld *ld, const struct cfg__node *at, const char *uri,
                      const char *tmpl)
{
    const char *why = NULL;
    const char *rest = NULL;
    if (strncasecmp(uri, "http://", 7) == 0)
        rest = uri + 7;
    else if (strncasecmp(uri, "https://", 8) == 0)
        rest = uri + 8;
    const char *path_start = rest ? rest + strcspn(rest, "/?#") : NULL;
    const char *bad = NULL;
    size_t bad_len = 0;
    if (rest == NULL)
        why = "must start with http:// or https://";
    else if (path_start == rest)
        why = "has no host";
    else if (has_space_or_ctl(uri))
        why = "contains spaces or control characters";
    else
        why = check_uri_params(uri, path_start, tmpl, &bad, &bad_len);
    if (why == NULL)
        return;
    char *q = cfg__quoted(uri);
    if (bad != NULL && bad_len > 0 && strstr(why, "not a path parameter")) {
        char *name = xstrndup(bad, bad_len);
        cfg__err(ld, at, "uri: %s uses {%s}, which is not a path parameter of \"%s\"", q, name,
                 tmpl);
        free(name);
    } else {
        cfg__err(ld, at, "uri: %s %s", q, why);
    }
    free(q);
}

/* Keys that belong to the other integration type are errors, not silently unused. */
static void check_foreign_keys(struct cfg__ld *ld, const struct cfg__node *n, bool mock)
{
    static const char *const proxy_only[] = {"uri", "timeout_ms"};
    static const char *const mock_only[] = {"status", "headers", "body"};
    const char *const *keys = mock ? proxy_only : mock_only;
    size_t count = mock ? GATE_ARRAY_LEN(proxy_only) : GATE_ARRAY_LEN(mock_only);
    for (size_t i = 0; i < cfg__map_len(n); i++) {
        const struct cfg__node *k = cfg__map_key(n, i);
        for (size_t j = 0; j < count; j++)
            if (k->kind == CFG__SCALAR && strcmp(k->str, keys[j]) == 0)
                cfg__err(ld, k, "integration: %s is not used with type %s", keys[j],
                         mock ? "MOCK" : "HTTP_PROXY");
    }
}

static void load_integration(struct cfg__ld *ld, struct cfg_method *m, const struct cfg__node *n,
                             const char *tmpl)
{
    struct integ_parse p = {0};
    p.i.timeout_ms = CFG_TIMEOUT_MS_DEFAULT;
    p.i.mock_status = 200;
    cfg__walk(ld, n, "integration", integ_keys, GATE_ARRAY_LEN(integ_keys), &p);
    load_mock_headers(ld, &p.i, p.headers);
    if (p.i.mock_body == NULL)
        p.i.mock_body = xstrdup("");
    p.i.mock_body_len = strlen(p.i.mock_body);
    const struct cfg__node *tn = cfg__map_find(n, "type");
    if (p.type && strcmp(p.type, "MOCK") == 0) {
        p.i.type = CFG_INTEGRATION_MOCK;
        check_foreign_keys(ld, n, true);
    } else if (p.type && strcmp(p.type, "HTTP_PROXY") == 0) {
        p.i.type = CFG_INTEGRATION_HTTP_PROXY;
        check_foreign_keys(ld, n, false);
        if (p.i.uri == NULL)
            cfg__err(ld, n, "missing key \"uri\" in integration (required by HTTP_PROXY)");
        else
            check_uri(ld, cfg__map_find(n, "uri"), p.i.uri, tmpl);
    } else if (p.type) {
        char *q = cfg__quoted(p.type);
        cfg__err(ld, tn, "integration: type %s is not supported (expected HTTP_PROXY or MOCK)", q);
        free(q);
    }
    free(p.type);
    m->integration = p.i;
}

/* ================= cache key parameters and invalidations ================= */

static const char *check_key_param(const char *s, const char *tmpl)
{
    const char *name;
    if (strcmp(s, "method.request.body") == 0 || strcmp(s, "method.request.querystring.*") == 0)
        return NULL;
    if (str_has_prefix(s, "method.request.querystring.")) {
        name = s + strlen("method.request.querystring.");
        return *name && strpbrk(name, "&=#? ") == NULL ? NULL : "has an invalid query name";
    }
    if (str_has_prefix(s, "method.request.header."))
        return is_token(s + strlen("method.request.header.")) ? NULL : "has an invalid header name";
    if (str_has_prefix(s, "method.request.path.")) {
        name = s + strlen("method.request.path.");
        return cfg__template_has_param(tmpl, name, strlen(name))
                   ? NULL
                   : "names a path parameter the resource does not have";
    }
    return "is not method.request.querystring.NAME, method.request.querystring.*, "
           "method.request.header.NAME, method.request.path.NAME or method.request.body";
}

/* Reads a list of strings into *out / *n (owned), reporting non-strings and duplicates. */
static void load_str_list(struct cfg__ld *ld, const struct cfg__node *n, const char *key,
                          char ***out, size_t *count)
{
    struct cfg__node *const *items;
    size_t k;
    if (n == NULL || !cfg__get_seq(ld, n, key, &items, &k) || k == 0)
        return;
    *out = xcalloc(k, sizeof(**out));
    for (size_t i = 0; i < k; i++) {
        char *s = NULL;
        if (!cfg__get_str(ld, items[i], key, &s))
            continue;
        for (size_t j = 0; j < *count; j++) {
            if (strcmp((*out)[j], s) == 0) {
                char *q = cfg__quoted(s);
                cfg__err(ld, items[i], "%s: duplicate entry %s", key, q);
                free(q);
                break;
            }
        }
        (*out)[(*count)++] = s;
    }
}

static void check_key_params(struct cfg__ld *ld, const struct cfg_method *m,
                             const struct cfg__node *n, const char *tmpl)
{
    for (size_t i = 0; i < m->n_cache_key_parameters; i++) {
        const char *why = check_key_param(m->cache_key_parameters[i], tmpl);
        if (why == NULL)
            continue;
        char *q = cfg__quoted(m->cache_key_parameters[i]);
        cfg__err(ld, n->kids[i], "cache_key_parameters: %s %s", q, why);
        free(q);
    }
}

/* Returns an error text for "METHOD /path" written on resource `src`, or NULL;
 * rewrites the entry with the canonical method name. */
static const char *check_invalidation(const struct cfg_api *api, const char *src, char **entry)
{
    const char *sp = strchr(*entry, ' ');
    if (sp == NULL || sp[1] != '/')
        return "is not \"METHOD /path\"";
    char *mname = xstrndup(*entry, (size_t)(sp - *entry));
    const char *method = cfg__method_name(mname);
    free(mname);
    if (method == NULL || strcmp(method, "ANY") == 0)
        return "has an unknown HTTP method";
    const struct cfg_resource *r = cfg__find_resource(api, sp + 1);
    if (r == NULL)
        return "names a path that is not a resource of this api";
    if (!cfg__resource_has_method(r, method))
        return "names a method the resource does not have";
    /* The target's parameters are filled from the writing request's path. */
    const char *cur = r->path;
    const char *seg;
    size_t len;
    while (next_segment(&cur, &seg, &len)) {
        size_t nl;
        bool greedy;
        const char *p = param_of(seg, len, &nl, &greedy);
        if (p && !cfg__template_has_param(src, p, nl))
            return "uses a path parameter that the writing resource does not have";
    }
    struct buf b;
    buf_init(&b);
    buf_appendf(&b, "%s %s", method, sp + 1);
    free(*entry);
    *entry = buf_steal(&b, NULL);
    return NULL;
}

static void check_invalidates(struct cfg__ld *ld, const struct cfg_api *api, struct cfg_method *m,
                              const struct cfg__node *n, const char *tmpl)
{
    for (size_t i = 0; i < m->n_invalidates; i++) {
        char *q = cfg__quoted(m->invalidates[i]);
        const char *why = check_invalidation(api, tmpl, &m->invalidates[i]);
        if (why)
            cfg__err(ld, n->kids[i], "invalidates: %s %s", q, why);
        free(q);
    }
}

/* ================= methods and resources ================= */

struct method_parse {
    struct cfg_method m;
    const struct cfg__node *integration;
    const struct cfg__node *key_params;
    const struct cfg__node *invalidates;
};

static const struct cfg__key method_keys[] = {
    CFG__KEY("api_key_required", CFG__K_BOOL, struct method_parse, m.api_key_required, false),
    CFG__KEY("integration", CFG__K_NODE, struct method_parse, integration, true),
    CFG__KEY("cache_key_parameters", CFG__K_NODE, struct method_parse, key_params, false),
    CFG__KEY("invalidates", CFG__K_NODE, struct method_parse, invalidates, false),
};

static void load_method(struct cfg__ld *ld, const struct cfg_api *api, const struct cfg_resource *r,
                        struct cfg_method *m, const struct cfg__node *n)
{
    struct method_parse p = {.m = *m};
    cfg__walk(ld, n, "method", method_keys, GATE_ARRAY_LEN(method_keys), &p);
    if (p.integration)
        load_integration(ld, &p.m, p.integration, r->path);
    else
        p.m.integration.mock_body = xstrdup("");
    load_str_list(ld, p.key_params, "cache_key_parameters", &p.m.cache_key_parameters,
                  &p.m.n_cache_key_parameters);
    if (p.m.n_cache_key_parameters == (p.key_params ? p.key_params->n_kids : 0))
        check_key_params(ld, &p.m, p.key_params, r->path);
    load_str_list(ld, p.invalidates, "invalidates", &p.m.invalidates, &p.m.n_invalidates);
    if (p.m.n_invalidates == (p.invalidates ? p.invalidates->n_kids : 0))
        check_invalidates(ld, api, &p.m, p.invalidates, r->path);
    *m = p.m;
}

/* Pass 1 for one resource: method names only. */
static void load_method_names(struct cfg__ld *ld, struct cfg_resource *r, const struct cfg__node *n)
{
    if (!cfg__expect_map(ld, n, r->path) || cfg__map_len(n) == 0)
        return;
    cfg__check_dup_keys(ld, n, "method", true);
    r->methods = xcalloc(cfg__map_len(n), sizeof(*r->methods));
    for (size_t i = 0; i < cfg__map_len(n); i++) {
        const struct cfg__node *k = cfg__map_key(n, i);
        const char *name = k->kind == CFG__SCALAR ? cfg__method_name(k->str) : NULL;
        if (name == NULL) {
            char *q = cfg__quoted(k->kind == CFG__SCALAR ? k->str : "");
            cfg__err(ld, k,
                     "unknown HTTP method %s (expected GET, HEAD, POST, PUT, PATCH, "
                     "DELETE, OPTIONS or ANY)",
                     q);
            free(q);
            continue;
        }
        bool seen = false;
        for (size_t j = 0; j < r->n_methods; j++)
            seen |= strcmp(r->methods[j].http_method, name) == 0;
        if (seen)
            continue; /* reported by the duplicate check */
        struct cfg_method *m = &r->methods[r->n_methods++];
        m->http_method = xstrdup(name);
        m->line = k->line;
    }
}

/* The value node of method `name` in a resource mapping (first match, any case). */
static const struct cfg__node *method_node(const struct cfg__node *n, const char *name)
{
    for (size_t i = 0; i < cfg__map_len(n); i++) {
        const struct cfg__node *k = cfg__map_key(n, i);
        if (k->kind == CFG__SCALAR && str_ieq_c(k->str, k->len, name))
            return cfg__map_val(n, i);
    }
    return NULL;
}

static void check_shape(struct cfg__ld *ld, const struct cfg_api *api, const struct cfg__node *key,
                        const struct cfg__node *const *keys)
{
    char *shape = template_shape(key->str);
    for (size_t i = 0; i + 1 < api->n_resources; i++) {
        char *other = template_shape(api->resources[i].path);
        bool same = strcmp(shape, other) == 0;
        free(other);
        if (same) {
            char *q = cfg__quoted(key->str);
            cfg__err(ld, key,
                     "duplicate resource %s (matches the same requests as \"%s\" at "
                     "%d:%d)",
                     q, api->resources[i].path, keys[i]->line, keys[i]->col);
            free(q);
            break;
        }
    }
    free(shape);
}

static void load_resources(struct cfg__ld *ld, struct cfg_api *api, const struct cfg__node *n)
{
    size_t count = cfg__map_len(n);
    if (!cfg__expect_map(ld, n, "resources") || count == 0)
        return;
    cfg__check_dup_keys(ld, n, "resource", false);
    api->resources = xcalloc(count, sizeof(*api->resources));
    const struct cfg__node **keys = xcalloc(count, sizeof(*keys));
    const struct cfg__node **vals = xcalloc(count, sizeof(*vals));
    for (size_t i = 0; i < count; i++) {
        const struct cfg__node *k = cfg__map_key(n, i);
        if (k->kind != CFG__SCALAR) {
            cfg__err(ld, k, "resources: keys must be path templates");
            continue;
        }
        if (cfg__find_resource(api, k->str) != NULL)
            continue; /* exact duplicate, already reported */
        struct cfg_resource *r = &api->resources[api->n_resources];
        keys[api->n_resources] = k;
        vals[api->n_resources] = cfg__map_val(n, i);
        api->n_resources++;
        r->path = xstrdup(k->str);
        if (check_template(ld, k))
            check_shape(ld, api, k, keys);
        load_method_names(ld, r, cfg__map_val(n, i));
    }
    for (size_t i = 0; i < api->n_resources; i++) {
        struct cfg_resource *r = &api->resources[i];
        for (size_t j = 0; j < r->n_methods; j++)
            load_method(ld, api, r, &r->methods[j],
                        method_node(vals[i], r->methods[j].http_method));
    }
    free(keys);
    free(vals);
}

/* ================= apis ================= */

struct api_parse {
    char *id;
    const struct cfg__node *resources;
    const struct cfg__node *stages;
};

static const struct cfg__key api_keys[] = {
    CFG__KEY("id", CFG__K_STR, struct api_parse, id, true),
    CFG__KEY("resources", CFG__K_NODE, struct api_parse, resources, true),
    CFG__KEY("stages", CFG__K_NODE, struct api_parse, stages, true),
};

/* Ids and stage names appear in Host names, URLs and ARNs: keep them plain. */
bool cfg__is_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!(('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static void check_api_id(struct cfg__ld *ld, const struct cfg__node *item, size_t idx)
{
    const struct cfg *c = ld->cfg;
    const char *id = c->apis[idx].id;
    const struct cfg__node *at = cfg__map_find(item, "id");
    if (id == NULL)
        return;
    char *q = cfg__quoted(id);
    if (!cfg__is_name(id))
        cfg__err(ld, at, "id: %s must be 1..128 letters, digits, '-' or '_'", q);
    for (size_t i = 0; i < idx; i++) {
        if (c->apis[i].id && strcmp(c->apis[i].id, id) == 0) {
            cfg__err(ld, at, "duplicate api id %s", q);
            break;
        }
    }
    free(q);
}

void cfg__load_apis(struct cfg__ld *ld, const struct cfg__node *n)
{
    struct cfg__node *const *items;
    size_t count;
    if (n == NULL || !cfg__get_seq(ld, n, "apis", &items, &count))
        return;
    if (count == 0) {
        cfg__err(ld, n, "apis: at least one api is required");
        return;
    }
    struct cfg *c = ld->cfg;
    c->apis = xcalloc(count, sizeof(*c->apis));
    c->n_apis = count;
    for (size_t i = 0; i < count; i++) {
        struct api_parse p = {0};
        cfg__walk(ld, items[i], "apis", api_keys, GATE_ARRAY_LEN(api_keys), &p);
        c->apis[i].id = p.id;
        check_api_id(ld, items[i], i);
        load_resources(ld, &c->apis[i], p.resources);
        cfg__load_stages(ld, &c->apis[i], p.stages);
    }
}

/* ================= free ================= */

static void free_method(struct cfg_method *m)
{
    free(m->http_method);
    free(m->integration.uri);
    for (size_t i = 0; i < m->integration.n_mock_headers; i++) {
        free(m->integration.mock_headers[i].name);
        free(m->integration.mock_headers[i].value);
    }
    free(m->integration.mock_headers);
    free(m->integration.mock_body);
    for (size_t i = 0; i < m->n_cache_key_parameters; i++)
        free(m->cache_key_parameters[i]);
    free(m->cache_key_parameters);
    for (size_t i = 0; i < m->n_invalidates; i++)
        free(m->invalidates[i]);
    free(m->invalidates);
}

static void free_stage(struct cfg_stage *s)
{
    free(s->name);
    free(s->cache_cluster_size);
    free(s->distribution_id);
    for (size_t i = 0; i < s->n_method_settings; i++) {
        free(s->method_settings[i].resource_path);
        free(s->method_settings[i].http_method);
        free(s->method_settings[i].aws_key);
        free(s->method_settings[i].logging_level);
    }
    free(s->method_settings);
}

void cfg__free_apis(struct cfg *c)
{
    for (size_t i = 0; i < c->n_apis; i++) {
        struct cfg_api *a = &c->apis[i];
        for (size_t j = 0; j < a->n_resources; j++) {
            for (size_t k = 0; k < a->resources[j].n_methods; k++)
                free_method(&a->resources[j].methods[k]);
            free(a->resources[j].methods);
            free(a->resources[j].path);
        }
        free(a->resources);
        for (size_t j = 0; j < a->n_stages; j++)
            free_stage(&a->stages[j]);
        free(a->stages);
        free(a->id);
    }
    free(c->apis);
}
