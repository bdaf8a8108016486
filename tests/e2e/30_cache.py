#!/usr/bin/env python3
"""30 cache: the stage cache as a user sees it — what is cached, for how long,
under which key, what is never stored, coalescing, stale-if-error, client
Cache-Control, reloads and the size bound. Hits and misses are proven by how
many requests reached the origin."""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import GatewayTest, Origin, curl, http_request  # noqa: E402

STATUSES = {"HIT", "MISS", "BYPASS", "REFRESH", "STALE", "EXPIRED"}
WARNING = '199 gatecache "Cache-Control: max-age=0 ignored: not authorized to invalidate the cache"'

BASE = """
server:
  listen: "127.0.0.1:{port}"
  workers: @WORKERS@
apis:
  - id: shop
    resources:
      /users:
        GET:
          integration: { type: HTTP_PROXY, uri: "{origin}/users" }
          cache_key_parameters: ["method.request.querystring.type"]
      /tenant:
        GET:
          integration: { type: HTTP_PROXY, uri: "{origin}/tenant" }
          cache_key_parameters: ["method.request.header.X-Tenant"]
      /authkeyed:
        GET:
          integration: { type: HTTP_PROXY, uri: "{origin}/authkeyed" }
          cache_key_parameters: ["method.request.header.Authorization"]
      /pets/{id}:
        GET:
          integration: { type: HTTP_PROXY, uri: "{origin}/pets/{id}" }
      /p/{proxy+}:
        ANY:
          integration: { type: HTTP_PROXY, uri: "{origin}/{proxy}" }
      /search:
        POST:
          integration: { type: HTTP_PROXY, uri: "{origin}/echo/search" }
          cache_key_parameters: ["method.request.body"]
      /allq/{proxy+}:
        GET:
          integration: { type: HTTP_PROXY, uri: "{origin}/{proxy}" }
          cache_key_parameters: ["method.request.querystring.*"]
@RESOURCES@
    stages:
      nocache:
        cache_cluster_enabled: false
      prod:
        cache_cluster_enabled: true
        cache_cluster_size: "@SIZE@"
        method_settings:
          - resource_path: "/*"
            http_method: "*"
            cache_ttl_in_seconds: @TTL@
          - resource_path: "/search"
            http_method: POST
            caching_enabled: true
@SETTINGS@
"""


def proxy_resource(name, uri="{origin}/{proxy}"):
    return ("      /%s/{proxy+}:\n        ANY:\n"
            "          integration: { type: HTTP_PROXY, uri: \"%s\" }\n" % (name, uri))


def setting(resource_path, method="*", **kw):
    s = "          - resource_path: \"%s\"\n            http_method: \"%s\"\n" % (resource_path, method)
    for k, v in kw.items():
        if isinstance(v, bool):
            v = "true" if v else "false"
        s += "            %s: %s\n" % (k, v)
    return s


def config(resources="", settings="", workers=1, size="0.5", ttl=300):
    return (BASE.replace("@WORKERS@", str(workers)).replace("@SIZE@", size)
            .replace("@TTL@", str(ttl)).replace("@RESOURCES@\n", resources)
            .replace("@SETTINGS@\n", settings))


class CacheTest(GatewayTest):
    def get(self, gw, path, *args):
        return curl(gw.url(path), *args)

    def assertHit(self, resp, body=None):
        self.assertEqual(resp.status, 200, resp)
        self.assertCache(resp, "HIT")
        self.assertRegex(resp.headers.get("age", ""), r"^\d+$", "a HIT without Age: %r" % (resp,))
        if body is not None:
            self.assertEqual(resp.body, body)

    def assertMiss(self, resp):
        self.assertEqual(resp.status, 200, resp)
        self.assertCache(resp, "MISS")


class TestWhatIsCached(CacheTest):
    def test_stage_without_cache_cluster(self):
        gw = self.gateway(config())
        r1 = self.get(gw, "/nocache/p/nc")
        r2 = self.get(gw, "/nocache/p/nc")
        self.assertEqual((r1.status, r2.status), (200, 200))
        self.assertNotIn("x-cache-status", r1.headers)
        self.assertNotIn("x-cache-status", r2.headers)
        self.assertNotEqual(r1.body, r2.body)
        self.assertEqual(self.origin.count("/nc"), 2)

    def test_get_cached_with_identical_answer(self):
        gw = self.gateway(config())
        r1 = self.get(gw, "/prod/p/large/g?bytes=3000")
        self.assertMiss(r1)
        r2 = self.get(gw, "/prod/p/large/g?bytes=3000")
        self.assertHit(r2, r1.body)
        for h in ("content-type", "content-length", "x-n"):
            self.assertEqual(r2.headers.get(h), r1.headers.get(h), h)
        self.assertEqual(self.origin.count("/large/g"), 1)

    def test_hit_is_what_the_origin_sent(self):
        # Apart from hop-by-hop headers, Age and X-Cache-Status, a hit carries
        # the integration's headers and body unchanged (order aside).
        gw = self.gateway(config())
        miss = self.get(gw, "/prod/p/large/same?bytes=777")
        hit = self.get(gw, "/prod/p/large/same?bytes=777")
        self.assertMiss(miss)
        self.assertHit(hit, miss.body)
        drop = {"age", "x-cache-status", "connection", "keep-alive", "transfer-encoding"}
        hs = lambda r: sorted((k.lower(), v) for k, v in r.raw_headers if k.lower() not in drop)  # noqa
        self.assertEqual(hs(hit), hs(miss))
        self.assertEqual(dict(hs(miss)).get("server"), "e2e-origin")
        self.assertEqual(dict(hs(miss)).get("x-n"), "1")

    def test_head_does_not_poison_get(self):
        gw = self.gateway(config())
        c = harness.RawConn(gw.port)
        self.addCleanup(c.close)
        c.send(b"HEAD /prod/p/large/hg?bytes=500 HTTP/1.1\r\nHost: x\r\n\r\n")
        h = c.read_response(head_only=True)
        self.assertEqual(h.status, 200)
        c.send(b"GET /prod/p/large/hg?bytes=500 HTTP/1.1\r\nHost: x\r\n\r\n")
        g = c.read_response()
        self.assertEqual(g.status, 200, g)
        self.assertEqual(len(g.body), 500, "GET after HEAD got a %d-byte body" % len(g.body))
        g2 = self.get(gw, "/prod/p/large/hg?bytes=500")
        self.assertEqual(len(g2.body), 500)
        self.assertEqual(g2.headers.get("x-cache-status"), "HIT", g2)
        # HEAD of a cached GET: headers only, and the connection stays usable
        c.send(b"HEAD /prod/p/large/hg?bytes=500 HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(c.read_response(head_only=True).status, 200)
        c.send(b"GET /prod/p/large/hg?bytes=500 HTTP/1.1\r\nHost: x\r\n\r\n")
        g3 = c.read_response()
        self.assertEqual((g3.status, len(g3.body)), (200, 500), g3)
        self.assertEqual(self.origin.count("/large/hg", "GET"), 1)

    def test_cache_shared_across_workers(self):
        gw = self.gateway(config(workers=4))
        bodies = set()
        for i in range(12):  # a new connection each time: spread over the workers
            r = harness.http_request(gw.port, "GET", "/prod/p/shared4")
            self.assertEqual(r.status, 200)
            bodies.add(r.body)
        self.assertEqual(len(bodies), 1)
        self.assertEqual(self.origin.count("/shared4"), 1)

    def test_post_not_cached_by_default(self):
        gw = self.gateway(config())
        r1 = self.get(gw, "/prod/p/post1", "-X", "POST", "-d", "a")
        r2 = self.get(gw, "/prod/p/post1", "-X", "POST", "-d", "a")
        self.assertEqual((r1.status, r2.status), (200, 200))
        self.assertNotIn("x-cache-status", r1.headers)
        self.assertNotIn("x-cache-status", r2.headers)
        self.assertEqual(self.origin.count("/post1", "POST"), 2)
        # and a POST does not answer from / poison the GET entry
        g1 = self.get(gw, "/prod/p/post1")
        self.assertMiss(g1)
        self.assertEqual(g1.json()["method"], "GET")

    def test_post_cached_when_enabled(self):
        gw = self.gateway(config(settings=setting("/p/{proxy+}", "POST", caching_enabled=True)))
        r1 = self.get(gw, "/prod/p/post2", "-X", "POST", "-d", "a")
        self.assertMiss(r1)
        r2 = self.get(gw, "/prod/p/post2", "-X", "POST", "-d", "a")
        self.assertHit(r2, r1.body)
        self.assertEqual(self.origin.count("/post2", "POST"), 1)
        # GET of the same path is a different entry
        g = self.get(gw, "/prod/p/post2")
        self.assertMiss(g)
        self.assertEqual(g.json()["method"], "GET")

    def test_get_caching_disabled_by_method_setting(self):
        gw = self.gateway(config(settings=setting("/p/{proxy+}", "GET", caching_enabled=False)))
        r1 = self.get(gw, "/prod/p/off")
        r2 = self.get(gw, "/prod/p/off")
        self.assertNotIn("x-cache-status", r2.headers)
        self.assertEqual(self.origin.count("/off"), 2)
        self.assertEqual((r1.status, r2.status), (200, 200))

    def test_ttl_expiry(self):
        gw = self.gateway(config(ttl=1))
        r1 = self.get(gw, "/prod/p/ttl")
        self.assertMiss(r1)
        self.assertHit(self.get(gw, "/prod/p/ttl"), r1.body)
        time.sleep(1.5)
        r3 = self.get(gw, "/prod/p/ttl")
        self.assertEqual(r3.status, 200)
        self.assertIn(r3.headers.get("x-cache-status"), ("MISS", "EXPIRED"), r3)
        self.assertNotEqual(r3.body, r1.body)
        self.assertEqual(self.origin.count("/ttl"), 2)
        self.assertHit(self.get(gw, "/prod/p/ttl"), r3.body)
        self.assertEqual(self.origin.count("/ttl"), 2)

    def test_ttl_zero_not_cached(self):
        gw = self.gateway(config(settings=setting("/p/{proxy+}", "GET", cache_ttl_in_seconds=0)))
        r1 = self.get(gw, "/prod/p/t0")
        r2 = self.get(gw, "/prod/p/t0")
        self.assertEqual((r1.status, r2.status), (200, 200))
        self.assertNotEqual(r2.headers.get("x-cache-status"), "HIT", r2)
        self.assertNotEqual(r1.body, r2.body)
        self.assertEqual(self.origin.count("/t0"), 2)

    def test_non_2xx_not_stored(self):
        gw = self.gateway(config())
        for code in (404, 500, 302):
            p = "/prod/p/status/%d" % code
            r1 = self.get(gw, p)
            r2 = self.get(gw, p)
            self.assertEqual((r1.status, r2.status), (code, code), (r1, r2))
            # every answer of a caching method says what the cache did
            self.assertIn(r1.headers.get("x-cache-status"), STATUSES, r1)
            self.assertNotEqual(r2.headers.get("x-cache-status"), "HIT", r2)
            self.assertEqual(self.origin.count("/status/%d" % code), 2, code)

    def test_answer_over_default_limit_passes_through(self):
        gw = self.gateway(config())
        big, ok = 1048576 + 1000, 1000000
        for _ in range(2):
            r = self.get(gw, "/prod/p/large/big?bytes=%d" % big)
            self.assertEqual((r.status, len(r.body)), (200, big))
            self.assertNotEqual(r.headers.get("x-cache-status"), "HIT")
        self.assertEqual(self.origin.count("/large/big"), 2)
        self.assertMiss(self.get(gw, "/prod/p/large/ok?bytes=%d" % ok))
        r = self.get(gw, "/prod/p/large/ok?bytes=%d" % ok)
        self.assertHit(r)
        self.assertEqual(len(r.body), ok)
        self.assertEqual(self.origin.count("/large/ok"), 1)

    def test_max_cached_response_bytes(self):
        gw = self.gateway(config(settings=setting("/p/{proxy+}", "GET",
                                                  max_cached_response_bytes=2000)))
        r1 = self.get(gw, "/prod/p/large/m?bytes=5000")
        self.assertEqual((r1.status, len(r1.body)), (200, 5000))
        self.assertIn(r1.headers.get("x-cache-status"), ("MISS", "BYPASS"), r1)
        r2 = self.get(gw, "/prod/p/large/m?bytes=5000")
        self.assertIn(r2.headers.get("x-cache-status"), ("MISS", "BYPASS"), r2)
        self.assertEqual(len(r2.body), 5000)
        self.assertEqual(self.origin.count("/large/m"), 2)
        self.get(gw, "/prod/p/large/s?bytes=1500")
        self.assertHit(self.get(gw, "/prod/p/large/s?bytes=1500"))
        self.assertEqual(self.origin.count("/large/s"), 1)


class TestCacheKey(CacheTest):
    def test_seed_example_querystring_type(self):
        gw = self.gateway(config())
        a = self.get(gw, "/prod/users?type=admin&department=A")
        self.assertMiss(a)
        b = self.get(gw, "/prod/users?type=admin&department=B")
        self.assertHit(b, a.body)
        self.assertEqual(b.json()["path"], "/users?type=admin&department=A")
        u = self.get(gw, "/prod/users?type=user")
        self.assertMiss(u)
        self.assertEqual(u.json()["path"], "/users?type=user")
        # an absent parameter is a value of its own
        n = self.get(gw, "/prod/users")
        self.assertMiss(n)
        self.assertHit(self.get(gw, "/prod/users?department=C"), n.body)
        self.assertEqual(self.origin.count("/users"), 3)

    def test_header_key_parameter(self):
        gw = self.gateway(config())
        a = self.get(gw, "/prod/tenant", "-H", "X-Tenant: a")
        self.assertMiss(a)
        self.assertHit(self.get(gw, "/prod/tenant", "-H", "X-Tenant: a"), a.body)
        self.assertHit(self.get(gw, "/prod/tenant", "-H", "x-tenant: a"), a.body)
        b = self.get(gw, "/prod/tenant", "-H", "X-Tenant: b")
        self.assertMiss(b)
        self.assertNotEqual(a.body, b.body)
        n = self.get(gw, "/prod/tenant")
        self.assertMiss(n)
        self.assertHit(self.get(gw, "/prod/tenant"), n.body)
        # headers not named do not split the cache
        self.assertHit(self.get(gw, "/prod/tenant", "-H", "X-Tenant: a", "-H", "X-Other: 1"),
                       a.body)
        self.assertEqual(self.origin.count("/tenant"), 3)

    def test_path_always_keyed(self):
        gw = self.gateway(config())
        p1 = self.get(gw, "/prod/pets/1")
        p2 = self.get(gw, "/prod/pets/2")
        self.assertMiss(p1)
        self.assertMiss(p2)
        self.assertEqual(p1.json()["path"], "/pets/1")
        self.assertEqual(p2.json()["path"], "/pets/2")
        self.assertHit(self.get(gw, "/prod/pets/1"), p1.body)
        self.assertHit(self.get(gw, "/prod/pets/2"), p2.body)
        self.assertEqual(self.origin.count("/pets/1"), 1)
        self.assertEqual(self.origin.count("/pets/2"), 1)

    def test_unnamed_query_does_not_split(self):
        gw = self.gateway(config())
        a = self.get(gw, "/prod/p/q?a=1")
        self.assertMiss(a)
        self.assertHit(self.get(gw, "/prod/p/q?a=2"), a.body)
        self.assertEqual(self.origin.count("/q"), 1)

    def test_body_keyed_post(self):
        gw = self.gateway(config())
        a = self.get(gw, "/prod/search", "-X", "POST", "--data-binary", '{"q":"a"}')
        self.assertMiss(a)
        self.assertEqual(a.json()["body"], '{"q":"a"}')
        self.assertHit(self.get(gw, "/prod/search", "-X", "POST", "--data-binary", '{"q":"a"}'),
                       a.body)
        b = self.get(gw, "/prod/search", "-X", "POST", "--data-binary", '{"q":"b"}')
        self.assertMiss(b)
        self.assertEqual(b.json()["body"], '{"q":"b"}')
        self.assertEqual(self.origin.count("/echo/search", "POST"), 2)

    def test_all_querystrings_keyed(self):
        gw = self.gateway(config())
        a = self.get(gw, "/prod/allq/aq?x=1&y=2")
        self.assertMiss(a)
        self.assertHit(self.get(gw, "/prod/allq/aq?x=1&y=2"), a.body)
        self.assertMiss(self.get(gw, "/prod/allq/aq?x=1&y=3"))
        self.assertMiss(self.get(gw, "/prod/allq/aq?x=1"))
        self.assertEqual(self.origin.count("/aq"), 3)

    def test_method_is_keyed(self):
        gw = self.gateway(config(settings=setting("/p/{proxy+}", "*", caching_enabled=True)))
        g = self.get(gw, "/prod/p/mk")
        d = self.get(gw, "/prod/p/mk", "-X", "DELETE")
        self.assertMiss(g)
        self.assertMiss(d)
        self.assertEqual(d.json()["method"], "DELETE")
        self.assertEqual(self.get(gw, "/prod/p/mk").json()["method"], "GET")


class TestCredentials(CacheTest):
    def test_authorization_bypasses(self):
        gw = self.gateway(config())
        a1 = self.get(gw, "/prod/p/priv", "-H", "Authorization: Bearer alice")
        self.assertEqual(a1.status, 200)
        self.assertCache(a1, "BYPASS")
        a2 = self.get(gw, "/prod/p/priv", "-H", "Authorization: Bearer alice")
        self.assertCache(a2, "BYPASS")
        # nothing of alice's was stored for anonymous clients
        anon = self.get(gw, "/prod/p/priv")
        self.assertMiss(anon)
        self.assertEqual(self.origin.count("/priv"), 3)
        # a cached anonymous answer is not served to a request with credentials
        self.assertHit(self.get(gw, "/prod/p/priv"), anon.body)
        b = self.get(gw, "/prod/p/priv", "-H", "Authorization: Bearer bob")
        self.assertCache(b, "BYPASS")
        self.assertEqual(self.origin.count("/priv"), 4)

    def test_cookie_bypasses(self):
        gw = self.gateway(config())
        c1 = self.get(gw, "/prod/p/cookie", "-H", "Cookie: session=1")
        self.assertCache(c1, "BYPASS")
        anon = self.get(gw, "/prod/p/cookie")
        self.assertMiss(anon)
        c2 = self.get(gw, "/prod/p/cookie", "-H", "Cookie: session=2")
        self.assertCache(c2, "BYPASS")
        self.assertEqual(self.origin.count("/cookie"), 3)

    def test_authorization_keyed(self):
        gw = self.gateway(config())
        a = self.get(gw, "/prod/authkeyed", "-H", "Authorization: Bearer alice")
        self.assertMiss(a)
        self.assertHit(self.get(gw, "/prod/authkeyed", "-H", "Authorization: Bearer alice"), a.body)
        b = self.get(gw, "/prod/authkeyed", "-H", "Authorization: Bearer bob")
        self.assertMiss(b)
        self.assertEqual(self.origin.count("/authkeyed"), 2)

    def test_cache_authorized_requests(self):
        gw = self.gateway(config(settings=setting("/p/{proxy+}", "GET",
                                                  cache_authorized_requests=True)))
        a = self.get(gw, "/prod/p/shared", "-H", "Authorization: Bearer alice")
        self.assertMiss(a)
        self.assertHit(self.get(gw, "/prod/p/shared", "-H", "Authorization: Bearer bob"), a.body)
        self.assertEqual(self.origin.count("/shared"), 1)


class TestOriginCacheControl(CacheTest):
    RES = (proxy_resource("h") + proxy_resource("hmin") + proxy_resource("hmax")
           + proxy_resource("hdef"))
    SET = (setting("/h/{proxy+}", "GET", honor_origin_cache_control=True, min_ttl=0,
                   max_ttl=3600, default_ttl=0)
           + setting("/hmin/{proxy+}", "GET", honor_origin_cache_control=True, min_ttl=60,
                     max_ttl=3600, default_ttl=60)
           + setting("/hmax/{proxy+}", "GET", honor_origin_cache_control=True, min_ttl=0,
                     max_ttl=1, default_ttl=1)
           + setting("/hdef/{proxy+}", "GET", honor_origin_cache_control=True, min_ttl=0,
                     max_ttl=3600, default_ttl=1))

    def twice(self, gw, stage_path, origin_path):
        self.get(gw, stage_path)
        r = self.get(gw, stage_path)
        return r, self.origin.count(origin_path)

    def test_not_stored(self):
        gw = self.gateway(config(self.RES, self.SET))
        for i, h in enumerate(("no-store", "private", "private, max-age=300", "max-age=0",
                               "no-store, max-age=300")):
            q = "/cc/ns%d?h=%s" % (i, h.replace(" ", "%20").replace(",", "%2C").replace("=", "%3D"))
            r, n = self.twice(gw, "/prod/h" + q, "/cc/ns%d" % i)
            self.assertEqual(r.status, 200)
            self.assertNotEqual(r.headers.get("x-cache-status"), "HIT", (h, r))
            self.assertEqual(n, 2, "Cache-Control: %s was stored" % h)
            self.assertEqual(r.headers.get("cache-control"), h)
        # already expired
        r, n = self.twice(gw, "/prod/h/cc/past?expires=-60", "/cc/past")
        self.assertNotEqual(r.headers.get("x-cache-status"), "HIT", r)
        self.assertEqual(n, 2, "an answer with Expires in the past was stored")
        # no freshness information and default_ttl 0: not stored
        r, n = self.twice(gw, "/prod/h/cc/none", "/cc/none")
        self.assertNotEqual(r.headers.get("x-cache-status"), "HIT", r)
        self.assertEqual(n, 2)

    def test_stored_with_origin_ttl_and_clamps(self):
        gw = self.gateway(config(self.RES, self.SET))
        cases = [
            # (stage path, fresh after 1.6 s?)
            ("/prod/h/cc/a?h=max-age%3D1", False),
            ("/prod/h/cc/b?h=max-age%3D1%2C%20s-maxage%3D60", True),   # s-maxage wins
            ("/prod/h/cc/c?expires=300", True),                        # Expires is freshness
            ("/prod/h/cc/c2?h=max-age%3D1&expires=300", False),        # max-age beats Expires
            ("/prod/h/cc/d?h=max-age%3D300", True),
            ("/prod/hmin/cc/e?h=max-age%3D1", True),     # raised to min_ttl 60
            ("/prod/hmax/cc/f?h=max-age%3D300", False),  # lowered to max_ttl 1
            ("/prod/hdef/cc/g", False),                  # no freshness info: default_ttl 1
        ]
        first = {}
        for sp, _ in cases:
            r1 = self.get(gw, sp)
            self.assertMiss(r1)
            self.assertHit(self.get(gw, sp), r1.body)
            first[sp] = r1.body
        time.sleep(1.6)
        for sp, fresh in cases:
            r = self.get(gw, sp)
            self.assertEqual(r.status, 200)
            if fresh:
                self.assertHit(r, first[sp])
            else:
                self.assertNotEqual(r.headers.get("x-cache-status"), "HIT", (sp, r))
                self.assertNotEqual(r.body, first[sp], sp)
        self.assertEqual(self.origin.count(), len(cases) + sum(not f for _, f in cases))


class TestCoalescing(CacheTest):
    def storm(self, workers):
        gw = self.gateway(config(workers=workers))
        path = "/prod/p/slow?ms=800&w=%d" % workers
        results = [None] * 20
        barrier = threading.Barrier(20)

        def one(i):
            barrier.wait(timeout=10)
            try:
                results[i] = http_request(gw.port, "GET", path, timeout=20)
            except Exception as e:  # reported below
                results[i] = e

        ts = [threading.Thread(target=one, args=(i,)) for i in range(20)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        errors = [r for r in results if not hasattr(r, "status")]
        self.assertEqual(errors, [])
        self.assertEqual([r.status for r in results], [200] * 20)
        self.assertEqual(len({r.body for r in results}), 1, "coalesced answers differ")
        self.assertEqual(self.origin.count("/slow"), 1,
                         "20 concurrent misses made %d origin calls" % self.origin.count("/slow"))
        states = sorted(r.headers.get("x-cache-status") for r in results)
        self.assertEqual(states, ["HIT"] * 19 + ["MISS"], states)

    def test_coalescing_one_worker(self):
        self.storm(1)

    def test_coalescing_two_workers(self):
        self.storm(2)


class TestStaleIfError(CacheTest):
    def test_stale_on_5xx_and_unreachable(self):
        o2 = Origin()
        self.addCleanup(o2.stop)
        res = proxy_resource("o2", o2.url + "/{proxy}") + proxy_resource("nostale")
        gw = self.gateway(config(res, setting("/nostale/{proxy+}", "GET",
                                              stale_if_error_seconds=0), ttl=1))
        f1 = self.get(gw, "/prod/p/flaky")
        self.assertMiss(f1)
        self.assertEqual(f1.body, b"v1")
        d1 = self.get(gw, "/prod/o2/down")
        self.assertMiss(d1)
        n1 = self.get(gw, "/prod/nostale/flaky?n")
        self.assertMiss(n1)
        o2.stop()
        time.sleep(1.5)
        # origin answers 500 now: the expired entry is served as STALE
        s = self.get(gw, "/prod/p/flaky")
        self.assertEqual(s.status, 200, s)
        self.assertCache(s, "STALE")
        self.assertEqual(s.body, b"v1")
        self.assertEqual(self.origin.count("/flaky"), 3)
        # origin unreachable: STALE too
        s2 = self.get(gw, "/prod/o2/down")
        self.assertEqual(s2.status, 200, s2)
        self.assertCache(s2, "STALE")
        self.assertEqual(s2.body, d1.body)
        # stale_if_error_seconds: 0 turns it off: the 500 goes through
        e = self.get(gw, "/prod/nostale/flaky?n")
        self.assertEqual(e.status, 500, e)
        self.assertNotEqual(e.headers.get("x-cache-status"), "STALE")


class TestClientCacheControl(CacheTest):
    RES = (proxy_resource("rf") + proxy_resource("r403") + proxy_resource("rwarn")
           + proxy_resource("rsilent") + proxy_resource("rdef"))
    SET = (setting("/rf/{proxy+}", "*", require_authorization_for_cache_control=False)
           + setting("/r403/{proxy+}", "*", require_authorization_for_cache_control=True,
                     unauthorized_cache_control_header_strategy="FAIL_WITH_403")
           + setting("/rwarn/{proxy+}", "*", require_authorization_for_cache_control=True,
                     unauthorized_cache_control_header_strategy="SUCCEED_WITH_RESPONSE_HEADER")
           + setting("/rsilent/{proxy+}", "*", require_authorization_for_cache_control=True,
                     unauthorized_cache_control_header_strategy="SUCCEED_WITHOUT_RESPONSE_HEADER"))

    def prime(self, gw, path):
        r1 = self.get(gw, path)
        self.assertMiss(r1)
        self.assertHit(self.get(gw, path), r1.body)
        return r1

    def test_refresh_when_not_required(self):
        gw = self.gateway(config(self.RES, self.SET))
        r1 = self.prime(gw, "/prod/rf/inv")
        r = self.get(gw, "/prod/rf/inv", "-H", "Cache-Control: max-age=0")
        self.assertEqual(r.status, 200)
        self.assertCache(r, "REFRESH")
        self.assertNotEqual(r.body, r1.body)
        self.assertEqual(self.origin.count("/inv"), 2)
        self.assertHit(self.get(gw, "/prod/rf/inv"), r.body)
        self.assertEqual(self.origin.count("/inv"), 2)

    def test_refresh_with_unstorable_answer_drops_the_entry(self):
        # Query parameters are not keyed: both URLs are one entry. The refresh's
        # answer says no-store, so it cannot replace the entry; the old one
        # must not survive the refresh either (regression).
        res = proxy_resource("rh")
        sets = setting("/rh/{proxy+}", "*", require_authorization_for_cache_control=False,
                       honor_origin_cache_control=True)
        gw = self.gateway(config(res, sets))
        self.prime(gw, "/prod/rh/cc?h=max-age%3D300")
        r = self.get(gw, "/prod/rh/cc?h=no-store", "-H", "Cache-Control: max-age=0")
        self.assertEqual(r.status, 200)
        self.assertCache(r, "REFRESH")
        self.assertEqual(self.origin.count("/cc"), 2)
        self.assertMiss(self.get(gw, "/prod/rh/cc?h=max-age%3D300"))
        self.assertEqual(self.origin.count("/cc"), 3)

    def test_fail_with_403(self):
        gw = self.gateway(config(self.RES, self.SET))
        r1 = self.prime(gw, "/prod/r403/inv")
        r = self.get(gw, "/prod/r403/inv", "-H", "Cache-Control: max-age=0")
        self.assertEqual(r.status, 403, r)
        self.assertTrue(r.headers.get("content-type", "").startswith("application/json"), r)
        self.assertIn("message", r.json())
        self.assertHit(self.get(gw, "/prod/r403/inv"), r1.body)
        self.assertEqual(self.origin.count("/inv"), 1)

    def test_succeed_with_response_header(self):
        gw = self.gateway(config(self.RES, self.SET))
        r1 = self.prime(gw, "/prod/rwarn/inv")
        r = self.get(gw, "/prod/rwarn/inv", "-H", "Cache-Control: max-age=0")
        self.assertHit(r, r1.body)
        self.assertTrue(r.headers.get("warning", "").startswith("199 "), r)
        self.assertEqual(r.headers.get("warning"), WARNING)
        self.assertEqual(self.origin.count("/inv"), 1)

    def test_succeed_without_response_header(self):
        gw = self.gateway(config(self.RES, self.SET))
        r1 = self.prime(gw, "/prod/rsilent/inv")
        r = self.get(gw, "/prod/rsilent/inv", "-H", "Cache-Control: max-age=0")
        self.assertHit(r, r1.body)
        self.assertNotIn("warning", r.headers)
        self.assertEqual(self.origin.count("/inv"), 1)

    def test_defaults_are_required_and_warn(self):
        gw = self.gateway(config(self.RES, self.SET))
        r1 = self.prime(gw, "/prod/rdef/inv")
        r = self.get(gw, "/prod/rdef/inv", "-H", "Cache-Control: max-age=0")
        self.assertHit(r, r1.body)
        self.assertEqual(r.headers.get("warning"), WARNING)
        self.assertEqual(self.origin.count("/inv"), 1)

    def test_warning_on_miss_too(self):
        gw = self.gateway(config(self.RES, self.SET))
        r = self.get(gw, "/prod/rwarn/cold", "-H", "Cache-Control: max-age=0")
        self.assertMiss(r)
        self.assertEqual(r.headers.get("warning"), WARNING)
        self.assertHit(self.get(gw, "/prod/rwarn/cold"), r.body)


class TestReload(CacheTest):
    def test_size_change_wipes_stage(self):
        gw = self.gateway(config(size="0.5"))
        r1 = self.get(gw, "/prod/p/r1")
        self.assertMiss(r1)
        self.assertHit(self.get(gw, "/prod/p/r1"), r1.body)
        gw.reload(config(size="1.6"))
        r = self.get(gw, "/prod/p/r1")
        self.assertMiss(r)
        self.assertNotEqual(r.body, r1.body)
        self.assertEqual(self.origin.count("/r1"), 2)

    def test_unchanged_size_keeps_entries(self):
        gw = self.gateway(config(size="0.5"))
        r1 = self.get(gw, "/prod/p/r2")
        self.assertMiss(r1)
        res = ("      /newmock:\n        GET:\n          integration: { type: MOCK, status: 200, "
               "headers: {content-type: text/plain}, body: \"new\" }\n")
        gw.reload(config(res, size="0.5"))
        self.assertHit(self.get(gw, "/prod/p/r2"), r1.body)
        self.assertEqual(self.origin.count("/r2"), 1)
        # the reloaded config is in effect
        self.assertEqual(self.get(gw, "/prod/newmock").body, b"new")

    def test_broken_config_keeps_old_one(self):
        gw = self.gateway(config())
        r1 = self.get(gw, "/prod/p/r3")
        self.assertMiss(r1)
        gw.reload("server:\n  listen: [\n  bogus: {\n")
        self.assertTrue(gw.alive(), gw.stderr())
        self.assertHit(self.get(gw, "/prod/p/r3"), r1.body)
        gw.reload(config().replace("      /users:", "      /users:\n        bogus_key: 1\n"))
        self.assertTrue(gw.alive(), gw.stderr())
        self.assertHit(self.get(gw, "/prod/p/r3"), r1.body)
        self.assertEqual(self.origin.count("/r3"), 1)

    def test_reload_keeps_connections(self):
        gw = self.gateway(config())
        c = harness.RawConn(gw.port)
        self.addCleanup(c.close)
        c.send(b"GET /prod/p/keep HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(c.read_response().status, 200)
        gw.reload(config())
        c.send(b"GET /prod/p/keep HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers.get("x-cache-status"), "HIT")


class TestCapacity(CacheTest):
    def test_small_cluster_stays_bounded(self):
        gw = self.gateway(config(size="64KiB"))
        n = 30  # 30 x 10 KiB = 300 KiB through a 64 KiB cache
        for i in range(n):
            r = self.get(gw, "/prod/p/large/k%d?bytes=10240" % i)
            self.assertMiss(r)
            self.assertEqual(len(r.body), 10240)
        # the most recent entry is still there ...
        self.assertHit(self.get(gw, "/prod/p/large/k%d?bytes=10240" % (n - 1)))
        # ... the first ones were evicted
        for i in range(3):
            r = self.get(gw, "/prod/p/large/k%d?bytes=10240" % i)
            self.assertEqual(r.status, 200)
            self.assertNotEqual(r.headers.get("x-cache-status"), "HIT", "k%d: %r" % (i, r))
            self.assertEqual(len(r.body), 10240)
            self.assertEqual(self.origin.count("/large/k%d" % i), 2)
        self.assertTrue(gw.alive())


if __name__ == "__main__":
    harness.main()
