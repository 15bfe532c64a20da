#!/bin/sh
# Starts the native-messages example on http://localhost:$PORT/ (default 8080): a page that uses
# the browser's plain WebSocket API, no neffos.js. Extra arguments go to the server.
set -eu
. "$(dirname "$0")/../lib.sh"
HERE=$ROOT/examples/native-messages

echo "native-messages: open http://localhost:$PORT/ and send ping (answered pong) or any text (echoed)"
echo "                 any WebSocket client works too: ws://127.0.0.1:$PORT/endpoint"
exec "$NEFFOS_BIN" --listen "127.0.0.1:$PORT" --static "$HERE/public" "$@" "$HERE"
