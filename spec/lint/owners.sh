#!/bin/sh
# owners.sh [ROOT] - one owner per concept in the protocol core (host/core):
#  1. a global function's prefix names its file (nf_conn_* in conn.c,
#     nf_endpoint_* in endpoint.c, ...), so the function list of a file is
#     the API of its concept and a name says where to look;
#  2. no deadline written as a literal: `nf_now_ms() + 5000` or `_ms = 30000`
#     (each duration is a named constant, defined once, next to its owner);
#  3. only conn.c reaches into a connection (nf_conn): the others ask it
#     through functions, or touch the part of it they own (turn.c the turn,
#     barrier.c the barrier, ask.c the asks, ids.c the ID, namespace.c the
#     namespaces, endpoint.c and host.c their list links).
# Exit 1 with one line per violation.
set -eu
ROOT=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$ROOT"
prefixes() {   # the prefixes a file's global functions may have, beyond nf_<file>_
    case $1 in
        namespace) echo "nf_ns_ nf_nsconn_" ;;   # a namespace connection is the namespace module's object
        metrics) echo "nf_metrics_" ;;
        refusal) echo "nf_refusal" ;;
        *) echo "" ;;
    esac
}
bad=0
for f in host/core/*.c; do
    b=$(basename "$f" .c)
    allowed="nf_${b}_ nf_${b}( $(prefixes "$b")"
    # Definitions: a line that starts with a type and has a name followed by "(",
    # not static, not a prototype (no trailing ";").
    for fn in $(grep -E '^[a-z][a-z0-9_ ]*[ *]nf_[a-z0-9_]+\(' "$f" | grep -v '^static' | grep -v ';[[:space:]]*$' |
                sed -E 's/^[a-z][a-z0-9_ ]*[ *](nf_[a-z0-9_]+)\(.*$/\1/'); do
        ok=0
        for p in $allowed; do
            case "$fn(" in "$p"*) ok=1 ;; esac
        done
        [ $ok = 1 ] || { echo "$f: $fn: a function of $f is named nf_${b}_*"; bad=1; }
    done
done
if grep -nE 'nf_now_ms\(\) \+ [0-9]|_ms = [0-9]{3,}' host/core/*.c; then
    echo "host/core: a deadline written as a literal (name it once, next to its owner)"
    bad=1
fi
parts() {   # the fields of nf_conn a file owns
    case $1 in
        ask) echo "asks ask_count" ;;
        barrier) echo "barrier" ;;
        turn) echo "turn" ;;
        ids) echo "id id_len id_link id_refusal id_shown" ;;
        namespace) echo "nsconns nsconn_count name_bytes deferred" ;;
        endpoint) echo "ep_link" ;;
        host) echo "host_link" ;;
        *) echo "" ;;
    esac
}
for f in host/core/*.c; do
    b=$(basename "$f" .c)
    [ "$b" = conn ] && continue
    own=$(parts "$b")
    # c->field, and a connection reached through another struct (nc->conn->field).
    for use in $(grep -oE '(\bc|->conn|->c)->[a-z_]+' "$f" | sed -E 's/^.*->//' | sort -u); do
        case " $own " in
            *" $use "*) ;;
            *) echo "$f: reaches into nf_conn.$use (ask conn.c)"; bad=1 ;;
        esac
    done
done
[ $bad = 0 ] && echo "owners: host/core clean"
exit $bad
