#!/usr/bin/env python3
"""32 large bodies: hits of 64 KiB and more leave the gateway without a copy
(the entry's pages are lent to the socket, src/server/conn.c). What a user
must see is only that every byte is right: sizes around the threshold and
the pipe's capacity, many clients at once, slow readers (the socket takes
part of a body, the rest goes the ordinary way), clients that hang up
mid-body, pipelining and HEAD. Every body is compared byte for byte with
what the origin sends for its seed, so a byte from another answer shows.
"""
import os
import random
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import GatewayTest, RawConn, http_request  # noqa: E402
from origin import pattern  # noqa: E402

CONFIG = """
server:
  listen: "127.0.0.1:{port}"
  workers: @WORKERS@
apis:
  - id: shop
    resources:
      /p/{proxy+}:
        ANY:
          integration: { type: HTTP_PROXY, uri: "{origin}/{proxy}" }
          cache_key_parameters: ["method.request.querystring.bytes",
                                 "method.request.querystring.seed"]
    stages:
      prod:
        cache_cluster_enabled: true
        cache_cluster_size: "256MiB"
        method_settings:
          - { resource_path: "/*", http_method: "*", cache_ttl_in_seconds: 300,
              max_cached_response_bytes: 8388608 }
"""

# around the zero-copy threshold (64 KiB), a typical large answer, the
# worker pipe's capacity (1 MiB) and past it
SIZES = [65535, 65536, 65537, 200003, 1 << 20, (1 << 20) + 4097, 3 * (1 << 20) + 1]


def config(workers=1):
    return CONFIG.replace("@WORKERS@", str(workers))


def url(size, seed):
    return "/prod/p/large/z?bytes=%d&seed=%s" % (size, seed)


def request(size, seed, method="GET"):
    return ("%s %s HTTP/1.1\r\nHost: x\r\n\r\n" % (method, url(size, seed))).encode()


class LargeBodies(GatewayTest):
    def fill(self, gw, sizes, seeds):
        for size in sizes:
            for seed in seeds:
                r = http_request(gw.port, "GET", url(size, seed), timeout=20)
                self.assertEqual(r.status, 200, r.headers)
                self.assertEqual(r.body, pattern(size, seed), "fill %d %s" % (size, seed))

    def test_hits_are_byte_exact(self):
        gw = self.gateway(config())
        self.fill(gw, SIZES, ["a"])
        for size in SIZES:
            r = http_request(gw.port, "GET", url(size, "a"), timeout=20)
            self.assertEqual(r.headers.get("x-cache-status"), "HIT", (size, r.headers))
            self.assertEqual(int(r.headers["content-length"]), size)
            self.assertTrue(r.body == pattern(size, "a"), "hit of %d bytes differs" % size)
        self.assertEqual(self.origin.count("/large/z"), len(SIZES))

    def test_pipelined_and_head(self):
        gw = self.gateway(config())
        self.fill(gw, [200003, (1 << 20) + 4097], ["p", "q"])
        c = RawConn(gw.port, timeout=10)
        self.addCleanup(c.close)
        c.send(request(200003, "p") + request((1 << 20) + 4097, "q") + request(200003, "q"))
        got = c.read_responses(3, timeout=20)
        self.assertEqual(len(got), 3)
        want = [pattern(200003, "p"), pattern((1 << 20) + 4097, "q"), pattern(200003, "q")]
        for r, body in zip(got, want):
            self.assertEqual(r.status, 200)
            self.assertTrue(r.body == body, "pipelined body of %d bytes differs" % len(body))
        c.send(request(200003, "p", "HEAD") + request(65536, "nohead"))
        h = c.read_responses(1, timeout=10, head_only=True)
        self.assertEqual((h[0].status, h[0].body), (200, b""))
        self.assertEqual(h[0].headers.get("content-length"), "200003")
        g = c.read_response(timeout=10)
        self.assertEqual(g.body, pattern(65536, "nohead"))

    def test_slow_reader_gets_every_byte(self):
        # A small receive buffer and pauses: the socket takes part of the
        # body, the rest is queued the ordinary way, in order, after it.
        gw = self.gateway(config())
        size = 3 * (1 << 20) + 1
        self.fill(gw, [size, 65537], ["slow"])
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10)
        s.connect(("127.0.0.1", gw.port))
        self.addCleanup(s.close)
        s.sendall(request(size, "slow") + request(65537, "slow"))
        c = RawConn.__new__(RawConn)
        c.s, c.buf, c.closed = s, b"", False
        time.sleep(0.3)  # let the gateway fill the socket and queue the rest
        deadline = time.monotonic() + 30
        for _ in range(100000):
            chunk = s.recv(8192)
            if not chunk:
                break
            c.buf += chunk
            if len(c.buf) < 200000:
                time.sleep(0.002)
            got, _ = harness.parse_responses(c.buf)
            if len(got) == 2 or time.monotonic() > deadline:
                break
        got = c.read_responses(2, timeout=10)
        self.assertEqual(len(got), 2)
        self.assertTrue(got[0].body == pattern(size, "slow"), "slow reader: first body differs")
        self.assertEqual(got[1].body, pattern(65537, "slow"))

    def test_hangups_mid_body_do_not_leak_into_other_answers(self):
        gw = self.gateway(config())
        self.fill(gw, [(1 << 20) + 4097, 200003], ["h", "k"])
        for i in range(30):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.settimeout(5)
            s.connect(("127.0.0.1", gw.port))
            s.sendall(request((1 << 20) + 4097, "h"))
            s.recv(1000 + 97 * i)
            s.close()
            r = http_request(gw.port, "GET", url(200003, "k"), timeout=20)
            self.assertTrue(r.body == pattern(200003, "k"), "answer after hang-up %d differs" % i)
        self.assertEqual(self.origin.count("/large/z"), 4)

    def test_many_clients_two_workers(self):
        gw = self.gateway(config(workers=2))
        seeds = ["c%d" % i for i in range(6)]
        sizes = [65536, 200003, (1 << 20) + 4097]
        self.fill(gw, sizes, seeds)
        errors = []

        def client(n):
            rnd = random.Random(n)
            c = RawConn(gw.port, timeout=10)
            try:
                for _ in range(25):
                    size, seed = rnd.choice(sizes), rnd.choice(seeds)
                    c.send(request(size, seed))
                    r = c.read_response(timeout=20)
                    if r.status != 200 or r.body != pattern(size, seed):
                        errors.append((n, size, seed, r.status, len(r.body)))
                        return
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append((n, repr(e)))
            finally:
                c.close()

        threads = [threading.Thread(target=client, args=(n,)) for n in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertFalse(any(t.is_alive() for t in threads), "clients did not finish")
        self.assertEqual(errors, [])
        self.assertEqual(self.origin.count("/large/z"), len(sizes) * len(seeds))


if __name__ == "__main__":
    harness.main()
