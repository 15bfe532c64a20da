#!/bin/sh
# layers.sh [ROOT] - fails when a file includes a header of a higher layer,
# or another folder's private header.
# The folders are the layers (docs/architecture.md); each may include only
# the ones listed for it here. Headers are included by their base name, so
# the name is looked up in the folders to find its layer.
# A header named *internal.h is its folder's private one (host/core/internal.h:
# the core's structures, whose fields their owners alone touch): only the
# files of that folder include it; another layer, or a test, goes through
# the public headers (proto.h, exchange.h, metrics.h ...). host/core/endpoint.h
# is private too: it holds struct nf_endpoint (its functions are in proto.h).
set -eu
ROOT=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$ROOT"
allowed() {   # the layers a layer may include
    case $1 in
        host/base) echo "host/base" ;;
        host/codec) echo "host/base host/codec" ;;
        host/http) echo "host/base host/http" ;;
        host/ws) echo "host/base host/ws" ;;
        host/tls) echo "host/base host/tls" ;;
        host/core) echo "host/base host/codec host/http host/ws host/tls host/core" ;;
        host/cluster) echo "host/base host/codec host/core host/cluster" ;;
        host/client) echo "host/base host/codec host/client" ;;
        bindings) echo "host/base host/codec host/http host/ws host/tls host/core host/cluster host/client bindings" ;;
        *) echo "?" ;;
    esac
}
layer_of_header() {   # the folder holding a header of that name, or nothing (a system header)
    for d in host/base host/codec host/http host/ws host/tls host/core host/cluster host/client bindings; do
        [ -f "$d/$1" ] && { echo "$d"; return; }
    done
}
bad=0
files=0
for f in host/*/*.c host/*/*.h bindings/*.c bindings/*.h; do
    [ -f "$f" ] || continue
    files=$((files + 1))
    layer=$(dirname "$f")
    ok=$(allowed "$layer")
    if [ "$ok" = "?" ]; then echo "$f: folder $layer is no known layer"; bad=1; continue; fi
    for h in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f"); do
        hl=$(layer_of_header "$(basename "$h")")
        [ -n "$hl" ] || continue
        case " $ok " in
            *" $hl "*) ;;
            *) echo "$f includes $h ($hl): $layer may include only $ok"; bad=1 ;;
        esac
    done
done
# Private headers stay in their folder: host/, bindings/ and the tests' C.
private=0
for f in $(find host bindings spec -name node_modules -prune -o -name '*.[ch]' -print); do
    for h in $(sed -n -e 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' \
                      -e 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*<\([^/>]*\)>.*/\1/p' "$f"); do
        case $(basename "$h") in *internal.h|endpoint.h) ;; *) continue ;; esac
        hl=$(layer_of_header "$(basename "$h")")
        [ -n "$hl" ] || continue
        private=$((private + 1))
        if [ "$hl" != "$(dirname "$f")" ]; then
            echo "$f includes $h: the private header of $hl (use its public headers)"; bad=1
        fi
    done
done
# host/ knows no Lua, at any depth.
if grep -rlE '#[[:space:]]*include[[:space:]]*[<"](lua|lauxlib|lualib)\.h' host >/dev/null 2>&1; then
    echo "host/ includes Lua:"; grep -rlE '#[[:space:]]*include[[:space:]]*[<"](lua|lauxlib|lualib)\.h' host; bad=1
fi
[ "$bad" = 0 ] || exit 1
echo "layers: $files files, every include goes down; $private includes of private headers, each in its folder"
