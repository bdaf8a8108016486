/*
 * fuzz_l2_msg — libFuzzer driver for l2_msg_decode, the parser of messages
 * other nodes publish on the invalidation channel. Checks: no crash or
 * over-read; an accepted message is valid, its strings lie inside the input,
 * and it encodes back to exactly the input bytes (the layout is canonical, so
 * anything else means decode accepted what encode never writes).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "l2/l2.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_inside(struct l2_str s, const char *in, size_t size)
{
    CHECK(s.len == 0 || (s.data >= in && s.len <= size && s.data + s.len <= in + size));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    struct l2_msg m;
    if (l2_msg_decode(in, size, &m) != 0)
        return 0;
    CHECK(l2_msg_is_valid(&m));
    check_inside(m.stage, in, size);
    check_inside(m.a, in, size);
    check_inside(m.b, in, size);
    CHECK(l2_msg_size(&m) == size);
    char *out = malloc(size);
    l2_msg_encode(&m, out);
    CHECK(memcmp(out, in, size) == 0);
    free(out);
    return 0;
}
