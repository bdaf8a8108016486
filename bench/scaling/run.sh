#!/usr/bin/env bash
# Hit throughput with workers: 1 and workers: 2, on a machine too small to run
# the client elsewhere. Prints a Markdown section: the method, a table, and
# what the figures can and cannot show.
#
#   bench/scaling/run.sh [path/to/gatecache]
#   SCALING_DURATION=8 (seconds per measured run, 1..60)  SCALING_CONNS=64  SCALING_ROUNDS=1 (1..5)
#
# Every run: gatecache started through bench/candidate.sh (GATECACHE_WORKERS
# = 1 or 2) in front of a static origin (python3 -m http.server serving a
# 1 KiB JSON file), one object put in the cache with two GETs, one second of
# unmeasured load, then wrk -t1 -c64 on GET /item?id=1 for the measured run.
# Two placements (taskset), each run with workers 1 and workers 2:
#   P1  server on CPU 0,     wrk on CPU 1   (peers.sh's layout; a second worker
#                                            can only share the first's core)
#   P2  server on CPUs 0-1,  wrk unpinned   (the server may use both cores, but
#                                            wrk competes with it for them)
# Measured per run: req/s from wrk; server CPU from
# /proc/PID/stat (user+system, all threads) giving CPU µs per request; the CPU
# of each gatecache thread from /proc/PID/task/*/stat (so one can see whether
# both workers serve: there are no per-worker figures in /metrics) and their
# run-queue wait from /proc/PID/task/*/schedstat (ready, but no core); wrk's own
# CPU (bash `time`); noise = CPU used on the machine by processes this script
# did not start; origin fetches during the measured run (0 = every answer was
# a hit). All on 127.0.0.1; only the processes started here are stopped.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
bin=${1:-$top/build/gatecache}
duration=${SCALING_DURATION:-8}
conns=${SCALING_CONNS:-64}
rounds=${SCALING_ROUNDS:-1}
[[ $duration =~ ^[0-9]+$ ]] && ((duration >= 1 && duration <= 60)) || { echo "SCALING_DURATION must be 1..60" >&2; exit 2; }
[[ $conns =~ ^[0-9]+$ ]] && ((conns >= 2 && conns <= 1000)) || { echo "SCALING_CONNS must be 2..1000" >&2; exit 2; }
[[ $rounds =~ ^[0-9]+$ ]] && ((rounds >= 1 && rounds <= 5)) || { echo "SCALING_ROUNDS must be 1..5" >&2; exit 2; }
ncpu=$(nproc)
hz=$(getconf CLK_TCK)

for t in wrk curl taskset setsid python3; do
    command -v "$t" >/dev/null || { echo "bench/scaling: $t is not installed; not measured"; exit 0; }
done
[ -x "$bin" ] || { echo "bench/scaling: $bin not found; not measured"; exit 0; }
if ((ncpu < 2)); then echo "bench/scaling: needs 2 CPUs, this machine has $ncpu; not measured"; exit 0; fi

tmp=$(mktemp -d)
origin_pid="" srv_pg="" wrk_pid=""
# stop_group PGID: SIGTERM the process group we created; SIGKILL after 5 s.
stop_group() {
    local pg=$1 i
    kill -TERM -- "-$pg" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        kill -0 -- "-$pg" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL -- "-$pg" 2>/dev/null || true
}
cleanup() {
    [ -z "$wrk_pid" ] || kill -TERM "$wrk_pid" 2>/dev/null || true
    [ -z "$srv_pg" ] || stop_group "$srv_pg"
    [ -z "$origin_pid" ] || stop_group "$origin_pid"
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

# ---- static origin: 1 KiB JSON at /item (the query string is ignored)
mkdir -p "$tmp/docroot"
head='{"pad":"' tail='"}'
printf '%s%*s%s' "$head" $((1024 - ${#head} - ${#tail})) '' "$tail" | tr ' ' x >"$tmp/docroot/item"
origin_port=$(free_port)
setsid python3 -m http.server --bind 127.0.0.1 --directory "$tmp/docroot" "$origin_port" \
    >"$tmp/origin.log" 2>&1 </dev/null &
origin_pid=$!
wait_port "$origin_port" "$origin_pid" 10 || { echo "bench/scaling: the origin did not start"; exit 1; }
origin_gets() { grep -c '"GET /item' "$tmp/origin.log" || true; }

proc_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# thread_ticks PID -> "TID TICKS RUNQUEUE_WAIT_NS" for each thread
thread_ticks() {
    local t w
    for t in /proc/"$1"/task/*; do
        w=$(awk '{ print $2 }' "$t/schedstat" 2>/dev/null || echo 0)
        awk -v tid="${t##*/}" -v w="${w:-0}" '{ sub(/^.*\) /, ""); print tid, $12 + $13, w }' "$t/stat" 2>/dev/null || true
    done
}
busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }

# run ROUND PLACEMENT WORKERS -> appends a line to $tmp/results.tsv
run() {
    local round=$1 place=$2 workers=$3 srv_cpus wrk_pin port gw i
    case $place in
    P1) srv_cpus=0; wrk_pin=(taskset -c 1) ;;
    P2) srv_cpus=0-1; wrk_pin=() ;;
    esac
    port=$(free_port)
    mkdir -p "$tmp/cand"
    rm -rf "${tmp:?}/cand/"*
    CAND_PORT=$port ORIGIN_PORT=$origin_port ORIGIN_URL="http://127.0.0.1:$origin_port" \
        CAND_DIR="$tmp/cand" GATECACHE_WORKERS=$workers GATECACHE_BIN=$bin \
        setsid taskset -c "$srv_cpus" "$top/bench/candidate.sh" >"$tmp/gw.log" 2>&1 </dev/null &
    srv_pg=$!
    if ! wait_port "$port" "$srv_pg" 30; then
        echo "bench/scaling: gatecache (workers $workers) did not open its port:" >&2
        tail -n 5 "$tmp/gw.log" >&2
        stop_group "$srv_pg"; srv_pg=""
        return 1
    fi
    gw=$(ps -e -o pid=,pgid=,comm= | awk -v g="$srv_pg" '$2 == g && $3 == "gatecache" { print $1; exit }')
    [ -n "$gw" ] || gw=$srv_pg
    curl -s -o /dev/null --max-time 5 "http://127.0.0.1:$port/item?id=1"
    curl -s -o /dev/null --max-time 5 "http://127.0.0.1:$port/item?id=1"
    # settle: one second of the same load, unmeasured
    "${wrk_pin[@]}" wrk -t1 -c"$conns" -d1s "http://127.0.0.1:$port/item?id=1" >/dev/null 2>&1 || true

    local o0 p0 b0 o1 p1 b1 wrk_cpu
    o0=$(origin_gets); p0=$(proc_ticks "$gw"); b0=$(busy_ticks)
    thread_ticks "$gw" >"$tmp/th0"
    local t0 t1
    t0=$(date +%s.%N)
    TIMEFORMAT='%3U %3S'
    { time "${wrk_pin[@]}" wrk -t1 -c"$conns" -d"${duration}s" --timeout 5s \
        "http://127.0.0.1:$port/item?id=1" >"$tmp/wrk.out" 2>&1; } 2>"$tmp/wrk.time" || true
    t1=$(date +%s.%N)
    o1=$(origin_gets); p1=$(proc_ticks "$gw"); b1=$(busy_ticks)
    thread_ticks "$gw" >"$tmp/th1"
    stop_group "$srv_pg"; srv_pg=""

    wrk_cpu=$(awk '{ print $1 + $2 }' "$tmp/wrk.time" 2>/dev/null | tail -n 1)
    local reqs rps errs threads el wait
    el=$(echo "$t1 - $t0" | bc -l)
    reqs=$(awk '/requests in/ { print $1 }' "$tmp/wrk.out")
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$tmp/wrk.out")
    errs=$(awk '/Socket errors:/ { gsub(/[^0-9 ]/, " "); s = 0; for (i = 1; i <= NF; i++) s += $i; print s }
                /Non-2xx/ { print $NF }' "$tmp/wrk.out" | awk '{ s += $1 } END { print s + 0 }')
    # per-thread CPU share during the measured run, highest first, as "95/93/0"
    threads=$(awk -v el="$el" -v hz="$hz" '
        NR == FNR { a[$1] = $2; next }
        { d = $2 - a[$1]; printf "%d\n", 100 * d / hz / el + 0.5 }' "$tmp/th0" "$tmp/th1" |
        sort -rn | head -n 4 | paste -sd/)
    # time the server's threads were runnable but had no CPU, % of one CPU
    wait=$(awk -v el="$el" 'NR == FNR { a[$1] = $3; next } ($1 in a) { s += $3 - a[$1] }
        END { printf "%.0f", 100 * s / 1e9 / el }' "$tmp/th0" "$tmp/th1")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$place" "$workers" \
        "${reqs:-0}" "${rps:-0}" "$((p1 - p0))" "$((b1 - b0))" "${wrk_cpu:-0}" \
        "$el" "$((o1 - o0))" "$errs" "$threads" "$wait" >>"$tmp/results.tsv"
}

command -v bc >/dev/null || { echo "bench/scaling: bc is not installed; not measured"; exit 0; }
: >"$tmp/results.tsv"
order=("P1 1" "P1 2" "P2 1" "P2 2")
for ((r = 1; r <= rounds; r++)); do
    # later rounds run the placements in reverse, so drift does not favour one
    if ((r % 2 == 0)); then seq_=(3 2 1 0); else seq_=(0 1 2 3); fi
    for k in "${seq_[@]}"; do
        read -r place w <<<"${order[k]}"
        echo "== scaling: round $r, $place, workers $w, ${duration}s" >&2
        run "$r" "$place" "$w" || true
    done
done

# ---- report (median over rounds of each placement x workers)
python3 - "$tmp/results.tsv" "$hz" "$duration" "$conns" "$rounds" "$ncpu" <<'PY'
import statistics, sys
path, hz, duration, conns, rounds, ncpu = sys.argv[1], int(sys.argv[2]), *map(int, sys.argv[3:])
rows = {}
for line in open(path):
    f = line.rstrip("\n").split("\t")
    rnd, place, w, reqs, rps, sticks, busy, wrkcpu, el, fetch, errs, threads, wait = f
    el = float(el)
    reqs = int(reqs)
    srv_s = int(sticks) / hz
    rows.setdefault((place, int(w)), []).append(dict(
        rps=float(rps), us=1e6 * srv_s / reqs if reqs else float("nan"),
        srv=100 * srv_s / el, wrk=100 * float(wrkcpu) / el,
        noise=max(0.0, 100 * (int(busy) / hz - srv_s - float(wrkcpu)) / el),
        fetch=int(fetch), errs=int(errs), threads=threads, wait=float(wait)))
med = lambda k, v: statistics.median(x[k] for x in v)
where = {"P1": "server CPU 0, wrk CPU 1", "P2": "server CPUs 0-1, wrk unpinned"}
print(f"wrk -t1 -c{conns}, {duration} s per run, GET /item?id=1 (1 KiB, one hot entry); "
      f"{rounds} round(s), medians; {ncpu} CPUs. CPU shares are % of one CPU.")
print()
print("| placement | workers | req/s | server CPU µs/req | server CPU | busiest threads (% CPU) | server waiting for a CPU | wrk CPU | noise | origin fetches | errors |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
res = {}
for place in ("P1", "P2"):
    for w in (1, 2):
        v = rows.get((place, w))
        if not v:
            print(f"| {where[place]} | {w} | not measured | | | | | | | | |")
            continue
        res[(place, w)] = (med("rps", v), med("us", v), med("noise", v))
        print(f"| {where[place]} | {w} | {med('rps', v):,.0f} | {med('us', v):.2f} | {med('srv', v):.0f}% "
              f"| {' ; '.join(x['threads'] for x in v)} | {med('wait', v):.0f}% | {med('wrk', v):.0f}% | {med('noise', v):.0f}% "
              f"| {sum(x['fetch'] for x in v)} | {sum(x['errs'] for x in v)} |")
print()
for place in ("P1", "P2"):
    if (place, 1) in res and (place, 2) in res:
        (r1, u1, n1), (r2, u2, n2) = res[(place, 1)], res[(place, 2)]
        warn = (f" Not reliable: other jobs used up to {max(n1, n2):.0f}% of a CPU during these runs."
                if max(n1, n2) > 10 else "")
        print(f"- {where[place]}: workers 2 / workers 1 = {r2 / r1:.2f} in req/s, "
              f"{u2 / u1:.2f} in server CPU per request.{warn}")
v = rows.get(("P2", 2))
if v:
    srv, wait = med("srv", v), med("wait", v)
    both = all(len(x["threads"].split("/")) >= 2 and int(x["threads"].split("/")[1]) >= 10 for x in v)
    print(f"- Two workers on two cores: the two busiest threads {'both' if both else 'did NOT both'} "
          f"served hits (>= 10% CPU each); together they used {srv:.0f}% of one CPU"
          + (" (> 100%: they ran in parallel)" if srv > 100 else
             " (not above 100%: this run does not show them running in parallel)")
          + f", and were ready to run but waiting for a CPU {wait:.0f}% of the time (CPU taken by wrk and others).")
PY
cat <<'EOF'

How to read it. The issue asks for hit throughput with workers: 2 against
workers: 1 "when the client runs elsewhere"; this machine has two CPUs and no
other, so the client cannot. The two placements bound the answer instead:

- *server CPU 0, wrk CPU 1* gives each worker count one core. workers 2 cannot
  go faster here; this row shows what the second worker costs when it has no
  core of its own (a ratio near 1.00 in CPU per request = no lock contention or
  cross-thread overhead on the hit path).
- *server CPUs 0-1, wrk unpinned*: the server may use both cores, but wrk
  (close to one core at these rates) and the loopback TCP work take their share
  of them, so the req/s ratio is a lower bound for scaling with a client
  elsewhere. Two busy threads in "busiest threads" show both workers serving
  hits (the kernel spreads wrk's connections over the two SO_REUSEPORT
  sockets; /metrics has no per-worker counters, so per-thread CPU from
  /proc/PID/task/*/stat is the evidence); "server CPU" above 100% would show
  them running at once. "server waiting for a CPU" (run-queue wait from
  /proc/PID/task/*/schedstat) is the time the server's threads were ready but
  had no core: what a client on another machine would hand back.
- With the client elsewhere, hit throughput would be about (cores available to
  the server) ÷ (server CPU µs per request): if the CPU per request with two
  workers spread over two cores stays close to the one-worker figure, the
  throughput scales about linearly with workers up to the cores given. That
  is an extrapolation from this machine, not a measurement of the two-host setup.
- Limits: wrk, the kernel's loopback work for both ends, and other jobs on this
  shared machine (see "noise") all compete for the same two cores; "noise" is
  all busy CPU time not charged to the server or wrk, so it also holds interrupt
  time of the loopback traffic. A single run moves by 10-20%
  (../shared/bench/README.md); SCALING_ROUNDS=3 gives medians of three.
EOF
