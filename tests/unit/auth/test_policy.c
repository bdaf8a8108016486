/*
 * test_policy.c — IAM policy evaluation (a table of documents, actions and
 * resources with the expected decision: Allow, explicit Deny over Allow,
 * NotAction, NotResource, wildcards, case rules, statement shapes, fail-closed
 * Condition/Principal) and validation (accepted shapes, first error with its
 * JSON-path-like location), plus the wildcard matcher on its own.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "auth/auth.h"

#define ARN "arn:aws:execute-api:us-east-1:123456789012:petstore/prod/GET/pets"
#define INV "execute-api:InvalidateCache"
#define ALLOW AUTH_ALLOW
#define DENY AUTH_DENY_EXPLICIT
#define NONE AUTH_DENY_IMPLICIT

struct eval_case {
    const char *policy;
    const char *action;
    const char *resource;
    enum auth_decision want;
};

/* The seeds' example, with real values in place of region:account-id:api-id/stage-name. */
#define SEED_POLICY                                                                                \
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":"                 \
    "[\"execute-api:InvalidateCache\"],\"Resource\":[\"arn:aws:execute-api:us-east-1:"             \
    "123456789012:petstore/prod/GET/pets/*\"]}]}"

static const struct eval_case EVAL[] = {
    /* 1-4: the seeds' policy */
    {SEED_POLICY, INV, ARN "/1", ALLOW},
    {SEED_POLICY, INV, ARN, NONE}, /* the pattern ends in a slash and a star */
    {SEED_POLICY, INV, "arn:aws:execute-api:us-east-1:123456789012:petstore/prod/POST/pets/1",
     NONE},
    {SEED_POLICY, "execute-api:Invoke", ARN "/1", NONE},
    /* 5-6: single statement object, string values */
    {"{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"" INV "\",\"Resource\":\"" ARN "\"}}", INV,
     ARN, ALLOW},
    {"{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"" INV "\",\"Resource\":\"" ARN "\"}}", INV,
     ARN "x", NONE},
    /* 7-8: lists with several entries */
    {"{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[\"execute-api:Invoke\",\"" INV
     "\"],\"Resource\":[\"arn:x\",\"" ARN "\"]}]}",
     INV, ARN, ALLOW},
    {"{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[\"execute-api:Invoke\"],\"Resource\":["
     "\"" ARN "\"]}]}",
     INV, ARN, NONE},
    /* 9-11: explicit Deny wins over Allow, whatever the order */
    {"{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"},"
     "{\"Effect\":\"Deny\",\"Action\":\"" INV "\",\"Resource\":\"" ARN "\"}]}",
     INV, ARN, DENY},
    {"{\"Statement\":[{\"Effect\":\"Deny\",\"Action\":\"" INV "\",\"Resource\":\"" ARN "\"},"
     "{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}]}",
     INV, ARN, DENY},
    {"{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"},"
     "{\"Effect\":\"Deny\",\"Action\":\"" INV "\",\"Resource\":\"" ARN "\"}]}",
     INV, ARN "/1", ALLOW},
    /* 12-13: a Deny alone is still a Deny (not just "no Allow") */
    {"{\"Statement\":[{\"Effect\":\"Deny\",\"Action\":\"*\",\"Resource\":\"*\"}]}", INV, ARN, DENY},
    {"{\"Statement\":[{\"Effect\":\"Deny\",\"Action\":\"s3:*\",\"Resource\":\"*\"}]}", INV, ARN,
     NONE},
    /* 14-15: NotAction */
    {"{\"Statement\":[{\"Effect\":\"Allow\",\"NotAction\":\"execute-api:Invoke\","
     "\"Resource\":\"*\"}]}",
     INV, ARN, ALLOW},
    {"{\"Statement\":[{\"Effect\":\"Allow\",\"NotAction\":[\"execute-api:Inv*\"],"
     "\"Resource\":\"*\"}]}",
     INV, ARN, NONE},
    /* 16-17: NotResource */
    {"{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"NotResource\":"
     "\"arn:aws:execute-api:*:*:petstore/prod/*\"}]}",
     INV, ARN, NONE},
    {"{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"NotResource\":"
     "[\"arn:aws:execute-api:*:*:petstore/dev/*\"]}]}",
     INV, ARN, ALLOW},
    /* 18: Deny with NotResource protects everything but one stage */
    {"{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"},"
     "{\"Effect\":\"Deny\",\"Action\":\"*\",\"NotResource\":\"arn:aws:execute-api:*:*:*/dev/*\"}]}",
     INV, ARN, DENY},
    /* 19-22: action wildcards, case-insensitive */
    {"{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"execute-api:*\",\"Resource\":\"*\"}]}",
     INV, ARN, ALLOW},
    {"{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"execute-api:Invalidate*\","
     "\"Resource\":\"*\"}]}",
     INV, ARN, ALLOW},
    {"{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"EXECUTE-API:invalidatecache\","
     "\"Resource\":\"*\"}]}",
     INV, ARN, ALLOW},
    {"{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"execute-api:InvalidateCach?\","
     "\"Resource\":\"*\"}]}",
     INV, ARN, ALLOW},
    /* 23-26: resource wildcards, case-sensitive */
    {"{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"" INV "\",\"Resource\":"
     "\"arn:aws:execute-api:*:*:petstore/*/GET/*\"}]}",
     INV, ARN, ALLOW},
    {"{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"" INV "\",\"Resource\":"
     "\"arn:aws:execute-api:us-east-1:123456789012:petstore/pro?/GET/pets\"}]}",
     INV, ARN, ALLOW},
    {"{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"" INV "\",\"Resource\":"
     "\"arn:aws:execute-api:us-east-1:123456789012:PetStore/prod/GET/pets\"}]}",
     INV, ARN, NONE},
    {"{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"" INV "\",\"Resource\":"
     "\"arn:aws:execute-api:us-east-1:123456789012:petstore/prod/get/pets\"}]}",
     INV, ARN, NONE},
    /* 27-29: empty policies are implicit denies */
    {"{}", INV, ARN, NONE},
    {"{\"Version\":\"2012-10-17\",\"Statement\":[]}", INV, ARN, NONE},
    {"[]", INV, ARN, NONE},
    /* 30-32: Condition / Principal fail closed */
    {"{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\",\"Condition\":"
     "{\"Bool\":{\"aws:SecureTransport\":\"true\"}}}]}",
     INV, ARN, NONE},
    {"{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"},"
     "{\"Effect\":\"Deny\",\"Action\":\"*\",\"Resource\":\"*\",\"Condition\":"
     "{\"IpAddress\":{\"aws:SourceIp\":\"10.0.0.0/8\"}}}]}",
     INV, ARN, DENY},
    {"{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\","
     "\"Principal\":\"*\"}]}",
     INV, ARN, NONE},
    /* 33: a conditional Deny that cannot match by action stays out of the way */
    {"{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"},"
     "{\"Effect\":\"Deny\",\"Action\":\"s3:*\",\"Resource\":\"*\",\"Condition\":{}}]}",
     INV, ARN, ALLOW},
    /* 34-37: malformed statements fail closed too */
    {"{\"Statement\":[{\"Effect\":\"allow\",\"Action\":\"*\",\"Resource\":\"*\"}]}", INV, ARN,
     NONE},
    {"{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"NotAction\":\"s3:*\","
     "\"Resource\":\"*\"}]}",
     INV, ARN, NONE},
    {"{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"},"
     "{\"Effect\":\"Deny\",\"Action\":[1],\"Resource\":\"*\"}]}",
     INV, ARN, DENY},
    {"{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[],\"Resource\":\"*\"}]}", INV, ARN, NONE},
    /* 38: "*" for everything */
    {"{\"Version\":\"2008-10-17\",\"Statement\":[{\"Sid\":\"All\",\"Effect\":\"Allow\","
     "\"Action\":\"*\",\"Resource\":\"*\"}]}",
     INV, ARN, ALLOW},
};

static void test_evaluate_table(void **state)
{
    for (size_t i = 0; i < sizeof(EVAL) / sizeof(EVAL[0]); i++) {
        json_error_t e;
        json_t *p = json_loads(EVAL[i].policy, 0, &e);
        if (p == NULL)
            print_error("case %zu: bad JSON: %s\n", i + 1, e.text);
        assert_non_null(p);
        enum auth_decision got = auth_policy_evaluate(p, EVAL[i].action, EVAL[i].resource);
        if (got != EVAL[i].want)
            print_error("case %zu: got %d want %d\n", i + 1, got, EVAL[i].want);
        assert_int_equal(got, EVAL[i].want);
        json_decref(p);
    }
    print_message("policy evaluation: %zu cases\n", sizeof(EVAL) / sizeof(EVAL[0]));
    assert_int_equal(auth_policy_evaluate(NULL, INV, ARN), NONE);
}

/* ================= validation ================= */

static void test_validate_accepts(void **state)
{
    static const char *const ok[] = {
        SEED_POLICY,
        "{\"Statement\":{\"Effect\":\"Deny\",\"NotAction\":\"s3:*\",\"NotResource\":\"*\"}}",
        "{\"Version\":\"2008-10-17\",\"Id\":\"x\",\"Statement\":[]}",
        "{\"Statement\":[{\"Sid\":\"A1\",\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\","
        "\"Condition\":{}},{\"Sid\":\"B2\",\"Effect\":\"Allow\",\"Action\":\"*\","
        "\"Resource\":\"*\"}]}",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        json_t *p = json_loads(ok[i], 0, NULL);
        char err[128] = "";
        int rc = auth_policy_validate(p, err, sizeof(err));
        if (rc != 0)
            print_error("%s: %s\n", ok[i], err);
        assert_int_equal(rc, 0);
        json_decref(p);
    }
}

static void test_validate_rejects(void **state)
{
    static const struct {
        const char *policy, *err;
    } bad[] = {
        {"[]", "policy must be an object"},
        {"{\"Statement\":[],\"Foo\":1}", "unknown key 'Foo' (Version, Id, Statement)"},
        {"{\"Version\":\"2020-01-01\",\"Statement\":[]}",
         "Version must be \"2012-10-17\" or \"2008-10-17\""},
        {"{\"Version\":\"2012-10-17\"}", "Statement is required"},
        {"{\"Statement\":\"x\"}", "Statement must be an object or a list of objects"},
        {"{\"Statement\":[1]}", "Statement[0] must be an object"},
        {"{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"},"
         "{\"Effect\":\"Permit\",\"Action\":\"*\",\"Resource\":\"*\"}]}",
         "Statement[1].Effect must be Allow or Deny"},
        {"{\"Statement\":{\"Action\":\"*\",\"Resource\":\"*\"}}",
         "Statement.Effect is required (Allow or Deny)"},
        {"{\"Statement\":{\"Effect\":\"Allow\",\"Resource\":\"*\"}}",
         "Statement needs Action or NotAction"},
        {"{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"NotAction\":\"*\","
         "\"Resource\":\"*\"}}",
         "Statement has both Action and NotAction"},
        {"{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\"}}",
         "Statement needs Resource or NotResource"},
        {"{\"Statement\":{\"Effect\":\"Allow\",\"Action\":[\"*\",3],\"Resource\":\"*\"}}",
         "Statement.Action[1] must be a string"},
        {"{\"Statement\":{\"Effect\":\"Allow\",\"Action\":[],\"Resource\":\"*\"}}",
         "Statement.Action must be a string or a non-empty list of strings"},
        {"{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"InvalidateCache\",\"Resource\":\"*\"}}",
         "Statement.Action must be \"*\" or \"service:action\""},
        {"{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":[\"petstore/*\"]}}",
         "Statement.Resource[0] must be \"*\" or an ARN"},
        {"{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\","
         "\"Principal\":\"*\"}}",
         "Statement.Principal is not allowed in an identity policy"},
        {"{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\","
         "\"Condition\":[]}}",
         "Statement.Condition must be an object"},
        {"{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\",\"Foo\":1}}",
         "Statement: unknown key 'Foo'"},
        {"{\"Statement\":{\"Sid\":\"a b\",\"Effect\":\"Allow\",\"Action\":\"*\","
         "\"Resource\":\"*\"}}",
         "Statement.Sid must be letters and digits only"},
        {"{\"Statement\":[{\"Sid\":\"A\",\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"},"
         "{\"Sid\":\"A\",\"Effect\":\"Deny\",\"Action\":\"*\",\"Resource\":\"*\"}]}",
         "Statement[1].Sid duplicates Statement[0].Sid"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_error_t e;
        json_t *p = json_loads(bad[i].policy, JSON_DECODE_ANY, &e);
        assert_non_null(p);
        char err[160] = "";
        assert_int_equal(auth_policy_validate(p, err, sizeof(err)), -1);
        assert_string_equal(err, bad[i].err);
        json_decref(p);
    }
    char small[8];
    assert_int_equal(auth_policy_validate(NULL, small, sizeof(small)), -1);
    assert_string_equal(small, "policy ");
    assert_int_equal(auth_policy_validate(NULL, NULL, 0), -1);
}

/* ================= wildcard matcher ================= */

static void test_wildcard(void **state)
{
    assert_true(auth_wildcard_match("*", "", false));
    assert_true(auth_wildcard_match("", "", false));
    assert_false(auth_wildcard_match("", "a", false));
    assert_true(auth_wildcard_match("a*b*c", "aXXbYYc", false));
    assert_false(auth_wildcard_match("a*b*c", "aXXbYY", false));
    assert_true(auth_wildcard_match("a?c", "abc", false));
    assert_false(auth_wildcard_match("a?c", "ac", false));
    assert_true(auth_wildcard_match("**a**", "xxaxx", false));
    assert_true(auth_wildcard_match("*a", "aaa", false));
    assert_false(auth_wildcard_match("ABC", "abc", false));
    assert_true(auth_wildcard_match("ABC", "abc", true));
    assert_true(auth_wildcard_match("a*", "a", false));
    /* Pathological backtracking stays fast. */
    char s[4001];
    memset(s, 'a', 4000);
    s[4000] = '\0';
    assert_false(auth_wildcard_match("*a*a*a*a*a*a*a*a*b", s, false));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_evaluate_table),
        cmocka_unit_test(test_validate_accepts),
        cmocka_unit_test(test_validate_rejects),
        cmocka_unit_test(test_wildcard),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
