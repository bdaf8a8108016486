/*
 * gatecache — CLI: serve, check, version (and, with the admin API, the
 * admin client verbs). Exit codes: 0 success, 1 invalid config or runtime
 * failure, 2 usage error.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>
#include <xxhash.h>
#include <yaml.h>

#include "admin/admin.h"
#include "config/config.h"
#include "crypto/crypto.h"
#include "server/server.h"
#include "upstream/upstream.h"
#include "util/util.h"

static void usage(FILE *f)
{
    fputs("usage: gatecache serve -c FILE     run the gateway\n"
          "       gatecache check -c FILE     validate a config and print every error\n"
          "       gatecache version           version and library versions\n"
          "       gatecache flush --api A --stage S                 flush a stage cache\n"
          "       gatecache invalidate --api A --stage S [--path P]... [--tag T]...\n"
          "       gatecache status --api A --stage S                a stage cache's status\n"
          "       gatecache stats                                   Prometheus metrics\n"
          "       (admin verbs: --admin URL, --token T | --token-file F, -c FILE)\n",
          f);
}

static const char *config_arg(int argc, char **argv)
{
    for (int i = 2; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc)
            return argv[i + 1];
        if (strncmp(argv[i], "--config=", 9) == 0)
            return argv[i] + 9;
    }
    return NULL;
}

/* Loads the config, printing every error; NULL when it is invalid. */
static struct cfg *load_or_report(const char *path)
{
    struct cfg *cfg = NULL;
    struct cfg_errors errs = {0};
    if (cfg_load(path, &cfg, &errs) != 0) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.lines[i]);
        cfg_errors_free(&errs);
        return NULL;
    }
    return cfg;
}

static int cmd_version(void)
{
    printf("gatecache %s\n", GATE_VERSION);
    printf("libuv %s\n", uv_version_string());
    printf("%s\n", curl_version());
    printf("%s\n", cry_version());
    printf("libyaml %s\n", yaml_get_version_string());
    printf("jansson %s\n", JANSSON_VERSION);
    printf("xxhash %u\n", XXH_versionNumber());
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *verb = argv[1];
    if (strcmp(verb, "version") == 0 || strcmp(verb, "--version") == 0)
        return cmd_version();
    if (strcmp(verb, "help") == 0 || strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (admin_cli_is_verb(verb))
        return admin_cli_main(argc, argv);
    if (strcmp(verb, "serve") != 0 && strcmp(verb, "check") != 0) {
        fprintf(stderr, "gatecache: unknown command \"%s\"\n", verb);
        usage(stderr);
        return 2;
    }
    const char *path = config_arg(argc, argv);
    if (!path) {
        fprintf(stderr, "gatecache %s: missing -c FILE\n", verb);
        return 2;
    }
    struct cfg *cfg = load_or_report(path);
    if (!cfg)
        return 1;
    if (strcmp(verb, "check") == 0) {
        printf("%s: ok\n", path);
        cfg_release(&cfg);
        return 0;
    }
    up_global_init();
    int rc = srv_serve(cfg);
    up_global_cleanup();
    return rc;
}
