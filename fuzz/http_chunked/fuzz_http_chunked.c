/*
 * fuzz_http_chunked.c — libFuzzer driver for http_chunked_decode.
 *
 * The input is a chunked body (plus whatever follows it). It is decoded four
 * ways — in one piece, in two pieces cut at a point derived from the input,
 * byte by byte, and in place — and all four must agree on the verdict, the
 * bytes consumed, the done flag and the output; any mismatch aborts. It also
 * checks out_len <= consumed <= size and that a finished body ends in CRLF.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

struct result {
    ssize_t consumed; /* total, or HTTP_PARSE_ERROR */
    size_t out_len;
    bool done;
};

/* Decodes in[0..size) in pieces of at most `step` bytes, the first one
 * `first` bytes long; out must hold size bytes (it may be in). */
static struct result decode(const char *in, size_t size, size_t first, size_t step, char *out)
{
    struct http_chunked d;
    struct result res = {0, 0, false};
    size_t off = 0;

    http_chunked_init(&d);
    for (bool first_piece = true; first_piece || off < size; first_piece = false) {
        size_t n = first_piece ? first : step;
        if (n > size - off)
            n = size - off;
        size_t got;
        ssize_t r = http_chunked_decode(&d, in + off, n, out + res.out_len, &got);
        if (r < 0) {
            res.consumed = r;
            return res;
        }
        CHECK((size_t)r <= n && got <= (size_t)r);
        res.consumed += r;
        res.out_len += got;
        off += n;
        if ((size_t)r < n) {
            CHECK(d.done); /* stopping short only happens at the end */
            break;
        }
        if (d.done)
            break;
    }
    res.done = d.done;
    if (res.done)
        CHECK(res.consumed >= 5 && memcmp(in + res.consumed - 2, "\r\n", 2) == 0);
    return res;
}

static void same(struct result a, const char *aout, struct result b, const char *bout)
{
    CHECK(a.consumed == b.consumed);
    if (a.consumed < 0)
        return;
    CHECK(a.done == b.done && a.out_len == b.out_len);
    CHECK(memcmp(aout, bout, a.out_len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    char *o1 = malloc(size + 1), *o2 = malloc(size + 1), *o3 = malloc(size + 1);
    char *inplace = malloc(size + 1);
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 16777619u;
    size_t cut = size ? h % (size + 1) : 0;

    struct result whole = decode(in, size, size, size, o1);
    CHECK(whole.consumed < 0 || (size_t)whole.consumed <= size);
    CHECK(whole.consumed < 0 || whole.out_len <= (size_t)whole.consumed);
    same(whole, o1, decode(in, size, cut, size, o2), o2);
    same(whole, o1, decode(in, size, 1, 1, o3), o3);
    memcpy(inplace, in, size);
    same(whole, o1, decode(inplace, size, size, size, inplace), inplace);

    free(o1);
    free(o2);
    free(o3);
    free(inplace);
    return 0;
}
