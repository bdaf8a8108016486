#!/usr/bin/env python3
"""No cross-talk: every answer a client gets was made for its own cache key and
its own identity.

The origin path /echo-key (tests/e2e/origin.py) answers the values it received
for the key parameters (the path, query parameter `id`, header `X-Tenant`) and
the identity headers (Authorization, Cookie), with a sha256 of each set, and
Cache-Control: public, max-age=60. Every client computes the same sums from what
it sent and compares. A body made for another key or another user is a
mismatch; the script exits 1 on any mismatch or error.

Two parts:

1. Edge probes (sequential, before the load): pairs of requests A then B that a
   cache could wrongly give one key (repeated parameters, an encoded parameter
   name, repeated header fields, empty vs absent, header-name case, identity
   headers). B's answer must be B's own. CROSSTALK_EDGE=0 skips them.
2. Load: LOAD_THREADS keep-alive clients for LOAD_SECONDS on several hundred
   Zipf-distributed keys (4 paths x 69 ids x 6 tenants), with a non-key parameter
   that changes on every request, Cache-Control: max-age=0 refreshes, requests
   carrying Authorization or Cookie (must be BYPASS and get their own answer),
   a 64 KiB cache (the minimum) so entries are evicted all the time, and an
   admin thread doing stage flushes, path invalidations and tag invalidations.

Figures go to stdout as a Markdown table. Environment: LOAD_SECONDS (default
20), LOAD_THREADS (8), LOAD_SEED (1), GATECACHE_BIN, CROSSTALK_EDGE (1; 0 skips
the edge probes), CROSSTALK_DROP_KEY (1 = negative control: X-Tenant is left
out of the cache key, so the run must report mismatches and exit 1).
"""
import hashlib
import http.client
import json
import os
import random
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
import harness  # noqa: E402
import loadlib  # noqa: E402
from harness import Gateway, Origin, RawConn, http_request  # noqa: E402

LOAD_SECONDS = float(os.environ.get("LOAD_SECONDS", "20"))
THREADS = int(os.environ.get("LOAD_THREADS", "8"))
SEED = int(os.environ.get("LOAD_SEED", "1"))
EDGE = os.environ.get("CROSSTALK_EDGE", "1") != "0"
# Negative control: leave X-Tenant out of the cache key; the script must then
# find mismatches (and fail), which shows the check can see cross-talk.
DROP_KEY = os.environ.get("CROSSTALK_DROP_KEY") == "1"
TOKEN = "load-test-token-crosstalk"
API, STAGE = "ct", "prod"

CONFIG = """
server:
  listen: "127.0.0.1:{port}"
  workers: 2
  admin_listen: "127.0.0.1:{admin_port}"
  admin_token_file: "TOKEN_FILE"
apis:
  - id: ct
    resources:
      /items/{bucket}:
        GET:
          integration: { type: HTTP_PROXY, uri: "{origin}/echo-key/{bucket}", timeout_ms: 10000 }
          cache_key_parameters:
            - "method.request.querystring.id"
            - "method.request.header.X-Tenant"
    stages:
      prod:
        cache_cluster_enabled: true
        cache_cluster_size: "64KiB"
        method_settings:
          - resource_path: "/*"
            http_method: "*"
            cache_ttl_in_seconds: 300
            honor_origin_cache_control: true
            require_authorization_for_cache_control: false
"""

BUCKETS = ["b%d" % i for i in range(4)]
# ids: rank 0 is the most frequent (Zipf s=1.1); a few need percent-encoding,
# one is empty and one is absent (None), all distinct keys.
SPECIAL_IDS = ["a b", "x&id=y", "100%", "a/b?c", "\u00fc\u00df", "", None, "a+b", "1,2"]
IDS = [str(i) for i in range(60)]
for _i, _v in enumerate(SPECIAL_IDS):
    IDS.insert(2 + 5 * _i, _v)
ID_CUM = []
_acc = 0.0
for _r in range(len(IDS)):
    _acc += 1.0 / (_r + 1) ** 1.1
    ID_CUM.append(_acc)
TENANTS = ["acme", "Acme", "globex", "umbrella corp", "", None]
TENANT_W = [35, 5, 20, 10, 5, 25]


def digest(v):
    return hashlib.sha256(json.dumps(v).encode()).hexdigest()


def expected(path_after_stage, query, headers):
    """What the origin must have seen for this request, as the origin parses
    it: (key_sha256, identity_sha256, {fields})."""
    bucket = path_after_stage.rsplit("/", 1)[1]
    qs = urllib.parse.parse_qs(query, keep_blank_values=True)
    ident = qs["id"][0] if "id" in qs else None
    tenants = [v for k, v in headers if k.lower() == "x-tenant"]
    tenant = ", ".join(tenants) if tenants else None
    auth = next((v for k, v in headers if k.lower() == "authorization"), None)
    cookie = next((v for k, v in headers if k.lower() == "cookie"), None)
    path = "/echo-key/" + bucket
    return (digest([path, ident, tenant]), digest([auth, cookie]),
            {"path": path, "id": ident, "tenant": tenant, "authorization": auth,
             "cookie": cookie})


def check_body(body, exp):
    """'' when the answer is the sender's own, else what is wrong."""
    try:
        doc = json.loads(body)
    except ValueError:
        return "not JSON: %r" % body[:120]
    key_sum, ident_sum, fields = exp
    problems = []
    if doc.get("key_sha256") != key_sum:
        problems.append("key: sent %r, answer made for %r" % (
            [fields["path"], fields["id"], fields["tenant"]],
            [doc.get("path"), doc.get("id"), doc.get("tenant")]))
    if doc.get("identity_sha256") != ident_sum:
        problems.append("identity: sent %r, answer made for %r" % (
            [fields["authorization"], fields["cookie"]],
            [doc.get("authorization"), doc.get("cookie")]))
    return "; ".join(problems)


# ------------------------------------------------------------------ edge probes

def raw_get(port, target, headers):
    c = RawConn(port, timeout=10)
    try:
        head = "GET %s HTTP/1.1\r\nHost: gw\r\n" % target
        head += "".join("%s: %s\r\n" % (k, v) for k, v in headers)
        c.send((head + "\r\n").encode("latin-1"))
        return c.read_response(timeout=10)
    finally:
        c.close()


EDGE_PROBES = [
    # (name, A (query, headers), B (query, headers))
    ("repeated query parameter vs comma in one value",
     ("id=1&id=2", [("X-Tenant", "acme")]), ("id=1,2", [("X-Tenant", "acme")])),
    ("percent-encoded parameter name vs no parameter",
     ("i%64=7", [("X-Tenant", "acme")]), ("", [("X-Tenant", "acme")])),
    ("two X-Tenant field lines vs the first alone",
     ("id=1", [("X-Tenant", "acme"), ("X-Tenant", "globex")]), ("id=1", [("X-Tenant", "acme")])),
    ("empty X-Tenant vs absent",
     ("id=1", [("X-Tenant", "")]), ("id=1", [])),
    ("empty id vs absent",
     ("id=", [("X-Tenant", "acme")]), ("", [("X-Tenant", "acme")])),
    ("'id' without '=' vs 'id='",
     ("id", [("X-Tenant", "acme")]), ("id=", [("X-Tenant", "acme")])),
    ("header name case (same key)",
     ("id=1", [("x-tenant", "acme")]), ("id=1", [("X-TENANT", "acme")])),
    ("header value case",
     ("id=1", [("X-Tenant", "Acme")]), ("id=1", [("X-Tenant", "acme")])),
    ("'+' vs %2B in a value",
     ("id=a+b", [("X-Tenant", "acme")]), ("id=a%2Bb", [("X-Tenant", "acme")])),
    ("percent-encoded vs plain value (same value)",
     ("id=%41", [("X-Tenant", "acme")]), ("id=A", [("X-Tenant", "acme")])),
    ("Authorization then anonymous",
     ("id=1", [("X-Tenant", "acme"), ("Authorization", "Bearer alice")]),
     ("id=1", [("X-Tenant", "acme")])),
    ("COOKIE (upper case) then anonymous",
     ("id=1", [("X-Tenant", "acme"), ("COOKIE", "session=alice")]),
     ("id=1", [("X-Tenant", "acme")])),
    ("anonymous then Authorization",
     ("id=1", [("X-Tenant", "acme")]),
     ("id=1", [("X-Tenant", "acme"), ("authorization", "Bearer bob")])),
]


def run_edge_probes(gw):
    rows = []
    for i, (name, a, b) in enumerate(EDGE_PROBES):
        path = "/items/edge%d" % i
        results = []
        for query, headers in (a, b):
            target = "/" + STAGE + path + ("?" + query if query else "")
            try:
                r = raw_get(gw.port, target, headers)
            except (OSError, AssertionError) as e:
                results.append(("error", "no answer: %s" % e))
                continue
            if r.status != 200:
                results.append((str(r.status), "status %d" % r.status))
                continue
            results.append((r.headers.get("x-cache-status", "-"),
                            check_body(r.body, expected(path, query, headers))))
        ok = all(not p for _, p in results)
        rows.append({"name": name, "a": results[0][0], "b": results[1][0], "ok": ok,
                     "problem": "; ".join(p for _, p in results if p),
                     "repro": [("/" + STAGE + path + ("?" + q if q else ""), h) for q, h in (a, b)]})
    return rows


# ------------------------------------------------------------------ load

class Stats(loadlib.Stats):
    def __init__(self):
        super().__init__()
        self.keys = set()


def client(port, stop_at, rng, st):
    conn = None
    n = 0
    keys = set()
    while time.monotonic() < stop_at:
        bucket = rng.choice(BUCKETS)
        ident = rng.choices(IDS, cum_weights=ID_CUM)[0]
        tenant = rng.choices(TENANTS, weights=TENANT_W)[0]
        nonce = "%d-%d-%d" % (threading.get_ident() % 100000, n, rng.randrange(1 << 30))
        n += 1
        params = ["extra=" + nonce]
        if ident is not None:
            if ident == "" and rng.random() < 0.5:
                params.append("id")
            else:
                params.append("id=" + urllib.parse.quote(ident, safe=""))
        rng.shuffle(params)
        query = "&".join(params)
        headers = []
        if tenant is not None:
            headers.append((rng.choice(["X-Tenant", "x-tenant"]), tenant))
        roll = rng.random()
        kind = "anon"
        if roll < 0.04:
            kind = "auth"
            headers.append((rng.choice(["Authorization", "authorization"]),
                            "Bearer user-%d" % rng.randrange(20)))
        elif roll < 0.08:
            kind = "cookie"
            headers.append((rng.choice(["Cookie", "COOKIE"]), "session=user-%d" % rng.randrange(20)))
        elif roll < 0.10:
            kind = "refresh"
            headers.append(("Cache-Control", "max-age=0"))
        path = "/items/" + bucket
        keys.add((bucket, ident, tenant))
        target = "/%s%s?%s" % (STAGE, path, query)
        exp = expected(path, query, headers)
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
                st.add(connections=1)
            conn.putrequest("GET", target, skip_accept_encoding=True)
            for k, v in headers:
                conn.putheader(k, v.encode("utf-8"))
            conn.endheaders()
            r = conn.getresponse()
            body = r.read()
            status = r.status
            cache = r.getheader("X-Cache-Status", "-")
            if r.will_close:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as e:
            st.add(requests=1, errors=1)
            st.sample("error %s %r: %s: %s" % (target, headers, type(e).__name__, e))
            if conn is not None:
                conn.close()
                conn = None
            continue
        st.add(requests=1, **{"cache_" + cache: 1, "kind_" + kind: 1})
        if status != 200:
            st.add(errors=1)
            st.sample("status %d for %s %r: %r" % (status, target, headers, body[:200]))
            continue
        problem = check_body(body, exp)
        if kind in ("auth", "cookie"):
            if cache != "BYPASS":
                problem += "; X-Cache-Status %s for a request with %s" % (cache, kind)
            else:
                try:
                    if json.loads(body).get("extra") != nonce:
                        problem += "; BYPASS answer made for another request (extra)"
                except ValueError:
                    pass
        if problem:
            st.add(mismatches=1, **{"mismatch_" + kind: 1})
            st.sample("MISMATCH [%s, %s] %s %r: %s" % (kind, cache, target, headers, problem))
    if conn is not None:
        conn.close()
    with st.lock:
        st.keys |= keys


def admin(gw, path, method="GET", body=None):
    return http_request(gw.admin_port, method, path, body=body, timeout=10,
                        headers={"Authorization": "Bearer " + TOKEN})


def admin_loop(gw, stop_at, rng, st):
    base = "/v1/apis/%s/stages/%s" % (API, STAGE)
    next_flush = time.monotonic() + 2.0
    next_tag = time.monotonic() + 1.5
    while time.monotonic() < stop_at:
        now = time.monotonic()
        try:
            if now >= next_flush:
                r = admin(gw, base + "/cache", "DELETE")
                st.add(flushes=1) if r.status == 202 else st.add(admin_errors=1)
                next_flush = now + 2.0
            elif now >= next_tag:
                t = rng.choices(TENANTS, weights=TENANT_W)[0]
                r = admin(gw, base + "/invalidations", "POST",
                          json.dumps({"tags": ["tenant-" + digest(t)[:8]]}).encode())
                st.add(tag_invalidations=1) if r.status == 201 else st.add(admin_errors=1)
                next_tag = now + 1.5
            else:
                p = rng.choice(["/items/" + rng.choice(BUCKETS), "/items/" + rng.choice(BUCKETS),
                                "/items/b*"])
                r = admin(gw, base + "/invalidations", "POST", json.dumps({"paths": [p]}).encode())
                if r.status == 201:
                    st.add(path_invalidations=1, invalidated_entries=r.json().get("invalidated", 0))
                else:
                    st.add(admin_errors=1)
        except (OSError, http.client.HTTPException, ValueError) as e:
            st.add(admin_errors=1)
            st.sample("admin error: %s" % e)
        time.sleep(0.3)


def metrics(gw):
    """{name: value} summed over the series of stage ct/prod."""
    return loadlib.stage_metrics(gw, "ct", "prod", {"Authorization": "Bearer " + TOKEN})


def main():
    if not os.access(harness.BIN, os.X_OK):
        print("no gatecache binary at %s (build: cmake --build build -j2)" % harness.BIN)
        return 2
    t_start = time.monotonic()
    with Origin() as origin:
        gw = Gateway(CONFIG, origin=origin, start=False)
        token_file = os.path.join(gw.dir, "token")
        with open(token_file, "w") as f:
            f.write(TOKEN + "\n")
        cfg = CONFIG.replace("TOKEN_FILE", token_file)
        if DROP_KEY:
            cfg = cfg.replace('            - "method.request.header.X-Tenant"\n', "")
        gw.write_config(cfg)
        gw.start()
        try:
            edge = run_edge_probes(gw) if EDGE else []
            admin(gw, "/v1/apis/%s/stages/%s/cache" % (API, STAGE), "DELETE")
            m0 = metrics(gw)
            st = Stats()
            stop_at = time.monotonic() + LOAD_SECONDS
            threads = [threading.Thread(target=client, daemon=True,
                                        args=(gw.port, stop_at, random.Random(SEED * 1000 + i), st))
                       for i in range(THREADS)]
            threads.append(threading.Thread(target=admin_loop, daemon=True,
                                            args=(gw, stop_at, random.Random(SEED), st)))
            t0 = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join(max(1.0, stop_at - time.monotonic() + 30))
            elapsed = time.monotonic() - t0
            hung = sum(t.is_alive() for t in threads)
            alive = gw.alive()
            m1 = metrics(gw) if alive else {}
            status = admin(gw, "/v1/apis/%s/stages/%s/cache" % (API, STAGE)).json() if alive else {}
        finally:
            stop_rc = gw.stop(check=False)
            stderr_tail = gw.final_stderr[-2000:] if hasattr(gw, "final_stderr") else ""
            sanitizer = harness.SANITIZED and gw.sanitizer_report()

    c = st.c
    d = {k: m1.get(k, 0) - m0.get(k, 0) for k in m1}
    edge_bad = [e for e in edge if not e["ok"]]
    seen_misses = c.get("cache_MISS", 0) + c.get("cache_EXPIRED", 0) + c.get("cache_REFRESH", 0)
    metrics_agree = (d.get("gatecache_cache_hits_total", 0) == c.get("cache_HIT", 0)
                     and d.get("gatecache_cache_misses_total", 0) == seen_misses)
    print("## crosstalk: no cross-talk under load\n")
    print("%d client threads (keep-alive), %.0f s, 2 gateway workers, cache 64 KiB, "
          "seed %d, binary %s%s\n" % (THREADS, elapsed, SEED, os.path.relpath(harness.BIN, harness.REPO),
                                      " -- NEGATIVE CONTROL: X-Tenant left out of the cache key"
                                      if DROP_KEY else ""))
    print("| figure | value |")
    print("|---|---|")
    rows = [
        ("requests sent", c.get("requests", 0)),
        ("requests per second", "%.0f" % (c.get("requests", 0) / max(elapsed, 1e-9))),
        ("client connections opened", c.get("connections", 0)),
        ("distinct cache keys requested (path, id, X-Tenant)", len(st.keys)),
        ("HIT / MISS", "%d / %d" % (c.get("cache_HIT", 0), c.get("cache_MISS", 0))),
        ("REFRESH (max-age=0) / EXPIRED / STALE",
         "%d / %d / %d" % (c.get("cache_REFRESH", 0), c.get("cache_EXPIRED", 0), c.get("cache_STALE", 0))),
        ("BYPASS (Authorization / Cookie requests)",
         "%d (%d / %d sent)" % (c.get("cache_BYPASS", 0), c.get("kind_auth", 0), c.get("kind_cookie", 0))),
        ("stage flushes", c.get("flushes", 0)),
        ("path invalidations (entries removed)",
         "%d (%d)" % (c.get("path_invalidations", 0), c.get("invalidated_entries", 0))),
        ("tag invalidations", c.get("tag_invalidations", 0)),
        ("evictions (gatecache_cache_evictions_total)",
         "%d" % d.get("gatecache_cache_evictions_total", 0)),
        ("hits / misses in /metrics (= HIT / MISS+EXPIRED+REFRESH seen)",
         "%d / %d (%s)" % (d.get("gatecache_cache_hits_total", 0),
                           d.get("gatecache_cache_misses_total", 0),
                           "agree" if metrics_agree else "**DISAGREE**")),
        ("cache at the end (entries, bytes / capacity)",
         "%s, %s / %s" % (status.get("entries"), status.get("bytes"), status.get("capacityBytes"))),
        ("**mismatches** (key or identity)", "**%d**" % c.get("mismatches", 0)),
        ("errors (non-200, connection errors) / admin errors",
         "%d / %d" % (c.get("errors", 0), c.get("admin_errors", 0))),
    ]
    if EDGE:
        rows.append(("edge probes passed", "%d / %d" % (len(edge) - len(edge_bad), len(edge))))
    for k, v in rows:
        print("| %s | %s |" % (k, v))
    if EDGE:
        print("\n| edge probe (request A, then B on the same path) | A | B | result |")
        print("|---|---|---|---|")
        for e in edge:
            print("| %s | %s | %s | %s |" % (e["name"], e["a"], e["b"],
                                             "ok" if e["ok"] else "**MISMATCH**"))
    failures = []
    if c.get("mismatches", 0):
        failures.append("%d mismatches under load" % c["mismatches"])
    if edge_bad:
        failures.append("%d edge probes got another key's answer" % len(edge_bad))
    if c.get("errors", 0) or c.get("admin_errors", 0):
        failures.append("%d errors, %d admin errors" % (c.get("errors", 0), c.get("admin_errors", 0)))
    if not metrics_agree and not c.get("errors", 0):
        failures.append("/metrics hits/misses disagree with the X-Cache-Status the clients saw")
    if not c.get("requests"):
        failures.append("no request was sent")
    for e in edge_bad:
        print("\nedge probe %r: %s" % (e["name"], e["problem"]))
        for target, headers in e["repro"]:
            print("  curl -s%s 'http://127.0.0.1:PORT%s'"
                  % ("".join(" -H '%s: %s'" % h for h in headers), target))
    return loadlib.finish(failures, gw, t_start, st.samples, alive, stop_rc, sanitizer,
                          stderr_tail, hung, "PASS: no cross-talk")


if __name__ == "__main__":
    sys.exit(main())
