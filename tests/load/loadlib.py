"""What the load scripts share: counters of a run, reading a stage's series
from /metrics, and the common end of a run (gateway-level failures, the
report, PASS/FAIL)."""
import re
import shutil
import threading
import time

from harness import http_request

METRIC_RE = re.compile(r'^(gatecache_[a-z_]+)\{(.*)\} ([0-9.eE+-]+)$')


class Stats:
    """Counters of a run and its first few problem samples, shared by the
    client threads (add and sample take the lock)."""

    MAX_SAMPLES = 10

    def __init__(self):
        self.lock = threading.Lock()
        self.c = {}
        self.samples = []

    def add(self, **kw):
        with self.lock:
            for k, v in kw.items():
                self.c[k] = self.c.get(k, 0) + v

    def sample(self, text):
        with self.lock:
            if len(self.samples) < self.MAX_SAMPLES:
                self.samples.append(text)


def stage_metrics(gw, api, stage, headers=None):
    """{name: value} summed over the series of stage api/stage."""
    out = {}
    text = http_request(gw.admin_port, "GET", "/metrics", headers=headers, timeout=10).text
    for line in text.splitlines():
        m = METRIC_RE.match(line)
        if m and ('api="%s"' % api) in m.group(2) and ('stage="%s"' % stage) in m.group(2):
            out[m.group(1)] = out.get(m.group(1), 0) + float(m.group(3))
    return out


def finish(failures, gw, t_start, samples, alive, stop_rc, sanitizer, stderr_tail, hung=0,
           pass_line="PASS"):
    """Adds the failures every run checks (sanitizer report, hung clients,
    a dead or unclean gateway), prints the first problems and the verdict,
    keeps the gateway's directory on failure. Returns the exit code."""
    if sanitizer:
        failures.append("sanitizer report in gatecache stderr")
        stderr_tail = sanitizer[-8000:]
    if hung:
        failures.append("%d client threads did not finish" % hung)
    if not alive:
        failures.append("gatecache died during the run (exit %r)" % stop_rc)
    elif stop_rc != 0:
        failures.append("gatecache exited %r after SIGTERM" % stop_rc)
    if samples:
        print("\nfirst problems:")
        for s in samples:
            print("  " + s)
    print("\nrun time %.1f s" % (time.monotonic() - t_start))
    if failures:
        print("FAIL: " + "; ".join(failures))
        print("gateway config and stderr kept in %s" % gw.dir)
        if not alive or stop_rc not in (0, None) or sanitizer:
            print("gatecache stderr (tail):\n" + stderr_tail)
        return 1
    shutil.rmtree(gw.dir, ignore_errors=True)
    print(pass_line)
    return 0
