/*
 * walk — error collection, scalar getters and the key-table walker every section
 * uses. A section is a static table of struct cfg__key; cfg__walk reports unknown,
 * duplicate and missing keys against it, so no section can silently ignore a key.
 *
 * Typing rules (docs/config.md): booleans are plain true/false, integers plain
 * decimal, strings any scalar except a plain null; a plain null (`key:`, `~`)
 * stands for an empty mapping or list.
 */
#include "config/config_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ================= errors ================= */

/* User text longer than this is cut in messages. */
#define QUOTE_MAX 80

static void add_line(struct cfg__ld *ld, int line, int col, const char *fmt, va_list ap)
{
    struct buf b;
    buf_init(&b);
    buf_appendf(&b, "%s:%d:%d: ", ld->name, line, col);
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    if (n > 0) {
        buf_reserve(&b, (size_t)n);
        vsnprintf(b.data + b.len, (size_t)n + 1, fmt, ap2);
        b.len += (size_t)n;
    }
    va_end(ap2);
    struct cfg_errors *e = ld->errs;
    e->lines = xrealloc(e->lines, (e->n + 1) * sizeof(*e->lines));
    e->lines[e->n++] = buf_steal(&b, NULL);
}

void cfg__err_at(struct cfg__ld *ld, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_line(ld, line, col, fmt, ap);
    va_end(ap);
}

void cfg__err(struct cfg__ld *ld, const struct cfg__node *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_line(ld, at ? at->line : 1, at ? at->col : 1, fmt, ap);
    va_end(ap);
}

void cfg__quote(struct buf *b, const char *s)
{
    buf_append_char(b, '"');
    size_t i;
    for (i = 0; s[i] != '\0' && i < QUOTE_MAX; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            buf_appendf(b, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            buf_appendf(b, "\\x%02x", c);
        else
            buf_append_char(b, (char)c);
    }
    buf_append_char(b, '"');
    if (s[i] != '\0')
        buf_append_str(b, "...");
}

char *cfg__quoted(const char *s)
{
    struct buf b;
    buf_init(&b);
    cfg__quote(&b, s);
    return buf_steal(&b, NULL);
}

/* ================= scalar getters ================= */

static const char *kind_name(const struct cfg__node *n)
{
    if (n->kind == CFG__MAP)
        return "a mapping";
    if (n->kind == CFG__SEQ)
        return "a list";
    return cfg__is_null(n) ? "null" : "a scalar";
}

bool cfg__get_str(struct cfg__ld *ld, const struct cfg__node *n, const char *key, char **out)
{
    if (n->kind != CFG__SCALAR || cfg__is_null(n)) {
        cfg__err(ld, n, "%s: expected string, got %s", key, kind_name(n));
        return false;
    }
    free(*out);
    *out = xstrndup(n->str, n->len);
    return true;
}

bool cfg__get_bool(struct cfg__ld *ld, const struct cfg__node *n, const char *key, bool *out)
{
    if (n->kind == CFG__SCALAR && n->plain && strcmp(n->str, "true") == 0) {
        *out = true;
        return true;
    }
    if (n->kind == CFG__SCALAR && n->plain && strcmp(n->str, "false") == 0) {
        *out = false;
        return true;
    }
    cfg__err(ld, n, "%s: expected boolean (true or false)", key);
    return false;
}

/* Plain decimal with an optional '-'; no '+', no leading zeros games, no 0x. */
static bool parse_i64(const char *s, int64_t *out)
{
    bool neg = *s == '-';
    const char *d = neg ? s + 1 : s;
    uint64_t v;
    if (!str_to_u64(d, strlen(d), &v) || v > (uint64_t)INT64_MAX)
        return false;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return true;
}

bool cfg__get_int(struct cfg__ld *ld, const struct cfg__node *n, const char *key, int64_t min,
                  int64_t max, int64_t *out)
{
    int64_t v;
    if (n->kind != CFG__SCALAR || !n->plain || !parse_i64(n->str, &v)) {
        cfg__err(ld, n, "%s: expected integer", key);
        return false;
    }
    if (v < min || v > max) {
        cfg__err(ld, n, "%s: must be between %lld and %lld", key, (long long)min, (long long)max);
        return false;
    }
    *out = v;
    return true;
}

bool cfg__get_seq(struct cfg__ld *ld, const struct cfg__node *n, const char *key,
                  struct cfg__node *const **items, size_t *n_items)
{
    *items = NULL;
    *n_items = 0;
    if (cfg__is_null(n))
        return true;
    if (n->kind != CFG__SEQ) {
        cfg__err(ld, n, "%s: expected list, got %s", key, kind_name(n));
        return false;
    }
    *items = n->kids;
    *n_items = n->n_kids;
    return true;
}

bool cfg__expect_map(struct cfg__ld *ld, const struct cfg__node *n, const char *key)
{
    if (cfg__is_null(n) || n->kind == CFG__MAP)
        return true;
    cfg__err(ld, n, "%s: expected mapping, got %s", key, kind_name(n));
    return false;
}

/* ================= the walker ================= */

/* Index of the first earlier key equal to key i, or i. */
static size_t first_same_key(const struct cfg__node *map, size_t i, bool ignore_case)
{
    const struct cfg__node *k = cfg__map_key(map, i);
    for (size_t j = 0; j < i; j++) {
        const struct cfg__node *o = cfg__map_key(map, j);
        if (o->kind != CFG__SCALAR || k->kind != CFG__SCALAR)
            continue;
        bool same = ignore_case ? str_ieq(o->str, o->len, k->str, k->len)
                                : o->len == k->len && memcmp(o->str, k->str, k->len) == 0;
        if (same)
            return j;
    }
    return i;
}

void cfg__check_dup_keys(struct cfg__ld *ld, const struct cfg__node *map, const char *what,
                         bool ignore_case)
{
    for (size_t i = 0; i < cfg__map_len(map); i++) {
        size_t j = first_same_key(map, i, ignore_case);
        if (j == i)
            continue;
        const struct cfg__node *k = cfg__map_key(map, i);
        const struct cfg__node *o = cfg__map_key(map, j);
        char *q = cfg__quoted(k->str);
        cfg__err(ld, k, "duplicate %s %s (first at %d:%d)", what, q, o->line, o->col);
        free(q);
    }
}

static const struct cfg__key *find_key(const struct cfg__key *keys, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

static void store_int(const struct cfg__key *k, void *field, int64_t v)
{
    switch (k->type) {
    case CFG__K_INT:
        *(int *)field = (int)v;
        break;
    case CFG__K_U32:
        *(uint32_t *)field = (uint32_t)v;
        break;
    case CFG__K_SIZE:
        *(size_t *)field = (size_t)v;
        break;
    default:
        *(uint64_t *)field = (uint64_t)v;
        break;
    }
}

/* Stores one value according to its table entry. */
static void apply_key(struct cfg__ld *ld, const struct cfg__key *k, const struct cfg__node *v,
                      void *obj)
{
    char *field = (char *)obj + k->off;
    bool ok = false;
    int64_t iv;
    switch (k->type) {
    case CFG__K_STR:
        ok = cfg__get_str(ld, v, k->name, (char **)field);
        break;
    case CFG__K_BOOL:
        ok = cfg__get_bool(ld, v, k->name, (bool *)field);
        break;
    case CFG__K_INT:
    case CFG__K_U32:
    case CFG__K_SIZE:
    case CFG__K_U64:
        ok = cfg__get_int(ld, v, k->name, k->min, k->max, &iv);
        if (ok)
            store_int(k, field, iv);
        break;
    case CFG__K_NODE:
        *(const struct cfg__node **)field = v;
        ok = true;
        break;
    case CFG__K_FN:
        k->fn(ld, v, obj);
        break;
    }
    if (ok && k->has_off >= 0)
        *(bool *)((char *)obj + k->has_off) = true;
}

static void report_missing(struct cfg__ld *ld, const struct cfg__node *map, const char *section,
                           const struct cfg__key *keys, size_t n_keys, const bool *seen)
{
    for (size_t i = 0; i < n_keys; i++)
        if (keys[i].required && !seen[i])
            cfg__err(ld, map, "missing key \"%s\" in %s", keys[i].name, section);
}

void cfg__walk(struct cfg__ld *ld, const struct cfg__node *map, const char *section,
               const struct cfg__key *keys, size_t n_keys, void *obj)
{
    if (!cfg__expect_map(ld, map, section))
        return;
    bool seen[32] = {false};
    GATE_ASSERT(n_keys <= GATE_ARRAY_LEN(seen));
    cfg__check_dup_keys(ld, map, "key", false);
    for (size_t i = 0; i < cfg__map_len(map); i++) {
        const struct cfg__node *kn = cfg__map_key(map, i);
        if (kn->kind != CFG__SCALAR) {
            cfg__err(ld, kn, "keys must be strings in %s", section);
            continue;
        }
        if (first_same_key(map, i, false) != i)
            continue;
        const struct cfg__key *k = find_key(keys, n_keys, kn->str);
        if (k == NULL) {
            char *q = cfg__quoted(kn->str);
            cfg__err(ld, kn, "unknown key %s in %s", q, section);
            free(q);
            continue;
        }
        seen[k - keys] = true;
        apply_key(ld, k, cfg__map_val(map, i), obj);
    }
    report_missing(ld, map, section, keys, n_keys, seen);
}
