#!/bin/sh
# The allocator a configure picks (CMakeLists.txt, NEFFOS_MALLOC): jemalloc by
# default, libc in the sanitizer builds, decided again at every configure (a
# tree configured as Release and then as Debug must not keep jemalloc under
# ASan), and clear errors for a wrong value, for jemalloc under a sanitizer, and
# for a missing libjemalloc-dev. Configures only (no build), in a temporary tree.
#   sh spec/lint/malloc_choice.sh ROOT
set -eu
ROOT=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "malloc_choice: $*" >&2; exit 1; }
alloc() {   # the allocator the tree in $T/b links: jemalloc or libc
  if grep -q NF_JEMALLOC "$T/b/CMakeFiles/nf_host.dir/flags.make"; then echo jemalloc; else echo libc; fi
}
conf() { cmake -S "$ROOT" -B "$T/b" "$@" >"$T/out" 2>&1; }

conf -DCMAKE_BUILD_TYPE=Release || fail "Release: $(cat "$T/out")"
[ "$(alloc)" = jemalloc ] || fail "a Release tree links $(alloc), not jemalloc"
conf -DCMAKE_BUILD_TYPE=Debug || fail "Release then Debug: $(cat "$T/out")"
[ "$(alloc)" = libc ] || fail "a Release tree reconfigured as Debug (ASan) still links $(alloc)"
conf -DCMAKE_BUILD_TYPE=Release || fail "Debug then Release: $(cat "$T/out")"
[ "$(alloc)" = jemalloc ] || fail "a Debug tree reconfigured as Release links $(alloc), not jemalloc"
conf -DCMAKE_BUILD_TYPE=Release -DNEFFOS_MALLOC=libc || fail "libc: $(cat "$T/out")"
[ "$(alloc)" = libc ] || fail "-DNEFFOS_MALLOC=libc links $(alloc)"

if conf -DNEFFOS_MALLOC=bogus; then fail "-DNEFFOS_MALLOC=bogus configured"; fi
grep -q "NEFFOS_MALLOC is jemalloc, libc or empty, not bogus" "$T/out" || fail "bogus: $(cat "$T/out")"
if conf -DCMAKE_BUILD_TYPE=Debug -DNEFFOS_MALLOC=jemalloc; then fail "jemalloc under ASan configured"; fi
grep -q "sanitizer build" "$T/out" || fail "jemalloc under ASan: $(cat "$T/out")"

# No libjemalloc-dev: pkg-config sees every .pc file but jemalloc's.
mkdir "$T/pc"
for d in $(pkg-config --variable pc_path pkg-config | tr : ' '); do
  [ -d "$d" ] || continue
  for f in "$d"/*.pc; do
    [ -e "$f" ] && [ "$(basename "$f")" != jemalloc.pc ] && [ ! -e "$T/pc/$(basename "$f")" ] && ln -s "$f" "$T/pc/"
  done
done
rm -rf "$T/b"
if PKG_CONFIG_LIBDIR="$T/pc" conf -DCMAKE_BUILD_TYPE=Release -DNEFFOS_MALLOC=; then fail "configured without jemalloc.pc"; fi
grep -q "libjemalloc-dev" "$T/out" && grep -q "NEFFOS_MALLOC=libc" "$T/out" || fail "no jemalloc: $(cat "$T/out")"
echo "malloc_choice: ok"
