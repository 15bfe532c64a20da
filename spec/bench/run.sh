#!/usr/bin/env bash
# spec/bench/run.sh - the benchmark: every case, RUNS times each on a fresh
# server, median and min..max; with BASELINE=<git rev> the same cases on that
# revision too, interleaved run by run, and the ratio of the medians.
#
#   spec/bench/run.sh                              # every case, 5 runs each
#   CASES="ask64 rtt" RUNS=3 spec/bench/run.sh     # a quick look
#   BASELINE=main~3 spec/bench/run.sh              # this tree against a commit
#   WORKERS=1,2 CASES="ask64 bc1000" spec/bench/run.sh   # --workers 1 against --workers 2
#
# Cases (CASES, space-separated; default: all of them):
#   ask64 ask4k ask64k   ask echo, 50 connections x 8 in flight, body 64 B / 4 KB / 64 KB;
#                        with the latency's shape (p10, p90, the fastest and slowest
#                        connection's mean; a generator without them shows n/a)
#   rtt                  ask echo, 1 connection x 1 in flight, 64 B (the round trip); each run
#                        also against the floor, `neffos-bench floor` (a plain C echo over the
#                        same sockets: what the kernel's loopback and the generator cost), and
#                        the server's p50 and p99 are reported as ratios to the floor's; ask64 too
#                        (its p99 is mostly the generator's and the kernel's queueing)
#   rtt-bp               rtt with the server's --busy-poll-us $BUSY_POLL_US (and the floor's): the
#                        loop polls that long after input before it sleeps, so the next ask finds
#                        it awake (a BASELINE without the flag runs as it is: the pair's ratio is
#                        the flag's gain over that revision)
#   bc10 bc100 bc1000 bc10000  broadcast to N receivers, window 64 messages
#   idle                 10,000 idle connections in a namespace: server RSS per connection
#   zask-off zask-on     permessage-deflate: 20 neffos.js clients (node, `ws`) ask with 2 KB JSON at
#                        1,000 asks/s, without and with compression: server CPU and wire bytes per ask
#   zbc-off zbc-on       the same for a broadcast of 2 KB JSON to 50 receivers, 50 broadcasts/s
#                        (spec/bench/deflate.mjs; a fixed rate, as the clients are the bottleneck)
#   reload               hot reload latency with 1,000 clients (node; one run of 10 rounds)
#
# Environment:
#   RUNS=5  BENCH_SECONDS=5  PORT=18090  IDLE_CONNS=10000  BUSY_POLL_US=200
#   BUILD (build-release)      where this tree is built (Release)
#   BASELINE=<rev>             also build <rev> (in $BUILD/baseline-src, a git worktree) and compare
#   SKIP_BUILD=1               use the binaries already built
#   WORKERS=1                  --workers of the server, a comma-separated list: each value is a
#                              column of its own (side@N), and with two the ratio is the second's
#                              over the first's (docs/bench.md, "Workers")
# Output: a Markdown table on stdout and in $BUILD/bench.md; every run's JSON
# line in $BUILD/bench-logs/<case>-<side>-<run>.json. Servers are killed on
# exit, whatever happens. The figures are for comparison on one machine in
# one run: the machine is shared and noisy, so a ratio beats an absolute.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build-release}
PORT=${PORT:-18090}
SECS=${BENCH_SECONDS:-5}
RUNS=${RUNS:-5}
IDLE_CONNS=${IDLE_CONNS:-10000}
BUSY_POLL_US=${BUSY_POLL_US:-200}
BUSY_POLL=0   # set by run_case: the --busy-poll-us of the case's server (0: not passed)
ALL_CASES="ask64 ask4k ask64k rtt rtt-bp bc10 bc100 bc1000 bc10000 idle zask-off zask-on zbc-off zbc-on reload"
# The cases also run against the floor, `neffos-bench floor`, run by run: what the generator and the
# kernel alone give under the same load (the p50 and p99 no server can beat on this machine).
FLOOR_CASES="rtt rtt-bp ask64"
CASES=${CASES:-$ALL_CASES}
APP=spec/bench/app.lua
LOGDIR=$BUILD/bench-logs
OUT=$BUILD/bench.md

build_tree() {   # build_tree SRC_DIR BUILD_DIR
    cmake -S "$1" -B "$2" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$2" --target neffos neffos-bench -j"$(nproc)" >/dev/null
}

SIDES="cur"
declare -A NEFFOS BENCH SRC
SRC[cur]=$ROOT
NEFFOS[cur]=${NEFFOS_BIN:-$ROOT/$BUILD/neffos}
BENCH[cur]=${BENCH_BIN:-$ROOT/$BUILD/neffos-bench}
BENCH[floor]=${BENCH[cur]}   # the floor's runs use this tree's generator
if [ "${SKIP_BUILD:-0}" != 1 ]; then build_tree "$ROOT" "$BUILD"; fi
if [ -n "${BASELINE:-}" ]; then
    BASE_SRC=$ROOT/$BUILD/baseline-src
    BASE_REV=$(git rev-parse --verify "$BASELINE^{commit}")
    if [ ! -d "$BASE_SRC" ]; then git worktree add -q --detach "$BASE_SRC" "$BASE_REV"; fi
    git -C "$BASE_SRC" checkout -q --detach "$BASE_REV"
    [ "${SKIP_BUILD:-0}" = 1 ] || build_tree "$BASE_SRC" "$BASE_SRC/build-release"
    SIDES="cur base"
    SRC[base]=$BASE_SRC
    NEFFOS[base]=$BASE_SRC/build-release/neffos
    BENCH[base]=$BASE_SRC/build-release/neffos-bench
fi
# The columns: each side at each --workers value ("cur@2"); a lone 1 keeps the plain names.
WORKERS=${WORKERS:-1}
if [ "$WORKERS" = 1 ]; then
    COLUMNS=$SIDES
else
    COLUMNS=
    for side in $SIDES; do
        for w in ${WORKERS//,/ }; do COLUMNS="$COLUMNS $side@$w"; done
    done
    COLUMNS=${COLUMNS# }
fi
mkdir -p "$LOGDIR"
rm -f "$LOGDIR"/*.json

# Both sides need a descriptor per connection (plus the server's own).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

SERVER_PID=
stop_server() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=
}
trap stop_server EXIT
trap 'exit 130' INT TERM

# start_server SIDE LOG: a fresh server of that side on the next free port
# (a port another program holds makes the server exit: take the next one);
# sets SERVER_PID and URL.
start_server() {
    stop_server
    local side=${1%@*} workers=1
    [ "$1" != "$side" ] && workers=${1#*@}
    for _attempt in 1 2 3 4 5 6 7 8; do
        PORT=$((PORT + 1))
        URL="ws://127.0.0.1:$PORT/echo"
        if [ "$side" = floor ]; then
            local fflag=()
            [ "$BUSY_POLL" != 0 ] && fflag=(--busy-poll-us "$BUSY_POLL")
            "${BENCH[cur]}" floor --url "$URL" "${fflag[@]}" >"$2" 2>&1 &
        else
            # --workers only when it is not the default: a BASELINE from before the
            # flag existed refuses it (and 1 is what every revision runs anyway).
            local wflag=()
            [ "$workers" != 1 ] && wflag=(--workers "$workers")
            # --busy-poll-us where the revision has it (a BASELINE from before runs without)
            if [ "$BUSY_POLL" != 0 ] && "${NEFFOS[$side]}" --help 2>&1 | grep -q -- --busy-poll-us; then
                wflag+=(--busy-poll-us "$BUSY_POLL")
            fi
            "${NEFFOS[$side]}" "$APP" --listen "127.0.0.1:$PORT" --log-level warn --no-watch "${wflag[@]}" >"$2" 2>&1 &
        fi
        SERVER_PID=$!
        for _ in $(seq 100); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            # Something answers: ours, unless it exits (it could not bind).
            if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
                sleep 0.2
                kill -0 "$SERVER_PID" 2>/dev/null && return 0
                break
            fi
            sleep 0.05
        done
        stop_server
    done
    echo "server did not start; see $2" >&2
    cat "$2" >&2
    return 1
}

rss_kb() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# The neffos-bench arguments of a case (URL set by start_server).
case_args() {
    local ask="ask --url $URL --namespace v1 --event echo --seconds $SECS"
    local bc="broadcast --url $URL --namespace v1 --event shout --recv-event chat --window 64 --seconds $SECS"
    case $1 in
        ask64) echo "$ask --conns 50 --inflight 8 --size 64" ;;
        ask4k) echo "$ask --conns 50 --inflight 8 --size 4096" ;;
        ask64k) echo "$ask --conns 50 --inflight 8 --size 65536" ;;
        rtt|rtt-bp) echo "$ask --conns 1 --inflight 1 --size 64" ;;
        bc10) echo "$bc --receivers 10" ;;
        bc100) echo "$bc --receivers 100" ;;
        bc1000) echo "$bc --receivers 1000" ;;
        bc10000) echo "$bc --receivers 10000" ;;
        idle) echo "idle --url $URL --namespace v1 --conns $IDLE_CONNS --seconds 3" ;;
        *) echo "unknown case $1" >&2; return 1 ;;
    esac
}

# run_case CASE SIDE RUN: one measured run on a fresh server; its JSON line,
# extended with the server's RSS before, at peak and after the clients left.
run_case() {
    local name=$1 side=$2 run=$3 tag="$1-$2-$3"
    BUSY_POLL=0
    [ "$name" = rtt-bp ] && BUSY_POLL=$BUSY_POLL_US
    start_server "$side" "$LOGDIR/server-$tag.log"
    local rss0 args st0
    rss0=$(rss_kb "$SERVER_PID" VmRSS)
    st0=$(cpu_ticks)
    case $name in
    z*)   # permessage-deflate: neffos.js under node (spec/bench/deflate.mjs)
        local zmode=ask zc=${name##*-} zrate=1000
        case $name in zbc*) zmode=broadcast; zrate=50 ;; esac
        args="--url $URL --mode $zmode --compression $zc --rate $zrate --seconds $SECS"
        echo "== $tag: node spec/bench/deflate.mjs $args" >&2
        # shellcheck disable=SC2086
        NODE_PATH="$ROOT/node_modules" node "$ROOT/spec/bench/deflate.mjs" $args --server-pid "$SERVER_PID" \
            >"$LOGDIR/$tag.txt" 2>&1 || true ;;
    *)
        args=$(case_args "$name")
        echo "== $tag: neffos-bench $args" >&2
        # shellcheck disable=SC2086
        "${BENCH[${side%@*}]}" $args --server-pid "$SERVER_PID" >"$LOGDIR/$tag.txt" 2>&1 || true ;;
    esac
    local st1; st1=$(cpu_ticks)
    # The clients are gone: the server closes them and, at the first quiet
    # sweep after (250 ms apart), gives free memory back.
    sleep 2
    local rss1 peak
    rss1=$(rss_kb "$SERVER_PID" VmRSS)
    peak=$(rss_kb "$SERVER_PID" VmHWM)
    local steal; steal=$(steal_pct "$st0" "$st1")
    tail -n 1 "$LOGDIR/$tag.txt" | jq -c --argjson a "${rss0:-0}" --argjson b "${rss1:-0}" --argjson p "${peak:-0}" \
        --argjson s "${steal:-0}" '. + {rss_start_kb: $a, rss_end_kb: $b, rss_peak_kb: $p, steal_pct: $s}' \
        >"$LOGDIR/$tag.json" 2>/dev/null ||
        echo '{}' >"$LOGDIR/$tag.json"
    stop_server
}

run_reload() {   # run_reload SIDE
    local side=${1%@*} tag="reload-$1-1" workers=1
    [ "$1" != "$side" ] && workers=${1#*@}
    echo "== $tag: node spec/bench/reload_latency.mjs --conns 1000 --rounds 10" >&2
    rm -f "$ROOT/$BUILD/reload_ms"
    (cd "${SRC[$side]}" && BUILD="$ROOT/$BUILD" NEFFOS_BIN="${NEFFOS[$side]}" NEFFOS_WORKERS="$workers" \
        NODE_PATH="$ROOT/node_modules" node "$ROOT/spec/bench/reload_latency.mjs" --conns 1000 --rounds 10) \
        >"$LOGDIR/$tag.txt" 2>&1 || true
    local ms
    ms=$(grep -Eo '[0-9]+(\.[0-9]+)?' "$ROOT/$BUILD/reload_ms" 2>/dev/null | head -n 1 || true)
    echo "{\"reload_ms\": ${ms:-null}}" >"$LOGDIR/$tag.json"
}

# ---- measure: run by run, the sides alternate (and swap who goes first) ------
# The machine's load before the first run: with the one at the end, the table says
# how busy the shared machine was while it was measured.
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
# cpu_ticks: "steal total" of /proc/stat's cpu line: the time the hypervisor ran someone else on
# our vCPUs, and all the time there was. A run with much steal measured the neighbours too.
cpu_ticks() { awk '/^cpu / { t = 0; for (i = 2; i <= 9; i++) t += $i; print $9, t }' /proc/stat; }
# steal_pct "BEFORE" "AFTER" (two cpu_ticks): the steal's share of the time between, in %
steal_pct() { echo "$1 $2" | awk '{ d = $4 - $2; printf "%.1f\n", (d > 0 ? 100 * ($3 - $1) / d : 0) }'; }
STEAL_START=$(cpu_ticks)
for name in $CASES; do
    if [ "$name" = reload ]; then
        command -v node >/dev/null && [ -d node_modules/neffos.js ] || { echo "reload: needs node" >&2; continue; }
        for side in $COLUMNS; do run_reload "$side"; done
        continue
    fi
    for run in $(seq "$RUNS"); do
        order=$COLUMNS
        # every other run in reverse: neither column always goes first
        [ $((run % 2)) -eq 0 ] && order=$(echo "$COLUMNS" | tr ' ' '\n' | tac | tr '\n' ' ')
        for side in $order; do run_case "$name" "$side" "$run"; done
        case " $FLOOR_CASES " in *" $name "*) run_case "$name" floor "$run" ;; esac
    done
done

# ---- report ------------------------------------------------------------------
# stats CASE SIDE FIELD: "median min max" over the runs (empty when none).
stats() {
    cat "$LOGDIR/$1-$2-"*.json 2>/dev/null | jq -r ".$3 // empty" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR == 0) exit; m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
                                  printf "%s %s %s\n", m, v[1], v[NR] }'
}
fmt() {   # fmt VALUE: thousands separators for big numbers, 3 significant digits for small
    awk -v v="$1" 'BEGIN { if (v == "") { print "n/a"; exit }
        if (v == int(v) && v < 1000) { printf "%d\n", v; exit }
        if (v >= 1000) { s = sprintf("%.0f", v); o = ""; while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) } print s o }
        else if (v >= 100) printf "%.0f\n", v; else if (v >= 10) printf "%.1f\n", v; else printf "%.2f\n", v }'
}
cell() {   # cell CASE SIDE FIELD
    local s; s=$(stats "$1" "$2" "$3")
    [ -z "$s" ] && { echo "n/a"; return; }
    set -- $s
    echo "$(fmt "$1") [$(fmt "$2")..$(fmt "$3")]"
}
ratio() {  # ratio CASE FIELD A B: median(A) / median(B)
    local a b; a=$(stats "$1" "$3" "$2" | cut -d' ' -f1); b=$(stats "$1" "$4" "$2" | cut -d' ' -f1)
    [ -z "$a" ] || [ -z "$b" ] && { echo "n/a"; return; }
    awk -v a="$a" -v b="$b" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2fx\n", a / b }'
}

# The figures of each case, one "FIELD|label" a line.
fields_of() {
    case $1 in
        ask*) printf '%s\n' "replies_per_s|replies/s" "replies_per_server_cpu_s|replies per server CPU-s" \
                  "p10_us|p10 µs" "p50_us|p50 µs" "p90_us|p90 µs" "p99_us|p99 µs" \
                  "conn_mean_us_min|fastest connection's mean µs" "conn_mean_us_max|slowest connection's mean µs" \
                  "errors|errors" "rss_peak_kb|server peak RSS, KB" ;;
        rtt*) printf '%s\n' "p50_us|p50 µs" "p99_us|p99 µs" "replies_per_server_cpu_s|replies per server CPU-s" ;;
        bc*) printf '%s\n' "deliveries_per_s|deliveries/s" "deliveries_per_server_cpu_s|deliveries per server CPU-s" \
                 "lost|lost" "order_violations|out of order" "rss_start_kb|server RSS before, KB" \
                 "rss_peak_kb|server peak RSS, KB" "rss_end_kb|server RSS after the clients left, KB" ;;
        idle) printf '%s\n' "bytes_per_conn|server bytes per idle connection" "held|connections held" ;;
        zask*) printf '%s\n' "server_cpu_us_per_msg|server CPU per ask, µs" "wire_bytes_per_msg|bytes on the wire per ask (both ways)" ;;
        zbc*) printf '%s\n' "server_cpu_us_per_delivery|server CPU per delivery, µs" "wire_bytes_per_delivery|bytes on the wire per delivery" ;;
        reload) printf '%s\n' "reload_ms|file write to first new reply, ms (median of 10 rounds)" ;;
    esac
}

CPU_MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
{
    echo "Date $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- host bindings scripts spec/bench || echo ' (with local changes)')${BASELINE:+, baseline $BASELINE = $(git rev-parse --short "$BASE_REV")}."
    steal=$(steal_pct "$STEAL_START" "$(cpu_ticks)")
    echo "Machine: $(nproc) CPUs, $CPU_MODEL; $(uname -sr); server and load generator on the same machine, load average $LOAD_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end; the hypervisor took $steal% of the vCPUs' time (steal; each run's own share is \`steal_pct\` in its JSON line)."
    # WORKERS is always set (1 by default): name it only when it was not the default.
    wenv=; [ "$WORKERS" != 1 ] && wenv="WORKERS=$WORKERS "
    echo "Command: \`${BASELINE:+BASELINE=$BASELINE }${wenv}RUNS=$RUNS BENCH_SECONDS=$SECS CASES=\"$CASES\" spec/bench/run.sh\`; each figure is the median [min..max] of $RUNS runs, each on a fresh server."
    echo
    set -- $COLUMNS
    ncols=$#
    first=$1
    last=${!#}
    # Two columns: the ratio of the first over the second (this tree / baseline), or
    # with WORKERS the second over the first (--workers N / --workers 1).
    num=$first den=$last
    [ "$WORKERS" != 1 ] && { num=$last; den=$first; }
    header="| case | figure |"
    rule="|---|---|"
    for c in $COLUMNS; do
        label=$c
        [ "$c" = cur ] && label="this tree"
        [ "$c" = base ] && label="baseline"
        header="$header $label |"
        rule="$rule---|"
    done
    [ "$ncols" = 2 ] && { header="$header ratio |"; rule="$rule---|"; }
    echo "$header"
    echo "$rule"
    for name in $CASES; do
        while IFS='|' read -r field label; do
            row="| $name | $label |"
            for c in $COLUMNS; do row="$row $(cell "$name" "$c" "$field") |"; done
            [ "$ncols" = 2 ] && row="$row $(ratio "$name" "$field" "$num" "$den") |"
            echo "$row"
        done < <(fields_of "$name")
        case " $FLOOR_CASES " in *" $name "*)   # the floor: a plain C echo over the same sockets, same load
            for fl in "p50_us|p50" "p99_us|p99"; do
                floor="| $name | floor ${fl#*|} µs (plain C echo, same sockets and load) |"
                vs="| $name | ${fl#*|} as a ratio to the floor's |"
                for c in $COLUMNS; do floor="$floor $(cell "$name" floor "${fl%|*}") |"; vs="$vs $(ratio "$name" "${fl%|*}" "$c" floor) |"; done
                [ "$ncols" = 2 ] && { floor="$floor |"; vs="$vs |"; }
                echo "$floor"
                echo "$vs"
            done ;;
        esac
    done
} >"$OUT"
cat "$OUT"
echo "(written to $OUT; every run's output in $LOGDIR)" >&2
