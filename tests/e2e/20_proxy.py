#!/usr/bin/env python3
"""20 proxy: what HTTP_PROXY and MOCK integrations forward and answer, routing,
error answers, streaming and large bodies."""
import hashlib
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import GatewayTest, RawConn, curl, free_port  # noqa: E402

CONFIG = """
server:
  listen: "127.0.0.1:{port}"
  workers: 1
apis:
  - id: shop
    resources:
      /echo:
        ANY:
          integration: { type: HTTP_PROXY, uri: "{origin}/echo" }
      /items/{id}:
        GET:
          integration: { type: HTTP_PROXY, uri: "{origin}/echo/items/{id}" }
      /users/{uid}/orders/{oid}:
        GET:
          integration: { type: HTTP_PROXY, uri: "{origin}/echo/u/{uid}/o/{oid}" }
      /files/{proxy+}:
        ANY:
          integration: { type: HTTP_PROXY, uri: "{origin}/echo/files/{proxy}" }
      /p/{proxy+}:
        ANY:
          integration: { type: HTTP_PROXY, uri: "{origin}/{proxy}" }
      /t/{proxy+}:
        ANY:
          integration: { type: HTTP_PROXY, uri: "{origin}/{proxy}", timeout_ms: 300 }
      /down:
        GET:
          integration: { type: HTTP_PROXY, uri: "http://127.0.0.1:{deadport}/x" }
      /route/literal:
        GET:
          integration: { type: MOCK, status: 200, headers: {content-type: text/plain}, body: "literal" }
      /route/{p}:
        GET:
          integration: { type: MOCK, status: 200, headers: {content-type: text/plain}, body: "param" }
      /route/{rest+}:
        GET:
          integration: { type: MOCK, status: 200, headers: {content-type: text/plain}, body: "greedy" }
      /m:
        GET:
          integration: { type: MOCK, status: 200, headers: {content-type: text/plain}, body: "get" }
        ANY:
          integration: { type: MOCK, status: 200, headers: {content-type: text/plain}, body: "any" }
      /health:
        GET:
          integration: { type: MOCK, status: 200, headers: {content-type: application/json}, body: '{"ok":true}' }
      /teapot:
        GET:
          integration: { type: MOCK, status: 418, headers: {x-mock: "yes"}, body: "short and stout" }
    stages:
      dev:
        cache_cluster_enabled: false
      prod:
        cache_cluster_enabled: true
        cache_cluster_size: "0.5"
"""


class ProxyTest(GatewayTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.deadport = free_port()  # nothing listens there

    def gw(self, extra=""):
        cfg = CONFIG.replace("{deadport}", str(self.deadport))
        if extra:
            cfg = cfg.replace("  workers: 1\n", "  workers: 1\n" + extra)
        return self.gateway(cfg)

    def echo_of(self, resp):
        self.assertEqual(resp.status, 200, resp)
        return resp.json()


class TestForwarding(ProxyTest):
    def test_method_path_query_body(self):
        gw = self.gw()
        r = curl(gw.url("/dev/echo?a=1&b=x%20y&a=2"), "-X", "POST", "--data-binary", "hello body",
                 "-H", "Content-Type: text/plain")
        e = self.echo_of(r)
        self.assertEqual(e["method"], "POST")
        self.assertEqual(e["path"], "/echo")
        self.assertEqual(e["query"], "a=1&b=x%20y&a=2")
        self.assertEqual(e["body"], "hello body")
        self.assertEqual(e["headers"].get("content-type"), "text/plain")
        self.assertEqual(self.origin.count("/echo", "POST"), 1)

    def test_methods_via_any(self):
        gw = self.gw()
        for m in ("GET", "PUT", "DELETE", "PATCH", "OPTIONS"):
            r = curl(gw.url("/dev/echo"), "-X", m)
            self.assertEqual(self.echo_of(r)["method"], m)

    def test_param_substitution(self):
        gw = self.gw()
        e = self.echo_of(curl(gw.url("/dev/items/42?x=1")))
        self.assertEqual(e["path"], "/echo/items/42")
        self.assertEqual(e["query"], "x=1")
        e = self.echo_of(curl(gw.url("/dev/users/alice/orders/7")))
        self.assertEqual(e["path"], "/echo/u/alice/o/7")

    def test_greedy_substitution(self):
        gw = self.gw()
        e = self.echo_of(curl(gw.url("/dev/files/a/b/c.txt?v=2")))
        self.assertEqual(e["path"], "/echo/files/a/b/c.txt")
        self.assertEqual(e["query"], "v=2")
        e = self.echo_of(curl(gw.url("/dev/files/one"), "-X", "PUT", "--data-binary", "x"))
        self.assertEqual((e["method"], e["path"], e["body"]), ("PUT", "/echo/files/one", "x"))

    def test_end_to_end_headers_forwarded_hop_by_hop_dropped(self):
        gw = self.gw()
        r = curl(gw.url("/dev/echo"),
                 "-H", "X-End: kept",
                 "-H", "Accept: application/x-test",
                 "-H", "Connection: X-Client-Hop",
                 "-H", "X-Client-Hop: must-not-pass",
                 "-H", "Keep-Alive: timeout=5",
                 "-H", "TE: trailers",
                 "-H", "Proxy-Authorization: Basic Zm9vOmJhcg==")
        h = self.echo_of(r)["headers"]
        self.assertEqual(h.get("x-end"), "kept")
        self.assertEqual(h.get("accept"), "application/x-test")
        for gone in ("x-client-hop", "keep-alive", "te", "proxy-authorization"):
            self.assertNotIn(gone, h, "hop-by-hop header %r reached the origin" % gone)
        self.assertNotIn("x-client-hop", (h.get("connection") or "").lower())

    def test_forwarded_for_and_proto(self):
        gw = self.gw()
        h = self.echo_of(curl(gw.url("/dev/echo")))["headers"]
        self.assertEqual(h.get("x-forwarded-for"), "127.0.0.1")
        self.assertEqual(h.get("x-forwarded-proto"), "http")
        h = self.echo_of(curl(gw.url("/dev/echo"), "-H", "X-Forwarded-For: 10.1.2.3"))["headers"]
        self.assertEqual([x.strip() for x in h.get("x-forwarded-for", "").split(",")],
                         ["10.1.2.3", "127.0.0.1"])

    def test_response_hop_by_hop_dropped(self):
        gw = self.gw()
        r = curl(gw.url("/dev/p/hop"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("x-origin-end"), "kept")
        for gone in ("x-origin-hop", "keep-alive", "proxy-authenticate"):
            self.assertNotIn(gone, r.headers, "hop-by-hop header %r reached the client" % gone)
        self.assertNotIn("x-origin-hop", r.headers.get("connection", "").lower())

    def test_response_status_and_headers_passed_through(self):
        gw = self.gw()
        r = curl(gw.url("/dev/p/status/404"))
        self.assertEqual(r.status, 404)
        self.assertEqual(r.json(), {"status": 404, "n": 1})
        self.assertNotIn("x-cache-status", r.headers)  # dev: no cache
        r = curl(gw.url("/dev/p/tagged?tags=a,b"))
        self.assertEqual(r.headers.get("cache-tag"), "a,b")

    def test_upstream_connections_reused(self):
        gw = self.gw()
        for i in range(5):
            self.assertEqual(curl(gw.url("/dev/p/reuse?i=%d" % i)).status, 200)
        peers = {r["peer"] for r in self.origin.requests() if r["path"].startswith("/reuse")}
        self.assertLess(len(peers), 5, "every request opened a new upstream connection")


class TestMockAndErrors(ProxyTest):
    def test_mock(self):
        gw = self.gw()
        r = curl(gw.url("/dev/health"))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers.get("content-type"), "application/json")
        self.assertEqual(r.json(), {"ok": True})
        r = curl(gw.url("/dev/teapot"))
        self.assertEqual((r.status, r.body), (418, b"short and stout"))
        self.assertEqual(r.headers.get("x-mock"), "yes")
        self.assertEqual(self.origin.count(), 0)

    def test_unknown_resource_403(self):
        gw = self.gw()
        r = curl(gw.url("/dev/no/such/thing"))
        self.assertJsonError(r, 403, "Missing Authentication Token")
        self.assertEqual(r.headers.get("x-amzn-errortype"), "MissingAuthenticationTokenException")
        self.assertEqual(self.origin.count(), 0)

    def test_unknown_method_403(self):
        gw = self.gw()
        r = curl(gw.url("/dev/items/1"), "-X", "DELETE")
        self.assertJsonError(r, 403, "Missing Authentication Token")
        self.assertEqual(r.headers.get("x-amzn-errortype"), "MissingAuthenticationTokenException")

    def test_unknown_stage_403(self):
        gw = self.gw()
        self.assertJsonError(curl(gw.url("/nostage/echo")), 403, "Forbidden")
        self.assertJsonError(curl(gw.url("/")), 403, "Forbidden")
        self.assertEqual(self.origin.count(), 0)

    def test_unreachable_502(self):
        gw = self.gw()
        r = curl(gw.url("/dev/down"))
        self.assertJsonError(r, 502, "Internal server error")
        r = curl(gw.url("/prod/down"))
        self.assertJsonError(r, 502, "Internal server error")
        self.assertTrue(gw.alive())

    def test_timeout_504(self):
        gw = self.gw()
        t0 = time.monotonic()
        r = curl(gw.url("/dev/t/slow?ms=3000"))
        took = time.monotonic() - t0
        self.assertJsonError(r, 504, "Endpoint request timed out")
        self.assertLess(took, 2.5, "the 300 ms integration timeout was not applied")
        # the next request on a fast path still works
        self.assertEqual(curl(gw.url("/dev/t/fast")).status, 200)

    def test_errors_of_a_caching_method_carry_cache_status(self):
        # X-Cache-Status is on every answer of a method whose caching is on,
        # the gateway's own 502/504 included (nothing was served from the cache).
        gw = self.gw()
        for path, code in (("/prod/down", 502), ("/prod/t/slow?ms=2000", 504),
                           ("/prod/p/garbage", 502), ("/prod/p/status/503", 503)):
            r = curl(gw.url(path))
            self.assertEqual(r.status, code, r)
            self.assertIn(r.headers.get("x-cache-status"),
                          ("MISS", "BYPASS", "EXPIRED"), "%s: %r" % (path, r))
        # no method matched: no caching method, no header
        r = curl(gw.url("/prod/nothing"))
        self.assertEqual(r.status, 403)
        self.assertNotIn("x-cache-status", r.headers)

    def test_garbage_upstream_502(self):
        gw = self.gw()
        r = curl(gw.url("/dev/p/garbage"))
        self.assertEqual(r.status, 502, r)
        self.assertIn("message", r.json())
        self.assertTrue(gw.alive())

    def test_upstream_closes_mid_body(self):
        gw = self.gw()
        r = curl(gw.url("/prod/p/close-mid-body"))
        # The client must not take the 10 bytes for the whole answer: either a
        # 502, or the 200 whose connection closes short of its Content-Length
        # (curl exit 18, "transfer closed with bytes remaining").
        self.assertTrue(r.status == 502 or (r.status == 200 and r.rc == 18), r)
        # ... and the truncated answer is not cached
        curl(gw.url("/prod/p/close-mid-body"))
        self.assertEqual(self.origin.count("/close-mid-body"), 2)
        self.assertTrue(gw.alive())


class TestRouting(ProxyTest):
    def test_literal_before_param_before_greedy(self):
        gw = self.gw()
        self.assertEqual(curl(gw.url("/dev/route/literal")).body, b"literal")
        self.assertEqual(curl(gw.url("/dev/route/other")).body, b"param")
        self.assertEqual(curl(gw.url("/dev/route/a/b")).body, b"greedy")
        self.assertEqual(curl(gw.url("/dev/route/literal/x")).body, b"greedy")

    def test_method_before_any(self):
        gw = self.gw()
        self.assertEqual(curl(gw.url("/dev/m")).body, b"get")
        self.assertEqual(curl(gw.url("/dev/m"), "-X", "DELETE").body, b"any")
        self.assertEqual(curl(gw.url("/dev/m"), "-X", "POST", "-d", "x").body, b"any")

    def test_base_path_mapping_at_root(self):
        gw = self.gw('  base_path_mappings:\n    - { base_path: "", api: shop, stage: dev }\n')
        e = self.echo_of(curl(gw.url("/echo?z=9")))
        self.assertEqual((e["path"], e["query"]), ("/echo", "z=9"))
        e = self.echo_of(curl(gw.url("/items/5")))
        self.assertEqual(e["path"], "/echo/items/5")
        self.assertEqual(curl(gw.url("/health")).json(), {"ok": True})

    def test_base_path_mapping_named(self):
        gw = self.gw('  base_path_mappings:\n    - { base_path: "v1", api: shop, stage: prod }\n')
        r1 = curl(gw.url("/v1/p/mapped"))
        self.assertEqual(r1.status, 200, r1)
        self.assertCache(r1, "MISS")
        r2 = curl(gw.url("/v1/p/mapped"))
        self.assertCache(r2, "HIT")
        self.assertEqual(r1.body, r2.body)
        self.assertEqual(self.origin.count("/mapped"), 1)


class TestStreamingAndSizes(ProxyTest):
    def test_chunked_answer_complete(self):
        gw = self.gw()
        for stage in ("dev", "prod"):
            r = curl(gw.url("/%s/p/chunked?parts=5" % stage))
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.body, b"".join(b"part-%d\n" % i for i in range(5)))
        r = curl(gw.url("/prod/p/chunked?parts=5"))
        self.assertCache(r, "HIT")
        self.assertEqual(r.body, b"".join(b"part-%d\n" % i for i in range(5)))
        self.assertEqual(self.origin.count("/chunked", "GET"), 2)

    def test_chunked_answer_streamed(self):
        gw = self.gw()
        c = RawConn(gw.port)
        self.addCleanup(c.close)
        t0 = time.monotonic()
        c.send(b"GET /dev/p/chunked?parts=3&delay_ms=800 HTTP/1.1\r\nHost: x\r\n\r\n")
        c.s.settimeout(5)
        first = b""
        while b"part-0" not in first and time.monotonic() - t0 < 5:
            d = c.s.recv(65536)
            if not d:
                break
            first += d
        t_first = time.monotonic() - t0
        self.assertIn(b"part-0", first)
        self.assertLess(t_first, 1.2, "first chunk arrived only after %.2f s: not streamed" % t_first)
        c.buf = first
        r = c.read_response(timeout=5)
        self.assertEqual(r.body, b"part-0\npart-1\npart-2\n")
        self.assertGreater(time.monotonic() - t0, 1.4)

    def test_large_download(self):
        gw = self.gw()
        n = 5 * 1024 * 1024
        r = curl(gw.url("/dev/p/large?bytes=%d" % n))
        self.assertEqual(r.status, 200)
        self.assertEqual(len(r.body), n)
        self.assertEqual(hashlib.sha256(r.body).hexdigest(),
                         hashlib.sha256(harness_pattern(n)).hexdigest())

    def test_large_upload(self):
        gw = self.gw()
        body = os.urandom(3 * 1024 * 1024)
        path = os.path.join(gw.dir, "upload.bin")
        with open(path, "wb") as f:
            f.write(body)
        r = curl(gw.url("/dev/p/sink"), "-X", "POST", "--data-binary", "@" + path,
                 "-H", "Content-Type: application/octet-stream")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["length"], len(body))
        self.assertEqual(r.json()["sha256"], hashlib.sha256(body).hexdigest())


def harness_pattern(n):
    unit = b"0123456789abcdefghijklmnopqrstuvwxyz\n"
    return (unit * (n // len(unit) + 1))[:n]


if __name__ == "__main__":
    harness.main()
