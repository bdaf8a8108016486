/*
 * l2/client — commands to Redis on one connection: GET, the SET + index EVAL,
 * the index delete EVAL, INCR, PUBLISH; command timeouts; fail-fast.
 *
 * Invariants:
 * - Every command handed to hiredis has one struct l2_op, linked in send
 *   order from c->head; hiredis calls on_reply for each exactly once (with
 *   the reply, or NULL when the context is freed), and that call frees it.
 *   Redis answers in order, so replies arrive for c->head first.
 * - c->expiring is the oldest op that has not timed out yet: ops before it
 *   timed out (their callback already ran; their late reply is ignored).
 * - An op's user callback runs at most once: op->live is cleared before it
 *   runs (and by l2_op_cancel / l2_client_free).
 * - No user callback ever runs inside an l2_* call made by the user: failures
 *   found while sending return NULL/false, and connections are only dropped
 *   from the timer or from hiredis callbacks.
 * - After a user callback returns, c->closing is checked before the client
 *   is touched again (the callback may have freed the client; its memory
 *   lives until the close callbacks, but the op list may be gone).
 */
#include "config/config.h"
#include "l2/l2_int.h"
#include "util/util.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/sds.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define L2_CLIENT_MAGIC 0x4c32434cu /* "L2CL" */
#define L2_OP_MAGIC 0x4c324f50u     /* "L2OP" */

/* SET the key, and for every index: add the key, and extend the index's TTL
 * to at least the entry's (an index must outlive every key it lists).
 * Nothing is written while one of the indexes has a tombstone (the index
 * name + "\n!", left by delete_script): a SET that was on its way when the
 * index was deleted must not bring back what the delete removed. "\n" never
 * occurs in a path or a tag (the HTTP parser refuses control bytes).
 * A SET that took more than 5 s from this node to Redis (ARGV[3]: the
 * node's wall clock when it was sent; nodes and Redis keep NTP time) is
 * dropped too: a tombstone only lasts as long as a fill plus a normal trip.
 * KEYS[1] = key, KEYS[2..] = indexes; ARGV[1] = value, ARGV[2] = ttl ms.
 * Returns 1 when written, 0 when a tombstone or its age stopped it. */
static const char set_script[] =
    "local t = redis.call('TIME')\n"
    "if t[1] * 1000 + math.floor(t[2] / 1000) - tonumber(ARGV[3]) > 5000 then return 0 end\n"
    "for i = 2, #KEYS do\n"
    "  if redis.call('EXISTS', KEYS[i] .. '\\n!') == 1 then return 0 end\n"
    "end\n"
    "local ttl = tonumber(ARGV[2])\n"
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)\n"
    "for i = 2, #KEYS do\n"
    "  redis.call('SADD', KEYS[i], KEYS[1])\n"
    "  if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end\n"
    "end\n"
    "return 1\n";

/* Deletes the keys an index lists, then the index, and leaves a tombstone
 * for ARGV[1] ms (none when 0); returns how many keys existed. The index is
 * KEYS[1]; or, with ARGV[2] and ARGV[3], ARGV[2] .. GET(KEYS[1]) (0 when
 * absent) .. ARGV[3]: the index of the generation Redis holds now, so a node
 * that has not yet heard of a flush still deletes where the others write.
 * DEL in batches: unpack() is limited by Lua's C stack. */
static const char delete_script[] =
    "local idx = KEYS[1]\n"
    "if ARGV[2] then idx = ARGV[2] .. (redis.call('GET', KEYS[1]) or '0') .. ARGV[3] end\n"
    "if tonumber(ARGV[1]) > 0 then\n"
    "  redis.call('SET', idx .. '\\n!', '1', 'PX', ARGV[1])\n"
    "end\n"
    "local m = redis.call('SMEMBERS', idx)\n"
    "local n = 0\n"
    "for i = 1, #m, 1000 do\n"
    "  n = n + redis.call('DEL', unpack(m, i, math.min(i + 999, #m)))\n"
    "end\n"
    "redis.call('DEL', idx)\n"
    "return n\n";

/* INCR that never lands at or below ARGV[1]: a counter lost from Redis
 * (evicted, a restart without persistence) must not come back lower than a
 * node has seen. Returns the new value. */
static const char incr_above_script[] =
    "local v = redis.call('INCR', KEYS[1])\n"
    "local f = tonumber(ARGV[1])\n"
    "if v <= f then v = f + 1; redis.call('SET', KEYS[1], v) end\n"
    "return v\n";

/* The counter, first raised to ARGV[1] when below it or absent. */
static const char raise_to_script[] =
    "local v = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
    "local f = tonumber(ARGV[1])\n"
    "if v == nil then return redis.error_reply('not a counter') end\n"
    "if v < f then v = f; redis.call('SET', KEYS[1], v) end\n"
    "return v\n";

enum op_kind { OP_GET, OP_GET_INT, OP_INCR, OP_COUNT, OP_SET, OP_PUBLISH };

struct l2_op {
    uint32_t magic;
    uint8_t kind;    /* enum op_kind */
    bool live;       /* the user callback is still to be called */
    bool timed_out;  /* answered by the timer; the reply is ignored */
    struct l2_client *client; /* borrowed: outlives its ops */
    struct l2_op *prev, *next; /* in flight, send order */
    uint64_t deadline;         /* uv_now() milliseconds */
    union {
        l2_get_cb get;
        l2_int_cb num;
        l2_count_cb count;
    } cb;
    void *arg;
};

struct l2_client {
    uint32_t magic;
    struct l2__conn conn;
    uv_timer_t timer; /* fires at c->expiring's deadline */
    struct l2_op *head, *tail;
    struct l2_op *expiring;
    uint32_t in_flight;
    uint32_t max_pending;
    uint32_t command_timeout_ms;
    uint32_t timeouts_in_a_row;
    char *prefix; /* owned */
    size_t prefix_len;
    struct buf scratch; /* prefixed keys and numbers of the command being sent */
    struct l2_stats stats;
    int open_parts; /* while closing: the timer and the connection */
    bool closing;
};

static struct l2_client *client_of(struct l2__conn *conn)
{
    return (struct l2_client *)((char *)conn - offsetof(struct l2_client, conn));
}

/* ================= answering ================= */

static void call_error(struct l2_op *op)
{
    switch ((enum op_kind)op->kind) {
    case OP_GET:
        if (op->cb.get)
            op->cb.get(op->arg, L2_ERROR, NULL, 0);
        break;
    case OP_GET_INT:
    case OP_INCR:
        if (op->cb.num)
            op->cb.num(op->arg, L2_ERROR, 0);
        break;
    case OP_COUNT:
        if (op->cb.count)
            op->cb.count(op->arg, L2_ERROR, 0);
        break;
    case OP_SET:
    case OP_PUBLISH:
        break;
    }
}

/* Strict decimal int64 (what INCR stores); false for anything else. */
static bool parse_i64(const char *s, size_t len, int64_t *out)
{
    bool neg = len > 0 && s[0] == '-';
    uint64_t v;
    if (!str_to_u64(s + neg, len - neg, &v) || v > (uint64_t)INT64_MAX + neg)
        return false;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

static void answer_get(struct l2_client *c, struct l2_op *op, const redisReply *r, bool live)
{
    enum l2_result res = L2_ERROR;
    if (r && r->type == REDIS_REPLY_STRING)
        res = L2_HIT;
    else if (r && r->type == REDIS_REPLY_NIL)
        res = L2_MISS;
    c->stats.hits += res == L2_HIT;
    c->stats.misses += res == L2_MISS;
    c->stats.errors += res == L2_ERROR;
    if (live && op->cb.get)
        op->cb.get(op->arg, res, res == L2_HIT ? r->str : NULL, res == L2_HIT ? r->len : 0);
}

static void answer_int(struct l2_client *c, struct l2_op *op, const redisReply *r, bool live)
{
    enum l2_result res = L2_ERROR;
    int64_t v = 0;
    if (r && op->kind == OP_GET_INT && r->type == REDIS_REPLY_NIL)
        res = L2_MISS;
    else if (r && op->kind == OP_GET_INT && r->type == REDIS_REPLY_STRING &&
             parse_i64(r->str, r->len, &v))
        res = L2_HIT;
    else if (r && op->kind == OP_INCR && r->type == REDIS_REPLY_INTEGER) {
        v = r->integer;
        res = L2_HIT;
    }
    c->stats.errors += res == L2_ERROR;
    if (live && op->cb.num)
        op->cb.num(op->arg, res, res == L2_ERROR ? 0 : v);
}

static void answer_count(struct l2_client *c, struct l2_op *op, const redisReply *r, bool live)
{
    bool ok = r && r->type == REDIS_REPLY_INTEGER && r->integer >= 0;
    c->stats.errors += !ok;
    if (live && op->cb.count)
        op->cb.count(op->arg, ok ? L2_HIT : L2_ERROR, ok ? (uint64_t)r->integer : 0);
}

/* SET answers +OK, the EVAL 1, PUBLISH the number of receivers. */
static void count_fire_and_forget(struct l2_client *c, const struct l2_op *op,
                                  const redisReply *r)
{
    bool ok = r && (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_INTEGER);
    if (!ok)
        c->stats.errors++;
    else if (op->kind == OP_SET)
        c->stats.sets++;
    else
        c->stats.publishes++;
}

static void unlink_op(struct l2_client *c, struct l2_op *op)
{
    if (c->expiring == op)
        c->expiring = op->next;
    if (op->prev)
        op->prev->next = op->next;
    else
        c->head = op->next;
    if (op->next)
        op->next->prev = op->prev;
    else
        c->tail = op->prev;
    c->in_flight--;
}

static void on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct l2_op *op = privdata;
    GATE_ASSERT(op->magic == L2_OP_MAGIC);
    struct l2_client *c = op->client;
    const redisReply *reply = r;
    unlink_op(c, op);
    if (reply)
        c->timeouts_in_a_row = 0; /* Redis answers, however late */
    if (reply && reply->type == REDIS_REPLY_ERROR)
        log_debug("l2 client: error reply: %.*s", (int)GATE_MIN(reply->len, 200), reply->str);
    bool live = op->live && !c->closing;
    op->live = false;
    if (!op->timed_out) {
        switch ((enum op_kind)op->kind) {
        case OP_GET:
            answer_get(c, op, reply, live);
            break;
        case OP_GET_INT:
        case OP_INCR:
            answer_int(c, op, reply, live);
            break;
        case OP_COUNT:
            answer_count(c, op, reply, live);
            break;
        case OP_SET:
        case OP_PUBLISH:
            count_fire_and_forget(c, op, reply);
            break;
        }
    }
    op->magic = 0;
    free(op);
}

/* ================= timeouts ================= */

static void arm_timer(struct l2_client *c, uint64_t now);

static void on_timeout(uv_timer_t *t)
{
    struct l2_client *c = t->data;
    uint64_t now = uv_now(t->loop);
    while (c->expiring && c->expiring->deadline <= now) {
        struct l2_op *op = c->expiring;
        c->expiring = op->next;
        op->timed_out = true;
        c->stats.timeouts++;
        c->timeouts_in_a_row++;
        if (op->live) {
            op->live = false;
            call_error(op);
            if (c->closing)
                return;
        }
    }
    if (c->timeouts_in_a_row >= L2_TIMEOUTS_BEFORE_RECONNECT) {
        c->timeouts_in_a_row = 0;
        l2__conn_drop(&c->conn, "commands keep timing out");
        if (c->closing)
            return;
    }
    arm_timer(c, now);
}

/* Arms the timer at the oldest deadline still to come (none: stays off). */
static void arm_timer(struct l2_client *c, uint64_t now)
{
    if (c->expiring == NULL)
        return;
    uint64_t d = c->expiring->deadline;
    uv_timer_start(&c->timer, on_timeout, d > now ? d - now : 0, 0);
}

/* ================= sending ================= */

/* Bytes waiting in hiredis's output buffer beyond which operations fail
 * fast: a slow Redis must not make a node hold (and later send) an
 * unbounded backlog. */
#define L2_MAX_OUTPUT_BYTES (64u << 20)

static bool can_send(struct l2_client *c)
{
    return !c->closing && c->in_flight < c->max_pending && l2__conn_usable(&c->conn) &&
           sdslen(c->conn.ac->c.obuf) < L2_MAX_OUTPUT_BYTES;
}

/* Hands one command to hiredis. Returns the op, or NULL (counted as an error)
 * when it fails fast; no callback either way. */
static struct l2_op *send_op(struct l2_client *c, enum op_kind kind, int argc, const char **argv,
                             const size_t *lens)
{
    if (!can_send(c)) {
        c->stats.errors++;
        return NULL;
    }
    struct l2_op *op = xcalloc(1, sizeof(*op));
    op->magic = L2_OP_MAGIC;
    op->kind = (uint8_t)kind;
    op->client = c;
    if (redisAsyncCommandArgv(c->conn.ac, on_reply, op, argc, argv, lens) != REDIS_OK) {
        free(op);
        c->stats.errors++;
        return NULL;
    }
    uint64_t now = uv_now(c->conn.loop);
    op->deadline = now + c->command_timeout_ms;
    op->prev = c->tail;
    if (c->tail)
        c->tail->next = op;
    else
        c->head = op;
    c->tail = op;
    c->in_flight++;
    if (c->expiring == NULL)
        c->expiring = op;
    /* Armed at the oldest deadline; on_timeout re-arms for the next one. */
    if (!uv_is_active((uv_handle_t *)&c->timer))
        arm_timer(c, now);
    return op;
}

/* Appends prefix + s to the scratch buffer; returns its offset there. */
static size_t scratch_key(struct l2_client *c, const char *s, size_t n)
{
    size_t off = c->scratch.len;
    buf_append(&c->scratch, c->prefix, c->prefix_len);
    buf_append(&c->scratch, s, n);
    return off;
}

static size_t scratch_u64(struct l2_client *c, uint64_t v)
{
    size_t off = c->scratch.len;
    buf_append_u64(&c->scratch, v);
    return off;
}

/* One command on one key (GET, INCR): "CMD prefix+key". */
static struct l2_op *send_key_cmd(struct l2_client *c, enum op_kind kind, const char *cmd,
                                  const char *key, size_t len)
{
    buf_reset(&c->scratch);
    scratch_key(c, key, len);
    const char *argv[2] = {cmd, c->scratch.data};
    size_t lens[2] = {strlen(cmd), c->scratch.len};
    return send_op(c, kind, 2, argv, lens);
}

/* ================= operations ================= */

struct l2_op *l2_get(struct l2_client *c, const char *key, size_t key_len, l2_get_cb cb,
                     void *arg)
{
    GATE_ASSERT(c->magic == L2_CLIENT_MAGIC && cb);
    struct l2_op *op = send_key_cmd(c, OP_GET, "GET", key, key_len);
    if (op) {
        op->cb.get = cb;
        op->arg = arg;
        op->live = true;
    }
    return op;
}

void l2_op_cancel(struct l2_op **opp)
{
    struct l2_op *op = *opp;
    if (op == NULL)
        return;
    *opp = NULL;
    GATE_ASSERT(op->magic == L2_OP_MAGIC);
    op->live = false;
}

bool l2_set(struct l2_client *c, const char *key, size_t key_len, const char *value,
            size_t value_len, uint64_t ttl_ms, const struct l2_str *index_keys, size_t n_index)
{
    GATE_ASSERT(c->magic == L2_CLIENT_MAGIC);
    if (ttl_ms == 0)
        return false;
    if (n_index == 0) {
        buf_reset(&c->scratch);
        size_t k = scratch_key(c, key, key_len);
        size_t klen = c->scratch.len - k;
        size_t t = scratch_u64(c, ttl_ms);
        const char *argv[5] = {"SET", c->scratch.data + k, value, "PX", c->scratch.data + t};
        size_t lens[5] = {3, klen, value_len, 2, c->scratch.len - t};
        return send_op(c, OP_SET, 5, argv, lens) != NULL;
    }
    /* EVAL script numkeys key index... value ttl sent_at: the texts go to
     * scratch first, the pointers are taken once it no longer moves. */
    size_t argc = 3 + 1 + n_index + 3, value_at = argc - 3;
    const char **argv = xmalloc(argc * sizeof(*argv));
    size_t *lens = xmalloc(argc * sizeof(*lens));
    size_t *offs = xmalloc(argc * sizeof(*offs));
    buf_reset(&c->scratch);
    for (size_t i = 2; i < argc; i++) {
        offs[i] = c->scratch.len;
        if (i == 2)
            scratch_u64(c, 1 + n_index);
        else if (i == 3)
            scratch_key(c, key, key_len);
        else if (i < value_at)
            scratch_key(c, index_keys[i - 4].data, index_keys[i - 4].len);
        else if (i == value_at + 1)
            scratch_u64(c, ttl_ms);
        else if (i == value_at + 2)
            scratch_u64(c, (uint64_t)util_wall_ms());
        lens[i] = c->scratch.len - offs[i];
    }
    for (size_t i = 2; i < argc; i++)
        argv[i] = c->scratch.data + offs[i];
    argv[0] = "EVAL";
    lens[0] = 4;
    argv[1] = set_script;
    lens[1] = sizeof(set_script) - 1;
    argv[value_at] = value;
    lens[value_at] = value_len;
    bool ok = send_op(c, OP_SET, (int)argc, argv, lens) != NULL;
    free(argv);
    free(lens);
    free(offs);
    return ok;
}

bool l2_delete_index(struct l2_client *c, const char *index_key, size_t len,
                     uint64_t tombstone_ms, l2_count_cb cb, void *arg)
{
    GATE_ASSERT(c->magic == L2_CLIENT_MAGIC);
    buf_reset(&c->scratch);
    scratch_key(c, index_key, len);
    size_t klen = c->scratch.len;
    size_t t = scratch_u64(c, tombstone_ms);
    const char *argv[5] = {"EVAL", delete_script, "1", c->scratch.data, c->scratch.data + t};
    size_t lens[5] = {4, sizeof(delete_script) - 1, 1, klen, c->scratch.len - t};
    struct l2_op *op = send_op(c, OP_COUNT, 5, argv, lens);
    if (op) {
        op->cb.count = cb;
        op->arg = arg;
        op->live = true;
    }
    return op != NULL;
}

bool l2_delete_index_at(struct l2_client *c, const char *gen_key, size_t gen_len,
                        const char *head, size_t head_len, const char *tail, size_t tail_len,
                        uint64_t tombstone_ms, l2_count_cb cb, void *arg)
{
    GATE_ASSERT(c->magic == L2_CLIENT_MAGIC);
    buf_reset(&c->scratch);
    size_t g = scratch_key(c, gen_key, gen_len);
    size_t g_end = c->scratch.len;
    size_t t = scratch_u64(c, tombstone_ms);
    size_t t_end = c->scratch.len;
    size_t h = scratch_key(c, head, head_len);
    size_t h_end = c->scratch.len;
    const char *argv[7] = {"EVAL", delete_script, "1", c->scratch.data + g,
                           c->scratch.data + t, c->scratch.data + h, tail};
    size_t lens[7] = {4, sizeof(delete_script) - 1, 1, g_end - g, t_end - t, h_end - h,
                      tail_len};
    struct l2_op *op = send_op(c, OP_COUNT, 7, argv, lens);
    if (op) {
        op->cb.count = cb;
        op->arg = arg;
        op->live = true;
    }
    return op != NULL;
}

static bool send_int_op(struct l2_client *c, enum op_kind kind, const char *cmd, const char *key,
                        size_t len, l2_int_cb cb, void *arg)
{
    GATE_ASSERT(c->magic == L2_CLIENT_MAGIC);
    struct l2_op *op = send_key_cmd(c, kind, cmd, key, len);
    if (op) {
        op->cb.num = cb;
        op->arg = arg;
        op->live = true;
    }
    return op != NULL;
}

bool l2_incr(struct l2_client *c, const char *key, size_t len, l2_int_cb cb, void *arg)
{
    return send_int_op(c, OP_INCR, "INCR", key, len, cb, arg);
}

/* EVAL script 1 prefix+key floor, answered as an integer. */
static bool send_floor_op(struct l2_client *c, const char *script, size_t script_len,
                          const char *key, size_t len, uint64_t floor, l2_int_cb cb, void *arg)
{
    GATE_ASSERT(c->magic == L2_CLIENT_MAGIC);
    buf_reset(&c->scratch);
    scratch_key(c, key, len);
    size_t klen = c->scratch.len;
    size_t f = scratch_u64(c, floor);
    const char *argv[5] = {"EVAL", script, "1", c->scratch.data, c->scratch.data + f};
    size_t lens[5] = {4, script_len, 1, klen, c->scratch.len - f};
    struct l2_op *op = send_op(c, OP_INCR, 5, argv, lens);
    if (op) {
        op->cb.num = cb;
        op->arg = arg;
        op->live = true;
    }
    return op != NULL;
}

bool l2_incr_above(struct l2_client *c, const char *key, size_t len, uint64_t floor,
                   l2_int_cb cb, void *arg)
{
    return send_floor_op(c, incr_above_script, sizeof(incr_above_script) - 1, key, len, floor,
                         cb, arg);
}

bool l2_raise_to(struct l2_client *c, const char *key, size_t len, uint64_t floor, l2_int_cb cb,
                 void *arg)
{
    GATE_ASSERT(cb);
    return send_floor_op(c, raise_to_script, sizeof(raise_to_script) - 1, key, len, floor, cb,
                         arg);
}

bool l2_get_int(struct l2_client *c, const char *key, size_t len, l2_int_cb cb, void *arg)
{
    GATE_ASSERT(cb);
    return send_int_op(c, OP_GET_INT, "GET", key, len, cb, arg);
}

bool l2_publish(struct l2_client *c, const char *channel, size_t channel_len, const char *msg,
                size_t msg_len)
{
    GATE_ASSERT(c->magic == L2_CLIENT_MAGIC);
    buf_reset(&c->scratch);
    scratch_key(c, channel, channel_len);
    const char *argv[3] = {"PUBLISH", c->scratch.data, msg};
    size_t lens[3] = {7, c->scratch.len, msg_len};
    return send_op(c, OP_PUBLISH, 3, argv, lens) != NULL;
}

const struct l2_stats *l2_client_stats(const struct l2_client *c)
{
    return &c->stats;
}

/* ================= connection events ================= */

static void on_ping_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct l2_client *c = privdata;
    const redisReply *reply = r;
    if (reply == NULL || c->closing || c->conn.ac != ac)
        return; /* the context is going away: handled there */
    if (reply->type != REDIS_REPLY_STATUS) {
        char why[160];
        snprintf(why, sizeof(why), "PING answered: %.*s", (int)GATE_MIN(reply->len, 120),
                 reply->str ? reply->str : "?");
        l2__conn_drop(&c->conn, why);
        return;
    }
    l2__conn_ready(&c->conn);
    c->stats.connected = 1;
    if (c->conn.ready_count > 1)
        c->stats.reconnects++;
}

/* The connection is only usable once Redis has answered: a PING after
 * AUTH/SELECT proves the server is not merely accepting TCP (a stopped
 * process still completes handshakes from its listen backlog). */
static void conn_start(struct l2__conn *conn)
{
    struct l2_client *c = client_of(conn);
    const char *argv[1] = {"PING"};
    size_t lens[1] = {4};
    redisAsyncCommandArgv(conn->ac, on_ping_reply, c, 1, argv, lens);
}

static void conn_lost(struct l2__conn *conn)
{
    struct l2_client *c = client_of(conn);
    c->stats.connected = 0;
    c->timeouts_in_a_row = 0;
}

static void part_closed(struct l2_client *c)
{
    if (--c->open_parts > 0)
        return;
    GATE_ASSERT(c->head == NULL && c->in_flight == 0);
    buf_free(&c->scratch);
    free(c->prefix);
    c->magic = 0;
    free(c);
}

static void conn_closed(struct l2__conn *conn)
{
    part_closed(client_of(conn));
}

static void on_timer_closed(uv_handle_t *h)
{
    part_closed(h->data);
}

static const struct l2__conn_ops client_conn_ops = {
    .start = conn_start,
    .lost = conn_lost,
    .closed = conn_closed,
};

/* ================= life ================= */

struct l2_client *l2_client_new(uv_loop_t *loop, const struct l2_options *opt)
{
    if (!l2__options_ok(opt))
        return NULL;
    struct l2_client *c = xcalloc(1, sizeof(*c));
    c->magic = L2_CLIENT_MAGIC;
    c->max_pending = opt->max_pending ? opt->max_pending : L2_DEFAULT_MAX_PENDING;
    c->command_timeout_ms = opt->command_timeout_ms;
    c->prefix = l2__prefixed(opt, "", 0, &c->prefix_len);
    buf_init(&c->scratch);
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    l2__conn_init(&c->conn, loop, opt, true, &client_conn_ops, "client");
    l2__conn_start(&c->conn);
    return c;
}

void l2_client_free(struct l2_client **cp)
{
    struct l2_client *c = *cp;
    if (c == NULL)
        return;
    *cp = NULL;
    GATE_ASSERT(c->magic == L2_CLIENT_MAGIC && !c->closing);
    c->closing = true;
    for (struct l2_op *op = c->head; op; op = op->next)
        op->live = false;
    c->stats.connected = 0;
    c->open_parts = 2;
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    l2__conn_close(&c->conn);
}

/* ================= options ================= */

void l2_options_init(struct l2_options *o)
{
    memset(o, 0, sizeof(*o));
    o->port = L2_URL_DEFAULT_PORT;
    o->connect_timeout_ms = L2_DEFAULT_CONNECT_TIMEOUT_MS;
    o->command_timeout_ms = L2_DEFAULT_COMMAND_TIMEOUT_MS;
    o->reconnect_min_ms = L2_DEFAULT_RECONNECT_MIN_MS;
    o->reconnect_max_ms = L2_DEFAULT_RECONNECT_MAX_MS;
    o->key_prefix = L2_DEFAULT_KEY_PREFIX;
    o->max_pending = L2_DEFAULT_MAX_PENDING;
}

void l2_options_from_cfg(struct l2_options *o, const struct cfg_cache_backend *b)
{
    l2_options_init(o);
    o->host = b->host;
    o->port = b->port;
    o->db = b->db;
    o->username = b->username;
    o->password = b->password;
    o->connect_timeout_ms = b->connect_timeout_ms;
    o->command_timeout_ms = b->command_timeout_ms;
    o->reconnect_min_ms = b->reconnect_min_ms;
    o->reconnect_max_ms = b->reconnect_max_ms;
    o->key_prefix = b->key_prefix;
}
