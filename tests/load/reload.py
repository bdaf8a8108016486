#!/usr/bin/env python3
"""Reload and shutdown: SIGHUP under load drops nothing, a broken config keeps
the old one serving, SIGTERM drains in-flight requests and exits in bounded
time.

1. Load: LOAD_THREADS keep-alive clients for LOAD_SECONDS on a cached route
   (Zipf keys, TTL 2 or 3 s so hits and misses mix; every answer's key checksum
   is checked) and a MOCK route /version. Every RELOAD_INTERVAL seconds the
   script rewrites the config (alternating A and B: TTL 2 vs 3 s, /version
   answers "A" or "B", B has one route more) and sends SIGHUP, then polls /version until the new
   config answers (the reload took effect). Every request must get a 2xx: a
   non-2xx, a closed connection or a timeout is a failure.
2. A broken config (unknown key, out-of-range TTL) and SIGHUP: gatecache must
   stay up, log the failed reload, and keep serving the last good config
   (/version unchanged) under the same load.
3. SIGTERM while SLOW_REQUESTS requests that take ~1 s at the origin are in
   flight, and idle keep-alive connections are open: every slow request must
   complete with a 200, idle connections must be closed, new connections must
   be refused once the drain started, and the process must exit 0 within
   DRAIN_BOUND seconds (the drain time is measured).

Figures go to stdout as a Markdown table; exit 1 on any failure.
Environment: LOAD_SECONDS (default 20), LOAD_THREADS (6), RELOAD_INTERVAL (1),
SLOW_REQUESTS (16), DRAIN_BOUND (5), LOAD_SEED (1), GATECACHE_BIN.
"""
import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
import harness  # noqa: E402
from harness import Gateway, Origin, RawConn, http_request  # noqa: E402
import loadlib  # noqa: E402

LOAD_SECONDS = float(os.environ.get("LOAD_SECONDS", "20"))
THREADS = int(os.environ.get("LOAD_THREADS", "6"))
RELOAD_INTERVAL = float(os.environ.get("RELOAD_INTERVAL", "1"))
SLOW_REQUESTS = int(os.environ.get("SLOW_REQUESTS", "16"))
DRAIN_BOUND = float(os.environ.get("DRAIN_BOUND", "5"))
SEED = int(os.environ.get("LOAD_SEED", "1"))
SLOW_MS = 1000

CONFIG = """
server:
  listen: "127.0.0.1:{port}"
  workers: 2
  limits:
    drain_timeout_ms: 10000
apis:
  - id: rl
    resources:
      /items/{bucket}:
        GET:
          integration: { type: HTTP_PROXY, uri: "{origin}/echo-key/{bucket}", timeout_ms: 10000 }
          cache_key_parameters: ["method.request.querystring.id"]
      /version:
        GET:
          integration: { type: MOCK, status: 200, body: "VERSION" }
      /slow:
        GET:
          integration: { type: HTTP_PROXY, uri: "{origin}/slow?ms=SLOW_MS", timeout_ms: 10000 }
    stages:
      prod:
        cache_cluster_enabled: true
        cache_cluster_size: "1MiB"
        method_settings:
          - { resource_path: "/*", http_method: "*", cache_ttl_in_seconds: TTL }
          - { resource_path: "/version", http_method: GET, caching_enabled: false }
          - { resource_path: "/slow", http_method: GET, caching_enabled: false }
""".replace("SLOW_MS", str(SLOW_MS))


def config(version):
    """A and B differ in the TTL, /version's body, and B has one route more
    (so a reload also rebuilds the route table)."""
    text = CONFIG.replace("VERSION", version).replace("TTL", "2" if version == "A" else "3")
    if version == "B":
        text = text.replace("      /version:\n", "      /b-only:\n        GET:\n          integration: "
                            "{ type: MOCK, status: 200, body: \"b\" }\n      /version:\n")
    return text


BROKEN = config("A").replace("  workers: 2\n", "  workers: 2\n  no_such_key: 1\n").replace(
    "cache_ttl_in_seconds: 2", "cache_ttl_in_seconds: 99999")

IDS = [str(i) for i in range(300)]
ID_CUM = []
_acc = 0.0
for _r in range(len(IDS)):
    _acc += 1.0 / (_r + 1) ** 1.1
    ID_CUM.append(_acc)


def key_sum(bucket, ident):
    return hashlib.sha256(json.dumps(["/echo-key/" + bucket, ident, None]).encode()).hexdigest()


class Stats(loadlib.Stats):
    def __init__(self):
        super().__init__()
        self.versions = set()

    def sample(self, text):
        super().sample("%.3f %s" % (time.monotonic() - T0, text))


T0 = time.monotonic()


def client(port, stop, rng, st):
    conn = None
    while not stop.is_set():
        if rng.random() < 0.1:
            target, bucket, ident = "/prod/version", None, None
        else:
            bucket = "b%d" % rng.randrange(4)
            ident = rng.choices(IDS, cum_weights=ID_CUM)[0]
            target = "/prod/items/%s?id=%s" % (bucket, ident)
        reused = conn is not None
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                st.add(connections=1)
            conn.request("GET", target)
            r = conn.getresponse()
            body = r.read()
            if r.will_close:
                st.add(server_closes=1)
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as e:
            st.add(requests=1, failures=1)
            st.sample("FAILED %s (%s connection): %s: %s"
                      % (target, "reused" if reused else "new", type(e).__name__, e))
            if conn is not None:
                conn.close()
                conn = None
            continue
        st.add(requests=1, **{"cache_" + (r.getheader("X-Cache-Status") or "-"): 1})
        if not 200 <= r.status < 300:
            st.add(failures=1)
            st.sample("FAILED %s: status %d %r" % (target, r.status, body[:200]))
            continue
        if bucket is None:
            with st.lock:
                st.versions.add(body.decode("latin-1"))
            continue
        try:
            ok = json.loads(body).get("key_sha256") == key_sum(bucket, ident)
        except ValueError:
            ok = False
        if not ok:
            st.add(mismatches=1)
            st.sample("MISMATCH %s: %r" % (target, body[:200]))
    if conn is not None:
        conn.close()


def version(port):
    try:
        r = http_request(port, "GET", "/prod/version", timeout=5)
        return r.body.decode("latin-1") if r.status == 200 else "status %d" % r.status
    except (OSError, http.client.HTTPException) as e:
        return "error %s" % e


def wait_version(port, want, bound):
    t = time.monotonic()
    deadline = t + bound
    while time.monotonic() < deadline:
        if version(port) == want:
            return time.monotonic() - t
        time.sleep(0.01)
    return None


def connect_outcome(port):
    """What a new connection gets: refused, or an answer / close."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
    except ConnectionRefusedError:
        return "refused"
    except OSError as e:
        return "error %s" % e
    try:
        s.sendall(b"GET /prod/version HTTP/1.1\r\nHost: gw\r\n\r\n")
        s.settimeout(2)
        data = s.recv(100)
        if not data:
            return "accepted, closed without an answer"
        return "accepted, answered %r" % data.split(b"\r\n", 1)[0].decode("latin-1")
    except socket.timeout:
        return "accepted, no answer within 2 s"
    except OSError as e:
        return "accepted, then %s" % type(e).__name__
    finally:
        s.close()


def main():
    if not os.access(harness.BIN, os.X_OK):
        print("no gatecache binary at %s (build: cmake --build build -j2)" % harness.BIN)
        return 2
    t_start = time.monotonic()
    failures = []
    fig = {}
    with Origin() as origin:
        gw = Gateway(config("A"), origin=origin)
        try:
            run(gw, origin, fig, failures)
        finally:
            if gw.proc is not None:
                gw.stop(check=False)
            stderr = getattr(gw, "final_stderr", "") or gw.stderr()
            if harness.SANITIZED and gw.sanitizer_report():
                failures.append("sanitizer report in gatecache stderr")
                stderr = gw.sanitizer_report()[-8000:]
            gw_dir = gw.dir

    st = fig["stats"]
    c = st.c
    print("## reload: SIGHUP under load, a broken config, SIGTERM drain\n")
    print("%d client threads (keep-alive), %.0f s of load, SIGHUP every %.1f s, 2 gateway workers, "
          "seed %d, binary %s\n" % (THREADS, fig.get("load_s", 0), RELOAD_INTERVAL, SEED,
                                   os.path.relpath(harness.BIN, harness.REPO)))
    print("| figure | value |")
    print("|---|---|")
    rows = [
        ("reloads (SIGHUP) sent / seen in effect", "%d / %d" % (fig.get("reloads", 0),
                                                              fig.get("reloads_seen", 0))),
        ("time until a reload answers (median / max)", fig.get("apply", "-")),
        ("requests sent", c.get("requests", 0)),
        ("HIT / MISS / EXPIRED", "%d / %d / %d" % (c.get("cache_HIT", 0), c.get("cache_MISS", 0),
                                                   c.get("cache_EXPIRED", 0))),
        ("client connections opened / closed by the server",
         "%d / %d" % (c.get("connections", 0), c.get("server_closes", 0))),
        ("**failed requests** (non-2xx, dropped, timed out)", "**%d**" % c.get("failures", 0)),
        ("key checksum mismatches", c.get("mismatches", 0)),
        ("broken config + SIGHUP", fig.get("broken", "-")),
        ("requests after the broken reload (failed)", fig.get("after_broken", "-")),
        ("slow requests in flight at SIGTERM / completed 200", "%s / %s" % (
            fig.get("slow_in_flight", "-"), fig.get("slow_ok", "-"))),
        ("idle keep-alive connections closed by the drain", fig.get("idle_closed", "-")),
        ("new connections during the drain", fig.get("during_drain", "-")),
        ("**drain time** (SIGTERM to exit)", fig.get("drain", "-")),
        ("exit code / new connection after exit", "%s / %s" % (fig.get("exit_rc", "-"),
                                                              fig.get("after_exit", "-"))),
    ]
    for k, v in rows:
        print("| %s | %s |" % (k, v))
    if st.samples:
        print("\nfirst problems (seconds since start):")
        for s in st.samples:
            print("  " + s)
    if fig.get("reload_log"):
        print("\nfirst reloads that were not in effect within 2 s: %s" % fig["reload_log"][:5])
    print("\nrun time %.1f s" % (time.monotonic() - t_start))
    if failures:
        print("FAIL: " + "; ".join(failures))
        print("gatecache stderr (tail):\n" + stderr[-3000:])
        return 1
    shutil.rmtree(gw_dir, ignore_errors=True)
    print("PASS: no request dropped by %d reloads; drain %s" % (fig.get("reloads", 0), fig.get("drain")))
    return 0


def run(gw, origin, fig, failures):
    st = Stats()
    fig["stats"] = st
    stop = threading.Event()
    threads = [threading.Thread(target=client, daemon=True,
                                args=(gw.port, stop, random.Random(SEED * 100 + i), st))
               for i in range(THREADS)]
    for t in threads:
        t.start()

    # 1. SIGHUP every RELOAD_INTERVAL, alternating A and B
    t_load = time.monotonic()
    end = t_load + LOAD_SECONDS
    reloads, seen, applies, cur, log = 0, 0, [], "A", []
    while time.monotonic() < end and gw.alive():
        tick = time.monotonic()
        cur = "B" if cur == "A" else "A"
        gw.write_config(config(cur))
        gw.signal(signal.SIGHUP)
        reloads += 1
        took = wait_version(gw.port, cur, 2.0)
        if took is None:
            log.append((reloads, cur, version(gw.port)))
        else:
            seen += 1
            applies.append(took)
        time.sleep(max(0.0, tick + RELOAD_INTERVAL - time.monotonic()))
    fig["reloads"], fig["reloads_seen"] = reloads, seen
    fig["reload_log"] = log
    if applies:
        applies.sort()
        fig["apply"] = "%.0f ms / %.0f ms" % (applies[len(applies) // 2] * 1000, applies[-1] * 1000)
    if not gw.alive():
        failures.append("gatecache died during the reload loop (exit %r)" % gw.proc.poll())
        stop.set()
        return
    if seen < reloads:
        failures.append("%d of %d reloads not in effect within 2 s" % (reloads - seen, reloads))

    # 2. a broken config: logged, the old one keeps serving
    before = st.c.get("requests", 0), st.c.get("failures", 0)
    err_before = gw.stderr().count("reload failed")
    gw.write_config(BROKEN)
    gw.signal(signal.SIGHUP)
    time.sleep(2.0)
    v = version(gw.port)
    logged = gw.stderr().count("reload failed") > err_before
    alive = gw.alive()
    fig["broken"] = "%s, %s, /version answers %r (last good: %r)" % (
        "still running" if alive else "DIED", "failure logged" if logged else "NOT logged", v, cur)
    after = st.c.get("requests", 0) - before[0], st.c.get("failures", 0) - before[1]
    fig["after_broken"] = "%d (%d)" % after
    if not alive:
        failures.append("gatecache died on a broken config's SIGHUP")
    if v != cur:
        failures.append("after a broken reload /version answers %r, not the last good %r" % (v, cur))
    if not logged:
        failures.append("the failed reload was not logged ('reload failed' not in stderr)")
    if after[0] == 0:
        failures.append("no request completed after the broken reload")

    stop.set()
    for t in threads:
        t.join(15)
    fig["load_s"] = time.monotonic() - t_load
    if any(t.is_alive() for t in threads):
        failures.append("client threads hung")
    if st.c.get("failures", 0):
        failures.append("%d requests failed during the reload run" % st.c["failures"])
    if st.c.get("mismatches", 0):
        failures.append("%d key checksum mismatches" % st.c["mismatches"])
    if not alive:
        return

    # 3. SIGTERM during in-flight slow requests
    idle = []
    for i in range(4):
        c = RawConn(gw.port, timeout=5)
        c.send(b"GET /prod/version HTTP/1.1\r\nHost: gw\r\n\r\n")
        c.read_response(timeout=5)
        idle.append(c)
    origin.reset()
    results = [None] * SLOW_REQUESTS

    def slow(i):
        t = time.monotonic()
        try:
            r = http_request(gw.port, "GET", "/prod/slow?i=%d" % i, timeout=20)
            ok = r.status == 200 and json.loads(r.body).get("slow") is True
            results[i] = (ok, "status %d" % r.status, time.monotonic() - t)
        except (OSError, http.client.HTTPException, ValueError) as e:
            results[i] = (False, "%s: %s" % (type(e).__name__, e), time.monotonic() - t)

    slow_threads = [threading.Thread(target=slow, args=(i,), daemon=True) for i in range(SLOW_REQUESTS)]
    for t in slow_threads:
        t.start()
    deadline = time.monotonic() + 5
    while origin.count("/slow") < SLOW_REQUESTS and time.monotonic() < deadline:
        time.sleep(0.02)
    in_flight = origin.count("/slow")
    fig["slow_in_flight"] = in_flight
    if in_flight < SLOW_REQUESTS:
        failures.append("only %d of %d slow requests reached the origin" % (in_flight, SLOW_REQUESTS))
    t_term = time.monotonic()
    gw.signal(signal.SIGTERM)
    time.sleep(0.1)
    during = {}
    for _ in range(5):  # new connections while the drain runs (the slow ones take ~1 s)
        if gw.proc.poll() is not None:
            break
        o = connect_outcome(gw.port)
        during[o] = during.get(o, 0) + 1
        time.sleep(0.1)
    fig["during_drain"] = ", ".join("%d %s" % (n, o) for o, n in during.items()) or "none tried"
    if any(not o.startswith("refused") and "without an answer" not in o for o in during):
        failures.append("a new connection during the drain was not refused: %s" % fig["during_drain"])
    closed = sum(c.wait_closed(timeout=max(0.05, t_term + 3 - time.monotonic())) for c in idle)
    for c in idle:
        c.close()
    fig["idle_closed"] = "%d / %d" % (closed, len(idle))
    if closed < len(idle):
        failures.append("%d idle keep-alive connections still open 3 s after SIGTERM"
                        % (len(idle) - closed))
    try:
        rc = gw.proc.wait(timeout=max(DRAIN_BOUND, 15))
    except Exception:
        rc = None
    drain = time.monotonic() - t_term
    fig["drain"] = "%.2f s" % drain if rc is not None else "did not exit within 15 s"
    fig["exit_rc"] = rc
    for t in slow_threads:
        t.join(20)
    ok = sum(1 for r in results if r and r[0])
    fig["slow_ok"] = ok
    if ok < SLOW_REQUESTS:
        bad = [r for r in results if not (r and r[0])]
        failures.append("%d in-flight slow requests did not complete with 200: %s"
                        % (SLOW_REQUESTS - ok, bad[:3]))
    if rc is None:
        failures.append("gatecache did not exit within 15 s of SIGTERM")
    else:
        if rc != 0:
            failures.append("gatecache exited %r after SIGTERM" % rc)
        if drain > DRAIN_BOUND:
            failures.append("drain took %.2f s (bound %.1f s)" % (drain, DRAIN_BOUND))
        fig["after_exit"] = connect_outcome(gw.port)
        if fig["after_exit"] != "refused":
            failures.append("after exit a new connection got: %s" % fig["after_exit"])
    gw.stop(check=False)


if __name__ == "__main__":
    sys.exit(main())
