/*
 * admin/invalidation.c — the body of POST .../invalidations:
 * {"paths": ["/pets/1", "/pets/x*"], "tags": ["a"]} (a trailing '*' = prefix).
 *
 * Strict on purpose: a typo in a key ("path") or a '*' in the middle of a
 * path would otherwise "succeed" while invalidating nothing. Paths follow
 * CloudFront's rule (a '*' only at the end: a prefix); a lone "/" + "*" is everything.
 * Strings are borrowed from the parsed document, which the result keeps.
 */
#include <stdlib.h>
#include <string.h>

#include "admin/admin_int.h"

static bool has_ctl(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return true;
    }
    return false;
}

const char *admin__inval_check_path(const char *p, size_t len)
{
    if (len == 0 || p[0] != '/')
        return "paths: every path must start with '/'";
    if (len > ADMIN_MAX_ITEM)
        return "paths: a path is longer than 8192 bytes";
    if (has_ctl(p, len))
        return "paths: a path holds a control character";
    if (memchr(p, '?', len))
        return "paths: query strings are not supported (entries are invalidated by path)";
    const char *star = memchr(p, '*', len);
    if (star && star != p + len - 1)
        return "paths: '*' is only allowed at the end of a path";
    return NULL;
}

static const char *check_tag(const char *t, size_t len)
{
    if (len == 0)
        return "tags: a tag must not be empty";
    if (len > ADMIN_MAX_ITEM)
        return "tags: a tag is longer than 8192 bytes";
    if (has_ctl(t, len) || memchr(t, ',', len))
        return "tags: a tag holds a comma or a control character";
    return NULL;
}

/* Collects the strings of one array member into *out (owned array). */
static const char *take_strings(json_t *arr, size_t max, const char ***out, size_t *n, bool is_path)
{
    if (!json_is_array(arr))
        return is_path ? "paths must be an array of strings" : "tags must be an array of strings";
    size_t count = json_array_size(arr);
    if (count > max)
        return is_path ? "too many paths (at most 3000 per call)"
                       : "too many tags (at most 100 per call)";
    *out = xcalloc(count ? count : 1, sizeof(**out));
    for (size_t i = 0; i < count; i++) {
        json_t *v = json_array_get(arr, i);
        if (!json_is_string(v))
            return is_path ? "paths must be an array of strings"
                           : "tags must be an array of strings";
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        /* JSON_ALLOW_NUL is not set, so len == strlen(s); keep it explicit. */
        const char *err = is_path ? admin__inval_check_path(s, len) : check_tag(s, len);
        if (err)
            return err;
        (*out)[(*n)++] = s;
    }
    return NULL;
}

int admin__inval_parse(const char *body, size_t len, struct admin__inval *out, const char **err)
{
    memset(out, 0, sizeof(*out));
    *err = NULL;
    json_error_t jerr;
    out->doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!out->doc) {
        *err = "request body is not valid JSON";
        goto fail;
    }
    if (!json_is_object(out->doc)) {
        *err = "request body must be a JSON object";
        goto fail;
    }
    const char *key;
    json_t *val;
    json_object_foreach(out->doc, key, val)
    {
        if (strcmp(key, "paths") == 0)
            *err = take_strings(val, ADMIN_MAX_PATHS, &out->paths, &out->n_paths, true);
        else if (strcmp(key, "tags") == 0)
            *err = take_strings(val, ADMIN_MAX_TAGS, &out->tags, &out->n_tags, false);
        else
            *err = "unknown field (expected \"paths\" and/or \"tags\")";
        if (*err)
            goto fail;
    }
    if (out->n_paths == 0 && out->n_tags == 0) {
        *err = "give at least one path or tag";
        goto fail;
    }
    return 0;
fail:
    admin__inval_free(out);
    return -1;
}

void admin__inval_free(struct admin__inval *iv)
{
    free(iv->paths);
    free(iv->tags);
    if (iv->doc)
        json_decref(iv->doc);
    memset(iv, 0, sizeof(*iv));
}
