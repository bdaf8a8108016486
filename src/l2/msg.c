/*
 * l2/msg — the invalidation messages nodes publish on the shared channel
 * (layout in l2.h). Decoding parses network input: every length is checked
 * against what is left before it is used, and anything the encoder would not
 * have produced is refused, so encode(decode(x)) == x for every accepted x.
 */
#include "l2/l2_int.h"
#include "util/util.h"

#include <errno.h>
#include <string.h>

#define MSG_VERSION 1
/* magic, version, kind, node_id, generation, hash */
#define MSG_FIXED (3 + 1 + 1 + 8 + 8 + 8)

static const char msg_magic[3] = {'g', 'c', 'm'};

static bool stage_ok(struct l2_str s)
{
    if (s.len == 0 || s.len > L2_MSG_MAX_STAGE)
        return false;
    for (size_t i = 0; i < s.len; i++)
        if ((unsigned char)s.data[i] <= 0x20 || (unsigned char)s.data[i] >= 0x7f)
            return false;
    return true;
}

bool l2_msg_is_valid(const struct l2_msg *m)
{
    if (!stage_ok(m->stage) || m->a.len > L2_MSG_MAX_FIELD || m->b.len > L2_MSG_MAX_FIELD)
        return false;
    bool has_a = m->a.len > 0, has_b = m->b.len > 0;
    switch (m->kind) {
    case L2_MSG_FLUSH:
        return !has_a && !has_b && m->hash == 0;
    case L2_MSG_PATH_PREFIX: /* generation: the stage's new one (its L2 was dropped) */
        return has_a && !has_b && m->hash == 0;
    case L2_MSG_PATH:
    case L2_MSG_TAG:
        return has_a && !has_b && m->generation == 0 && m->hash == 0;
    case L2_MSG_METHOD_PATH:
        return has_a && has_b && m->generation == 0 && m->hash == 0;
    case L2_MSG_KEY:
        return has_a && !has_b && m->generation == 0;
    }
    return false;
}

size_t l2_msg_size(const struct l2_msg *m)
{
    return MSG_FIXED + 4 + m->stage.len + 4 + m->a.len + 4 + m->b.len;
}

static char *put_str(char *p, struct l2_str s)
{
    l2__put_u32(p, (uint32_t)s.len);
    if (s.len)
        memcpy(p + 4, s.data, s.len);
    return p + 4 + s.len;
}

void l2_msg_encode(const struct l2_msg *m, char *out)
{
    GATE_ASSERT(l2_msg_is_valid(m));
    char *p = out;
    memcpy(p, msg_magic, 3);
    p[3] = MSG_VERSION;
    p[4] = (char)m->kind;
    l2__put_u64(p + 5, m->node_id);
    l2__put_u64(p + 13, m->generation);
    l2__put_u64(p + 21, m->hash);
    p = put_str(p + MSG_FIXED, m->stage);
    p = put_str(p, m->a);
    p = put_str(p, m->b);
    GATE_ASSERT((size_t)(p - out) == l2_msg_size(m));
}

/* Takes a u32-length-prefixed string from [*p, end); false when it does not fit. */
static bool take_str(const char **p, const char *end, struct l2_str *s)
{
    if (end - *p < 4)
        return false;
    uint32_t n = l2__get_u32(*p);
    *p += 4;
    if ((size_t)(end - *p) < n)
        return false;
    s->data = *p;
    s->len = n;
    *p += n;
    return true;
}

int l2_msg_decode(const char *data, size_t len, struct l2_msg *out)
{
    memset(out, 0, sizeof(*out));
    if (len < MSG_FIXED || memcmp(data, msg_magic, 3) != 0 || data[3] != MSG_VERSION)
        return -EINVAL;
    unsigned kind = (unsigned char)data[4];
    if (kind < L2_MSG_FLUSH || kind > L2_MSG_KEY)
        return -EINVAL;
    struct l2_msg m = {
        .kind = (enum l2_msg_kind)kind,
        .node_id = l2__get_u64(data + 5),
        .generation = l2__get_u64(data + 13),
        .hash = l2__get_u64(data + 21),
    };
    const char *p = data + MSG_FIXED, *end = data + len;
    if (!take_str(&p, end, &m.stage) || !take_str(&p, end, &m.a) || !take_str(&p, end, &m.b))
        return -EINVAL;
    if (p != end || !l2_msg_is_valid(&m))
        return -EINVAL;
    *out = m;
    return 0;
}
