/*
 * load — entry points of the config module: read the file, build the YAML tree,
 * walk the top-level sections into a new struct cfg, and own the snapshot's
 * lifetime (refcount, free, lookups).
 *
 * Sections are walked in dependency order, not file order: apis first, because
 * server.base_path_mappings names apis and stages. A snapshot is returned only
 * when no error was reported; otherwise everything built so far is freed.
 */
#include "config/config_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ================= top level ================= */

struct top {
    const struct cfg__node *server;
    const struct cfg__node *identities;
    const struct cfg__node *api_keys;
    const struct cfg__node *apis;
};

static const struct cfg__key top_keys[] = {
    CFG__KEY("server", CFG__K_NODE, struct top, server, false),
    CFG__KEY("identities", CFG__K_NODE, struct top, identities, false),
    CFG__KEY("api_keys", CFG__K_NODE, struct top, api_keys, false),
    CFG__KEY("apis", CFG__K_NODE, struct top, apis, true),
};

static void load_tree(struct cfg__ld *ld, const struct cfg__node *root)
{
    struct top t = {0};
    if (root == NULL) {
        cfg__err_at(ld, 1, 1, "the file is empty: at least \"apis\" is required");
        return;
    }
    cfg__walk(ld, root, "the top level", top_keys, GATE_ARRAY_LEN(top_keys), &t);
    cfg__load_apis(ld, t.apis);
    cfg__load_identities(ld, t.identities);
    cfg__load_api_keys(ld, t.api_keys);
    cfg__load_server(ld, t.server);
}

/* ================= entry points ================= */

static void errors_init(struct cfg_errors *e)
{
    e->lines = NULL;
    e->n = 0;
}

void cfg_errors_free(struct cfg_errors *e)
{
    if (e == NULL)
        return;
    for (size_t i = 0; i < e->n; i++)
        free(e->lines[i]);
    free(e->lines);
    errors_init(e);
}

static void cfg_free(struct cfg *c)
{
    cfg__free_apis(c);
    cfg__free_identities(c);
    cfg__free_server(&c->server);
    free(c->path);
    free(c);
}

/* ================= error order ================= */

struct err_pos {
    long line;
    long col;
    size_t idx;
    char *text;
};

static int cmp_err_pos(const void *a, const void *b)
{
    const struct err_pos *x = a;
    const struct err_pos *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Sections are checked in dependency order; users read errors in file order. Every
 * line starts with "NAME:LINE:COL: ", so the position is parsed back after NAME. */
static void sort_errors(struct cfg_errors *e, const char *name)
{
    size_t skip = strlen(name) + 1;
    struct err_pos *pos = xcalloc(e->n, sizeof(*pos));
    for (size_t i = 0; i < e->n; i++) {
        char *end;
        pos[i].line = strtol(e->lines[i] + skip, &end, 10);
        pos[i].col = *end == ':' ? strtol(end + 1, NULL, 10) : 0;
        pos[i].idx = i;
        pos[i].text = e->lines[i];
    }
    qsort(pos, e->n, sizeof(*pos), cmp_err_pos);
    for (size_t i = 0; i < e->n; i++)
        e->lines[i] = pos[i].text;
    free(pos);
}

static int load_string(const char *name, const char *yaml, size_t len, unsigned flags,
                       struct cfg **out, struct cfg_errors *errs)
{
    struct cfg_errors scratch;
    struct cfg_errors *e = errs ? errs : &scratch;
    errors_init(e);
    *out = NULL;

    struct cfg *c = xcalloc(1, sizeof(*c));
    atomic_init(&c->refs, 1);
    c->path = xstrdup(name);
    struct cfg__ld ld = {.name = name, .cfg = c, .errs = e, .flags = flags};

    struct cfg__node *root = NULL;
    if (cfg__tree_parse(&ld, yaml, len, &root) == 0)
        load_tree(&ld, root);
    cfg__tree_free(root);

    if (e->n > 0) {
        sort_errors(e, name);
        cfg_free(c);
        if (e == &scratch)
            cfg_errors_free(&scratch);
        return -1;
    }
    *out = c;
    return 0;
}

int cfg_load_string(const char *name, const char *yaml, size_t len, struct cfg **out,
                    struct cfg_errors *errs)
{
    return load_string(name, yaml, len, 0, out, errs);
}

/* Reads the whole file; returns an owned buffer or NULL with errno set. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    struct buf b;
    buf_init(&b);
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        buf_append(&b, chunk, n);
        if (b.len > CFG__MAX_FILE_BYTES) {
            errno = EFBIG;
            break;
        }
    }
    int failed = ferror(f) || b.len > CFG__MAX_FILE_BYTES;
    int saved = errno;
    fclose(f);
    if (failed) {
        buf_free(&b);
        errno = saved ? saved : EIO;
        return NULL;
    }
    if (b.data == NULL)
        buf_reserve(&b, 0);
    return buf_steal(&b, len);
}

int cfg_load(const char *path, struct cfg **out, struct cfg_errors *errs)
{
    return cfg_load_flags(path, 0, out, errs);
}

int cfg_load_flags(const char *path, unsigned flags, struct cfg **out, struct cfg_errors *errs)
{
    size_t len = 0;
    char *text = read_file(path, &len);
    if (text == NULL) {
        int err = errno;
        *out = NULL;
        if (errs) {
            errors_init(errs);
            struct cfg__ld ld = {.name = path, .errs = errs};
            cfg__err_at(&ld, 0, 0, "cannot read: %s", strerror(err));
        }
        return -1;
    }
    int rc = load_string(path, text, len, flags, out, errs);
    free(text);
    return rc;
}

/* ================= lifetime and lookups ================= */

struct cfg *cfg_ref(struct cfg *c)
{
    atomic_fetch_add(&c->refs, 1);
    return c;
}

void cfg_release(struct cfg **c)
{
    if (c == NULL || *c == NULL)
        return;
    if (atomic_fetch_sub(&(*c)->refs, 1) == 1)
        cfg_free(*c);
    *c = NULL;
}

const struct cfg_api *cfg_find_api(const struct cfg *c, const char *id)
{
    for (size_t i = 0; i < c->n_apis; i++)
        if (c->apis[i].id && strcmp(c->apis[i].id, id) == 0)
            return &c->apis[i];
    return NULL;
}

const struct cfg_stage *cfg_find_stage(const struct cfg_api *api, const char *name)
{
    for (size_t i = 0; i < api->n_stages; i++)
        if (api->stages[i].name && strcmp(api->stages[i].name, name) == 0)
            return &api->stages[i];
    return NULL;
}

const char *cfg_unauth_strategy_name(enum cfg_unauth_strategy s)
{
    switch (s) {
    case CFG_UNAUTH_FAIL_WITH_403:
        return "FAIL_WITH_403";
    case CFG_UNAUTH_SUCCEED_WITH_RESPONSE_HEADER:
        return "SUCCEED_WITH_RESPONSE_HEADER";
    case CFG_UNAUTH_SUCCEED_WITHOUT_RESPONSE_HEADER:
        return "SUCCEED_WITHOUT_RESPONSE_HEADER";
    }
    return "?";
}
