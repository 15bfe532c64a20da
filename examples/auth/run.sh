#!/bin/sh
# Starts the auth example on http://localhost:$PORT/ (default 8080). Extra arguments go to the server.
set -eu
. "$(dirname "$0")/../lib.sh"
HERE=$ROOT/examples/auth

# public/ is the static root; the page loads /neffos.min.js, copied from the npm package.
install_neffos_js "$HERE/public"

echo "auth: open http://localhost:$PORT/ and connect with the token alice-token (rooms lobby, dev),"
echo "      bob-token (lobby only) or a wrong one; then try to join a room"
exec "$NEFFOS_BIN" --listen "127.0.0.1:$PORT" --static "$HERE/public" "$@" "$HERE"
