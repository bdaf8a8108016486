#!/usr/bin/env python3
"""45 invalidation: who may refresh an entry with Cache-Control: max-age=0
(SigV4 signatures made by botocore, the signer of Debian's awscli, checked
against IAM policies), what each unauthorised-request strategy answers, stage
flush (admin API and CLI) per stage, path and tag invalidation, write-triggered
invalidation (the seeds' PUT .../members case), encryption at rest, and that no
secret reaches the gateway's log. Hits and misses are proven by how many
requests reached the origin, whose answers carry a per-path counter `n`."""
import base64
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import GatewayTest, curl, port_open, run_cli  # noqa: E402

WARNING = '199 gatecache "Cache-Control: max-age=0 ignored: not authorized to invalidate the cache"'
DENIED = "User is not authorized to invalidate the cache"
MAX_AGE_0 = "Cache-Control: max-age=0"

# Signing is done by botocore as bundled by Debian's awscli; it imports only
# in Debian's interpreter. A missing awscli fails the tests (install-deps.sh
# installs it): it is never a reason to skip.
SIGNER = os.path.join(harness.HERE, "sigv4_sign.py")
DEBIAN_PYTHON = "/usr/bin/python3"

REGION = "us-east-1"
ACCOUNT = "123456789012"
ARN = "arn:aws:execute-api:%s:%s:" % (REGION, ACCOUNT)

TOKEN = "e2e-inv-admin-token-Zq81xKp0"
ENC_KEY_ENV = "GATECACHE_CACHE_ENCRYPTION_KEY"
ENC_KEY = "8f1c2b3a4d5e6f708192a3b4c5d6e7f80112233445566778899aabbccddeeff0"

# name -> (access key id, secret, how the config gets the secret)
IDENTITIES = {
    "ops": ("AKIAE2EOPS", "opsSecret/e2e+K7MDENGbPxRfiCY0001", "env"),
    "seed": ("AKIAE2ESEED", "seedSecret/e2e+K7MDENGbPxRfiCY002", "file"),
    "denier": ("AKIAE2EDENIER", "denierSecret/e2e+K7MDENGbPxRfi03", "env"),
    "narrow": ("AKIAE2ENARROW", "narrowSecret/e2e+K7MDENGbPxRfi04", "env"),
    "lower": ("AKIAE2ELOWER", "lowerSecret/e2e+K7MDENGbPxRfiC05", "env"),
    "wrongcase": ("AKIAE2EWRONGCASE", "wrongcaseSecret/e2e+K7MDENGbP06", "env"),
}
SECRET_ENV = {"E2E_%s_SECRET" % n.upper(): s for n, (_, s, how) in IDENTITIES.items()
              if how == "env"}
ENC_KEY_B64 = base64.b64encode(bytes.fromhex(ENC_KEY)).decode()
SECRETS = [s for (_, s, _) in IDENTITIES.values()] + [TOKEN, ENC_KEY, ENC_KEY.upper(), ENC_KEY_B64]


def policy(*statements):
    return ("      Version: \"2012-10-17\"\n      Statement:\n"
            + "".join(statements))


def stmt(effect, resources, action="execute-api:InvalidateCache"):
    return ("        - Effect: %s\n          Action: [%s]\n          Resource: [%s]\n"
            % (effect, json.dumps(action), ", ".join(json.dumps(r) for r in resources)))


POLICIES = {
    "ops": policy(stmt("Allow", [ARN + "petstore/*/GET/pets/*",
                                 ARN + "petstore/*/GET/projects/*"])),
    # the seeds' policy, with real values (product.md §3)
    "seed": policy(stmt("Allow", [ARN + "petstore/prod/GET/pets*"])),
    "denier": policy(stmt("Allow", [ARN + "petstore/*/GET/pets*"]),
                     stmt("Deny", [ARN + "petstore/*/GET/pets/1"])),
    "narrow": policy(stmt("Allow", [ARN + "petstore/*/GET/pets/2"])),
    "lower": policy(stmt("Allow", [ARN + "petstore/prod/GET/pets/*"],
                         action="execute-api:invalidatecache")),
    "wrongcase": policy(stmt("Allow", [ARN + "PetStore/prod/GET/pets/*",
                                       ARN + "petstore/Prod/GET/pets/*",
                                       ARN + "petstore/prod/get/pets/*",
                                       ARN + "petstore/prod/GET/Pets/*"])),
}


def identities_yaml(secret_file):
    out = "identities:\n"
    for name, (akid, _, how) in IDENTITIES.items():
        out += "  - name: %s\n    access_key_id: %s\n" % (name, akid)
        if how == "env":
            out += "    secret_access_key_env: E2E_%s_SECRET\n" % name.upper()
        else:
            out += "    secret_access_key_file: \"%s\"\n" % secret_file
        out += "    policy:\n" + POLICIES[name]
    return out


CONFIG = """
server:
  listen: "127.0.0.1:{port}"
  workers: 2
  admin_listen: "127.0.0.1:{admin_port}"
  admin_token_file: "@TOKEN_FILE@"
  region: us-east-1
  account_id: "123456789012"
@IDENTITIES@
apis:
  - id: petstore
    resources:
      /pets/{id}:
        GET:
          integration: { type: HTTP_PROXY, uri: "{origin}/pets/{id}" }
      /projects/{id}/members:
        GET:
          integration: { type: HTTP_PROXY, uri: "{origin}/projects/{id}/members" }
          cache_key_parameters: ["method.request.querystring.page"]
        PUT:
          integration: { type: HTTP_PROXY, uri: "{origin}/projects/{id}/members" }
          invalidates: ["GET /projects/{id}/members"]
      /{proxy+}:
        ANY:
          integration: { type: HTTP_PROXY, uri: "{origin}/{proxy}" }
    stages:
      prod:
        cache_cluster_enabled: true
        cache_cluster_size: "64MiB"
        method_settings:
          - resource_path: "/*"
            http_method: "*"
            require_authorization_for_cache_control: true
            unauthorized_cache_control_header_strategy: FAIL_WITH_403
      warn:
        cache_cluster_enabled: true
        cache_cluster_size: "64MiB"
        method_settings:
          - resource_path: "/*"
            http_method: "*"
            unauthorized_cache_control_header_strategy: SUCCEED_WITH_RESPONSE_HEADER
      silent:
        cache_cluster_enabled: true
        cache_cluster_size: "64MiB"
        method_settings:
          - resource_path: "/*"
            http_method: "*"
            unauthorized_cache_control_header_strategy: SUCCEED_WITHOUT_RESPONSE_HEADER
      open:
        cache_cluster_enabled: true
        cache_cluster_size: "64MiB"
        method_settings:
          - resource_path: "/*"
            http_method: "*"
            require_authorization_for_cache_control: false
      dev:
        cache_cluster_enabled: true
        cache_cluster_size: "64MiB"
"""

ENC_CONFIG = """
server:
  listen: "127.0.0.1:{port}"
  workers: 2
apis:
  - id: petstore
    resources:
      /pets/{id}:
        GET:
          integration: { type: HTTP_PROXY, uri: "{origin}/pets/{id}" }
      /{proxy+}:
        ANY:
          integration: { type: HTTP_PROXY, uri: "{origin}/{proxy}" }
    stages:
      prod:
        cache_cluster_enabled: true
        cache_cluster_size: "64MiB"
        method_settings:
          - resource_path: "/*"
            http_method: "*"
            cache_data_encrypted: true
"""


def sign_batch(reqs):
    """Signs every request spec with awscli's botocore (see sigv4_sign.py);
    returns [{"url", "headers"}]. Any failure of the signer fails the test."""
    try:
        p = subprocess.run([DEBIAN_PYTHON, SIGNER, "--batch"], input=json.dumps(reqs),
                           capture_output=True, text=True, timeout=60)
    except OSError as e:
        raise AssertionError("cannot run the SigV4 signer %s with %s: %s (Debian's python3 "
                             "and awscli are required: scripts/install-deps.sh)"
                             % (SIGNER, DEBIAN_PYTHON, e))
    if p.returncode != 0:
        raise AssertionError("SigV4 signer failed (exit %d); awscli from Debian is required "
                             "(scripts/install-deps.sh):\n%s" % (p.returncode, p.stderr[-2000:]))
    out = json.loads(p.stdout)
    if len(out) != len(reqs):
        raise AssertionError("signer returned %d results for %d requests" % (len(out), len(reqs)))
    return out


def spec(url, who, secret=None, access_key=None, timestamp=None, headers=None, presign=False,
         expires=300, method="GET", region=REGION, service="execute-api"):
    akid, sec, _ = IDENTITIES[who]
    return {"method": method, "url": url, "access_key": access_key or akid,
            "secret": secret if secret is not None else sec, "region": region,
            "service": service, "timestamp": timestamp, "headers": headers or {},
            "presign": presign, "expires": expires}


def header_args(headers):
    args = []
    for k, v in headers.items():
        args += ["-H", "%s: %s" % (k, v)]
    return args


class InvalidationTest(GatewayTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp, cls.token_file = harness.admin_token_dir("gatecache-e2e-inv-", TOKEN)
        cls.seed_secret_file = os.path.join(cls.tmp, "seed-secret")
        with open(cls.seed_secret_file, "w") as f:
            f.write(IDENTITIES["seed"][1] + "\n")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)
        super().tearDownClass()

    def config(self):
        return (CONFIG.replace("@TOKEN_FILE@", self.token_file)
                .replace("@IDENTITIES@\n", identities_yaml(self.seed_secret_file)))

    def gateway(self, config, **kw):
        """As GatewayTest.gateway, and after the gateway stopped, its whole
        stderr must hold no secret, token or key."""
        gw = harness.Gateway(config, origin=kw.pop("origin", self.origin), **kw)

        def stop_and_check():
            try:
                gw.stop()
            finally:
                self.assertNoSecrets(getattr(gw, "final_stderr", gw.stderr()))
        self.addCleanup(stop_and_check)
        return gw

    def assertNoSecrets(self, text):
        for s in SECRETS:
            self.assertNotIn(s, text, "a secret appears in the gateway's stderr")

    def gw(self):
        gw = self.gateway(self.config(), env=SECRET_ENV)
        deadline = time.monotonic() + harness.START_TIMEOUT
        while not port_open(gw.admin_port) and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertTrue(port_open(gw.admin_port), "admin port not open")
        return gw

    # requests
    def get(self, gw, path, *args):
        return curl(gw.url(path), *args)

    def refresh(self, gw, path, headers=None):
        return curl(gw.url(path), "-H", MAX_AGE_0, *header_args(headers or {}))

    def admin(self, gw, method, path, body=None):
        return harness.admin_call(gw, method, path, TOKEN, body)

    def invalidate(self, gw, stage, doc):
        r = self.admin(gw, "POST", "/v1/apis/petstore/stages/%s/invalidations" % stage,
                       json.dumps(doc))
        self.assertEqual(r.status, 201, r)
        out = r.json()
        self.assertEqual(out["status"], "Completed", out)
        return out

    def stage_status(self, gw, stage):
        r = self.admin(gw, "GET", "/v1/apis/petstore/stages/%s/cache" % stage)
        self.assertEqual(r.status, 200, r)
        return r.json()

    # assertions
    def assertMiss(self, resp, n=None):
        self.assertEqual(resp.status, 200, resp)
        self.assertCache(resp, "MISS")
        if n is not None:
            self.assertEqual(resp.json()["n"], n, resp)

    def assertHit(self, resp, body=None):
        self.assertEqual(resp.status, 200, resp)
        self.assertCache(resp, "HIT")
        self.assertRegex(resp.headers.get("age", ""), r"^\d+$", "a HIT without Age: %r" % (resp,))
        if body is not None:
            self.assertEqual(resp.body, body, "HIT with another body")

    def assertRefresh(self, resp, n):
        """n: the origin's counter in the answer (None: not checked)."""
        self.assertEqual(resp.status, 200, resp)
        self.assertCache(resp, "REFRESH")
        if n is not None:
            self.assertEqual(resp.json()["n"], n, resp)
        self.assertNotIn("warning", resp.headers, resp)

    def assertDenied(self, resp):
        self.assertJsonError(resp, 403, DENIED)
        self.assertEqual(resp.headers.get("x-amzn-errortype"), "AccessDeniedException", resp)

    def prime(self, gw, path, n=None):
        """MISS (the origin's n-th answer for that method+path+query, when n
        is given) then HIT; returns the cached body."""
        r = self.get(gw, path)
        self.assertMiss(r, n)
        self.assertHit(self.get(gw, path), r.body)
        return r.body


class TestAuthorisedRefresh(InvalidationTest):
    def test_header_signed_refresh(self):
        gw = self.gw()
        old = self.prime(gw, "/prod/pets/1")
        url = gw.url("/prod/pets/1")
        plain, with_cc = sign_batch([
            spec(url, "ops"),
            # a signer that also signs Cache-Control is fine too
            spec(url, "ops", headers={"Cache-Control": "max-age=0"}),
        ])
        self.assertNotIn("cache-control", plain["headers"]["Authorization"].lower())
        self.assertIn("cache-control", with_cc["headers"]["Authorization"])

        r = self.refresh(gw, "/prod/pets/1", plain["headers"])
        self.assertRefresh(r, 2)
        self.assertNotEqual(r.body, old)
        self.assertEqual(self.origin.count("/pets/1"), 2)
        self.assertHit(self.get(gw, "/prod/pets/1"), r.body)
        self.assertEqual(self.origin.count("/pets/1"), 2)

        r = self.curl_signed(gw, "/prod/pets/1", with_cc["headers"])
        self.assertRefresh(r, 3)
        self.assertHit(self.get(gw, "/prod/pets/1"), r.body)
        self.assertEqual(self.origin.count("/pets/1"), 3)

    def curl_signed(self, gw, path, headers):
        # Cache-Control is among the signed headers: send it as signed
        return curl(gw.url(path), *header_args(headers))

    def test_refresh_one_key_variant_encoded_path_and_clock_skew(self):
        gw = self.gw()
        members = "/prod/projects/ABC/members?page=%d"
        old1 = self.prime(gw, members % 1, 1)
        self.prime(gw, members % 2, 1)
        enc = self.prime(gw, "/prod/pets/a%20b", 1)
        skew = self.prime(gw, "/prod/pets/4", 1)
        page2, encoded, ten_min_old = sign_batch([
            spec(gw.url(members % 2), "ops"),
            spec(gw.url("/prod/pets/a%20b"), "ops"),
            spec(gw.url("/prod/pets/4"), "ops", timestamp=int(time.time()) - 600),
        ])
        # the query is signed but is not part of the ARN; only page 2 is replaced
        r = self.refresh(gw, members % 2, page2["headers"])
        self.assertRefresh(r, 2)
        self.assertHit(self.get(gw, members % 2), r.body)
        self.assertHit(self.get(gw, members % 1), old1)
        # a percent-encoded path, signed as botocore encodes it
        r = self.refresh(gw, "/prod/pets/a%20b", encoded["headers"])
        self.assertRefresh(r, 2)
        self.assertNotEqual(r.body, enc)
        self.assertHit(self.get(gw, "/prod/pets/a%20b"), r.body)
        # 10 minutes old is within the 15 minutes allowed
        r = self.refresh(gw, "/prod/pets/4", ten_min_old["headers"])
        self.assertRefresh(r, 2)
        self.assertNotEqual(r.body, skew)
        self.assertEqual(self.origin.count("/projects/ABC/members"), 3)
        self.assertEqual(self.origin.count("/pets/4"), 2)

    def test_refresh_on_other_strategies(self):
        # an authorised refresh is a refresh whatever the strategy, without a warning
        gw = self.gw()
        specs = []
        for stage in ("warn", "silent"):
            specs.append(spec(gw.url("/%s/pets/7" % stage), "ops"))
        signed = sign_batch(specs)
        for i, stage in enumerate(("warn", "silent")):
            path = "/%s/pets/7" % stage
            old = self.prime(gw, path, n=2 * i + 1)
            r = self.refresh(gw, path, signed[i]["headers"])
            self.assertRefresh(r, 2 * i + 2)
            self.assertNotEqual(r.body, old)
            self.assertHit(self.get(gw, path), r.body)
        self.assertEqual(self.origin.count("/pets/7"), 4)

    def test_presigned_query_refresh(self):
        gw = self.gw()
        old = self.prime(gw, "/prod/pets/3", 1)
        url = gw.url("/prod/pets/3")
        good, narrow, expired, lapsed = sign_batch([
            spec(url, "ops", presign=True, expires=300),
            spec(url, "narrow", presign=True, expires=300),
            spec(url, "ops", presign=True, expires=300, timestamp=int(time.time()) - 1200),
            # signed 5 minutes ago for 60 seconds: within the skew, past X-Amz-Expires
            spec(url, "ops", presign=True, expires=60, timestamp=int(time.time()) - 300),
        ])
        self.assertIn("X-Amz-Signature=", good["url"])
        self.assertNotIn("Authorization", good["headers"])

        # presigned by an identity allowed only on /pets/2, or expired: denied
        for name, s in (("narrow", narrow), ("expired", expired), ("lapsed", lapsed)):
            with self.subTest(presigned=name):
                self.assertDenied(curl(s["url"], "-H", MAX_AGE_0))
                self.assertEqual(self.origin.count("/pets/3"), 1)
                self.assertHit(self.get(gw, "/prod/pets/3"), old)

        r = curl(good["url"], "-H", MAX_AGE_0)
        # the origin counts per path+query: this is the first /pets/3?X-Amz-...
        self.assertRefresh(r, 1)
        self.assertNotEqual(r.body, old)
        self.assertTrue(r.json()["path"].startswith("/pets/3?X-Amz-Algorithm="), r)
        self.assertEqual(self.origin.count("/pets/3"), 2)
        # the query is not in the cache key: the plain path gets the new entry
        self.assertHit(self.get(gw, "/prod/pets/3"), r.body)
        self.assertEqual(self.origin.count("/pets/3"), 2)

    def test_not_required_refreshes_unsigned(self):
        gw = self.gw()
        old = self.prime(gw, "/open/pets/1")
        r = self.refresh(gw, "/open/pets/1")
        self.assertRefresh(r, 2)
        self.assertNotEqual(r.body, old)
        self.assertHit(self.get(gw, "/open/pets/1"), r.body)
        self.assertEqual(self.origin.count("/pets/1"), 2)


class TestPolicies(InvalidationTest):
    def test_seed_policy_example(self):
        # Resource "...:petstore/prod/GET/pets*": '*' spans '/' and anything after "pets"
        gw = self.gw()
        paths = ("/prod/pets/1", "/prod/petshop", "/prod/toys/1", "/warn/pets/1")
        old = {p: self.prime(gw, p) for p in paths}  # /pets/1: n=1 (prod), n=2 (warn)
        signed = dict(zip(paths, sign_batch([spec(gw.url(p), "seed") for p in paths])))

        r = self.refresh(gw, "/prod/pets/1", signed["/prod/pets/1"]["headers"])
        self.assertRefresh(r, 3)
        self.assertHit(self.get(gw, "/prod/pets/1"), r.body)

        r = self.refresh(gw, "/prod/petshop", signed["/prod/petshop"]["headers"])
        self.assertRefresh(r, 2)
        self.assertHit(self.get(gw, "/prod/petshop"), r.body)

        # not in the policy: another resource, another stage
        self.assertDenied(self.refresh(gw, "/prod/toys/1", signed["/prod/toys/1"]["headers"]))
        self.assertHit(self.get(gw, "/prod/toys/1"), old["/prod/toys/1"])
        r = self.refresh(gw, "/warn/pets/1", signed["/warn/pets/1"]["headers"])
        self.assertHit(r, old["/warn/pets/1"])
        self.assertEqual(r.headers.get("warning"), WARNING)

        self.assertEqual(self.origin.count("/pets/1"), 3)  # prod twice, warn once
        self.assertEqual(self.origin.count("/petshop"), 2)
        self.assertEqual(self.origin.count("/toys/1"), 1)

    def test_action_case_insensitive_resource_case_sensitive(self):
        gw = self.gw()
        old1 = self.prime(gw, "/prod/pets/1")
        old2 = self.prime(gw, "/prod/pets/2")
        lower, wrongcase = sign_batch([spec(gw.url("/prod/pets/1"), "lower"),
                                       spec(gw.url("/prod/pets/2"), "wrongcase")])
        # Action "execute-api:invalidatecache" matches InvalidateCache
        r = self.refresh(gw, "/prod/pets/1", lower["headers"])
        self.assertRefresh(r, 2)
        self.assertNotEqual(r.body, old1)
        self.assertHit(self.get(gw, "/prod/pets/1"), r.body)
        # Resources differing only in case (api id, stage, method, path) do not match
        self.assertDenied(self.refresh(gw, "/prod/pets/2", wrongcase["headers"]))
        self.assertHit(self.get(gw, "/prod/pets/2"), old2)
        self.assertEqual(self.origin.count("/pets/1"), 2)
        self.assertEqual(self.origin.count("/pets/2"), 1)


class TestUnauthorised(InvalidationTest):
    """Every way of not being authorised, under each strategy, on one primed
    entry; then a valid signature on the same entry refreshes it (so the
    denials are not an accident of the setup)."""

    def cases(self, gw, path):
        url = gw.url(path)
        other = gw.url(path.rsplit("/", 1)[0] + "/2")
        named = [
            ("wrong secret", spec(url, "ops", secret="notTheSecret/e2e+K7MDENGbPxRfi99")),
            ("date 20 minutes old", spec(url, "ops", timestamp=int(time.time()) - 1200)),
            ("date 20 minutes ahead", spec(url, "ops", timestamp=int(time.time()) + 1200)),
            ("signed for another path", spec(other, "ops")),
            ("signed for another method", spec(url, "ops", method="DELETE")),
            ("signed for another region", spec(url, "ops", region="eu-west-1")),
            ("signed for another service", spec(url, "ops", service="apigateway")),
            ("explicit Deny overrides Allow", spec(url, "denier")),
            ("Allow on another path only", spec(url, "narrow")),
            ("unknown access key id", spec(url, "ops", access_key="AKIAE2EUNKNOWN")),
            ("valid", spec(url, "ops")),
        ]
        signed = sign_batch([s for _, s in named])
        out = [("no signature", {})] + [(n, s["headers"]) for (n, _), s in zip(named, signed)]
        return out[:-1], out[-1][1]

    def run_strategy(self, stage, check):
        gw = self.gw()
        path = "/%s/pets/1" % stage
        old = self.prime(gw, path)
        cases, valid = self.cases(gw, path)
        for name, headers in cases:
            with self.subTest(stage=stage, case=name):
                r = self.refresh(gw, path, headers)
                check(r, old)
                self.assertEqual(self.origin.count("/pets/1"), 1, "the integration was called")
                self.assertHit(self.get(gw, path), old)
        r = self.refresh(gw, path, valid)
        self.assertRefresh(r, 2)
        self.assertHit(self.get(gw, path), r.body)
        self.assertEqual(self.origin.count("/pets/1"), 2)

    def test_fail_with_403(self):
        self.run_strategy("prod", lambda r, old: self.assertDenied(r))

    def test_succeed_with_response_header(self):
        def check(r, old):
            self.assertHit(r, old)  # a signed request is not a BYPASS
            self.assertEqual(r.headers.get("warning"), WARNING, r)
        self.run_strategy("warn", check)

    def test_succeed_without_response_header(self):
        def check(r, old):
            self.assertHit(r, old)
            self.assertNotIn("warning", r.headers, r)
        self.run_strategy("silent", check)

    def test_other_authorization_with_max_age_0_is_bypass(self):
        # only a SigV4 signature escapes the credentials rule; a bearer token
        # with max-age=0 is not an invalidation and is never stored
        gw = self.gw()
        old = self.prime(gw, "/silent/pets/1", 1)
        r = self.refresh(gw, "/silent/pets/1", {"Authorization": "Bearer someone"})
        self.assertEqual(r.status, 200, r)
        self.assertCache(r, "BYPASS")
        self.assertEqual(r.json()["n"], 2)
        self.assertHit(self.get(gw, "/silent/pets/1"), old)
        self.assertEqual(self.origin.count("/pets/1"), 2)


class TestFlush(InvalidationTest):
    PATHS = ("/pets/1", "/pets/2", "/toys/1")

    def fill(self, gw, stage, n=1):
        return {p: self.prime(gw, "/%s%s" % (stage, p), n) for p in self.PATHS}

    def test_flush_admin_api_one_stage_only(self):
        gw = self.gw()
        self.fill(gw, "prod")
        dev = self.fill(gw, "dev", n=2)
        self.assertEqual(self.stage_status(gw, "prod")["entries"], 3)
        r = self.admin(gw, "DELETE", "/v1/apis/petstore/stages/prod/cache")
        self.assertEqual(r.status, 202, r)
        self.assertIs(r.json().get("flushed"), True, r)
        self.assertEqual(self.stage_status(gw, "prod")["entries"], 0)
        self.assertEqual(self.stage_status(gw, "dev")["entries"], 3)
        for p in self.PATHS:
            self.assertHit(self.get(gw, "/dev" + p), dev[p])
            self.assertMiss(self.get(gw, "/prod" + p), 3)
            self.assertEqual(self.origin.count(p), 3, p)

    def test_flush_cli_one_stage_only(self):
        gw = self.gw()
        prod = self.fill(gw, "prod")
        self.fill(gw, "dev", n=2)
        # -c FILE: admin address and token file from the gateway's config (the
        # CLI loads the whole file, so it needs the identities' variables too)
        p = run_cli("flush", "-c", gw.config_path, "--api", "petstore", "--stage", "dev",
                    env=SECRET_ENV)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIs(json.loads(p.stdout)["flushed"], True)
        self.assertNotIn(TOKEN, p.stdout + p.stderr)
        for path in self.PATHS:
            self.assertHit(self.get(gw, "/prod" + path), prod[path])
            self.assertMiss(self.get(gw, "/dev" + path), 3)
            self.assertEqual(self.origin.count(path), 3, path)


class TestPathAndTagInvalidation(InvalidationTest):
    def test_wildcard_is_a_prefix(self):
        gw = self.gw()
        paths = ("/pets/1", "/pets/2", "/pets/1/toys", "/petsx", "/petshop", "/toys/1")
        old = {p: self.prime(gw, "/prod" + p) for p in paths}
        dev = self.prime(gw, "/dev/pets/1", n=2)

        out = self.invalidate(gw, "prod", {"paths": ["/pets/*"]})
        self.assertEqual(out["invalidated"], 3, out)
        for p in ("/pets/1", "/pets/2", "/pets/1/toys"):
            self.assertMiss(self.get(gw, "/prod" + p), 3 if p == "/pets/1" else 2)
        for p in ("/petsx", "/petshop", "/toys/1"):
            self.assertHit(self.get(gw, "/prod" + p), old[p])
        self.assertHit(self.get(gw, "/dev/pets/1"), dev)

        # without the slash the prefix also takes /petsx and /petshop
        out = self.invalidate(gw, "prod", {"paths": ["/pets*"]})
        self.assertEqual(out["invalidated"], 5, out)
        for p in ("/petsx", "/petshop"):
            self.assertMiss(self.get(gw, "/prod" + p), 2)
        self.assertMiss(self.get(gw, "/prod/pets/2"), 3)
        self.assertHit(self.get(gw, "/prod/toys/1"), old["/toys/1"])
        self.assertHit(self.get(gw, "/dev/pets/1"), dev)
        self.assertEqual(self.origin.count("/toys/1"), 1)

    def test_exact_path_drops_every_variant_and_nothing_else(self):
        gw = self.gw()
        keep = {p: self.prime(gw, "/prod" + p)
                for p in ("/pets/2", "/pets/1/toys", "/pets/10", "/projects/XYZ/members?page=1",
                          "/pets/a%2520b")}
        self.prime(gw, "/prod/pets/1")
        self.prime(gw, "/prod/pets/a%20b")
        for q in ("?page=1", "?page=2", ""):
            self.prime(gw, "/prod/projects/ABC/members" + q)

        # paths are matched as the client sent them, still percent-encoded
        out = self.invalidate(gw, "prod", {"paths": ["/pets/1", "/projects/ABC/members",
                                                     "/pets/a%20b"]})
        self.assertEqual(out["invalidated"], 5, out)
        self.assertMiss(self.get(gw, "/prod/pets/1"), 2)
        self.assertMiss(self.get(gw, "/prod/pets/a%20b"), 2)
        for q in ("?page=1", "?page=2", ""):
            self.assertMiss(self.get(gw, "/prod/projects/ABC/members" + q), 2)
        for p, body in keep.items():
            self.assertHit(self.get(gw, "/prod" + p), body)
        self.assertEqual(self.origin.count("/pets/2"), 1)
        self.assertEqual(self.origin.count("/projects/XYZ/members"), 1)

    def test_tags(self):
        gw = self.gw()
        tagged = {  # path -> Cache-Tag the origin answers with
            "/tagged/ab": "a, b",
            "/tagged/b": "b,c",
            "/tagged/a": "a",
            "/tagged/abc": "abc",
        }
        url = lambda p: "/prod%s?tags=%s" % (p, tagged[p].replace(" ", "%20"))  # noqa: E731
        old = {p: self.prime(gw, url(p)) for p in tagged}
        self.assertEqual(self.origin.last_request("/tagged")["path"], "/tagged/abc?tags=abc")
        untagged = self.prime(gw, "/prod/pets/1")
        dev = self.prime(gw, "/dev/tagged/b?tags=b")  # same tag, another stage

        out = self.invalidate(gw, "prod", {"tags": ["b"]})
        self.assertEqual((out["tags"], out["invalidated"]), (1, 2), out)
        self.assertMiss(self.get(gw, url("/tagged/ab")), 2)
        self.assertMiss(self.get(gw, url("/tagged/b")), 2)
        self.assertHit(self.get(gw, url("/tagged/a")), old["/tagged/a"])
        self.assertHit(self.get(gw, url("/tagged/abc")), old["/tagged/abc"])  # "abc" is not "b"
        self.assertHit(self.get(gw, "/prod/pets/1"), untagged)

        out = self.invalidate(gw, "prod", {"tags": ["a"]})
        self.assertEqual(out["invalidated"], 2, out)  # /tagged/ab (again) and /tagged/a
        self.assertMiss(self.get(gw, url("/tagged/a")), 2)
        self.assertMiss(self.get(gw, url("/tagged/ab")), 3)
        self.assertHit(self.get(gw, url("/tagged/abc")), old["/tagged/abc"])
        self.assertHit(self.get(gw, "/prod/pets/1"), untagged)
        self.assertHit(self.get(gw, "/dev/tagged/b?tags=b"), dev)
        self.assertEqual(self.origin.count("/pets/1"), 1)


class TestWriteInvalidation(InvalidationTest):
    """The seeds' case: PUT /projects/{id}/members invalidates every cached
    page of GET /projects/{id}/members of that project."""

    ABC = ["/prod/projects/ABC/members?page=%d" % i for i in (1, 2, 3)] + \
        ["/prod/projects/ABC/members"]
    XYZ = "/prod/projects/XYZ/members?page=1"
    DEV = "/dev/projects/ABC/members?page=1"

    def fill(self, gw):
        return {p: self.prime(gw, p) for p in self.ABC + [self.XYZ, self.DEV]}

    def put(self, gw, path, *args):
        return curl(gw.url(path), "-X", "PUT", "-H", "Content-Type: application/json",
                    "--data-binary", '{"members": ["ann", "bob"]}', *args)

    def test_put_2xx_invalidates_every_page(self):
        gw = self.gw()
        old = self.fill(gw)
        r = self.put(gw, "/prod/projects/ABC/members")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["method"], "PUT")
        self.assertEqual(self.origin.count("/projects/ABC/members", "PUT"), 1)
        for p in self.ABC:
            r = self.get(gw, p)
            self.assertMiss(r, 3 if p.endswith("page=1") else 2)  # dev had page 1 too
            self.assertHit(self.get(gw, p), r.body)
        self.assertHit(self.get(gw, self.XYZ), old[self.XYZ])
        self.assertHit(self.get(gw, self.DEV), old[self.DEV])  # another stage's cache
        self.assertEqual(self.origin.count("/projects/XYZ/members"), 1)
        self.assertEqual(self.origin.count("/projects/ABC/members", "GET"), 4 * 2 + 1)

    def test_failed_put_invalidates_nothing(self):
        gw = self.gw()
        old = self.fill(gw)
        for status in (500, 404):
            with self.subTest(origin_status=status):
                r = self.put(gw, "/prod/projects/ABC/members", "-H", "X-Origin-Status: %d" % status)
                self.assertEqual(r.status, status, r)
                for p in self.ABC + [self.XYZ, self.DEV]:
                    self.assertHit(self.get(gw, p), old[p])
        self.assertEqual(self.origin.count("/projects/ABC/members", "PUT"), 2)
        self.assertEqual(self.origin.count("/projects/ABC/members", "GET"), 5)


class TestEncryption(InvalidationTest):
    def serve_refused(self, env_key):
        """`gatecache serve` with the encrypted config and env_key (None = the
        variable unset) must exit 1 at once. Returns its stderr."""
        gw = harness.Gateway(ENC_CONFIG, origin=self.origin, start=False)
        self.addCleanup(shutil.rmtree, gw.dir, ignore_errors=True)
        env = {k: v for k, v in os.environ.items() if k != ENC_KEY_ENV}
        if env_key is not None:
            env[ENC_KEY_ENV] = env_key
        proc = subprocess.Popen([harness.BIN, "serve", "-c", gw.config_path], env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            out, err = proc.communicate(timeout=harness.START_TIMEOUT)
        except subprocess.TimeoutExpired:
            harness.stop_pid(proc, 5)
            proc.communicate()
            self.fail("gatecache started with %s=%r" % (ENC_KEY_ENV, env_key))
        text = (out + err).decode("utf-8", "replace")
        self.assertEqual(proc.returncode, 1, text)
        self.assertFalse(port_open(gw.port))
        self.assertIn(ENC_KEY_ENV, text)
        return text

    def test_encrypted_entries_hit(self):
        gw = self.gateway(ENC_CONFIG, env={ENC_KEY_ENV: ENC_KEY})
        r = self.get(gw, "/prod/pets/1")
        self.assertMiss(r, 1)
        self.assertHit(self.get(gw, "/prod/pets/1"), r.body)
        big = self.get(gw, "/prod/large/enc?bytes=200000")
        self.assertEqual(big.status, 200, big)
        self.assertCache(big, "MISS")
        self.assertEqual(big.body, harness_pattern(200000))
        h = self.get(gw, "/prod/large/enc?bytes=200000")
        self.assertHit(h, big.body)
        self.assertEqual(h.headers.get("content-length"), "200000")
        self.assertEqual(self.origin.count("/pets/1"), 1)
        self.assertEqual(self.origin.count("/large/enc"), 1)
        self.assertNotIn(ENC_KEY, gw.stderr())
        self.assertNotIn(ENC_KEY.upper(), gw.stderr())

    def test_key_file_base64_and_reload(self):
        key_file = os.path.join(self.tmp, "cache-key")
        with open(key_file, "w") as f:
            f.write(ENC_KEY_B64 + "\n")
        cfg = ENC_CONFIG.replace("  workers: 2\n",
                                 "  workers: 2\n  cache_encryption_key_file: \"%s\"\n" % key_file)
        gw = self.gateway(cfg)
        r = self.get(gw, "/prod/pets/1")
        self.assertMiss(r, 1)
        self.assertHit(self.get(gw, "/prod/pets/1"), r.body)
        # a reload keeps the key: the entries stay readable
        gw.reload()
        self.assertTrue(gw.alive(), gw.stderr())
        self.assertHit(self.get(gw, "/prod/pets/1"), r.body)
        self.assertEqual(self.origin.count("/pets/1"), 1)
        self.assertNoSecrets(gw.stderr())

    def test_refuses_to_start_without_key(self):
        self.serve_refused(None)

    def test_refuses_malformed_key(self):
        for bad in ("a1b2c3d4e5", ENC_KEY[:-1] + "g"):
            with self.subTest(key=bad):
                text = self.serve_refused(bad)
                self.assertNotIn(bad, text, "the malformed key was printed")


class TestSecretsNotLogged(InvalidationTest):
    def test_failures_and_reload_log_no_secret(self):
        # Every gateway of this file is checked at its stop; this one also goes
        # through every failure path that might log a credential, and a reload.
        gw = self.gw()
        self.prime(gw, "/prod/pets/1")
        url = gw.url("/prod/pets/1")
        signed = sign_batch([
            spec(url, "ops", secret="notTheSecret/e2e+K7MDENGbPxRfi99"),
            spec(url, "ops", access_key="AKIAE2EUNKNOWN"),
            spec(url, "denier"),
            spec(url, "seed", timestamp=int(time.time()) - 1200),
            spec(url, "ops"),
        ])
        for s in signed[:-1]:
            self.assertDenied(self.refresh(gw, "/prod/pets/1", s["headers"]))
        self.assertRefresh(self.refresh(gw, "/prod/pets/1", signed[-1]["headers"]), 2)
        self.assertEqual(self.admin(gw, "DELETE", "/v1/apis/petstore/stages/prod/cache").status,
                         202)
        r = curl("http://127.0.0.1:%d/v1/apis/petstore/stages/prod/cache" % gw.admin_port,
                 "-H", "Authorization: Bearer " + TOKEN + "x")
        self.assertEqual(r.status, 403, r)
        gw.reload()
        self.assertTrue(gw.alive(), gw.stderr())
        self.assertMiss(self.get(gw, "/prod/pets/1"), 3)
        self.assertNoSecrets(gw.stderr())
        self.assertNotIn(TOKEN + "x", gw.stderr())


def harness_pattern(n):
    unit = b"0123456789abcdefghijklmnopqrstuvwxyz\n"
    return (unit * (n // len(unit) + 1))[:n]


if __name__ == "__main__":
    harness.main()
