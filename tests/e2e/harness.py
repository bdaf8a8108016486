"""e2e harness: a real origin, the real gatecache binary on a generated config,
real clients (the curl CLI, which is libcurl; raw sockets; http.client).

Everything listens on 127.0.0.1, every wait is bounded, and processes are
stopped by PID only. When GATECACHE_SANITIZED=1 a gateway whose stderr shows a
sanitizer report fails the test that started it. When GATECACHE_VALGRIND=1 every
gateway a Gateway starts runs under valgrind memcheck, and one whose valgrind
log shows an error or a definitely lost block fails the test that started it
(`make e2e-valgrind`).
"""
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("GATECACHE_BIN") or os.path.join(REPO, "build", "gatecache")
if not os.path.isabs(BIN):
    BIN = os.path.join(REPO, BIN)
SANITIZED = os.environ.get("GATECACHE_SANITIZED") == "1"
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer",
                     "ThreadSanitizer")
# Sanitized builds are slower to start and to stop.
START_TIMEOUT = 10.0
STOP_TIMEOUT = 15.0

# Opt-in: GATECACHE_VALGRIND=1 starts every Gateway as `valgrind ... gatecache
# serve` (memcheck; the same PID, so signals and /proc work as without it).
# Its log goes to <gateway dir>/valgrind.<pid>.log; Gateway.stop(check=True)
# fails on "ERROR SUMMARY: N" with N > 0 or "definitely lost" > 0.
# tests/e2e/valgrind.supp is used when it exists. Valgrind runs the gateway
# 20-50x slower: start and stop get more time. Unset, nothing changes.
VALGRIND = os.environ.get("GATECACHE_VALGRIND") == "1"
VALGRIND_SUPP = os.path.join(HERE, "valgrind.supp")
if VALGRIND:
    START_TIMEOUT = 60.0
    STOP_TIMEOUT = 60.0


def valgrind_prefix(log_dir):
    """The valgrind command line put before the gateway's when VALGRIND."""
    cmd = [os.environ.get("VALGRIND", "valgrind"), "--tool=memcheck", "--leak-check=full",
           "--errors-for-leak-kinds=definite", "--error-exitcode=99", "--num-callers=30",
           "--log-file=" + os.path.join(log_dir, "valgrind.%p.log")]
    if os.path.exists(VALGRIND_SUPP):
        cmd.append("--suppressions=" + VALGRIND_SUPP)
    return cmd


_VG_ERRORS = re.compile(r"ERROR SUMMARY: ([0-9,]+) errors")
_VG_DEFINITE = re.compile(r"definitely lost: ([0-9,]+) bytes")
_VG_POSSIBLE = re.compile(r"possibly lost: ([0-9,]+) bytes")


def valgrind_verdict(text):
    """(errors, definitely lost bytes, possibly lost bytes) from a memcheck
    log; None for a figure the log lacks (killed before its summary). When
    every block was freed there is no leak summary: both leak figures are 0."""
    out = []
    for rx in (_VG_ERRORS, _VG_DEFINITE, _VG_POSSIBLE):
        m = rx.findall(text)
        out.append(int(m[-1].replace(",", "")) if m else None)
    if "no leaks are possible" in text:  # "All heap blocks were freed"
        out[1] = out[1] or 0
        out[2] = out[2] or 0
    return tuple(out)


_handed_out = set()


def free_port():
    """A free loopback port, never one this process handed out before: the
    kernel may give the same ephemeral port to two binds in a row once the
    first socket is closed (seen: listen and admin_listen got one port)."""
    for _ in range(100):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no fresh free port after 100 tries")


def port_open(port, timeout=0.2):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def stop_pid(proc, timeout):
    """SIGTERM by PID, wait up to timeout, then SIGKILL. Returns (rc, killed)."""
    if proc.poll() is not None:
        return proc.returncode, False
    try:
        os.kill(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        return proc.wait(timeout=timeout), False
    except subprocess.TimeoutExpired:
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return proc.wait(timeout=5), True


# ---------------------------------------------------------------- origin

class Origin:
    """tests/e2e/origin.py as a subprocess on a free loopback port."""

    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "origin.py"), "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        line = b""
        deadline = time.monotonic() + 10
        while not line.endswith(b"\n") and time.monotonic() < deadline:
            r, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if r:
                c = os.read(self.proc.stdout.fileno(), 64)
                if not c:
                    break
                line += c
        if not line.startswith(b"PORT "):
            self.stop()
            raise RuntimeError("origin did not start: %r" % line)
        self.port = int(line.split()[1])
        self.url = "http://127.0.0.1:%d" % self.port

    def _call(self, method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            c.request(method, path, body=body,
                      headers={"Content-Type": "application/json"} if body else {})
            r = c.getresponse()
            return json.loads(r.read())
        finally:
            c.close()

    def count(self, path=None, method=None):
        """Requests that reached the origin: path with '?' = exact path+query,
        without = any query; None = all."""
        q = {}
        if path is not None:
            q["path"] = path
        if method is not None:
            q["method"] = method
        return self._call("GET", "/__count?" + urllib.parse.urlencode(q))["count"]

    def requests(self):
        return self._call("GET", "/__requests")

    def last_request(self, path_prefix=None):
        for r in reversed(self.requests()):
            if path_prefix is None or r["path"].startswith(path_prefix):
                return r
        return None

    def reset(self):
        self._call("POST", "/__reset")

    def mode(self, **kw):
        return self._call("POST", "/__mode", json.dumps(kw).encode())

    def stop(self):
        if self.proc is not None:
            stop_pid(self.proc, 5)
            if self.proc.stdout:
                self.proc.stdout.close()
            self.proc = None

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()


# ---------------------------------------------------------------- gateway

def _yaml_scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return str(v)
    return json.dumps(str(v))  # a JSON string is a valid YAML double-quoted scalar


def to_yaml(obj, indent=0):
    """Minimal YAML emitter for dict configs (block maps, flow-free lists)."""
    pad = "  " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                out.append("%s%s:" % (pad, _yaml_key(k)))
                out.append(to_yaml(v, indent + 1))
            elif isinstance(v, (dict, list)):
                out.append("%s%s: %s" % (pad, _yaml_key(k), "{}" if isinstance(v, dict) else "[]"))
            else:
                out.append("%s%s: %s" % (pad, _yaml_key(k), _yaml_scalar(v)))
    elif isinstance(obj, list):
        for v in obj:
            if isinstance(v, dict) and v:
                inner = to_yaml(v, indent + 1).split("\n")
                inner[0] = pad + "- " + inner[0].lstrip()
                out.append("\n".join(inner))
            elif isinstance(v, list):
                out.append("%s- %s" % (pad, json.dumps(v)))
            else:
                out.append("%s- %s" % (pad, _yaml_scalar(v)))
    return "\n".join(out)


def _yaml_key(k):
    k = str(k)
    if k.replace("_", "").isalnum():
        return k
    return json.dumps(k)


class GatewayError(AssertionError):
    pass


class Gateway:
    """`gatecache serve -c FILE` on a generated config.

    config: YAML text with placeholders {origin} (http://127.0.0.1:PORT of the
    origin), {port} (the gateway's data port) and {admin_port}, or a dict.
    Placeholders are replaced literally, so "{id}" and "{proxy+}" stay as they are.
    """

    def __init__(self, config, origin=None, start=True, port=None, env=None):
        self.port = port or free_port()
        self.admin_port = free_port()
        self.origin = origin
        self.dir = tempfile.mkdtemp(prefix="gatecache-e2e-")
        self.config_path = os.path.join(self.dir, "gatecache.yaml")
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.env = dict(os.environ, **(env or {}))
        self.proc = None
        self.stopped_rc = None
        self.write_config(config)
        if start:
            self.start()

    def render(self, config):
        if isinstance(config, dict):
            config = to_yaml(config) + "\n"
        text = config.replace("{port}", str(self.port)).replace("{admin_port}", str(self.admin_port))
        if self.origin is not None:
            text = text.replace("{origin}", self.origin.url)
        return text

    def write_config(self, config):
        text = self.render(config)
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.config_path)
        self.config_text = text

    def start(self):
        self._err = open(self.stderr_path, "ab")
        cmd = [BIN, "serve", "-c", self.config_path]
        if VALGRIND:
            cmd = valgrind_prefix(self.dir) + cmd
        try:
            self.proc = subprocess.Popen(cmd,
                                         stdout=self._err, stderr=self._err,
                                         stdin=subprocess.DEVNULL, env=self.env)
        except OSError:
            self._err.close()
            raise
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self._err.close()
                self.proc = None
                raise GatewayError("gatecache exited with %s at start; stderr:\n%s\nconfig:\n%s"
                                   % (rc, self.stderr(), self.config_text))
            if port_open(self.port):
                return
            time.sleep(0.02)
        self.stop(check=False)
        raise GatewayError("gatecache did not accept on port %d within %.0f s; stderr:\n%s"
                           % (self.port, START_TIMEOUT, self.stderr()))

    def url(self, path="/"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def reload(self, config=None, settle=0.5):
        """Rewrite the config (if given) and send SIGHUP by PID."""
        if config is not None:
            self.write_config(config)
        os.kill(self.proc.pid, signal.SIGHUP)
        time.sleep(settle)

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def sanitizer_report(self):
        err = self.stderr()
        for m in SANITIZER_MARKERS:
            if m in err:
                return err
        return None

    def valgrind_report(self, pid):
        """Under VALGRIND: the memcheck log of the gateway process pid when it
        shows errors or definitely lost bytes, else None. Also sets
        self.valgrind_summary = (log path, errors, definitely lost bytes)."""
        if not VALGRIND or pid is None:
            return None
        path = os.path.join(self.dir, "valgrind.%d.log" % pid)
        try:
            with open(path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            text = ""
        errors, definite, possible = valgrind_verdict(text)
        self.valgrind_summary = (path, errors, definite)
        # one line per gateway in the test's output, for `make e2e-valgrind`'s tally
        sys.stderr.write("valgrind: pid %d errors %s definitely-lost %s possibly-lost %s\n"
                         % (pid, errors, definite, possible))
        if (errors or 0) > 0 or (definite or 0) > 0:
            return "%s (errors %s, definitely lost %s bytes):\n%s" % (path, errors, definite, text)
        return None

    def stop(self, check=True, expect_rc=0):
        """SIGTERM by PID; wait up to 15 s, then SIGKILL. With check, fails on a
        kill, a non-zero exit, or (sanitized builds) a sanitizer report."""
        if self.proc is None:
            return self.stopped_rc
        died_early = self.proc.poll() is not None
        pid = self.proc.pid
        rc, killed = stop_pid(self.proc, STOP_TIMEOUT)
        self.proc = None
        self.stopped_rc = rc
        try:
            self._err.close()
        except Exception:
            pass
        self.final_stderr = self.stderr()  # still readable after the directory is removed
        if not check:
            return rc
        report = self.sanitizer_report()
        if report is not None:
            raise GatewayError("sanitizer report in gatecache stderr:\n" + report[-8000:])
        report = self.valgrind_report(pid)
        if report is not None:
            raise GatewayError("valgrind report for gatecache: " + report[-12000:])
        if killed:
            raise GatewayError("gatecache did not exit within %.0f s of SIGTERM; stderr:\n%s"
                               % (STOP_TIMEOUT, self.stderr()[-4000:]))
        if died_early and rc not in (0, expect_rc):
            raise GatewayError("gatecache had already died (exit %r) before the test stopped it; "
                               "stderr:\n%s" % (rc, self.stderr()[-4000:]))
        if expect_rc is not None and rc != expect_rc:
            raise GatewayError("gatecache exited with %r after SIGTERM (expected %r); stderr:\n%s"
                               % (rc, expect_rc, self.stderr()[-4000:]))
        if os.environ.get("E2E_KEEP") != "1":  # kept on failure, for the post-mortem
            shutil.rmtree(self.dir, ignore_errors=True)
        return rc


def run_cli(*args, timeout=30, env=None):
    """Run the gatecache binary with args; returns CompletedProcess (text)."""
    return subprocess.run([BIN] + list(args), capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})), stdin=subprocess.DEVNULL)


# ---------------------------------------------------------------- clients

class Response(tuple):
    """(status, headers, body) with .status .headers .body .rc .err .json() .text"""

    def __new__(cls, status, headers, body, rc=0, err="", raw_headers=None):
        self = tuple.__new__(cls, (status, headers, body))
        self.rc = rc
        self.err = err
        self.raw_headers = raw_headers or []
        return self

    status = property(lambda s: s[0])
    headers = property(lambda s: s[1])
    body = property(lambda s: s[2])
    text = property(lambda s: s[2].decode("utf-8", "replace"))

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "Response(status=%r, headers=%r, body=%r, rc=%r, err=%r)" % (
            self.status, self.headers, self.body[:300], self.rc, self.err)


def parse_head(block):
    """b'HTTP/1.1 200 OK\\r\\nA: b...' -> (status, {lower: joined}, [(name, value)])"""
    lines = block.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    headers, raw = {}, []
    for ln in lines[1:]:
        if not ln or b":" not in ln:
            continue
        k, v = ln.split(b":", 1)
        k = k.decode("latin-1").strip()
        v = v.decode("latin-1").strip()
        raw.append((k, v))
        lk = k.lower()
        headers[lk] = headers[lk] + ", " + v if lk in headers else v
    return status, headers, raw


def curl(url, *args, timeout=20):
    """The real curl CLI: `curl -sS -i URL ARGS`. 1xx interim answers are skipped."""
    cmd = ["curl", "-sS", "-i", "--max-time", str(timeout), "--noproxy", "*", url] + list(args)
    p = subprocess.run(cmd, capture_output=True, timeout=timeout + 10, stdin=subprocess.DEVNULL)
    out = p.stdout
    status, headers, raw = 0, {}, []
    for _ in range(10):
        if not out.startswith(b"HTTP/"):
            break
        sep = out.find(b"\r\n\r\n")
        if sep < 0:
            status, headers, raw = parse_head(out)
            out = b""
            break
        status, headers, raw = parse_head(out[:sep])
        out = out[sep + 4:]
        if not (100 <= status < 200) or status == 101:
            break
    return Response(status, headers, out, p.returncode, p.stderr.decode("utf-8", "replace"), raw)


def admin_token_dir(prefix, token):
    """A temp dir (the caller removes it) holding an admin token file, mode
    0600; returns (dir, token file)."""
    d = tempfile.mkdtemp(prefix=prefix)
    path = os.path.join(d, "token")
    with open(path, "w") as f:
        f.write(token + "\n")
    os.chmod(path, 0o600)
    return d, path


def admin_call(gw, method, path, token, body=None):
    """One admin API call with curl: a bearer token (None: none) and an
    optional JSON body."""
    args = ["-X", method]
    if token is not None:
        args += ["-H", "Authorization: Bearer " + token]
    if body is not None:
        args += ["-H", "Content-Type: application/json", "--data-binary", body]
    return curl("http://127.0.0.1:%d%s" % (gw.admin_port, path), *args)


def raw(port, data, read_timeout=2.0, total_timeout=10.0):
    """Send bytes on a fresh connection; read until EOF or read_timeout of
    silence. Returns (bytes, closed_by_peer)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        if data:
            s.sendall(data)
        return read_all(s, read_timeout, total_timeout)
    finally:
        s.close()


def read_all(s, read_timeout=2.0, total_timeout=10.0):
    buf = b""
    closed = False
    deadline = time.monotonic() + total_timeout
    s.settimeout(read_timeout)
    while time.monotonic() < deadline:
        try:
            c = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            closed = True
            break
        if not c:
            closed = True
            break
        buf += c
    return buf, closed


class ParsedResponse:
    def __init__(self, status, headers, raw_headers, body):
        self.status, self.headers, self.raw_headers, self.body = status, headers, raw_headers, body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "ParsedResponse(%r, %r, %r)" % (self.status, self.headers, self.body[:200])


def parse_responses(buf, head_only=False):
    """Split a byte stream into HTTP/1.1 responses (Content-Length or chunked).
    Returns (list of ParsedResponse, leftover bytes)."""
    out = []
    for _ in range(1000):
        sep = buf.find(b"\r\n\r\n")
        if sep < 0:
            break
        status, headers, raw_h = parse_head(buf[:sep])
        rest = buf[sep + 4:]
        if 100 <= status < 200:
            buf = rest
            continue
        if head_only or status in (204, 304):
            out.append(ParsedResponse(status, headers, raw_h, b""))
            buf = rest
            continue
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body, pos, ok = b"", 0, False
            for _ in range(100000):
                eol = rest.find(b"\r\n", pos)
                if eol < 0:
                    break
                size = int(rest[pos:eol].split(b";")[0] or b"0", 16)
                pos = eol + 2
                if size == 0:
                    end = rest.find(b"\r\n", pos)
                    while end >= 0 and end != pos:  # trailers
                        pos = end + 2
                        end = rest.find(b"\r\n", pos)
                    if end < 0:
                        break
                    pos = end + 2
                    ok = True
                    break
                if len(rest) < pos + size + 2:
                    break
                body += rest[pos:pos + size]
                pos += size + 2
            if not ok:
                break
            out.append(ParsedResponse(status, headers, raw_h, body))
            buf = rest[pos:]
            continue
        if "content-length" in headers:
            n = int(headers["content-length"].split(",")[0])
            if len(rest) < n:
                break
            out.append(ParsedResponse(status, headers, raw_h, rest[:n]))
            buf = rest[n:]
            continue
        out.append(ParsedResponse(status, headers, raw_h, rest))  # read to close
        buf = b""
        break
    return out, buf


class RawConn:
    """One client connection for keep-alive, pipelining and malformed input."""

    def __init__(self, port, timeout=5):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.closed = False

    def send(self, data):
        self.s.sendall(data)

    def read_responses(self, n, timeout=5.0, head_only=False):
        """Read until n complete responses (or EOF/timeout); returns the list."""
        deadline = time.monotonic() + timeout
        for _ in range(100000):
            got, _ = parse_responses(self.buf, head_only)
            if len(got) >= n or self.closed or time.monotonic() >= deadline:
                break
            self.s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                c = self.s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                self.closed = True
                break
            if not c:
                self.closed = True
            self.buf += c
        got, self.buf = parse_responses(self.buf, head_only)
        return got

    def read_response(self, timeout=5.0, head_only=False):
        got = self.read_responses(1, timeout, head_only)
        if not got:
            raise AssertionError("no complete response; got %r" % self.buf[:500])
        if len(got) > 1:
            raise AssertionError("expected one response, got %d" % len(got))
        return got[0]

    def wait_closed(self, timeout=3.0):
        """True when the peer closes (EOF or reset) within timeout; drains data."""
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            self.s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                c = self.s.recv(65536)
            except socket.timeout:
                break
            except (ConnectionResetError, BrokenPipeError):
                self.closed = True
                break
            if not c:
                self.closed = True
                break
            self.buf += c
        return self.closed

    def close(self):
        self.s.close()


def http_request(port, method, path, body=None, headers=None, timeout=10):
    """One request through http.client (a fresh connection)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        hs = {}
        for k, v in r.getheaders():
            lk = k.lower()
            hs[lk] = hs[lk] + ", " + v if lk in hs else v
        return Response(r.status, hs, data)
    finally:
        c.close()


# ---------------------------------------------------------------- test base

class GatewayTest(unittest.TestCase):
    """One origin per test class; gateways are started per test via
    self.gateway(...) and stopped (and checked) at the end of the test."""

    origin = None

    @classmethod
    def setUpClass(cls):
        if not os.access(BIN, os.X_OK):
            raise unittest.SkipTest("gatecache binary not found at %s" % BIN)
        cls.origin = Origin()

    @classmethod
    def tearDownClass(cls):
        if cls.origin is not None:
            cls.origin.stop()
            cls.origin = None

    def setUp(self):
        self.origin.reset()

    def gateway(self, config, **kw):
        gw = Gateway(config, origin=kw.pop("origin", self.origin), **kw)
        self.addCleanup(gw.stop)
        return gw

    # assertions on what a user sees
    def assertCache(self, resp, status):
        self.assertEqual(resp.headers.get("x-cache-status"), status,
                         "X-Cache-Status: expected %r, got %r; response %r"
                         % (status, resp.headers.get("x-cache-status"), resp))

    def assertJsonError(self, resp, status, message):
        self.assertEqual(resp.status, status, repr(resp))
        self.assertTrue(resp.headers.get("content-type", "").startswith("application/json"),
                        "Content-Type: %r" % resp.headers.get("content-type"))
        try:
            doc = json.loads(resp.body)
        except ValueError:
            self.fail("error body is not JSON: %r" % resp.body[:300])
        self.assertEqual(doc.get("message"), message, repr(doc))
        return doc


def main():
    unittest.main(verbosity=2)
