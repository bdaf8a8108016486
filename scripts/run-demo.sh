#!/usr/bin/env bash
# `make run`: the demo origin on 127.0.0.1:8081 and gatecache on
# 127.0.0.1:8080 with examples/gatecache.yaml, in the foreground. Ctrl-C
# stops both. Try, in another terminal:
#   curl -si http://127.0.0.1:8080/prod/time    # X-Cache-Status: MISS
#   curl -si http://127.0.0.1:8080/prod/time    # X-Cache-Status: HIT, same body
set -euo pipefail
bin=${1:-build/gatecache}
top=$(cd "$(dirname "$0")/.." && pwd)
python3 "$top/scripts/demo-origin.py" --port 8081 &
origin=$!
trap 'kill "$origin" 2>/dev/null || true' EXIT
echo "gatecache: try  curl -si http://127.0.0.1:8080/prod/time  (twice: MISS, then HIT)"
"$bin" serve -c "$top/examples/gatecache.yaml"
