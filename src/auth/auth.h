/*
 * auth — who may do what: AWS Signature Version 4 verification (header and
 * presigned query forms) against the configured identities, and IAM policy
 * evaluation (explicit Deny wins, then Allow, else implicit deny).
 *
 * Pure functions over plain parameters: time is passed in, nothing is
 * logged, and no message ever contains a secret (a reason string may name
 * the access key id, never the secret or the expected signature).
 */
#ifndef GATE_AUTH_H
#define GATE_AUTH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "http/http.h"

/* A request as it arrived, for signature verification. */
struct auth_request {
    const char *method; /* borrowed */
    size_t method_len;
    const char *path; /* raw request path as sent (percent-encoded), no query */
    size_t path_len;
    const char *query; /* raw query without '?', NULL when absent */
    size_t query_len;
    const struct http_header *headers; /* borrowed */
    size_t n_headers;
    const char *body; /* borrowed; the whole body after de-chunking (NULL = empty). It is
                         hashed when x-amz-content-sha256 is absent, and checked against
                         that header when it is present (unless UNSIGNED-PAYLOAD) */
    size_t body_len;
};

/* How far X-Amz-Date may be from now, both ways (header form; also the "not yet
 * current" limit of presigned URLs and their lifetime when X-Amz-Expires is
 * absent). Note: aws-wire.md §6.2 says API Gateway uses 5 minutes; the project
 * brief settled on 15 (the SigV4 general limit). */
#define AUTH_MAX_SKEW_SEC 900

enum auth_result {
    AUTH_OK = 0,
    AUTH_NOT_SIGNED = -1,    /* no Authorization: AWS4-HMAC-SHA256 and no X-Amz-Signature */
    AUTH_MALFORMED = -2,     /* unparsable Authorization / presigned parameters */
    AUTH_UNKNOWN_KEY = -3,   /* access key id of no configured identity */
    AUTH_BAD_SCOPE = -4,     /* region, service, terminator or date of the scope wrong */
    AUTH_EXPIRED = -5,       /* X-Amz-Date more than 15 minutes away, or presign expired */
    AUTH_BAD_SIGNATURE = -6, /* signature does not match */
    AUTH_MISSING_HOST = -7,  /* SignedHeaders does not include host */
};

/*
 * Verifies the SigV4 signature of req for `service` ("execute-api",
 * "apigateway", "cloudfront") in `region` at wall time now_sec (seconds since
 * the epoch). On AUTH_OK *who is the signing identity (borrowed from cfg).
 * `why` receives a short reason on failure (may be NULL; printable ASCII only;
 * may name the access key id, never a secret or a computed signature).
 * Signatures are compared in constant time.
 *
 * Accepted: the header form (Authorization + X-Amz-Date, or Date) and the
 * presigned query form (X-Amz-Expires optional: without it the URL lives
 * AUTH_MAX_SKEW_SEC). Payload hash: x-amz-content-sha256 when present (must
 * equal the body's SHA-256 unless it is UNSIGNED-PAYLOAD), else the body's
 * SHA-256; presigned URLs are also accepted when signed over UNSIGNED-PAYLOAD.
 * Canonical URI: non-S3 rules (dot segments and empty segments removed, then
 * the raw path encoded once more, as botocore and @smithy/signature-v4 do).
 * X-Amz-Security-Token is signed like any other header/parameter but NOT
 * validated: session credentials are not supported, a token proves nothing.
 */
enum auth_result auth_sigv4_verify(const struct cfg *cfg, const struct auth_request *req,
                                   const char *service, const char *region, int64_t now_sec,
                                   const struct cfg_identity **who, char *why, size_t why_len);

/* True when the request carries a SigV4 signature at all (header or query form). */
bool auth_sigv4_present(const struct auth_request *req);

/* Stable name of a result ("AUTH_OK", "AUTH_BAD_SIGNATURE", ...) for logs and tests. */
const char *auth_result_name(enum auth_result r);

struct buf;
/*
 * Appends the execute-api resource ARN of a request to out:
 * "arn:aws:execute-api:REGION:ACCOUNT:API/STAGE/METHOD/PATH" where PATH is
 * `path` without its leading '/' (so "/" gives ".../GET/", "/pets/1" gives
 * ".../GET/pets/1"), as the API Gateway developer guide writes resource ARNs.
 * The path is copied as given (the caller chooses raw or decoded); NULL = "".
 */
void auth_execute_api_arn(struct buf *out, const char *region, const char *account, const char *api,
                          const char *stage, const char *method, const char *path);

enum auth_decision { AUTH_DENY_IMPLICIT = 0, AUTH_ALLOW = 1, AUTH_DENY_EXPLICIT = 2 };

/* Evaluates an IAM policy document for one action on one resource ARN:
 * actions compare case-insensitively, resources case-sensitively; '*' and '?'
 * wildcards; Action/NotAction, Resource/NotResource; Statement as a list or a
 * single object. Condition, Principal and NotPrincipal are not supported: a
 * statement carrying one fails closed: as an Allow it never applies, as a Deny
 * it always applies (ignoring a conditional Deny could grant access). The same
 * holds for a statement whose Action/Resource fields are of the wrong type.
 * NULL or a non-object policy gives AUTH_DENY_IMPLICIT. */
enum auth_decision auth_policy_evaluate(const json_t *policy, const char *action,
                                        const char *resource);

/* Checks that a policy document has the shape IAM accepts. Returns 0 or -1
 * with a message in err (e.g. "Statement[1].Effect must be Allow or Deny").
 * Version "2012-10-17" or "2008-10-17" (optional), Id, Statement (object or
 * list); per statement Sid (alphanumeric, unique), Effect, exactly one of
 * Action/NotAction and of Resource/NotResource (string or non-empty list of
 * strings; actions "*" or "service:pattern", resources "*" or "arn:..."),
 * Condition (object; accepted, evaluated fail-closed). Principal and
 * NotPrincipal are refused, as IAM refuses them in identity policies. */
int auth_policy_validate(const json_t *policy, char *err, size_t err_len);

/* IAM wildcard match: '*' any run, '?' one character. */
bool auth_wildcard_match(const char *pattern, const char *s, bool case_insensitive);

#endif
