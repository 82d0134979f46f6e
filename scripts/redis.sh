#!/usr/bin/env bash
# A private Redis for tests and benchmarks (Debian's redis-server, installed when missing).
#   scripts/redis.sh ensure              install redis-server if it is not on the machine
#   scripts/redis.sh start <dir> [port]  start one on 127.0.0.1:<port> (default: a free port), data
#                                        and log in <dir>, PID in <dir>/redis.pid; prints the URL
#   scripts/redis.sh stop <dir>          stop the one started in <dir> (by PID)
# Nothing is persisted to disk (no RDB, no AOF): the dedup keys are a cache with a TTL.
set -euo pipefail
# shellcheck source=scripts/service-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/service-lib.sh"

ensure() {
  apt_install redis-server redis-server
}


start() {
  local dir="${1:?usage: redis.sh start <dir> [port]}" port="${2:-}"
  ensure
  mkdir -p "$dir"
  [ -n "$port" ] || port="$(free_port)"
  redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --save '' --appendonly no \
    --protected-mode no --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
    --maxmemory-policy noeviction >/dev/null
  for _ in $(seq 1 100); do
    if redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG; then
      echo "redis://127.0.0.1:$port"
      return 0
    fi
    sleep 0.05
  done
  echo "redis-server did not answer on port $port; see $dir/redis.log" >&2
  return 1
}

stop() {
  stop_pidfile "${1:?usage: redis.sh stop <dir>}/redis.pid"
}

case "${1:-}" in
  ensure) ensure ;;
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  *) echo "usage: $0 ensure | start <dir> [port] | stop <dir>" >&2; exit 2 ;;
esac
