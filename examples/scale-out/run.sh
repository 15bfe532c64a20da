#!/bin/sh
# The chat example (examples/chat) as a cluster of two neffos processes on ports $PORT and
# $PORT+1 (default 8080 and 8081) sharing one broker on loopback, started here too:
#   examples/scale-out/run.sh                   Redis on 127.0.0.1:$BROKER_PORT (default 6390)
#   BROKER=nats examples/scale-out/run.sh       NATS instead (default port 4290)
# Extra arguments go to both servers. Ctrl-C stops all three processes.
set -eu
. "$(dirname "$0")/../lib.sh"
CHAT=$ROOT/examples/chat
BROKER=${BROKER:-redis}
PORT2=${PORT2:-$((PORT + 1))}

case $BROKER in
redis)
  BROKER_PORT=${BROKER_PORT:-6390}
  set -- --redis "redis://127.0.0.1:$BROKER_PORT" "$@"
  ;;
nats)
  BROKER_PORT=${BROKER_PORT:-4290}
  set -- --nats "nats://127.0.0.1:$BROKER_PORT" "$@"
  ;;
*)
  echo "BROKER must be redis or nats, not '$BROKER'" >&2
  exit 2
  ;;
esac

pids=""
starting=""   # a server being started: not in $pids until it is known to run
cleanup() {
  trap - EXIT INT TERM
  for p in $pids $starting; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$BROKER" = redis ]; then
  redis-server --save '' --appendonly no --port "$BROKER_PORT" --bind 127.0.0.1 --loglevel warning &
else
  "${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}" -a 127.0.0.1 -p "$BROKER_PORT" &
fi
pids="$!"

install_neffos_js "$CHAT/public"

# Starts one server; a broker that is not accepting yet makes neffos exit at once (status 2),
# so retry for a few seconds.
start_node() {
  port=$1
  shift
  tries=0
  while :; do
    "$NEFFOS_BIN" --listen "127.0.0.1:$port" --static "$CHAT/public" --no-watch "$@" "$CHAT" &
    starting=$!
    sleep 0.3
    if kill -0 "$starting" 2>/dev/null; then
      pids="$pids $starting"
      starting=""
      return 0
    fi
    tries=$((tries + 1))
    if [ "$tries" -ge 20 ]; then
      echo "scale-out: the server on port $port does not start" >&2
      exit 1
    fi
  done
}
start_node "$PORT" "$@"
start_node "$PORT2" "$@"

echo "scale-out: chat on http://localhost:$PORT/ and http://localhost:$PORT2/ sharing $BROKER on port $BROKER_PORT."
echo "           Open one tab on each, join the same room with two names: messages cross processes."
echo "           Ctrl-C stops everything."
wait
