/*
 * fuzz_sigv4 — libFuzzer driver for SigV4 verification. The input is a request
 * in the AWS test-suite layout: "METHOD TARGET[ HTTP/1.1]", header lines
 * "Name:value", a blank line, the body (so Authorization headers, presigned
 * queries, dates and payload hashes are all mutated). It is verified against
 * one identity (the suite's AKIDEXAMPLE) at the suite's time, for a fixed and
 * for a fuzzed service/region. Checks: no crash or leak, a result from the
 * enum, *who set exactly on success, and a reason that is printable ASCII and
 * never holds the secret.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"

#define MAX_HDRS 32
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_why(const char *why)
{
    if (strstr(why, SECRET) != NULL)
        abort();
    for (const char *p = why; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            abort();
}

static void run(const struct auth_request *req, const char *service, const char *region)
{
    static struct cfg_identity id = {
        .name = "f", .access_key_id = "AKIDEXAMPLE", .secret_access_key = SECRET};
    static struct cfg c = {.identities = &id, .n_identities = 1};
    const struct cfg_identity *who = NULL;
    char why[96];
    enum auth_result r =
        auth_sigv4_verify(&c, req, service, region, 1440938160, &who, why, sizeof(why));
    if (r > AUTH_OK || r < AUTH_MISSING_HOST)
        abort();
    if ((r == AUTH_OK) != (who == &id))
        abort();
    if ((r == AUTH_NOT_SIGNED) == auth_sigv4_present(req))
        abort();
    check_why(why);
}

/* Splits the head into request line and headers; false if there is no request line. */
static bool parse_head(const char *s, size_t n, struct auth_request *req, struct http_header *h)
{
    const char *end = s + n;
    const char *nl = memchr(s, '\n', n);
    const char *le = nl ? nl : end;
    const char *sp = memchr(s, ' ', (size_t)(le - s));
    if (sp == NULL)
        return false;
    req->method = s;
    req->method_len = (size_t)(sp - s);
    const char *t = sp + 1;
    size_t tl = (size_t)(le - t);
    if (tl >= 9 && memcmp(t + tl - 9, " HTTP/1.1", 9) == 0)
        tl -= 9;
    const char *q = memchr(t, '?', tl);
    req->path = t;
    req->path_len = q ? (size_t)(q - t) : tl;
    req->query = q ? q + 1 : NULL;
    req->query_len = q ? tl - req->path_len - 1 : 0;
    const char *line = nl ? nl + 1 : end;
    while (line < end && req->n_headers < MAX_HDRS) {
        nl = memchr(line, '\n', (size_t)(end - line));
        le = nl ? nl : end;
        const char *colon = memchr(line, ':', (size_t)(le - line));
        if (colon) {
            h[req->n_headers++] = (struct http_header){line, (size_t)(colon - line), colon + 1,
                                                       (size_t)(le - colon - 1)};
        }
        line = le + 1;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    /* A private copy, so reads past the input are caught by ASan. */
    char *s = malloc(size ? size : 1);
    memcpy(s, data, size);
    const char *sep = memmem(s, size, "\n\n", 2);
    size_t head = sep ? (size_t)(sep - s) : size;
    struct http_header h[MAX_HDRS];
    struct auth_request req = {.headers = h};
    if (parse_head(s, head, &req, h)) {
        req.body = sep ? sep + 2 : NULL;
        req.body_len = sep ? size - head - 2 : 0;
        run(&req, "service", "us-east-1");
        run(&req, "execute-api", "eu-west-1");
    }
    free(s);
    return 0;
}
