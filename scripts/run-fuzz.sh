#!/usr/bin/env bash
# Runs every libFuzzer target built in BUILD_DIR for SECONDS each, starting
# from (and adding to a scratch copy of) its checked-in corpus.
set -euo pipefail
build=${1:?build dir} secs=${2:-60}
top=$(cd "$(dirname "$0")/.." && pwd)
status=0
for bin in "$build"/fuzz_*; do
    name=$(basename "$bin"); name=${name#fuzz_}
    corpus="$top/fuzz/$name/corpus"
    scratch=$(mktemp -d)
    cp -r "$corpus"/. "$scratch"/ 2>/dev/null || true
    echo "== fuzz $name for ${secs}s"
    if ! "$bin" -max_total_time="$secs" -print_final_stats=1 "$scratch" 2>&1 | tail -n 12; then
        status=1
    fi
    rm -rf "$scratch"
done
exit $status
