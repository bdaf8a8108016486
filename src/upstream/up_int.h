/*
 * up_int.h — shared by the files of src/upstream/ only.
 *
 * upstream.c is the front: it checks a request once and hands it to one of
 * two backends that implement the same contract (upstream.h):
 *   h1.c   — our own pooled HTTP/1.1 client on the worker's libuv loop, for
 *            http:// integrations (the common case, and the fast one);
 *   curl.c — libcurl multi on the same loop, for https:// (TLS) or when a
 *            client is told to prefer it (tests run the suite on both).
 * Each backend's transfer struct starts with `struct up_transfer`, whose
 * `backend` tag tells the front where to send cancel and resume calls.
 */
#ifndef GATE_UP_INT_H
#define GATE_UP_INT_H

#include "upstream/upstream.h"

enum up_backend { UP_BACKEND_H1 = 1, UP_BACKEND_CURL = 2 };

struct up_transfer {
    uint8_t backend; /* enum up_backend */
};

/* Field syntax checks shared by both backends (RFC 9110 §5.5, §5.6.2). */
bool up__is_token(const char *s, size_t len);
bool up__is_field_value(const char *s, size_t len);
bool up__is_method(const char *m, const char *name);

/* ---- libcurl backend (curl.c) ---- */
struct upc_client;
struct upc_transfer;
int upc_global_init(void);
void upc_global_cleanup(void);
struct upc_client *upc_client_new(uv_loop_t *loop);
void upc_client_free(struct upc_client **c);
/* The request has passed the front's checks. Returns &transfer->base or NULL. */
struct up_transfer *upc_start(struct upc_client *c, const struct up_request *req,
                              const struct up_callbacks *cb, void *ud);
void upc_cancel(struct up_transfer *t);
void upc_resume(struct up_transfer *t);
void upc_resume_send(struct up_transfer *t);
size_t upc_client_active(const struct upc_client *c);

/* ---- own HTTP/1.1 backend (h1.c) ---- */
struct h1_client;
struct h1_client *h1_client_new(uv_loop_t *loop);
void h1_client_free(struct h1_client **c);
/* http:// URLs only; same contract as up_start. */
struct up_transfer *h1_start(struct h1_client *c, const struct up_request *req,
                             const struct up_callbacks *cb, void *ud);
void h1_cancel(struct up_transfer *t);
void h1_resume(struct up_transfer *t);
void h1_resume_send(struct up_transfer *t);
size_t h1_client_active(const struct h1_client *c);

#endif
