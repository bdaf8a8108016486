#!/usr/bin/env python3
"""55 metrics: GET /metrics after a known sequence of requests — 2 MISS,
3 HIT, 1 BYPASS, a 403 that matches no route, a 502 (unreachable
integration), an authorised Cache-Control: max-age=0 refresh, a
write-triggered invalidation and an admin flush — checks every counter's
exact value, parses the whole output with a strict Prometheus text-format
parser (below), and checks that a SIGHUP reload does not reset counters."""
import math
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import GatewayTest, curl, free_port, port_open  # noqa: E402

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

NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


class ParseError(AssertionError):
    pass


def parse_value(s, where):
    if s in ("+Inf", "-Inf", "NaN"):
        return float(s.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", s):
        raise ParseError("%s: bad value %r" % (where, s))
    return float(s)


def parse_labels(s, i, where):
    """s[i] == '{'; returns (dict, index after '}')."""
    labels = {}
    i += 1
    while True:
        if s[i] == "}":
            return labels, i + 1
        m = LABEL_RE.match(s, i)
        if not m:
            raise ParseError("%s: bad label name at %r" % (where, s[i:]))
        name = m.group(0)
        i = m.end()
        if s[i:i + 2] != '="':
            raise ParseError("%s: expected =\" after %s" % (where, name))
        i += 2
        val = []
        while True:
            if i >= len(s):
                raise ParseError("%s: unterminated label value" % where)
            c = s[i]
            if c == "\\":
                nxt = s[i + 1:i + 2]
                if nxt not in ("\\", '"', "n"):
                    raise ParseError("%s: bad escape \\%s" % (where, nxt))
                val.append("\n" if nxt == "n" else nxt)
                i += 2
                continue
            if c == '"':
                i += 1
                break
            val.append(c)
            i += 1
        if name in labels:
            raise ParseError("%s: label %s twice" % (where, name))
        if name.startswith("__"):
            raise ParseError("%s: reserved label %s" % (where, name))
        labels[name] = "".join(val)
        if s[i] == ",":
            i += 1
            if s[i] == "}":  # a trailing comma is allowed by 0.0.4
                return labels, i + 1
        elif s[i] != "}":
            raise ParseError("%s: expected , or } at %r" % (where, s[i:]))


def family_of(name, types):
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and types.get(name[:-len(suffix)]) == "histogram":
            return name[:-len(suffix)]
    return name


def parse_prometheus(text):
    """Strict text format 0.0.4. Returns {family: {"type", "help", "samples":
    [(name, labels, value)]}}; raises ParseError on any deviation."""
    if not text.endswith("\n"):
        raise ParseError("output does not end with a newline")
    fams, types, seen, done = {}, {}, set(), set()
    current = None
    for n, line in enumerate(text[:-1].split("\n"), 1):
        where = "line %d %r" % (n, line)
        if line == "":
            raise ParseError("%s: empty line" % where)
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) < 3 or parts[0] != "#" or parts[1] not in ("HELP", "TYPE"):
                raise ParseError("%s: unexpected comment" % where)
            name = parts[2]
            if not NAME_RE.fullmatch(name):
                raise ParseError("%s: bad metric name" % where)
            fam = fams.setdefault(name, {"type": None, "help": None, "samples": []})
            if name in done:
                raise ParseError("%s: metadata after the family's samples ended" % where)
            if fam["samples"]:
                raise ParseError("%s: metadata after samples" % where)
            if parts[1] == "HELP":
                if fam["help"] is not None:
                    raise ParseError("%s: second HELP" % where)
                help_text = parts[3] if len(parts) > 3 else ""
                if re.search(r"\\[^\\n]", help_text.replace("\\\\", "")):
                    raise ParseError("%s: bad escape in HELP" % where)
                fam["help"] = help_text
            else:
                if fam["type"] is not None:
                    raise ParseError("%s: second TYPE" % where)
                if len(parts) != 4 or parts[3] not in TYPES:
                    raise ParseError("%s: bad TYPE" % where)
                fam["type"] = types[name] = parts[3]
            if current is not None and current != name:
                done.add(current)
            current = name
            continue
        m = NAME_RE.match(line)
        if not m:
            raise ParseError("%s: bad metric name" % where)
        name = m.group(0)
        i = m.end()
        labels = {}
        if i < len(line) and line[i] == "{":
            labels, i = parse_labels(line, i, where)
        if line[i:i + 1] != " ":
            raise ParseError("%s: expected one space before the value" % where)
        rest = line[i + 1:].split(" ")
        if len(rest) not in (1, 2) or rest[0] == "":
            raise ParseError("%s: expected value [timestamp]" % where)
        value = parse_value(rest[0], where)
        if len(rest) == 2 and not re.fullmatch(r"-?\d+", rest[1]):
            raise ParseError("%s: bad timestamp" % where)
        fam_name = family_of(name, types)
        if fam_name not in types:
            raise ParseError("%s: sample without a TYPE line" % where)
        if fam_name in done:
            raise ParseError("%s: family %s is not contiguous" % (where, fam_name))
        if current != fam_name:
            if current is not None:
                done.add(current)
            current = fam_name
        key = (name, tuple(sorted(labels.items())))
        if key in seen:
            raise ParseError("%s: duplicate series" % where)
        seen.add(key)
        if types[fam_name] == "counter" and (value < 0 or math.isnan(value)):
            raise ParseError("%s: negative counter" % where)
        if types[fam_name] == "histogram" and name == fam_name:
            raise ParseError("%s: bare sample in a histogram family" % where)
        if name.endswith("_bucket") and types[fam_name] == "histogram" and "le" not in labels:
            raise ParseError("%s: bucket without le" % where)
        fams[fam_name]["samples"].append((name, labels, value))
    for name, fam in fams.items():
        if fam["type"] is None or fam["help"] is None:
            raise ParseError("%s: missing HELP or TYPE" % name)
        if fam["type"] == "histogram":
            check_histogram(name, fam["samples"])
    return fams


def check_histogram(name, samples):
    groups = {}
    for sname, labels, value in samples:
        base = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        g = groups.setdefault(base, {"buckets": [], "sum": None, "count": None})
        if sname == name + "_bucket":
            g["buckets"].append((parse_value(labels["le"], name), value))
        elif sname == name + "_sum":
            g["sum"] = value
        else:
            g["count"] = value
    for base, g in groups.items():
        where = "%s%r" % (name, base)
        if g["sum"] is None or g["count"] is None:
            raise ParseError("%s: missing _sum or _count" % where)
        les = [le for le, _ in g["buckets"]]
        if not les or les[-1] != math.inf:
            raise ParseError("%s: no +Inf bucket last" % where)
        if les != sorted(les) or len(set(les)) != len(les):
            raise ParseError("%s: le not strictly ascending" % where)
        counts = [c for _, c in g["buckets"]]
        if any(b < a for a, b in zip(counts, counts[1:])):
            raise ParseError("%s: buckets not cumulative" % where)
        if counts[-1] != g["count"]:
            raise ParseError("%s: +Inf bucket %r != _count %r" % (where, counts[-1], g["count"]))
        if g["sum"] < 0:
            raise ParseError("%s: negative sum" % where)


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


def series(fams, family, sample_name=None, **labels):
    """The value of the one sample of `family` named sample_name whose labels
    are exactly `labels`; fails when there is none."""
    sample_name = sample_name or family
    want = {k: str(v) for k, v in labels.items()}
    for name, ls, value in fams[family]["samples"]:
        if name == sample_name and ls == want:
            return value
    raise AssertionError("no %s%r in /metrics" % (sample_name, want))


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
        cls.tmp = tempfile.mkdtemp(prefix="gatecache-e2e-metrics-")
        cls.token_file = os.path.join(cls.tmp, "token")
        with open(cls.token_file, "w") as f:
            f.write(TOKEN + "\n")
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
        return curl("http://127.0.0.1:%d%s" % (gw.admin_port, path), "-X", method,
                    "-H", "Authorization: Bearer " + TOKEN)

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
