#!/usr/bin/env python3
"""70 cluster: two gatecache nodes sharing one Redis (cache_backend: redis),
as a user running them behind a load balancer sees them. A fill on node A is
a hit on node B (the origin saw one request); a flush, a path, a prefix, a
tag, a write-triggered and an authorised max-age=0 invalidation made on A are
seen on B; with Redis killed mid-run both nodes keep answering, and when it is
back they share again.

Each test starts its own redis-server on a free loopback port and stops it
(by PID). Waits are bounded polls: propagation takes milliseconds, the
bound is there for slow (sanitizer) builds.
"""
import asyncio
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import GatewayTest, curl, free_port, port_open, stop_pid  # noqa: E402
from prometheus import parse_prometheus  # noqa: E402

TOKEN = "e2e-cluster-admin-token-7Hq2"
PROPAGATION_S = 10.0

CONFIG = """
server:
  listen: "127.0.0.1:{port}"
  workers: @WORKERS@
  admin_listen: "127.0.0.1:{admin_port}"
  admin_token_file: "@TOKEN_FILE@"
  cache_backend:
    type: redis
    url: "redis://127.0.0.1:@REDIS_PORT@/0"
    command_timeout_ms: 200
    connect_timeout_ms: 500
    reconnect_min_ms: 50
    reconnect_max_ms: 200
    key_prefix: "@PREFIX@"
apis:
  - id: shop
    resources:
      /projects/{id}/members:
        GET:
          integration: { type: HTTP_PROXY, uri: "{origin}/projects/{id}/members" }
          cache_key_parameters: ["method.request.querystring.page"]
        PUT:
          integration: { type: HTTP_PROXY, uri: "{origin}/projects/{id}/members" }
          invalidates: ["GET /projects/{id}/members"]
      /{proxy+}:
        ANY:
          integration: { type: HTTP_PROXY, uri: "{origin}/{proxy}" }
    stages:
      prod:
        cache_cluster_enabled: true
        cache_cluster_size: "64MiB"
        method_settings:
          - resource_path: "/*"
            http_method: "*"
            cache_ttl_in_seconds: 300
            require_authorization_for_cache_control: false
      local:
        cache_cluster_enabled: true
        cache_cluster_size: "64MiB"
        cache_backend: { type: memory }
        method_settings:
          - resource_path: "/*"
            http_method: "*"
            cache_ttl_in_seconds: 300
"""


def which_redis():
    return shutil.which("redis-server") or ("/usr/bin/redis-server"
                                            if os.path.exists("/usr/bin/redis-server") else None)


class Redis:
    """redis-server on a free loopback port, no persistence; stopped by PID."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.proc = None
        self.start()

    def start(self):
        exe = which_redis()
        if not exe:
            raise AssertionError("redis-server not installed (scripts/install-deps.sh installs it)")
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--protected-mode", "yes", "--loglevel", "warning"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not port_open(self.port) and time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("redis-server exited at start (port %d)" % self.port)
            time.sleep(0.02)
        if not port_open(self.port):
            raise AssertionError("redis-server did not open port %d" % self.port)

    def pause(self):
        """SIGSTOP: Redis keeps its connections but answers nothing."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self):
        if self.proc is not None:
            self.resume()  # a stopped process would not see SIGTERM
            stop_pid(self.proc, 5)
            self.proc = None


def redis_command(port, *args, timeout=5):
    """One command in RESP on a fresh connection; the reply as bytes (an
    integer or a status line's text), or a list of bytes for an array."""
    req = b"*%d\r\n" % len(args) + b"".join(
        b"$%d\r\n%s\r\n" % (len(a), a) for a in (x.encode() if isinstance(x, str) else x
                                                 for x in args))
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s, \
            s.makefile("rb") as f:
        s.sendall(req)

        def one():
            line = f.readline().rstrip(b"\r\n")
            kind, rest = line[:1], line[1:]
            if kind == b"*":
                return [one() for _ in range(max(0, int(rest)))]
            if kind == b"$":
                n = int(rest)
                return None if n < 0 else f.read(n + 2)[:-2]
            if kind == b"-":
                raise AssertionError("redis error: %r" % rest)
            return rest
        return one()


class DelayProxy:
    """A TCP proxy to Redis that holds every byte a gateway sends for
    `delay` seconds (answers pass at once): that node's writes reach Redis
    late, as on a slow network."""

    def __init__(self, target_port, delay):
        self.target, self.delay = target_port, delay
        self.writers = set()  # both ends of every connection, closed at stop
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.ready.wait(10)

    async def _pipe(self, r, w, delay):
        try:
            while True:
                data = await r.read(65536)
                if not data:
                    break
                if delay:
                    await asyncio.sleep(delay)
                w.write(data)
                await w.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            w.close()

    async def _connect(self, cw):
        """The connection to Redis for a client's, or None (client closed)."""
        try:
            sr, sw = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            cw.close()
            return None
        self.writers.update((cw, sw))
        return sr, sw

    async def _handle(self, cr, cw):
        conn = await self._connect(cw)
        if conn:
            await asyncio.gather(self._pipe(cr, conn[1], self.delay), self._pipe(conn[0], cw, 0))

    def _run(self):
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port))
        self.ready.set()
        self.loop.run_forever()
        # Every connection closed, then its pipes end by themselves, so the
        # loop closes with nothing pending.
        server.close()
        for w in self.writers:
            w.transport.abort()
        tasks = asyncio.all_tasks(self.loop)
        if tasks:
            self.loop.run_until_complete(asyncio.wait(tasks, timeout=5))
        self.loop.run_until_complete(server.wait_closed())
        self.loop.close()

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class ClusterTest(GatewayTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp, cls.token_file = harness.admin_token_dir("gatecache-e2e-cluster-", TOKEN)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.redis = Redis()
        self.addCleanup(self.redis.stop)

    def config(self, workers=1, prefix="gc:", redis_port=None):
        return (CONFIG.replace("@WORKERS@", str(workers))
                .replace("@TOKEN_FILE@", self.token_file)
                .replace("@REDIS_PORT@", str(redis_port or self.redis.port))
                .replace("@PREFIX@", prefix))

    def wait_in_redis(self, n, prefix="gc:"):
        """Waits until Redis holds n entries: a node's write to Redis
        follows its answer to the client, it does not precede it."""
        deadline = time.monotonic() + PROPAGATION_S
        while time.monotonic() < deadline:
            if len(redis_command(self.redis.port, "KEYS", prefix + "e:*")) >= n:
                return
            time.sleep(0.01)
        self.fail("Redis never held %d entries" % n)

    def node(self, **kw):
        gw = self.gateway(self.config(**kw))
        deadline = time.monotonic() + harness.START_TIMEOUT
        while not port_open(gw.admin_port) and time.monotonic() < deadline:
            time.sleep(0.02)
        self.wait_metric(gw, "gatecache_l2_stages_readable", lambda v: v >= 1)
        return gw

    def two_nodes(self, **kw):
        return self.node(**kw), self.node(**kw)

    # ---- clients
    def get(self, gw, path, *args):
        return curl(gw.url(path), *args)

    def admin(self, gw, method, path, body=None):
        return harness.admin_call(gw, method, path, TOKEN, body)

    def metrics(self, gw):
        """Every sample of /metrics, read with the strict parser (so the
        shared tier's lines are checked as Prometheus text too), by name
        and labels as written: 'gatecache_l2_lookups_total{result="hit"}'."""
        r = self.admin(gw, "GET", "/metrics")
        self.assertEqual(r.status, 200, r)
        out = {}
        for fam in parse_prometheus(r.body.decode()).values():
            for name, labels, value in fam["samples"]:
                ls = ",".join('%s="%s"' % kv for kv in labels.items())
                out[name + ("{%s}" % ls if ls else "")] = value
        return out

    def wait_metric(self, gw, name, ok, timeout=PROPAGATION_S):
        deadline = time.monotonic() + timeout
        v = None
        while time.monotonic() < deadline:
            v = self.metrics(gw).get(name)
            if v is not None and ok(v):
                return v
            time.sleep(0.02)
        self.fail("%s never satisfied the condition (last %r)" % (name, v))

    def wait_fresh(self, gw, path, old_n, timeout=PROPAGATION_S):
        """Polls node gw until its answer for path is no longer the one with
        origin counter old_n (the invalidation reached it); returns it."""
        deadline = time.monotonic() + timeout
        r = None
        while time.monotonic() < deadline:
            r = self.get(gw, path)
            if r.status == 200 and r.json()["n"] != old_n:
                return r
            time.sleep(0.02)
        self.fail("node still answers n=%d for %s after %.0f s: %r" % (old_n, path, timeout, r))

    def assertStatus(self, r, status):
        self.assertEqual(r.headers.get("x-cache-status"), status, r)


class SharedFills(ClusterTest):
    def test_fill_on_a_is_hit_on_b(self):
        a, b = self.two_nodes()
        r1 = self.get(a, "/prod/pets/1")
        self.assertStatus(r1, "MISS")
        self.wait_in_redis(1)
        r2 = self.get(b, "/prod/pets/1")
        self.assertStatus(r2, "HIT")
        self.assertEqual(r2.body, r1.body)
        self.assertRegex(r2.headers.get("age", ""), r"^\d+$")
        self.assertEqual(self.origin.count("/pets/1"), 1)
        # B now has it in its own L1 too; A still answers from L1
        self.assertStatus(self.get(b, "/prod/pets/1"), "HIT")
        self.assertStatus(self.get(a, "/prod/pets/1"), "HIT")
        self.assertEqual(self.origin.count("/pets/1"), 1)
        m = self.metrics(b)
        self.assertGreaterEqual(m['gatecache_l2_lookups_total{result="hit"}'], 1)
        self.assertGreaterEqual(self.metrics(a)["gatecache_l2_stores_total"], 1)

    def test_key_parameters_and_bodies_carry_over(self):
        a, b = self.two_nodes(workers=2)
        for page in (1, 2, 3):
            self.assertStatus(self.get(a, "/prod/projects/P/members?page=%d" % page), "MISS")
        self.wait_in_redis(3)
        for page in (1, 2, 3):
            r = self.get(b, "/prod/projects/P/members?page=%d" % page)
            self.assertStatus(r, "HIT")
            self.assertIn("page=%d" % page, r.json()["path"])
        big = self.get(a, "/prod/large/x?bytes=300000")
        self.wait_in_redis(4)
        hit = self.get(b, "/prod/large/x?bytes=300000")
        self.assertStatus(hit, "HIT")
        self.assertTrue(hit.body == big.body and len(hit.body) == 300000)
        self.assertEqual(self.origin.count("/projects/P/members"), 3)
        self.assertEqual(self.origin.count("/large/x"), 1)

    def test_other_key_prefix_shares_nothing(self):
        a = self.node(prefix="one:")
        b = self.node(prefix="two:")
        self.get(a, "/prod/pets/9")
        self.assertStatus(self.get(b, "/prod/pets/9"), "MISS")
        self.assertEqual(self.origin.count("/pets/9"), 2)


class ClusterInvalidation(ClusterTest):
    def fill_both(self, a, b, path):
        before = len(redis_command(self.redis.port, "KEYS", "gc:e:*"))
        r = self.get(a, path)
        self.assertStatus(r, "MISS")
        self.wait_in_redis(before + 1)
        self.assertStatus(self.get(b, path), "HIT")
        return r.json()["n"]

    def test_flush_on_a_reaches_b(self):
        a, b = self.two_nodes()
        n = self.fill_both(a, b, "/prod/pets/1")
        r = self.admin(a, "DELETE", "/v1/apis/shop/stages/prod/cache")
        self.assertIn(r.status, (200, 202), r)
        fresh = self.wait_fresh(b, "/prod/pets/1", n)
        self.assertStatus(fresh, "MISS")
        # A refetched nothing yet: its next answer is the one B stored (via L2) or its own miss
        self.assertIn(self.get(a, "/prod/pets/1").headers.get("x-cache-status"), ("HIT", "MISS"))
        self.wait_metric(b, "gatecache_l2_invalidations_received_total", lambda v: v >= 1)

    def test_path_prefix_and_tag_on_a_reach_b(self):
        a, b = self.two_nodes()
        n_path = self.fill_both(a, b, "/prod/pets/2")
        n_keep = self.fill_both(a, b, "/prod/pets/3")
        n_img = self.fill_both(a, b, "/prod/images/x/1")
        n_tag = self.fill_both(a, b, "/prod/tagged/ab?tags=a,b")
        n_other_tag = self.fill_both(a, b, "/prod/tagged/c?tags=c")
        inv = lambda doc: self.admin(a, "POST", "/v1/apis/shop/stages/prod/invalidations",  # noqa
                                     json.dumps(doc))
        self.assertEqual(inv({"paths": ["/pets/2"]}).status, 201)
        self.assertStatus(self.wait_fresh(b, "/prod/pets/2", n_path), "MISS")
        self.assertEqual(inv({"paths": ["/images/*"]}).status, 201)
        self.assertStatus(self.wait_fresh(b, "/prod/images/x/1", n_img), "MISS")
        self.assertEqual(inv({"tags": ["a"]}).status, 201)
        self.assertStatus(self.wait_fresh(b, "/prod/tagged/ab?tags=a,b", n_tag), "MISS")
        # what was not invalidated is still a hit on B, with the same answer
        for path, n in (("/prod/pets/3", n_keep), ("/prod/tagged/c?tags=c", n_other_tag)):
            keep = self.get(b, path)
            self.assertStatus(keep, "HIT")
            self.assertEqual(keep.json()["n"], n)

    def test_write_on_a_invalidates_b(self):
        a, b = self.two_nodes(workers=2)
        n = self.fill_both(a, b, "/prod/projects/W/members?page=1")
        put = curl(a.url("/prod/projects/W/members"), "-X", "PUT", "-H",
                   "Content-Type: application/json", "--data-binary", '{"add":"x"}')
        self.assertEqual(put.status, 200, put)
        self.assertStatus(self.wait_fresh(b, "/prod/projects/W/members?page=1", n), "MISS")

    def test_max_age_0_on_a_refreshes_b(self):
        a, b = self.two_nodes()
        n = self.fill_both(a, b, "/prod/pets/7")
        r = self.get(a, "/prod/pets/7", "-H", "Cache-Control: max-age=0")
        self.assertStatus(r, "REFRESH")
        self.assertNotEqual(r.json()["n"], n)
        fresh = self.wait_fresh(b, "/prod/pets/7", n)
        # B gets the refreshed answer (from L2 or from the origin), never the old one
        self.assertIn(fresh.headers.get("x-cache-status"), ("HIT", "MISS"))

    def test_node_that_starts_later_sees_the_current_generation(self):
        a = self.node()
        n = self.get(a, "/prod/pets/5").json()["n"]
        self.assertIn(self.admin(a, "DELETE", "/v1/apis/shop/stages/prod/cache").status,
                      (200, 202))
        self.wait_metric(a, "gatecache_l2_invalidations_published_total", lambda v: v >= 1)
        b = self.node()
        r = self.get(b, "/prod/pets/5")
        self.assertStatus(r, "MISS")  # the flushed generation is not read
        self.assertNotEqual(r.json()["n"], n)


class InProcessStage(ClusterTest):
    def test_stage_kept_out_of_redis_still_shares_invalidations(self):
        a, b = self.two_nodes()
        ra = self.get(a, "/local/pets/1")
        self.assertStatus(ra, "MISS")
        time.sleep(0.2)  # what a write to Redis would have needed
        rb = self.get(b, "/local/pets/1")
        self.assertStatus(rb, "MISS")  # each node fetched its own
        self.assertEqual(redis_command(self.redis.port, "KEYS", "gc:e:shop/local*"), [])
        self.assertStatus(self.get(b, "/local/pets/1"), "HIT")
        r = self.admin(a, "POST", "/v1/apis/shop/stages/local/invalidations",
                       json.dumps({"paths": ["/pets/1"]}))
        self.assertEqual(r.status, 201, r)
        self.assertStatus(self.wait_fresh(b, "/local/pets/1", rb.json()["n"]), "MISS")


class LateWrites(ClusterTest):
    def test_late_write_from_b_does_not_undo_an_invalidation_on_a(self):
        # B reaches Redis through a proxy that holds its bytes for 300 ms, so
        # B's write of what it fetched lands after A's invalidation of the
        # same path. Without the tombstone that write would bring the old
        # answer back to Redis, and every node would serve it for its TTL.
        proxy = DelayProxy(self.redis.port, 0.3)
        self.addCleanup(proxy.stop)
        a = self.node()
        b = self.gateway(self.config(redis_port=proxy.port).replace(
            "command_timeout_ms: 200", "command_timeout_ms: 2000"))
        self.wait_metric(b, "gatecache_l2_stages_readable", lambda v: v >= 1, timeout=30)
        old = self.get(b, "/prod/projects/L/members?page=1")
        self.assertStatus(old, "MISS")
        put = curl(a.url("/prod/projects/L/members"), "-X", "PUT", "--data-binary", "{}")
        self.assertEqual(put.status, 200, put)
        time.sleep(1.0)  # B's late write and the message have arrived
        for gw in (a, b, a):
            r = self.get(gw, "/prod/projects/L/members?page=1")
            self.assertNotEqual(r.json()["n"], old.json()["n"],
                                "the answer from before the write came back: %r" % (r,))


class ReplyDelayProxy(DelayProxy):
    """A proxy to Redis that holds Redis's answers on the connections whose
    accept order is in `slow` (a dict: index -> seconds), so one chosen
    connection of a node (its subscriber, say) hears late."""

    def __init__(self, target_port):
        self.slow, self.accepted = {}, 0
        super().__init__(target_port, 0)

    async def _handle(self, cr, cw):
        idx = self.accepted
        self.accepted += 1
        conn = await self._connect(cw)
        if not conn:
            return
        sr, sw = conn

        async def answers():
            try:
                while True:
                    data = await sr.read(65536)
                    if not data:
                        break
                    if self.slow.get(idx):
                        await asyncio.sleep(self.slow[idx])
                    cw.write(data)
                    await cw.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                cw.close()
        await asyncio.gather(self._pipe(cr, sw, 0), answers())


class RedisStateEdges(ClusterTest):
    def flush(self, gw):
        self.assertIn(self.admin(gw, "DELETE", "/v1/apis/shop/stages/prod/cache").status,
                      (200, 202))

    def test_generation_lost_from_redis_never_goes_back(self):
        a = self.node()
        self.flush(a)
        self.wait_metric(a, "gatecache_l2_invalidations_published_total", lambda v: v >= 1)
        old = self.get(a, "/prod/pets/1")
        self.assertStatus(old, "MISS")
        self.wait_in_redis(1)
        redis_command(self.redis.port, "DEL", "gc:g:shop/prod")  # evicted, or a restart
        self.flush(a)
        self.wait_metric(a, "gatecache_l2_invalidations_published_total", lambda v: v >= 2)
        r = self.get(a, "/prod/pets/1")
        self.assertNotEqual(r.json()["n"], old.json()["n"], "a flushed answer was served: %r" % (r,))
        self.assertGreaterEqual(int(redis_command(self.redis.port, "GET", "gc:g:shop/prod")), 2)

    def test_path_invalidation_from_a_node_behind_a_flush(self):
        # A hears B's flush late (its subscriber's answers are held 1.5 s);
        # meanwhile B stores under the new generation and A invalidates the
        # path: the delete must hit the generation Redis has, not A's.
        proxy = ReplyDelayProxy(self.redis.port)
        self.addCleanup(proxy.stop)
        a = self.gateway(self.config(redis_port=proxy.port))
        self.wait_metric(a, "gatecache_l2_stages_readable", lambda v: v >= 1, timeout=30)
        b = self.node()
        for i in range(proxy.accepted):
            proxy.slow[i] = 1.5 if i == 1 else 0  # tier.c opens its client, then its subscriber
        self.flush(b)
        self.wait_metric(b, "gatecache_l2_invalidations_published_total", lambda v: v >= 1)
        old = self.get(b, "/prod/pets/5")
        self.assertStatus(old, "MISS")
        self.wait_in_redis(1)
        r = self.admin(a, "POST", "/v1/apis/shop/stages/prod/invalidations",
                       json.dumps({"paths": ["/pets/5"]}))
        self.assertEqual(r.status, 201, r)
        self.wait_metric(b, "gatecache_l2_invalidations_received_total", lambda v: v >= 1)
        for gw in (b, a):
            r = self.get(gw, "/prod/pets/5")
            self.assertNotEqual(r.json()["n"], old.json()["n"],
                                "an invalidated answer was served: %r" % (r,))

    def test_malformed_entry_in_redis_is_not_served(self):
        a, b = self.two_nodes()
        self.get(a, "/prod/pets/6")
        self.wait_in_redis(1)
        key = redis_command(self.redis.port, "KEYS", "gc:e:*")[0]
        value = redis_command(self.redis.port, "GET", key)
        method_len = value[5]
        key_len, path_len = struct.unpack_from("<HH", value, 6)
        tags_size = struct.unpack_from("<I", value, 12)[0]
        cut = bytearray(value[:44 + key_len + method_len + path_len + tags_size])
        struct.pack_into("<H", cut, 10, 0)  # no head
        struct.pack_into("<I", cut, 16, 0)  # no body
        redis_command(self.redis.port, "SET", key, bytes(cut), "PX", "60000")
        r = self.get(b, "/prod/pets/6")
        self.assertEqual(r.status, 200, r)
        self.assertStatus(r, "MISS")  # refused, fetched from the origin
        self.assertEqual(r.json()["path"], "/pets/6")


class RedisTrouble(ClusterTest):
    def test_redis_killed_mid_run_both_nodes_keep_answering(self):
        a, b = self.two_nodes()
        self.get(a, "/prod/pets/1")
        self.wait_in_redis(1)
        self.assertStatus(self.get(b, "/prod/pets/1"), "HIT")
        self.redis.stop()
        t0 = time.monotonic()
        for i in range(20):
            for gw in (a, b):
                r = self.get(gw, "/prod/pets/k%d" % i)
                self.assertEqual(r.status, 200, r)
                self.assertStatus(r, "MISS")
            # what each node has in L1 still hits
            self.assertStatus(self.get(b, "/prod/pets/1"), "HIT")
        self.assertLess(time.monotonic() - t0, 30, "requests were slow without Redis")
        m = self.metrics(a)
        self.assertGreater(m['gatecache_l2_lookups_total{result="error"}']
                           + m['gatecache_l2_lookups_total{result="skipped"}'], 0)
        # Redis back on the same port: the nodes reconnect, drop their L1s
        # (invalidations may have been missed) and share again.
        self.redis.start()
        self.wait_metric(a, "gatecache_l2_resets_total", lambda v: v >= 1)
        self.wait_metric(b, "gatecache_l2_resets_total", lambda v: v >= 1)
        self.wait_metric(a, "gatecache_l2_stages_readable", lambda v: v >= 1)
        self.wait_metric(b, "gatecache_l2_stages_readable", lambda v: v >= 1)
        # each worker's own connection comes back within its reconnect backoff
        deadline = time.monotonic() + PROPAGATION_S
        for i in range(100000):
            self.assertStatus(self.get(a, "/prod/pets/after%d" % i), "MISS")
            if self.get(b, "/prod/pets/after%d" % i).headers.get("x-cache-status") == "HIT":
                break
            self.assertLess(time.monotonic(), deadline, "the nodes never shared again")
            time.sleep(0.05)

    def test_flush_while_redis_is_down_reaches_b_when_it_is_back(self):
        a, b = self.two_nodes()
        n = self.get(a, "/prod/pets/1").json()["n"]
        self.wait_in_redis(1)
        self.assertStatus(self.get(b, "/prod/pets/1"), "HIT")
        self.redis.stop()
        self.assertIn(self.admin(a, "DELETE", "/v1/apis/shop/stages/prod/cache").status,
                      (200, 202))
        self.assertStatus(self.get(a, "/prod/pets/1"), "MISS")  # A's own L1 dropped at once
        self.redis.start()
        # B drops its L1 on the reconnect; the flush reaches Redis from A's retry
        self.assertNotEqual(self.wait_fresh(b, "/prod/pets/1", n).json()["n"], n)
        self.wait_metric(a, "gatecache_l2_invalidations_published_total", lambda v: v >= 1)

    def test_stalled_redis_costs_at_most_the_command_timeout(self):
        a, b = self.two_nodes()
        self.redis.pause()
        try:
            for i in range(5):
                for gw in (a, b):
                    t0 = time.monotonic()
                    r = self.get(gw, "/prod/pets/s%d" % i)
                    took = time.monotonic() - t0
                    self.assertEqual(r.status, 200, r)
                    self.assertStatus(r, "MISS")
                    # command_timeout_ms is 200: the lookup gives up, then the origin
                    self.assertLess(took, 2.0, "a request waited %.2f s on a stalled Redis" % took)
            m = self.metrics(a)
            self.assertGreater(m['gatecache_l2_lookups_total{result="error"}']
                               + m['gatecache_l2_lookups_total{result="skipped"}'], 0)
        finally:
            self.redis.resume()
        # answers keep coming, and the nodes share again once Redis answers
        deadline = time.monotonic() + PROPAGATION_S
        for i in range(100000):
            self.assertStatus(self.get(a, "/prod/pets/back%d" % i), "MISS")
            if self.get(b, "/prod/pets/back%d" % i).headers.get("x-cache-status") == "HIT":
                break
            self.assertLess(time.monotonic(), deadline, "the nodes never shared again")
            time.sleep(0.05)

    def test_starts_without_redis(self):
        self.redis.stop()
        gw = self.gateway(self.config())
        r = self.get(gw, "/prod/pets/1")
        self.assertEqual(r.status, 200, r)
        self.assertStatus(r, "MISS")
        self.assertStatus(self.get(gw, "/prod/pets/1"), "HIT")


if __name__ == "__main__":
    harness.main()
