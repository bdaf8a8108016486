#!/usr/bin/env python3
"""50 aws cli: the unmodified AWS CLI (Debian's awscli, /usr/bin/aws) drives the
AWS-compatible admin API with --endpoint-url: API Gateway get-rest-apis,
get-stages, get-stage, update-stage (cache patch operations), flush-stage-cache
and CloudFront create-invalidation, get-invalidation, list-invalidations, all
signed with SigV4 by the CLI itself and authorised by the identities' IAM
policies. Each call's JSON output is checked, and so is its effect on the
cache, through the data plane (curl) and the origin's request counts.

Contract: shared/spec/aws-wire.md and shared/spec/product.md §4–§6. The CLI
runs hermetically: no config or credentials file, static keys from the
environment, one attempt per call (AWS_MAX_ATTEMPTS=1, so a failing gateway is
not hidden by retries). A missing /usr/bin/aws fails the tests
(scripts/install-deps.sh installs awscli): it is never a reason to skip."""
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import GatewayTest, curl, port_open  # noqa: E402

AWS = "/usr/bin/aws"  # Debian's awscli; the `aws` first on PATH may be another one
REGION = "us-east-1"
ACCOUNT = "123456789012"

AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
READER_AKID = "AKIAE2EREADER50"
READER_SECRET = "readerSecret/e2e+K7MDENGbPxRfiCY0050"
WRONG_SECRET = "wrongSecret/e2e+K7MDENGbPxRfiCYEXAMPLEKEY"
TOKEN = "e2e-awscli-admin-token-7Hq2LmX9"
SECRET_ENV = {"E2E_CLI_SECRET": SECRET, "E2E_READER_SECRET": READER_SECRET}

PETS = "petstore.example.test"  # Host labels select the API (two APIs here)
SHOP = "shop.example.test"
SHOP_DIST = "EDFDVBD6EXAMPLE"   # shop/prod's explicit distribution_id
PET_DIST = "petstore-prod"      # the default "{api-id}-{stage}"

CONFIG = """
server:
  listen: "127.0.0.1:{port}"
  workers: 2
  admin_listen: "127.0.0.1:{admin_port}"
  admin_token_file: "@TOKEN_FILE@"
  region: us-east-1
  account_id: "123456789012"
identities:
  - name: cli
    access_key_id: AKIDEXAMPLE
    secret_access_key_env: E2E_CLI_SECRET
    policy:
      Version: "2012-10-17"
      Statement:
        - Effect: Allow
          Action: ["apigateway:GET", "apigateway:PATCH", "apigateway:DELETE"]
          Resource: ["arn:aws:apigateway:us-east-1::/restapis",
                     "arn:aws:apigateway:us-east-1::/restapis/*"]
        - Effect: Allow
          Action: ["cloudfront:CreateInvalidation", "cloudfront:GetInvalidation",
                   "cloudfront:ListInvalidations"]
          Resource: ["arn:aws:cloudfront::123456789012:distribution/*"]
  - name: reader
    access_key_id: AKIAE2EREADER50
    secret_access_key_env: E2E_READER_SECRET
    policy:
      Version: "2012-10-17"
      Statement:
        - Effect: Allow
          Action: ["apigateway:GET"]
          Resource: ["arn:aws:apigateway:us-east-1::/restapis*"]
        - Effect: Allow
          Action: ["cloudfront:GetInvalidation", "cloudfront:ListInvalidations"]
          Resource: ["arn:aws:cloudfront::123456789012:distribution/*"]
apis:
  - id: petstore
    resources:
      /pets:
        GET:
          integration: { type: HTTP_PROXY, uri: "{origin}/pets" }
      /pets/{id}:
        GET:
          integration: { type: HTTP_PROXY, uri: "{origin}/pets/{id}" }
      /{proxy+}:
        ANY:
          integration: { type: HTTP_PROXY, uri: "{origin}/{proxy}" }
    stages:
      prod:
        cache_cluster_enabled: true
        cache_cluster_size: "0.5"
        method_settings:
          - resource_path: "/*"
            http_method: "*"
            caching_enabled: true
            cache_ttl_in_seconds: 300
            cache_data_encrypted: false
            require_authorization_for_cache_control: true
            unauthorized_cache_control_header_strategy: SUCCEED_WITH_RESPONSE_HEADER
          - resource_path: "/pets"
            http_method: GET
            cache_ttl_in_seconds: 60
      dev:
        cache_cluster_enabled: false
  - id: shop
    resources:
      /items/{id}:
        GET:
          integration: { type: HTTP_PROXY, uri: "{origin}/shop/items/{id}" }
    stages:
      prod:
        cache_cluster_enabled: true
        cache_cluster_size: "0.5"
        distribution_id: EDFDVBD6EXAMPLE
"""

STAR = {  # methodSettings["*/*"] as the file above sets it
    "cachingEnabled": True,
    "cacheTtlInSeconds": 300,
    "cacheDataEncrypted": False,
    "requireAuthorizationForCacheControl": True,
    "unauthorizedCacheControlHeaderStrategy": "SUCCEED_WITH_RESPONSE_HEADER",
}
INV_ID = re.compile(r"^I[0-9A-Z]{5,}$")


def setting(stage, key):
    """stage["methodSettings"] entry for key ("*/*", "pets/GET", ...), whatever
    the spelling of the stored key ("~1pets/GET" or "pets/GET": aws-wire.md 2.2
    normalises "~1" to "/" and drops a leading "/")."""
    def norm(k):
        return k.replace("~1", "/").replace("~0", "~").lstrip("/")
    found = [v for k, v in (stage.get("methodSettings") or {}).items() if norm(k) == key]
    if len(found) != 1:
        raise AssertionError("%d methodSettings entries for %r in %r" % (len(found), key, stage))
    return found[0]


def setting_keys(stage):
    return sorted(k.replace("~1", "/").replace("~0", "~").lstrip("/")
                  for k in stage.get("methodSettings") or {})


class CliResult:
    def __init__(self, args, p):
        self.args, self.rc, self.out, self.err = args, p.returncode, p.stdout, p.stderr

    def json(self):
        try:
            return json.loads(self.out)
        except ValueError:
            raise AssertionError("aws %s: stdout is not JSON: %r (stderr %r)"
                                 % (" ".join(self.args), self.out[:500], self.err[-500:]))

    def __repr__(self):
        return "aws %s -> exit %r\nstdout: %s\nstderr: %s" % (
            " ".join(self.args), self.rc, self.out[-1500:], self.err[-1500:])


def aws_env(akid, secret):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({
        "AWS_ACCESS_KEY_ID": akid,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_PAGER": "",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_RETRY_MODE": "standard",
        "AWS_EC2_METADATA_DISABLED": "true",
        "NO_PROXY": "127.0.0.1,localhost",  # a proxy from the environment must not
        "no_proxy": "127.0.0.1,localhost",  # get the loopback calls
    })
    return env


class AwsCliTest(GatewayTest):
    @classmethod
    def setUpClass(cls):
        if not os.access(AWS, os.X_OK):
            raise AssertionError("%s not found: Debian's awscli is required "
                                 "(scripts/install-deps.sh)" % AWS)
        super().setUpClass()
        cls.tmp, cls.token_file = harness.admin_token_dir("gatecache-e2e-awscli-", TOKEN)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)
        super().tearDownClass()

    def gw(self):
        gw = harness.Gateway(CONFIG.replace("@TOKEN_FILE@", self.token_file),
                             origin=self.origin, env=SECRET_ENV)

        def stop_and_check():
            try:
                gw.stop()
            finally:
                err = getattr(gw, "final_stderr", "")
                for s in (SECRET, READER_SECRET, WRONG_SECRET, TOKEN):
                    self.assertNotIn(s, err, "a secret appears in the gateway's stderr")
        self.addCleanup(stop_and_check)
        deadline = time.monotonic() + harness.START_TIMEOUT
        while not port_open(gw.admin_port) and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertTrue(port_open(gw.admin_port), "admin port not open")
        return gw

    # ---------------------------------------------------------- the CLI

    def aws(self, gw, *args, akid=AKID, secret=SECRET, timeout=30):
        """One `aws ...` call against gw's admin listener; returns CliResult."""
        cmd = [AWS] + list(args) + [
            "--endpoint-url", "http://127.0.0.1:%d" % gw.admin_port,
            "--region", REGION, "--output", "json",
            "--cli-connect-timeout", "5", "--cli-read-timeout", "15"]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           env=aws_env(akid, secret), stdin=subprocess.DEVNULL)
        return CliResult(list(args), p)

    def aws_many(self, gw, calls):
        """calls: list of (args tuple, kwargs dict); run 3 at a time, results in order."""
        with concurrent.futures.ThreadPoolExecutor(max_workers=3) as ex:
            futs = [ex.submit(self.aws, gw, *a, **kw) for a, kw in calls]
            return [f.result() for f in futs]

    def ok(self, res):
        """exit 0 and the parsed JSON output (None when stdout is empty)."""
        self.assertEqual(res.rc, 0, res)
        return res.json() if res.out.strip() else None

    def assertAwsError(self, res, code, message=None):
        """What the CLI prints for a service error: exit 254 and
        'An error occurred (CODE) when calling the OP operation: MESSAGE'."""
        self.assertEqual(res.rc, 254, res)
        self.assertIn("An error occurred (%s)" % code, res.err, res)
        if message is not None:
            self.assertIn(message, res.err, res)

    def get_stage(self, gw, api="petstore", stage="prod", **kw):
        return self.ok(self.aws(gw, "apigateway", "get-stage", "--rest-api-id", api,
                                "--stage-name", stage, **kw))

    def update_stage(self, gw, *ops, api="petstore", stage="prod"):
        """ops: shorthand strings, or one JSON list (a Python list) of operations."""
        if len(ops) == 1 and isinstance(ops[0], list):
            ops = (json.dumps(ops[0]),)
        return self.aws(gw, "apigateway", "update-stage", "--rest-api-id", api,
                        "--stage-name", stage, "--patch-operations", *ops)

    def wait_available(self, gw, api="petstore", stage="prod", timeout=8.0):
        """Polls the native status (cheaper than a CLI call) until the stage's
        cache is AVAILABLE again; returns that status document."""
        deadline = time.monotonic() + timeout
        while True:
            doc = self.native_status(gw, api, stage)
            if doc.get("status") == "AVAILABLE" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(doc.get("status"), "AVAILABLE", doc)
        return doc

    # ---------------------------------------------------------- data plane

    def get(self, gw, path, host=PETS):
        return curl(gw.url(path), "-H", "Host: " + host)

    def assertMiss(self, resp):
        self.assertEqual(resp.status, 200, resp)
        self.assertCache(resp, "MISS")

    def assertHit(self, resp, body=None):
        self.assertEqual(resp.status, 200, resp)
        self.assertCache(resp, "HIT")
        if body is not None:
            self.assertEqual(resp.body, body, "HIT with another body")

    def prime(self, gw, path, host=PETS):
        """MISS then HIT; returns the cached body."""
        r = self.get(gw, path, host)
        self.assertMiss(r)
        self.assertHit(self.get(gw, path, host), r.body)
        return r.body

    def native_status(self, gw, api="petstore", stage="prod"):
        r = curl("http://127.0.0.1:%d/v1/apis/%s/stages/%s/cache" % (gw.admin_port, api, stage),
                 "-H", "Authorization: Bearer " + TOKEN)
        self.assertEqual(r.status, 200, r)
        return r.json()


# ================================================================ API Gateway reads

class TestApiGatewayRead(AwsCliTest):
    def test_get_rest_apis_stages_stage(self):
        gw = self.gw()
        apis, stages, stage = self.aws_many(gw, [
            (("apigateway", "get-rest-apis"), {}),
            (("apigateway", "get-stages", "--rest-api-id", "petstore"), {}),
            (("apigateway", "get-stage", "--rest-api-id", "petstore", "--stage-name", "prod"),
             {}),
        ])
        out = self.ok(apis)
        self.assertIsInstance(out.get("items"), list, out)
        self.assertEqual(sorted(a.get("id") for a in out["items"]), ["petstore", "shop"], out)
        self.assertNotIn("position", out, "one page only: no position expected")

        out = self.ok(stages)
        self.assertIsInstance(out.get("item"), list, out)
        by_name = {s.get("stageName"): s for s in out["item"]}
        self.assertEqual(sorted(by_name), ["dev", "prod"], out)
        self.assertIs(by_name["prod"].get("cacheClusterEnabled"), True, out)
        self.assertEqual(by_name["prod"].get("cacheClusterSize"), "0.5", out)
        self.assertEqual(by_name["prod"].get("cacheClusterStatus"), "AVAILABLE", out)
        self.assertIs(by_name["dev"].get("cacheClusterEnabled"), False, out)
        self.assertEqual(by_name["dev"].get("cacheClusterStatus"), "NOT_AVAILABLE", out)

        st = self.ok(stage)
        self.assertEqual(st.get("stageName"), "prod", st)
        self.assertIs(st.get("cacheClusterEnabled"), True, st)
        self.assertEqual(st.get("cacheClusterSize"), "0.5", st)
        self.assertEqual(st.get("cacheClusterStatus"), "AVAILABLE", st)
        self.assertIsInstance(st.get("methodSettings"), dict, st)
        self.assertEqual(setting_keys(st), ["*/*", "pets/GET"], st)
        for k, v in STAR.items():
            self.assertEqual(setting(st, "*/*").get(k), v, "methodSettings['*/*'].%s" % k)
        # the /pets GET entry: its own TTL; the rest as it takes effect (GET is
        # cached, the defaults equal the stage-wide values here)
        for k, v in dict(STAR, cacheTtlInSeconds=60).items():
            self.assertEqual(setting(st, "pets/GET").get(k), v, "/pets GET %s in %r" % (k, st))
        # the key as the AWS CLI reference spells a per-method entry
        self.assertEqual(sorted(st["methodSettings"]), ["*/*", "~1pets/GET"], st)

    def test_not_found(self):
        gw = self.gw()
        ag = "apigateway"
        res = self.aws_many(gw, [
            ((ag, "get-stage", "--rest-api-id", "nope", "--stage-name", "prod"), {}),
            ((ag, "get-stage", "--rest-api-id", "petstore", "--stage-name", "nope"), {}),
            ((ag, "update-stage", "--rest-api-id", "shop", "--stage-name", "dev",
              "--patch-operations", "op=replace,path=/cacheClusterEnabled,value=true"), {}),
        ])
        self.assertAwsError(res[0], "NotFoundException", "Invalid API identifier specified")
        self.assertAwsError(res[1], "NotFoundException", "Invalid stage identifier specified")
        self.assertAwsError(res[2], "NotFoundException", "Invalid stage identifier specified")


# ================================================================ UpdateStage

class TestUpdateStage(AwsCliTest):
    def test_ttl_patch_expires_entries(self):
        gw = self.gw()
        st = self.ok(self.update_stage(gw, "op=replace,path=/*/*/caching/ttlInSeconds,value=1"))
        self.assertEqual(setting(st, "*/*").get("cacheTtlInSeconds"), 1, st)
        self.assertEqual(setting(st, "pets/GET").get("cacheTtlInSeconds"), 60, st)
        body1 = self.prime(gw, "/prod/pets/1")
        pets = self.prime(gw, "/prod/pets")      # its own entry: TTL 60
        time.sleep(1.5)
        r = self.get(gw, "/prod/pets/1")
        self.assertEqual(r.status, 200, r)
        self.assertIn(r.headers.get("x-cache-status"), ("MISS", "EXPIRED"), r)
        self.assertNotEqual(r.body, body1)
        self.assertEqual(self.origin.count("/pets/1"), 2)
        self.assertHit(self.get(gw, "/prod/pets"), pets)
        self.assertEqual(self.origin.count("/pets"), 1)

    def test_size_patch_wipes_stage(self):
        gw = self.gw()
        body = self.prime(gw, "/prod/pets/1")
        shop = self.prime(gw, "/prod/items/1", SHOP)
        st = self.ok(self.update_stage(gw, "op=replace,path=/cacheClusterSize,value=1.6"))
        self.assertEqual(st.get("cacheClusterSize"), "1.6", st)
        self.assertIs(st.get("cacheClusterEnabled"), True, st)
        self.assertIn(st.get("cacheClusterStatus"), ("CREATE_IN_PROGRESS", "AVAILABLE"), st)
        self.assertEqual(self.native_status(gw).get("cacheClusterSize"), "1.6")
        r = self.get(gw, "/prod/pets/1")
        self.assertMiss(r)
        self.assertNotEqual(r.body, body)
        self.assertEqual(self.origin.count("/pets/1"), 2)
        self.assertHit(self.get(gw, "/prod/pets/1"), r.body)
        self.assertHit(self.get(gw, "/prod/items/1", SHOP), shop)  # another API's stage: kept
        self.assertEqual(self.wait_available(gw).get("cacheClusterSize"), "1.6")

    def test_disable_and_enable_cache_cluster(self):
        gw = self.gw()
        self.prime(gw, "/prod/pets/1")
        st = self.ok(self.update_stage(gw, "op=replace,path=/cacheClusterEnabled,value=false"))
        self.assertIs(st.get("cacheClusterEnabled"), False, st)
        self.assertIn(st.get("cacheClusterStatus"), ("DELETE_IN_PROGRESS", "NOT_AVAILABLE"), st)
        r1, r2 = self.get(gw, "/prod/pets/1"), self.get(gw, "/prod/pets/1")
        for r in (r1, r2):
            self.assertEqual(r.status, 200, r)
            self.assertNotIn("x-cache-status", r.headers, r)
        self.assertNotEqual(r1.body, r2.body)
        self.assertEqual(self.origin.count("/pets/1"), 3)

        st = self.ok(self.update_stage(gw, "op=replace,path=/cacheClusterEnabled,value=true"))
        self.assertIs(st.get("cacheClusterEnabled"), True, st)
        self.assertIn(st.get("cacheClusterStatus"), ("CREATE_IN_PROGRESS", "AVAILABLE"), st)
        # the cluster was deleted: what it held before is gone
        r = self.get(gw, "/prod/pets/1")
        self.assertMiss(r)
        self.assertHit(self.get(gw, "/prod/pets/1"), r.body)
        self.assertEqual(self.origin.count("/pets/1"), 4)

    def test_per_method_keys(self):
        gw = self.gw()
        self.prime(gw, "/prod/pets")
        # the AWS CLI reference's escaping, in shorthand syntax
        st = self.ok(self.update_stage(gw, "op=replace,path=/~1pets/GET/caching/enabled,"
                                           "value=false"))
        self.assertIs(setting(st, "pets/GET").get("cachingEnabled"), False, st)
        self.assertIs(setting(st, "*/*").get("cachingEnabled"), True, st)
        r1, r2 = self.get(gw, "/prod/pets"), self.get(gw, "/prod/pets")
        for r in (r1, r2):
            self.assertEqual(r.status, 200, r)
            self.assertNotIn("x-cache-status", r.headers, r)
        self.assertEqual(self.origin.count("/pets"), 3)
        self.prime(gw, "/prod/pets/1")  # "*/*" still caches the other resources

        # a nested resource needs JSON (shorthand cannot carry braces): a new key
        st = self.ok(self.update_stage(gw, [
            {"op": "replace", "path": "/~1pets~1{id}/GET/caching/ttlInSeconds", "value": "0"},
            {"op": "remove", "path": "/~1pets/GET"}]))
        self.assertEqual(setting_keys(st), ["*/*", "pets/{id}/GET"], st)
        self.assertIn("~1pets~1{id}/GET", st["methodSettings"], "a new key is stored verbatim")
        self.assertEqual(setting(st, "pets/{id}/GET").get("cacheTtlInSeconds"), 0, st)
        r1, r2 = self.get(gw, "/prod/pets/2"), self.get(gw, "/prod/pets/2")
        self.assertEqual((r1.status, r2.status), (200, 200))
        self.assertNotEqual(r2.headers.get("x-cache-status"), "HIT", r2)
        self.assertEqual(self.origin.count("/pets/2"), 2)
        # /pets is back under "*/*": cached again, and the entry stored before its
        # caching was turned off is not served (a caching change flushes the stage)
        r1 = self.get(gw, "/prod/pets")
        self.assertMiss(r1)
        n = self.origin.count("/pets")
        self.assertHit(self.get(gw, "/prod/pets"), r1.body)
        self.assertEqual(self.origin.count("/pets"), n)

    def test_invalid_patches_rejected(self):
        gw = self.gw()
        body = self.prime(gw, "/prod/pets/1")
        up = ("apigateway", "update-stage", "--rest-api-id", "petstore", "--stage-name", "prod",
              "--patch-operations")
        res = self.aws_many(gw, [
            (up + ("op=replace,path=/*/*/caching/ttlInSeconds,value=4000",), {}),
            (up + ("op=replace,path=/cacheClusterSize,value=3",), {}),
            (up + ("op=replace,path=/foo,value=1",), {}),
            # a valid operation before an invalid one: the whole request is rejected
            (up + ("op=replace,path=/*/*/caching/ttlInSeconds,value=7",
                   "op=replace,path=/*/*/caching/unauthorizedCacheControlHeaderStrategy,"
                   "value=SOMETIMES"), {}),
        ])
        for r in res:
            self.assertAwsError(r, "BadRequestException")
        st = self.get_stage(gw)
        self.assertEqual(st.get("cacheClusterSize"), "0.5", st)
        self.assertIs(st.get("cacheClusterEnabled"), True, st)
        self.assertEqual(setting_keys(st), ["*/*", "pets/GET"], st)
        for k, v in STAR.items():
            self.assertEqual(setting(st, "*/*").get(k), v, st)
        self.assertHit(self.get(gw, "/prod/pets/1"), body)  # nothing was wiped
        self.assertEqual(self.origin.count("/pets/1"), 1)

    def test_sighup_drops_live_changes(self):
        gw = self.gw()
        st = self.ok(self.update_stage(gw, "op=replace,path=/*/*/caching/ttlInSeconds,value=5",
                                       "op=replace,path=/cacheClusterSize,value=1.6"))
        self.assertEqual(setting(st, "*/*").get("cacheTtlInSeconds"), 5, st)
        self.assertEqual(st.get("cacheClusterSize"), "1.6", st)
        gw.reload()  # the file is unchanged; live changes are not written back
        self.assertTrue(gw.alive(), gw.stderr())
        st = self.get_stage(gw)
        self.assertEqual(setting(st, "*/*").get("cacheTtlInSeconds"), 300, st)
        self.assertEqual(st.get("cacheClusterSize"), "0.5", st)
        self.assertIn(st.get("cacheClusterStatus"), ("CREATE_IN_PROGRESS", "AVAILABLE"), st)
        with open(gw.config_path) as f:
            self.assertEqual(f.read(), gw.config_text, "the config file was rewritten")


# ================================================================ FlushStageCache

class TestFlushStageCache(AwsCliTest):
    def test_flush(self):
        gw = self.gw()
        body = self.prime(gw, "/prod/pets/1")
        pets = self.prime(gw, "/prod/pets")
        shop = self.prime(gw, "/prod/items/1", SHOP)
        res = self.aws(gw, "apigateway", "flush-stage-cache", "--rest-api-id", "petstore",
                       "--stage-name", "prod")
        self.assertEqual(res.rc, 0, res)
        self.assertEqual(res.out.strip(), "", res)  # 202, no output modelled
        r = self.get(gw, "/prod/pets/1")
        self.assertMiss(r)
        self.assertNotEqual(r.body, body)
        r = self.get(gw, "/prod/pets")
        self.assertMiss(r)
        self.assertNotEqual(r.body, pets)
        self.assertEqual((self.origin.count("/pets/1"), self.origin.count("/pets")), (2, 2))
        self.assertHit(self.get(gw, "/prod/items/1", SHOP), shop)
        self.wait_available(gw)


# ================================================================ CloudFront

class TestCloudFront(AwsCliTest):
    def assertInvalidation(self, inv, paths, caller_ref=None):
        self.assertRegex(inv.get("Id", ""), INV_ID, inv)
        self.assertIn(inv.get("Status"), ("InProgress", "Completed"), inv)
        self.assertTrue(inv.get("CreateTime"), inv)
        batch = inv.get("InvalidationBatch", {})
        self.assertEqual(batch.get("Paths"), {"Quantity": len(paths), "Items": paths}, inv)
        if caller_ref is not None:
            self.assertEqual(batch.get("CallerReference"), caller_ref, inv)
        else:
            self.assertRegex(batch.get("CallerReference", ""), r"^cli-\d+-\d+$", inv)

    def test_create_get_list(self):
        gw = self.gw()
        for p in ("/prod/pets/1", "/prod/pets/2", "/prod/pets", "/prod/other"):
            self.prime(gw, p)
        shop = self.prime(gw, "/prod/items/1", SHOP)
        out = self.ok(self.aws(gw, "cloudfront", "create-invalidation", "--distribution-id",
                               PET_DIST, "--paths", "/pets/1", "/pets/*"))
        inv = out.get("Invalidation", {})
        self.assertInvalidation(inv, ["/pets/1", "/pets/*"])
        self.assertTrue(out.get("Location", "").endswith(
            "/2020-05-31/distribution/%s/invalidation/%s" % (PET_DIST, inv["Id"])), out)
        for p, n in (("/pets/1", 2), ("/pets/2", 2)):
            self.assertMiss(self.get(gw, "/prod" + p))
            self.assertEqual(self.origin.count(p), n)
        self.assertHit(self.get(gw, "/prod/pets"))   # "/pets/*" does not cover "/pets"
        self.assertHit(self.get(gw, "/prod/other"))
        self.assertHit(self.get(gw, "/prod/items/1", SHOP), shop)

        get, lst = self.aws_many(gw, [
            (("cloudfront", "get-invalidation", "--distribution-id", PET_DIST, "--id",
              inv["Id"]), {}),
            (("cloudfront", "list-invalidations", "--distribution-id", PET_DIST), {}),
        ])
        got = self.ok(get)["Invalidation"]
        self.assertEqual(got.get("Id"), inv["Id"])
        self.assertEqual(got.get("InvalidationBatch"), inv["InvalidationBatch"], got)
        items = (self.ok(lst) or {}).get("InvalidationList", {}).get("Items")
        self.assertEqual(len(items or []), 1, lst)
        self.assertEqual(items[0].get("Id"), inv["Id"], lst)
        self.assertTrue(items[0].get("CreateTime"), lst)
        for _ in range(10):  # InProgress, then Completed
            if got.get("Status") == "Completed" and items[0].get("Status") == "Completed":
                break
            time.sleep(0.5)
            got = self.ok(self.aws(gw, "cloudfront", "get-invalidation", "--distribution-id",
                                   PET_DIST, "--id", inv["Id"]))["Invalidation"]
            items = [{"Status": got.get("Status")}]
        self.assertEqual(got.get("Status"), "Completed", got)
        self.assertEqual(items[0].get("Status"), "Completed", lst)

    def test_caller_reference_idempotent(self):
        gw = self.gw()
        self.prime(gw, "/prod/pets/1")
        batch = {"Paths": {"Quantity": 1, "Items": ["/pets/1"]},
                 "CallerReference": "e2e-ref-%d" % os.getpid()}
        ci = ("cloudfront", "create-invalidation", "--distribution-id", PET_DIST,
              "--invalidation-batch")
        first = self.ok(self.aws(gw, *(ci + (json.dumps(batch),))))["Invalidation"]
        self.assertInvalidation(first, ["/pets/1"], batch["CallerReference"])
        self.assertMiss(self.get(gw, "/prod/pets/1"))
        self.assertHit(self.get(gw, "/prod/pets/1"))
        other = dict(batch, Paths={"Quantity": 1, "Items": ["/pets/2"]})
        again, conflict, second = self.aws_many(gw, [
            (ci + (json.dumps(batch),), {}),
            (ci + (json.dumps(other),), {}),
            (("cloudfront", "create-invalidation", "--distribution-id", PET_DIST, "--paths",
              "/other"), {}),
        ])
        again = self.ok(again)["Invalidation"]
        self.assertEqual(again.get("Id"), first["Id"], again)
        self.assertInvalidation(again, ["/pets/1"], batch["CallerReference"])
        self.assertAwsError(conflict, "InvalidationBatchAlreadyExists")
        second = self.ok(second)["Invalidation"]
        self.assertNotEqual(second["Id"], first["Id"])
        self.assertHit(self.get(gw, "/prod/pets/1"))  # a repeated batch invalidates nothing

        out = self.ok(self.aws(gw, "cloudfront", "list-invalidations", "--distribution-id",
                               PET_DIST))
        ids = [i.get("Id") for i in out.get("InvalidationList", {}).get("Items") or []]
        self.assertEqual(ids, [second["Id"], first["Id"]], "newest first, no duplicate: %r"
                         % out)

    def test_own_distribution_id(self):
        gw = self.gw()
        pets = self.prime(gw, "/prod/pets/1")
        self.prime(gw, "/prod/items/1", SHOP)
        out = self.ok(self.aws(gw, "cloudfront", "create-invalidation", "--distribution-id",
                               SHOP_DIST, "--paths", "/*"))
        self.assertInvalidation(out["Invalidation"], ["/*"])
        self.assertMiss(self.get(gw, "/prod/items/1", SHOP))
        self.assertHit(self.get(gw, "/prod/pets/1"), pets)

    def test_errors(self):
        gw = self.gw()
        body = self.prime(gw, "/prod/pets/1")
        cf = "cloudfront"
        res = self.aws_many(gw, [
            ((cf, "create-invalidation", "--distribution-id", "nope-prod", "--paths", "/a"), {}),
            ((cf, "create-invalidation", "--distribution-id", PET_DIST, "--paths", "pets/1"), {}),
            ((cf, "create-invalidation", "--distribution-id", PET_DIST, "--invalidation-batch",
              json.dumps({"Paths": {"Quantity": 2, "Items": ["/pets/1"]},
                          "CallerReference": "e2e-inconsistent"})), {}),
        ])
        self.assertAwsError(res[0], "NoSuchDistribution")
        self.assertAwsError(res[1], "InvalidArgument")
        self.assertAwsError(res[2], "InconsistentQuantities")
        self.assertHit(self.get(gw, "/prod/pets/1"), body)


# ================================================================ authentication

class TestAuth(AwsCliTest):
    def test_bad_credentials(self):
        gw = self.gw()
        ag = ("apigateway", "get-rest-apis")
        cf = ("cloudfront", "list-invalidations", "--distribution-id", PET_DIST)
        res = self.aws_many(gw, [
            (ag, {"secret": WRONG_SECRET}),
            (cf, {"secret": WRONG_SECRET}),
            (cf + ("--no-sign-request",), {}),
        ])
        self.assertAwsError(res[0], "InvalidSignatureException", "signature")
        self.assertAwsError(res[1], "SignatureDoesNotMatch", "signature")
        self.assertAwsError(res[2], "MissingAuthenticationToken")

    def test_access_denied(self):
        gw = self.gw()
        body = self.prime(gw, "/prod/pets/1")
        reader = {"akid": READER_AKID, "secret": READER_SECRET}
        res = self.aws_many(gw, [
            (("apigateway", "update-stage", "--rest-api-id", "petstore", "--stage-name", "prod",
              "--patch-operations", "op=replace,path=/cacheClusterSize,value=1.6"), reader),
            (("apigateway", "flush-stage-cache", "--rest-api-id", "petstore", "--stage-name",
              "prod"), reader),
            (("cloudfront", "create-invalidation", "--distribution-id", PET_DIST, "--paths",
              "/pets/*"), reader),
            (("cloudfront", "list-invalidations", "--distribution-id", PET_DIST,
              "--no-paginate"), reader),
        ])
        self.assertAwsError(res[0], "AccessDeniedException")
        self.assertAwsError(res[1], "AccessDeniedException")
        self.assertAwsError(res[2], "AccessDenied")
        # the reader's key itself is fine: an allowed call succeeds
        self.assertEqual(self.ok(res[3]).get("InvalidationList", {}).get("Quantity"), 0, res[3])
        # nothing changed
        self.assertHit(self.get(gw, "/prod/pets/1"), body)
        self.assertEqual(self.origin.count("/pets/1"), 1)
        self.assertEqual(self.native_status(gw).get("cacheClusterSize"), "0.5")


if __name__ == "__main__":
    harness.main()
