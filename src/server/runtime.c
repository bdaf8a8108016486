/*
 * server/runtime.c — runtime snapshots: a config snapshot with its routing
 * table and the cache store of every stage. Stage stores outlive snapshots:
 * a reload reuses the store of a stage whose capacity did not change and
 * builds an empty one otherwise (API Gateway deletes the cache on a resize).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/aead.h"
#include "server/server.h"
#include "util/util.h"

struct srv srv = {.lock = PTHREAD_MUTEX_INITIALIZER, .update_lock = PTHREAD_MUTEX_INITIALIZER};

static struct srv_stage_cache *stage_cache_new(const char *api, const char *stage,
                                               uint64_t capacity)
{
    struct srv_stage_cache *sc = xcalloc(1, sizeof(*sc)); /* counters start at zero */
    atomic_init(&sc->refs, 1);
    sc->api_id = xstrdup(api);
    sc->stage = xstrdup(stage);
    sc->capacity = capacity;
    sc->store = cache_store_new(capacity);
    return sc;
}

struct srv_stage_cache *srv_stage_cache_ref(struct srv_stage_cache *sc)
{
    atomic_fetch_add_explicit(&sc->refs, 1, memory_order_relaxed);
    return sc;
}

void srv_stage_cache_release(struct srv_stage_cache **scp)
{
    struct srv_stage_cache *sc = *scp;
    *scp = NULL;
    if (!sc || atomic_fetch_sub_explicit(&sc->refs, 1, memory_order_acq_rel) != 1)
        return;
    cache_store_free(&sc->store);
    free(sc->api_id);
    free(sc->stage);
    free(sc);
}

static struct srv_stage_cache *find_prev_cache(const struct srv_runtime *prev, const char *api,
                                               const char *stage)
{
    if (!prev)
        return NULL;
    for (size_t i = 0; i < prev->n_caches; i++) {
        struct srv_stage_cache *sc = prev->caches[i];
        if (strcmp(sc->api_id, api) == 0 && strcmp(sc->stage, stage) == 0)
            return sc;
    }
    return NULL;
}

static bool needs_encryption_key(const struct cfg *cfg)
{
    for (size_t a = 0; a < cfg->n_apis; a++)
        for (size_t s = 0; s < cfg->apis[a].n_stages; s++) {
            const struct cfg_stage *st = &cfg->apis[a].stages[s];
            for (size_t i = 0; i < st->n_method_settings; i++)
                if (st->method_settings[i].has_cache_data_encrypted &&
                    st->method_settings[i].cache_data_encrypted)
                    return true;
        }
    return false;
}

/* Reads the AES-256 key from cache_encryption_key_file or the environment.
 * Messages name the file or variable, never the key. */
static bool load_encryption_key(const struct cfg *cfg, uint8_t key[32])
{
    char text[256];
    size_t len = 0;
    const char *file = cfg->server.cache_encryption_key_file;
    if (file) {
        FILE *f = fopen(file, "r");
        if (!f) {
            log_error("cache_encryption_key_file %s: %s", file, strerror(errno));
            return false;
        }
        len = fread(text, 1, sizeof(text), f);
        fclose(f);
    } else {
        const char *env = getenv(SRV_ENCRYPTION_KEY_ENV);
        if (!env) {
            log_error("cache_data_encrypted is on but no key is configured: set "
                      "server.cache_encryption_key_file or %s",
                      SRV_ENCRYPTION_KEY_ENV);
            return false;
        }
        len = strlen(env);
        if (len > sizeof(text))
            len = sizeof(text);
        memcpy(text, env, len);
    }
    bool ok = len < sizeof(text) && cry_aead_parse_key(text, len, key);
    memset(text, 0, sizeof(text));
    if (!ok)
        log_error("cache encryption key from %s is malformed: expected 32 bytes as 64 hex digits "
                  "or base64",
                  file ? file : SRV_ENCRYPTION_KEY_ENV);
    return ok;
}

struct srv_runtime *srv_runtime_new(struct cfg *cfg, const struct srv_runtime *prev)
{
    uint8_t key[32];
    bool want_key = needs_encryption_key(cfg);
    if (want_key && !load_encryption_key(cfg, key)) {
        cfg_release(&cfg);
        return NULL;
    }
    struct srv_runtime *rt = xcalloc(1, sizeof(*rt));
    if (want_key) {
        rt->has_encryption_key = true;
        memcpy(rt->encryption_key, key, sizeof(key));
        memset(key, 0, sizeof(key));
    }
    atomic_init(&rt->refs, 1);
    rt->cfg = cfg;
    rt->routes = route_table_new(cfg);
    rt->version = prev ? prev->version + 1 : 1;
    rt->api_offset = xcalloc(cfg->n_apis ? cfg->n_apis : 1, sizeof(size_t));
    for (size_t a = 0; a < cfg->n_apis; a++) {
        rt->api_offset[a] = rt->n_caches;
        rt->n_caches += cfg->apis[a].n_stages;
    }
    rt->caches = xcalloc(rt->n_caches ? rt->n_caches : 1, sizeof(*rt->caches));
    for (size_t a = 0; a < cfg->n_apis; a++) {
        const struct cfg_api *api = &cfg->apis[a];
        for (size_t s = 0; s < api->n_stages; s++) {
            const struct cfg_stage *st = &api->stages[s];
            struct srv_stage_cache *old = find_prev_cache(prev, api->id, st->name);
            struct srv_stage_cache *sc;
            if (old && old->capacity == st->cache_capacity_bytes) {
                sc = old;
                atomic_fetch_add_explicit(&sc->refs, 1, memory_order_relaxed);
            } else {
                if (old)
                    log_info("stage %s/%s: cache size changed, its entries are deleted", api->id,
                             st->name);
                sc = stage_cache_new(api->id, st->name, st->cache_capacity_bytes);
            }
            /* Entries only: its invalidations still go through Redis, so
             * turning the stage's L2 on again finds nothing stale there. */
            atomic_store(&sc->l2_off, st->in_process_only);
            rt->caches[rt->api_offset[a] + s] = sc;
        }
    }
    return rt;
}

struct srv_runtime *srv_runtime_ref(struct srv_runtime *rt)
{
    atomic_fetch_add_explicit(&rt->refs, 1, memory_order_relaxed);
    return rt;
}

void srv_runtime_release(struct srv_runtime **rtp)
{
    struct srv_runtime *rt = *rtp;
    *rtp = NULL;
    if (!rt || atomic_fetch_sub_explicit(&rt->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < rt->n_caches; i++)
        srv_stage_cache_release(&rt->caches[i]);
    free(rt->caches);
    free(rt->api_offset);
    route_table_free(&rt->routes);
    cfg_release(&rt->cfg);
    memset(rt->encryption_key, 0, sizeof(rt->encryption_key));
    free(rt);
}

struct srv_runtime *srv_current_runtime(void)
{
    pthread_mutex_lock(&srv.lock);
    struct srv_runtime *rt = srv.rt ? srv_runtime_ref(srv.rt) : NULL;
    pthread_mutex_unlock(&srv.lock);
    return rt;
}

void srv_publish_runtime(struct srv_runtime *rt)
{
    pthread_mutex_lock(&srv.lock);
    struct srv_runtime *old = srv.rt;
    srv.rt = rt;
    atomic_store(&srv.rt_version, rt->version);
    pthread_mutex_unlock(&srv.lock);
    srv_runtime_release(&old);
}

struct srv_stage_cache *srv_runtime_cache(const struct srv_runtime *rt, size_t api, size_t stage)
{
    return rt->caches[rt->api_offset[api] + stage];
}

int srv_update(srv_mutate_cb mutate, void *arg, char *err, size_t errlen)
{
    int rc = -1;
    pthread_mutex_lock(&srv.update_lock);
    struct srv_runtime *cur = srv_current_runtime();
    if (!cur) {
        snprintf(err, errlen, "the gateway is not running");
        goto out;
    }
    struct cfg *next = mutate(cur->cfg, arg, err, errlen);
    if (!next)
        goto out;
    struct srv_runtime *rt = srv_runtime_new(next, cur);
    if (!rt) {
        rc = -2;
        snprintf(err, errlen, "the new configuration could not be activated (see the log)");
        goto out;
    }
    srv_publish_runtime(rt);
    rc = 0;
out:
    srv_runtime_release(&cur);
    pthread_mutex_unlock(&srv.update_lock);
    return rc;
}

void srv_stage_cache_totals(const struct srv_stage_cache *sc, uint64_t *hits, uint64_t *misses,
                            uint64_t *invalidations)
{
    uint64_t h = 0, m = 0, inv = 0;
    for (size_t i = 0; i <= SRV_MAX_WORKERS; i++) {
        h += atomic_load_explicit(&sc->counters[i].hits, memory_order_relaxed);
        m += atomic_load_explicit(&sc->counters[i].misses, memory_order_relaxed);
        inv += atomic_load_explicit(&sc->counters[i].invalidations, memory_order_relaxed);
    }
    *hits = h;
    *misses = m;
    *invalidations = inv;
}
