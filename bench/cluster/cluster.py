#!/usr/bin/env python3
"""Client side of bench/cluster/run.sh (Python 3 standard library only).

Subcommands (every address is 127.0.0.1; every wait is bounded):

  ready     --port P --admin-port Q --token-file F [--timeout S]
            waits until the node answers /metrics with gatecache_l2_stages_readable >= 1
  propagate --a P --b P --admin-a Q --token-file F --api ID --kind put|admin
            --count N --first I --bound S --out FILE
            measures invalidation propagation A -> B (see run.sh), writes JSON
  fill      --port P --ids N --out FILE
            GET /prod/items/1..N on one keep-alive connection; JSON of the
            X-Cache-Status counts
  flush     --api ID --admin-a Q --wait-admin Q[,Q...] --token-file F
            flushes the stage on A and waits until A has published it and every
            other node has received it
  metrics   --admin-port Q --token-file F
            the gatecache_l2_* and gatecache_* counters, one "name value" a line
  count     --origin P
            requests the origin has counted (GET /__count)
  report    --dir D   Markdown from the files run.sh left in D
"""
import argparse
import http.client
import json
import os
import statistics
import sys
import time


def log(*a):
    print("bench/cluster:", *a, file=sys.stderr, flush=True)


def token(path):
    with open(path) as f:
        return f.read().strip()


class Conn:
    """One persistent HTTP/1.1 connection (http.client reopens it when the
    server closed it)."""

    def __init__(self, port, timeout=5.0):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def call(self, method, path, body=None, headers=None):
        h = dict(headers or {})
        if body is not None:
            h.setdefault("Content-Type", "application/json")
        try:
            self.c.request(method, path, body=body, headers=h)
            r = self.c.getresponse()
            data = r.read()
        except (http.client.HTTPException, OSError):
            # a connection the server closed between two requests: once again
            self.c.close()
            self.c.request(method, path, body=body, headers=h)
            r = self.c.getresponse()
            data = r.read()
        return r.status, r.getheader("X-Cache-Status"), data

    def close(self):
        self.c.close()


def metrics(admin_port, tok):
    c = Conn(admin_port)
    try:
        st, _, body = c.call("GET", "/metrics", headers={"Authorization": "Bearer " + tok})
    finally:
        c.close()
    if st != 200:
        raise RuntimeError("GET /metrics on admin port %d: %d" % (admin_port, st))
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                pass
    return out


def redis_cmd(port, *args):
    """One command to the Redis on 127.0.0.1:port (RESP2); the reply as Python
    values. For diagnostics only."""
    import socket
    out = b"*%d\r\n" % len(args)
    for x in args:
        x = x if isinstance(x, bytes) else str(x).encode()
        out += b"$%d\r\n%s\r\n" % (len(x), x)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(out)
        f = sock.makefile("rb")

        def read():
            line = f.readline().rstrip(b"\r\n")
            t, rest = line[:1], line[1:]
            if t in (b"+", b"-"):
                return rest.decode("latin-1")
            if t == b":":
                return int(rest)
            if t == b"$":
                n = int(rest)
                if n < 0:
                    return None
                data = f.read(n + 2)[:n]
                return data
            if t == b"*":
                n = int(rest)
                return None if n < 0 else [read() for _ in range(n)]
            raise RuntimeError("bad RESP reply %r" % line)
        return read()


def redis_path_state(port, path):
    """The path index sets naming path (any generation) and, for each entry
    they list, its remaining TTL in ms and its origin counter n."""
    found = []
    cursor = b"0"
    for _ in range(100000):
        cursor, keys = redis_cmd(port, "SCAN", cursor, "MATCH", "*" + path, "COUNT", 1000)
        for k in keys:
            for m in redis_cmd(port, "SMEMBERS", k) or []:
                v = redis_cmd(port, "GET", m)
                n = None
                if v:
                    i = v.rfind(b'"n": ')
                    if i >= 0:
                        n = v[i + 5:].split(b"}")[0].strip().decode("latin-1", "replace")
                found.append({"index": k.decode("latin-1"), "entry": m.decode("latin-1"),
                              "pttl_ms": redis_cmd(port, "PTTL", m), "n": n})
        if cursor in (b"0", 0):
            break
    return found


def body_n(data):
    try:
        return json.loads(data)["n"]
    except (ValueError, KeyError, TypeError):
        return None


def pct(xs, p):
    """Nearest-rank percentile of a sorted list."""
    if not xs:
        return float("nan")
    k = max(0, min(len(xs) - 1, int(round(p / 100.0 * len(xs) + 0.5)) - 1))
    return xs[k]


# ------------------------------------------------------------------ commands

def cmd_ready(a):
    tok = token(a.token_file)
    deadline = time.monotonic() + a.timeout
    last = None
    while time.monotonic() < deadline:
        try:
            m = metrics(a.admin_port, tok)
            last = m.get("gatecache_l2_stages_readable")
            if last is not None and last >= 1:
                return 0
        except (OSError, RuntimeError, http.client.HTTPException) as e:
            last = e
        time.sleep(0.05)
    log("node with admin port %d not ready (gatecache_l2_stages_readable: %r)" % (a.admin_port, last))
    return 1


def cmd_propagate(a):
    tok = token(a.token_file)
    ca, cb = Conn(a.a), Conn(a.b)
    cadm = Conn(a.admin_a) if a.kind == "admin" else None
    auth = {"Authorization": "Bearer " + tok}
    watch = ('gatecache_l2_lookups_total{result="hit"}', 'gatecache_l2_lookups_total{result="miss"}',
             'gatecache_l2_lookups_total{result="error"}', 'gatecache_l2_lookups_total{result="skipped"}',
             "gatecache_l2_stores_total", "gatecache_l2_store_failures_total",
             "gatecache_l2_invalidations_published_total", "gatecache_l2_invalidations_received_total",
             "gatecache_l2_invalidation_retries_total", "gatecache_l2_resets_total")
    m0 = {n: metrics(p, tok) for n, p in (("A", a.admin_a), ("B", a.admin_b))}
    lat_arrive, lat_sent, polls_per, poll_times, detect_times, inv_times = [], [], [], [], [], []
    a_not_miss, b_not_hit, unseen, inv_failed = [], [], [], []
    progress = max(1, a.count // 10)
    t_start = time.monotonic()
    for k in range(a.count):
        i = a.first + k
        path = "/prod/items/%d" % i
        st, cs, data = ca.call("GET", path)
        if st != 200 or cs != "MISS":
            a_not_miss.append((i, st, cs))
        st, cs, data = cb.call("GET", path)
        b_first = (st, cs)
        if st != 200 or cs != "HIT":
            b_not_hit.append((i, st, cs))
        old_n = body_n(data)
        # the invalidation, made on A
        s0 = time.perf_counter_ns()
        if a.kind == "put":
            st, _, _ = ca.call("PUT", path, body=b'{"v":%d}' % i)
            ok = st == 200
        else:
            doc = json.dumps({"paths": ["/items/%d" % i]}).encode()
            st, _, _ = cadm.call("POST", "/v1/apis/%s/stages/prod/invalidations" % a.api,
                                 body=doc, headers=auth)
            ok = st == 201
        t0 = time.perf_counter_ns()
        inv_times.append(t0 - s0)
        if not ok:
            inv_failed.append((i, st))
            continue
        # poll B until it no longer answers the old copy
        bound = t0 + int(a.bound * 1e9)
        polls = 0
        seen = False
        while True:
            sent = time.perf_counter_ns()
            if sent > bound:
                break
            st, cs, data = cb.call("GET", path)
            t1 = time.perf_counter_ns()
            polls += 1
            if st == 200 and (cs == "MISS" or body_n(data) != old_n):
                lat_arrive.append(t1 - t0)
                # the change reached B after B served the previous (old) answer
                # and before it served this one: 'sent' bounds it from above
                # without this request's own origin fetch
                lat_sent.append(sent - t0)
                detect_times.append(t1 - sent)
                seen = True
                break
            poll_times.append(t1 - sent)
        polls_per.append(polls)
        if not seen:
            # what is left: B's and A's answers now, and the path in Redis
            st_b, cs_b, d_b = cb.call("GET", path)
            st_a, cs_a, d_a = ca.call("GET", path)
            diag = {"id": i, "b_before": "%s %s" % b_first, "n_before": old_n,
                    "b_after_bound": "%s %s n=%s" % (st_b, cs_b, body_n(d_b)),
                    "a_after_bound": "%s %s n=%s" % (st_a, cs_a, body_n(d_a))}
            try:
                diag["redis"] = redis_path_state(a.redis_port, "/items/%d" % i)
            except (OSError, RuntimeError) as e:
                diag["redis"] = "not read: %s" % e
            log("never seen: %s" % json.dumps(diag))
            unseen.append(diag)
        if (k + 1) % progress == 0:
            log("%s: %d/%d (%.0f s)" % (a.kind, k + 1, a.count, time.monotonic() - t_start))
    for c in (ca, cb, cadm):
        if c:
            c.close()
    m1 = {n: metrics(p, tok) for n, p in (("A", a.admin_a), ("B", a.admin_b))}
    counters = {n: {k.replace("gatecache_l2_", "").replace("_total", ""):
                    int(m1[n].get(k, 0) - m0[n].get(k, 0)) for k in watch} for n in m0}
    ms = lambda ns: ns / 1e6  # noqa: E731
    la, ls = sorted(lat_arrive), sorted(lat_sent)
    res = {
        "kind": a.kind, "count": a.count, "bound_s": a.bound,
        "measured": len(la),
        "p50": ms(pct(la, 50)), "p90": ms(pct(la, 90)), "p99": ms(pct(la, 99)),
        "max": ms(la[-1]) if la else float("nan"),
        "sent_p50": ms(pct(ls, 50)), "sent_p90": ms(pct(ls, 90)), "sent_p99": ms(pct(ls, 99)),
        "sent_max": ms(ls[-1]) if ls else float("nan"),
        "poll_mean": ms(statistics.mean(poll_times)) if poll_times else float("nan"),
        "poll_count": len(poll_times),
        "polls_mean": statistics.mean(polls_per) if polls_per else float("nan"),
        "detect_mean": ms(statistics.mean(detect_times)) if detect_times else float("nan"),
        "inv_mean": ms(statistics.mean(inv_times)) if inv_times else float("nan"),
        "a_not_miss": len(a_not_miss), "a_not_miss_first": a_not_miss[:5],
        "b_not_hit": len(b_not_hit), "b_not_hit_first": b_not_hit[:5],
        "unseen": len(unseen), "unseen_first": unseen[:5],
        "inv_failed": len(inv_failed), "inv_failed_first": inv_failed[:5],
        "seconds": time.monotonic() - t_start,
        "counters": counters,
    }
    with open(a.out, "w") as f:
        json.dump(res, f)
    log("%s: p50 %.3f ms, p99 %.3f ms, max %.3f ms; B not HIT %d, unseen %d, failed %d"
        % (a.kind, res["p50"], res["p99"], res["max"], res["b_not_hit"], res["unseen"],
           res["inv_failed"]))
    return 0


def cmd_fill(a):
    c = Conn(a.port)
    counts = {}
    t = time.monotonic()
    for i in range(1, a.ids + 1):
        st, cs, _ = c.call("GET", "/prod/items/%d" % i)
        key = "%d %s" % (st, cs)
        counts[key] = counts.get(key, 0) + 1
    c.close()
    with open(a.out, "w") as f:
        json.dump(counts, f)
    log("fill on port %d: %d ids in %.1f s: %s" % (a.port, a.ids, time.monotonic() - t, counts))
    return 0


def cmd_flush(a):
    tok = token(a.token_file)
    others = [int(p) for p in a.wait_admin.split(",") if p]
    before_a = metrics(a.admin_a, tok).get("gatecache_l2_invalidations_published_total", 0)
    before = {p: metrics(p, tok).get("gatecache_l2_invalidations_received_total", 0) for p in others}
    c = Conn(a.admin_a)
    st, _, body = c.call("DELETE", "/v1/apis/%s/stages/prod/cache" % a.api,
                         headers={"Authorization": "Bearer " + tok})
    c.close()
    if st not in (200, 202):
        log("flush answered %d: %r" % (st, body[:200]))
        return 1
    deadline = time.monotonic() + 10
    waiting = {a.admin_a: ("gatecache_l2_invalidations_published_total", before_a)}
    waiting.update({p: ("gatecache_l2_invalidations_received_total", before[p]) for p in others})
    while waiting and time.monotonic() < deadline:
        for p, (name, v0) in list(waiting.items()):
            if metrics(p, tok).get(name, 0) > v0:
                del waiting[p]
        time.sleep(0.02)
    if waiting:
        log("flush: not seen on admin port(s) %s within 10 s" % sorted(waiting))
        return 1
    # the flushing node reads the stage's L2 again once its job is done
    return 0


def cmd_metrics(a):
    for k, v in sorted(metrics(a.admin_port, token(a.token_file)).items()):
        print(k, "%.0f" % v)
    return 0


def cmd_count(a):
    c = Conn(a.origin)
    st, _, body = c.call("GET", "/__count")
    c.close()
    print(json.loads(body)["count"])
    return 0 if st == 200 else 1


# ------------------------------------------------------------------ report

def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_kv(path):
    out = {}
    try:
        with open(path) as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition("=")
                out[k] = v
    except OSError:
        pass
    return out


def f3(x):
    return "n/a" if x != x else "%.3f" % x


def limiter(r):
    """What a wrk run's req/s was most likely bounded by, from CPU shares."""
    out = []
    if r["cpu0"] >= 90:
        out.append("the server side (its CPU) was saturated")
    if r["wrk"] >= 90:
        out.append("wrk was near one full CPU, so the client limited req/s too")
    if r["noise"] >= 10:
        out.append("other processes used %.0f%% of a CPU meanwhile, so this run is not "
                   "reliable" % r["noise"])
    if not out:
        return ("neither was saturated: req/s was bounded by waiting "
                "(64 connections, round trips), not by CPU")
    return "; ".join(out)


def cmd_report(a):
    d = a.dir
    env = read_kv(os.path.join(d, "env"))
    print("Measured on %s: %s CPUs, Linux %s, %s; gatecache `%s`." % (
        env.get("date", "?"), env.get("nproc", "?"), env.get("kernel", "?"),
        env.get("redis", "?"), env.get("bin", "?")))
    print("Reproduce: `%s`" % env.get("command", "bench/cluster/run.sh"))
    print()
    print("Setup: one redis-server (no persistence), tests/e2e/origin.py, and gatecache nodes "
          "A, B (L1 256 MiB) and C (L1 64 KiB, the minimum), each `workers: 1`, "
          "sharing Redis with one key_prefix, all on 127.0.0.1. "
          "Route `/items/{id}`: GET cached 300 s, PUT with `invalidates: [\"GET /items/{id}\"]`.")
    print()
    print("### Invalidation propagation, node A -> node B")
    print()
    print("Per id: GET on A (a MISS: origin, stored in A's L1 and in Redis), GET on B "
          "(should be a HIT read from Redis), then the invalidation on A; t0 = A's answer "
          "to it arrived. Then GET on B over one keep-alive connection, again and again, "
          "until B answers MISS (or another origin counter); t1 = that answer arrived. "
          "Bound: %s s per id." % env.get("bound", "?"))
    print()
    print("| invalidation on A | ids | t1 - t0 p50 | p90 | p99 | max | detecting poll sent - t0 p50 / p99 / max "
          "| one poll (HIT) | polls per id | invalidation call | never seen | B not a HIT before | A not a MISS | call failed | noise |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    names = {"put": "PUT /prod/items/{id} (write-triggered)",
             "admin": "admin POST .../invalidations {\"paths\": [\"/items/{id}\"]}"}
    for kind in ("put", "admin"):
        r = read_json(os.path.join(d, "prop-%s.json" % kind))
        if not r:
            print("| %s | not measured | | | | | | | | | | | | | |" % names[kind])
            continue
        try:
            with open(os.path.join(d, "noise-prop-%s" % kind)) as nf:
                noise = nf.read().strip() + "%"
        except OSError:
            noise = "?"
        print("| %s | %d | %s ms | %s ms | %s ms | %s ms | %s / %s / %s ms | %s ms | %.1f | %s ms | %d | %d | %d | %d | %s |" % (
            names[kind], r["count"], f3(r["p50"]), f3(r["p90"]), f3(r["p99"]), f3(r["max"]),
            f3(r["sent_p50"]), f3(r["sent_p99"]), f3(r["sent_max"]), f3(r["poll_mean"]),
            r["polls_mean"], f3(r["inv_mean"]), r["unseen"], r["b_not_hit"], r["a_not_miss"],
            r["inv_failed"], noise))
    notes = []
    for kind in ("put", "admin"):
        r = read_json(os.path.join(d, "prop-%s.json" % kind))
        if not r:
            continue
        if r["b_not_hit"]:
            notes.append("**%s: %d of %d GETs on B right after A's MISS were not HITs (first: %s)**; "
                         "B's L2 lookup counters below tell whether B asked Redis and found "
                         "nothing (a miss: A's copy was not in Redis yet) or did not ask "
                         "(skipped, error)"
                         % (kind, r["b_not_hit"], r["count"], r["b_not_hit_first"]))
        if r["a_not_miss"]:
            notes.append("**%s: %d first GETs on A were not MISSes (first: %s)**"
                         % (kind, r["a_not_miss"], r["a_not_miss_first"]))
        if r["unseen"]:
            notes.append("**%s: %d invalidations not seen on B within %s s** (first: %s)"
                         % (kind, r["unseen"], r["bound_s"], r["unseen_first"]))
        if r["inv_failed"]:
            notes.append("**%s: %d invalidation calls failed (first: %s)**"
                         % (kind, r["inv_failed"], r["inv_failed_first"]))
    for kind in ("put", "admin"):
        r = read_json(os.path.join(d, "prop-%s.json" % kind))
        if r and r["measured"]:
            notes.append("%s: the detecting request (B's MISS: a Redis lookup, then the origin) "
                         "took %s ms on average; %d HIT polls were timed for *one poll*; "
                         "%d ids in %.1f s; shared-tier counters during the run (/metrics): %s"
                         % (kind, f3(r["detect_mean"]), r["poll_count"], r["count"], r["seconds"],
                            "; ".join("%s: %s" % (n, ", ".join("%s %d" % kv for kv in c.items() if kv[1]))
                                      for n, c in sorted(r.get("counters", {}).items()))))
    if notes:
        print()
        for n in notes:
            print("- %s." % n)
    print()
    print("### Hit throughput: L1 only against L2 (Redis) hits")
    print()
    tp = []
    try:
        with open(os.path.join(d, "wrk.tsv")) as f:
            for line in f:
                tp.append(line.rstrip("\n").split("\t"))
    except OSError:
        pass
    hz = int(env.get("hz", "100"))
    print("wrk -t1 -c%s, %s s per run after 1 s unmeasured, `bench/cluster/random.lua`: "
          "GET /prod/items/<uniform random 1..%s>. %s CPU figures from /proc/PID/stat "
          "(user + system, all threads) over the measured run; %% of one CPU." % (
              env.get("conns", "?"), env.get("wrk_seconds", "?"), env.get("ids", "?"),
              env.get("placement", "")))
    print()
    print("| case | filled by | req/s | latency p50 / p99 | gatecache CPU µs/req | gatecache CPU "
          "| Redis CPU µs/req | Redis CPU | wrk CPU | noise | L2 hits / req | to origin / req | errors |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    labels = {"l1": ("(a) L1 only: node B, L1 256 MiB", "B itself"),
              "l2": ("(b) L2 hits: node C, L1 64 KiB", "A (into Redis)")}
    rows = {}
    for f in tp:
        (case, reqs, rps, p50, p99, gw_t, rd_t, wrk_cpu, el, origin, l2hit, l2miss, l2err,
         l2skip, errs, fill, other_t) = f
        reqs = int(reqs)
        el = float(el)
        gw_s, rd_s = int(gw_t) / hz, int(rd_t) / hz
        rows[case] = dict(rps=float(rps), gw_us=1e6 * gw_s / reqs if reqs else float("nan"),
                          rd_us=1e6 * rd_s / reqs if reqs else float("nan"),
                          cpu0=100 * (gw_s + rd_s) / el, wrk=100 * float(wrk_cpu) / el,
                          noise=max(0.0, 100 * (int(other_t) / hz - float(wrk_cpu)) / el))
        per = lambda x: ("%.4f" % (int(x) / reqs)) if reqs else "n/a"  # noqa: E731
        name, by = labels.get(case, (case, "?"))
        print("| %s | %s | %s | %s / %s | %s | %.0f%% | %s | %.0f%% | %.0f%% | %.0f%% | %s | %s | %s |" % (
            name, by, "{:,.0f}".format(float(rps)), p50, p99, f3(rows[case]["gw_us"]),
            100 * gw_s / el, f3(rows[case]["rd_us"]), 100 * rd_s / el,
            100 * float(wrk_cpu) / el, rows[case]["noise"], per(l2hit), per(origin), errs))
    for case in ("l1", "l2"):
        if case not in rows:
            print("| %s | | not measured | | | | | | | | | | |" % labels[case][0])
    print()
    for f in tp:
        case, reqs = f[0], int(f[1])
        l2hit, l2miss, l2err, l2skip, fill = int(f[10]), int(f[11]), int(f[12]), int(f[13]), f[15]
        print("- %s: %s requests; L2 lookups during the run: %d hit, %d miss, %d error, "
              "%d skipped; fill: %s. The node + Redis used %.0f%% of a CPU, wrk %.0f%%: %s." % (
                  labels.get(case, (case,))[0], "{:,}".format(reqs), l2hit, l2miss, l2err, l2skip,
                  fill, rows[case]["cpu0"], rows[case]["wrk"], limiter(rows[case])))
    if "l1" in rows and "l2" in rows:
        a1, a2 = rows["l1"], rows["l2"]
        print("- L2 / L1: %.2f in req/s; %.2f in gatecache CPU per request; gatecache + Redis "
              "CPU per request %.2f µs against %.2f µs." % (
                  a2["rps"] / a1["rps"], a2["gw_us"] / a1["gw_us"],
                  a2["gw_us"] + a2["rd_us"], a1["gw_us"] + a1["rd_us"]))
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("ready")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--admin-port", type=int, required=True)
    p.add_argument("--token-file", required=True)
    p.add_argument("--timeout", type=float, default=15)
    p = sub.add_parser("propagate")
    for k in ("--a", "--b", "--admin-a", "--admin-b", "--count", "--first"):
        p.add_argument(k, type=int, required=True)
    p.add_argument("--token-file", required=True)
    p.add_argument("--api", required=True)
    p.add_argument("--kind", choices=("put", "admin"), required=True)
    p.add_argument("--redis-port", type=int, required=True)
    p.add_argument("--bound", type=float, default=2.0)
    p.add_argument("--out", required=True)
    p = sub.add_parser("fill")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ids", type=int, required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("flush")
    p.add_argument("--api", required=True)
    p.add_argument("--admin-a", type=int, required=True)
    p.add_argument("--wait-admin", required=True)
    p.add_argument("--token-file", required=True)
    p = sub.add_parser("metrics")
    p.add_argument("--admin-port", type=int, required=True)
    p.add_argument("--token-file", required=True)
    p = sub.add_parser("count")
    p.add_argument("--origin", type=int, required=True)
    p = sub.add_parser("report")
    p.add_argument("--dir", required=True)
    a = ap.parse_args()
    return {"ready": cmd_ready, "propagate": cmd_propagate, "fill": cmd_fill,
            "flush": cmd_flush, "metrics": cmd_metrics, "count": cmd_count,
            "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
