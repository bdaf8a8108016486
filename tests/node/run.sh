#!/usr/bin/env bash
# Runs the AWS SDK for JavaScript v3 end-to-end tests (tests/node/*.test.mjs)
# with node's built-in test runner. Installs the pinned packages with `npm ci`
# (from package-lock.json, preferring npm's cache) when node_modules is missing or
# was installed from another lockfile. Works from any directory; exits non-zero
# on any failure.
#   GATECACHE_BIN   the binary (default build/gatecache; relative = from the repo root)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
export GATECACHE_BIN="${GATECACHE_BIN:-$repo/build/gatecache}"
case "$GATECACHE_BIN" in /*) ;; *) GATECACHE_BIN="$repo/$GATECACHE_BIN" ;; esac

for tool in node npm python3; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "tests/node: $tool is required (Debian: apt-get install nodejs npm python3)" >&2
        exit 1
    fi
done
if [ ! -x "$GATECACHE_BIN" ]; then
    echo "tests/node: no executable at $GATECACHE_BIN" >&2
    exit 1
fi

# node_modules/.lock.sha256 records the lockfile that the last `npm ci`
# installed: missing or different means install again.
stamp="$here/node_modules/.lock.sha256"
want="$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "tests/node: npm ci" >&2
    (cd "$here" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error)
    echo "$want" >"$stamp"
fi

cd "$repo"
exec node --test --test-reporter=spec "$here"/*.test.mjs
