/*
 * clone — a deep copy of a config snapshot, so a live change (UpdateStage)
 * can patch a private copy while requests keep reading the published one.
 *
 * Invariant: the copy shares nothing with the original. Every string and array
 * is duplicated (secrets too: both copies wipe their own on free), policies are
 * json_deep_copy'd, and the copy starts with one ref. Adding a field to struct
 * cfg means adding it here; the unit tests compare a clone field by field.
 */
#include "config/config_int.h"

#include <stdlib.h>
#include <string.h>

/* ================= helpers ================= */

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

/* n elements of size sz, zeroed; never NULL so callers can index it. */
static void *copy_array(const void *src, size_t n, size_t sz)
{
    void *p = xcalloc(n ? n : 1, sz);
    if (n)
        memcpy(p, src, n * sz);
    return p;
}

static char **dup_strings(char *const *src, size_t n)
{
    if (!src)
        return NULL;
    char **out = xcalloc(n ? n : 1, sizeof(*out));
    for (size_t i = 0; i < n; i++)
        out[i] = dup_or_null(src[i]);
    return out;
}

/* ================= server ================= */

static void clone_server(struct cfg_server *d, const struct cfg_server *s)
{
    *d = *s; /* scalars and limits; every pointer is replaced below */
    d->listen = s->listen ? copy_array(s->listen, s->n_listen, sizeof(*s->listen)) : NULL;
    for (size_t i = 0; i < s->n_listen; i++)
        d->listen[i].host = dup_or_null(s->listen[i].host);
    d->admin_listen.host = dup_or_null(s->admin_listen.host);
    d->admin_token_file = dup_or_null(s->admin_token_file);
    d->region = dup_or_null(s->region);
    d->account_id = dup_or_null(s->account_id);
    d->cache_encryption_key_file = dup_or_null(s->cache_encryption_key_file);
    d->mappings =
        s->mappings ? copy_array(s->mappings, s->n_mappings, sizeof(*s->mappings)) : NULL;
    for (size_t i = 0; i < s->n_mappings; i++) {
        d->mappings[i].base_path = dup_or_null(s->mappings[i].base_path);
        d->mappings[i].api = dup_or_null(s->mappings[i].api);
        d->mappings[i].stage = dup_or_null(s->mappings[i].stage);
        d->mappings[i].host = dup_or_null(s->mappings[i].host);
    }
    d->cache_backend.host = dup_or_null(s->cache_backend.host);
    d->cache_backend.username = dup_or_null(s->cache_backend.username);
    d->cache_backend.password = dup_or_null(s->cache_backend.password);
    d->cache_backend.key_prefix = dup_or_null(s->cache_backend.key_prefix);
}

/* ================= identities and api keys ================= */

static void clone_identities(struct cfg *d, const struct cfg *s)
{
    d->identities = s->identities
                        ? copy_array(s->identities, s->n_identities, sizeof(*s->identities))
                        : NULL;
    for (size_t i = 0; i < s->n_identities; i++) {
        const struct cfg_identity *si = &s->identities[i];
        struct cfg_identity *di = &d->identities[i];
        di->name = dup_or_null(si->name);
        di->access_key_id = dup_or_null(si->access_key_id);
        di->secret_access_key = dup_or_null(si->secret_access_key);
        di->policy = si->policy ? json_deep_copy(si->policy) : NULL;
        GATE_ASSERT(!si->policy || di->policy); /* jansson fails only without memory */
    }
    d->api_keys =
        s->api_keys ? copy_array(s->api_keys, s->n_api_keys, sizeof(*s->api_keys)) : NULL;
    for (size_t i = 0; i < s->n_api_keys; i++) {
        d->api_keys[i].name = dup_or_null(s->api_keys[i].name);
        d->api_keys[i].value = dup_or_null(s->api_keys[i].value);
    }
}

/* ================= apis ================= */

static void clone_integration(struct cfg_integration *d, const struct cfg_integration *s)
{
    *d = *s;
    d->uri = dup_or_null(s->uri);
    d->mock_headers = s->mock_headers ? copy_array(s->mock_headers, s->n_mock_headers,
                                                   sizeof(*s->mock_headers))
                                      : NULL;
    for (size_t i = 0; i < s->n_mock_headers; i++) {
        d->mock_headers[i].name = dup_or_null(s->mock_headers[i].name);
        d->mock_headers[i].value = dup_or_null(s->mock_headers[i].value);
    }
    if (s->mock_body) {
        /* The body may hold NUL bytes: copy by length, keep the terminator. */
        d->mock_body = xmalloc(s->mock_body_len + 1);
        memcpy(d->mock_body, s->mock_body, s->mock_body_len);
        d->mock_body[s->mock_body_len] = '\0';
    }
}

static void clone_resource(struct cfg_resource *d, const struct cfg_resource *s)
{
    d->path = dup_or_null(s->path);
    d->n_methods = s->n_methods;
    d->methods = s->methods ? copy_array(s->methods, s->n_methods, sizeof(*s->methods)) : NULL;
    for (size_t i = 0; i < s->n_methods; i++) {
        const struct cfg_method *sm = &s->methods[i];
        struct cfg_method *dm = &d->methods[i];
        dm->http_method = dup_or_null(sm->http_method);
        clone_integration(&dm->integration, &sm->integration);
        dm->cache_key_parameters = dup_strings(sm->cache_key_parameters,
                                               sm->n_cache_key_parameters);
        dm->invalidates = dup_strings(sm->invalidates, sm->n_invalidates);
    }
}

static void clone_stage(struct cfg_stage *d, const struct cfg_stage *s)
{
    *d = *s;
    d->name = dup_or_null(s->name);
    d->cache_cluster_size = dup_or_null(s->cache_cluster_size);
    d->distribution_id = dup_or_null(s->distribution_id);
    d->method_settings = s->method_settings ? copy_array(s->method_settings,
                                                         s->n_method_settings,
                                                         sizeof(*s->method_settings))
                                            : NULL;
    for (size_t i = 0; i < s->n_method_settings; i++) {
        const struct cfg_method_setting *sm = &s->method_settings[i];
        struct cfg_method_setting *dm = &d->method_settings[i];
        dm->resource_path = dup_or_null(sm->resource_path);
        dm->http_method = dup_or_null(sm->http_method);
        dm->aws_key = dup_or_null(sm->aws_key);
        dm->logging_level = dup_or_null(sm->logging_level);
    }
}

static void clone_apis(struct cfg *d, const struct cfg *s)
{
    d->apis = s->apis ? copy_array(s->apis, s->n_apis, sizeof(*s->apis)) : NULL;
    for (size_t a = 0; a < s->n_apis; a++) {
        const struct cfg_api *sa = &s->apis[a];
        struct cfg_api *da = &d->apis[a];
        da->id = dup_or_null(sa->id);
        da->resources = sa->resources
                            ? copy_array(sa->resources, sa->n_resources, sizeof(*sa->resources))
                            : NULL;
        for (size_t r = 0; r < sa->n_resources; r++)
            clone_resource(&da->resources[r], &sa->resources[r]);
        da->stages =
            sa->stages ? copy_array(sa->stages, sa->n_stages, sizeof(*sa->stages)) : NULL;
        for (size_t st = 0; st < sa->n_stages; st++)
            clone_stage(&da->stages[st], &sa->stages[st]);
    }
}

/* ================= entry point ================= */

struct cfg *cfg_clone(const struct cfg *c)
{
    struct cfg *d = xcalloc(1, sizeof(*d));
    atomic_init(&d->refs, 1);
    d->path = dup_or_null(c->path);
    clone_server(&d->server, &c->server);
    d->n_identities = c->n_identities;
    d->n_api_keys = c->n_api_keys;
    clone_identities(d, c);
    d->n_apis = c->n_apis;
    clone_apis(d, c);
    return d;
}
