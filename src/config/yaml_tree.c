/*
 * yaml_tree — libyaml's event stream turned into a tree of cfg__node that keeps
 * each node's 1-based line and column, so validation can point at the key or
 * value it complains about.
 *
 * Invariants: one document only; aliases are refused (an alias would let one
 * small file expand into a huge tree, and nobody needs them in a gateway
 * config); nesting is bounded by CFG__MAX_DEPTH so the recursive walkers stay
 * within the stack whatever the input.
 */
#include "config/config_int.h"

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct tree {
    struct cfg__ld *ld;
    yaml_parser_t parser;
    const char *input;
    size_t input_len;
    bool failed;
};

/* ================= errors ================= */

/* Reader errors (bad UTF-8, NUL bytes) carry only a byte offset: turn it into a
 * line and column the same way libyaml counts them. */
static void offset_to_mark(const char *s, size_t len, size_t off, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (s[i] == '\n') {
            (*line)++;
            *col = 1;
        } else if (((unsigned char)s[i] & 0xC0) != 0x80) {
            (*col)++;
        }
    }
}

static void report_parser_error(struct tree *t)
{
    yaml_parser_t *p = &t->parser;
    int line = (int)p->problem_mark.line + 1;
    int col = (int)p->problem_mark.column + 1;
    if (p->error == YAML_READER_ERROR)
        offset_to_mark(t->input, t->input_len, p->problem_offset, &line, &col);
    const char *problem = p->problem ? p->problem : "cannot parse";
    if (p->context)
        cfg__err_at(t->ld, line, col, "YAML syntax error: %s %s", problem, p->context);
    else
        cfg__err_at(t->ld, line, col, "YAML syntax error: %s", problem);
    t->failed = true;
}

/* Next event into *ev; false (error reported) when libyaml fails. */
static bool next_event(struct tree *t, yaml_event_t *ev)
{
    if (yaml_parser_parse(&t->parser, ev))
        return true;
    report_parser_error(t);
    return false;
}

/* ================= nodes ================= */

static struct cfg__node *new_node(enum cfg__kind kind, const yaml_event_t *ev)
{
    struct cfg__node *n = xcalloc(1, sizeof(*n));
    n->kind = kind;
    n->line = (int)ev->start_mark.line + 1;
    n->col = (int)ev->start_mark.column + 1;
    return n;
}

static void add_kid(struct cfg__node *parent, struct cfg__node *kid)
{
    parent->kids = xrealloc(parent->kids, (parent->n_kids + 1) * sizeof(*parent->kids));
    parent->kids[parent->n_kids++] = kid;
}

static struct cfg__node *scalar_node(struct tree *t, const yaml_event_t *ev)
{
    struct cfg__node *n = new_node(CFG__SCALAR, ev);
    const char *v = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    /* A "\0" escape would silently cut every C string made from the value. */
    if (memchr(v, '\0', len) != NULL) {
        cfg__err(t->ld, n, "NUL bytes are not allowed in values");
        len = strlen(v);
    }
    n->str = xstrndup(v, len);
    n->len = len;
    n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && ev->data.scalar.tag == NULL;
    return n;
}

static struct cfg__node *parse_node(struct tree *t, yaml_event_t *ev, int depth);

/* Reads children until the matching end event; `ev` is the start event. */
static struct cfg__node *parse_collection(struct tree *t, yaml_event_t *ev, int depth,
                                          enum cfg__kind kind)
{
    yaml_event_type_t end = kind == CFG__MAP ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;
    struct cfg__node *n = new_node(kind, ev);
    if (depth >= CFG__MAX_DEPTH) {
        cfg__err(t->ld, n, "nesting deeper than %d levels", CFG__MAX_DEPTH);
        t->failed = true;
        return n;
    }
    for (;;) {
        yaml_event_t kid_ev;
        if (!next_event(t, &kid_ev))
            return n;
        if (kid_ev.type == end) {
            yaml_event_delete(&kid_ev);
            return n;
        }
        struct cfg__node *kid = parse_node(t, &kid_ev, depth + 1);
        yaml_event_delete(&kid_ev);
        if (kid)
            add_kid(n, kid);
        if (t->failed)
            return n;
    }
}

/* Builds the node that starts with `ev` (the caller deletes `ev`). NULL only on
 * failure, which t->failed also says. */
static struct cfg__node *parse_node(struct tree *t, yaml_event_t *ev, int depth)
{
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        return scalar_node(t, ev);
    case YAML_SEQUENCE_START_EVENT:
        return parse_collection(t, ev, depth, CFG__SEQ);
    case YAML_MAPPING_START_EVENT:
        return parse_collection(t, ev, depth, CFG__MAP);
    case YAML_ALIAS_EVENT: {
        /* Stand in an empty scalar so the walkers carry on and report the rest. */
        struct cfg__node *n = new_node(CFG__SCALAR, ev);
        n->str = xstrdup("");
        cfg__err(t->ld, n, "YAML aliases are not supported");
        return n;
    }
    default:
        cfg__err_at(t->ld, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
                    "unexpected YAML event");
        t->failed = true;
        return NULL;
    }
}

/* Skips to the first event of the document body; false at end of stream or error. */
static bool skip_to_body(struct tree *t, yaml_event_t *ev)
{
    for (;;) {
        if (!next_event(t, ev))
            return false;
        if (ev->type == YAML_STREAM_END_EVENT) {
            yaml_event_delete(ev);
            return false;
        }
        if (ev->type != YAML_STREAM_START_EVENT && ev->type != YAML_DOCUMENT_START_EVENT)
            return true;
        yaml_event_delete(ev);
    }
}

/* After the first document only the stream end may follow. */
static void expect_end(struct tree *t)
{
    yaml_event_t ev;
    if (!next_event(t, &ev))
        return;
    if (ev.type == YAML_DOCUMENT_END_EVENT) {
        yaml_event_delete(&ev);
        if (!next_event(t, &ev))
            return;
    }
    if (ev.type != YAML_STREAM_END_EVENT) {
        cfg__err_at(t->ld, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
                    "only one YAML document is allowed");
        t->failed = true;
    }
    yaml_event_delete(&ev);
}

int cfg__tree_parse(struct cfg__ld *ld, const char *yaml, size_t len, struct cfg__node **root)
{
    struct tree t = {.ld = ld, .input = yaml, .input_len = len};
    *root = NULL;
    if (!yaml_parser_initialize(&t.parser)) {
        cfg__err_at(ld, 0, 0, "cannot initialise the YAML parser");
        return -1;
    }
    yaml_parser_set_input_string(&t.parser, (const unsigned char *)yaml, len);
    yaml_event_t ev;
    if (skip_to_body(&t, &ev)) {
        *root = parse_node(&t, &ev, 0);
        yaml_event_delete(&ev);
        if (!t.failed)
            expect_end(&t);
    }
    yaml_parser_delete(&t.parser);
    if (t.failed) {
        cfg__tree_free(*root);
        *root = NULL;
        return -1;
    }
    return 0;
}

void cfg__tree_free(struct cfg__node *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->n_kids; i++)
        cfg__tree_free(n->kids[i]);
    free(n->kids);
    free(n->str);
    free(n);
}

/* ================= accessors ================= */

size_t cfg__map_len(const struct cfg__node *m)
{
    return m && m->kind == CFG__MAP ? m->n_kids / 2 : 0;
}

const struct cfg__node *cfg__map_key(const struct cfg__node *m, size_t i)
{
    return m->kids[2 * i];
}

const struct cfg__node *cfg__map_val(const struct cfg__node *m, size_t i)
{
    return m->kids[2 * i + 1];
}

const struct cfg__node *cfg__map_find(const struct cfg__node *m, const char *key)
{
    for (size_t i = 0; i < cfg__map_len(m); i++) {
        const struct cfg__node *k = cfg__map_key(m, i);
        if (k->kind == CFG__SCALAR && strcmp(k->str, key) == 0)
            return cfg__map_val(m, i);
    }
    return NULL;
}

bool cfg__is_null(const struct cfg__node *n)
{
    if (n == NULL)
        return true;
    if (n->kind != CFG__SCALAR || !n->plain)
        return false;
    return n->len == 0 || strcmp(n->str, "~") == 0 || strcmp(n->str, "null") == 0 ||
           strcmp(n->str, "Null") == 0 || strcmp(n->str, "NULL") == 0;
}
