#!/usr/bin/env python3
"""Memory under churn: the gateway's RSS stays within the stage cache's
capacity plus a fixed overhead while many times the capacity flows through it.

gatecache (2 workers) fronts the e2e origin's /large?bytes=N (N bytes of a
deterministic pattern) on a caching route keyed on the whole query string, with
a small stage cache (CHURN_CAPACITY, default 64 MiB). LOAD_THREADS keep-alive
clients ask for distinct keys (a unique `k` per request) whose bodies are
uniform between CHURN_MIN_BODY and CHURN_MAX_BODY (1 KiB..256 KiB), so small
and large entries are interleaved and evicted in mixed order (what fragments a
heap); 10 % of the requests ask again for one of the client's recent keys (a
HIT while it lives, a MISS and a new store once evicted). Every answer is
checked: 200, the exact length and bytes asked for. The run stops when the
bodies stored (the MISS answers' bytes) reach CHURN_FACTOR x the capacity
(default 16), or after LOAD_SECONDS, whichever comes first.

CHURN_SIZES=log-uniform draws sizes log-uniformly instead (three quarters of
the entries below 64 KiB). It is slow with this origin: origin.py writes the
head and the body of /large in two writes, so an answer that fits in one
loopback segment (< ~64 KiB) waits ~40 ms for the gateway's delayed ACK
(Nagle); use LOAD_THREADS=16 and more time with it (~20 MiB/s vs ~80 MiB/s).

A sampler reads the gateway's VmRSS (/proc/PID/status) and the stage's
gatecache_cache_bytes (/metrics on the admin listener) every 0.5 s; the peak is
the larger of the sampled maximum and the kernel's VmHWM at the end.

Check (exit 1 otherwise):
    peak RSS <= baseline RSS + capacity x RSS_FACTOR (1.25) + RSS_SLACK_MIB (32 MiB)
where baseline is the RSS right after start. Why that bound: the store charges
every entry with all of its bytes (struct, key, head, body; src/cache/store.c)
and keeps that sum <= capacity, so the cached data itself is at most the
capacity. On top come (a) glibc's per-allocation header and rounding (< 1 %
for entries of 1 KiB and more); (b) fragmentation: freed entries of mixed
sizes leave holes that a larger entry cannot reuse, in each malloc arena the
worker threads use, and glibc keeps freed heap memory instead of returning it
-- the 25 %, proportional to what the heap holds; (c) a part that does not
grow with the capacity: answers in flight (each client's body being filled
into a new entry and sent, up to 256 KiB each, beside an entry being evicted
that a reader still holds), the hash-table arrays, libcurl's connection pool
and handles, and each arena's unused top -- the 32 MiB. Measured on the 2-CPU
development machine: peak - baseline = 1.19-1.31 x the capacity (76-84 MiB for
64 MiB; docs/reliability.md), a plateau from ~3 x the capacity on. Under
GATECACHE_SANITIZED=1 the RSS is printed but not judged (ASan's quarantine
and shadow memory are not the gateway's).

Also checked: the stage's accounted bytes (sampled) never above its
capacity, evictions happened, the stored bytes reached CHURN_MIN_FACTOR (2) x
the capacity, every answer correct, and exit 0 on SIGTERM.

Figures go to stdout as a Markdown table. Environment: LOAD_SECONDS (default
20), LOAD_THREADS (8), LOAD_SEED (1), GATECACHE_BIN, GATECACHE_SANITIZED,
CHURN_CAPACITY ("64MiB", a cache_cluster_size with a KiB/MiB/GiB unit),
CHURN_FACTOR (16), CHURN_MIN_FACTOR (2), CHURN_SIZES (uniform),
CHURN_MIN_BODY (1024), CHURN_MAX_BODY (262144), RSS_FACTOR (1.25),
RSS_SLACK_MIB (32).
"""
import http.client
import math
import os
import random
import re
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
import harness  # noqa: E402
import loadlib  # noqa: E402
from harness import Gateway, Origin, http_request  # noqa: E402

LOAD_SECONDS = float(os.environ.get("LOAD_SECONDS", "20"))
THREADS = int(os.environ.get("LOAD_THREADS", "8"))
SEED = int(os.environ.get("LOAD_SEED", "1"))
CAPACITY_TEXT = os.environ.get("CHURN_CAPACITY", "64MiB")
FACTOR = float(os.environ.get("CHURN_FACTOR", "16"))
MIN_FACTOR = float(os.environ.get("CHURN_MIN_FACTOR", "2"))
MIN_BODY = int(os.environ.get("CHURN_MIN_BODY", "1024"))
MAX_BODY = int(os.environ.get("CHURN_MAX_BODY", "262144"))
SIZES = os.environ.get("CHURN_SIZES", "uniform")  # or "log-uniform"
RSS_FACTOR = float(os.environ.get("RSS_FACTOR", "1.25"))
RSS_SLACK_MIB = float(os.environ.get("RSS_SLACK_MIB", "32"))
SAMPLE_EVERY = 0.5
REPEAT_SHARE = 0.10
API, STAGE = "churn", "prod"
MIB = 1024.0 * 1024.0

CONFIG = """
server:
  listen: "127.0.0.1:{port}"
  workers: 2
  admin_listen: "127.0.0.1:{admin_port}"
apis:
  - id: churn
    resources:
      /blob:
        GET:
          integration: { type: HTTP_PROXY, uri: "{origin}/large", timeout_ms: 10000 }
          cache_key_parameters: ["method.request.querystring.*"]
    stages:
      prod:
        cache_cluster_enabled: true
        cache_cluster_size: "CAPACITY"
        method_settings:
          - { resource_path: "/*", http_method: "*", cache_ttl_in_seconds: 3600 }
"""

UNITS = {"KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3}


def capacity_bytes(text):
    m = re.match(r"^([0-9.]+) ?(KiB|MiB|GiB)$", text)
    if not m:
        raise SystemExit("CHURN_CAPACITY must be a number with KiB, MiB or GiB: %r" % text)
    return int(float(m.group(1)) * UNITS[m.group(2)])


CAPACITY = capacity_bytes(CAPACITY_TEXT)
TARGET = int(FACTOR * CAPACITY)
PATTERN = None  # origin.py's pattern(MAX_BODY), built in main()


def pattern(n):
    unit = b"0123456789abcdefghijklmnopqrstuvwxyz\n"
    return (unit * (n // len(unit) + 1))[:n]


def read_status(pid):
    """{'VmRSS': kB, 'VmHWM': kB} of a live process, {} once it is gone."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    out[k] = int(v.split()[0]) * 1024
    except OSError:
        pass
    return out


def metrics(gw):
    """{name: value} summed over the series of stage churn/prod."""
    return loadlib.stage_metrics(gw, "churn", "prod")


class Stats(loadlib.Stats):
    def __init__(self):
        super().__init__()
        self.pushed = 0          # body bytes of MISS answers (stored by the gateway)
        self.done = threading.Event()


def client(port, stop_at, rng, st, tid):
    conn = None
    recent = []
    n = 0
    lo, hi = math.log(MIN_BODY), math.log(MAX_BODY)
    while time.monotonic() < stop_at and not st.done.is_set():
        if recent and rng.random() < REPEAT_SHARE:
            size, key = rng.choice(recent)
            kind = "repeat"
        else:
            if SIZES == "uniform":
                size = rng.randint(MIN_BODY, MAX_BODY)
            else:
                size = int(math.exp(rng.uniform(lo, hi)))
            key = "t%d-%d" % (tid, n)
            n += 1
            kind = "new"
            recent.append((size, key))
            del recent[:-50]
        target = "/%s/blob?bytes=%d&k=%s" % (STAGE, size, key)
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                st.add(connections=1)
            conn.request("GET", target)
            r = conn.getresponse()
            body = r.read()
            status = r.status
            cache = r.getheader("X-Cache-Status", "-")
            if r.will_close:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as e:
            st.add(requests=1, errors=1)
            st.sample("error %s: %s: %s" % (target, type(e).__name__, e))
            if conn is not None:
                conn.close()
                conn = None
            continue
        st.add(requests=1, **{"cache_" + cache: 1, "kind_" + kind: 1})
        if status != 200:
            st.add(errors=1)
            st.sample("status %d for %s: %r" % (status, target, body[:200]))
            continue
        if len(body) != size or body != PATTERN[:size]:
            st.add(errors=1, corrupt=1)
            st.sample("wrong body for %s: %d bytes (asked %d)" % (target, len(body), size))
            continue
        if kind == "new" and cache != "MISS":
            st.add(errors=1)
            st.sample("X-Cache-Status %s for a new key %s" % (cache, target))
        if cache == "MISS":
            with st.lock:
                st.pushed += size
                if st.pushed >= TARGET:
                    st.done.set()
    if conn is not None:
        conn.close()


def sampler(gw, pid, t0, st, out):
    """Every SAMPLE_EVERY s until st.done: (seconds, RSS, bytes pushed, cache bytes)."""
    while True:
        t = time.monotonic() - t0
        rss = read_status(pid).get("VmRSS")
        try:
            cache = metrics(gw).get("gatecache_cache_bytes")
        except (OSError, http.client.HTTPException, ValueError):
            cache = None
        with st.lock:
            pushed = st.pushed
        if rss is not None:
            out.append((t, rss, pushed, cache))
        if st.done.wait(SAMPLE_EVERY):
            return


def mib(n):
    return "%.1f MiB" % (n / MIB) if n is not None else "-"


def main():
    global PATTERN
    if not os.access(harness.BIN, os.X_OK):
        print("no gatecache binary at %s (build: cmake --build build -j2)" % harness.BIN)
        return 2
    if CAPACITY < 64 * 1024 or not 0 < MIN_BODY <= MAX_BODY or \
            SIZES not in ("uniform", "log-uniform"):
        print("CHURN_CAPACITY below 64KiB, bad CHURN_MIN_BODY/CHURN_MAX_BODY, or CHURN_SIZES "
              "not uniform / log-uniform")
        return 2
    PATTERN = pattern(MAX_BODY)
    t_start = time.monotonic()
    st = Stats()
    samples = []
    with Origin() as origin:
        gw = Gateway(CONFIG.replace("CAPACITY", CAPACITY_TEXT), origin=origin)
        pid = gw.proc.pid
        try:
            time.sleep(0.5)
            baseline = read_status(pid).get("VmRSS", 0)
            m0 = metrics(gw)
            t0 = time.monotonic()
            stop_at = t0 + LOAD_SECONDS
            threads = [threading.Thread(target=client, daemon=True,
                                        args=(gw.port, stop_at, random.Random(SEED * 1000 + i), st, i))
                       for i in range(THREADS)]
            samp = threading.Thread(target=sampler, daemon=True, args=(gw, pid, t0, st, samples))
            samp.start()
            for t in threads:
                t.start()
            for t in threads:
                t.join(max(1.0, stop_at - time.monotonic() + 30))
            elapsed = time.monotonic() - t0
            hung = sum(t.is_alive() for t in threads)
            st.done.set()
            samp.join(15)
            alive = gw.alive()
            end = read_status(pid) if alive else {}
            m1 = metrics(gw) if alive else {}
        finally:
            stop_rc = gw.stop(check=False)
            stderr_tail = gw.final_stderr[-2000:] if hasattr(gw, "final_stderr") else ""
            sanitizer = harness.SANITIZED and gw.sanitizer_report()

    c = st.c
    d = {k: m1.get(k, 0) - m0.get(k, 0) for k in m1}
    peak_sampled = max((s[1] for s in samples), default=0)
    peak = max(peak_sampled, end.get("VmHWM", 0))
    bound = baseline + CAPACITY * RSS_FACTOR + RSS_SLACK_MIB * MIB
    cache_max = max((s[3] for s in samples if s[3] is not None), default=None)
    end_rss = end.get("VmRSS")
    # RSS when the stored bytes first reached 1x, 2x, ... the capacity
    marks = []
    k = 1
    for t, rss, pushed, _ in samples:
        while pushed >= k * CAPACITY:
            marks.append((k, t, rss))
            k += 1

    print("## churn: RSS under cache churn\n")
    print("%d client threads (keep-alive), %.1f s, 2 gateway workers, cache %s (%d bytes), "
          "bodies %d..%d bytes (%s), %.0f %% repeats, seed %d, binary %s\n"
          % (THREADS, elapsed, CAPACITY_TEXT, CAPACITY, MIN_BODY, MAX_BODY, SIZES, REPEAT_SHARE * 100,
             SEED, os.path.relpath(harness.BIN, harness.REPO)))
    print("| figure | value |")
    print("|---|---|")
    rows = [
        ("requests (new keys / repeats)", "%d (%d / %d)" % (
            c.get("requests", 0), c.get("kind_new", 0), c.get("kind_repeat", 0))),
        ("HIT / MISS", "%d / %d" % (c.get("cache_HIT", 0), c.get("cache_MISS", 0))),
        ("bytes stored (MISS bodies)", "%s = %.2f x capacity (target %.1f x, minimum %.1f x)"
         % (mib(st.pushed), st.pushed / CAPACITY, FACTOR, MIN_FACTOR)),
        ("throughput", "%.1f MiB/s, %.0f requests/s" % (
            st.pushed / MIB / max(elapsed, 1e-9), c.get("requests", 0) / max(elapsed, 1e-9))),
        ("evictions (gatecache_cache_evictions_total)",
         "%d" % d.get("gatecache_cache_evictions_total", 0)),
        ("cache bytes: max sampled / at the end / capacity", "%s / %s / %s" % (
            mib(cache_max), mib(m1.get("gatecache_cache_bytes")), mib(CAPACITY))),
        ("RSS baseline (after start)", mib(baseline)),
        ("RSS peak (max of %d samples, VmHWM)" % len(samples),
         "%s (%s, %s)" % (mib(peak), mib(peak_sampled), mib(end.get("VmHWM")))),
        ("RSS at the end of the load", mib(end_rss)),
        ("peak - baseline", "%s = %.2f x capacity" % (mib(peak - baseline),
                                                      (peak - baseline) / CAPACITY)),
        ("**bound**: baseline + %.2f x capacity + %.0f MiB" % (RSS_FACTOR, RSS_SLACK_MIB),
         "**%s** (%s)" % (mib(bound), "not judged: sanitized build" if harness.SANITIZED
                          else "met" if peak <= bound else "EXCEEDED")),
        ("errors (non-200, wrong body, connection errors)", "%d" % c.get("errors", 0)),
    ]
    for k_, v in rows:
        print("| %s | %s |" % (k_, v))
    if marks:
        print("\n| stored | at | RSS |")
        print("|--:|--:|--:|")
        step = max(1, -(-len(marks) // 12))  # at most ~12 rows, the last one always
        for i, (k_, t, rss) in enumerate(marks):
            if i % step and i != len(marks) - 1:
                continue
            print("| %d x capacity | %.1f s | %s |" % (k_, t, mib(rss)))

    failures = []
    if peak > bound and not harness.SANITIZED:
        failures.append("peak RSS %s above the bound %s" % (mib(peak), mib(bound)))
    if cache_max is not None and cache_max > CAPACITY:
        failures.append("gatecache_cache_bytes reached %d, above the capacity %d"
                        % (cache_max, CAPACITY))
    if st.pushed < MIN_FACTOR * CAPACITY:
        failures.append("only %.2f x the capacity stored in %.0f s (minimum %.1f x): "
                        "too little churn to judge" % (st.pushed / CAPACITY, elapsed, MIN_FACTOR))
    if alive and not d.get("gatecache_cache_evictions_total", 0):
        failures.append("no eviction")
    if c.get("errors", 0):
        failures.append("%d errors" % c["errors"])
    return loadlib.finish(failures, gw, t_start, st.samples, alive, stop_rc, sanitizer,
                          stderr_tail, hung,
                          "PASS: peak RSS within the bound" if not harness.SANITIZED
                          else "PASS (sanitized build: RSS not judged)")


if __name__ == "__main__":
    sys.exit(main())
