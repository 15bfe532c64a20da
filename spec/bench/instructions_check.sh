#!/usr/bin/env bash
# spec/bench/instructions_check.sh - ctest bench/instructions: spec/bench/instructions.sh still
# counts (its line is there and its figure positive, nothing about its size), and what KEEP=DIR
# keeps is what docs/bench.md says: one callgrind dump that `callgrind_annotate DIR/callgrind.1.out`
# reads without a warning, the counted part (its trigger the dump, not the program's exit).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
KEEP=$(mktemp -d)
trap 'rm -rf "$KEEP"' EXIT
out=$(ASK_SECONDS=1 WARMUP_SECONDS=1 KEEP="$KEEP" bash "$ROOT/spec/bench/instructions.sh")
echo "$out"
echo "$out" | grep -Eq 'instructions/message [1-9][0-9]* \([1-9][0-9]* messages\)$' \
    || { echo "no 'instructions/message N (M messages)' line"; exit 1; }
ann=$(callgrind_annotate "$KEEP/callgrind.1.out" 2>&1) || { echo "$ann"; exit 1; }
if echo "$ann" | grep -q WARNING; then
    echo "callgrind_annotate warns on the kept file:"; echo "$ann" | grep -m 3 -A 1 WARNING; exit 1
fi
echo "$ann" | grep -q '^Trigger: dump' || { echo "the kept file is not the dump:"; echo "$ann" | head -20; exit 1; }
echo "$ann" | grep -Eq '^ *[1-9][0-9,]* .*PROGRAM TOTALS' || { echo "no instructions in the kept file"; exit 1; }
echo "KEEP: callgrind_annotate reads the dump cleanly"
