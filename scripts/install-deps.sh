#!/usr/bin/env bash
# Installs the Debian 12 packages gatecache needs to build, run and test.
# Idempotent: packages already present are skipped, apt-get runs only when
# something is missing. Run as root (or with sudo available).
set -euo pipefail

packages=(
    build-essential cmake pkg-config
    libuv1-dev libcurl4-openssl-dev libssl-dev libyaml-dev libjansson-dev
    libxxhash-dev libhiredis-dev libcmocka-dev
    clang libclang-rt-14-dev
    curl python3 valgrind
    redis-server
    awscli
)

# Node.js runs the AWS SDK tests (tests/node). The machines we run on ship a
# newer Node.js than Debian's; install Debian's only when there is none.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
    sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
