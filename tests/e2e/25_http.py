#!/usr/bin/env python3
"""25 http: the client side of HTTP/1.1 — keep-alive, pipelining, chunked and
Expect: 100-continue bodies, HEAD, request smuggling, limits and timeouts."""
import hashlib
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import GatewayTest, RawConn, curl  # noqa: E402

CONFIG = """
server:
  listen: "127.0.0.1:{port}"
  workers: 1
  limits:
    max_header_bytes: 2048
    max_headers: 20
    max_url_bytes: 512
    max_body_bytes: 4096
    header_timeout_ms: 600
    body_timeout_ms: 1000
    idle_timeout_ms: 1500
    max_connections: 4
apis:
  - id: shop
    resources:
      /p/{proxy+}:
        ANY:
          integration: { type: HTTP_PROXY, uri: "{origin}/{proxy}" }
    stages:
      dev:
        cache_cluster_enabled: false
      prod:
        cache_cluster_enabled: true
"""


def req(path, method="GET", extra=b"", body=b""):
    h = b"%s %s HTTP/1.1\r\nHost: gw\r\n" % (method.encode(), path.encode())
    if body and b"content-length" not in extra.lower() and b"transfer-encoding" not in extra.lower():
        h += b"Content-Length: %d\r\n" % len(body)
    return h + extra + b"\r\n" + body


class HttpTest(GatewayTest):
    gw = None

    def setUp(self):
        super().setUp()
        self.gw = self.gateway(CONFIG)

    def conn(self):
        c = RawConn(self.gw.port)
        self.addCleanup(c.close)
        return c

    def assertRejected(self, c, status):
        """A parse error: that status, Connection: close, the connection closed,
        and a JSON error body."""
        rs = c.read_responses(1, timeout=3)
        self.assertTrue(rs, "no answer; got %r" % c.buf[:300])
        r = rs[0]
        self.assertEqual(r.status, status, r)
        self.assertIn("close", r.headers.get("connection", "").lower(), r)
        self.assertTrue(r.headers.get("content-type", "").startswith("application/json"), r)
        self.assertIn("message", r.json())
        self.assertTrue(c.wait_closed(3), "connection left open after %d" % status)
        self.assertEqual(len(rs), 1, "answered past the error: %r" % rs)
        return r


class TestConnections(HttpTest):
    def test_keep_alive(self):
        c = self.conn()
        for i in range(3):
            c.send(req("/dev/p/ka?i=%d" % i))
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json()["path"], "/ka?i=%d" % i)
            self.assertNotIn("close", r.headers.get("connection", "").lower())
        self.assertFalse(c.closed)
        self.assertEqual(self.origin.count("/ka"), 3)

    def test_http10_closes(self):
        c = self.conn()
        c.send(b"GET /dev/p/h10 HTTP/1.0\r\n\r\n")
        rs = c.read_responses(1)
        self.assertEqual(rs[0].status, 200, rs)
        self.assertTrue(c.wait_closed(3))

    def test_connection_close_honoured(self):
        c = self.conn()
        c.send(req("/dev/p/cc", extra=b"Connection: close\r\n"))
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertTrue(c.wait_closed(3))

    def test_pipelining_two(self):
        c = self.conn()
        # the first is slower than the second: answers must still come in order
        c.send(req("/dev/p/slow?ms=300&i=0") + req("/dev/p/pipe?i=1"))
        rs = c.read_responses(2)
        self.assertEqual([r.status for r in rs], [200, 200], rs)
        self.assertEqual([r.json()["path"] for r in rs], ["/slow?ms=300&i=0", "/pipe?i=1"])

    def test_pipelining_ten(self):
        c = self.conn()
        paths = []
        data = b""
        for i in range(10):
            p = "/slow?ms=%d&i=%d" % ((9 - i) * 20, i) if i % 2 == 0 else "/pipe10?i=%d" % i
            paths.append(p)
            data += req("/dev/p" + p)
        c.send(data)
        rs = c.read_responses(10, timeout=10)
        self.assertEqual(len(rs), 10, rs)
        self.assertEqual([r.json()["path"] for r in rs], paths)
        self.assertFalse(c.closed)

    def test_pipelining_cached(self):
        c = self.conn()
        c.send(req("/prod/p/pc") + req("/prod/p/pc") + req("/prod/p/pc"))
        rs = c.read_responses(3)
        self.assertEqual(len(rs), 3, rs)
        self.assertEqual(len({r.body for r in rs}), 1)
        self.assertEqual(rs[0].headers.get("x-cache-status"), "MISS")
        self.assertEqual([r.headers.get("x-cache-status") for r in rs[1:]], ["HIT", "HIT"])
        self.assertEqual(self.origin.count("/pc"), 1)

    def test_idle_timeout_closes(self):
        c = self.conn()
        c.send(req("/dev/p/idle"))
        self.assertEqual(c.read_response().status, 200)
        t0 = time.monotonic()
        self.assertTrue(c.wait_closed(5), "idle connection not closed")
        self.assertGreater(time.monotonic() - t0, 0.8)

    def test_header_timeout_closes_slow_client(self):
        c = self.conn()
        t0 = time.monotonic()
        c.send(b"GET /dev/p/slowloris HTTP/1.1\r\nHost: gw\r\n")
        self.assertTrue(c.wait_closed(4), "slow client not closed")
        self.assertLess(time.monotonic() - t0, 3.5)
        self.assertEqual(self.origin.count("/slowloris"), 0)

    def test_header_timeout_is_not_reset_by_trickling(self):
        c = self.conn()
        t0 = time.monotonic()
        c.send(b"GET /dev/p/trickle HTTP/1.1\r\n")
        closed = False
        for i in range(40):  # one header byte every 100 ms: 4 s if never cut
            try:
                c.send(b"X")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if c.wait_closed(0.1):
                closed = True
                break
        self.assertTrue(closed, "trickling client kept the connection for 4 s")
        self.assertLess(time.monotonic() - t0, 3.0)
        self.assertEqual(self.origin.count("/trickle"), 0)

    def test_max_connections(self):
        held = []
        for i in range(4):
            c = self.conn()
            c.send(req("/dev/p/held?i=%d" % i))
            self.assertEqual(c.read_response().status, 200)
            held.append(c)
        extra = self.conn()
        try:
            extra.send(req("/dev/p/over"))
            got = extra.read_responses(1, timeout=1.0)
        except (BrokenPipeError, ConnectionResetError):
            got = []
        self.assertFalse(any(r.status == 200 for r in got),
                         "a 5th connection was served with max_connections: 4")
        self.assertEqual(self.origin.count("/over"), 0)
        extra.close()
        held[0].close()
        time.sleep(0.3)
        c = self.conn()
        c.send(req("/dev/p/after"))
        self.assertEqual(c.read_response(timeout=5).status, 200)


class TestBodies(HttpTest):
    def test_chunked_request_body(self):
        c = self.conn()
        parts = [b"hello ", b"chunked ", b"world"]
        body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
        c.send(req("/dev/p/sink", "POST", b"Transfer-Encoding: chunked\r\n", body))
        r = c.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["length"], len(b"".join(parts)))
        self.assertEqual(r.json()["sha256"], hashlib.sha256(b"".join(parts)).hexdigest())
        # the connection is still usable after a chunked body
        c.send(req("/dev/p/after-chunked"))
        self.assertEqual(c.read_response().status, 200)

    def test_body_arrives_later(self):
        # the head first, the body in two parts later: the integration call
        # starts before any body byte is there (streamed bodies)
        c = self.conn()
        c.send(b"POST /dev/p/sink HTTP/1.1\r\nHost: gw\r\nContent-Length: 3000\r\n\r\n")
        time.sleep(0.3)
        c.send(b"a" * 1000)
        time.sleep(0.2)
        c.send(b"b" * 2000)
        r = c.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["sha256"], hashlib.sha256(b"a" * 1000 + b"b" * 2000).hexdigest())

    def test_chunked_body_arrives_later(self):
        c = self.conn()
        c.send(b"POST /dev/p/sink HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n")
        time.sleep(0.3)
        c.send(b"5\r\nhello\r\n")
        time.sleep(0.2)
        c.send(b"0\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["length"], 5)

    def test_expect_100_continue(self):
        c = self.conn()
        c.send(b"POST /dev/p/sink HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n"
               b"Expect: 100-continue\r\n\r\n")
        c.s.settimeout(3)
        interim = b""
        while b"\r\n\r\n" not in interim:
            d = c.s.recv(4096)
            if not d:
                break
            interim += d
        self.assertTrue(interim.startswith(b"HTTP/1.1 100"), "no 100 Continue: %r" % interim)
        head, _, rest = interim.partition(b"\r\n\r\n")
        c.buf = rest
        c.send(b"hello")
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["length"], 5)

    def test_expect_100_continue_with_curl(self):
        path = os.path.join(self.gw.dir, "b.bin")
        data = b"y" * 3000
        with open(path, "wb") as f:
            f.write(data)
        r = curl(self.gw.url("/dev/p/sink"), "-X", "POST", "--data-binary", "@" + path,
                 "-H", "Expect: 100-continue")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["sha256"], hashlib.sha256(data).hexdigest())

    def test_expect_too_large_413_without_continue(self):
        c = self.conn()
        c.send(b"POST /dev/p/sink HTTP/1.1\r\nHost: gw\r\nContent-Length: 100000\r\n"
               b"Expect: 100-continue\r\n\r\n")
        rs = c.read_responses(1, timeout=3)
        self.assertTrue(rs, c.buf)
        self.assertEqual(rs[0].status, 413, rs)
        self.assertEqual(self.origin.count("/sink"), 0)

    def test_head(self):
        c = self.conn()
        c.send(req("/dev/p/headme", "HEAD"))
        r = c.read_response(head_only=True)
        self.assertEqual(r.status, 200)
        self.assertEqual(self.origin.count("/headme", "HEAD"), 1)
        # no body follows: the next answer on the connection starts right away
        c.send(req("/dev/p/after-head"))
        r2 = c.read_response()
        self.assertEqual(r2.status, 200, r2)
        self.assertEqual(r2.json()["path"], "/after-head")

    def test_head_with_curl(self):
        r = curl(self.gw.url("/dev/p/headcurl"), "--head")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"")
        self.assertEqual(r.rc, 0, r.err)

    def test_413_content_length(self):
        c = self.conn()
        c.send(req("/dev/p/sink", "POST", body=b"z" * 5000))
        r = c.read_responses(1, timeout=3)
        self.assertTrue(r, c.buf[:300])
        self.assertEqual(r[0].status, 413, r)
        self.assertTrue(r[0].headers.get("content-type", "").startswith("application/json"))
        self.assertEqual(self.origin.count("/sink"), 0)

    def test_413_chunked(self):
        c = self.conn()
        chunk = b"z" * 1000
        body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(6)) + b"0\r\n\r\n"
        try:
            c.send(req("/dev/p/sink", "POST", b"Transfer-Encoding: chunked\r\n", body))
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = c.read_responses(1, timeout=3)
        self.assertTrue(r, c.buf[:300])
        self.assertEqual(r[0].status, 413, r)
        self.assertEqual(self.origin.count("/sink"), 0)

    def test_body_timeout(self):
        c = self.conn()
        c.send(b"POST /dev/p/sink HTTP/1.1\r\nHost: gw\r\nContent-Length: 100\r\n\r\nonly-some")
        t0 = time.monotonic()
        self.assertTrue(c.wait_closed(5), "a stalled body kept the connection")
        self.assertLess(time.monotonic() - t0, 4)
        self.assertEqual(self.origin.count("/sink"), 0)


class TestSmuggling(HttpTest):
    def smuggle(self, data):
        c = self.conn()
        c.send(data)
        self.assertRejected(c, 400)
        self.assertEqual(self.origin.count(), 0, self.origin.requests())
        # the gateway still serves others
        self.assertEqual(curl(self.gw.url("/dev/p/still-up")).status, 200)

    def test_cl_and_te(self):
        self.smuggle(b"POST /dev/p/sink HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                     b"GET /dev/p/smuggled HTTP/1.1\r\nHost: gw\r\n\r\n")

    def test_te_and_cl(self):
        self.smuggle(b"POST /dev/p/sink HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n"
                     b"Content-Length: 40\r\n\r\n0\r\n\r\n"
                     b"GET /dev/p/smuggled HTTP/1.1\r\nHost: gw\r\n\r\n")

    def test_two_different_content_lengths(self):
        self.smuggle(b"POST /dev/p/sink HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n"
                     b"Content-Length: 6\r\n\r\nhelloX")

    def test_content_length_list(self):
        self.smuggle(b"POST /dev/p/sink HTTP/1.1\r\nHost: gw\r\nContent-Length: 5, 6\r\n\r\nhelloX")

    def test_bad_content_length(self):
        self.smuggle(b"POST /dev/p/sink HTTP/1.1\r\nHost: gw\r\nContent-Length: 5x\r\n\r\nhello")

    def test_bad_chunk_size(self):
        self.smuggle(b"POST /dev/p/sink HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n"
                     b"\r\nzz\r\nhello\r\n0\r\n\r\n")

    def test_chunk_size_overflow(self):
        self.smuggle(b"POST /dev/p/sink HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n"
                     b"\r\n10000000000000005\r\nhello\r\n0\r\n\r\n")

    def test_unknown_transfer_coding(self):
        c = self.conn()
        c.send(b"POST /dev/p/sink HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: gzip\r\n\r\nxx")
        rs = c.read_responses(1, timeout=3)
        self.assertTrue(rs, c.buf)
        self.assertIn(rs[0].status, (400, 501), rs)
        self.assertTrue(c.wait_closed(3))
        self.assertEqual(self.origin.count(), 0)

    def test_space_before_colon(self):
        self.smuggle(b"GET /dev/p/x HTTP/1.1\r\nHost : gw\r\n\r\n")

    def test_garbage_request_line(self):
        self.smuggle(b"HELLO\r\n\r\n")


class TestLimits(HttpTest):
    def test_431_too_many_headers(self):
        c = self.conn()
        extra = b"".join(b"X-H%d: v\r\n" % i for i in range(40))
        c.send(req("/dev/p/many", extra=extra))
        self.assertRejected(c, 431)
        self.assertEqual(self.origin.count(), 0)

    def test_431_headers_too_large(self):
        c = self.conn()
        c.send(req("/dev/p/big", extra=b"X-Big: " + b"a" * 4000 + b"\r\n"))
        self.assertRejected(c, 431)
        self.assertEqual(self.origin.count(), 0)

    def test_headers_within_limits_pass(self):
        extra = b"".join(b"X-H%d: v\r\n" % i for i in range(10))
        c = self.conn()
        c.send(req("/dev/p/echo", extra=extra))
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["headers"].get("x-h9"), "v")

    def test_414_long_url(self):
        c = self.conn()
        c.send(req("/dev/p/" + "u" * 1000))
        self.assertRejected(c, 414)
        self.assertEqual(self.origin.count(), 0)

    def test_long_url_with_curl(self):
        r = curl(self.gw.url("/dev/p/x?" + "q" * 1000))
        self.assertEqual(r.status, 414, r)
        self.assertEqual(self.origin.count(), 0)


if __name__ == "__main__":
    harness.main()
