/*
 * fuzz_policy — libFuzzer driver for IAM policy documents: any bytes that
 * parse as JSON are validated and evaluated for a few action/resource pairs
 * (wildcard-heavy ones included). Checks: no crash or leak, decisions from
 * the enum, validation messages printable, and a policy that validates and
 * has no Allow statement never allows.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const pairs[][2] = {
        {"execute-api:InvalidateCache",
         "arn:aws:execute-api:us-east-1:123456789012:petstore/prod/GET/pets/1"},
        {"execute-api:Invoke", "arn:aws:execute-api:us-east-1:123456789012:petstore/prod/GET/"},
        {"s3:GetObject", "arn:aws:s3:::bucket/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
        {"", ""},
    };
    if (size > 65536)
        return 0;
    json_t *p = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    if (p == NULL)
        return 0;
    char err[128];
    err[0] = '\0';
    int rc = auth_policy_validate(p, err, sizeof(err));
    if (rc != 0 && rc != -1)
        abort();
    for (const char *c = err; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
            abort();
    /* "Allow" may also arrive spelled with \u escapes. */
    bool has_allow = memmem(data, size, "Allow", 5) != NULL || memmem(data, size, "\\u", 2) != NULL;
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        enum auth_decision d = auth_policy_evaluate(p, pairs[i][0], pairs[i][1]);
        if (d != AUTH_ALLOW && d != AUTH_DENY_EXPLICIT && d != AUTH_DENY_IMPLICIT)
            abort();
        if (d == AUTH_ALLOW && !has_allow)
            abort();
    }
    json_decref(p);
    return 0;
}
