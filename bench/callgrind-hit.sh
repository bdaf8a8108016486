#!/usr/bin/env bash
# Instructions per cache hit, measured with callgrind (counts instructions,
# not time: repeatable on a noisy machine). Runs gatecache (one worker) under
# valgrind twice, answering N1 and N2 keep-alive hits of one 1 KiB object, and
# reports (Ir(N2) - Ir(N1)) / (N2 - N1): start-up and shutdown cancel out.
#   bench/callgrind-hit.sh [path/to/gatecache]      (N1=2000, N2=12000)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$top/build/gatecache}
n1=${N1:-2000} n2=${N2:-12000}
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    if [ -n "${CALLGRIND_KEEP:-}" ]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
origin_port=$(free_port)
python3 "$top/tests/e2e/origin.py" --port "$origin_port" >"$tmp/origin.log" 2>&1 &
pids+=($!)

measure() { # N -> prints total Ir of the gateway process
    local n=$1 port
    port=$(free_port)
    cat >"$tmp/gw.yaml" <<YAML
server:
  listen: "127.0.0.1:$port"
  workers: 1
  base_path_mappings: [{base_path: "", api: bench, stage: live}]
apis:
  - id: bench
    resources:
      /{proxy+}:
        GET:
          integration: { type: HTTP_PROXY, uri: "http://127.0.0.1:$origin_port/{proxy}" }
          cache_key_parameters: ["method.request.querystring.*"]
    stages:
      live: { cache_cluster_enabled: true }
YAML
    valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.$n" "$bin" serve -c "$tmp/gw.yaml" \
        >"$tmp/gw.$n.log" 2>&1 &
    local gw=$!
    python3 - "$port" "$n" <<'PY'
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
deadline = time.time() + 60
while True:
    try:
        s = socket.create_connection(("127.0.0.1", port)); break
    except OSError:
        if time.time() > deadline: raise
        time.sleep(0.2)
req = b"GET /large?bytes=1024&id=1 HTTP/1.1\r\nHost: bench\r\n\r\n"
hits = 0
for i in range(n + 1):                     # the first one is the miss that fills
    s.sendall(req)
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, _, body = buf.partition(b"\r\n\r\n")
    length = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0].split(b":")[1])
    while len(body) < length:
        body += s.recv(65536)
    hits += b"X-Cache-Status: HIT" in head
assert hits == n, (hits, n)
PY
    kill -TERM "$gw"
    wait "$gw" || true
    grep -E '^(summary|totals):' "$tmp/cg.$n" | head -1 | awk '{print $2}'
}

i1=$(measure "$n1")
i2=$(measure "$n2")
per=$(( (i2 - i1) / (n2 - n1) ))
echo "instructions per 1 KiB hit (callgrind, one worker): $per  (Ir $i1 at $n1 hits, $i2 at $n2)"
