/*
 * l2_int — declarations shared by the files of src/l2/ only: little-endian
 * field access for the two codecs, and the connection lifecycle (conn.c) that
 * the client and the subscriber both embed.
 */
#ifndef GATE_L2_INT_H
#define GATE_L2_INT_H

#include "l2/l2.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

/* ================= wire fields ================= */

static inline void l2__put_u16(char *p, uint16_t v)
{
    p[0] = (char)(v & 0xff);
    p[1] = (char)(v >> 8);
}

static inline void l2__put_u32(char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (char)((v >> (8 * i)) & 0xff);
}

static inline void l2__put_u64(char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (char)((v >> (8 * i)) & 0xff);
}

static inline uint16_t l2__get_u16(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint16_t)(u[0] | (u[1] << 8));
}

static inline uint32_t l2__get_u32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | u[i];
    return v;
}

static inline uint64_t l2__get_u64(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | u[i];
    return v;
}

/* ================= connection lifecycle (conn.c) ================= */

struct redisAsyncContext;
struct l2__conn;
struct l2__resolve;

/* What the owner (client or subscriber) does at each step. */
struct l2__conn_ops {
    /* A new connection was opened and AUTH/SELECT are queued: queue the command
     * whose answer proves the connection usable, and call l2__conn_ready then. */
    void (*start)(struct l2__conn *c);
    /* A ready connection went away. Replies still pending were (or, when this
     * happened inside a hiredis callback, are about to be) answered NULL. */
    void (*lost)(struct l2__conn *c);
    /* After l2__conn_close: every handle is closed, the owner may free itself. */
    void (*closed)(struct l2__conn *c);
};

enum l2__conn_state {
    L2__DOWN = 0,   /* no connection; the timer runs the backoff to the next attempt */
    L2__CONNECTING, /* resolving, connecting or in the handshake; the timer is its deadline */
    L2__READY,      /* usable */
    L2__CLOSED,     /* l2__conn_close was called */
};

struct l2__conn {
    uv_loop_t *loop;
    const struct l2__conn_ops *ops;
    const char *what; /* "client" / "subscriber", for logs */
    struct redisAsyncContext *ac; /* owned (redisAsyncFree) or NULL; ac->data == this */
    enum l2__conn_state state;
    uv_timer_t timer;   /* backoff while DOWN, deadline while CONNECTING */
    uv_check_t check;   /* notices sockets the libuv adapter stopped watching */
    struct l2__resolve *resolve; /* the running lookup or NULL (it frees itself) */
    char *host;     /* owned */
    char *username; /* owned or NULL */
    char *password; /* owned secret or NULL; wiped before free */
    int port;
    int db;         /* SELECT when > 0 and select_db */
    bool select_db;
    bool logged_down; /* a failure of the current outage was already logged */
    uint32_t connect_timeout_ms;
    uint32_t reconnect_min_ms;
    uint32_t reconnect_max_ms;
    uint32_t backoff_ms;  /* delay before the next attempt */
    uint32_t attempt;     /* failed attempts since the last ready connection */
    uint64_t rng;         /* xorshift state for the jitter */
    uint64_t ready_count; /* connections that became ready */
    int open_handles;
};

/* True when opt can be used to connect (see l2_client_new). */
bool l2__options_ok(const struct l2_options *opt);
/* Copies what it needs from opt; starts nothing yet. */
void l2__conn_init(struct l2__conn *c, uv_loop_t *loop, const struct l2_options *opt,
                   bool select_db, const struct l2__conn_ops *ops, const char *what);
/* First attempt, now. */
void l2__conn_start(struct l2__conn *c);
/* READY and the hiredis context still accepts commands. */
bool l2__conn_usable(const struct l2__conn *c);
/* The owner's start command was answered: the connection is usable. */
void l2__conn_ready(struct l2__conn *c);
/* Drops the connection (or the attempt) and schedules the next one. Call from
 * a timer or a hiredis reply callback, never from a connect/disconnect
 * callback. why: borrowed, logged. */
void l2__conn_drop(struct l2__conn *c, const char *why);
/* Closes everything; ops->closed follows from a close callback. */
void l2__conn_close(struct l2__conn *c);

/* key_prefix + s into a new string (owned: free()); *len set to its length. */
char *l2__prefixed(const struct l2_options *opt, const char *s, size_t n, size_t *len);

#endif
