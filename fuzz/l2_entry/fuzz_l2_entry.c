/*
 * fuzz_l2_entry — libFuzzer driver for l2_entry_decode, the parser of cache
 * entries read back from Redis. The input is the stored value. The key asked
 * for is read from where the layout puts it (so mutations get past the key
 * check), then a fixed key that input rarely matches. Checks: no crash,
 * over-read or leak; an accepted entry has exactly the key asked for, is not
 * past its stale_until, and encodes back to exactly the input bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"
#include "l2/l2.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

#define NOW 1000
#define WALL 1000000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void run(const char *in, size_t size, const char *key, size_t key_len)
{
    struct cache_entry *e = l2_entry_decode(in, size, key, key_len, 7, NOW, WALL);
    if (e == NULL)
        return;
    CHECK(e->key_len == key_len && memcmp(e->key, key, key_len) == 0 && e->hash == 7);
    CHECK(e->stale_until_ms > NOW);
    CHECK(l2_entry_size(e) == size);
    char *out = malloc(size);
    l2_entry_encode(e, NOW, WALL, out);
    CHECK(memcmp(out, in, size) == 0);
    free(out);
    cache_entry_release(&e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    if (size >= L2_ENTRY_HEADER) {
        size_t key_len = (size_t)data[6] | ((size_t)data[7] << 8);
        if (key_len <= size - L2_ENTRY_HEADER)
            run(in, size, in + L2_ENTRY_HEADER, key_len);
    }
    run(in, size, "GET\0/x\0", 7);
    return 0;
}
