/*
 * config_int — declarations shared by the files of src/config/ only.
 *
 * Loading is two steps: yaml_tree.c turns the libyaml event stream into a small
 * tree of nodes that remember their line and column, then the section walkers
 * (load.c, server.c, secrets.c, api.c, stage.c) read that tree through key
 * tables (walk.c) into struct cfg. The tree lives only for one load.
 */
#ifndef GATE_CONFIG_INT_H
#define GATE_CONFIG_INT_H

#include "config/config.h"
#include "util/util.h"

#include <stddef.h>

/* ================= YAML node tree ================= */

/* Nesting deeper than this is refused: keeps recursion bounded on hostile input. */
#define CFG__MAX_DEPTH 64
/* Files larger than this are refused before parsing. */
#define CFG__MAX_FILE_BYTES (16u << 20)

enum cfg__kind { CFG__SCALAR = 0, CFG__SEQ, CFG__MAP };

struct cfg__node {
    enum cfg__kind kind;
    int line; /* 1-based position of the node's first character */
    int col;
    char *str;  /* owned (SCALAR): NUL-terminated text; NUL bytes inside are refused */
    size_t len; /* SCALAR: strlen(str) */
    bool plain; /* SCALAR: written unquoted and untagged, so it may mean null/bool/int */
    struct cfg__node **kids; /* owned: SEQ items, or MAP key, value, key, value... */
    size_t n_kids;
};

struct cfg__ld;

/* Parses one YAML document. Returns 0 and *root (owned: cfg__tree_free; NULL for an
 * empty document) or -1 after reporting the syntax error through `ld`. */
int cfg__tree_parse(struct cfg__ld *ld, const char *yaml, size_t len, struct cfg__node **root);
void cfg__tree_free(struct cfg__node *n);

/* Map helpers: number of pairs, and the i-th key / value (borrowed). */
size_t cfg__map_len(const struct cfg__node *m);
const struct cfg__node *cfg__map_key(const struct cfg__node *m, size_t i);
const struct cfg__node *cfg__map_val(const struct cfg__node *m, size_t i);
/* Value of `key` in mapping m (borrowed), NULL when absent or m is no mapping. */
const struct cfg__node *cfg__map_find(const struct cfg__node *m, const char *key);
/* True for a plain "", "~", "null": treated as an empty mapping or list. */
bool cfg__is_null(const struct cfg__node *n);

/* ================= loader context and errors ================= */

struct cfg__ld {
    const char *name;        /* borrowed: FILE in messages */
    struct cfg *cfg;         /* the snapshot being filled */
    struct cfg_errors *errs; /* borrowed: where error lines go */
    unsigned flags;          /* CFG_LOAD_* */
};

void cfg__err(struct cfg__ld *ld, const struct cfg__node *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void cfg__err_at(struct cfg__ld *ld, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Appends s to b quoted, with control bytes escaped and long text cut: user text in
 * messages stays one readable line. */
void cfg__quote(struct buf *b, const char *s);
/* The same as a new string: owned, free(). */
char *cfg__quoted(const char *s);
/* A secret from exactly one of the keys env_key (a variable's name, env_name)
 * and file_key (a path, file) of `item`: owned (wipe before free), or NULL
 * after reporting. secrets.c */
char *cfg__resolve_secret(struct cfg__ld *ld, const struct cfg__node *item, const char *env_key,
                          const char *env_name, const char *file_key, const char *file);

/* ================= key tables and scalar getters ================= */

enum cfg__ktype {
    CFG__K_STR = 0, /* char *, any non-null scalar */
    CFG__K_BOOL,    /* bool, plain true/false */
    CFG__K_INT,     /* int */
    CFG__K_U32,     /* uint32_t */
    CFG__K_SIZE,    /* size_t */
    CFG__K_U64,     /* uint64_t */
    CFG__K_NODE,    /* const struct cfg__node *: kept for a later pass */
    CFG__K_FN,      /* custom handler */
};

typedef void (*cfg__key_cb)(struct cfg__ld *ld, const struct cfg__node *val, void *obj);

/* One accepted key of a section. Offsets are into the `obj` given to cfg__walk. */
struct cfg__key {
    const char *name;
    enum cfg__ktype type;
    size_t off;
    long has_off; /* offset of the bool has_<key> flag, or -1 */
    int64_t min, max;
    bool required;
    cfg__key_cb fn;
};

#define CFG__KEY(name, type, st, field, req)                                                       \
    {                                                                                              \
        name, type, offsetof(st, field), -1, 0, 0, req, NULL                                       \
    }
#define CFG__KEY_INT(name, type, st, field, lo, hi)                                                \
    {                                                                                              \
        name, type, offsetof(st, field), -1, lo, hi, false, NULL                                   \
    }
#define CFG__KEY_OPT(name, type, st, field, lo, hi)                                                \
    {                                                                                              \
        name, type, offsetof(st, field), (long)offsetof(st, has_##field), lo, hi, false, NULL      \
    }
#define CFG__KEY_FN(name, fn, req)                                                                 \
    {                                                                                              \
        name, CFG__K_FN, 0, -1, 0, 0, req, fn                                                      \
    }

/* Checks that `map` is a mapping (null = empty), reports unknown, duplicate and
 * missing keys, and stores or dispatches each known key. */
void cfg__walk(struct cfg__ld *ld, const struct cfg__node *map, const char *section,
               const struct cfg__key *keys, size_t n_keys, void *obj);

/* Scalar getters: report "KEY: expected ..." and return false on a wrong type. */
bool cfg__get_str(struct cfg__ld *ld, const struct cfg__node *n, const char *key, char **out);
bool cfg__get_bool(struct cfg__ld *ld, const struct cfg__node *n, const char *key, bool *out);
bool cfg__get_int(struct cfg__ld *ld, const struct cfg__node *n, const char *key, int64_t min,
                  int64_t max, int64_t *out);
/* Items of a list (borrowed); NULL with n 0 for null; reports a non-list. */
bool cfg__get_seq(struct cfg__ld *ld, const struct cfg__node *n, const char *key,
                  struct cfg__node *const **items, size_t *n_items);
bool cfg__expect_map(struct cfg__ld *ld, const struct cfg__node *n, const char *key);
/* Reports the second and later of keys equal under `ieq`; `what` names them. */
void cfg__check_dup_keys(struct cfg__ld *ld, const struct cfg__node *map, const char *what,
                         bool ignore_case);

/* ================= sections ================= */

void cfg__load_server(struct cfg__ld *ld, const struct cfg__node *n);
void cfg__load_identities(struct cfg__ld *ld, const struct cfg__node *n);
void cfg__load_api_keys(struct cfg__ld *ld, const struct cfg__node *n);
void cfg__load_apis(struct cfg__ld *ld, const struct cfg__node *n);
/* Stages of one api, after its resources are known. */
void cfg__load_stages(struct cfg__ld *ld, struct cfg_api *api, const struct cfg__node *n);

/* Template helpers (api.c) used by stage.c. */
const struct cfg_resource *cfg__find_resource(const struct cfg_api *api, const char *path);
bool cfg__resource_has_method(const struct cfg_resource *r, const char *method);
/* True when {name} or {name+} is a segment of template `tmpl`. */
bool cfg__template_has_param(const char *tmpl, const char *name, size_t name_len);
/* Api ids and stage names: 1..128 of [A-Za-z0-9_-]. */
bool cfg__is_name(const char *s);
/* Upper-cases and checks an HTTP method name; returns the canonical static name or NULL. */
const char *cfg__method_name(const char *s);

void cfg__free_server(struct cfg_server *s);
void cfg__free_identities(struct cfg *c);
void cfg__free_apis(struct cfg *c);

#endif
