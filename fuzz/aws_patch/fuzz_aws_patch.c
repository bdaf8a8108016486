/*
 * fuzz_aws_patch.c — libFuzzer driver for the UpdateStage body parser
 * (admin__patch_parse), the patch operations it yields applied to a private
 * config copy (cfg_stage_patch: path parsing from the right, ~0/~1 escapes,
 * value checks), and the CloudFront InvalidationBatch reader
 * (admin__cf_batch_parse), which takes the same input as XML.
 *
 * Contract checked (abort on breach), beyond no crash / over-read / leak (the
 * input is exactly `size` bytes, not NUL-terminated):
 * - patch parse: 0 with at most ADMIN_MAX_PATCH_OPS ops, each with op and path,
 *   or -1 with a message and an empty result; deterministic;
 * - cfg_stage_patch: 0, -EINVAL or -ENOENT, with a message on failure; after
 *   success every method setting's TTL is within 0..CFG_TTL_MAX and its
 *   resource is "/" "*" or a resource of the api;
 * - batch parse: 0 with a caller reference, 1..ADMIN_MAX_PATHS paths each
 *   starting with '/', or -1 with a code and message and an empty result.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_int.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static const char yaml[] = "apis:\n"
                           "  - id: a\n"
                           "    resources:\n"
                           "      /pets:\n"
                           "        GET: {integration: {type: MOCK}}\n"
                           "      /pets/{id}:\n"
                           "        ANY: {integration: {type: MOCK}}\n"
                           "    stages:\n"
                           "      s:\n"
                           "        cache_cluster_enabled: true\n"
                           "        method_settings:\n"
                           "          - {resource_path: /pets, http_method: GET}\n";

static struct cfg *base;

static void check_stage(const struct cfg *c)
{
    const struct cfg_api *api = cfg_find_api(c, "a");
    const struct cfg_stage *st = cfg_find_stage(api, "s");
    CHECK(st && st->cache_capacity_bytes >= CFG_CACHE_SIZE_MIN);
    for (size_t i = 0; i < st->n_method_settings; i++) {
        const struct cfg_method_setting *ms = &st->method_settings[i];
        CHECK(ms->cache_ttl_in_seconds >= 0 && ms->cache_ttl_in_seconds <= CFG_TTL_MAX);
        CHECK(strcmp(ms->resource_path, "/*") == 0 ||
              strcmp(ms->resource_path, "/pets") == 0 ||
              strcmp(ms->resource_path, "/pets/{id}") == 0);
    }
}

static void apply(const struct admin__patch *p)
{
    struct cfg *c = cfg_clone(base);
    for (size_t i = 0; i < p->n_ops; i++) {
        char err[256] = "";
        int rc = cfg_stage_patch(c, "a", "s", p->ops[i].op, p->ops[i].path, p->ops[i].value, err,
                                 sizeof(err));
        CHECK(rc == 0 || rc == -EINVAL || rc == -ENOENT);
        if (rc != 0) {
            CHECK(err[0] != '\0');
            break;
        }
        check_stage(c);
    }
    cfg_release(&c);
}

static void fuzz_batch(const uint8_t *data, size_t size)
{
    struct admin__cf_batch b;
    const char *code = NULL, *msg = NULL;
    int rc = admin__cf_batch_parse((const char *)data, size, &b, &code, &msg);
    if (rc != 0) {
        CHECK(rc == -1 && code && msg && !b.caller_ref && !b.paths && b.n_paths == 0);
        return;
    }
    CHECK(b.caller_ref && b.n_paths >= 1 && b.n_paths <= ADMIN_MAX_PATHS);
    for (size_t i = 0; i < b.n_paths; i++)
        CHECK(b.paths[i][0] == '/');
    admin__cf_batch_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!base) {
        struct cfg_errors errs = {0};
        CHECK(cfg_load_string("fuzz.yaml", yaml, sizeof(yaml) - 1, &base, &errs) == 0);
    }
    struct admin__patch p, again;
    const char *err = NULL, *err2 = NULL;
    int rc = admin__patch_parse((const char *)data, size, &p, &err);
    int rc2 = admin__patch_parse((const char *)data, size, &again, &err2);
    CHECK(rc == rc2);
    if (rc != 0) {
        CHECK(rc == -1 && err && err2 && strcmp(err, err2) == 0);
        CHECK(p.doc == NULL && p.ops == NULL && p.n_ops == 0);
    } else {
        CHECK(p.n_ops <= ADMIN_MAX_PATCH_OPS && p.n_ops == again.n_ops);
        for (size_t i = 0; i < p.n_ops; i++)
            CHECK(p.ops[i].op && p.ops[i].path && strcmp(p.ops[i].path, again.ops[i].path) == 0);
        apply(&p);
    }
    admin__patch_free(&p);
    admin__patch_free(&again);
    fuzz_batch(data, size);
    return 0;
}
