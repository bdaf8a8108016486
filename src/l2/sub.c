/*
 * l2/sub — a connection that stays SUBSCRIBEd to one channel and hands every
 * message to its owner; tells the owner when a lost subscription is back
 * (on_reset), because messages published meanwhile were not received.
 *
 * Invariants:
 * - The connection is READY exactly while subscribed: the SUBSCRIBE
 *   confirmation is what makes it ready (l2__conn_ready).
 * - hiredis calls on_sub_reply for every push on the channel and once with
 *   NULL when the context is freed; the callback's privdata is the sub, which
 *   outlives every context (freed only after the close callbacks).
 * - A user callback is the last thing a hiredis callback does, and none runs
 *   after l2_sub_free.
 */
#include "l2/l2_int.h"
#include "util/util.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

#define L2_SUB_MAGIC 0x4c325342u /* "L2SB" */

struct l2_sub {
    uint32_t magic;
    struct l2__conn conn;
    char *channel; /* owned; key_prefix + channel */
    size_t channel_len;
    l2_msg_cb on_message;
    l2_reset_cb on_reset;
    void *arg;
    struct l2_sub_stats stats;
    bool ever_subscribed;
    bool closing;
};

static struct l2_sub *sub_of(struct l2__conn *conn)
{
    return (struct l2_sub *)((char *)conn - offsetof(struct l2_sub, conn));
}

static bool is_str(const redisReply *r, const char *s)
{
    return r->type == REDIS_REPLY_STRING && str_eq_c(r->str, r->len, s);
}

static void subscribed(struct l2_sub *s)
{
    l2__conn_ready(&s->conn);
    s->stats.subscribed = 1;
    bool again = s->ever_subscribed;
    s->ever_subscribed = true;
    if (again) {
        s->stats.resets++;
        s->on_reset(s->arg);
    }
}

/* ["subscribe", channel, count] once, then ["message", channel, data] per
 * message. Anything else on this connection is a protocol surprise: start
 * over rather than guess. */
static void on_sub_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct l2_sub *s = privdata;
    const redisReply *reply = r;
    if (reply == NULL || s->closing || s->conn.ac != ac)
        return;
    bool shaped = reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 &&
                  reply->element[1]->type == REDIS_REPLY_STRING;
    if (shaped && is_str(reply->element[0], "message") &&
        reply->element[2]->type == REDIS_REPLY_STRING) {
        s->stats.messages++;
        s->on_message(s->arg, reply->element[2]->str, reply->element[2]->len);
    } else if (shaped && is_str(reply->element[0], "subscribe")) {
        subscribed(s);
    } else {
        l2__conn_drop(&s->conn, "unexpected answer on the subscription");
    }
}

static void conn_start(struct l2__conn *conn)
{
    struct l2_sub *s = sub_of(conn);
    const char *argv[2] = {"SUBSCRIBE", s->channel};
    size_t lens[2] = {9, s->channel_len};
    redisAsyncCommandArgv(conn->ac, on_sub_reply, s, 2, argv, lens);
}

static void conn_lost(struct l2__conn *conn)
{
    struct l2_sub *s = sub_of(conn);
    s->stats.subscribed = 0;
    s->stats.lost++;
}

static void conn_closed(struct l2__conn *conn)
{
    struct l2_sub *s = sub_of(conn);
    free(s->channel);
    s->magic = 0;
    free(s);
}

static const struct l2__conn_ops sub_conn_ops = {
    .start = conn_start,
    .lost = conn_lost,
    .closed = conn_closed,
};

struct l2_sub *l2_sub_new(uv_loop_t *loop, const struct l2_options *opt, const char *channel,
                          size_t channel_len, l2_msg_cb on_message, l2_reset_cb on_reset,
                          void *arg)
{
    GATE_ASSERT(on_message && on_reset);
    if (!l2__options_ok(opt) || channel_len == 0)
        return NULL;
    struct l2_sub *s = xcalloc(1, sizeof(*s));
    s->magic = L2_SUB_MAGIC;
    s->channel = l2__prefixed(opt, channel, channel_len, &s->channel_len);
    s->on_message = on_message;
    s->on_reset = on_reset;
    s->arg = arg;
    l2__conn_init(&s->conn, loop, opt, false, &sub_conn_ops, "subscriber");
    l2__conn_start(&s->conn);
    return s;
}

void l2_sub_free(struct l2_sub **sp)
{
    struct l2_sub *s = *sp;
    if (s == NULL)
        return;
    *sp = NULL;
    GATE_ASSERT(s->magic == L2_SUB_MAGIC && !s->closing);
    s->closing = true;
    s->stats.subscribed = 0;
    l2__conn_close(&s->conn);
}

const struct l2_sub_stats *l2_sub_stats(const struct l2_sub *s)
{
    return &s->stats;
}
