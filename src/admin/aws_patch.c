/*
 * admin/aws_patch.c — the body of API Gateway's UpdateStage:
 * {"patchOperations": [{"op": "replace", "path": "/~1pets/GET/caching/enabled", "value": "true"}]}.
 *
 * Only the shape is checked here (what botocore and the JS SDK serialise: op,
 * path, value, from, all strings); what an operation means is the config
 * module's business (cfg_stage_patch), so a live change obeys the config's
 * rules. Strings are borrowed from the parsed document, which the result keeps.
 */
#include <stdlib.h>
#include <string.h>

#include "admin/admin_int.h"

static const char *take_string(json_t *op, const char *key, bool required, const char **out)
{
    json_t *v = json_object_get(op, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return required ? "patchOperations: every operation needs op and path" : NULL;
    if (!json_is_string(v))
        return "patchOperations: op, path, value and from must be strings";
    size_t len = json_string_length(v);
    if (len > ADMIN_MAX_PATCH_STRING)
        return "patchOperations: a string is longer than 4096 bytes";
    if (memchr(json_string_value(v), '\0', len))
        return "patchOperations: a string holds a NUL byte";
    *out = json_string_value(v);
    return NULL;
}

static const char *take_op(json_t *item, struct admin__patch_op *op)
{
    if (!json_is_object(item))
        return "patchOperations: every operation must be an object";
    const char *key;
    json_t *v;
    json_object_foreach(item, key, v)
    {
        if (strcmp(key, "op") && strcmp(key, "path") && strcmp(key, "value") && strcmp(key, "from"))
            return "patchOperations: unknown member (expected op, path, value, from)";
    }
    const char *err = take_string(item, "op", true, &op->op);
    if (!err)
        err = take_string(item, "path", true, &op->path);
    if (!err)
        err = take_string(item, "value", false, &op->value);
    if (!err)
        err = take_string(item, "from", false, &op->from);
    return err;
}

static const char *take_ops(json_t *doc, struct admin__patch *out)
{
    if (!json_is_object(doc))
        return "the body must be a JSON object";
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v)
    {
        if (strcmp(key, "patchOperations") != 0)
            return "unknown member (expected patchOperations)";
    }
    json_t *arr = json_object_get(doc, "patchOperations");
    if (!arr || json_is_null(arr))
        return NULL;
    if (!json_is_array(arr))
        return "patchOperations must be an array";
    size_t n = json_array_size(arr);
    if (n > ADMIN_MAX_PATCH_OPS)
        return "too many patch operations (at most 200)";
    out->ops = xcalloc(n ? n : 1, sizeof(*out->ops));
    for (size_t i = 0; i < n; i++) {
        const char *err = take_op(json_array_get(arr, i), &out->ops[i]);
        if (err)
            return err;
        out->n_ops++;
    }
    return NULL;
}

int admin__patch_parse(const char *body, size_t len, struct admin__patch *out, const char **err)
{
    memset(out, 0, sizeof(*out));
    *err = NULL;
    size_t i = 0;
    while (i < len && strchr(" \t\r\n", body[i]) && body[i])
        i++;
    if (i == len)
        return 0; /* no body: no operations */
    json_error_t je;
    /* Duplicate keys would make "which value wins" depend on the parser: refuse them. */
    out->doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!out->doc) {
        *err = "the body is not valid JSON";
        return -1;
    }
    *err = take_ops(out->doc, out);
    if (*err) {
        admin__patch_free(out);
        return -1;
    }
    return 0;
}

void admin__patch_free(struct admin__patch *p)
{
    json_decref(p->doc);
    free(p->ops);
    memset(p, 0, sizeof(*p));
}
