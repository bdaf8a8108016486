#!/usr/bin/env bash
# Miss ratios of LRU, SIEVE, S3-FIFO, W-TinyLFU and the real store on generated Zipf traces
# (model: bench/hitratio/hitratio.c, results: docs/hitratio.md). Builds into a temp dir and
# prints the Markdown table on stdout, the run time on stderr (about 10 s on one core).
# Called by bench/run.sh (make bench); runs alone from any directory.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cc -std=gnu11 -O2 -g -Wall -Wextra -D_GNU_SOURCE -I"$top/src" "$top/src/util/util.c" \
    "$top"/src/cache/*.c "$top/bench/hitratio/hitratio.c" -lxxhash -lpthread -lm \
    -o "$tmp/hitratio"
"$tmp/hitratio"
