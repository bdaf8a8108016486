#!/usr/bin/env python3
"""60 smuggling: the systematic table of ambiguous or malformed requests
(request smuggling, RFC 9112 §6.3 and §11.2) and malformed integration
answers.

Client side: every malformed request is answered with its 4xx/5xx error
(400; 501 for an unknown transfer coding, 505 for another HTTP version,
414/431 for limits), `Connection: close`, a JSON body, the connection closed,
a request pipelined behind it in the same packet never answered, and nothing
reaching the origin. A few look-alikes that are valid (`Transfer-Encoding:`
HTAB `chunked`, chunk extensions, a body that looks like a request) must be
served normally.

Origin side: every malformed answer (tests/e2e/origin.py /bad/{kind}) on a
caching GET route gives the client a 502 with a JSON body (or, when the body
is what is cut, a response that visibly ends short) and is never cached: the
same request goes to the origin again. The controls /bad/ok and
/bad/ok-chunked, written the same raw way, are cached.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import GatewayTest, RawConn  # noqa: E402

CONFIG = """
server:
  listen: "127.0.0.1:{port}"
  workers: 1
  limits:
    max_header_bytes: 2048
    max_headers: 20
    max_url_bytes: 512
    max_body_bytes: 4096
    header_timeout_ms: 3000
    body_timeout_ms: 3000
apis:
  - id: shop
    resources:
      /p/{proxy+}:
        ANY:
          integration: { type: HTTP_PROXY, uri: "{origin}/{proxy}", timeout_ms: 3000 }
      /only-get:
        GET:
          integration: { type: MOCK, status: 200, headers: {content-type: text/plain}, body: "only-get" }
    stages:
      dev:
        cache_cluster_enabled: false
      prod:
        cache_cluster_enabled: true
        method_settings:
          - resource_path: "/*"
            http_method: "*"
            cache_ttl_in_seconds: 300
"""

POST = b"POST /dev/p/sink HTTP/1.1\r\nHost: gw\r\n"
GET = b"GET /dev/p/x HTTP/1.1\r\nHost: gw\r\n"
CHUNKED = POST + b"Transfer-Encoding: chunked\r\n\r\n"
# pipelined behind every case, in the same packet: never answered after an error
FOLLOW = b"GET /dev/p/smuggled HTTP/1.1\r\nHost: gw\r\n\r\n"


def line(method=b"GET", target=b"/dev/p/x", version=b"HTTP/1.1"):
    return method + b" " + target + b" " + version + b"\r\nHost: gw\r\n\r\n"


# (name, request bytes, expected status or tuple of acceptable statuses)
REJECTED = [
    # ---- CL.TE, TE.CL, TE.TE
    ("cl-te", POST + b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX", 400),
    ("te-cl", POST + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
              b"8\r\nSMUGGLED\r\n0\r\n\r\n", 400),
    ("cl-te-identity", POST + b"Content-Length: 5\r\nTransfer-Encoding: identity\r\n\r\n"
                       b"hello", 400),
    ("te-xchunked", POST + b"Transfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400),
    ("te-chunkedx", POST + b"Transfer-Encoding: chunkedx\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400),
    ("te-space-before-colon", POST + b"Transfer-Encoding : chunked\r\n\r\n"
                                     b"5\r\nhello\r\n0\r\n\r\n", 400),
    ("te-chunked-identity", POST + b"Transfer-Encoding: chunked, identity\r\n\r\n"
                                   b"5\r\nhello\r\n0\r\n\r\n", 400),
    ("te-chunked-chunked", POST + b"Transfer-Encoding: chunked, chunked\r\n\r\n"
                                  b"5\r\nhello\r\n0\r\n\r\n", 400),
    ("te-two-lines", POST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n"
                            b"5\r\nhello\r\n0\r\n\r\n", 400),
    ("te-two-lines-chunked", POST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked"
                                    b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400),
    ("te-obs-fold", POST + b"Transfer-Encoding:\r\n chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400),
    ("te-obs-fold-continued", POST + b"Transfer-Encoding: chunked\r\n , identity\r\n\r\n"
                                     b"5\r\nhello\r\n0\r\n\r\n", 400),
    ("te-after-obs-fold", POST + b"X-Foo: bar\r\n Transfer-Encoding: chunked\r\n\r\n"
                                 b"5\r\nhello\r\n0\r\n\r\n", 400),
    ("te-vertical-tab", POST + b"Transfer-Encoding:\x0bchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
     400),
    ("te-nul", POST + b"Transfer-Encoding: chunked\x00\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400),
    ("te-quoted", POST + b"Transfer-Encoding: \"chunked\"\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400),
    ("te-empty", POST + b"Transfer-Encoding:\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400),
    ("te-gzip", POST + b"Transfer-Encoding: gzip\r\n\r\nxx", 400),
    ("te-gzip-chunked", POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
     501),
    ("te-http10", b"POST /dev/p/sink HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5\r\nhello\r\n0\r\n\r\n", 400),
    # ---- Content-Length
    ("cl-two-values", POST + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhelloX", 400),
    ("cl-list", POST + b"Content-Length: 5, 6\r\n\r\nhelloX", 400),
    ("cl-plus", POST + b"Content-Length: +5\r\n\r\nhello", 400),
    ("cl-minus", POST + b"Content-Length: -1\r\n\r\nhello", 400),
    ("cl-two-numbers", POST + b"Content-Length: 5 5\r\n\r\nhello", 400),
    ("cl-huge", POST + b"Content-Length: 99999999999999999999999\r\n\r\nhello", 400),
    ("cl-u64-overflow", POST + b"Content-Length: 18446744073709551621\r\n\r\nhello", 400),
    ("cl-hex", POST + b"Content-Length: 0x5\r\n\r\nhello", 400),
    ("cl-empty", POST + b"Content-Length:\r\n\r\nhello", 400),
    ("cl-decimal", POST + b"Content-Length: 5.0\r\n\r\nhello", 400),
    ("cl-space-before-colon", POST + b"Content-Length : 5\r\n\r\nhello", 400),
    ("cl-obs-fold", POST + b"Content-Length:\r\n 5\r\n\r\nhello", 400),
    # ---- line endings, obs-fold, control bytes
    ("bare-lf-everywhere", b"GET /dev/p/x HTTP/1.1\nHost: gw\n\n", 400),
    ("bare-lf-request-line", b"GET /dev/p/x HTTP/1.1\nHost: gw\r\n\r\n", 400),
    ("bare-lf-field", GET + b"X-A: a\nX-B: b\r\n\r\n", 400),
    ("bare-lf-end-of-head", GET + b"\n", 400),
    ("bare-cr-field", GET + b"X-A: a\rX-B: b\r\n\r\n", 400),
    ("obs-fold-any-header", GET + b"X-Foo: a\r\n b\r\n\r\n", 400),
    ("obs-fold-tab", GET + b"X-Foo: a\r\n\tb\r\n\r\n", 400),
    ("nul-in-value", GET + b"X-Foo: a\x00b\r\n\r\n", 400),
    ("nul-in-name", GET + b"X-F\x00oo: a\r\n\r\n", 400),
    ("ctl-01-in-value", GET + b"X-Foo: a\x01b\r\n\r\n", 400),
    ("ctl-1b-in-value", GET + b"X-Foo: a\x1b[0mb\r\n\r\n", 400),
    ("del-in-value", GET + b"X-Foo: a\x7fb\r\n\r\n", 400),
    ("ctl-in-name", GET + b"X-F\x01oo: a\r\n\r\n", 400),
    ("space-in-name", GET + b"X Foo: a\r\n\r\n", 400),
    ("empty-name", GET + b": a\r\n\r\n", 400),
    ("no-colon", GET + b"X-Foo\r\n\r\n", 400),
    ("nul-in-request-line", b"GET /dev/p/x\x00 HTTP/1.1\r\nHost: gw\r\n\r\n", 400),
    # ---- chunked bodies
    ("chunk-size-non-hex", CHUNKED + b"zz\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk-size-0x", CHUNKED + b"0x5\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk-size-negative", CHUNKED + b"-5\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk-size-plus", CHUNKED + b"+5\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk-size-overflow", CHUNKED + b"10000000000000005\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk-size-empty", CHUNKED + b"\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk-size-leading-space", CHUNKED + b" 5\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk-size-trailing-space", CHUNKED + b"5 \r\nhello\r\n0\r\n\r\n", 400),
    ("chunk-size-bare-lf", CHUNKED + b"5\nhello\r\n0\r\n\r\n", 400),
    ("chunk-data-no-crlf", CHUNKED + b"5\r\nhelloX0\r\n\r\n", 400),
    ("chunk-data-too-long", CHUNKED + b"3\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk-data-bare-lf", CHUNKED + b"5\r\nhello\n0\r\n\r\n", 400),
    ("chunk-ext-ctl", CHUNKED + b"5;a=\x01\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk-ext-nul", CHUNKED + b"5;a\x00b\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk-ext-bare-lf", CHUNKED + b"5;a=b\nhello\r\n0\r\n\r\n", 400),
    ("chunk-ext-bare-cr", CHUNKED + b"5;a=b\rhello\r\n0\r\n\r\n", 400),
    ("chunk-last-bare-lf", CHUNKED + b"5\r\nhello\r\n0\n\n", 400),
    ("chunk-trailer-obs-fold", CHUNKED + b"5\r\nhello\r\n0\r\nX-T: a\r\n b\r\n\r\n", 400),
    ("chunk-trailer-no-colon", CHUNKED + b"5\r\nhello\r\n0\r\nX-T\r\n\r\n", 400),
    # ---- request line
    ("absolute-form", line(target=b"http://x/dev/p/x"), 400),
    ("absolute-form-root", line(target=b"http://x/"), 400),
    ("asterisk-form", line(b"OPTIONS", b"*"), 400),
    ("authority-form", line(b"CONNECT", b"gw:443"), 400),
    ("two-spaces-before-target", b"GET  /dev/p/x HTTP/1.1\r\nHost: gw\r\n\r\n", 400),
    ("two-spaces-before-version", b"GET /dev/p/x  HTTP/1.1\r\nHost: gw\r\n\r\n", 400),
    ("tab-separator", b"GET\t/dev/p/x HTTP/1.1\r\nHost: gw\r\n\r\n", 400),
    ("space-in-target", b"GET /dev/p/x y HTTP/1.1\r\nHost: gw\r\n\r\n", 400),
    ("leading-space", b" GET /dev/p/x HTTP/1.1\r\nHost: gw\r\n\r\n", 400),
    ("trailing-space", b"GET /dev/p/x HTTP/1.1 \r\nHost: gw\r\n\r\n", 400),
    ("no-version", b"GET /dev/p/x\r\nHost: gw\r\n\r\n", 400),
    ("method-not-token", line(b"GE(T"), 400),
    ("http-2.0", line(version=b"HTTP/2.0"), 505),
    ("http-1.2", line(version=b"HTTP/1.2"), 505),
    ("http-3.0", line(version=b"HTTP/3.0"), 505),
    ("http-1.10", line(version=b"HTTP/1.10"), 400),
    ("http-lower-case", line(version=b"http/1.1"), 400),
    ("http-2-no-minor", line(version=b"HTTP/2"), 400),
    ("missing-host", b"GET /dev/p/x HTTP/1.1\r\n\r\n", 400),
    ("duplicate-host", GET + b"Host: other\r\n\r\n", 400),
    ("tls-client-hello", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 40, 400),
    # ---- limits (server.limits above)
    ("over-long-target", line(target=b"/dev/p/" + b"u" * 1000), 414),
    ("over-long-query", line(target=b"/dev/p/x?" + b"q" * 1000), 414),
    ("over-long-header-line", GET + b"X-Big: " + b"a" * 3000 + b"\r\n\r\n", 431),
    ("over-long-method", line(b"G" * 3000), 431),
    ("too-many-headers", GET + b"".join(b"X-H%d: v\r\n" % i for i in range(30)) + b"\r\n", 431),
]


def sink(body):
    return b"%x\r\n%s\r\n" % (len(body), body)


# Valid requests that look like the cases above: (name, bytes, decoded body)
# on POST /dev/p/sink; each is served, and FOLLOW behind it is served too.
BODY_LIKE_REQUEST = b"GET /dev/p/smuggled-in-body HTTP/1.1\r\nHost: gw\r\n\r\n"
ACCEPTED = [
    ("te-htab-chunked", POST + b"Transfer-Encoding:\tchunked\r\n\r\n" + sink(b"hello")
     + b"0\r\n\r\n", b"hello"),
    ("te-upper-case", POST + b"Transfer-Encoding: CHUNKED\r\n\r\n" + sink(b"hello")
     + b"0\r\n\r\n", b"hello"),
    ("te-trailing-ows", POST + b"Transfer-Encoding: chunked \t\r\n\r\n" + sink(b"hello")
     + b"0\r\n\r\n", b"hello"),
    ("chunk-ext", CHUNKED + b"5;name=value\r\nhello\r\n6 ; q=\"a b\"\r\n world\r\n0\r\n\r\n",
     b"hello world"),
    ("chunk-upper-hex-leading-zeros", CHUNKED + b"000A\r\n0123456789\r\n0\r\n\r\n",
     b"0123456789"),
    ("chunk-trailer", CHUNKED + sink(b"hello") + b"0\r\nX-Trailer: v\r\n\r\n", b"hello"),
    ("cl-body-looks-like-request", POST + b"Content-Length: %d\r\n\r\n%s"
     % (len(BODY_LIKE_REQUEST), BODY_LIKE_REQUEST), BODY_LIKE_REQUEST),
    ("chunked-body-looks-like-request", CHUNKED + sink(BODY_LIKE_REQUEST) + b"0\r\n\r\n",
     BODY_LIKE_REQUEST),
    ("leading-empty-line", b"\r\n" + POST + b"Content-Length: 5\r\n\r\nhello", b"hello"),
    ("obs-text-value", POST + b"X-Latin: caf\xe9\r\nContent-Length: 5\r\n\r\nhello", b"hello"),
]

# Malformed integration answers (origin.py BAD_ANSWERS), on the caching route.
BAD_HEADS = ["obs-fold", "bare-lf", "bare-lf-field", "nul-value", "ctl-value",
             "space-before-colon", "no-colon", "status-2000", "status-99", "status-alpha",
             "http2", "http12", "garbage", "switching", "head-over-64k", "fields-over-256",
             "cl-te", "te-cl", "two-cl", "cl-plus", "cl-minus", "cl-list", "cl-huge",
             "te-gzip", "te-gzip-chunked", "te-chunked-twice", "te-http10"]
# The head is fine and the body is what is wrong. Bodies stream (README "The
# data plane"), so the head may already be on its way to the client when the
# body turns out bad: then the only signal left is closing the connection
# short of the framing the head announced (as in 20_proxy
# test_upstream_closes_mid_body). A complete-looking answer is a failure.
BAD_BODIES = ["short-body", "chunked-cut", "bad-chunk-size", "chunk-size-overflow",
              "chunk-no-crlf"]


def fetch(port, path, timeout=5.0):
    """GET path on a fresh keep-alive connection. Returns (response or None,
    closed, leftover bytes): None when no complete response arrived."""
    c = RawConn(port)
    try:
        c.send(b"GET %s HTTP/1.1\r\nHost: gw\r\n\r\n" % path.encode())
        rs = c.read_responses(1, timeout=timeout)
        return (rs[0] if rs else None), c.closed, c.buf
    finally:
        c.close()


class SmugglingTest(GatewayTest):
    def setUp(self):
        super().setUp()
        self.gw = self.gateway(CONFIG)

    def test_rejected_table(self):
        gw = self.gw
        for name, data, expected in REJECTED:
            with self.subTest(case=name, sent=data[:160]):
                self.assertTrue(gw.alive(), "gateway died before this case")
                before = self.origin.count()
                c = RawConn(gw.port)
                try:
                    try:
                        c.send(data + FOLLOW)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    rs = c.read_responses(2, timeout=3)
                    closed = c.wait_closed(3)
                finally:
                    c.close()
                self.assertTrue(rs, "no answer (closed=%r); got %r" % (closed, c.buf[:300]))
                r = rs[0]
                want = expected if isinstance(expected, tuple) else (expected,)
                self.assertIn(r.status, want, r)
                self.assertIn("close", r.headers.get("connection", "").lower(), r)
                self.assertTrue(r.headers.get("content-type", "").startswith("application/json"),
                                r)
                self.assertIn("message", r.json())
                self.assertEqual(len(rs), 1, "the pipelined request was answered: %r" % rs)
                self.assertTrue(closed, "connection left open after %d" % r.status)
                self.assertEqual(self.origin.count(), before,
                                 "forwarded: %r" % self.origin.requests()[-3:])
        # Late arrivals (a forward racing the error answer) and liveness.
        time.sleep(0.2)
        self.assertEqual(self.origin.count(), 0, self.origin.requests())
        self.assertTrue(gw.alive())
        r = harness.curl(gw.url("/dev/p/still-up"))
        self.assertEqual(r.status, 200, r)

    def test_accepted_table(self):
        gw = self.gw
        for name, data, body in ACCEPTED:
            with self.subTest(case=name, sent=data[:160]):
                self.origin.reset()
                c = RawConn(gw.port)
                try:
                    c.send(data + FOLLOW)
                    rs = c.read_responses(2, timeout=5)
                    closed = c.wait_closed(0.2)
                finally:
                    c.close()
                self.assertEqual([r.status for r in rs], [200, 200], rs)
                self.assertEqual(rs[0].json()["length"], len(body), rs[0])
                self.assertEqual(rs[1].json()["path"], "/smuggled", rs[1])
                self.assertFalse(closed, "a valid request closed the connection")
                self.assertEqual(self.origin.count("/sink"), 1)
                self.assertEqual(self.origin.count("/smuggled"), 1)
                self.assertEqual(self.origin.count(), 2, self.origin.requests())
                self.assertEqual(self.origin.last_request("/sink")["body"],
                                 body.decode("latin-1"))

    def test_methods_are_case_sensitive_tokens(self):
        # A lower-case (or unknown) method is a valid token: routed like any
        # other method (no GET matches it), not a parse error and never a 5xx.
        gw = self.gw
        for method in (b"get", b"Get", b"FOO", b"G-E_T!"):
            with self.subTest(method=method):
                c = RawConn(gw.port)
                try:
                    c.send(method + b" /dev/only-get HTTP/1.1\r\nHost: gw\r\n\r\n"
                           + b"GET /dev/only-get HTTP/1.1\r\nHost: gw\r\n\r\n")
                    rs = c.read_responses(2, timeout=3)
                finally:
                    c.close()
                self.assertTrue(rs, c.buf[:300])
                self.assertLess(rs[0].status, 500, rs[0])
                self.assertNotEqual(rs[0].body, b"only-get", "%s routed to GET" % method)
                self.assertEqual(rs[0].status, 403, rs[0])
                self.assertEqual(len(rs), 2, rs)
                self.assertEqual((rs[1].status, rs[1].body), (200, b"only-get"))
                self.assertTrue(gw.alive())


class MalformedAnswerTest(GatewayTest):
    def setUp(self):
        super().setUp()
        self.gw = self.gateway(CONFIG)

    def test_controls_are_cached(self):
        for kind in ("ok", "ok-chunked"):
            with self.subTest(kind=kind):
                path = "/prod/p/bad/" + kind
                r1, _, _ = fetch(self.gw.port, path)
                r2, _, _ = fetch(self.gw.port, path)
                self.assertIsNotNone(r1)
                self.assertIsNotNone(r2)
                self.assertEqual((r1.status, r1.body), (200, b"ok"), r1)
                self.assertEqual(r1.headers.get("x-cache-status"), "MISS", r1)
                self.assertEqual((r2.status, r2.body), (200, b"ok"), r2)
                self.assertEqual(r2.headers.get("x-cache-status"), "HIT", r2)
                self.assertEqual(self.origin.count("/bad/" + kind), 1)

    def assertBadGateway(self, r, kind):
        self.assertEqual(r.status, 502, "%s: %r" % (kind, r))
        self.assertTrue(r.headers.get("content-type", "").startswith("application/json"), r)
        self.assertEqual(r.json().get("message"), "Internal server error", r)
        self.assertNotEqual(r.headers.get("x-cache-status"), "HIT", r)

    def test_malformed_heads_502_never_cached(self):
        for kind in BAD_HEADS:
            with self.subTest(kind=kind):
                self.assertTrue(self.gw.alive(), "gateway died before this case")
                path = "/prod/p/bad/" + kind
                for i in (1, 2):
                    r, closed, rest = fetch(self.gw.port, path)
                    self.assertIsNotNone(r, "no complete answer (closed=%r): %r" % (closed, rest))
                    self.assertBadGateway(r, kind)
                    self.assertEqual(self.origin.count("/bad/" + kind), i,
                                     "request %d did not reach the origin: a cached bad answer?"
                                     % i)
        self.assertTrue(self.gw.alive())

    def test_malformed_bodies_fail_visibly_never_cached(self):
        for kind in BAD_BODIES:
            with self.subTest(kind=kind):
                path = "/prod/p/bad/" + kind
                for i in (1, 2):
                    r, closed, rest = fetch(self.gw.port, path)
                    if r is not None:
                        self.assertBadGateway(r, kind)  # a complete answer must be the 502
                    else:
                        self.assertTrue(closed, "%s: neither an answer nor a close: %r"
                                        % (kind, rest))
                    self.assertEqual(self.origin.count("/bad/" + kind), i,
                                     "request %d did not reach the origin: a cached bad answer?"
                                     % i)
        self.assertTrue(self.gw.alive())


if __name__ == "__main__":
    harness.main()
