#!/usr/bin/env python3
"""40 admin: the admin listener and the CLI verbs against a running gateway —
health, bearer token, stage status, flush, invalidation by exact path,
wildcard and tag, metrics, and the refusal to start an admin listener off
loopback without a token. Hits and misses are proven by origin counts."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import GatewayTest, curl, port_open, run_cli  # noqa: E402

TOKEN = "e2e-admin-token-0123456789"

CONFIG = """
server:
  listen: "127.0.0.1:{port}"
  workers: 2
  admin_listen: "127.0.0.1:{admin_port}"
  admin_token_file: "@TOKEN_FILE@"
apis:
  - id: shop
    resources:
      /pets/{id}:
        GET:
          integration: { type: HTTP_PROXY, uri: "{origin}/pets/{id}" }
      /p/{proxy+}:
        ANY:
          integration: { type: HTTP_PROXY, uri: "{origin}/{proxy}" }
    stages:
      prod:
        cache_cluster_enabled: true
        cache_cluster_size: "64MiB"
      dev:
        cache_cluster_enabled: false
"""


class AdminTest(GatewayTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp, cls.token_file = harness.admin_token_dir("gatecache-e2e-admin-", TOKEN)

    def gw(self, config=None):
        gw = self.gateway((config or CONFIG).replace("@TOKEN_FILE@", self.token_file))
        deadline = time.monotonic() + harness.START_TIMEOUT
        while not port_open(gw.admin_port) and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertTrue(port_open(gw.admin_port), "admin port not open")
        return gw

    def admin(self, gw, method, path, token=TOKEN, body=None):
        return harness.admin_call(gw, method, path, token, body)

    def stage_url(self, stage="prod", what="cache"):
        return "/v1/apis/shop/stages/%s/%s" % (stage, what)

    def get(self, gw, path):
        return curl(gw.url(path))

    def cli(self, gw, *args, token=TOKEN):
        extra = ["--admin", "http://127.0.0.1:%d" % gw.admin_port]
        if token is not None:
            extra += ["--token", token]
        return run_cli(*(list(args) + extra))


class TestAuth(AdminTest):
    def test_healthz_open(self):
        gw = self.gw()
        r = self.admin(gw, "GET", "/healthz", token=None)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"status": "ok"})
        self.assertTrue(r.headers.get("content-type", "").startswith("application/json"))

    def test_missing_token_401(self):
        gw = self.gw()
        r = self.admin(gw, "GET", self.stage_url(), token=None)
        self.assertJsonError(r, 401, "missing bearer token")
        self.assertTrue(r.headers.get("www-authenticate", "").startswith("Bearer"), r)
        r = self.admin(gw, "GET", "/metrics", token=None)
        self.assertEqual(r.status, 401, r)

    def test_wrong_token_403(self):
        gw = self.gw()
        r = self.admin(gw, "DELETE", self.stage_url(), token="not-the-token")
        self.assertJsonError(r, 403, "invalid token")
        self.assertNotIn(TOKEN, r.text)
        self.assertNotIn(TOKEN, gw.stderr())

    def test_errors(self):
        gw = self.gw()
        self.assertJsonError(self.admin(gw, "GET", "/v1/apis/nope/stages/prod/cache"), 404,
                             "no such api")
        self.assertJsonError(self.admin(gw, "GET", self.stage_url("nope")), 404, "no such stage")
        r = self.admin(gw, "PUT", self.stage_url())
        self.assertJsonError(r, 405, "method not allowed")
        self.assertEqual(r.headers.get("allow"), "GET, HEAD, DELETE")
        r = self.admin(gw, "POST", self.stage_url(what="invalidations"), body="{nope")
        self.assertJsonError(r, 400, "request body is not valid JSON")
        r = self.admin(gw, "POST", self.stage_url(what="invalidations"),
                       body='{"paths": ["/a*b"]}')
        self.assertJsonError(r, 400, "paths: '*' is only allowed at the end of a path")


class TestCacheApi(AdminTest):
    def status(self, gw, stage="prod"):
        r = self.admin(gw, "GET", self.stage_url(stage))
        self.assertEqual(r.status, 200, r)
        return r.json()

    def test_status_after_miss_and_hit(self):
        gw = self.gw()
        self.assertEqual(self.get(gw, "/prod/pets/1").headers.get("x-cache-status"), "MISS")
        self.assertEqual(self.get(gw, "/prod/pets/1").headers.get("x-cache-status"), "HIT")
        doc = self.status(gw)
        self.assertEqual(doc["api"], "shop")
        self.assertEqual(doc["stage"], "prod")
        self.assertIs(doc["cacheClusterEnabled"], True)
        self.assertEqual(doc["cacheClusterSize"], "64MiB")
        self.assertEqual(doc["status"], "AVAILABLE")
        self.assertEqual((doc["hits"], doc["misses"], doc["entries"]), (1, 1, 1), doc)
        self.assertEqual(doc["capacityBytes"], 64 * 1024 * 1024)
        self.assertGreater(doc["bytes"], 0)
        self.assertEqual(self.status(gw, "dev")["status"], "NOT_AVAILABLE")

    def test_flush(self):
        gw = self.gw()
        self.get(gw, "/prod/pets/1")
        self.assertEqual(self.get(gw, "/prod/pets/1").headers.get("x-cache-status"), "HIT")
        gen = self.status(gw)["generation"]
        r = self.admin(gw, "DELETE", self.stage_url())
        self.assertEqual(r.status, 202, r)
        self.assertEqual(r.json(), {"flushed": True, "generation": gen + 1})
        self.assertEqual(self.status(gw)["entries"], 0)
        self.assertEqual(self.get(gw, "/prod/pets/1").headers.get("x-cache-status"), "MISS")
        self.assertEqual(self.origin.count("/pets/1"), 2)

    def test_flushes_are_rate_limited(self):
        # limits.invalidations_per_second: a client cannot flush in a loop.
        cfg = CONFIG.replace("  workers: 2\n", "  workers: 2\n  limits: "
                             "{ invalidations_per_second: 1, invalidation_burst: 3 }\n")
        gw = self.gw(cfg)
        codes = [self.admin(gw, "DELETE", self.stage_url()).status for _ in range(5)]
        self.assertEqual(codes[:3], [202, 202, 202], codes)
        self.assertIn(429, codes[3:], codes)
        r = self.admin(gw, "POST", self.stage_url(what="invalidations"),
                       body=json.dumps({"paths": ["/pets/1"]}))
        self.assertEqual(r.status, 429, r)
        self.assertIn("too many invalidations", r.json()["message"])
        with open(gw.stderr_path) as f:
            self.assertIn("refused: over 1 invalidations per second", f.read())
        time.sleep(1.2)  # one token a second comes back
        self.assertEqual(self.admin(gw, "DELETE", self.stage_url()).status, 202)
        # Another stage has its own bucket.
        self.assertNotEqual(self.admin(gw, "DELETE", self.stage_url("dev")).status, 429)

    def invalidate(self, gw, doc):
        r = self.admin(gw, "POST", self.stage_url(what="invalidations"), body=json.dumps(doc))
        self.assertEqual(r.status, 201, r)
        out = r.json()
        self.assertEqual(out["status"], "Completed")
        self.assertRegex(out["id"], r"^I[0-9A-Z]{13}$")
        return out

    def test_invalidate_exact_path(self):
        gw = self.gw()
        for p in ("/prod/pets/1", "/prod/pets/2"):
            self.get(gw, p)
        out = self.invalidate(gw, {"paths": ["/pets/1"]})
        self.assertEqual((out["paths"], out["tags"], out["invalidated"]), (1, 0, 1))
        self.assertEqual(self.get(gw, "/prod/pets/1").headers.get("x-cache-status"), "MISS")
        self.assertEqual(self.get(gw, "/prod/pets/2").headers.get("x-cache-status"), "HIT")
        self.assertEqual(self.origin.count("/pets/1"), 2)
        self.assertEqual(self.origin.count("/pets/2"), 1)

    def test_invalidate_wildcard(self):
        gw = self.gw()
        for p in ("/prod/pets/1", "/prod/pets/2", "/prod/p/other"):
            self.get(gw, p)
        out = self.invalidate(gw, {"paths": ["/pets/*"]})
        self.assertEqual(out["invalidated"], 2)
        self.assertEqual(self.get(gw, "/prod/pets/2").headers.get("x-cache-status"), "MISS")
        self.assertEqual(self.get(gw, "/prod/p/other").headers.get("x-cache-status"), "HIT")
        out = self.invalidate(gw, {"paths": ["/*"]})
        self.assertEqual(out["invalidated"], 2)  # /pets/2 (fetched again) and /p/other
        self.assertEqual(self.get(gw, "/prod/p/other").headers.get("x-cache-status"), "MISS")

    def test_invalidate_tag(self):
        gw = self.gw()
        r = self.get(gw, "/prod/p/tagged?tags=a,b")
        self.assertEqual(r.headers.get("x-cache-status"), "MISS")
        self.get(gw, "/prod/pets/1")
        out = self.invalidate(gw, {"tags": ["b"]})
        self.assertEqual((out["paths"], out["tags"], out["invalidated"]), (0, 1, 1))
        self.assertEqual(self.get(gw, "/prod/p/tagged?tags=a,b").headers.get("x-cache-status"),
                         "MISS")
        self.assertEqual(self.get(gw, "/prod/pets/1").headers.get("x-cache-status"), "HIT")
        self.assertEqual(self.origin.count("/tagged"), 2)

    def test_metrics(self):
        gw = self.gw()
        self.get(gw, "/prod/pets/1")
        self.get(gw, "/prod/pets/1")
        self.admin(gw, "DELETE", self.stage_url())
        r = self.admin(gw, "GET", "/metrics")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers.get("content-type", "").startswith("text/plain; version=0.0.4"))
        text = r.text
        route = 'api="shop",stage="prod",resource="/pets/{id}",method="GET"'
        for line in ('gatecache_cache_hits_total{%s} 1' % route,
                     'gatecache_cache_misses_total{%s} 1' % route,
                     'gatecache_cache_entries{api="shop",stage="prod"} 0',
                     'gatecache_cache_capacity_bytes{api="shop",stage="prod"} 67108864',
                     'gatecache_cache_invalidations_total{api="shop",stage="prod",'
                     'reason="flush"} 1',
                     "# TYPE gatecache_cache_evictions_total counter",
                     "# HELP gatecache_cache_bytes "):
            self.assertIn(line, text)


class TestCli(AdminTest):
    def test_flush_status_invalidate_stats(self):
        gw = self.gw()
        self.get(gw, "/prod/pets/1")
        self.get(gw, "/prod/pets/1")
        p = self.cli(gw, "status", "--api", "shop", "--stage", "prod")
        self.assertEqual(p.returncode, 0, p.stderr)
        doc = json.loads(p.stdout)
        self.assertEqual((doc["hits"], doc["misses"], doc["entries"]), (1, 1, 1))

        p = self.cli(gw, "invalidate", "--api", "shop", "--stage", "prod", "--path", "/pets/*",
                     "--tag", "zz")
        self.assertEqual(p.returncode, 0, p.stderr)
        doc = json.loads(p.stdout)
        self.assertEqual((doc["paths"], doc["tags"], doc["invalidated"]), (1, 1, 1))
        self.assertEqual(self.get(gw, "/prod/pets/1").headers.get("x-cache-status"), "MISS")

        p = self.cli(gw, "flush", "--api", "shop", "--stage", "prod")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIs(json.loads(p.stdout)["flushed"], True)
        self.assertEqual(self.get(gw, "/prod/pets/1").headers.get("x-cache-status"), "MISS")
        self.assertEqual(self.origin.count("/pets/1"), 3)

        p = self.cli(gw, "stats")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('gatecache_cache_misses_total{api="shop",stage="prod",'
                      'resource="/pets/{id}",method="GET"} 3', p.stdout)

    def test_config_file_and_env_token(self):
        gw = self.gw()
        # -c FILE gives both the admin address and the token file.
        p = run_cli("status", "-c", gw.config_path, "--api", "shop", "--stage", "dev")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["status"], "NOT_AVAILABLE")
        p = run_cli("status", "--admin", "http://127.0.0.1:%d" % gw.admin_port, "--api", "shop",
                    "--stage", "dev", env={"GATECACHE_ADMIN_TOKEN": TOKEN})
        self.assertEqual(p.returncode, 0, p.stderr)
        p = run_cli("status", "--admin", "http://127.0.0.1:%d" % gw.admin_port, "--token-file",
                    self.token_file, "--api", "shop", "--stage", "dev")
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_errors(self):
        gw = self.gw()
        p = self.cli(gw, "flush", "--api", "shop", "--stage", "prod", token="wrong")
        self.assertEqual(p.returncode, 1)
        self.assertIn("HTTP 403: invalid token", p.stderr)
        self.assertNotIn("wrong", p.stderr)
        p = self.cli(gw, "status", "--api", "shop", "--stage", "nope")
        self.assertEqual(p.returncode, 1)
        self.assertIn("no such stage", p.stderr)
        p = self.cli(gw, "flush", "--api", "shop")
        self.assertEqual(p.returncode, 2)
        p = self.cli(gw, "invalidate", "--api", "shop", "--stage", "prod")
        self.assertEqual(p.returncode, 2)
        p = run_cli("stats", "--admin", "http://127.0.0.1:%d" % harness.free_port())
        self.assertEqual(p.returncode, 1)


class TestStartup(AdminTest):
    def test_non_loopback_without_token_refused(self):
        cfg = CONFIG.replace('"127.0.0.1:{admin_port}"', '"0.0.0.0:{admin_port}"') \
                    .replace('  admin_token_file: "@TOKEN_FILE@"\n', "")
        gw = harness.Gateway(cfg, origin=self.origin, start=False)
        self.addCleanup(gw.stop, check=False)
        p = run_cli("serve", "-c", gw.config_path, timeout=20)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("admin_token_file is required", p.stderr)
        self.assertFalse(port_open(gw.port))

    def test_empty_token_file_refused(self):
        empty = os.path.join(self.tmp, "empty-token")
        with open(empty, "w") as f:
            f.write("\n")
        gw = harness.Gateway(CONFIG.replace("@TOKEN_FILE@", empty), origin=self.origin,
                             start=False)
        self.addCleanup(gw.stop, check=False)
        p = run_cli("serve", "-c", gw.config_path, timeout=20)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("admin_token_file is empty", p.stderr)


if __name__ == "__main__":
    harness.main()
