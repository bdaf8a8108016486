#!/usr/bin/env bash
# Instructions per cache hit of gatecache, HAProxy's cache and nginx
# proxy_cache, measured the way bench/callgrind-hit.sh measures gatecache:
# each server runs under callgrind as ONE process with one event loop
# (gatecache: workers 1; HAProxy: nbthread 1, -db; nginx: master_process off,
# daemon off), twice, answering N1 and N2 keep-alive hits of one 1 KiB object
# from the same Python client on one connection; the figure is
# (Ir(N2) - Ir(N1)) / (N2 - N1), so start-up, the filling miss and shutdown
# cancel out.
#
# Setup shared by the three rows, taken from ../shared/bench/peers.sh: its
# config templates (conf/nginx-cache.conf.in, conf/haproxy.cfg.in) filled in
# here, its static nginx origin (conf/origin.nginx.conf.in, not under
# valgrind) and its hit request, GET /item?id=1 (1 KiB JSON). The static origin
# is needed because HAProxy 2.6 did not cache the e2e origin's /large answer
# that callgrind-hit.sh uses (tried: every request reached the origin; that
# answer has no Last-Modified, ETag, Cache-Control or Expires), so the
# gatecache row here can differ slightly from callgrind-hit.sh's figure (other
# response headers are stored and replayed). A run counts only if the
# origin saw exactly one request for the object (the filling miss).
#
#   bench/callgrind-peers.sh [path/to/gatecache]     (N1=2000, N2=12000)
#   CALLGRIND_SERVERS=gatecache,haproxy,nginx (default)  CALLGRIND_KEEP=1 keeps the temp dir
#
# Prints a Markdown table, one row per server; a server that could not be
# measured gets a row saying why. Callgrind counts user-space instructions
# only: system calls cost kernel time this figure does not show (nginx opens,
# reads and closes its cache file on every hit; see peers.sh's syscalls/req).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$top/build/gatecache}
conf=${PEERS_CONF_DIR:-$top/../shared/bench/conf}
n1=${N1:-2000} n2=${N2:-12000}
servers=${CALLGRIND_SERVERS:-gatecache,haproxy,nginx}
tmp=$(mktemp -d)
origin_pid=""
cleanup() {
    local p
    # Servers are started inside $(measure ...) subshells and recorded in
    # srv.pids; kill one only if that PID is still ours (its command line names $tmp).
    if [ -r "$tmp/srv.pids" ]; then
        while read -r p; do
            if [ -r "/proc/$p/cmdline" ] && tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF "$tmp/"; then
                kill -KILL "$p" 2>/dev/null || true
            fi
        done <"$tmp/srv.pids"
    fi
    [ -z "$origin_pid" ] || stop "$origin_pid"
    if [ -n "${CALLGRIND_KEEP:-}" ]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# stop PID: SIGTERM, wait up to 30 s (callgrind writes its file on exit), then SIGKILL.
stop() {
    local p=$1 i
    kill -TERM "$p" 2>/dev/null || return 0
    for ((i = 0; i < 300; i++)); do
        kill -0 "$p" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
}

echo "| server | instructions per 1 KiB hit | Ir at $n1 hits | Ir at $n2 hits | run as |"
echo "|---|---|---|---|---|"
row_na() { echo "| $1 | not measured: $2 | | | |"; }

if ! command -v valgrind >/dev/null; then
    for s in ${servers//,/ }; do row_na "$s" "valgrind is not installed"; done
    exit 0
fi
if ! command -v nginx >/dev/null || [ ! -r "$conf/origin.nginx.conf.in" ]; then
    for s in ${servers//,/ }; do row_na "$s" "no static origin (nginx or $conf/origin.nginx.conf.in missing)"; done
    exit 0
fi

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
nginx_user=""
[ "$(id -u)" -ne 0 ] || nginx_user="user root root;"
json_of_size() { # a JSON document of exactly $1 bytes, as peers.sh makes it
    local head='{"pad":"' tail='"}'
    printf '%s%*s%s' "$head" $(($1 - ${#head} - ${#tail})) '' "$tail" | tr ' ' x
}

# ---- the static origin (peers.sh's), not under valgrind, one worker
origin_port=$(free_port)
mkdir -p "$tmp/origin/tmp" "$tmp/docroot"
json_of_size 1024 >"$tmp/docroot/1k.json"
json_of_size 16384 >"$tmp/docroot/16k.json"
json_of_size 262144 >"$tmp/docroot/256k.json"
sed -e "s|@DIR@|$tmp/origin|g" -e "s|@PORT@|$origin_port|g" -e "s|@DOCROOT@|$tmp/docroot|g" \
    -e "s|@NGINX_USER@|$nginx_user|g" -e "s|@FLOOR_BODY@|$(json_of_size 1024)|g" \
    "$conf/origin.nginx.conf.in" >"$tmp/origin/nginx.conf"
nginx -p "$tmp/origin" -e stderr -c "$tmp/origin/nginx.conf" -g 'daemon off;' \
    >"$tmp/origin.log" 2>&1 </dev/null &
origin_pid=$!
for _ in $(seq 100); do
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$origin_port/__origin_status" && break
    sleep 0.1
done
origin_requests() { # the origin's request counter (stub_status, line 3, field 3)
    curl -s --max-time 5 "http://127.0.0.1:$origin_port/__origin_status" | awk 'NR == 3 { print $3 }'
}

# config SERVER PORT: writes $tmp/SERVER/... and sets ARGV to the command to run
ARGV=()
config() {
    local name=$1 port=$2 dir="$tmp/$1"
    rm -rf "$dir"
    mkdir -p "$dir/tmp" "$dir/cache"
    case $name in
    gatecache)
        # callgrind-hit.sh's config, with this origin
        cat >"$dir/gw.yaml" <<YAML
server:
  listen: "127.0.0.1:$port"
  workers: 1
  base_path_mappings: [{base_path: "", api: bench, stage: live}]
apis:
  - id: bench
    resources:
      /{proxy+}:
        GET:
          integration: { type: HTTP_PROXY, uri: "http://127.0.0.1:$origin_port/{proxy}" }
          cache_key_parameters: ["method.request.querystring.*"]
    stages:
      live: { cache_cluster_enabled: true }
YAML
        ARGV=("$bin" serve -c "$dir/gw.yaml")
        ;;
    nginx)
        sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$port|g" -e "s|@ORIGIN_PORT@|$origin_port|g" \
            -e "s|@NGINX_USER@|$nginx_user|g" "$conf/nginx-cache.conf.in" >"$dir/nginx.conf"
        ARGV=(nginx -p "$dir" -e stderr -c "$dir/nginx.conf" -g 'daemon off; master_process off;')
        ;;
    haproxy)
        sed -e "s|@PORT@|$port|g" -e "s|@ORIGIN_PORT@|$origin_port|g" \
            -e "s|@HAPROXY_MAX_OBJECT@|1048576|g" "$conf/haproxy.cfg.in" >"$dir/haproxy.cfg"
        ARGV=(haproxy -db -f "$dir/haproxy.cfg")
        ;;
    esac
}

# measure SERVER N -> prints total Ir of the server process, or "ERR reason"
measure() {
    local name=$1 n=$2 port before after
    port=$(free_port)
    config "$name" "$port"
    before=$(origin_requests)
    valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.$name.$n" "${ARGV[@]}" \
        >"$tmp/$name.$n.log" 2>&1 </dev/null &
    local srv=$!
    echo "$srv" >>"$tmp/srv.pids"
    if ! timeout 300 python3 - "$port" "$n" "$srv" >"$tmp/client.$name.$n.log" 2>&1 <<'PY'
import os, socket, sys, time
port, n, pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
deadline = time.time() + 60
while True:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=30); break
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            sys.exit("server exited before opening its port")
        if time.time() > deadline:
            sys.exit("port not open after 60 s")
        time.sleep(0.2)
req = b"GET /item?id=1 HTTP/1.1\r\nHost: bench\r\n\r\n"
for i in range(n + 1):                     # the first one is the miss that fills
    s.sendall(req)
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d: sys.exit("connection closed after %d answers" % i)
        buf += d
    head, _, body = buf.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        sys.exit("answer %d: %r" % (i, head[:60]))
    length = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0].split(b":")[1])
    while len(body) < length:
        d = s.recv(65536)
        if not d: sys.exit("connection closed mid-body")
        body += d
    if len(body) != length:
        sys.exit("answer %d: %d body bytes for Content-Length %d" % (i, len(body), length))
PY
    then
        stop "$srv"
        echo "ERR $(tail -n 1 "$tmp/client.$name.$n.log"); server log: $(grep -v '^==' "$tmp/$name.$n.log" | tail -n 2 | tr '\n|' '  ')"
        return
    fi
    after=$(origin_requests)
    stop "$srv"
    # The first counter read is itself one origin request.
    if [ -z "$before" ] || [ -z "$after" ] || ((after - before - 1 != 1)); then
        echo "ERR the origin saw $((after - before - 1)) requests, not 1: not every answer after the first was a hit"
        return
    fi
    local ir
    ir=$(grep -E '^(summary|totals):' "$tmp/cg.$name.$n" 2>/dev/null | head -1 | awk '{print $2}')
    if [ -z "$ir" ]; then
        echo "ERR no callgrind totals (server killed?); log: $(tail -n 2 "$tmp/$name.$n.log" | tr '\n|' '  ')"
        return
    fi
    echo "$ir"
}

IFS=, read -r -a list <<<"$servers"
for name in "${list[@]}"; do
    case $name in
    gatecache) what="gatecache, workers 1"; exe=$bin ;;
    nginx) what="nginx $(nginx -v 2>&1 | sed 's|.*/||') proxy_cache, master_process off"; exe=nginx ;;
    haproxy) what="HAProxy $(haproxy -v 2>/dev/null | awk 'NR==1{print $3}') cache, nbthread 1"; exe=haproxy ;;
    *) row_na "$name" "unknown server (gatecache, haproxy, nginx)"; continue ;;
    esac
    if ! command -v "$exe" >/dev/null; then
        row_na "$name" "$exe not found"
        continue
    fi
    if [ "$name" != gatecache ] && [ ! -r "$conf/$([ "$name" = nginx ] && echo nginx-cache.conf.in || echo haproxy.cfg.in)" ]; then
        row_na "$name" "peers.sh config template not found under $conf"
        continue
    fi
    echo "== callgrind: $name, $n1 then $n2 hits" >&2
    i1=$(measure "$name" "$n1")
    i2=""
    [[ $i1 == ERR* ]] || i2=$(measure "$name" "$n2")
    if [[ $i1 == ERR* ]] || [[ $i2 == ERR* ]]; then
        err=$i1
        [[ $i1 == ERR* ]] || err=$i2
        row_na "$name" "under valgrind: ${err#ERR }"
        continue
    fi
    echo "| $name | $(((i2 - i1) / (n2 - n1))) | $i1 | $i2 | $what |"
done
