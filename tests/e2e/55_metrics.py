#!/usr/bin/env python3
"""55 metrics: GET /metrics after a known sequence of requests — 2 MISS,
3 HIT, 1 BYPASS, a 403 that matches no route, a 502 (unreachable
integration), an authorised Cache-Control: max-age=0 refresh, a
write-triggered invalidation and an admin flush — checks every counter's
exact value, parses the whole output with a strict Prometheus text-format
parser (prometheus.py), and checks that a SIGHUP reload does not reset counters."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import GatewayTest, curl, free_port, port_open  # noqa: E402
from prometheus import ParseError, parse_prometheus, series  # noqa: E402,F401

TOKEN = "e2e-metrics-token-5b7c9d"

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
      /items/{id}:
        PUT:
          integration: { type: HTTP_PROXY, uri: "{origin}/items/{id}" }
          invalidates: ["GET /pets/{id}"]
      /down:
        GET:
          integration: { type: HTTP_PROXY, uri: "http://127.0.0.1:@DEADPORT@/x" }
@EXTRA@
    stages:
      prod:
        cache_cluster_enabled: true
        cache_cluster_size: "64MiB"
        method_settings:
          - resource_path: "/*"
            http_method: "*"
            require_authorization_for_cache_control: false
"""

EXTRA_AFTER_RELOAD = """      /new:
        GET:
          integration: { type: MOCK, status: 200, body: "new" }
"""

# ---------------------------------------------------------------- the parser

class TestParser(GatewayTest):
    """The parser itself must refuse what it claims to refuse."""

    GOOD = ('# HELP a_total x \\\\ y\n# TYPE a_total counter\na_total{l="q\\"\\n\\\\"} 1\n'
            '# HELP h h\n# TYPE h histogram\nh_bucket{le="0.5"} 1\nh_bucket{le="+Inf"} 2\n'
            'h_sum 0.7\nh_count 2\n')

    def test_good(self):
        fams = parse_prometheus(self.GOOD)
        self.assertEqual(fams["a_total"]["samples"][0][1], {"l": 'q"\n\\'})

    def test_bad(self):
        bad = [
            self.GOOD.replace("a_total{", "a_total {"),                    # space before {
            self.GOOD.replace('l="q', 'l="\\tq'),                         # bad escape
            self.GOOD.replace('h_bucket{le="+Inf"} 2\n', ""),             # no +Inf
            self.GOOD.replace('h_bucket{le="+Inf"} 2', 'h_bucket{le="+Inf"} 0'),
            self.GOOD.replace("h_count 2", "h_count 3"),
            self.GOOD + 'a_total{l="q\\"\\n\\\\"} 1\n',                   # duplicate / split
            self.GOOD.replace("# TYPE a_total counter\n", ""),
            self.GOOD.replace("1\n# HELP h", "1\n\n# HELP h"),
            self.GOOD.replace("a_total{l", "1a{l"),
            self.GOOD.replace("h_sum 0.7", "h_sum abc"),
            self.GOOD.replace('{l="q', '{l="q",l="r'),
        ]
        for text in bad:
            with self.assertRaises(ParseError, msg=text):
                parse_prometheus(text)


# ---------------------------------------------------------------- the gateway


ROUTES = {
    "pets": dict(api="shop", stage="prod", resource="/pets/{id}", method="GET"),
    "items": dict(api="shop", stage="prod", resource="/items/{id}", method="PUT"),
    "down": dict(api="shop", stage="prod", resource="/down", method="GET"),
    "none": dict(api="", stage="", resource="", method=""),
}
STAGE = dict(api="shop", stage="prod")


class TestMetrics(GatewayTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp, cls.token_file = harness.admin_token_dir("gatecache-e2e-metrics-", TOKEN)
        cls.deadport = free_port()  # nothing listens there: connection refused

    def config(self, extra=""):
        return (CONFIG.replace("@TOKEN_FILE@", self.token_file)
                .replace("@DEADPORT@", str(self.deadport)).replace("@EXTRA@\n", extra))

    def gw(self):
        gw = self.gateway(self.config())
        deadline = time.monotonic() + harness.START_TIMEOUT
        while not port_open(gw.admin_port) and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertTrue(port_open(gw.admin_port), "admin port not open")
        return gw

    def admin(self, gw, method, path):
        return harness.admin_call(gw, method, path, TOKEN)

    def scrape(self, gw):
        r = self.admin(gw, "GET", "/metrics")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers.get("content-type", "").startswith("text/plain; version=0.0.4"))
        return r.text, parse_prometheus(r.text)

    def run_sequence(self, gw):
        def get(path, *args):
            return curl(gw.url(path), *args)
        self.assertCache(get("/prod/pets/1"), "MISS")
        self.assertCache(get("/prod/pets/2"), "MISS")
        for path in ("/prod/pets/1", "/prod/pets/2", "/prod/pets/1"):
            self.assertCache(get(path), "HIT")
        self.assertCache(get("/prod/pets/1", "-H", "Authorization: Bearer someone"), "BYPASS")
        self.assertJsonError(get("/prod/nope"), 403, "Missing Authentication Token")
        self.assertJsonError(get("/prod/down"), 502, "Internal server error")
        self.assertCache(get("/prod/pets/2", "-H", "Cache-Control: max-age=0"), "REFRESH")
        r = get("/prod/items/1", "-X", "PUT", "--data-binary", "x")
        self.assertEqual(r.status, 200, r)
        self.assertCache(get("/prod/pets/1"), "MISS")  # the write dropped it
        r = self.admin(gw, "DELETE", "/v1/apis/shop/stages/prod/cache")
        self.assertEqual(r.status, 202, r)
        # The origin saw: pets/1 x3 (MISS, BYPASS, MISS after the write),
        # pets/2 x2 (MISS, REFRESH), items/1 x1.
        self.assertEqual(self.origin.count("/pets/1"), 3)
        self.assertEqual(self.origin.count("/pets/2"), 2)
        self.assertEqual(self.origin.count("/items/1"), 1)

    # Exact values after run_sequence (and after the reload, before more traffic).
    EXPECT = {
        # route: requests, (2xx, 3xx, 4xx, 5xx), hits, misses, integration calls
        "pets": (8, (8, 0, 0, 0), 3, 4, 5),
        "items": (1, (1, 0, 0, 0), 0, 0, 1),
        "down": (1, (0, 0, 0, 1), 0, 1, 1),
        "none": (1, (0, 0, 1, 0), 0, 0, 0),
    }
    INVALIDATIONS = {"flush": 1, "path": 0, "tag": 0, "max_age": 1, "write": 1}

    def check_counters(self, fams):
        for route, (req, classes, hits, misses, calls) in self.EXPECT.items():
            ls = ROUTES[route]
            self.assertEqual(series(fams, "gatecache_requests_total", **ls), req, route)
            for cls, n in zip(("2xx", "3xx", "4xx", "5xx"), classes):
                self.assertEqual(series(fams, "gatecache_responses_total",
                                        **dict(ls, **{"class": cls})), n, (route, cls))
            self.assertEqual(series(fams, "gatecache_cache_hits_total", **ls), hits, route)
            self.assertEqual(series(fams, "gatecache_cache_misses_total", **ls), misses, route)
            for fam, count in (("gatecache_request_duration_seconds", req),
                               ("gatecache_integration_duration_seconds", calls)):
                self.assertEqual(series(fams, fam, fam + "_count", **ls), count, (route, fam))
                inf = series(fams, fam, fam + "_bucket", **dict(ls, le="+Inf"))
                self.assertEqual(inf, count)
                total = series(fams, fam, fam + "_sum", **ls)
                self.assertGreaterEqual(total, 0)
                if count == 0:
                    self.assertEqual(total, 0)
            # Latency covers the integration call: never less than it.
            self.assertGreaterEqual(
                series(fams, "gatecache_request_duration_seconds",
                       "gatecache_request_duration_seconds_sum", **ls),
                series(fams, "gatecache_integration_duration_seconds",
                       "gatecache_integration_duration_seconds_sum", **ls))
        # Exactly these four route series exist.
        got = {tuple(sorted(ls.items()))
               for _, ls, _ in fams["gatecache_requests_total"]["samples"]}
        self.assertEqual(got, {tuple(sorted(v.items())) for v in ROUTES.values()})
        for reason, n in self.INVALIDATIONS.items():
            self.assertEqual(series(fams, "gatecache_cache_invalidations_total",
                                    **dict(STAGE, reason=reason)), n, reason)
        self.assertEqual(len(fams["gatecache_cache_invalidations_total"]["samples"]),
                         len(self.INVALIDATIONS))
        self.assertEqual(series(fams, "gatecache_cache_entries", **STAGE), 0)  # flushed
        self.assertEqual(series(fams, "gatecache_cache_bytes", **STAGE), 0)
        self.assertEqual(series(fams, "gatecache_cache_capacity_bytes", **STAGE), 64 << 20)
        self.assertEqual(series(fams, "gatecache_cache_evictions_total", **STAGE), 0)

    def test_every_counter_and_reload(self):
        gw = self.gw()
        self.run_sequence(gw)
        text, fams = self.scrape(gw)
        expected_families = {
            "gatecache_requests_total": "counter", "gatecache_responses_total": "counter",
            "gatecache_cache_hits_total": "counter", "gatecache_cache_misses_total": "counter",
            "gatecache_request_duration_seconds": "histogram",
            "gatecache_integration_duration_seconds": "histogram",
            "gatecache_cache_entries": "gauge", "gatecache_cache_bytes": "gauge",
            "gatecache_cache_capacity_bytes": "gauge",
            "gatecache_cache_evictions_total": "counter",
            "gatecache_cache_invalidations_total": "counter",
        }
        self.assertEqual({k: v["type"] for k, v in fams.items()}, expected_families, text)
        self.check_counters(fams)
        # Buckets: a hit is fast, and the bounds are the documented ones.
        les = [ls["le"] for name, ls, _ in
               fams["gatecache_request_duration_seconds"]["samples"]
               if name.endswith("_bucket") and ls["resource"] == "/pets/{id}"]
        self.assertEqual(les, ["0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
                               "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "+Inf"])

        # SIGHUP with a changed config (a new route): nothing resets.
        gw.reload(self.config(EXTRA_AFTER_RELOAD))
        self.assertEqual(curl(gw.url("/prod/new")).body, b"new")  # the reload took effect
        _, fams = self.scrape(gw)
        self.check_counters(fams_without(fams, "/new"))
        self.assertEqual(series(fams, "gatecache_requests_total", api="shop", stage="prod",
                                resource="/new", method="GET"), 1)
        # ... and the old series keep counting.
        curl(gw.url("/prod/pets/1"))
        self.assertCache(curl(gw.url("/prod/pets/1")), "HIT")
        _, fams = self.scrape(gw)
        self.assertEqual(series(fams, "gatecache_requests_total", **ROUTES["pets"]), 10)
        self.assertEqual(series(fams, "gatecache_cache_hits_total", **ROUTES["pets"]), 4)
        self.assertEqual(series(fams, "gatecache_cache_misses_total", **ROUTES["pets"]), 5)

    def test_scrape_during_traffic(self):
        """Workers count while the admin thread scrapes (the TSan run of this
        file checks the shards are race-free); the totals come out exact."""
        import threading
        gw = self.gw()
        errors = []

        def client(k):
            for i in range(20):
                r = curl(gw.url("/prod/pets/%d" % (i % 5)))
                if r.status != 200:
                    errors.append(r)

        threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            self.scrape(gw)  # parses strictly every time
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        _, fams = self.scrape(gw)
        ls = ROUTES["pets"]
        self.assertEqual(series(fams, "gatecache_requests_total", **ls), 80)
        self.assertEqual(series(fams, "gatecache_cache_hits_total", **ls)
                         + series(fams, "gatecache_cache_misses_total", **ls), 80)
        self.assertEqual(series(fams, "gatecache_request_duration_seconds",
                                "gatecache_request_duration_seconds_count", **ls), 80)


def fams_without(fams, resource):
    """fams minus the series of one resource (so check_counters' exact series
    set still applies after a reload added that resource)."""
    out = {}
    for name, fam in fams.items():
        out[name] = dict(fam, samples=[s for s in fam["samples"]
                                       if s[1].get("resource") != resource])
    return out


if __name__ == "__main__":
    harness.main()
