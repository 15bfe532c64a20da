#!/bin/sh
# symbols.sh LIB.a... - fails when a global symbol is defined twice across
# the project's static libraries. A static library hides such a clash: the
# linker takes the first archive member that defines a symbol, so two
# functions with one name "work" by link order alone (this happened with two
# nf_url_parse). Every global is defined once, in the file its prefix names.
set -eu
[ $# -gt 0 ] || { echo "usage: symbols.sh LIB.a..." >&2; exit 2; }
dups=$(for lib in "$@"; do
         nm -g --defined-only "$lib" 2>/dev/null |
           awk -v lib="$(basename "$lib")" '/^[^ ]+:$/ { obj = $1; sub(/:$/, "", obj); next }
                 NF == 3 && $2 ~ /[TDBRC]/ { print $3, lib "(" obj ")" }'
       done | sort | awk '{ n[$1]++; w[$1] = w[$1] " " $2 } END { for (s in n) if (n[s] > 1) print s ":" w[s] }')
if [ -n "$dups" ]; then
  echo "global symbols defined more than once:"
  echo "$dups"
  exit 1
fi
echo "symbols: no global symbol defined twice in $# libraries"
