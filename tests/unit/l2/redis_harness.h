/*
 * redis_harness — a real redis-server for the client and subscriber tests,
 * and a libuv loop driven in bounded steps. Header-only (static functions),
 * included by test_client.c and test_sub.c.
 *
 * The server: `redis-server --port P --bind 127.0.0.1 --save '' --appendonly no`
 * on a free loopback port (bind 127.0.0.1:0, read the port, close; another
 * process may take it first, so a start that fails is retried on a new port,
 * or on the same one for a restart). The child dies with the test process
 * (PR_SET_PDEATHSIG) so a crashed test leaves no server behind. Every wait
 * is bounded; nothing here blocks for more than a few seconds.
 *
 * The loop: a 5 ms heartbeat timer measures the longest gap between two of
 * its ticks while the loop runs, which is how tests prove the loop was never
 * blocked (by a connect, a stopped Redis, a resolve).
 */
#ifndef GATE_TEST_L2_REDIS_HARNESS_H
#define GATE_TEST_L2_REDIS_HARNESS_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "l2/l2.h"

#define H_UNUSED __attribute__((unused))

/* ================= time ================= */

static H_UNUSED int64_t h_now_ms(void)
{
    return (int64_t)(uv_hrtime() / 1000000u);
}

static H_UNUSED void h_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ================= redis-server ================= */

struct redis_srv {
    pid_t pid; /* 0 = not running */
    int port;
    const char *const *extra; /* more arguments (NULL-terminated) or NULL */
};

/* True when redis-server is on PATH. */
static H_UNUSED bool redis_installed(void)
{
    const char *path = getenv("PATH");
    char dir[4096];
    while (path && *path) {
        size_t n = strcspn(path, ":");
        snprintf(dir, sizeof(dir), "%.*s/redis-server", (int)n, path);
        if (access(dir, X_OK) == 0)
            return true;
        path += n + (path[n] == ':');
    }
    return false;
}

static H_UNUSED int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    close(fd);
    return ntohs(a.sin_port);
}

/* A blocking connection to the test server, for setup and checks. owned:
 * redisFree. NULL when it does not answer within 500 ms. */
static H_UNUSED redisContext *redis_sync(const struct redis_srv *r)
{
    struct timeval tv = {0, 500000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
    if (c == NULL || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    return c;
}

/* PING through a fresh connection, with the password when the server has one. */
static H_UNUSED bool redis_answers(const struct redis_srv *r, const char *password)
{
    redisContext *c = redis_sync(r);
    if (c == NULL)
        return false;
    redisReply *rep = password ? redisCommand(c, "AUTH %s", password) : NULL;
    if (rep)
        freeReplyObject(rep);
    rep = redisCommand(c, "PING");
    bool ok = rep && rep->type == REDIS_REPLY_STATUS && strcmp(rep->str, "PONG") == 0;
    if (rep)
        freeReplyObject(rep);
    redisFree(c);
    return ok;
}

static H_UNUSED pid_t spawn_redis(int port, const char *const *extra)
{
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    const char *argv[64] = {"redis-server", "--port",       portstr,      "--bind",
                            "127.0.0.1",    "--save",       "",           "--appendonly",
                            "no",           "--daemonize",  "no",         "--dir",
                            "/tmp",         "--logfile",    ""};
    size_t argc = 15;
    for (size_t i = 0; extra && extra[i] && argc < 63; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* Child: only async-signal-safe calls until exec. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(1);
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
    }
    signal(SIGPIPE, SIG_DFL);
    execvp("redis-server", (char *const *)argv);
    _exit(127);
}

/*
 * Starts the server on r->port (0: a free port, chosen again when taken) and
 * waits until it answers PING, at most ~5 s over all tries. password: for the
 * readiness PING of a server started with --requirepass.
 */
static H_UNUSED bool redis_start(struct redis_srv *r, const char *password)
{
    bool fixed = r->port != 0;
    for (int attempt = 0; attempt < 10; attempt++) {
        if (!fixed)
            r->port = free_port();
        r->pid = spawn_redis(r->port, r->extra);
        if (r->pid < 0)
            return false;
        for (int waited = 0; waited < 500; waited += 10) {
            int status;
            if (waitpid(r->pid, &status, WNOHANG) == r->pid) {
                r->pid = 0; /* exited: the port was taken, or no redis-server */
                break;
            }
            if (redis_answers(r, password))
                return true;
            h_sleep_ms(10);
        }
        if (r->pid) {
            kill(r->pid, SIGKILL);
            waitpid(r->pid, NULL, 0);
            r->pid = 0;
        }
        h_sleep_ms(50);
    }
    return false;
}

/* SIGKILL and reap: the port is free again at once (Redis uses SO_REUSEADDR). */
static H_UNUSED void redis_kill(struct redis_srv *r)
{
    if (r->pid <= 0)
        return;
    kill(r->pid, SIGCONT); /* a stopped process dies on SIGKILL too; be explicit */
    kill(r->pid, SIGKILL);
    waitpid(r->pid, NULL, 0);
    r->pid = 0;
}

/* ================= the loop ================= */

struct loop_fx {
    uv_loop_t loop;
    uv_timer_t beat;
    uint64_t last_beat;
    uint64_t max_gap; /* ns, since loop_reset_gap */
};

static H_UNUSED void on_beat(uv_timer_t *t)
{
    struct loop_fx *f = t->data;
    uint64_t now = uv_hrtime();
    if (f->last_beat && now - f->last_beat > f->max_gap)
        f->max_gap = now - f->last_beat;
    f->last_beat = now;
}

static H_UNUSED void loop_init(struct loop_fx *f)
{
    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_timer_init(&f->loop, &f->beat);
    f->beat.data = f;
    uv_timer_start(&f->beat, on_beat, 5, 5);
    f->last_beat = 0;
    f->max_gap = 0;
}

/* Starts a new measurement (after the test itself blocked, e.g. starting Redis). */
static H_UNUSED void loop_reset_gap(struct loop_fx *f)
{
    f->last_beat = 0;
    f->max_gap = 0;
}

static H_UNUSED int64_t loop_max_gap_ms(const struct loop_fx *f)
{
    return (int64_t)(f->max_gap / 1000000u);
}

/* Runs the loop until cond(arg) holds or timeout_ms passed; returns cond(arg). */
static H_UNUSED bool run_until(struct loop_fx *f, bool (*cond)(void *), void *arg, int timeout_ms)
{
    int64_t end = h_now_ms() + timeout_ms;
    while (!cond(arg) && h_now_ms() < end)
        uv_run(&f->loop, UV_RUN_ONCE);
    return cond(arg);
}

static H_UNUSED bool never(void *arg)
{
    return false;
}

/* Runs the loop for ms milliseconds. */
static H_UNUSED void run_for(struct loop_fx *f, int ms)
{
    run_until(f, never, NULL, ms);
}

/* Closes the heartbeat, runs the loop until nothing is left (bounded) and
 * checks that nothing is: whatever the tested code opened is closed. */
static H_UNUSED void loop_finish(struct loop_fx *f)
{
    uv_close((uv_handle_t *)&f->beat, NULL);
    int64_t end = h_now_ms() + 5000;
    while (uv_run(&f->loop, UV_RUN_NOWAIT) != 0 && h_now_ms() < end)
        h_sleep_ms(1);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

/* cmocka group setup of a file whose tests share one redis-server: started
 * into *srv when it is installed (*have), else the tests skip themselves. */
static H_UNUSED int h_redis_group_setup(bool *have, struct redis_srv *srv)
{
    signal(SIGPIPE, SIG_IGN); /* as gatecache does: hiredis writes with write(2) */
    *have = redis_installed();
    if (*have && !redis_start(srv, NULL)) {
        fprintf(stderr, "redis-server is installed but did not start\n");
        return -1;
    }
    return 0;
}

/* Options for a test client or subscriber of the Redis on `port`: short
 * timeouts and backoff so restarts are quick, key prefix "t:". */
static H_UNUSED struct l2_options h_test_options(int port)
{
    struct l2_options o;
    l2_options_init(&o);
    o.host = "127.0.0.1";
    o.port = port;
    o.connect_timeout_ms = 500;
    o.command_timeout_ms = 1000;
    o.reconnect_min_ms = 20;
    o.reconnect_max_ms = 200;
    o.key_prefix = "t:";
    return o;
}

/* Skips a cmocka test when the file's g_have_redis is false. */
#define SKIP_WITHOUT_REDIS()                                                                       \
    do {                                                                                           \
        if (!g_have_redis) {                                                                       \
            print_message("redis-server is not installed (apt-get install redis-server): "        \
                          "skipped\n");                                                            \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

#endif
