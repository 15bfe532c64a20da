#!/usr/bin/env bash
# spec/bench/run.sh - builds Release, runs every neffos-bench mode against
# spec/bench/app.lua, and writes the Performance table (issue 7) to
# $BUILD/bench.md and stdout.
#
#   spec/bench/run.sh                 # everything, ~1 minute
#   BENCH_SECONDS=3 spec/bench/run.sh # shorter runs
#
# Environment:
#   BUILD             build directory (build-release)
#   PORT              first port to listen on (18090; each server run takes the next)
#   BENCH_SECONDS     length of each measured run (10)
#   IDLE_CONNS        idle connections (10000)
#   SKIP_BUILD=1      use the binaries already in $BUILD
#   NEFFOS_BIN, BENCH_BIN  other binaries than $BUILD/neffos, $BUILD/neffos-bench
#   RELOAD_MS         hot reload latency in ms, measured elsewhere: skips the
#                     measurement (spec/bench/reload_latency.mjs, run when node
#                     and node_modules are here; it writes $BUILD/reload_ms)
#
# Each mode gets a fresh server, so that one run's heap does not flatter the
# next one's memory figure. The server is killed on exit, whatever happens.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build-release}
PORT=${PORT:-18090}
SECS=${BENCH_SECONDS:-10}
IDLE_CONNS=${IDLE_CONNS:-10000}
APP=spec/bench/app.lua
OUT=$BUILD/bench.md
LOGDIR=$BUILD/bench-logs

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$BUILD" --target neffos neffos-bench -j2 >/dev/null
fi
NEFFOS=${NEFFOS_BIN:-$BUILD/neffos}
BENCH=${BENCH_BIN:-$BUILD/neffos-bench}
mkdir -p "$LOGDIR"

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

# Starts a fresh server on the next port; sets SERVER_PID and URL.
start_server() {
    local name=$1
    stop_server
    PORT=$((PORT + 1))
    "$NEFFOS" "$APP" --listen "127.0.0.1:$PORT" --log-level warn >"$LOGDIR/server-$name.log" 2>&1 &
    SERVER_PID=$!
    URL="ws://127.0.0.1:$PORT/echo"
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "server did not start; see $LOGDIR/server-$name.log" >&2
    cat "$LOGDIR/server-$name.log" >&2
    return 1
}

# Runs one bench; its last line (the JSON object) goes to $LOGDIR/NAME.json.
run_bench() {
    local name=$1; shift
    echo "== $name: neffos-bench $*" >&2
    "$BENCH" "$@" --server-pid "$SERVER_PID" >"$LOGDIR/$name.txt" 2>&1 || true
    sed '$d' "$LOGDIR/$name.txt" >&2
    tail -n 1 "$LOGDIR/$name.txt" >"$LOGDIR/$name.json"
    jq -e . "$LOGDIR/$name.json" >/dev/null 2>&1 || echo '{}' >"$LOGDIR/$name.json"
}

start_server ask
run_bench ask ask --url "$URL" --namespace v1 --event echo --conns 50 --inflight 8 --size 64 --seconds "$SECS"
start_server rtt
run_bench rtt ask --url "$URL" --namespace v1 --event echo --conns 1 --inflight 1 --size 64 --seconds "$SECS"
start_server broadcast
run_bench broadcast broadcast --url "$URL" --namespace v1 --event shout --recv-event chat --receivers 1000 --seconds "$SECS"
start_server idle
run_bench idle idle --url "$URL" --namespace v1 --conns "$IDLE_CONNS" --seconds 3
stop_server

# Hot reload latency: 1,000 idle neffos.js clients plus one asking; the script
# writes the median to $BUILD/reload_ms (removed first: no stale figure).
if [ -z "${RELOAD_MS:-}" ] && [ -d node_modules/neffos.js ] && command -v node >/dev/null; then
    echo "== reload: node spec/bench/reload_latency.mjs --conns 1000 --rounds 10" >&2
    rm -f "$BUILD/reload_ms"
    BUILD="$BUILD" NEFFOS_BIN="$NEFFOS" node spec/bench/reload_latency.mjs --conns 1000 --rounds 10 \
        >"$LOGDIR/reload.txt" 2>&1 || true
    cat "$LOGDIR/reload.txt" >&2
fi

# ---- the table ----------------------------------------------------------------
j() { jq -r "$2 // empty" "$LOGDIR/$1.json" 2>/dev/null || true; }
fmt_int() {   # 1234567.8 -> 1,234,568 (no locale needed)
    [ -z "$1" ] && { echo "n/a"; return; }
    printf '%.0f' "$1" | sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|,\)/\1,\2\3/' -e 'ta'
}
# verdict VALUE OP LIMIT: "yes"/"no"/"" (unknown)
verdict() {
    [ -z "$1" ] && { echo "n/a"; return; }
    if awk -v v="$1" -v l="$3" "BEGIN { exit !(v $2 l) }"; then echo "yes"; else echo "**no**"; fi
}

ASK_RATE=$(j ask .replies_per_s)
ASK_CPU=$(j ask .replies_per_server_cpu_s)
ASK_P99=$(j ask .p99_us)
ASK_ERR=$(j ask .errors)
RTT_P50=$(j rtt .p50_us)
BC_RATE=$(j broadcast .deliveries_per_s)
BC_LOST=$(j broadcast .lost)
BC_ORDER=$(j broadcast .order_violations)
IDLE_B=$(j idle .bytes_per_conn)
IDLE_HELD=$(j idle .held)
ASK_P99_MS=$([ -n "$ASK_P99" ] && awk -v v="$ASK_P99" 'BEGIN { printf "%.2f", v / 1000 }' || true)
IDLE_KB=$([ -n "$IDLE_B" ] && awk -v v="$IDLE_B" 'BEGIN { printf "%.2f", v / 1024 }' || true)

RELOAD=${RELOAD_MS:-}
if [ -z "$RELOAD" ] && [ -f "$BUILD/reload_ms" ]; then
    RELOAD=$(grep -Eo '[0-9]+(\.[0-9]+)?' "$BUILD/reload_ms" | head -n 1 || true)
fi

CPU_MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
{
    echo "Machine: $(nproc) CPUs, $CPU_MODEL; $(uname -sr); server and load generator on the same machine."
    echo "Run: \`spec/bench/run.sh\` ($SECS s per run, $(date -u +%Y-%m-%d))."
    echo
    echo "| figure | target (issue 7) | Go neffos (gorilla) | measured | met |"
    echo "|---|---|---|---|---|"
    echo "| ask echo, 50 conns × 8 in flight, 64 B: replies/s | ≥ 150,000 | 86,000 | $(fmt_int "$ASK_RATE") | $(verdict "$ASK_RATE" '>=' 150000) |"
    echo "| same: replies per server CPU-second | ≥ 200,000 | 67,500 | $(fmt_int "$ASK_CPU") | $(verdict "$ASK_CPU" '>=' 200000) |"
    echo "| same: p99 latency | < 2 ms | 28 ms | ${ASK_P99_MS:-n/a} ms | $(verdict "$ASK_P99" '<' 2000) |"
    echo "| same: errors | 0 | | ${ASK_ERR:-n/a} | $(verdict "$ASK_ERR" '==' 0) |"
    echo "| ask, 1 conn × 1 in flight: median round trip | < 60 µs | 131 µs | ${RTT_P50:-n/a} µs | $(verdict "$RTT_P50" '<' 60) |"
    echo "| broadcast to 1,000 receivers: deliveries/s | ≥ 1,000,000 | 84,000 | $(fmt_int "$BC_RATE") | $(verdict "$BC_RATE" '>=' 1000000) |"
    echo "| same: lost / out of order | 0 / 0 | | ${BC_LOST:-n/a} / ${BC_ORDER:-n/a} | $(verdict "$([ -n "$BC_LOST" ] && echo $((BC_LOST + BC_ORDER)))" '==' 0) |"
    echo "| $IDLE_CONNS idle connections in a namespace: server RSS per connection | ≤ 6 KB | 18.9 KB | ${IDLE_KB:-n/a} KB (${IDLE_HELD:-0} held) | $(verdict "$IDLE_B" '<=' 6144) |"
    echo "| hot reload, 1,000 clients connected: file write → first reply from new code (median of 10) | < 50 ms | | ${RELOAD:-not measured} ms | $(verdict "$RELOAD" '<' 50) |"
    echo
    echo "Commands (each against a fresh \`$NEFFOS $APP --listen 127.0.0.1:PORT --log-level warn\`):"
    echo
    echo '```'
    echo "neffos-bench ask --url ws://127.0.0.1:PORT/echo --namespace v1 --event echo --conns 50 --inflight 8 --size 64 --seconds $SECS --server-pid PID"
    echo "neffos-bench ask --url ws://127.0.0.1:PORT/echo --namespace v1 --event echo --conns 1 --inflight 1 --size 64 --seconds $SECS --server-pid PID"
    echo "neffos-bench broadcast --url ws://127.0.0.1:PORT/echo --namespace v1 --event shout --recv-event chat --receivers 1000 --seconds $SECS --server-pid PID"
    echo "neffos-bench idle --url ws://127.0.0.1:PORT/echo --namespace v1 --conns $IDLE_CONNS --seconds 3 --server-pid PID"
    echo "node spec/bench/reload_latency.mjs --conns 1000 --rounds 10   # starts its own server on spec/reload/apps/stress"
    echo '```'
    echo
    echo "Raw results (the last line of each run):"
    echo
    echo '```'
    for n in ask rtt broadcast idle; do echo "$n: $(cat "$LOGDIR/$n.json")"; done
    echo '```'
} >"$OUT"
cat "$OUT"
echo "(written to $OUT; full outputs in $LOGDIR)" >&2
