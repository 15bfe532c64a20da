#!/bin/sh
# spec/fuzz/run.sh - builds the libFuzzer targets and fuzzes each for a bounded time.
#
#   spec/fuzz/run.sh [TARGET...]         targets: http codec ws conn deflate (default: all)
#
# Environment:
#   FUZZ_SECONDS   seconds per target (default 30)
#   FUZZ_BUILD     build directory (default build-fuzz; configured with clang and -DNF_FUZZ=ON)
#   CC             the clang to use (default: clang)
#
# Each target starts from spec/fuzz/corpus/<target> (seeds, read only) plus
# spec/fuzz/regressions/<target>, and grows a scratch corpus in
# $FUZZ_BUILD/corpus/<target> that is kept between runs but never committed. A crash,
# leak or timeout input is copied to spec/fuzz/regressions/<target>/ (commit it with the
# fix: the ctest fuzz/<target> replays it in every normal build), and the script exits 1.
# One target at a time, one job: the machine is shared.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${FUZZ_BUILD:-$ROOT/build-fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-30}
CC=${CC:-clang}
TARGETS=${*:-http codec ws conn deflate}

if ! command -v "$CC" >/dev/null 2>&1; then
    echo "run.sh: $CC not found: the fuzz targets need clang (set CC)" >&2
    exit 2
fi

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    CC=$CC cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Debug -DNF_FUZZ=ON >/dev/null
fi
for t in $TARGETS; do
    cmake --build "$BUILD" -j2 --target "fuzz_$t" >/dev/null
done

status=0
for t in $TARGETS; do
    seeds=$ROOT/spec/fuzz/corpus/$t
    regressions=$ROOT/spec/fuzz/regressions/$t
    work=$BUILD/corpus/$t
    artifacts=$BUILD/artifacts/$t
    mkdir -p "$work" "$artifacts" "$regressions"
    rm -f "$artifacts"/*
    echo "== fuzz_$t for ${SECONDS_EACH}s"
    # The first corpus directory is where new inputs go; the others are only read.
    if "$BUILD/fuzz_$t" "$work" "$seeds" "$regressions" \
        -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=1024 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" >"$BUILD/fuzz_$t.log" 2>&1; then
        grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$BUILD/fuzz_$t.log" || true
    else
        status=1
        echo "fuzz_$t FAILED; log: $BUILD/fuzz_$t.log" >&2
        grep -E "ERROR|SUMMARY|runtime error|deadly signal" "$BUILD/fuzz_$t.log" | head -5 >&2 || true
        for a in "$artifacts"/*; do
            [ -f "$a" ] || continue
            cp "$a" "$regressions/"
            echo "kept $regressions/$(basename "$a")" >&2
        done
    fi
done
exit $status
