/*
 * secrets — `identities:` (SigV4 principals with an IAM policy) and `api_keys:`.
 * Secret values come from an environment variable or a file named in the
 * config, never from the config itself.
 *
 * Invariant: no message written here ever contains a secret value; errors name
 * the variable or file only. Secret buffers are wiped before they are freed.
 */
#include "auth/auth.h"
#include "config/config_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SECRET_FILE_MAX 65536

/* ================= secret sources ================= */

/* Wipes then frees: a freed secret should not linger in reusable heap. */
static void free_secret(char *s)
{
    if (s == NULL)
        return;
    volatile char *p = s;
    while (*p)
        *p++ = '\0';
    free(s);
}

/* Only regular files: a FIFO or a device such as /dev/stdin would block the load. */
static bool is_regular_file(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return false;
    if (!S_ISREG(st.st_mode)) {
        errno = EINVAL;
        return false;
    }
    return true;
}

/* Owned contents of a small file without trailing whitespace, or NULL and errno. */
static char *read_secret_file(const char *path)
{
    if (!is_regular_file(path))
        return NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *data = xmalloc(SECRET_FILE_MAX + 1);
    size_t n = fread(data, 1, SECRET_FILE_MAX + 1, f);
    int failed = ferror(f);
    fclose(f);
    if (failed || n > SECRET_FILE_MAX) {
        memset(data, 0, SECRET_FILE_MAX + 1);
        free(data);
        errno = failed ? EIO : EFBIG;
        return NULL;
    }
    while (n > 0 && strchr(" \t\r\n", data[n - 1]) != NULL)
        n--;
    data[n] = '\0';
    char *out = xstrndup(data, n);
    memset(data, 0, SECRET_FILE_MAX + 1);
    free(data);
    return out;
}

/*
 * Resolves a secret from exactly one of env_name / file (both owned by the
 * caller). `item` is the list entry, for "neither" errors. Returns an owned
 * secret or NULL after reporting.
 */
char *cfg__resolve_secret(struct cfg__ld *ld, const struct cfg__node *item, const char *env_key,
                          const char *env_name, const char *file_key, const char *file)
{
    const struct cfg__node *env_n = cfg__map_find(item, env_key);
    const struct cfg__node *file_n = cfg__map_find(item, file_key);
    if ((env_n == NULL) == (file_n == NULL)) {
        cfg__err(ld, file_n ? file_n : item, "exactly one of %s or %s is required", env_key,
                 file_key);
        return NULL;
    }
    if (env_name == NULL && file == NULL)
        return NULL; /* present but of the wrong type: already reported */
    if (ld->flags & CFG_LOAD_NO_SECRETS)
        return xstrdup(""); /* the admin CLI: the shape was checked, the value is not needed */
    const char *key = env_name ? env_key : file_key;
    const struct cfg__node *at = cfg__map_find(item, key);
    char *q = cfg__quoted(env_name ? env_name : file);
    char *secret = NULL;
    if (env_name) {
        const char *v = getenv(env_name);
        if (v == NULL)
            cfg__err(ld, at, "%s: environment variable %s is not set", key, q);
        else if (*v == '\0')
            cfg__err(ld, at, "%s: environment variable %s is empty", key, q);
        else
            secret = xstrdup(v);
    } else {
        secret = read_secret_file(file);
        if (secret == NULL) {
            cfg__err(ld, at, "%s: cannot read %s: %s", key, q,
                     errno == EINVAL ? "not a regular file" : strerror(errno));
        } else if (*secret == '\0') {
            cfg__err(ld, at, "%s: file %s is empty", key, q);
            free_secret(secret);
            secret = NULL;
        }
    }
    free(q);
    return secret;
}

/* ================= policies ================= */

static bool is_plain_int(const struct cfg__node *n)
{
    const char *s = n->str[0] == '-' ? n->str + 1 : n->str;
    uint64_t v;
    return n->plain && str_to_u64(s, strlen(s), &v) && v <= (uint64_t)INT64_MAX;
}

/* YAML → JSON as YAML means it: quoted scalars are strings, plain true/false/null and
 * decimal integers keep their type, everything else is a string. */
static json_t *scalar_to_json(const struct cfg__node *n)
{
    if (cfg__is_null(n))
        return json_null();
    if (n->plain && strcmp(n->str, "true") == 0)
        return json_true();
    if (n->plain && strcmp(n->str, "false") == 0)
        return json_false();
    if (is_plain_int(n))
        return json_integer(strtoll(n->str, NULL, 10));
    return json_stringn(n->str, n->len);
}

static json_t *yaml_to_json(struct cfg__ld *ld, const struct cfg__node *n)
{
    if (n->kind == CFG__SCALAR) {
        json_t *j = scalar_to_json(n);
        if (j == NULL) /* jansson refuses invalid UTF-8, which libyaml already refused */
            j = json_string("");
        return j;
    }
    if (n->kind == CFG__SEQ) {
        json_t *a = json_array();
        for (size_t i = 0; i < n->n_kids; i++)
            json_array_append_new(a, yaml_to_json(ld, n->kids[i]));
        return a;
    }
    json_t *o = json_object();
    cfg__check_dup_keys(ld, n, "key", false);
    for (size_t i = 0; i < cfg__map_len(n); i++) {
        const struct cfg__node *k = cfg__map_key(n, i);
        if (k->kind != CFG__SCALAR) {
            cfg__err(ld, k, "policy: keys must be strings");
            continue;
        }
        json_object_setn_new(o, k->str, k->len, yaml_to_json(ld, cfg__map_val(n, i)));
    }
    return o;
}

static json_t *empty_policy(void)
{
    return json_pack("{s:s, s:[]}", "Version", "2012-10-17", "Statement");
}

static json_t *load_policy_file(struct cfg__ld *ld, const struct cfg__node *at, const char *path)
{
    json_error_t jerr;
    char *q = cfg__quoted(path);
    if (!is_regular_file(path)) {
        cfg__err(ld, at, "policy_file: cannot read %s: %s", q,
                 errno == EINVAL ? "not a regular file" : strerror(errno));
        free(q);
        return NULL;
    }
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL)
        cfg__err(ld, at, "policy_file: %s: line %d column %d: %s", q, jerr.line, jerr.column,
                 jerr.text);
    else if (!json_is_object(j))
        cfg__err(ld, at, "policy_file: %s: expected a JSON object", q);
    free(q);
    if (j != NULL && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

/* ================= identities ================= */

struct identity_parse {
    struct cfg_identity *id;
    char *name;
    char *access_key_id;
    char *secret_env;
    char *secret_file;
    const struct cfg__node *policy;
    char *policy_file;
};

static const struct cfg__key identity_keys[] = {
    CFG__KEY("name", CFG__K_STR, struct identity_parse, name, true),
    CFG__KEY("access_key_id", CFG__K_STR, struct identity_parse, access_key_id, true),
    CFG__KEY("secret_access_key_env", CFG__K_STR, struct identity_parse, secret_env, false),
    CFG__KEY("secret_access_key_file", CFG__K_STR, struct identity_parse, secret_file, false),
    CFG__KEY("policy", CFG__K_NODE, struct identity_parse, policy, false),
    CFG__KEY("policy_file", CFG__K_STR, struct identity_parse, policy_file, false),
};

static void set_policy(struct cfg__ld *ld, const struct cfg__node *item, struct identity_parse *p)
{
    struct cfg_identity *id = p->id;
    const struct cfg__node *at = p->policy ? p->policy : cfg__map_find(item, "policy_file");
    size_t errors_before = ld->errs->n;
    if (p->policy && p->policy_file) {
        cfg__err(ld, at, "policy and policy_file are mutually exclusive");
    } else if (p->policy) {
        if (p->policy->kind != CFG__MAP)
            cfg__err(ld, p->policy, "policy: expected mapping (an IAM policy document)");
        else
            id->policy = yaml_to_json(ld, p->policy);
    } else if (p->policy_file) {
        id->policy = load_policy_file(ld, at, p->policy_file);
    }
    if (id->policy != NULL && at != NULL && ld->errs->n == errors_before) {
        /* A policy IAM would refuse is a config error, at the policy's line. */
        char why[256];
        if (auth_policy_validate(id->policy, why, sizeof(why)) != 0)
            cfg__err(ld, at, "policy: %s", why);
    }
    if (id->policy == NULL)
        id->policy = empty_policy(); /* no policy allows nothing */
    id->policy_line = at ? at->line : item->line;
    id->policy_col = at ? at->col : item->col;
}

static bool is_alnum_str(const char *s)
{
    for (; *s; s++)
        if (!(('a' <= *s && *s <= 'z') || ('A' <= *s && *s <= 'Z') || ('0' <= *s && *s <= '9')))
            return false;
    return true;
}

/* Reports a value of `key` already used by an earlier entry (`prev` values). */
static void check_unique(struct cfg__ld *ld, const struct cfg__node *item, const char *key,
                         const char *v, const char *const *prev, size_t n_prev, size_t stride)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n_prev; i++) {
        const char *o = *(const char *const *)((const char *)prev + i * stride);
        if (o && strcmp(o, v) == 0) {
            char *q = cfg__quoted(v);
            cfg__err(ld, cfg__map_find(item, key), "duplicate %s %s", key, q);
            free(q);
            return;
        }
    }
}

static void load_identity(struct cfg__ld *ld, const struct cfg__node *item, size_t idx)
{
    struct cfg *c = ld->cfg;
    struct identity_parse p = {.id = &c->identities[idx]};
    cfg__walk(ld, item, "identities", identity_keys, GATE_ARRAY_LEN(identity_keys), &p);
    p.id->name = p.name;
    p.id->access_key_id = p.access_key_id;
    check_unique(ld, item, "name", p.name, (const char *const *)&c->identities[0].name, idx,
                 sizeof(*c->identities));
    check_unique(ld, item, "access_key_id", p.access_key_id,
                 (const char *const *)&c->identities[0].access_key_id, idx, sizeof(*c->identities));
    /* The key id travels inside the SigV4 Credential field, split on '/'. */
    if (p.access_key_id && !is_alnum_str(p.access_key_id))
        cfg__err(ld, cfg__map_find(item, "access_key_id"),
                 "access_key_id: only letters and digits are allowed");
    if (item->kind == CFG__MAP)
        p.id->secret_access_key = cfg__resolve_secret(ld, item, "secret_access_key_env", p.secret_env,
                                                 "secret_access_key_file", p.secret_file);
    set_policy(ld, item, &p);
    free(p.secret_env);
    free(p.secret_file);
    free(p.policy_file);
}

void cfg__load_identities(struct cfg__ld *ld, const struct cfg__node *n)
{
    struct cfg__node *const *items;
    size_t count;
    if (!cfg__get_seq(ld, n, "identities", &items, &count) || count == 0)
        return;
    struct cfg *c = ld->cfg;
    c->identities = xcalloc(count, sizeof(*c->identities));
    c->n_identities = count;
    for (size_t i = 0; i < count; i++)
        load_identity(ld, items[i], i);
}

/* ================= api keys ================= */

struct api_key_parse {
    char *name;
    char *value_env;
    char *value_file;
};

static const struct cfg__key api_key_keys[] = {
    CFG__KEY("name", CFG__K_STR, struct api_key_parse, name, true),
    CFG__KEY("value_env", CFG__K_STR, struct api_key_parse, value_env, false),
    CFG__KEY("value_file", CFG__K_STR, struct api_key_parse, value_file, false),
};

static void load_api_key(struct cfg__ld *ld, const struct cfg__node *item, size_t idx)
{
    struct cfg *c = ld->cfg;
    struct api_key_parse p = {0};
    cfg__walk(ld, item, "api_keys", api_key_keys, GATE_ARRAY_LEN(api_key_keys), &p);
    c->api_keys[idx].name = p.name;
    check_unique(ld, item, "name", p.name, (const char *const *)&c->api_keys[0].name, idx,
                 sizeof(*c->api_keys));
    if (item->kind == CFG__MAP)
        c->api_keys[idx].value =
            cfg__resolve_secret(ld, item, "value_env", p.value_env, "value_file", p.value_file);
    free(p.value_env);
    free(p.value_file);
}

void cfg__load_api_keys(struct cfg__ld *ld, const struct cfg__node *n)
{
    struct cfg__node *const *items;
    size_t count;
    if (!cfg__get_seq(ld, n, "api_keys", &items, &count) || count == 0)
        return;
    struct cfg *c = ld->cfg;
    c->api_keys = xcalloc(count, sizeof(*c->api_keys));
    c->n_api_keys = count;
    for (size_t i = 0; i < count; i++)
        load_api_key(ld, items[i], i);
}

void cfg__free_identities(struct cfg *c)
{
    for (size_t i = 0; i < c->n_identities; i++) {
        struct cfg_identity *id = &c->identities[i];
        free(id->name);
        free(id->access_key_id);
        free_secret(id->secret_access_key);
        json_decref(id->policy);
    }
    free(c->identities);
    for (size_t i = 0; i < c->n_api_keys; i++) {
        free(c->api_keys[i].name);
        free_secret(c->api_keys[i].value);
    }
    free(c->api_keys);
}
