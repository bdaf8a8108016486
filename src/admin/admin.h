/*
 * admin — the admin listener (server.admin_listen): health, metrics, the
 * native JSON cache API (status, flush, invalidations), later the
 * AWS-compatible API Gateway and CloudFront subsets; and the CLI client verbs
 * that call it (gatecache flush | invalidate | status | stats).
 *
 * The listener runs on a thread of its own with its own libuv loop, so admin
 * calls never share a loop with the data plane. It reads the current runtime
 * snapshot (srv_current_runtime) for every call.
 */
#ifndef GATE_ADMIN_H
#define GATE_ADMIN_H

#include "config/config.h"

struct admin;

/* Starts the admin listener of cfg (no-op returning 0 with *out = NULL when
 * cfg has no admin_listen). Reads the bearer token from admin_token_file.
 * Returns 0, or -1 after logging why (bind failure, unreadable token). */
int admin_start(const struct cfg *cfg, struct admin **out);
/* Stops the listener and joins its thread. NULLs *a; NULL is a no-op. */
void admin_stop(struct admin **a);

/* CLI: `gatecache flush|invalidate|status|stats ...`; returns the exit code. */
int admin_cli_main(int argc, char **argv);
/* True when `verb` is one of the admin client verbs. */
bool admin_cli_is_verb(const char *verb);

#endif
