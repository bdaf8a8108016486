#!/usr/bin/env python3
"""The e2e origin: a real HTTP/1.1 server (stdlib, keep-alive) that the gateway
proxies to. It counts every request per (method, path+query) so that tests can
prove hits and misses by counts, not timing.

Start: origin.py [--port N]   (N = 0 picks a free loopback port)
It prints "PORT <n>" on its first stdout line once it accepts connections.

A request whose body is cut short (EOF before Content-Length bytes or before the
last chunk) did not reach the origin as a request: it is not counted, only
tallied as "incomplete" in /__count.

Control endpoints (not counted):
  GET  /__count?path=P[&method=M]  {"count": n}; P with "?" matches path+query
                                   exactly, P without "?" matches the path with
                                   any query; no path = every counted request
  GET  /__requests                 the last 50 requests: method, path, headers
                                   ([[name, value], ...] in arrival order), body
  POST /__reset                    clear counts, requests and mode
  POST /__mode  {"fail": 500}      every counted request answers that status
                                   (0 = normal again); {"flaky": "v1"|"fail"}

Answers by path:
  /echo                 JSON: method, path, query, headers, body
  /time                 a timestamp body
  /slow?ms=N            sleeps N ms, then the default answer
  /status/{code}        that status with a JSON body
  /large?bytes=N        N bytes (deterministic pattern), Content-Length
  /sink                 JSON: length and sha256 of the request body
  /chunked?parts=N[&delay_ms=D]  chunked transfer coding, N parts "part-i\\n"
  /cc?h=VALUE[&expires=S]        Cache-Control: VALUE (and Expires now+S)
  /tagged[/...]?tags=a,b  Cache-Tag: a,b
  /hop                  sends hop-by-hop headers the gateway must drop
  /close-mid-body       Content-Length: 1000, 10 bytes, then closes
  /garbage              a non-HTTP answer, then closes
  /flaky                first call per path+query 200 "v1", later calls 500
                        (or as set by POST /__mode {"flaky": ...})
  anything else         JSON {"method", "path", "n"}: n counts that key

A request header X-Origin-Status: NNN (any path) is counted, then answered
with status NNN and a JSON body {"status", "path", "n"}.
"""
import argparse
import email.utils
import hashlib
import json
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
COUNTS = {}          # (method, path+query) -> n
REQUESTS = []        # last 50
MODE = {"fail": 0, "flaky": None}
INCOMPLETE = [0]     # requests whose body was cut short (not counted)
MAX_BODY_KEPT = 65536


def pattern(n):
    unit = b"0123456789abcdefghijklmnopqrstuvwxyz\n"
    reps = n // len(unit) + 1
    return (unit * reps)[:n]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "e2e-origin"
    sys_version = ""

    def log_message(self, fmt, *args):
        pass

    # ---------- request body ----------
    def read_body(self):
        """The request body, or None when it was cut short (EOF before the
        announced length or the last chunk): such a request is not counted."""
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            out = b""
            for _ in range(1000000):
                line = self.rfile.readline(65537)
                if not line.endswith(b"\n"):
                    return None
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    return None
                if size == 0:
                    for _ in range(1000):  # trailers until an empty line
                        t = self.rfile.readline(65537)
                        if t in (b"\r\n", b"\n"):
                            return out
                        if not t:
                            return None
                    return None
                data = self.rfile.read(size)
                if len(data) < size or not self.rfile.readline(3).endswith(b"\n"):
                    return None
                out += data
            return None
        n = int(self.headers.get("Content-Length") or 0)
        if n <= 0:
            return b""
        data = self.rfile.read(n)
        return data if len(data) == n else None

    # ---------- answers ----------
    def send(self, status, body, ctype="application/json", headers=()):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status, doc, headers=()):
        self.send(status, json.dumps(doc) + "\n", "application/json", headers)

    def handle_one(self):
        body = self.read_body()
        if body is None:
            self.close_connection = True
            with LOCK:
                INCOMPLETE[0] += 1
            return
        url = urllib.parse.urlsplit(self.path)
        path, query = url.path, url.query
        q = urllib.parse.parse_qs(query, keep_blank_values=True)
        qv = lambda k, d=None: q.get(k, [d])[0]  # noqa: E731

        if path.startswith("/__"):
            return self.control(path, q, body)

        key = (self.command, self.path)
        with LOCK:
            COUNTS[key] = COUNTS.get(key, 0) + 1
            n = COUNTS[key]
            REQUESTS.append({
                "method": self.command,
                "path": self.path,
                "headers": [[k, v] for k, v in self.headers.items()],
                "body": body[:MAX_BODY_KEPT].decode("latin-1"),
                "body_len": len(body),
                "peer": self.client_address[1],
            })
            del REQUESTS[:-50]
            fail = MODE["fail"]
            flaky = MODE["flaky"]

        if fail:
            return self.send_json(fail, {"error": "origin failing", "n": n})
        forced = self.headers.get("X-Origin-Status")
        if forced and forced.strip().isdigit():
            code = int(forced)
            return self.send_json(code, {"status": code, "path": self.path, "n": n})

        if path == "/echo" or path.startswith("/echo/"):
            return self.send_json(200, {
                "method": self.command, "path": path, "query": query,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "header_list": [[k, v] for k, v in self.headers.items()],
                "body": body.decode("latin-1"), "n": n})
        if path == "/time":
            return self.send(200, "%.6f %d\n" % (time.time(), n), "text/plain")
        if path == "/slow":
            time.sleep(int(qv("ms", "100")) / 1000.0)
            return self.send_json(200, {"path": self.path, "slow": True, "n": n})
        if path.startswith("/status/"):
            code = int(path.split("/")[2])
            return self.send_json(code, {"status": code, "n": n})
        if path == "/large" or path.startswith("/large/"):
            return self.send(200, pattern(int(qv("bytes", "1024"))), "application/octet-stream",
                             [("X-N", str(n))])
        if path == "/sink":
            return self.send_json(200, {"length": len(body),
                                        "sha256": hashlib.sha256(body).hexdigest(), "n": n})
        if path == "/chunked":
            return self.chunked(int(qv("parts", "3")), int(qv("delay_ms", "0")), n)
        if path == "/cc" or path.startswith("/cc/"):
            hs = []
            if qv("h") is not None:
                hs.append(("Cache-Control", qv("h")))
            if qv("expires") is not None:
                hs.append(("Expires", email.utils.formatdate(time.time() + int(qv("expires")),
                                                             usegmt=True)))
            return self.send_json(200, {"path": self.path, "n": n}, hs)
        if path == "/tagged" or path.startswith("/tagged/"):
            return self.send_json(200, {"path": self.path, "n": n},
                                  [("Cache-Tag", qv("tags", ""))])
        if path == "/hop":
            return self.send_json(200, {"path": self.path, "n": n}, [
                ("Connection", "keep-alive, X-Origin-Hop"),
                ("X-Origin-Hop", "must-not-pass"),
                ("Keep-Alive", "timeout=30"),
                ("Proxy-Authenticate", "Basic realm=origin"),
                ("X-Origin-End", "kept"),
            ])
        if path == "/close-mid-body":
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            self.close_connection = True
            return
        if path == "/garbage":
            self.wfile.write(b"THIS IS NOT HTTP AT ALL\r\n\r\n")
            self.wfile.flush()
            self.close_connection = True
            return
        if path == "/flaky":
            if flaky == "fail" or (flaky is None and n > 1):
                return self.send_json(500, {"error": "flaky", "n": n})
            return self.send(200, "v1", "text/plain", [("X-N", str(n))])
        return self.send_json(200, {"method": self.command, "path": self.path, "n": n})

    def chunked(self, parts, delay_ms, n):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("X-N", str(n))
        self.end_headers()
        if self.command == "HEAD":
            return
        for i in range(parts):
            data = b"part-%d\n" % i
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
            if delay_ms and i + 1 < parts:
                time.sleep(delay_ms / 1000.0)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def control(self, path, q, body):
        if path == "/__count":
            p = q.get("path", [None])[0]
            m = q.get("method", [None])[0]
            with LOCK:
                total = 0
                for (meth, full), c in COUNTS.items():
                    if m and meth != m:
                        continue
                    if p is not None:
                        if "?" in p:
                            if full != p:
                                continue
                        elif full.split("?", 1)[0] != p:
                            continue
                    total += c
            return self.send_json(200, {"count": total, "incomplete": INCOMPLETE[0]})
        if path == "/__requests":
            with LOCK:
                reqs = list(REQUESTS)
            return self.send_json(200, reqs)
        if path == "/__reset":
            with LOCK:
                COUNTS.clear()
                del REQUESTS[:]
                MODE.update({"fail": 0, "flaky": None})
                INCOMPLETE[0] = 0
            return self.send_json(200, {"ok": True})
        if path == "/__mode":
            doc = json.loads(body or b"{}")
            with LOCK:
                MODE.update(doc)
            return self.send_json(200, dict(MODE))
        return self.send_json(404, {"error": "no such control endpoint"})

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = handle_one


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    srv = Server(("127.0.0.1", args.port), Handler)
    sys.stdout.write("PORT %d\n" % srv.server_address[1])
    sys.stdout.flush()
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
