#!/usr/bin/env python3
"""10 basic: the CLI (version, check) and serve: a MISS then a HIT, SIGTERM."""
import os
import json
import re
import signal
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import GatewayTest, curl, run_cli  # noqa: E402

CONFIG = """
server:
  listen: "127.0.0.1:{port}"
  workers: 1
apis:
  - id: demo
    resources:
      /time:
        GET:
          integration: { type: HTTP_PROXY, uri: "{origin}/time" }
    stages:
      prod:
        cache_cluster_enabled: true
        cache_cluster_size: "0.5"
        method_settings:
          - resource_path: "/*"
            http_method: "*"
            cache_ttl_in_seconds: 300
"""

BAD = """server:
  listen: "127.0.0.1:18080"
  bogus_key: 1
apis:
  - id: a
    resources:
      /x:
        GET:
          integration: { type: HTTP_PROXY, uri: "http://127.0.0.1:9/x" }
    stages:
      prod:
        cache_cluster_enabled: true
        method_settings:
          - resource_path: "/*"
            http_method: "*"
            cache_ttl_in_seconds: 99999
"""


def write(text):
    d = tempfile.mkdtemp(prefix="gatecache-e2e-")
    p = os.path.join(d, "c.yaml")
    with open(p, "w") as f:
        f.write(text)
    return p


class TestCli(GatewayTest):
    def test_version(self):
        p = run_cli("version")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"^gatecache \d+\.\d+\.\d+")

    def test_unknown_verb_is_usage_error(self):
        p = run_cli("frobnicate")
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)

    def test_check_good_config(self):
        path = write(CONFIG.replace("{port}", "18080").replace("{origin}", "http://127.0.0.1:9"))
        p = run_cli("check", "-c", path)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_check_example_config(self):
        p = run_cli("check", "-c", os.path.join(harness.REPO, "examples", "gatecache.yaml"))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_check_bad_config_reports_every_error_with_position(self):
        path = write(BAD)
        p = run_cli("check", "-c", path)
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, 1, out)
        lines = [ln for ln in out.splitlines() if ln.startswith(path + ":")]
        # Every error as FILE:LINE:COL: message.
        for ln in lines:
            self.assertRegex(ln, r"^" + re.escape(path) + r":\d+:\d+: \S")
        self.assertTrue(any(ln.startswith(path + ":3:3:") and "bogus_key" in ln for ln in lines),
                        "unknown key at 3:3 not reported:\n" + out)
        self.assertTrue(any(ln.startswith(path + ":16:") and "cache_ttl_in_seconds" in ln
                            for ln in lines), "TTL out of range at line 16 not reported:\n" + out)
        # printed sorted by position (docs/config.md)
        pos = [tuple(int(x) for x in ln[len(path) + 1:].split(":")[:2]) for ln in lines]
        self.assertEqual(pos, sorted(pos), out)

    def test_check_yaml_syntax_error(self):
        path = write("server:\n  listen: [\"127.0.0.1:1\"\napis: {\n")
        p = run_cli("check", "-c", path)
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, 1, out)
        self.assertRegex(out, re.escape(path) + r":\d+:\d+: ")

    def test_check_missing_file(self):
        p = run_cli("check", "-c", "/nonexistent/gatecache.yaml")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("/nonexistent/gatecache.yaml", p.stdout + p.stderr)

    def test_serve_refuses_bad_config(self):
        path = write(BAD)
        p = run_cli("serve", "-c", path, timeout=20)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn(path + ":3:3:", p.stdout + p.stderr)


class TestServe(GatewayTest):
    def test_miss_then_hit(self):
        gw = self.gateway(CONFIG)
        r1 = curl(gw.url("/prod/time"))
        self.assertEqual(r1.status, 200, r1)
        self.assertCache(r1, "MISS")
        self.assertNotIn("age", r1.headers)
        r2 = curl(gw.url("/prod/time"))
        self.assertEqual(r2.status, 200, r2)
        self.assertCache(r2, "HIT")
        self.assertEqual(r2.body, r1.body)
        self.assertEqual(r2.headers.get("content-type"), r1.headers.get("content-type"))
        self.assertEqual(self.origin.count("/time"), 1)

    def test_dict_config(self):
        gw = self.gateway({
            "server": {"listen": "127.0.0.1:{port}", "workers": 1},
            "apis": [{
                "id": "demo",
                "resources": {
                    "/items/{id}": {"GET": {"integration": {
                        "type": "HTTP_PROXY", "uri": "{origin}/items/{id}"}}},
                },
                "stages": {"prod": {"cache_cluster_enabled": True,
                                    "method_settings": [{"resource_path": "/*",
                                                         "http_method": "*",
                                                         "cache_ttl_in_seconds": 60}]}},
            }],
        })
        r1 = curl(gw.url("/prod/items/7"))
        self.assertEqual(r1.status, 200, r1)
        self.assertEqual(r1.json()["path"], "/items/7")
        self.assertCache(r1, "MISS")
        self.assertCache(curl(gw.url("/prod/items/7")), "HIT")
        self.assertEqual(self.origin.count("/items/7"), 1)

    def test_age_header_grows(self):
        gw = self.gateway(CONFIG)
        curl(gw.url("/prod/time"))
        r = curl(gw.url("/prod/time"))
        self.assertCache(r, "HIT")
        self.assertRegex(r.headers.get("age", ""), r"^\d+$")
        time.sleep(1.2)
        r2 = curl(gw.url("/prod/time"))
        self.assertCache(r2, "HIT")
        self.assertGreaterEqual(int(r2.headers["age"]), 1)
        self.assertEqual(self.origin.count("/time"), 1)

    def test_sigterm_exits_zero(self):
        gw = self.gateway(CONFIG)
        self.assertEqual(curl(gw.url("/prod/time")).status, 200)
        gw.signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        while gw.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(gw.proc.poll(), 0, gw.stderr())
        self.assertFalse(harness.port_open(gw.port))

    def test_sigint_exits_zero(self):
        gw = self.gateway(CONFIG)
        gw.signal(signal.SIGINT)
        deadline = time.monotonic() + 15
        while gw.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(gw.proc.poll(), 0, gw.stderr())

    def test_sigterm_drains_in_flight_request(self):
        gw = self.gateway(CONFIG.replace("      /time:", "      /slow:\n        GET:\n"
                                         "          integration: { type: HTTP_PROXY, uri: "
                                         "\"{origin}/slow?ms=1000\" }\n      /time:"))
        out = {}

        def call():
            out["r"] = harness.http_request(gw.port, "GET", "/prod/slow?ms=1000", timeout=15)

        t = threading.Thread(target=call)
        t.start()
        time.sleep(0.4)
        self.assertEqual(self.origin.count("/slow"), 1)  # in flight now
        gw.signal(signal.SIGTERM)
        t.join(15)
        self.assertIn("r", out, "the in-flight request got no answer")
        self.assertEqual(out["r"].status, 200)
        self.assertEqual(json.loads(out["r"].body)["slow"], True)
        self.assertEqual(gw.proc.wait(15), 0, gw.stderr())

    def test_drain_timeout_bounds_shutdown(self):
        cfg = CONFIG.replace("  workers: 1\n", "  workers: 1\n  limits:\n    drain_timeout_ms: 500\n")
        cfg = cfg.replace("      /time:", "      /slow:\n        GET:\n          integration: "
                          "{ type: HTTP_PROXY, uri: \"{origin}/slow\" }\n      /time:")
        gw = self.gateway(cfg)
        t = threading.Thread(target=lambda: curl(gw.url("/prod/slow?ms=8000"), timeout=15))
        t.start()
        self.addCleanup(t.join, 20)
        time.sleep(0.4)
        t0 = time.monotonic()
        gw.signal(signal.SIGTERM)
        try:
            gw.proc.wait(5)
        except Exception:
            pass
        self.assertIsNotNone(gw.proc.poll(), "still running 5 s after SIGTERM with drain_timeout_ms 500")
        self.assertLess(time.monotonic() - t0, 3.0)
        gw.stop(expect_rc=None)

    def test_signals_right_after_start(self):
        # A supervisor may signal as soon as the port accepts: SIGHUP must
        # reload (not kill) and SIGTERM must drain and exit 0 even then.
        for i in range(5):
            gw = self.gateway(CONFIG)
            gw.signal(signal.SIGHUP)
            time.sleep(0.2)
            self.assertTrue(gw.alive(), "SIGHUP right after start killed gatecache (exit %r)"
                            % gw.proc.poll())
            self.assertEqual(curl(gw.url("/prod/time")).status, 200)
        for i in range(5):
            gw = self.gateway(CONFIG)
            gw.signal(signal.SIGTERM)
            try:
                rc = gw.proc.wait(15)
            except Exception:
                rc = None
            self.assertEqual(rc, 0, "SIGTERM right after start: exit %r" % rc)


if __name__ == "__main__":
    harness.main()
