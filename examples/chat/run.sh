#!/bin/sh
# Starts the chat example on http://localhost:$PORT/ (default 8080). Extra arguments go to the
# server, e.g. examples/chat/run.sh --log-level debug
set -eu
. "$(dirname "$0")/../lib.sh"
HERE=$ROOT/examples/chat

# public/ is the static root; the page loads /neffos.min.js, copied from the npm package.
install_neffos_js "$HERE/public"

echo "chat: open http://localhost:$PORT/ in two browser tabs (any user name, the same room),"
echo "      or chat from a terminal: node examples/chat/client.mjs NAME ROOM ws://127.0.0.1:$PORT/echo"
exec "$NEFFOS_BIN" --listen "127.0.0.1:$PORT" --static "$HERE/public" "$@" "$HERE"
