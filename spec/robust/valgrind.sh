#!/bin/sh
# spec/robust/valgrind.sh - the interop tests against the server running under valgrind.
#
#   spec/robust/valgrind.sh [NODE_TEST_PATHS...]     (default: spec/interop/*.test.mjs but tls_core)
#
# tls_core re-runs nine of these files over TLS: under valgrind that was a third of CI's valgrind time for
# code paths the others run already; TLS itself runs under valgrind in interop/tls.test.mjs.
#
# Builds a RelWithDebInfo server (no sanitizers, glibc's malloc, which valgrind tracks;
# $VALGRIND_BUILD, default build-valgrind),
# runs `node --test` on the interop tests with NEFFOS_BIN set to a wrapper that execs the
# server under `valgrind --leak-check=full --error-exitcode=99`, lets the harness stop each
# server with SIGTERM (so the leak check runs at a clean exit), then reads every valgrind log:
# any invalid access, use of uninitialised memory, or definite/indirect leak fails the run.
# Exit status: 0 clean, 1 test failures, 99 valgrind findings, 2 setup problems.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${VALGRIND_BUILD:-$ROOT/build-valgrind}
cd "$ROOT"

command -v valgrind >/dev/null 2>&1 || { echo "valgrind.sh: valgrind is not installed" >&2; exit 2; }
command -v node >/dev/null 2>&1 || { echo "valgrind.sh: node is not installed" >&2; exit 2; }

cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNEFFOS_MALLOC=libc >/dev/null
cmake --build "$BUILD" -j2 --target neffos >/dev/null

WORK=$(mktemp -d "${TMPDIR:-/tmp}/neffos-valgrind.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM
mkdir -p "$WORK/logs"
cat >"$WORK/neffos" <<WRAP
#!/bin/sh
exec valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect \\
    --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --num-callers=30 \\
    --log-file="$WORK/logs/vg.%p.log" "$BUILD/neffos" "\$@"
WRAP
chmod +x "$WORK/neffos"

status=0
# The harness waits 10 s for the server to accept and 5 s for it to exit after SIGTERM:
# enough under valgrind for these tests; a server killed with SIGKILL fails its test file.
if [ $# -eq 0 ]; then
    set -- $(ls spec/interop/*.test.mjs | grep -v '/tls_core\.test\.mjs$')
fi
NEFFOS_BIN="$WORK/neffos" node --test --test-reporter=spec "$@" || status=1

runs=0
bad=0
for log in "$WORK"/logs/vg.*.log; do
    [ -f "$log" ] || continue
    runs=$((runs + 1))
    # --quiet: a clean run prints nothing; findings print "ERROR SUMMARY: N errors".
    if grep -qE "ERROR SUMMARY: [1-9]|definitely lost: [1-9]|indirectly lost: [1-9]|Invalid (read|write|free)|uninitialised" "$log"; then
        bad=$((bad + 1))
        echo "==== valgrind findings in $(basename "$log"):" >&2
        cat "$log" >&2
    fi
done
echo "valgrind: $runs server runs, $bad with findings"
if [ "$runs" -eq 0 ]; then
    echo "valgrind.sh: no server ran under valgrind" >&2
    exit 2
fi
[ "$bad" -eq 0 ] || exit 99
exit $status
