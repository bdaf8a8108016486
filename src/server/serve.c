/*
 * server/serve.c — the main thread: starts the workers, then waits for
 * signals. SIGHUP reloads the config (a config that fails validation is
 * logged and the old one stays); SIGTERM/SIGINT drain: listeners close, idle
 * connections close, in-flight requests finish, bounded by drain_timeout_ms.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include "admin/admin.h"
#include "metrics/metrics.h"
#include "server/server_int.h"

struct main_ctx {
    uv_loop_t loop;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t drain_timer;
    uv_async_t joined; /* the joiner thread saw every worker end */
    uv_thread_t joiner;
    bool draining;
    struct admin *admin; /* owned: admin_stop */
};

static void close_all(struct main_ctx *m)
{
    uv_close((uv_handle_t *)&m->sig_term, NULL);
    uv_close((uv_handle_t *)&m->sig_int, NULL);
    uv_close((uv_handle_t *)&m->sig_hup, NULL);
    uv_close((uv_handle_t *)&m->drain_timer, NULL);
    uv_close((uv_handle_t *)&m->joined, NULL);
}

/* srv_update callback of SIGHUP: the file as it is now. Live changes made
 * through the admin API are not in the file, so a reload drops them. */
static struct cfg *reload_cfg(const struct cfg *cur, void *arg, char *err, size_t errlen)
{
    struct cfg *cfg = NULL;
    struct cfg_errors errs = {0};
    log_info("SIGHUP: reloading %s", cur->path);
    if (cfg_load(cur->path, &cfg, &errs) != 0) {
        for (size_t i = 0; i < errs.n; i++)
            log_error("%s", errs.lines[i]);
        cfg_errors_free(&errs);
        snprintf(err, errlen, "the file has errors");
        return NULL;
    }
    if (cfg->server.workers != cur->server.workers ||
        cfg->server.n_listen != cur->server.n_listen)
        log_warn("reload: listen addresses and worker count apply at the next restart");
    return cfg;
}

static void on_reload(uv_signal_t *s, int signum)
{
    char err[160];
    if (srv_update(reload_cfg, NULL, err, sizeof(err)) != 0) {
        log_error("reload failed (%s): keeping the running configuration", err);
        return;
    }
    log_info("reload done");
}

static void on_drain_timeout(uv_timer_t *t)
{
    log_warn("drain timeout: closing the remaining connections");
    atomic_store(&srv.force_close, true);
    wrk_wake_all();
}

static void join_workers(void *arg)
{
    struct main_ctx *m = arg;
    wrk_join_all();
    uv_async_send(&m->joined);
}

static void on_joined(uv_async_t *a)
{
    struct main_ctx *m = a->data;
    uv_thread_join(&m->joiner);
    admin_stop(&m->admin);
    tier_stop(); /* nothing can queue an invalidation any more */
    close_all(m); /* no timer or signal can wake the workers after this */
    wrk_free_all();
}

static void on_stop(uv_signal_t *s, int signum)
{
    struct main_ctx *m = s->data;
    if (m->draining) {
        /* A second signal: stop waiting for slow requests. */
        atomic_store(&srv.force_close, true);
        wrk_wake_all();
        return;
    }
    m->draining = true;
    log_info("signal %d: draining", signum);
    atomic_store(&srv.draining, true);
    wrk_wake_all();
    struct srv_runtime *rt = srv_current_runtime();
    uv_timer_start(&m->drain_timer, on_drain_timeout, rt->cfg->server.limits.drain_timeout_ms, 0);
    srv_runtime_release(&rt);
    uv_thread_create(&m->joiner, join_workers, m);
}

/* Signal handlers go in before any listener opens: a SIGHUP or SIGTERM sent
 * as soon as the port accepts must reach our handlers, not the default
 * action. libuv queues them until the loop runs. */
static void init_main_loop(struct main_ctx *m)
{
    uv_loop_init(&m->loop);
    uv_signal_init(&m->loop, &m->sig_term);
    uv_signal_init(&m->loop, &m->sig_int);
    uv_signal_init(&m->loop, &m->sig_hup);
    uv_timer_init(&m->loop, &m->drain_timer);
    uv_async_init(&m->loop, &m->joined, on_joined);
    m->sig_term.data = m->sig_int.data = m->sig_hup.data = m;
    m->drain_timer.data = m->joined.data = m;
    uv_signal_start(&m->sig_term, on_stop, SIGTERM);
    uv_signal_start(&m->sig_int, on_stop, SIGINT);
    uv_signal_start(&m->sig_hup, on_reload, SIGHUP);
}

static void close_main_loop(struct main_ctx *m)
{
    uv_run(&m->loop, UV_RUN_DEFAULT);
    uv_loop_close(&m->loop);
    met_registry_free(&srv.metrics); /* the workers and the admin thread are gone */
    struct srv_runtime *rt = srv.rt;
    srv.rt = NULL;
    srv_runtime_release(&rt);
}

int srv_serve(struct cfg *cfg)
{
    signal(SIGPIPE, SIG_IGN);
    /* Our own ref: once workers run, a reload may drop the first snapshot
     * while this function still reads listen addresses and the admin config. */
    struct cfg *own = cfg_ref(cfg);
    struct srv_runtime *first = srv_runtime_new(cfg, NULL);
    if (!first) {
        log_error("gatecache could not start");
        cfg_release(&own);
        return 1;
    }
    srv_publish_runtime(first);
    struct main_ctx m = {0};
    init_main_loop(&m);
    if (tier_start(&m.loop, cfg) != 0 || wrk_start_all(cfg) != 0) {
        log_error("gatecache could not start");
        tier_stop();
        close_all(&m);
        close_main_loop(&m);
        cfg_release(&own);
        return 1;
    }
    if (admin_start(cfg, &m.admin) != 0) {
        log_error("gatecache could not start: admin listener");
        atomic_store(&srv.draining, true); /* stop the workers already running */
        atomic_store(&srv.force_close, true);
        wrk_wake_all();
        wrk_join_all();
        tier_stop();
        close_all(&m);
        wrk_free_all();
        close_main_loop(&m);
        cfg_release(&own);
        return 1;
    }
    for (size_t i = 0; i < cfg->server.n_listen; i++)
        log_info("listening on %s:%d (%u workers)", cfg->server.listen[i].host,
                 cfg->server.listen[i].port, srv.n_workers);
    uv_run(&m.loop, UV_RUN_DEFAULT);
    close_main_loop(&m);
    cfg_release(&own);
    log_info("stopped");
    return 0;
}
