#!/usr/bin/env bash
# A private NATS server with JetStream for tests and benchmarks (Debian's nats-server, installed
# when missing).
#   scripts/nats.sh ensure              install nats-server if it is not on the machine
#   scripts/nats.sh start <dir> [port]  start one on 127.0.0.1:<port> (default: a free port), the
#                                       JetStream store and the log in <dir>, PID in <dir>/nats.pid;
#                                       prints the URL
#   scripts/nats.sh stop <dir>          stop the one started in <dir> (by PID)
# `start <dir> <port>` after `stop <dir>` brings the same server back with its streams: the store
# is <dir>/jetstream. The monitoring port (a free one per start, 127.0.0.1 only, written to
# <dir>/nats.monitor) serves /healthz, which answers 200 once JetStream has recovered its streams:
# the script waits for it, so a caller can publish as soon as the URL is printed.
set -euo pipefail
# shellcheck source=scripts/service-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/service-lib.sh"

ensure() {
  apt_install nats-server nats-server
}


start() {
  local dir="${1:?usage: nats.sh start <dir> [port]}" port="${2:-}"
  ensure
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  if [ -f "$dir/nats.pid" ] && kill -0 "$(cat "$dir/nats.pid")" 2>/dev/null; then
    echo "a nats-server started in $dir is running already (PID $(cat "$dir/nats.pid")); stop it first" >&2
    return 1
  fi
  # Ports this script picked itself are tried afresh when the server exits at once (a port taken
  # between the check and the bind); a port the caller gave is tried once.
  local tries=1
  [ -n "$port" ] || tries=3
  for attempt in $(seq 1 "$tries"); do
    if start_once "$dir" "$port"; then return 0; fi
    [ "$attempt" -lt "$tries" ] && echo "retrying nats-server on other ports" >&2
  done
  return 1
}

# start_once <dir> <port or empty>: one start, waiting up to 30 s for /healthz.
start_once() {
  local dir="$1" port="$2"
  [ -n "$port" ] || port="$(free_port)"
  local monitor
  monitor="$(free_port)"
  while [ "$monitor" = "$port" ]; do monitor="$(free_port)"; done
  echo "$monitor" >"$dir/nats.monitor"
  # nats-server stays in the foreground: detach it from this shell (and from the caller's
  # process group, so a test runner's signals do not reach it) and keep its PID in a file.
  setsid nohup nats-server -js -sd "$dir" -a 127.0.0.1 -p "$port" \
    --http_port "$monitor" -P "$dir/nats.pid" -l "$dir/nats.log" \
    </dev/null >>"$dir/nats.out" 2>&1 &
  local pid=$!
  for _ in $(seq 1 300); do
    if curl -fs --max-time 1 "http://127.0.0.1:$monitor/healthz" 2>/dev/null | grep -q ok; then
      echo "nats://127.0.0.1:$port"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "nats-server exited (port $port, monitor port $monitor); the end of its log:" >&2
      tail -n 15 "$dir/nats.log" "$dir/nats.out" >&2 2>/dev/null || true
      rm -f "$dir/nats.pid"
      return 1
    fi
    sleep 0.1
  done
  kill "$pid" 2>/dev/null || true
  echo "nats-server did not answer on port $port within 30 s; the end of its log:" >&2
  tail -n 15 "$dir/nats.log" "$dir/nats.out" >&2 2>/dev/null || true
  return 1
}

stop() {
  stop_pidfile "${1:?usage: nats.sh stop <dir>}/nats.pid"
}

case "${1:-}" in
  ensure) ensure ;;
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  *) echo "usage: $0 ensure | start <dir> [port] | stop <dir>" >&2; exit 2 ;;
esac
