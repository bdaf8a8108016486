#!/usr/bin/env bash
# Runs every tests/e2e/[0-9][0-9]_*.py in name order, each bounded by
# `timeout 300`; prints PASS/FAIL per file and exits non-zero if any failed.
#   GATECACHE_BIN        the binary (default build/gatecache)
#   GATECACHE_SANITIZED  1 = ASan/UBSan/TSan build: sanitizer reports fail the test
#   E2E_VERBOSE          1 = show every file's output, not only failures'
set -u
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
export GATECACHE_BIN="${GATECACHE_BIN:-$repo/build/gatecache}"
case "$GATECACHE_BIN" in /*) ;; *) GATECACHE_BIN="$repo/$GATECACHE_BIN" ;; esac
export GATECACHE_SANITIZED="${GATECACHE_SANITIZED:-0}"
if [ "$GATECACHE_SANITIZED" = 1 ]; then
    # Report, don't abort, so that the harness sees the report in stderr.
    export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
    export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
fi
export PYTHONDONTWRITEBYTECODE=1

if [ ! -x "$GATECACHE_BIN" ]; then
    echo "e2e: no executable at $GATECACHE_BIN" >&2
    exit 1
fi

failed=()
n=0
logdir="$(mktemp -d "${TMPDIR:-/tmp}/gatecache-e2e-logs.XXXXXX")"
for t in "$here"/[0-9][0-9]_*.py; do
    [ -e "$t" ] || continue
    name="$(basename "$t")"
    n=$((n + 1))
    start=$(date +%s)
    timeout -k 10 300 python3 "$t" >"$logdir/$name.log" 2>&1
    rc=$?
    secs=$(( $(date +%s) - start ))
    if [ $rc -eq 0 ]; then
        echo "PASS $name (${secs}s)"
        [ "${E2E_VERBOSE:-0}" = 1 ] && cat "$logdir/$name.log"
    else
        [ $rc -eq 124 ] && echo "  (timed out after 300 s)"
        echo "FAIL $name (${secs}s, exit $rc)"
        sed 's/^/    /' "$logdir/$name.log"
        failed+=("$name")
    fi
done

if [ $n -eq 0 ]; then
    echo "e2e: no test files found in $here" >&2
    exit 1
fi
if [ ${#failed[@]} -gt 0 ]; then
    echo "e2e: ${#failed[@]} of $n files failed: ${failed[*]} (logs in $logdir)"
    exit 1
fi
echo "e2e: all $n files passed"
rm -rf "$logdir"
exit 0
