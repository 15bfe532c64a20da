# Shared by the examples' run.sh scripts (sourced, POSIX sh). Sets ROOT and NEFFOS_BIN and
# defines install_neffos_js. Not meant to be run on its own.
#
# The server binary: $NEFFOS_BIN if set (ctest sets it), else build/neffos.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
NEFFOS_BIN=${NEFFOS_BIN:-$ROOT/build/neffos}
if [ ! -x "$NEFFOS_BIN" ]; then
  echo "no server binary at $NEFFOS_BIN; build it first:" >&2
  echo "  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j" >&2
  exit 1
fi
PORT=${PORT:-8080}
# NEFFOS_WORKERS=N: serve with --workers N (the tests re-run the examples so, spec/tests.cmake).
if [ -n "${NEFFOS_WORKERS:-}" ] && [ "${NEFFOS_WORKERS}" != 1 ]; then
  set -- --workers "$NEFFOS_WORKERS" "$@"
fi

# Copies the neffos.js browser build from the npm package into the static dir $1.
# A copy, not a symlink: the static server refuses symlinks that resolve outside its root.
# Written to a temporary name and renamed, so a server already serving $1 (or a second run.sh
# running at the same time, as parallel tests do) never sees half a file.
install_neffos_js() {
  src=$ROOT/node_modules/neffos.js/dist/neffos.min.js
  if [ ! -f "$src" ]; then
    echo "$src is missing; run 'npm ci' at the repository root once" >&2
    exit 1
  fi
  cp "$src" "$1/neffos.min.js.tmp.$$" && mv -f "$1/neffos.min.js.tmp.$$" "$1/neffos.min.js"
}
