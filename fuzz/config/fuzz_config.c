/*
 * fuzz_config — libFuzzer driver for the config loader: any bytes go through
 * cfg_load_string; whatever it returns (snapshot or errors) is freed, so LSan
 * catches leaks on both paths. Inputs above 64 KiB are skipped: real configs are
 * small and huge inputs only slow the fuzzer down.
 */
#include "config/config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int env_ready;
    if (!env_ready) {
        /* Lets inputs that name these variables reach the identity code. */
        setenv("OPS_SECRET", "fuzz-secret", 1);
        setenv("PARTNER_A_KEY", "fuzz-key", 1);
        env_ready = 1;
    }
    if (size > 65536)
        return 0;
    struct cfg *c = NULL;
    struct cfg_errors e;
    int rc = cfg_load_string("fuzz.yaml", (const char *)data, size, &c, &e);
    if (rc == 0 && (c == NULL || e.n != 0))
        abort();
    if (rc != 0 && (c != NULL || e.n == 0))
        abort();
    /* A secret value in a message is a leak, unless the input itself wrote it. */
    bool echoed = memmem(data, size, "fuzz-", 5) != NULL;
    for (size_t i = 0; i < e.n && !echoed; i++)
        if (strstr(e.lines[i], "fuzz-secret") || strstr(e.lines[i], "fuzz-key"))
            abort();
    cfg_errors_free(&e);
    cfg_release(&c);
    return 0;
}
