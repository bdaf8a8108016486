/*
 * fuzz_l2_url — libFuzzer driver for l2_url_parse. The input (up to its first
 * NUL) is the URL. Checks: no crash or over-read; on success a non-empty
 * NUL-terminated host of name characters or an IPv6 address, a port in
 * 1..65535, a db >= 0, NUL-terminated user and password; on failure an
 * all-zero result and a printable message that is one of the fixed texts,
 * or names the scheme and nothing after "://" (where a password could be).
 */
#include <arpa/inet.h>
#include <stdbool.h>
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

static bool terminated(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL;
}

static void check_ok(const struct l2_url *u)
{
    CHECK(terminated(u->host, sizeof(u->host)) && u->host[0] != '\0');
    CHECK(terminated(u->username, sizeof(u->username)));
    CHECK(terminated(u->password, sizeof(u->password)));
    CHECK(u->port >= 1 && u->port <= 65535 && u->db >= 0);
    unsigned char addr[16];
    if (strchr(u->host, ':')) {
        CHECK(inet_pton(AF_INET6, u->host, addr) == 1);
        return;
    }
    for (const char *p = u->host; *p; p++)
        CHECK((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '.' || *p == '_');
}

/* Every message is a fixed text, but the one naming an unknown scheme, which
 * quotes exactly the scheme (the bytes before "://", never a password). */
static void check_err(const char *url, const char *err)
{
    static const char *const fixed[] = {
        "not a URL: ",          "the user name ", "the password ", "the host ",
        "the port ",            "the db ",        "query strings ", "the IPv6 address ",
        "the address in [] ",   "unexpected text after the host",
    };
    for (const char *p = err; *p; p++)
        CHECK((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
    const char *sep = strstr(url, "://");
    if (strncmp(err, "unknown scheme \"", 16) == 0) {
        CHECK(sep != NULL);
        size_t n = (size_t)(sep - url);
        CHECK(strncmp(err + 16, url, n) == 0 && err[16 + n] == '"');
        return;
    }
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (strncmp(err, fixed[i], strlen(fixed[i])) == 0) {
            CHECK(strchr(err, '"') == NULL);
            return;
        }
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *url = malloc(size + 1);
    memcpy(url, data, size);
    url[size] = '\0';
    struct l2_url u;
    char err[160];
    int rc = l2_url_parse(url, &u, err, sizeof(err));
    if (rc == 0) {
        check_ok(&u);
    } else {
        static const struct l2_url zero;
        CHECK(memcmp(&u, &zero, sizeof(u)) == 0);
        CHECK(err[0] != '\0');
        check_err(url, err);
    }
    free(url);
    return 0;
}
