# Shared by the service scripts (redis.sh, clickhouse.sh, nats.sh, kafka.sh): install from Debian,
# pick a free port, stop by PID file.
# Sourced, not run.

# apt_install <command> <package>...: installs the packages unless <command> is already on PATH.
apt_install() {
  local command="$1"
  shift
  command -v "$command" >/dev/null 2>&1 && return 0
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
  command -v "$command" >/dev/null
}

# stop_pidfile <pidfile> [tries]: SIGTERM, wait up to <tries> × 50 ms (default 100), then SIGKILL.
stop_pidfile() {
  local pidfile="$1" tries="${2:-100}"
  [ -f "$pidfile" ] || return 0
  local pid
  pid="$(cat "$pidfile")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 "$tries"); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; return 0; }
    sleep 0.05
  done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

# A port nothing listens on, between the usual services and Linux's ephemeral range (32768 and
# up, where an outgoing connection may hold the port by the time a server binds it). Bash only:
# no python, no ss.
free_port() {
  local port
  for _ in $(seq 1 100); do
    port=$((20000 + RANDOM % 12768))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  echo "no free port found" >&2
  return 1
}
