#!/usr/bin/env python3
"""Slow and idle clients: thousands of connections that never finish a request
head do not stop service, the timeouts close them, and max_connections refuses
the excess cleanly.

1. gatecache with max_connections 6000, header_timeout_ms 2000,
   idle_timeout_ms 3000. An attacker process (this script with --attack) opens
   SLOW_CONNS connections (default 5000): half idle (no byte sent), half
   sending a partial request head one byte every BYTE_INTERVAL seconds (1 s: a
   timer re-armed on every read would never fire; only a deadline for the whole
   head does). Whatever the server closes is re-opened for LOAD_SECONDS
   (default 10), so about SLOW_CONNS stay open. Meanwhile a normal client makes
   200 requests, each on a new connection (half cache hits, half proxied to the
   origin); all must answer 200, p99 at most P99_BOUND_MS (default 1000).
   The same 200 requests are timed before the attack as a baseline.
2. Every connection the attacker opened must have been closed by the server
   within its timeout (3 s after connect for idle ones, 2 s after the first
   byte for slow ones) plus SLACK seconds (default 1.5); none may be left open.
3. gatecache with max_connections 1000 (timeouts 10 s) and 1500 connections
   at once: at most 1000 are held (and they serve requests), the rest are
   refused cleanly (a 503 or a close, no reset), a normal client is refused
   while it is full, and service resumes once connections close.

RLIMIT_NOFILE: this script raises its soft limit to what it needs (up to the
hard limit) before starting gatecache, which inherits it; gatecache does not
raise its own. The table says what was done.

Figures go to stdout as a Markdown table; exit 1 on any failure.
Environment: SLOW_CONNS (5000), LOAD_SECONDS (10), BYTE_INTERVAL (1),
SLACK (1.5), P99_BOUND_MS (1000), FLOOD_CONNS (1500), FLOOD_LIMIT (1000),
GATECACHE_BIN.
"""
import collections
import http.client
import json
import os
import resource
import select
import selectors
import shutil
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
import harness  # noqa: E402
from harness import Gateway, Origin, http_request  # noqa: E402

SLOW_CONNS = int(os.environ.get("SLOW_CONNS", "5000"))
LOAD_SECONDS = float(os.environ.get("LOAD_SECONDS", "10"))
BYTE_INTERVAL = float(os.environ.get("BYTE_INTERVAL", "1"))
SLACK = float(os.environ.get("SLACK", "1.5"))
P99_BOUND_MS = float(os.environ.get("P99_BOUND_MS", "1000"))
FLOOD_CONNS = int(os.environ.get("FLOOD_CONNS", "1500"))
FLOOD_LIMIT = int(os.environ.get("FLOOD_LIMIT", "1000"))
HEADER_TIMEOUT_MS = 2000
IDLE_TIMEOUT_MS = 3000
NORMAL_REQUESTS = 200

CONFIG = """
server:
  listen: "127.0.0.1:{port}"
  workers: 2
  limits:
    max_connections: MAXCONN
    header_timeout_ms: HEADER_MS
    idle_timeout_ms: IDLE_MS
apis:
  - id: sl
    resources:
      /hello:
        GET:
          integration: { type: HTTP_PROXY, uri: "{origin}/echo-key/hello" }
      /pass:
        GET:
          integration: { type: HTTP_PROXY, uri: "{origin}/echo-key/pass" }
    stages:
      prod:
        cache_cluster_enabled: true
        method_settings:
          - { resource_path: "/*", http_method: "*", cache_ttl_in_seconds: 300 }
          - { resource_path: "/pass", http_method: GET, caching_enabled: false }
"""


def config(maxconn, header_ms, idle_ms):
    return (CONFIG.replace("MAXCONN", str(maxconn)).replace("HEADER_MS", str(header_ms))
            .replace("IDLE_MS", str(idle_ms)))


# ------------------------------------------------------------------ attacker process

SLOW_HEAD = b"GET /prod/hello HTTP/1.1\r\nHost: gw\r\nX-Slow: " + b"a" * 4000


def attack(p):
    """Runs in its own process (GIL-free from the measuring client). Prints
    one READY line once every connection is open, then a JSON result line."""
    port, n, hold_max = p["port"], p["conns"], p["hold_max"]
    interval, bound = p["interval"], p["final_wait"]
    sel = selectors.DefaultSelector()
    sel.register(sys.stdin, selectors.EVENT_READ, None)
    slow_q = collections.deque()  # slow connections by next send time
    finished = []
    counts = collections.Counter()
    open_now = [0]
    holding = [True]

    def open_one(kind):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", port))
        except OSError as e:
            s.close()
            counts["connect_error " + type(e).__name__] += 1
            return False
        s.setblocking(False)
        rec = {"s": s, "kind": kind, "t_open": time.monotonic(), "t_first": None, "sent": 0,
               "got": b"", "closed": None, "how": None}
        counts["opened_" + kind] += 1
        open_now[0] += 1
        if kind == "slow":
            send_byte(rec)
            if rec["closed"] is None:
                slow_q.append((time.monotonic() + interval, rec))
        if rec["closed"] is None:
            sel.register(s, selectors.EVENT_READ, rec)
        return True

    def close_rec(rec, how):
        if rec["closed"] is not None:
            return
        rec["closed"] = time.monotonic()
        rec["how"] = how
        open_now[0] -= 1
        try:
            sel.unregister(rec["s"])
        except (KeyError, ValueError):
            pass
        rec["s"].close()
        rec["s"] = None
        finished.append(rec)
        if holding[0]:
            open_one(rec["kind"])

    def send_byte(rec):
        try:
            rec["s"].send(SLOW_HEAD[rec["sent"] % len(SLOW_HEAD):][:1])
            if rec["t_first"] is None:
                rec["t_first"] = time.monotonic()
            rec["sent"] += 1
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            close_rec(rec, "send failed")

    def step(timeout):
        stop = False
        for key, _ in sel.select(timeout):
            rec = key.data
            if rec is None:
                line = sys.stdin.readline()
                stop = True
                if not line:
                    sel.unregister(sys.stdin)
                continue
            if rec["closed"] is not None:
                continue
            try:
                data = rec["s"].recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except ConnectionResetError:
                close_rec(rec, "reset")
                continue
            except OSError:
                close_rec(rec, "error")
                continue
            if data:
                rec["got"] += data[:200]
            else:
                close_rec(rec, "fin")
        now = time.monotonic()
        while slow_q and slow_q[0][0] <= now:
            _, rec = slow_q.popleft()
            if rec["closed"] is None:
                send_byte(rec)
                if rec["closed"] is None:
                    slow_q.append((now + interval, rec))
        return stop

    t0 = time.monotonic()
    for i in range(n):
        open_one("idle" if i % 2 == 0 else "slow")
        if i % 200 == 199:
            step(0)  # keep up with closes and sends while opening
    t_ready = time.monotonic()
    sys.stdout.write("READY %s\n" % json.dumps({"open": open_now[0], "open_s": t_ready - t0}))
    sys.stdout.flush()
    lo = hi = open_now[0]
    deadline = t_ready + hold_max
    while time.monotonic() < deadline:
        if step(0.05):
            break
        lo, hi = min(lo, open_now[0]), max(hi, open_now[0])
    t_stop = time.monotonic()
    holding[0] = False
    left = [k.data for k in sel.get_map().values() if k.data is not None]
    deadline = t_stop + bound
    while time.monotonic() < deadline and any(r["closed"] is None for r in left):
        step(0.05)
    still = [r for r in left if r["closed"] is None]
    for r in still:
        r["s"].close()
    res = {"held_min": lo, "held_max": hi, "hold_s": t_stop - t_ready, "counts": dict(counts),
           "still_open": collections.Counter(r["kind"] for r in still),
           "closed": []}
    for r in finished:
        start = r["t_first"] if r["kind"] == "slow" and r["t_first"] else r["t_open"]
        first = r["got"].split(b"\r\n", 1)[0].decode("latin-1") if r["got"] else ""
        res["closed"].append([r["kind"], r["closed"] - start, r["how"], first])
    sys.stdout.write(json.dumps(res) + "\n")
    sys.stdout.flush()


# ------------------------------------------------------------------ parent

def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return "soft %d / hard %d: enough, nothing raised" % (soft, hard)
    if hard != resource.RLIM_INFINITY and hard < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, need))
            return "raised soft and hard %d/%d -> %d (as root)" % (soft, hard, need)
        except (ValueError, OSError) as e:
            raise SystemExit("RLIMIT_NOFILE hard limit %d < %d needed and cannot be raised: %s"
                             % (hard, need, e))
    resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    return "raised soft %d -> %d (hard %d)" % (soft, need, hard)


def proc_nofile(pid):
    try:
        with open("/proc/%d/limits" % pid) as f:
            for line in f:
                if line.startswith("Max open files"):
                    parts = line.split()
                    return "%s / %s" % (parts[3], parts[4])
    except OSError:
        pass
    return "?"


def normal_requests(port, n, pace):
    """n requests, each on a new connection; returns (latencies_ms, failures)."""
    lat, fails = [], []
    for i in range(n):
        path = "/prod/hello" if i % 2 == 0 else "/prod/pass?i=%d" % i
        t = time.monotonic()
        try:
            r = http_request(port, "GET", path, timeout=10)
            if r.status != 200:
                fails.append("%s: status %d" % (path, r.status))
        except (OSError, http.client.HTTPException) as e:
            fails.append("%s: %s: %s" % (path, type(e).__name__, e))
        lat.append((time.monotonic() - t) * 1000)
        time.sleep(pace)
    return lat, fails


def pct(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def lat_text(lat):
    return "%.1f / %.1f / %.1f ms" % (pct(lat, 50), pct(lat, 99), max(lat) if lat else float("nan"))


def read_line(proc, timeout):
    """One stdout line of the attacker, bounded in time."""
    buf = b""
    deadline = time.monotonic() + timeout
    fd = proc.stdout.fileno()
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            c = os.read(fd, 65536)
            if not c:
                break
            buf += c
            if b"\n" in buf:
                break
    line, _, rest = buf.partition(b"\n")
    proc._leftover = getattr(proc, "_leftover", b"") + rest
    return line.decode()


def read_rest(proc, timeout):
    buf = getattr(proc, "_leftover", b"")
    deadline = time.monotonic() + timeout
    fd = proc.stdout.fileno()
    while b"\n" not in buf and time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            c = os.read(fd, 1 << 20)
            if not c:
                break
            buf += c
    return buf.split(b"\n", 1)[0].decode()


def phase1(origin, fig, failures):
    gw = Gateway(config(SLOW_CONNS + 1000, HEADER_TIMEOUT_MS, IDLE_TIMEOUT_MS), origin=origin)
    fig["gw_nofile"] = proc_nofile(gw.proc.pid)
    try:
        http_request(gw.port, "GET", "/prod/hello")  # warm the cache: /hello is a HIT from now on
        base, base_fail = normal_requests(gw.port, NORMAL_REQUESTS, 0.005)
        fig["baseline"] = lat_text(base)
        if base_fail:
            failures.append("baseline requests failed: %s" % base_fail[:3])
        params = {"port": gw.port, "conns": SLOW_CONNS, "hold_max": LOAD_SECONDS + 60,
                  "interval": BYTE_INTERVAL,
                  "final_wait": max(HEADER_TIMEOUT_MS, IDLE_TIMEOUT_MS) / 1000.0 + SLACK + 2}
        att = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--attack", json.dumps(params)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            ready = read_line(att, 120)
            if not ready.startswith("READY "):
                failures.append("the attacker did not get its connections open: %r" % ready)
                return gw
            info = json.loads(ready[6:])
            fig["open_s"] = info["open_s"]
            t_hold = time.monotonic()
            pace = max(0.0, LOAD_SECONDS / NORMAL_REQUESTS - 0.005)
            under, under_fail = normal_requests(gw.port, NORMAL_REQUESTS, pace)
            rest = LOAD_SECONDS - (time.monotonic() - t_hold)
            if rest > 0:
                time.sleep(rest)
            alive_during = gw.alive()
            att.stdin.write(b"stop\n")
            att.stdin.flush()
            res = json.loads(read_rest(att, params["final_wait"] + 30) or "{}")
        finally:
            try:
                att.stdin.close()
            except OSError:
                pass
            harness.stop_pid(att, 10)
            att.stdout.close()
        fig["under"] = lat_text(under)
        fig["under_fail"] = len(under_fail)
        fig["under_n"] = len(under)
        if under_fail:
            failures.append("%d of %d normal requests failed under the attack: %s"
                            % (len(under_fail), len(under), under_fail[:3]))
        if under and pct(under, 99) > P99_BOUND_MS:
            failures.append("normal-client p99 %.0f ms > %.0f ms under the attack"
                            % (pct(under, 99), P99_BOUND_MS))
        if not alive_during or not gw.alive():
            failures.append("gatecache died under the attack (exit %r)" % gw.proc.poll())
        if not res:
            failures.append("no result from the attacker")
            return gw
        fig["held"] = "%d min / %d max over %.1f s" % (res["held_min"], res["held_max"], res["hold_s"])
        fig["counts"] = res["counts"]
        if res["held_max"] < SLOW_CONNS:
            failures.append("only %d connections were ever open at once (wanted %d): %s"
                            % (res["held_max"], SLOW_CONNS, res["counts"]))
        errors = {k: v for k, v in res["counts"].items() if k.startswith("connect_error")}
        if errors:
            failures.append("connect errors: %s" % errors)
        for kind, limit in (("idle", IDLE_TIMEOUT_MS / 1000.0), ("slow", HEADER_TIMEOUT_MS / 1000.0)):
            rows = [c for c in res["closed"] if c[0] == kind]
            life = [c[1] for c in rows]
            in_bound = sum(1 for x in life if limit - 0.25 <= x <= limit + SLACK)
            early = sum(1 for x in life if x < limit - 0.25)
            late = sum(1 for x in life if x > limit + SLACK)
            hows = collections.Counter(c[2] for c in rows)
            answers = collections.Counter(c[3] or "(no bytes)" for c in rows)
            still = res["still_open"].get(kind, 0)
            fig["closed_" + kind] = (
                "%d / %d within %.1f-%.1f s (p50 %.2f s, max %.2f s); early %d, late %d, still open %d; "
                "%s; answers: %s" % (in_bound, len(rows) + still, limit - 0.25, limit + SLACK,
                                     pct(life, 50), max(life) if life else float("nan"), early, late,
                                     still, ", ".join("%s %d" % kv for kv in hows.items()),
                                     ", ".join("%r %d" % kv for kv in answers.items())))
            if still or late or early:
                failures.append("%s connections: %d still open, %d closed late (> %.1f s), %d early"
                                % (kind, still, late, limit + SLACK, early))
            if hows.get("reset"):
                failures.append("%d %s connections were reset, not closed" % (hows["reset"], kind))
        return gw
    except BaseException:
        gw.stop(check=False)
        raise


def classify(socks, wait):
    """held / 503 / closed / reset for each socket, after `wait` seconds."""
    time.sleep(wait)
    out = collections.Counter()
    held = []
    for s in socks:
        s.setblocking(False)
        data = b""
        state = None
        for _ in range(100):
            try:
                c = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                state = "held" if not data else "answered, still open"
                break
            except ConnectionResetError:
                state = "reset"
                break
            if not c:
                state = "closed"
                break
            data += c
        if state == "held":
            held.append(s)
        elif state == "closed" and data.startswith(b"HTTP/1.1 503"):
            state = "503 then closed"
        elif state == "closed" and data:
            state = "closed after %r" % data.split(b"\r\n", 1)[0]
        out[state] += 1
    return out, held


def phase3(origin, fig, failures):
    gw = Gateway(config(FLOOD_LIMIT, 10000, 10000), origin=origin)
    socks = []
    connect_errors = collections.Counter()
    try:
        for _ in range(FLOOD_CONNS):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(5)
            try:
                s.connect(("127.0.0.1", gw.port))
                socks.append(s)
            except OSError as e:
                s.close()
                connect_errors[type(e).__name__] += 1
        got, held = classify(socks, 1.0)
        fig["flood"] = ", ".join("%s %d" % kv for kv in sorted(got.items()))
        if connect_errors:
            fig["flood"] += ", connect errors %s" % dict(connect_errors)
        n_held = len(held)
        refused = sum(v for k, v in got.items() if k in ("503 then closed", "closed"))
        if n_held > FLOOD_LIMIT:
            failures.append("%d connections held with max_connections %d" % (n_held, FLOOD_LIMIT))
        if n_held < FLOOD_LIMIT * 0.98:
            failures.append("only %d connections held with max_connections %d" % (n_held, FLOOD_LIMIT))
        if n_held + refused != len(socks) or connect_errors:
            failures.append("not every excess connection was refused cleanly: %s" % fig["flood"])
        # the held ones are live
        live = 0
        for s in held[:20]:
            s.setblocking(True)
            s.settimeout(5)
            try:
                s.sendall(b"GET /prod/hello HTTP/1.1\r\nHost: gw\r\n\r\n")
                live += s.recv(100).startswith(b"HTTP/1.1 200")
            except OSError:
                pass
        fig["flood_live"] = "%d / %d" % (live, min(20, len(held)))
        if live < min(20, len(held)):
            failures.append("held connections did not answer: %s" % fig["flood_live"])
        try:
            r = http_request(gw.port, "GET", "/prod/hello", timeout=5)
            fig["flood_normal"] = "status %d" % r.status
        except (OSError, http.client.HTTPException) as e:
            fig["flood_normal"] = "%s" % type(e).__name__
        # free 10 slots, then all
        for s in held[:10]:
            s.close()
        fig["resume10"] = resume_time(gw.port)
        for s in socks:
            s.close()
        socks = []
        fig["resume_all"] = resume_time(gw.port)
        for k in ("resume10", "resume_all"):
            if fig[k] is None:
                failures.append("service did not resume within 5 s (%s)" % k)
        if not gw.alive():
            failures.append("gatecache died in the max_connections run (exit %r)" % gw.proc.poll())
        rc = gw.stop(check=False)
        if rc != 0:
            failures.append("gatecache exited %r after SIGTERM (max_connections run)" % rc)
        return gw
    finally:
        for s in socks:
            s.close()
        if gw.proc is not None:
            gw.stop(check=False)


def resume_time(port):
    t = time.monotonic()
    while time.monotonic() - t < 5:
        try:
            if http_request(port, "GET", "/prod/hello", timeout=2).status == 200:
                return "%.0f ms" % ((time.monotonic() - t) * 1000)
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.02)
    return None


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--attack":
        attack(json.loads(sys.argv[2]))
        return 0
    if not os.access(harness.BIN, os.X_OK):
        print("no gatecache binary at %s (build: cmake --build build -j2)" % harness.BIN)
        return 2
    t_start = time.monotonic()
    need = max(SLOW_CONNS, FLOOD_CONNS) + 1024
    nofile = raise_nofile(need)
    failures, fig = [], {}
    gws = []
    with Origin() as origin:
        gws.append(phase1(origin, fig, failures))
        t1 = time.monotonic()
        rc1 = gws[0].stop(check=False)
        if rc1 != 0:
            failures.append("gatecache exited %r after SIGTERM (slow-client run)" % rc1)
        fig["stop1"] = time.monotonic() - t1
        gws.append(phase3(origin, fig, failures))

    print("## slowloris: slow and idle clients, max_connections\n")
    print("2 gateway workers; header_timeout_ms %d, idle_timeout_ms %d, max_connections %d; "
          "slow clients send one byte every %.1f s; binary %s\n"
          % (HEADER_TIMEOUT_MS, IDLE_TIMEOUT_MS, SLOW_CONNS + 1000, BYTE_INTERVAL,
             os.path.relpath(harness.BIN, harness.REPO)))
    counts = fig.get("counts", {})
    print("| figure | value |")
    print("|---|---|")
    rows = [
        ("RLIMIT_NOFILE (this script)", nofile),
        ("RLIMIT_NOFILE of gatecache (soft / hard, inherited)", fig.get("gw_nofile", "-")),
        ("slow/idle connections held (%d wanted)" % SLOW_CONNS, fig.get("held", "-")),
        ("time to open them", "%.1f s" % fig["open_s"] if "open_s" in fig else "-"),
        ("connections opened in all (idle / slow head; closed ones re-opened)",
         "%s / %s" % (counts.get("opened_idle", "-"), counts.get("opened_slow", "-"))),
        ("normal client p50 / p99 / max, no attack (%d requests)" % NORMAL_REQUESTS,
         fig.get("baseline", "-")),
        ("**normal client p50 / p99 / max under the attack**", "**%s**" % fig.get("under", "-")),
        ("normal requests failed under the attack", "%s / %s" % (fig.get("under_fail", "-"),
                                                                 fig.get("under_n", "-"))),
        ("idle connections closed by idle_timeout", fig.get("closed_idle", "-")),
        ("slow-head connections closed by header_timeout", fig.get("closed_slow", "-")),
        ("%d connections, max_connections %d" % (FLOOD_CONNS, FLOOD_LIMIT), fig.get("flood", "-")),
        ("held connections answering a request", fig.get("flood_live", "-")),
        ("new client while full", fig.get("flood_normal", "-")),
        ("service back after closing 10 / all", "%s / %s" % (fig.get("resume10"), fig.get("resume_all"))),
    ]
    for k, v in rows:
        print("| %s | %s |" % (k, v))
    print("\nrun time %.1f s" % (time.monotonic() - t_start))
    for gw in gws:
        if gw is not None and harness.SANITIZED and gw.sanitizer_report():
            failures.append("sanitizer report in gatecache stderr (%s)" % gw.dir)
    if failures:
        print("FAIL: " + "; ".join(failures))
        for gw in gws:
            if gw is not None:
                print("gatecache stderr (tail, %s):\n%s" % (gw.dir, (getattr(gw, "final_stderr", "")
                                                                    or gw.stderr())[-2000:]))
        return 1
    for gw in gws:
        shutil.rmtree(gw.dir, ignore_errors=True)
    print("PASS: service went on under %d slow/idle connections; timeouts and max_connections held"
          % SLOW_CONNS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
