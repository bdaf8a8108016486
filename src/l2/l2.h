/*
 * l2 — the Redis side of the shared second cache tier (issue 7): an async
 * Redis client and a pub/sub subscriber on a libuv loop (hiredis 0.14's async
 * API and its libuv adapter), the codec of the invalidation messages nodes
 * publish to each other, the codec of cache entries stored in Redis, and the
 * parser of redis:// URLs.
 *
 * Owns: the Redis connections (connect, AUTH, SELECT, reconnect with
 * exponential backoff, command timeouts, fail-fast when unavailable), the
 * layout of every byte gatecache puts in Redis (keys prefixed with
 * key_prefix, entry values, index sets, channel messages), and its counters.
 * It knows nothing of requests, stages or the L1 store beyond struct
 * cache_entry; server/ decides when to call it.
 *
 * Threading: a client or subscriber belongs to the loop it was created on;
 * every function on it, and every callback it makes, runs on that loop's
 * thread. The codecs and l2_url_parse are pure functions, callable anywhere.
 *
 * hiredis writes with write(2): the process must ignore SIGPIPE (gatecache's
 * serve does), or a write to a connection Redis just closed kills it.
 *
 * No TLS: Debian 12's hiredis 0.14 has none (hiredis >= 1.0 with hiredis_ssl
 * does); rediss:// URLs are parsed but refused by the config (docs/redis.md).
 */
#ifndef GATE_L2_H
#define GATE_L2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct cache_entry;
struct cfg_cache_backend;

/* A binary string (may hold NUL bytes); borrowed unless said otherwise. */
struct l2_str {
    const char *data;
    size_t len;
};

/* ================= redis:// URLs ================= */

#define L2_URL_MAX_HOST 255
#define L2_URL_MAX_USER 255
#define L2_URL_MAX_PASSWORD 511
#define L2_URL_DEFAULT_PORT 6379

/* A parsed URL. Fixed arrays, no allocation: wipe it (explicit_bzero) after
 * copying the password out. */
struct l2_url {
    char host[L2_URL_MAX_HOST + 1];         /* name or IP; IPv6 without brackets */
    char username[L2_URL_MAX_USER + 1];     /* percent-decoded; "" = none */
    char password[L2_URL_MAX_PASSWORD + 1]; /* percent-decoded; "" = none */
    int port;                               /* 1..65535; default 6379 */
    int db;                                 /* 0..INT32_MAX; default 0 */
    bool tls;                               /* the scheme was rediss:// */
};

/*
 * Parses "redis://[user[:password]@]host[:port][/db]" (scheme case-insensitive,
 * "rediss" sets tls). host is a name of letters, digits, '-', '.', '_', an
 * IPv4 address or "[IPv6]"; userinfo may use %XX escapes (for ':', '@', '/').
 * Refused: other schemes, an empty host or port, a port outside 1..65535, a db
 * that is not a decimal number, a query or fragment, control bytes, a decoded
 * NUL, parts longer than the arrays above, an empty password after ':'.
 * Returns 0 and fills *out, or -EINVAL with a one-line reason in err (when
 * errlen > 0). The reason never contains any part of the URL but the scheme,
 * so a password typed into a URL cannot leak into a log. Pure: no allocation.
 */
int l2_url_parse(const char *url, struct l2_url *out, char *err, size_t errlen);

/* ================= options ================= */

#define L2_DEFAULT_CONNECT_TIMEOUT_MS 200
#define L2_DEFAULT_COMMAND_TIMEOUT_MS 50
#define L2_DEFAULT_RECONNECT_MIN_MS 100
#define L2_DEFAULT_RECONNECT_MAX_MS 5000
#define L2_DEFAULT_KEY_PREFIX "gc:"
#define L2_DEFAULT_MAX_PENDING 1024
/* This many command timeouts in a row (no reply in between) drop the
 * connection: Redis is stuck or the network is gone, so reconnect. */
#define L2_TIMEOUTS_BEFORE_RECONNECT 3

/* Everything needed to reach Redis. Strings are borrowed for the duration of
 * l2_client_new / l2_sub_new only (they are copied). */
struct l2_options {
    const char *host;     /* required: name or numeric address (names are resolved off-loop) */
    int port;             /* 1..65535 */
    int db;               /* SELECT db after connecting when > 0 (client only: pub/sub has no db) */
    const char *username; /* NULL or "" = none (AUTH password); else AUTH username password */
    const char *password; /* NULL or "" = no AUTH */
    uint32_t connect_timeout_ms; /* resolve + TCP + AUTH/SELECT + first answer; > 0 */
    uint32_t command_timeout_ms; /* per command; > 0 */
    uint32_t reconnect_min_ms;   /* first retry delay after a failure; > 0 */
    uint32_t reconnect_max_ms;   /* the delay doubles up to this; >= reconnect_min_ms */
    const char *key_prefix;      /* prepended to every key, index key and channel; NULL = "" */
    uint32_t max_pending;        /* commands in flight before operations fail fast; 0 = 1024 */
};

/* Fills the defaults above (host NULL, port 6379, db 0, no auth). */
void l2_options_init(struct l2_options *o);
/* The options of a `type: redis` cache_backend; strings borrowed from b (keep
 * the config snapshot until l2_client_new / l2_sub_new returned). */
void l2_options_from_cfg(struct l2_options *o, const struct cfg_cache_backend *b);

/* The hiredis this build links, e.g. "0.14.1" (static string). */
const char *l2_hiredis_version(void);

/* ================= client ================= */

enum l2_result {
    L2_HIT = 0, /* l2_get: found; int and count operations: success */
    L2_MISS,    /* l2_get: no such key; l2_get_int: no such key (value 0) */
    L2_ERROR,   /* not answered: connection lost, timeout, error reply, bad value */
};

/* data: borrowed, valid during the call only; binary (NUL bytes allowed). */
typedef void (*l2_get_cb)(void *arg, enum l2_result r, const char *data, size_t len);
typedef void (*l2_int_cb)(void *arg, enum l2_result r, int64_t value);
typedef void (*l2_count_cb)(void *arg, enum l2_result r, uint64_t count);

/*
 * Counters of one client, plain fields written and read by the loop's thread
 * only (copy them there for a scrape from another thread).
 */
struct l2_stats {
    uint64_t hits;       /* l2_get answered L2_HIT */
    uint64_t misses;     /* l2_get answered L2_MISS */
    uint64_t errors;     /* operations refused at once (not connected, too many
                            pending) or answered L2_ERROR for a reason other than
                            a timeout (error reply, bad value, connection lost);
                            fire-and-forget commands included */
    uint64_t timeouts;   /* commands answered L2_ERROR after command_timeout_ms */
    uint64_t reconnects; /* connections established after the first one */
    uint64_t sets;       /* l2_set commands Redis confirmed */
    uint64_t publishes;  /* l2_publish commands Redis confirmed */
    uint64_t connected;  /* 1 while connected and authenticated, else 0 */
};

struct l2_client;
struct l2_op;

/*
 * Creates a client and starts connecting at once (never blocking: host names
 * are resolved with uv_getaddrinfo). Until the connection is up, operations
 * fail fast. After any error or disconnect it reconnects after
 * reconnect_min_ms, doubling (with up to 25% jitter off) to reconnect_max_ms;
 * the delay starts over after a successful connection.
 * Returns NULL when opt is unusable (no host, port out of range, a zero
 * timeout, reconnect_min_ms > reconnect_max_ms). owned: l2_client_free.
 * The client keeps the loop alive while it has work (a retry timer, commands
 * in flight).
 */
struct l2_client *l2_client_new(uv_loop_t *loop, const struct l2_options *opt);

/*
 * Frees the client: operations still in flight are cancelled (their callbacks
 * are never called), the connection is closed. NULLs *c; NULL is a no-op. Safe
 * from inside any callback of the client. The memory of handles is released
 * from libuv close callbacks: the caller must run the loop afterwards until it
 * has nothing left, e.g. at shutdown
 *     l2_client_free(&c);
 *     while (uv_run(loop, UV_RUN_DEFAULT) != 0) {}
 *     uv_loop_close(loop);   (returns 0: nothing of the client is left)
 * A lookup of the host still running in libuv's thread pool is abandoned and
 * ends in that run too.
 */
void l2_client_free(struct l2_client **c);

/* borrowed: valid until l2_client_free; loop thread only. */
const struct l2_stats *l2_client_stats(const struct l2_client *c);

/*
 * GET prefix+key. Fails fast -- returns NULL and never calls cb -- when not
 * connected or max_pending commands are in flight. Otherwise returns the
 * operation (borrowed: valid until cb is called or l2_op_cancel) and calls cb
 * exactly once, never from inside l2_get, within about command_timeout_ms:
 * L2_HIT with the value, L2_MISS, or L2_ERROR. key: key_len bytes, binary.
 */
struct l2_op *l2_get(struct l2_client *c, const char *key, size_t key_len, l2_get_cb cb,
                     void *arg);

/* After this, the operation's callback is never called (its request went
 * away). NULLs *op; NULL is a no-op, and so is a call from inside the
 * operation's own callback. Never call it after the callback has returned. */
void l2_op_cancel(struct l2_op **op);

/*
 * Fire and forget: SET prefix+key value PX ttl_ms and, for each index key,
 * SADD prefix+index prefix+key and make the index live at least ttl_ms
 * (PEXPIRE only ever lengthens it), all in one EVAL. ttl_ms >= 1. Returns
 * false when it failed fast (or ttl_ms is 0); the outcome is only counted
 * (sets or errors).
 */
bool l2_set(struct l2_client *c, const char *key, size_t key_len, const char *value,
            size_t value_len, uint64_t ttl_ms, const struct l2_str *index_keys, size_t n_index);

/*
 * Deletes every key listed in the set prefix+index_key and the set itself,
 * atomically (one EVAL), and leaves a tombstone on the index for
 * tombstone_ms (0: none): while it lives, l2_set writes nothing that this
 * index would list -- a fill that was on its way (from another connection,
 * or begun before the invalidation) cannot bring back what was deleted.
 * cb(arg, L2_HIT, keys deleted) or L2_ERROR; cb may be NULL. Returns false
 * when it failed fast (cb never called); otherwise cb is called exactly once,
 * later, unless the client is freed first (arg must stay valid until then).
 */
bool l2_delete_index(struct l2_client *c, const char *index_key, size_t len,
                     uint64_t tombstone_ms, l2_count_cb cb, void *arg);

/*
 * l2_delete_index on the index named prefix+head, then the decimal value of
 * the counter prefix+gen_key as Redis holds it now (0 when absent), then
 * tail -- so the index of the current generation is the one deleted, whatever
 * generation the caller has heard of. Same calling rules.
 */
bool l2_delete_index_at(struct l2_client *c, const char *gen_key, size_t gen_len,
                        const char *head, size_t head_len, const char *tail, size_t tail_len,
                        uint64_t tombstone_ms, l2_count_cb cb, void *arg);

/* INCR prefix+key: cb(arg, L2_HIT, new value) or L2_ERROR. A stage's generation
 * counter: a flush is one INCR. Same calling rules as l2_delete_index (cb may
 * be NULL). */
bool l2_incr(struct l2_client *c, const char *key, size_t len, l2_int_cb cb, void *arg);

/* GET prefix+key as a decimal int64: L2_HIT with it, L2_MISS with 0 when the key
 * does not exist, L2_ERROR (also for a value that is not a decimal int64).
 * Same calling rules as l2_delete_index, cb required. */
bool l2_get_int(struct l2_client *c, const char *key, size_t len, l2_int_cb cb, void *arg);

/* A counter that must never go back (stage generations): INCR, but to at
 * least floor + 1 (a counter lost from Redis comes back above what the
 * caller has seen); cb(arg, L2_HIT, new value) or L2_ERROR. Rules as l2_incr. */
bool l2_incr_above(struct l2_client *c, const char *key, size_t len, uint64_t floor,
                   l2_int_cb cb, void *arg);
/* Reads such a counter, first raising it to floor when it is lower or
 * absent: cb(arg, L2_HIT, value >= floor) or L2_ERROR. cb required. */
bool l2_raise_to(struct l2_client *c, const char *key, size_t len, uint64_t floor, l2_int_cb cb,
                 void *arg);

/* Fire and forget: PUBLISH prefix+channel msg. Returns false when it failed
 * fast; counted in publishes or errors. */
bool l2_publish(struct l2_client *c, const char *channel, size_t channel_len, const char *msg,
                size_t msg_len);

/* ================= subscriber ================= */

/* data: borrowed, valid during the call only. */
typedef void (*l2_msg_cb)(void *arg, const char *data, size_t len);
typedef void (*l2_reset_cb)(void *arg);

/* Counters of one subscriber; loop thread only, as struct l2_stats. */
struct l2_sub_stats {
    uint64_t messages;   /* on_message calls */
    uint64_t resets;     /* on_reset calls */
    uint64_t lost;       /* established subscriptions that were lost */
    uint64_t subscribed; /* 1 while subscribed, else 0 */
};

struct l2_sub;

/*
 * Opens its own connection (AUTH as the client; no SELECT: channels are not
 * per db), SUBSCRIBEs to prefix+channel and keeps it subscribed, reconnecting
 * as the client does. on_message(arg, data, len) per message published on
 * the channel. on_reset(arg) each time the subscription is established again
 * after having been lost -- not on the first successful subscribe: messages
 * may have been missed in between, so the caller drops what they would have
 * invalidated. The connection is watched with TCP keepalive (hiredis: 15 s),
 * so a silently dead peer is noticed within about a minute.
 * Returns NULL when opt is unusable (as l2_client_new) or channel is empty.
 * owned: l2_sub_free.
 */
struct l2_sub *l2_sub_new(uv_loop_t *loop, const struct l2_options *opt, const char *channel,
                          size_t channel_len, l2_msg_cb on_message, l2_reset_cb on_reset,
                          void *arg);

/* As l2_client_free: no callback after it, run the loop afterwards. Safe from
 * inside on_message / on_reset. NULLs *s; NULL is a no-op. */
void l2_sub_free(struct l2_sub **s);

/* borrowed: valid until l2_sub_free; loop thread only. */
const struct l2_sub_stats *l2_sub_stats(const struct l2_sub *s);

/* ================= channel messages ================= */

/*
 * One invalidation published on the channel. Layout, version 1, integers
 * little-endian:
 *   "gcm" u8 version=1 | u8 kind | u64 node_id | u64 generation | u64 hash
 *   | u32 len + stage | u32 len + a | u32 len + b
 * and nothing after it. Fields a kind does not use must be 0 / empty.
 */
enum l2_msg_kind {
    L2_MSG_FLUSH = 1,       /* generation: the stage's new generation */
    L2_MSG_PATH = 2,        /* a: the path */
    L2_MSG_PATH_PREFIX = 3, /* a: the prefix (CloudFront's '*' already stripped);
                               generation: the stage's new generation (no index by
                               prefix in Redis: the stage's L2 is dropped) */
    L2_MSG_METHOD_PATH = 4, /* a: the method, b: the path */
    L2_MSG_TAG = 5,         /* a: the tag */
    L2_MSG_KEY = 6,         /* a: the cache key bytes, hash: cache_hash of them */
};

#define L2_MSG_MAX_STAGE 512    /* "api/stage": printable ASCII, no space */
#define L2_MSG_MAX_FIELD 65535u /* a and b each */

struct l2_msg {
    uint64_t node_id; /* the sender, so a node can skip its own messages */
    enum l2_msg_kind kind;
    struct l2_str stage; /* 1..L2_MSG_MAX_STAGE bytes */
    uint64_t generation;
    struct l2_str a; /* required (non-empty) by every kind but FLUSH */
    struct l2_str b; /* METHOD_PATH only, required there */
    uint64_t hash;
};

/* True when m follows the rules above (what encode requires, decode ensures). */
bool l2_msg_is_valid(const struct l2_msg *m);
/* Bytes l2_msg_encode writes for a valid m. */
size_t l2_msg_size(const struct l2_msg *m);
/* Writes exactly l2_msg_size(m) bytes to out. m must be valid (asserted). */
void l2_msg_encode(const struct l2_msg *m, char *out);
/*
 * Parses one message: strict (magic, version, known kind, every length within
 * the input, field rules, no trailing byte). Returns 0 and fills *out, whose
 * strings point into data (borrowed: valid while data is), or -EINVAL.
 */
int l2_msg_decode(const char *data, size_t len, struct l2_msg *out);

/* ================= cache entries in Redis ================= */

/*
 * An L1 entry as stored in Redis, version 1, integers little-endian:
 *   "gce" u8 version=1 | u8 flags | u8 method_len | u16 key_len | u16 path_len
 *   | u16 head_len | u32 tags_size | u32 body_len | i64 stored | i64 expires
 *   | i64 stale_until | key | method | path | tags | head | body
 * Times are wall-clock (CLOCK_REALTIME) milliseconds, since each process's
 * monotonic clock is its own; Age and TTL therefore carry over between nodes
 * as far as their clocks agree. The body is stored exactly as the L1 holds it
 * (still sealed when CACHE_ENTRY_ENCRYPTED); tags as the entry's NUL-separated
 * list. flags: CACHE_ENTRY_ENCRYPTED only.
 */
#define L2_ENTRY_HEADER 44
#define L2_WALL_MAX ((int64_t)1 << 50) /* times past ~37,000 AD are refused */

/* Bytes l2_entry_encode writes for e. */
size_t l2_entry_size(const struct cache_entry *e);
/* Writes exactly l2_entry_size(e) bytes to out; times converted with
 * wall = t - now_ms + wall_now_ms (now_ms: util_now_ms(), wall_now_ms:
 * util_wall_ms(), read together). */
void l2_entry_encode(const struct cache_entry *e, int64_t now_ms, int64_t wall_now_ms, char *out);

/*
 * Rebuilds an entry from l2_entry_encode's bytes, with hash as its hash and
 * times converted back to this process's monotonic clock. Strict: returns NULL
 * on anything malformed (magic, version, flags, lengths, a method that is not
 * a token, NUL in path or head, a malformed tag list, times out of order or
 * outside 0..L2_WALL_MAX, trailing bytes), on a key that is not exactly
 * want_key (a hash collision or another layout must never answer for another
 * key), on an entry already past its stale_until at wall_now_ms, or when
 * memory is short (the caller fetches from the origin instead).
 * ref: release with cache_entry_release; not yet in any store.
 */
struct cache_entry *l2_entry_decode(const char *data, size_t len, const char *want_key,
                                    size_t want_key_len, uint64_t hash, int64_t now_ms,
                                    int64_t wall_now_ms);

#endif
