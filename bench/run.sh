#!/usr/bin/env bash
# `make bench`: the store micro-benchmark (flush of 1,000,000 entries, lookups,
# bookkeeping per entry), then gatecache beside nginx, Varnish and HAProxy with
# ../shared/bench/peers.sh. Writes the results to docs/performance.md.
#   BENCH_REPEAT (default 1), BENCH_DURATION (default 10), BENCH_ONLY (default all)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$top/build/gatecache}
out=$top/docs/performance.md
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cc -std=gnu11 -O2 -g -D_GNU_SOURCE -I"$top/src" "$top/src/util/util.c" "$top"/src/cache/*.c \
    "$top/bench/store/bench_store.c" -lxxhash -lpthread -o "$tmp/bench_store"
echo "== store benchmark" >&2
"$tmp/bench_store" | tee "$tmp/store.txt" >&2

echo "== hit ratio against LRU" >&2
"$top/bench/hitratio/run.sh" >"$tmp/hitratio.md"
echo "== instructions per hit (callgrind)" >&2
"$top/bench/callgrind-hit.sh" "$bin" >"$tmp/callgrind.txt"

peers=$top/../shared/bench/peers.sh
if [ ! -x "$peers" ]; then
    echo "bench: $peers not found; the peers comparison did not run" >&2
    echo "no peers harness" >"$tmp/peers.md"
else
echo "== peers (this takes minutes)" >&2
GATECACHE_BIN=$bin "$peers" --candidate "$top/bench/candidate.sh" \
    --repeat "${BENCH_REPEAT:-1}" --duration "${BENCH_DURATION:-10}" \
    ${BENCH_ONLY:+--only "$BENCH_ONLY"} >"$tmp/peers.md"
fi
{
    echo "# gatecache — performance"
    echo
    echo "Written by \`make bench\` on $(date -u +%Y-%m-%d) ($(uname -m), $(nproc) CPUs)."
    echo "Reproduce: \`make bench\` (BENCH_REPEAT=3 for medians of three rounds)."
    echo
    echo "## Store (bench/store/bench_store.c)"
    echo
    echo '```'
    cat "$tmp/store.txt"
    echo '```'
    echo
    echo "## Instructions per hit (bench/callgrind-hit.sh)"
    echo
    cat "$tmp/callgrind.txt"
    echo
    echo "## Hit ratio against LRU (bench/hitratio, details in docs/hitratio.md)"
    echo
    cat "$tmp/hitratio.md"
    echo
    echo "## Against nginx, Varnish and HAProxy (../shared/bench/peers.sh)"
    echo
    cat "$tmp/peers.md"
} >"$out"
echo "bench: wrote $out" >&2
