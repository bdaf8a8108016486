#!/usr/bin/env bash
# Runs the bounded load scripts (crosstalk, reload, slowloris, churn) one after the
# other with their default durations, prints each one's Markdown figures and
# PASS/FAIL, and exits non-zero if any failed.
#   GATECACHE_BIN   the binary (default build/gatecache)
#   LOAD_SECONDS    longer runs (each script's default otherwise: 20, 20, 10, 20;
#                   churn also stops once 16 x its cache capacity went through)
# Each script is also bounded from outside: `timeout` 120 s + 4 x LOAD_SECONDS.
set -u
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
export GATECACHE_BIN="${GATECACHE_BIN:-$repo/build/gatecache}"
case "$GATECACHE_BIN" in /*) ;; *) GATECACHE_BIN="$repo/$GATECACHE_BIN" ;; esac
export PYTHONDONTWRITEBYTECODE=1
if [ ! -x "$GATECACHE_BIN" ]; then
    echo "load: no executable at $GATECACHE_BIN (build: cmake --build build -j2)" >&2
    exit 1
fi
secs="${LOAD_SECONDS:-20}"
bound=$(( 120 + 4 * ${secs%.*} ))

failed=()
names=(crosstalk reload slowloris churn)
for name in "${names[@]}"; do
    start=$(date +%s)
    timeout -k 10 "$bound" /usr/bin/python3 "$here/$name.py"
    rc=$?
    took=$(( $(date +%s) - start ))
    [ $rc -eq 124 ] && echo "  ($name.py timed out after $bound s)"
    if [ $rc -eq 0 ]; then
        echo "PASS $name.py (${took}s)"
    else
        echo "FAIL $name.py (${took}s, exit $rc)"
        failed+=("$name")
    fi
    echo
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "load: ${#failed[@]} of ${#names[@]} failed: ${failed[*]}"
    exit 1
fi
echo "load: all ${#names[@]} passed"
