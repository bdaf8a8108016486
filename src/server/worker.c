/*
 * server/worker.c — worker threads: one libuv loop each, its own listening
 * socket per address (SO_REUSEPORT lets the kernel spread connections), its
 * own upstream client, and an inbox other threads post to (miss-coalescing
 * wake-ups) through a uv_async handle.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/server_int.h"

/* ================= small per-worker services ================= */

void wrk_date(struct wrk *w, const char **date)
{
    int64_t sec = util_wall_ms() / 1000;
    if (sec != w->date_sec) {
        http_format_date(w->date, sec);
        w->date_sec = sec;
    }
    *date = w->date;
}

struct srv_runtime *wrk_runtime(struct wrk *w)
{
    uint64_t v = atomic_load_explicit(&srv.rt_version, memory_order_acquire);
    if (v != w->rt_version) {
        srv_runtime_release(&w->rt);
        w->rt = srv_current_runtime();
        w->rt_version = w->rt->version;
    }
    return w->rt;
}

void wrk_wait_add(struct wrk *w, struct req *r)
{
    r->wprev = NULL;
    r->wnext = w->waiting;
    if (w->waiting)
        w->waiting->wprev = r;
    w->waiting = r;
}

void wrk_wait_remove(struct wrk *w, struct req *r)
{
    if (r->wprev)
        r->wprev->wnext = r->wnext;
    else if (w->waiting == r)
        w->waiting = r->wnext;
    if (r->wnext)
        r->wnext->wprev = r->wprev;
    r->wnext = r->wprev = NULL;
}

/* Called on the filler's thread: posts (store, hash) to every waiting worker. */
void wrk_notify_fill(struct srv_stage_cache *sc, uint64_t hash, uint64_t mask, int failed_status)
{
    for (unsigned i = 0; i < srv.n_workers && mask; i++) {
        if (!(mask & (1ull << i)))
            continue;
        mask &= ~(1ull << i);
        struct wrk *w = &srv.workers[i];
        pthread_mutex_lock(&w->inbox_lock);
        if (w->inbox_len == w->inbox_cap) {
            w->inbox_cap = w->inbox_cap ? w->inbox_cap * 2 : 16;
            w->inbox = xrealloc(w->inbox, w->inbox_cap * sizeof(*w->inbox));
        }
        w->inbox[w->inbox_len++] = (struct wrk_wake){sc->store, hash, failed_status};
        if (!w->async_closed)
            uv_async_send(&w->async);
        pthread_mutex_unlock(&w->inbox_lock);
    }
}

static void process_inbox(struct wrk *w)
{
    pthread_mutex_lock(&w->inbox_lock);
    struct wrk_wake *msgs = w->inbox;
    size_t n = w->inbox_len;
    w->inbox = NULL;
    w->inbox_len = w->inbox_cap = 0;
    pthread_mutex_unlock(&w->inbox_lock);
    for (size_t i = 0; i < n; i++) {
        struct req *r = w->waiting;
        while (r) {
            struct req *next = r->wnext;
            if (r->hash == msgs[i].hash && r->cache && r->cache->store == msgs[i].store) {
                wrk_wait_remove(w, r);
                req_resume_waiter(r, false, msgs[i].failed_status);
            }
            r = next;
        }
    }
    free(msgs);
}

static void close_listeners(struct wrk *w)
{
    for (size_t i = 0; i < w->n_listeners; i++)
        if (!uv_is_closing((uv_handle_t *)&w->listeners[i]))
            uv_close((uv_handle_t *)&w->listeners[i], NULL);
}

static void on_async(uv_async_t *a)
{
    struct wrk *w = a->data;
    process_inbox(w);
    if (atomic_load(&srv.draining) && !w->stopping) {
        w->stopping = true;
        close_listeners(w);
    }
    if (w->stopping)
        conn_drain(w);
    if (w->stopping && w->n_conns == 0) {
        up_client_free(&w->up);
        l2_client_free(&w->l2);
        conn_splice_close(w);
        /* Under the inbox lock, so no other thread is inside uv_async_send. */
        pthread_mutex_lock(&w->inbox_lock);
        w->async_closed = true;
        uv_close((uv_handle_t *)&w->async, NULL);
        pthread_mutex_unlock(&w->inbox_lock);
    }
}

/* ================= listeners ================= */

static int make_listen_socket(const struct cfg_listen *l, int *fd_out)
{
    struct sockaddr_storage ss;
    socklen_t slen;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, l->host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)l->port);
        slen = sizeof(*in4);
    } else if (inet_pton(AF_INET6, l->host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)l->port);
        slen = sizeof(*in6);
    } else {
        return -EINVAL;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    /* libuv 1.44 has no UV_TCP_REUSEPORT: set it ourselves, so that every
     * worker owns a socket and the kernel balances accepts without a lock. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&ss, slen) != 0 || listen(fd, 1024) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    *fd_out = fd;
    return 0;
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    conn_accept(server->data, server);
}

static int open_listeners(struct wrk *w, const struct cfg *cfg)
{
    w->n_listeners = cfg->server.n_listen;
    w->listeners = xcalloc(w->n_listeners, sizeof(*w->listeners));
    for (size_t i = 0; i < w->n_listeners; i++) {
        const struct cfg_listen *l = &cfg->server.listen[i];
        int fd = -1;
        int rc = make_listen_socket(l, &fd);
        if (rc != 0) {
            log_error("cannot listen on %s:%d: %s", l->host, l->port, strerror(-rc));
            w->n_listeners = i;
            return rc;
        }
        uv_tcp_init(&w->loop, &w->listeners[i]);
        w->listeners[i].data = w;
        uv_tcp_open(&w->listeners[i], fd);
        rc = uv_listen((uv_stream_t *)&w->listeners[i], 1024, on_connection);
        if (rc != 0) {
            log_error("cannot listen on %s:%d: %s", l->host, l->port, uv_strerror(rc));
            w->n_listeners = i + 1;
            return rc;
        }
    }
    return 0;
}

/* ================= threads ================= */

static void *worker_main(void *arg)
{
    struct wrk *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT);
    srv_runtime_release(&w->rt);
    /* Everything was closed by the drain; a last run lets close callbacks finish. */
    uv_run(&w->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&w->loop) != 0)
        log_warn("worker %u: handles left open at exit", w->id);
    return NULL;
}

static int init_worker(struct wrk *w, unsigned id, const struct cfg *cfg)
{
    w->id = id;
    uv_loop_init(&w->loop);
    pthread_mutex_init(&w->inbox_lock, NULL);
    uv_async_init(&w->loop, &w->async, on_async);
    w->async.data = w;
    w->up = up_client_new(&w->loop);
    w->l2 = tier_worker_client(&w->loop);
    w->metrics = met_registry_shard(srv.metrics, id);
    w->rt = srv_current_runtime();
    w->rt_version = w->rt->version;
    return open_listeners(w, cfg);
}

int wrk_start_all(const struct cfg *cfg)
{
    srv.n_workers = (unsigned)cfg->server.workers;
    /* Process lifetime: counters survive reloads, and the admin thread may
     * still scrape while the workers are joined. One shard per possible worker. */
    if (!srv.metrics)
        srv.metrics = met_registry_new(SRV_MAX_WORKERS);
    srv.workers = xcalloc(srv.n_workers, sizeof(struct wrk));
    for (unsigned i = 0; i < srv.n_workers; i++) {
        int rc = init_worker(&srv.workers[i], i, cfg);
        if (rc != 0)
            return rc;
    }
    for (unsigned i = 0; i < srv.n_workers; i++)
        pthread_create(&srv.workers[i].thread, NULL, worker_main, &srv.workers[i]);
    return 0;
}

void wrk_poke(struct wrk *w)
{
    pthread_mutex_lock(&w->inbox_lock);
    if (!w->async_closed)
        uv_async_send(&w->async);
    pthread_mutex_unlock(&w->inbox_lock);
}

void wrk_wake_all(void)
{
    for (unsigned i = 0; i < srv.n_workers; i++)
        wrk_poke(&srv.workers[i]);
}

void wrk_join_all(void)
{
    for (unsigned i = 0; i < srv.n_workers; i++)
        pthread_join(srv.workers[i].thread, NULL);
}

void wrk_free_all(void)
{
    for (unsigned i = 0; i < srv.n_workers; i++) {
        pthread_mutex_destroy(&srv.workers[i].inbox_lock);
        free(srv.workers[i].listeners);
        free(srv.workers[i].inbox);
    }
    free(srv.workers);
    srv.workers = NULL;
    srv.n_workers = 0;
}
