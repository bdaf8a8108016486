/*
 * server — the `server:` section: listeners, workers, the admin listener and its
 * token, region/account used in ARNs, request limits, base path mappings and the
 * cache backend. Runs after apis are loaded so mappings can be checked against
 * them.
 *
 * Invariant after a successful load: at least one listen address, workers in
 * 1..64, every mapping names an existing api and stage, an admin listener on
 * a non-loopback address has a token file, and a redis cache_backend has a
 * host, a port, no TLS (hiredis 0.14 has none), reconnect_min_ms <=
 * reconnect_max_ms and a user name only with a password.
 */
#include "config/config_int.h"
#include "l2/l2.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WORKERS_MAX 64

/* Scratch for one walk: the server itself plus values checked after the walk. */
struct server_parse {
    struct cfg_server s;
    const struct cfg__node *listen;
    const struct cfg__node *workers;
    const struct cfg__node *admin_listen;
    const struct cfg__node *limits;
    const struct cfg__node *mappings;
    const struct cfg__node *cache_backend;
};

static const struct cfg__key server_keys[] = {
    CFG__KEY("listen", CFG__K_NODE, struct server_parse, listen, false),
    CFG__KEY("workers", CFG__K_NODE, struct server_parse, workers, false),
    CFG__KEY("admin_listen", CFG__K_NODE, struct server_parse, admin_listen, false),
    CFG__KEY("admin_token_file", CFG__K_STR, struct server_parse, s.admin_token_file, false),
    CFG__KEY("region", CFG__K_STR, struct server_parse, s.region, false),
    CFG__KEY("account_id", CFG__K_STR, struct server_parse, s.account_id, false),
    CFG__KEY("cache_encryption_key_file", CFG__K_STR, struct server_parse,
             s.cache_encryption_key_file, false),
    CFG__KEY("base_path_mappings", CFG__K_NODE, struct server_parse, mappings, false),
    CFG__KEY("limits", CFG__K_NODE, struct server_parse, limits, false),
    CFG__KEY("cache_backend", CFG__K_NODE, struct server_parse, cache_backend, false),
};

#define MS_1H 3600000
static const struct cfg__key limits_keys[] = {
    CFG__KEY_INT("max_header_bytes", CFG__K_SIZE, struct cfg_limits, max_header_bytes, 1024,
                 1048576),
    CFG__KEY_INT("max_headers", CFG__K_SIZE, struct cfg_limits, max_headers, 1, 256),
    CFG__KEY_INT("max_url_bytes", CFG__K_SIZE, struct cfg_limits, max_url_bytes, 256, 1048576),
    CFG__KEY_INT("max_body_bytes", CFG__K_U64, struct cfg_limits, max_body_bytes, 0,
                 (int64_t)1 << 32),
    CFG__KEY_INT("header_timeout_ms", CFG__K_U32, struct cfg_limits, header_timeout_ms, 100, MS_1H),
    CFG__KEY_INT("body_timeout_ms", CFG__K_U32, struct cfg_limits, body_timeout_ms, 100, MS_1H),
    CFG__KEY_INT("idle_timeout_ms", CFG__K_U32, struct cfg_limits, idle_timeout_ms, 100, MS_1H),
    CFG__KEY_INT("max_connections", CFG__K_U32, struct cfg_limits, max_connections, 1, 1000000),
    CFG__KEY_INT("drain_timeout_ms", CFG__K_U32, struct cfg_limits, drain_timeout_ms, 0, MS_1H),
    CFG__KEY_INT("invalidations_per_second", CFG__K_U32, struct cfg_limits,
                 invalidations_per_second, 0, 1000000),
    CFG__KEY_INT("invalidation_burst", CFG__K_U32, struct cfg_limits, invalidation_burst, 1,
                 1000000),
};

static const struct cfg__key mapping_keys[] = {
    CFG__KEY("base_path", CFG__K_STR, struct cfg_base_path_mapping, base_path, false),
    CFG__KEY("api", CFG__K_STR, struct cfg_base_path_mapping, api, true),
    CFG__KEY("stage", CFG__K_STR, struct cfg_base_path_mapping, stage, true),
    CFG__KEY("host", CFG__K_STR, struct cfg_base_path_mapping, host, false),
};

/* server.cache_backend as written; load_backend checks it and fills struct
 * cfg_cache_backend. */
struct backend_parse {
    char *type;
    char *url;
    char *username;
    char *password; /* a secret: never in a message */
    char *password_env;  /* the name of a variable holding it */
    char *password_file; /* a file holding it */
    char *key_prefix;
    uint32_t connect_timeout_ms;
    uint32_t command_timeout_ms;
    uint32_t reconnect_min_ms;
    uint32_t reconnect_max_ms;
    bool tls;
};

#define BACKEND_MS(name)                                                                           \
    CFG__KEY_INT(#name, CFG__K_U32, struct backend_parse, name, 1, CFG_BACKEND_TIMEOUT_MAX_MS)

/* "type" first: load_backend's check of the redis-only keys skips it. */
static const struct cfg__key backend_keys[] = {
    CFG__KEY("type", CFG__K_STR, struct backend_parse, type, true),
    CFG__KEY("url", CFG__K_STR, struct backend_parse, url, false),
    CFG__KEY("username", CFG__K_STR, struct backend_parse, username, false),
    CFG__KEY("password", CFG__K_STR, struct backend_parse, password, false),
    CFG__KEY("password_env", CFG__K_STR, struct backend_parse, password_env, false),
    CFG__KEY("password_file", CFG__K_STR, struct backend_parse, password_file, false),
    BACKEND_MS(connect_timeout_ms),
    BACKEND_MS(command_timeout_ms),
    BACKEND_MS(reconnect_min_ms),
    BACKEND_MS(reconnect_max_ms),
    CFG__KEY("key_prefix", CFG__K_STR, struct backend_parse, key_prefix, false),
    CFG__KEY("tls", CFG__K_BOOL, struct backend_parse, tls, false),
};

/* Keys longer than this would mostly be prefix. */
#define KEY_PREFIX_MAX 128

/* ================= listen addresses ================= */

/* Splits "HOST:PORT" / "[V6]:PORT"; returns an error text or NULL. */
static const char *split_hostport(const char *s, char **host, int *port)
{
    const char *colon;
    const char *h = s;
    size_t hlen;
    if (*s == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL || end[1] != ':')
            return "is not \"[IPV6]:PORT\"";
        h = s + 1;
        hlen = (size_t)(end - h);
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return "is not HOST:PORT";
        hlen = (size_t)(colon - s);
        if (memchr(s, ':', hlen) != NULL)
            return "has an IPv6 address without brackets (write \"[::1]:8080\")";
    }
    uint64_t p;
    if (!str_to_u64(colon + 1, strlen(colon + 1), &p) || p < 1 || p > 65535)
        return "has no port in 1..65535";
    *host = xstrndup(h, hlen);
    *port = (int)p;
    return NULL;
}

static bool is_numeric_host(const char *host, bool v6)
{
    unsigned char addr[16];
    return inet_pton(v6 ? AF_INET6 : AF_INET, host, addr) == 1;
}

static bool parse_listen(struct cfg__ld *ld, const struct cfg__node *n, const char *key,
                         struct cfg_listen *out)
{
    char *text = NULL;
    if (!cfg__get_str(ld, n, key, &text))
        return false;
    char *host = NULL;
    int port = 0;
    const char *why = split_hostport(text, &host, &port);
    bool v6 = text[0] == '[';
    if (why == NULL && strcmp(host, "localhost") == 0) {
        free(host);
        host = xstrdup("127.0.0.1");
    }
    if (why == NULL && !is_numeric_host(host, v6))
        why = "is not a numeric IPv4 or IPv6 address with a port";
    char *q = cfg__quoted(text);
    if (why != NULL)
        cfg__err(ld, n, "%s: %s %s", key, q, why);
    free(q);
    free(text);
    if (why != NULL) {
        free(host);
        return false;
    }
    out->host = host;
    out->port = port;
    return true;
}

static bool same_listen(const struct cfg_listen *a, const struct cfg_listen *b)
{
    return a->port == b->port && strcmp(a->host, b->host) == 0;
}

static void add_listen(struct cfg__ld *ld, struct cfg_server *s, const struct cfg__node *n)
{
    struct cfg_listen l;
    if (!parse_listen(ld, n, "listen", &l))
        return;
    for (size_t i = 0; i < s->n_listen; i++) {
        if (same_listen(&s->listen[i], &l)) {
            cfg__err(ld, n, "listen: duplicate address");
            free(l.host);
            return;
        }
    }
    s->listen = xrealloc(s->listen, (s->n_listen + 1) * sizeof(*s->listen));
    s->listen[s->n_listen++] = l;
}

static void load_listen(struct cfg__ld *ld, struct cfg_server *s, const struct cfg__node *n)
{
    if (n != NULL && n->kind == CFG__SEQ) {
        if (n->n_kids == 0)
            cfg__err(ld, n, "listen: the list is empty");
        for (size_t i = 0; i < n->n_kids; i++)
            add_listen(ld, s, n->kids[i]);
    } else if (n != NULL) {
        add_listen(ld, s, n);
    } else {
        s->listen = xcalloc(1, sizeof(*s->listen));
        s->listen[0].host = xstrdup("127.0.0.1");
        s->listen[0].port = 8080;
        s->n_listen = 1;
    }
}

static bool is_loopback(const char *host)
{
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return strcmp(host, "::1") == 0 || strcmp(host, "0:0:0:0:0:0:0:1") == 0;
}

static void load_admin_listen(struct cfg__ld *ld, struct cfg_server *s, const struct cfg__node *n)
{
    if (n == NULL || !parse_listen(ld, n, "admin_listen", &s->admin_listen))
        return;
    for (size_t i = 0; i < s->n_listen; i++)
        if (same_listen(&s->listen[i], &s->admin_listen))
            cfg__err(ld, n, "admin_listen: the same address as a listen address");
    /* Anyone who can reach the admin API can flush caches: off loopback it needs a token. */
    if (!is_loopback(s->admin_listen.host) && s->admin_token_file == NULL)
        cfg__err(ld, n,
                 "admin_listen: %s is not a loopback address, so admin_token_file is "
                 "required",
                 s->admin_listen.host);
}

/* ================= workers, files, limits, backend ================= */

static void load_workers(struct cfg__ld *ld, struct cfg_server *s, const struct cfg__node *n)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    s->workers = (int)GATE_MIN(GATE_MAX(cpus, 1), WORKERS_MAX);
    if (n == NULL || (n->kind == CFG__SCALAR && strcmp(n->str, "auto") == 0))
        return;
    int64_t v;
    uint64_t digits;
    if (n->kind != CFG__SCALAR || !n->plain || !str_to_u64(n->str, n->len, &digits)) {
        cfg__err(ld, n, "workers: expected integer 1..%d or \"auto\"", WORKERS_MAX);
        return;
    }
    if (cfg__get_int(ld, n, "workers", 1, WORKERS_MAX, &v))
        s->workers = (int)v;
}

/* The file is read by its owner module later; checking now turns a typo into a
 * `gatecache check` error instead of a failure at start. Contents are not read. */
static void check_readable(struct cfg__ld *ld, const struct cfg__node *server, const char *key,
                           const char *path)
{
    if (path == NULL || access(path, R_OK) == 0)
        return;
    char *q = cfg__quoted(path);
    cfg__err(ld, cfg__map_find(server, key), "%s: cannot read %s", key, q);
    free(q);
}

static void limits_defaults(struct cfg_limits *l)
{
    l->max_header_bytes = 16384;
    l->max_headers = 100;
    l->max_url_bytes = 8192;
    l->max_body_bytes = 10u << 20;
    l->header_timeout_ms = 10000;
    l->body_timeout_ms = 30000;
    l->idle_timeout_ms = 60000;
    l->max_connections = 10000;
    l->drain_timeout_ms = 10000;
    l->invalidations_per_second = 10;
    l->invalidation_burst = 20;
}

/* Wipes then frees: a password should not linger in reusable heap. */
static void free_secret(char *s)
{
    if (s == NULL)
        return;
    explicit_bzero(s, strlen(s));
    free(s);
}

static void backend_defaults(struct cfg_cache_backend *b)
{
    memset(b, 0, sizeof(*b));
    b->type = CFG_BACKEND_MEMORY;
    b->port = L2_URL_DEFAULT_PORT;
    b->connect_timeout_ms = L2_DEFAULT_CONNECT_TIMEOUT_MS;
    b->command_timeout_ms = L2_DEFAULT_COMMAND_TIMEOUT_MS;
    b->reconnect_min_ms = L2_DEFAULT_RECONNECT_MIN_MS;
    b->reconnect_max_ms = L2_DEFAULT_RECONNECT_MAX_MS;
}

static void refuse_tls(struct cfg__ld *ld, const struct cfg__node *at, const char *key)
{
    cfg__err(ld, at,
             "%s: TLS to Redis needs hiredis >= 1.0 (with hiredis_ssl) and this build links "
             "hiredis %s: use redis:// on a trusted network (docs/redis.md)",
             key, l2_hiredis_version());
}

/* The password and user name, each from the url or its own key, not both. */
static void backend_credentials(struct cfg__ld *ld, const struct cfg__node *n,
                                const struct backend_parse *b, const struct l2_url *u,
                                struct cfg_cache_backend *out)
{
    const struct cfg__node *pn = cfg__map_find(n, "password");
    const struct cfg__node *un = cfg__map_find(n, "username");
    if (b->password && u->password[0])
        cfg__err(ld, pn, "password: the url has one already: give it once");
    else if (b->password && b->password[0] == '\0')
        cfg__err(ld, pn, "password: is empty");
    if (b->username && u->username[0])
        cfg__err(ld, un, "username: the url has one already: give it once");
    else if (b->username && b->username[0] == '\0')
        cfg__err(ld, un, "username: is empty");
    const char *password = b->password ? b->password : u->password;
    char *kept = NULL; /* from password_env / password_file, as identities' secrets */
    if (b->password_env || b->password_file) {
        const struct cfg__node *at = cfg__map_find(n, b->password_env ? "password_env"
                                                                       : "password_file");
        if (password[0])
            cfg__err(ld, at, "%s: a password is given already: give it once",
                     b->password_env ? "password_env" : "password_file");
        else
            kept = cfg__resolve_secret(ld, n, "password_env", b->password_env, "password_file",
                                       b->password_file);
        if (kept)
            password = kept;
    }
    const char *username = b->username ? b->username : u->username;
    if (username[0] && !password[0])
        cfg__err(ld, un ? un : cfg__map_find(n, "url"),
                 "username: an ACL user needs a password (in the url, `password`, "
                 "`password_env` or `password_file`)");
    out->password = password[0] ? xstrdup(password) : NULL;
    free_secret(kept);
    out->username = username[0] ? xstrdup(username) : NULL;
}

static void load_redis(struct cfg__ld *ld, const struct cfg__node *n,
                       const struct backend_parse *b, struct cfg_cache_backend *out)
{
    const struct cfg__node *urln = cfg__map_find(n, "url");
    if (urln == NULL) {
        cfg__err(ld, n, "missing key \"url\" in server.cache_backend (required with type redis)");
        return;
    }
    if (b->url == NULL)
        return; /* wrong type: reported by the walk */
    struct l2_url u;
    char why[192];
    if (l2_url_parse(b->url, &u, why, sizeof(why)) != 0) {
        cfg__err(ld, urln, "url: %s", why);
        return;
    }
    if (u.tls)
        refuse_tls(ld, urln, "url");
    if (b->tls)
        refuse_tls(ld, cfg__map_find(n, "tls"), "tls");
    out->type = CFG_BACKEND_REDIS;
    out->host = xstrdup(u.host);
    out->port = u.port;
    out->db = u.db;
    backend_credentials(ld, n, b, &u, out);
    explicit_bzero(&u, sizeof(u));
    out->connect_timeout_ms = b->connect_timeout_ms;
    out->command_timeout_ms = b->command_timeout_ms;
    out->reconnect_min_ms = b->reconnect_min_ms;
    out->reconnect_max_ms = b->reconnect_max_ms;
    if (b->reconnect_min_ms > b->reconnect_max_ms) {
        const struct cfg__node *at = cfg__map_find(n, "reconnect_min_ms");
        cfg__err(ld, at ? at : cfg__map_find(n, "reconnect_max_ms"),
                 "reconnect_min_ms: %u is above reconnect_max_ms %u", b->reconnect_min_ms,
                 b->reconnect_max_ms);
    }
    const char *prefix = b->key_prefix ? b->key_prefix : L2_DEFAULT_KEY_PREFIX;
    if (strlen(prefix) > KEY_PREFIX_MAX)
        cfg__err(ld, cfg__map_find(n, "key_prefix"), "key_prefix: longer than %d bytes",
                 KEY_PREFIX_MAX);
    out->key_prefix = xstrdup(prefix);
}

/* With type memory every other key would silently do nothing: refuse them. */
static void refuse_redis_keys(struct cfg__ld *ld, const struct cfg__node *n)
{
    for (size_t i = 1; i < GATE_ARRAY_LEN(backend_keys); i++) {
        const struct cfg__node *v = cfg__map_find(n, backend_keys[i].name);
        if (v)
            cfg__err(ld, v, "%s: only used with cache_backend type redis", backend_keys[i].name);
    }
}

static void load_backend(struct cfg__ld *ld, const struct cfg__node *n,
                         struct cfg_cache_backend *out)
{
    backend_defaults(out);
    if (n == NULL)
        return;
    struct backend_parse b = {
        .connect_timeout_ms = out->connect_timeout_ms,
        .command_timeout_ms = out->command_timeout_ms,
        .reconnect_min_ms = out->reconnect_min_ms,
        .reconnect_max_ms = out->reconnect_max_ms,
    };
    cfg__walk(ld, n, "server.cache_backend", backend_keys, GATE_ARRAY_LEN(backend_keys), &b);
    if (b.type && strcmp(b.type, "redis") == 0) {
        load_redis(ld, n, &b, out);
    } else if (b.type && strcmp(b.type, "memory") == 0) {
        refuse_redis_keys(ld, n);
    } else if (b.type) {
        char *q = cfg__quoted(b.type);
        cfg__err(ld, cfg__map_find(n, "type"),
                 "cache_backend: unknown type %s (expected memory or redis)", q);
        free(q);
    }
    free(b.type);
    free(b.url);
    free(b.username);
    free_secret(b.password);
    free(b.password_env);
    free(b.password_file);
    free(b.key_prefix);
}

/* Frees the strings (the password wiped first) and zeroes it. */
static void free_backend(struct cfg_cache_backend *b)
{
    free(b->host);
    free(b->username);
    free_secret(b->password);
    free(b->key_prefix);
    memset(b, 0, sizeof(*b));
}

/* ================= base path mappings ================= */

/* "" and "/" mean the root; one leading '/' is dropped; one segment of unreserved chars. */
static bool normalise_base_path(char *p)
{
    if (p[0] == '/')
        memmove(p, p + 1, strlen(p));
    for (const char *c = p; *c; c++)
        if (!(('a' <= *c && *c <= 'z') || ('A' <= *c && *c <= 'Z') || ('0' <= *c && *c <= '9') ||
              strchr("-._~", *c)))
            return false;
    return true;
}

static bool same_host(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return str_ieq(a, strlen(a), b, strlen(b));
}

static void check_mapping(struct cfg__ld *ld, const struct cfg__node *n,
                          struct cfg_base_path_mapping *m, const struct cfg_server *s)
{
    const struct cfg__node *bp = cfg__map_find(n, "base_path");
    if (!normalise_base_path(m->base_path))
        cfg__err(ld, bp,
                 "base_path: must be \"\" or one path segment of letters, digits, "
                 "'-', '.', '_' or '~'");
    const struct cfg_api *api = m->api ? cfg_find_api(ld->cfg, m->api) : NULL;
    char *q = m->api ? cfg__quoted(m->api) : NULL;
    if (m->api && api == NULL)
        cfg__err(ld, cfg__map_find(n, "api"), "base_path_mappings: unknown api %s", q);
    if (api && m->stage && cfg_find_stage(api, m->stage) == NULL) {
        char *qs = cfg__quoted(m->stage);
        cfg__err(ld, cfg__map_find(n, "stage"), "base_path_mappings: api %s has no stage %s", q,
                 qs);
        free(qs);
    }
    free(q);
    for (size_t i = 0; i < s->n_mappings; i++) {
        const struct cfg_base_path_mapping *o = &s->mappings[i];
        if (o->base_path && strcmp(o->base_path, m->base_path) == 0 && same_host(o->host, m->host))
            cfg__err(ld, bp ? bp : n, "base_path_mappings: duplicate base_path \"%s\"%s",
                     m->base_path, m->host ? " for this host" : "");
    }
}

static void load_mappings(struct cfg__ld *ld, struct cfg_server *s, const struct cfg__node *n)
{
    struct cfg__node *const *items;
    size_t count;
    if (!cfg__get_seq(ld, n, "base_path_mappings", &items, &count) || count == 0)
        return;
    s->mappings = xcalloc(count, sizeof(*s->mappings));
    for (size_t i = 0; i < count; i++) {
        struct cfg_base_path_mapping *m = &s->mappings[i];
        cfg__walk(ld, items[i], "server.base_path_mappings", mapping_keys,
                  GATE_ARRAY_LEN(mapping_keys), m);
        if (m->base_path == NULL)
            m->base_path = xstrdup("");
        check_mapping(ld, items[i], m, s);
        s->n_mappings = i + 1;
    }
}

/* ================= section ================= */

void cfg__load_server(struct cfg__ld *ld, const struct cfg__node *n)
{
    struct server_parse p = {0};
    limits_defaults(&p.s.limits);
    cfg__walk(ld, n, "server", server_keys, GATE_ARRAY_LEN(server_keys), &p);
    if (p.s.region == NULL)
        p.s.region = xstrdup("us-east-1");
    if (p.s.account_id == NULL)
        p.s.account_id = xstrdup("123456789012");
    load_listen(ld, &p.s, p.listen);
    load_workers(ld, &p.s, p.workers);
    load_admin_listen(ld, &p.s, p.admin_listen);
    check_readable(ld, n, "admin_token_file", p.s.admin_token_file);
    check_readable(ld, n, "cache_encryption_key_file", p.s.cache_encryption_key_file);
    cfg__walk(ld, p.limits, "server.limits", limits_keys, GATE_ARRAY_LEN(limits_keys), &p.s.limits);
    load_mappings(ld, &p.s, p.mappings);
    load_backend(ld, p.cache_backend, &p.s.cache_backend);
    ld->cfg->server = p.s;
}

void cfg__free_server(struct cfg_server *s)
{
    for (size_t i = 0; i < s->n_listen; i++)
        free(s->listen[i].host);
    free(s->listen);
    free(s->admin_listen.host);
    free(s->admin_token_file);
    free(s->region);
    free(s->account_id);
    free(s->cache_encryption_key_file);
    for (size_t i = 0; i < s->n_mappings; i++) {
        free(s->mappings[i].base_path);
        free(s->mappings[i].api);
        free(s->mappings[i].stage);
        free(s->mappings[i].host);
    }
    free(s->mappings);
    free_backend(&s->cache_backend);
    memset(s, 0, sizeof(*s));
}
