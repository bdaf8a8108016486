#!/usr/bin/env bash
# `make bench`: the store micro-benchmark (flush of 1,000,000 entries, lookups,
# bookkeeping per entry), memory measured from RSS (1,000,000 entries, churn),
# instructions per hit for gatecache, HAProxy and nginx (callgrind), workers 1
# against workers 2, then gatecache beside nginx, Varnish and HAProxy with
# ../shared/bench/peers.sh. Writes the results to docs/performance.md.
#   BENCH_REPEAT (default 1), BENCH_DURATION (default 10), BENCH_ONLY (default all)
#   BENCH_SCALING=0 skips the workers 1 vs 2 section (about 45 s; SCALING_* in
#   bench/scaling/run.sh tune it)
#   BENCH_CLUSTER=0 skips the shared-tier (Redis) section (about 90 s; CLUSTER_* in
#   bench/cluster/run.sh tune it)
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

cc -std=gnu11 -O2 -g -D_GNU_SOURCE -I"$top/src" "$top/src/util/util.c" "$top"/src/cache/*.c \
    "$top/bench/rss/bench_rss.c" -lxxhash -lpthread -o "$tmp/bench_rss"
echo "== memory: RSS with 1,000,000 entries, churn" >&2
"$tmp/bench_rss" | tee "$tmp/rss.txt" >&2 ||
    echo "bench_rss failed (exit $?; 1 = the capacity was exceeded)" | tee -a "$tmp/rss.txt" >&2

echo "== hit ratio against LRU" >&2
"$top/bench/hitratio/run.sh" >"$tmp/hitratio.md"
echo "== instructions per hit (callgrind)" >&2
"$top/bench/callgrind-hit.sh" "$bin" >"$tmp/callgrind.txt"
echo "== instructions per hit: gatecache, HAProxy, nginx (callgrind)" >&2
"$top/bench/callgrind-peers.sh" "$bin" >"$tmp/callgrind-peers.md" ||
    echo "bench/callgrind-peers.sh failed (exit $?)" >>"$tmp/callgrind-peers.md"

if [ "${BENCH_SCALING:-1}" != 0 ]; then
    echo "== workers 1 vs 2 (about 45 s)" >&2
    "$top/bench/scaling/run.sh" "$bin" >"$tmp/scaling.md" ||
        echo "bench/scaling/run.sh failed (exit $?)" >>"$tmp/scaling.md"
else
    echo "not run (BENCH_SCALING=0)" >"$tmp/scaling.md"
fi

if [ "${BENCH_CLUSTER:-1}" != 0 ]; then
    echo "== shared tier: invalidation propagation, L2 hits (about 90 s)" >&2
    "$top/bench/cluster/run.sh" "$bin" >"$tmp/cluster.md" ||
        echo "bench/cluster/run.sh failed (exit $?)" >>"$tmp/cluster.md"
else
    echo "not run (BENCH_CLUSTER=0)" >"$tmp/cluster.md"
fi

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
    echo "## Memory with 1,000,000 entries, and under churn (bench/rss/bench_rss.c)"
    echo
    echo "Phase 1 reads RSS (/proc/self/statm) before and after 1,000,000 puts, so malloc's"
    echo "overhead counts; phase 2 churns 5,000,000 distinct entries through a 64 MiB store."
    echo
    echo '```'
    cat "$tmp/rss.txt"
    echo '```'
    echo
    echo "## Instructions per hit (bench/callgrind-hit.sh, bench/callgrind-peers.sh)"
    echo
    cat "$tmp/callgrind.txt"
    echo
    echo "The three servers side by side, each under callgrind as one process with one event"
    echo "loop, N2 - N1 keep-alive hits of one 1 KiB object on one connection, in front of"
    echo "peers.sh's static origin with peers.sh's own nginx and HAProxy configs (HAProxy did"
    echo "not cache the e2e origin's answer, which has no validators or lifetime; hence this"
    echo "gatecache row differs a little from the line above). User-space instructions only:"
    echo "the kernel's share (nginx opens and reads its cache file on every hit) is not counted."
    echo
    cat "$tmp/callgrind-peers.md"
    echo
    echo "## Workers 1 against workers 2 (bench/scaling/run.sh)"
    echo
    cat "$tmp/scaling.md"
    echo
    echo "## Shared tier: invalidation propagation and L2 hits (bench/cluster/run.sh)"
    echo
    cat "$tmp/cluster.md"
    echo
    echo "## Hit ratio against LRU (bench/hitratio, details in docs/hitratio.md)"
    echo
    cat "$tmp/hitratio.md"
    echo
    echo "## Against nginx, Varnish and HAProxy (../shared/bench/peers.sh)"
    echo
    cat "$tmp/peers.md"
    echo
    cat "$top/bench/profiles.md"
} >"$out"
echo "bench: wrote $out" >&2
