#!/usr/bin/env bash
# `make run-cluster`: two gatecache nodes sharing one Redis, in the
# foreground. Starts redis-server on 127.0.0.1:6390 (no persistence), the demo
# origin on 127.0.0.1:8081, node A on 127.0.0.1:8080 and node B on
# 127.0.0.1:8082 (examples/cluster/). Ctrl-C stops all four. Try:
#   curl -si http://127.0.0.1:8080/prod/items/1    # node A: MISS (about 100 ms)
#   curl -si http://127.0.0.1:8082/prod/items/1    # node B: HIT, the same body
#   curl -si -X PUT http://127.0.0.1:8082/prod/items/1   # a write on B ...
#   curl -si http://127.0.0.1:8080/prod/items/1    # ... A: MISS, a new answer
set -euo pipefail
bin=${1:-build/gatecache}
top=$(cd "$(dirname "$0")/.." && pwd)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM
command -v redis-server >/dev/null || { echo "redis-server not found: scripts/install-deps.sh" >&2; exit 1; }
redis-server --port 6390 --bind 127.0.0.1 --save '' --appendonly no --loglevel warning &
pids+=($!)
python3 "$top/scripts/demo-origin.py" --port 8081 &
pids+=($!)
"$bin" serve -c "$top/examples/cluster/node-a.yaml" &
pids+=($!)
"$bin" serve -c "$top/examples/cluster/node-b.yaml" &
pids+=($!)
echo "gatecache cluster: node A http://127.0.0.1:8080, node B http://127.0.0.1:8082 (Ctrl-C stops)"
echo "  try: curl -si http://127.0.0.1:8080/prod/items/1; curl -si http://127.0.0.1:8082/prod/items/1"
wait -n "${pids[@]}"
