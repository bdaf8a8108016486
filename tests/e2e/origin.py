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
  /echo-key[/...]?id=I&extra=E[&cc=V]  JSON: path, id, extra (first value,
                        decoded; null when absent), X-Tenant (every field line
                        joined by ", "), Authorization and Cookie (null when
                        absent),
                        key_sha256 = sha256 of JSON [path, id, tenant] and
                        identity_sha256 = sha256 of JSON [authorization,
                        cookie]; Cache-Control: V (default "public,
                        max-age=60") and Cache-Tag: tenant-<first 8 hex of
                        sha256 of JSON tenant> (tests/load/crosstalk.py)
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
  /bad/{kind}           a malformed (or, for ok and ok-chunked, a well-formed)
                        answer written raw, then the connection closes; kinds
                        in BAD_ANSWERS below (obs-fold, bare-lf, cl-te, ...)
  /stall?ms=N           never answers: waits N ms (default 10000, at most
                        60000; stops early when the client closes), then closes
  /stall-body?bytes=B&ms=N  head (Content-Length 2*B) and B bytes, then as /stall
  /slow-status?ms=N&code=C  sleeps N ms, then status C with a JSON body
  /reset?ms=N           reads the request, waits N ms, then resets (RST) the
                        connection without a byte of answer
  /reset-mid-body?bytes=B&total=T&ms=N  head (Content-Length T), B bytes,
                        waits N ms, then RST
  /reset-mid-chunked?bytes=B&ms=N  chunked head, one chunk of B bytes, waits
                        N ms, then RST (the last chunk never comes)
  anything else         JSON {"method", "path", "n"}: n counts that key

A request header X-Origin-Status: NNN (any path) is counted, then answered
with status NNN and a JSON body {"status", "path", "n"}.
"""
import argparse
import email.utils
import hashlib
import json
import os
import select
import socket
import struct
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


def _bad_answers():
    """/bad/{kind}: raw answers. Every kind except ok and ok-chunked is one a
    strict HTTP/1.1 client must refuse (docs/upstream.md "Answers")."""
    ok = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
    big_line = b"X-Big: " + b"b" * (70 * 1024) + b"\r\n"
    many = b"".join(b"X-F%d: v\r\n" % i for i in range(300))
    return {
        # well-formed controls: a caching route stores these
        "ok": ok + b"Content-Length: 2\r\n\r\nok",
        "ok-chunked": ok + b"Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        # head syntax
        "obs-fold": ok + b"X-Folded: a\r\n b\r\nContent-Length: 2\r\n\r\nok",
        "bare-lf": b"HTTP/1.1 200 OK\nContent-Type: text/plain\nContent-Length: 2\n\nok",
        "bare-lf-field": ok + b"X-A: a\nContent-Length: 2\r\n\r\nok",
        "nul-value": ok + b"X-A: a\x00b\r\nContent-Length: 2\r\n\r\nok",
        "ctl-value": ok + b"X-A: a\x01b\r\nContent-Length: 2\r\n\r\nok",
        "space-before-colon": ok + b"Content-Length : 2\r\n\r\nok",
        "no-colon": ok + b"X-NoColon\r\nContent-Length: 2\r\n\r\nok",
        "status-2000": b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok",
        "status-99": b"HTTP/1.1 099 OK\r\nContent-Length: 2\r\n\r\nok",
        "status-alpha": b"HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok",
        "http2": b"HTTP/2 200\r\nContent-Length: 2\r\n\r\nok",
        "http12": b"HTTP/1.2 200 OK\r\nContent-Length: 2\r\n\r\nok",
        "garbage": b"hello\r\n\r\n",
        "switching": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n"
                     b"Connection: Upgrade\r\n\r\nok",
        "head-over-64k": ok + big_line + b"Content-Length: 2\r\n\r\nok",
        "fields-over-256": ok + many + b"Content-Length: 2\r\n\r\nok",
        # framing
        "cl-te": ok + b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"2\r\nok\r\n0\r\n\r\n",
        "te-cl": ok + b"Transfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n"
                      b"2\r\nok\r\n0\r\n\r\n",
        "two-cl": ok + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\nok!",
        "cl-plus": ok + b"Content-Length: +2\r\n\r\nok",
        "cl-minus": ok + b"Content-Length: -1\r\n\r\nok",
        "cl-list": ok + b"Content-Length: 2, 3\r\n\r\nok!",
        "cl-huge": ok + b"Content-Length: 99999999999999999999999\r\n\r\nok",
        "te-gzip": ok + b"Transfer-Encoding: gzip\r\n\r\nok",
        "te-gzip-chunked": ok + b"Transfer-Encoding: gzip, chunked\r\n\r\n"
                                b"2\r\nok\r\n0\r\n\r\n",
        "te-chunked-twice": ok + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked"
                                 b"\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        "te-http10": b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"2\r\nok\r\n0\r\n\r\n",
        # bodies
        "short-body": ok + b"Content-Length: 100\r\n\r\n0123456789",
        "bad-chunk-size": ok + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n",
        "chunk-size-overflow": ok + b"Transfer-Encoding: chunked\r\n\r\n"
                                    b"10000000000000002\r\nok\r\n0\r\n\r\n",
        "chunk-no-crlf": ok + b"Transfer-Encoding: chunked\r\n\r\n2\r\nokX\r\n0\r\n\r\n",
        "chunked-cut": ok + b"Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n",
    }


BAD_ANSWERS = _bad_answers()


def pattern(n, seed=""):
    unit = seed.encode() + b"0123456789abcdefghijklmnopqrstuvwxyz\n"
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
        # Head and body in one write: two small writes meet Nagle and the
        # client's delayed ACK (~40 ms per answer under 64 KiB).
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD":
            self._headers_buffer.append(body)
        self.flush_headers()

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
        if path == "/echo-key" or path.startswith("/echo-key/"):
            return self.echo_key(path, qv, n)
        if path == "/time":
            return self.send(200, "%.6f %d\n" % (time.time(), n), "text/plain")
        if path == "/slow":
            time.sleep(int(qv("ms", "100")) / 1000.0)
            return self.send_json(200, {"path": self.path, "slow": True, "n": n})
        if path.startswith("/status/"):
            code = int(path.split("/")[2])
            return self.send_json(code, {"status": code, "n": n})
        if path == "/large" or path.startswith("/large/"):
            return self.send(200, pattern(int(qv("bytes", "1024")), qv("seed", "")),
                             "application/octet-stream",
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
        if path.startswith("/bad/") and path[5:] in BAD_ANSWERS:
            return self.write_and_close(BAD_ANSWERS[path[5:]])
        if path == "/stall":
            return self.stall(int(qv("ms", "10000")))
        if path == "/stall-body":
            b = int(qv("bytes", "100"))
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (2 * b, pattern(b)))
            self.wfile.flush()
            return self.stall(int(qv("ms", "10000")))
        if path == "/slow-status":
            time.sleep(int(qv("ms", "100")) / 1000.0)
            code = int(qv("code", "500"))
            return self.send_json(code, {"status": code, "path": self.path, "n": n})
        if path == "/reset":
            time.sleep(int(qv("ms", "0")) / 1000.0)
            return self.reset_connection()
        if path == "/reset-mid-body":
            b = int(qv("bytes", "1000"))
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                             b"Content-Length: %d\r\n\r\n%s"
                             % (int(qv("total", str(4 * b))), pattern(b)))
            self.wfile.flush()
            time.sleep(int(qv("ms", "100")) / 1000.0)
            return self.reset_connection()
        if path == "/reset-mid-chunked":
            b = int(qv("bytes", "1000"))
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n"
                             % (b, pattern(b)))
            self.wfile.flush()
            time.sleep(int(qv("ms", "100")) / 1000.0)
            return self.reset_connection()
        if path == "/flaky":
            if flaky == "fail" or (flaky is None and n > 1):
                return self.send_json(500, {"error": "flaky", "n": n})
            return self.send(200, "v1", "text/plain", [("X-N", str(n))])
        return self.send_json(200, {"method": self.command, "path": self.path, "n": n})

    def echo_key(self, path, qv, n):
        """/echo-key: every answer names the key parameters it was made for
        (and the identity it was made for), with their checksums, so a client
        can tell an answer made for another key or another user."""
        tenants = self.headers.get_all("X-Tenant")  # field lines combined (RFC 9110 5.3)
        tenant = None if tenants is None else ", ".join(tenants)
        auth = self.headers.get("Authorization")
        cookie = self.headers.get("Cookie")
        ident = qv("id")

        def digest(v):
            return hashlib.sha256(json.dumps(v).encode()).hexdigest()

        doc = {"path": path, "id": ident, "extra": qv("extra"), "tenant": tenant,
               "authorization": auth, "cookie": cookie,
               "key_sha256": digest([path, ident, tenant]),
               "identity_sha256": digest([auth, cookie]), "n": n}
        body = (json.dumps(doc) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", qv("cc", "public, max-age=60"))
        self.send_header("Cache-Tag", "tenant-" + digest(tenant)[:8])
        # Head and body in one write: two small writes meet Nagle and the
        # peer's delayed ACK (~40 ms per answer), which would make a load run
        # measure the origin's socket, not the gateway.
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD":
            self._headers_buffer.append(body)
        self.flush_headers()

    def write_and_close(self, data):
        self.wfile.write(data)
        self.wfile.flush()
        self.close_connection = True

    def stall(self, ms):
        """No answer: wait up to ms (at most 60 s), ending early when the
        client closes its side, then close."""
        deadline = time.monotonic() + min(ms, 60000) / 1000.0
        self.close_connection = True
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                r, _, _ = select.select([self.connection], [], [], min(left, 0.2))
                if r and not self.connection.recv(4096, socket.MSG_PEEK):
                    return  # the client closed
                if r:
                    self.connection.recv(4096)  # discard (e.g. a pipelined request)
            except OSError:
                return

    def reset_connection(self):
        """Closes with SO_LINGER 0: the peer gets an RST, not a FIN."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            os.close(self.connection.detach())
        except OSError:
            pass

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
