#!/usr/bin/env bash
# spec/bench/soak.sh - the soak benchmark (issue 11 point 13): legitimate neffos.js clients ask
# and receive broadcasts for SOAK_SECONDS while hostile clients cycle through every attack of
# issue 11 (ping flood without reading, input parked behind a sleeping handler, 1-byte fragments,
# long names, descriptor exhaustion of a prlimit'ed server, slowloris, a backtracking pattern,
# garbage frames), against a Release build. A benchmark, not a timed test: it reports, and fails
# only if a legitimate ask went unanswered or the server did not stay up.
#
#   spec/bench/soak.sh                      # 60 s
#   SOAK_SECONDS=10 LEGIT=10 HOSTILE=2 spec/bench/soak.sh
#
# Environment: SOAK_SECONDS=60 LEGIT=20 HOSTILE=4 NOFILE=512 (the server's descriptor limit)
#   ATTACKS (comma list, default all: pingFlood,parked,fragments,longNames,descriptors,slowloris,pattern,garbage)
#   SERVER_ARGS (more server flags, e.g. "--max-connections 100000": accept() then meets EMFILE)
#   BUILD (build-release)  SKIP_BUILD=1 to use the binary already built  NEFFOS_BIN to pick one
# Output: a Markdown table and a JSON last line on stdout (also in $BUILD/soak.md).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build-release}
if [ "${SKIP_BUILD:-0}" != 1 ] && [ -z "${NEFFOS_BIN:-}" ]; then
    cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$BUILD" --target neffos -j"$(nproc)" >/dev/null
fi
export NEFFOS_BIN=${NEFFOS_BIN:-$ROOT/$BUILD/neffos} NEFFOS_ROOT=$ROOT
# The descriptor attack opens more sockets than the server may have: this side needs them.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
mkdir -p "$BUILD"
node spec/bench/soak.mjs | tee "$BUILD/soak.md"
