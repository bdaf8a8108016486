#!/usr/bin/env bash
# The shared second tier (server.cache_backend type redis) measured on one
# machine: how fast an invalidation made on one node reaches another, and what
# a hit answered from Redis costs against one answered from the node's own L1.
# Prints a Markdown section on stdout (progress on stderr).
#
#   bench/cluster/run.sh [path/to/gatecache]
#   CLUSTER_INVALIDATIONS=10000 (write-triggered invalidations measured, 1..1000000)
#   CLUSTER_ADMIN_INVALIDATIONS=1000 (admin API path invalidations, 1..1000000)
#   CLUSTER_WRK_SECONDS=5 (seconds per measured wrk run, 1..60)
#
# Started here, each on a free 127.0.0.1 port and stopped by PID at the end:
# redis-server (no persistence), the e2e origin (tests/e2e/origin.py) and three
# gatecache nodes sharing that Redis with one key_prefix, each `workers: 1`
# with an admin listener and a token file in a temporary directory:
#   A  L1 256 MiB  the node invalidations are made on, and the filler for (b)
#   B  L1 256 MiB  the node propagation is observed on; (a) L1-only hits
#   C  L1 64 KiB   (the minimum) (b) hits answered from Redis
# Route /items/{id}: GET cached 300 s; PUT with invalidates: ["GET /items/{id}"].
#
# 1. Propagation A -> B (bench/cluster/cluster.py propagate), per id i:
#    GET /prod/items/i on A (MISS), GET on B (should be a HIT from Redis), the
#    invalidation on A (PUT /prod/items/i, or the admin API's POST
#    .../invalidations {"paths": ["/items/i"]}); t0 = its answer arrived; then
#    GET on B over one keep-alive connection until B answers MISS (or another
#    origin counter n); t1 = that answer arrived. At most 2 s per id.
# 2. Hit throughput, wrk -t1 -c64 with bench/cluster/random.lua (uniform ids
#    1..10000): (a) on B after B fetched the 10,000 ids itself; (b) on C after
#    A fetched them (so they are in Redis, and C's L1 holds only a few). The
#    stage is flushed (admin API on A, seen by B and C) before each fill. The
#    node under test and redis-server are pinned to CPU 0, wrk to CPU 1 (as
#    bench/scaling's first placement) when there are 2 CPUs or more.
#    CPU from /proc/PID/stat (utime + stime) before and after the measured run.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
here=$top/bench/cluster
bin=${1:-$top/build/gatecache}
n_inv=${CLUSTER_INVALIDATIONS:-10000}
n_adm=${CLUSTER_ADMIN_INVALIDATIONS:-1000}
secs=${CLUSTER_WRK_SECONDS:-5}
conns=64
ids=10000
bound=2
api=cluster
[[ $n_inv =~ ^[0-9]+$ ]] && ((n_inv >= 1 && n_inv <= 1000000)) || { echo "CLUSTER_INVALIDATIONS must be 1..1000000" >&2; exit 2; }
[[ $n_adm =~ ^[0-9]+$ ]] && ((n_adm >= 1 && n_adm <= 1000000)) || { echo "CLUSTER_ADMIN_INVALIDATIONS must be 1..1000000" >&2; exit 2; }
[[ $secs =~ ^[0-9]+$ ]] && ((secs >= 1 && secs <= 60)) || { echo "CLUSTER_WRK_SECONDS must be 1..60" >&2; exit 2; }

for t in wrk taskset python3 redis-server; do
    command -v "$t" >/dev/null || { echo "bench/cluster: $t is not installed; not measured"; exit 0; }
done
[ -x "$bin" ] || { echo "bench/cluster: $bin not found; not measured"; exit 0; }
ncpu=$(nproc)
hz=$(getconf CLK_TCK)

log() { echo "== cluster: $*" >&2; }

tmp=$(mktemp -d)
pids=()
# stop_pid PID: SIGTERM to that process (a child of this shell), SIGKILL after 5 s.
stop_pid() {
    local p=$1 i st
    kill -TERM "$p" 2>/dev/null || { wait "$p" 2>/dev/null || true; return 0; }
    for ((i = 0; i < 50; i++)); do
        st=$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$p/stat" 2>/dev/null || echo gone)
        [ "$st" = gone ] || [ "$st" = Z ] && break
        sleep 0.1
    done
    [ "$st" = gone ] || [ "$st" = Z ] || kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
}
cleanup() {
    local i
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        stop_pid "${pids[i]}"
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# distinct free ports (the kernel may hand out a port twice in a row)
declare -A used_ports=()
new_port() {
    local p i
    for ((i = 0; i < 100; i++)); do
        p=$(free_port)
        if [ -z "${used_ports[$p]:-}" ]; then
            used_ports[$p]=1
            echo "$p"
            return 0
        fi
    done
    return 1
}
proc_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
# CPU ticks of every process started here (a process gone counts 0)
our_ticks() {
    local p s=0
    for p in "${pids[@]}"; do s=$((s + $(proc_ticks "$p"))); done
    echo "$s"
}
helper() { python3 "$here/cluster.py" "$@"; }
# timed_helper NAME ARGS...: the helper, its own CPU seconds into $tmp/NAME.cpu
timed_helper() {
    local name=$1 rc=0
    shift
    TIMEFORMAT='%3U %3S'
    { time helper "$@" 2>&3; } 3>&2 2>"$tmp/$name.time" || rc=$?
    awk '{ print $1 + $2 }' "$tmp/$name.time" | tail -n 1 >"$tmp/$name.cpu"
    return "$rc"
}
# noise NAME B0 O0 T0: % of one CPU used by processes not started here since
# (busy B0, ours O0, time T0), the helper NAME's CPU taken off; into $tmp/noise-NAME
noise() {
    local b1 o1 t1
    b1=$(busy_ticks); o1=$(our_ticks); t1=$(date +%s.%N)
    python3 -c 'import sys; b0, o0, b1, o1, hz, c, t0, t1 = map(float, sys.argv[1:]); print("%.0f" % max(0.0, 100 * ((b1 - b0 - o1 + o0) / hz - c) / (t1 - t0)))' \
        "$2" "$3" "$b1" "$o1" "$hz" "$(cat "$tmp/$1.cpu" 2>/dev/null || echo 0)" "$4" "$t1" >"$tmp/noise-$1"
}

# ---- redis-server
redis_port=$(new_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    --protected-mode yes --loglevel warning >"$tmp/redis.log" 2>&1 </dev/null &
redis_pid=$!
pids+=("$redis_pid")
wait_port "$redis_port" "$redis_pid" 10 || { echo "bench/cluster: redis-server did not start"; tail -n 5 "$tmp/redis.log" >&2; exit 1; }

# ---- origin
python3 "$top/tests/e2e/origin.py" --port 0 >"$tmp/origin.out" 2>"$tmp/origin.err" </dev/null &
origin_pid=$!
pids+=("$origin_pid")
origin_port=""
for ((i = 0; i < 100; i++)); do
    origin_port=$(awk '$1 == "PORT" { print $2; exit }' "$tmp/origin.out" 2>/dev/null || true)
    [ -n "$origin_port" ] && break
    kill -0 "$origin_pid" 2>/dev/null || break
    sleep 0.1
done
[ -n "$origin_port" ] || { echo "bench/cluster: the origin did not start"; exit 1; }

# ---- gatecache nodes
python3 -c 'import secrets; print(secrets.token_hex(24))' >"$tmp/token"
chmod 600 "$tmp/token"
declare -A port admin pid
start_node() { # NAME L1SIZE
    local name=$1 size=$2
    port[$name]=$(new_port)
    admin[$name]=$(new_port)
    cat >"$tmp/$name.yaml" <<YAML
server:
  listen: "127.0.0.1:${port[$name]}"
  workers: 1
  admin_listen: "127.0.0.1:${admin[$name]}"
  admin_token_file: "$tmp/token"
  limits: { invalidations_per_second: 100000, invalidation_burst: 100000 }
  cache_backend:
    type: redis
    url: "redis://127.0.0.1:$redis_port/0"
    command_timeout_ms: 200
    connect_timeout_ms: 500
    reconnect_min_ms: 50
    reconnect_max_ms: 200
    key_prefix: "bench:"
apis:
  - id: $api
    resources:
      /items/{id}:
        GET:
          integration: { type: HTTP_PROXY, uri: "http://127.0.0.1:$origin_port/items/{id}" }
        PUT:
          integration: { type: HTTP_PROXY, uri: "http://127.0.0.1:$origin_port/items/{id}" }
          invalidates: ["GET /items/{id}"]
    stages:
      prod:
        cache_cluster_enabled: true
        cache_cluster_size: "$size"
        method_settings:
          - { resource_path: "/*", http_method: "*", cache_ttl_in_seconds: 300 }
YAML
    "$bin" serve -c "$tmp/$name.yaml" >"$tmp/$name.log" 2>&1 </dev/null &
    pid[$name]=$!
    pids+=("${pid[$name]}")
    if ! wait_port "${port[$name]}" "${pid[$name]}" 15 || ! wait_port "${admin[$name]}" "${pid[$name]}" 15 ||
        ! helper ready --port "${port[$name]}" --admin-port "${admin[$name]}" --token-file "$tmp/token"; then
        echo "bench/cluster: node $name did not start:" >&2
        tail -n 20 "$tmp/$name.log" >&2
        echo "bench/cluster: node $name (gatecache) did not start; not measured"
        exit 1
    fi
}
log "redis :$redis_port, origin :$origin_port; starting nodes A, B, C"
start_node A 256MiB
start_node B 256MiB
start_node C 64KiB
alive() {
    kill -0 "${pid[$1]}" 2>/dev/null && [ "$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/${pid[$1]}/stat")" != Z ] && return 0
    echo "bench/cluster: node $1 exited:" >&2
    tail -n 20 "$tmp/$1.log" >&2
    echo "bench/cluster: gatecache node $1 exited during the run (see its log above on stderr); not measured"
    return 1
}

# ---- 1. propagation
propagate() { # KIND COUNT FIRST
    local b0 o0 t0
    b0=$(busy_ticks); o0=$(our_ticks); t0=$(date +%s.%N)
    timed_helper "prop-$1" propagate --kind "$1" --a "${port[A]}" --b "${port[B]}" --admin-a "${admin[A]}" \
        --admin-b "${admin[B]}" --redis-port "$redis_port" --token-file "$tmp/token" --api "$api" --count "$2" --first "$3" --bound "$bound" \
        --out "$tmp/prop-$1.json" || log "propagate ($1) failed"
    noise "prop-$1" "$b0" "$o0" "$t0"
    alive A && alive B
}
log "propagation of $n_inv write-triggered invalidations (PUT on A, polled on B)"
propagate put "$n_inv" 1
log "propagation of $n_adm admin API path invalidations (on A, polled on B)"
propagate admin "$n_adm" 1000001

# ---- 2. hit throughput
if ((ncpu >= 2)); then
    srv_pin() { taskset -a -p -c 0 "$1" >/dev/null; }
    wrk_pin=(taskset -c 1)
    placement="The node under test and redis-server pinned to CPU 0 (taskset), wrk to CPU 1; the origin and idle nodes unpinned."
else
    srv_pin() { :; }
    wrk_pin=()
    placement="Not pinned (1 CPU): server, Redis and wrk share it."
fi
srv_pin "$redis_pid"

metric() { # FILE NAME
    awk -v n="$2" '$1 == n { print $2; found = 1 } END { if (!found) print 0 }' "$1"
}
wrk_run() { # PORT SECONDS [extra wrk args]
    local p=$1 d=$2
    shift 2
    "${wrk_pin[@]}" wrk -t1 -c"$conns" -d"${d}s" --timeout 5s "$@" -s "$here/random.lua" \
        "http://127.0.0.1:$p" -- "$ids"
}
# measure CASE NODE FILLFILE: one unmeasured second, then the measured run
measure() {
    local case=$1 node=$2 fill=$3 p=${port[$2]} gp=${pid[$2]}
    srv_pin "$gp"
    wrk_run "$p" 1 >/dev/null 2>&1 || true
    local o0 g0 r0 b0 a0 o1 g1 r1 b1 a1 t0 t1
    o0=$(helper count --origin "$origin_port")
    helper metrics --admin-port "${admin[$node]}" --token-file "$tmp/token" >"$tmp/m0"
    g0=$(proc_ticks "$gp"); r0=$(proc_ticks "$redis_pid"); b0=$(busy_ticks); a0=$(our_ticks)
    t0=$(date +%s.%N)
    TIMEFORMAT='%3U %3S'
    { time wrk_run "$p" "$secs" --latency >"$tmp/wrk-$case.out" 2>&1; } 2>"$tmp/wrk-$case.time" || true
    t1=$(date +%s.%N)
    g1=$(proc_ticks "$gp"); r1=$(proc_ticks "$redis_pid"); b1=$(busy_ticks); a1=$(our_ticks)
    helper metrics --admin-port "${admin[$node]}" --token-file "$tmp/token" >"$tmp/m1"
    o1=$(helper count --origin "$origin_port")
    local reqs rps p50 p99 errs wrk_cpu el
    reqs=$(awk '/requests in/ { print $1 }' "$tmp/wrk-$case.out")
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$tmp/wrk-$case.out")
    p50=$(awk '$1 == "50%" { print $2 }' "$tmp/wrk-$case.out")
    p99=$(awk '$1 == "99%" { print $2 }' "$tmp/wrk-$case.out")
    errs=$(awk '/Socket errors:/ { gsub(/[^0-9 ]/, " "); s = 0; for (i = 1; i <= NF; i++) s += $i; print s }
                /Non-2xx/ { print $NF }' "$tmp/wrk-$case.out" | awk '{ s += $1 } END { print s + 0 }')
    wrk_cpu=$(awk '{ print $1 + $2 }' "$tmp/wrk-$case.time" 2>/dev/null | tail -n 1)
    el=$(python3 -c "print($t1 - $t0)")
    d() { echo $(($(metric "$tmp/m1" "$1") - $(metric "$tmp/m0" "$1"))); }
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$case" \
        "${reqs:-0}" "${rps:-0}" "${p50:-?}" "${p99:-?}" "$((g1 - g0))" "$((r1 - r0))" \
        "${wrk_cpu:-0}" "$el" "$((o1 - o0))" \
        "$(d 'gatecache_l2_lookups_total{result="hit"}')" "$(d 'gatecache_l2_lookups_total{result="miss"}')" \
        "$(d 'gatecache_l2_lookups_total{result="error"}')" "$(d 'gatecache_l2_lookups_total{result="skipped"}')" \
        "$errs" "$fill" "$((b1 - b0 - (a1 - a0)))" >>"$tmp/wrk.tsv"
    log "$case: ${rps:-?} req/s"
}
fill_desc() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(", ".join("%s %s" % (v, k.replace("200 ", "")) for k, v in sorted(d.items())))' "$1"; }

: >"$tmp/wrk.tsv"
log "(a) flush, B fills $ids ids, wrk on B (${secs}s)"
if helper flush --api "$api" --admin-a "${admin[A]}" --wait-admin "${admin[B]},${admin[C]}" --token-file "$tmp/token" &&
    helper fill --port "${port[B]}" --ids "$ids" --out "$tmp/fill-l1.json"; then
    measure l1 B "by B: $(fill_desc "$tmp/fill-l1.json")"
else
    log "(a) not measured"
fi
alive B
log "(b) flush, A fills $ids ids into Redis, wrk on C (${secs}s)"
if helper flush --api "$api" --admin-a "${admin[A]}" --wait-admin "${admin[B]},${admin[C]}" --token-file "$tmp/token" &&
    helper fill --port "${port[A]}" --ids "$ids" --out "$tmp/fill-l2.json"; then
    measure l2 C "by A: $(fill_desc "$tmp/fill-l2.json")"
else
    log "(b) not measured"
fi
alive C

# ---- report
binshow=$bin
case $bin in "$top"/*) binshow=${bin#"$top"/} ;; esac
{
    echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "nproc=$ncpu"
    echo "kernel=$(uname -r) $(uname -m)"
    echo "redis=$(redis-server --version | head -n 1)"
    echo "bin=$binshow"
    echo "command=CLUSTER_INVALIDATIONS=$n_inv CLUSTER_ADMIN_INVALIDATIONS=$n_adm CLUSTER_WRK_SECONDS=$secs bench/cluster/run.sh $binshow"
    echo "bound=$bound"
    echo "conns=$conns"
    echo "wrk_seconds=$secs"
    echo "ids=$ids"
    echo "hz=$hz"
    echo "placement=$placement"
} >"$tmp/env"
helper report --dir "$tmp"
cat <<'EOF'

How to read it. *t1 - t0* is what a client sees: from the moment node A
answered the write (or the admin call) to the first answer from node B that is
no longer the old copy. It holds A's work after its answer (the job that
deletes the path's index set in Redis, then PUBLISH), Redis delivering the
message to B's subscriber, B dropping its L1 copy, and, in the last step, B's
own miss: a lookup in Redis and a fetch from the origin before B can answer
MISS. *Detecting poll sent - t0* leaves out that last request (the origin fetch
of the MISS): B already had the message when it read that request, and had not
when it served the poll before it, so the change reached B within one poll
(*one poll*, a keep-alive HIT on B from this Python client) before that
instant. *Never seen* counts ids B still served from its old copy 2 s after the
invalidation: it must be 0. Its bullet shows, per such id, B's and A's answers
after the bound and what Redis holds for the path: a lost message, or a copy
written to Redis after the invalidation had cleaned it (then every node serves
it until its TTL). *B not a HIT before* counts ids that B
did not answer from Redis right after A had fetched them (A stores to Redis
asynchronously, after its answer; a non-zero count is a fill B could not share).
In the throughput table, (a) is every request an L1 hit on one node; (b) is
almost every request an L1 miss on C answered by a GET to Redis (*L2 hits /
req* near 1, *to origin / req* near 0; C's 64 KiB L1 keeps a few entries, hence
not exactly 1). The server-side cost of a shared-tier hit is gatecache CPU +
Redis CPU per request, against gatecache CPU per request for an L1 hit: these
CPU figures, not req/s, are the comparison that carries over to other machines.
req/s is bounded by CPU 0 (the node and Redis together) or by wrk on CPU 1,
whichever saturates first, or by neither (then by the round trips of 64
connections): the bullets under the table say which. Loopback only: a
Redis on another host adds a network round trip to every L2 hit and to every
invalidation. *noise* is the CPU (% of one CPU, from /proc/stat) used on the
machine during the measurement by processes this script did not start, plus
interrupt time of the loopback traffic: above ~10% the run is not reliable.
A single run moves by 10-20% on this shared machine.
EOF
