/*
 * auth_int.h — declarations shared by the files of src/auth/ (and its unit
 * tests): the SigV4 canonical-request pieces of canon.c.
 */
#ifndef GATE_AUTH_INT_H
#define GATE_AUTH_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/auth.h"
#include "util/util.h"

#define AUTH__ALGORITHM "AWS4-HMAC-SHA256"
#define AUTH__UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"

/* Appends s[0..n) percent-encoded the SigV4 way: every byte except
 * A-Z a-z 0-9 - _ . ~ (and '/' when keep_slash) becomes %XX, upper-case hex. */
void auth__uri_encode(struct buf *out, const char *s, size_t n, bool keep_slash);

/* Appends s[0..n) with %XX sequences decoded; a '%' not followed by two hex
 * digits stays literal, '+' stays '+'. */
void auth__percent_decode(struct buf *out, const char *s, size_t n);

/* Appends the canonical URI of a raw request path (non-S3 rules). */
void auth__canonical_uri(struct buf *out, const char *path, size_t len);

/* Appends the canonical query of a raw query (NULL = none). With
 * drop_signature, the X-Amz-Signature parameter is left out (presigned form). */
void auth__canonical_query(struct buf *out, const char *q, size_t len, bool drop_signature);

/*
 * Appends the whole canonical request. signed_headers is the validated
 * SignedHeaders list (lower-case, ';'-separated). Returns 0, or -1 when a
 * signed header is absent from the request: *missing / *missing_len then
 * name it (borrowed from signed_headers).
 */
int auth__canonical_request(struct buf *out, const struct auth_request *req,
                            const char *signed_headers, size_t sh_len, bool presigned,
                            const char *payload_hash, const char **missing, size_t *missing_len);

#endif
