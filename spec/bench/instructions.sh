#!/usr/bin/env bash
# spec/bench/instructions.sh - user-space instructions the server runs per message of the
# 64 B ask (50 connections x 8 in flight), counted by callgrind: a figure that the machine's
# load barely moves, for comparing two builds where timings are too noisy.
#
#   spec/bench/instructions.sh                          # build-release/neffos
#   spec/bench/instructions.sh OLD/neffos build-release/neffos   # each binary in turn
#
# Each server runs under `valgrind --tool=callgrind --instr-atstart=no`; after a warm-up ask
# run, counting is switched on, a 4 s ask run goes by, and the instructions counted are divided
# by the messages the server's /metrics says it received meanwhile. The kernel's share is not
# in it (callgrind sees user space only). Needs valgrind; the generator is
# build-release/neffos-bench. ASK_SECONDS=4 (counted), WARMUP_SECONDS=2 (not), PORT (default: a
# free one the kernel picks, so that runs of other worktrees on the machine do not collide).
# Prints "BINARY instructions/message N (M messages)" per binary; exits 1 when a server
# received no message while counted. KEEP=DIR keeps each binary's callgrind dump there
# (DIR/callgrind.N.out, N its place in the list) for `callgrind_annotate`.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BENCH=${BENCH_BIN:-$ROOT/build-release/neffos-bench}
PORT=${PORT:-$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')}
ASK_SECONDS=${ASK_SECONDS:-4}
WARMUP_SECONDS=${WARMUP_SECONDS:-2}
[ $# -gt 0 ] || set -- "$ROOT/build-release/neffos"
TMP=$(mktemp -d)
VP=
cleanup() { [ -z "$VP" ] || kill "$VP" 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT

messages_in() {   # the server's neffos_messages_in_total (bash's /dev/tcp: no curl needed)
    exec 3<>"/dev/tcp/127.0.0.1/$PORT" || return 1
    printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
    awk '/^neffos_messages_in_total /{print $2}' <&3
    exec 3<&-
}
ask() {   # ask SECONDS WARMUP
    "$BENCH" ask --url "ws://127.0.0.1:$PORT/echo" --namespace v1 --event echo --conns 50 --inflight 8 \
        --size 64 --seconds "$1" --warmup "$2" >/dev/null 2>&1
}

for bin in "$@"; do
    out=$TMP/callgrind.out
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" \
        "$bin" --listen "127.0.0.1:$PORT" --log-level warn "$ROOT/spec/bench/app.lua" >"$TMP/server.log" 2>&1 &
    VP=$!
    # Ours, not whatever else listens there: a server that could not bind has exited.
    for _ in $(seq 100); do
        kill -0 "$VP" 2>/dev/null || break
        [ -n "$(messages_in 2>/dev/null)" ] && break
        sleep 0.2
    done
    if ! kill -0 "$VP" 2>/dev/null || [ -z "$(messages_in 2>/dev/null)" ]; then
        echo "$bin: no server of ours on port $PORT (exited, or not up after 20 s); its log:" >&2
        cat "$TMP/server.log" >&2
        exit 1
    fi
    ask "$WARMUP_SECONDS" 1                            # warm up: the pools, the Lua heap
    callgrind_control -i on "$VP" >/dev/null 2>&1
    a=$(messages_in)
    ask "$ASK_SECONDS" 0
    b=$(messages_in)
    callgrind_control -i off "$VP" >/dev/null 2>&1
    callgrind_control -d "$VP" >/dev/null 2>&1
    if ! kill "$VP" 2>/dev/null; then   # it never served: what answered on $PORT was another server
        echo "$bin: the server exited during the run (port $PORT taken?); its log:" >&2
        cat "$TMP/server.log" >&2
        exit 1
    fi
    wait "$VP" 2>/dev/null || true; VP=
    # The dump's file holds what was counted (the one written at exit: nothing more).
    ir=$(cat "$out"* | awk '/^totals:/{t += $2} /^summary:/{s += $2} END{print (t ? t : s) + 0}')
    n=$((b - a))
    if [ "$n" -le 0 ] || [ "$ir" -le 0 ]; then
        echo "$bin: nothing counted ($n messages, $ir instructions); its log:" >&2
        cat "$TMP/server.log" >&2
        exit 1
    fi
    echo "$bin instructions/message $((ir / n)) ($n messages)"
    if [ -n "${KEEP:-}" ]; then
        mkdir -p "$KEEP"
        KEPT=$((${KEPT:-0} + 1))
        # The dump alone (callgrind_control -d wrote $out.1): the file written at exit holds
        # nothing counted, and two files in one make callgrind_annotate warn about every
        # header line of the second and show the first's, the empty exit part's.
        if [ -e "$out.1" ]; then cp "$out.1" "$KEEP/callgrind.$KEPT.out"; else cp "$out" "$KEEP/callgrind.$KEPT.out"; fi
    fi
    rm -f "$out"*
done
