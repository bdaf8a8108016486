/*
 * fuzz_admin_json.c — libFuzzer driver for admin__inval_parse, the body of
 * POST /v1/apis/{api}/stages/{stage}/invalidations.
 *
 * Beyond "no crash, no over-read, no leak" (the input buffer is exactly
 * `size` bytes, not NUL-terminated), it checks the parser's contract and
 * aborts when it breaks:
 * - 0 with at least one and at most 3000 paths / 100 tags, each path starting
 *   with '/', holding no '?', no control byte, '*' only last; each tag
 *   non-empty without ',' or control bytes; or
 * - -1 with a message and an empty result;
 * - parsing is deterministic: a second parse gives the same verdict and counts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_int.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static void check_item(const char *s, bool is_path)
{
    size_t len = strlen(s);
    CHECK(len > 0 && len <= ADMIN_MAX_ITEM);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        CHECK(c >= 0x20 && c != 0x7f);
        if (is_path) {
            CHECK(c != '?');
            CHECK(c != '*' || i == len - 1);
        } else {
            CHECK(c != ',');
        }
    }
    if (is_path)
        CHECK(s[0] == '/');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct admin__inval iv, again;
    const char *err = NULL, *err2 = NULL;
    int rc = admin__inval_parse((const char *)data, size, &iv, &err);
    int rc2 = admin__inval_parse((const char *)data, size, &again, &err2);
    CHECK(rc == rc2);
    if (rc != 0) {
        CHECK(rc == -1 && err != NULL && err2 != NULL && strcmp(err, err2) == 0);
        CHECK(iv.doc == NULL && iv.paths == NULL && iv.tags == NULL);
        CHECK(iv.n_paths == 0 && iv.n_tags == 0);
        return 0;
    }
    CHECK(iv.n_paths + iv.n_tags >= 1);
    CHECK(iv.n_paths <= ADMIN_MAX_PATHS && iv.n_tags <= ADMIN_MAX_TAGS);
    CHECK(iv.n_paths == again.n_paths && iv.n_tags == again.n_tags);
    for (size_t i = 0; i < iv.n_paths; i++) {
        check_item(iv.paths[i], true);
        CHECK(strcmp(iv.paths[i], again.paths[i]) == 0);
    }
    for (size_t i = 0; i < iv.n_tags; i++) {
        check_item(iv.tags[i], false);
        CHECK(strcmp(iv.tags[i], again.tags[i]) == 0);
    }
    admin__inval_free(&iv);
    admin__inval_free(&again);
    return 0;
}
