#!/usr/bin/env bash
# A private ClickHouse for tests and benchmarks (Debian's clickhouse-server, installed when missing).
#   scripts/clickhouse.sh ensure                         install clickhouse-server/-client if missing
#   scripts/clickhouse.sh start <dir> [http_port] [tcp_port]
#                                                        start one on 127.0.0.1 (default: free ports),
#                                                        config, data and logs in <dir>, PID in
#                                                        <dir>/clickhouse.pid; prints the HTTP URL
#   scripts/clickhouse.sh stop <dir>                     stop the one started in <dir> (by PID)
# The server gets a minimal config of its own (no /etc/clickhouse-server, no system log tables,
# no interserver port), user `default` without a password, reachable from 127.0.0.1 only. It runs
# as the calling user, root included (the Debian package's own service drops to `clickhouse`).
set -euo pipefail
# shellcheck source=scripts/service-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/service-lib.sh"

ensure() {
  apt_install clickhouse-server clickhouse-server clickhouse-client
  apt_install clickhouse-client clickhouse-client
}


write_config() {
  local dir="$1" http_port="$2" tcp_port="$3"
  mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas" "$dir/log"
  cat >"$dir/config.xml" <<EOF
<?xml version="1.0"?>
<yandex>
  <logger>
    <level>warning</level>
    <log>$dir/log/clickhouse-server.log</log>
    <errorlog>$dir/log/clickhouse-server.err.log</errorlog>
    <size>100M</size>
    <count>2</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>$http_port</http_port>
  <tcp_port>$tcp_port</tcp_port>
  <max_connections>256</max_connections>
  <keep_alive_timeout>30</keep_alive_timeout>
  <max_concurrent_queries>64</max_concurrent_queries>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <mark_cache_size>268435456</mark_cache_size>
  <path>$dir/data/</path>
  <tmp_path>$dir/tmp/</tmp_path>
  <user_files_path>$dir/user_files/</user_files_path>
  <format_schema_path>$dir/format_schemas/</format_schema_path>
  <users_config>$dir/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mlock_executable>false</mlock_executable>
  <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
  <max_session_timeout>3600</max_session_timeout>
  <default_session_timeout>60</default_session_timeout>
</yandex>
EOF
  cat >"$dir/users.xml" <<EOF
<?xml version="1.0"?>
<yandex>
  <profiles>
    <default>
      <max_memory_usage>4000000000</max_memory_usage>
      <use_uncompressed_cache>0</use_uncompressed_cache>
      <load_balancing>random</load_balancing>
    </default>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas>
    <default>
      <interval>
        <duration>3600</duration>
        <queries>0</queries>
        <errors>0</errors>
        <result_rows>0</result_rows>
        <read_rows>0</read_rows>
        <execution_time>0</execution_time>
      </interval>
    </default>
  </quotas>
</yandex>
EOF
}

answers() {
  local url="$1"
  # curl when present, else bash's /dev/tcp (a clean Debian image may have neither curl nor wget).
  if command -v curl >/dev/null 2>&1; then
    [ "$(curl -fsS --max-time 1 "$url/?query=SELECT%201" 2>/dev/null)" = "1" ]
  else
    local port="${url##*:}" reply
    reply="$( (exec 3<>"/dev/tcp/127.0.0.1/$port" &&
      printf 'GET /?query=SELECT%%201 HTTP/1.0\r\n\r\n' >&3 && timeout 1 cat <&3) 2>/dev/null || true)"
    [ "$(printf '%s' "$reply" | tail -n 1 | tr -d '\r')" = "1" ]
  fi
}

start() {
  local dir="${1:?usage: clickhouse.sh start <dir> [http_port] [tcp_port]}" http_port="${2:-}" tcp_port="${3:-}"
  ensure
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  [ -n "$http_port" ] || http_port="$(free_port)"
  [ -n "$tcp_port" ] || tcp_port="$(free_port)"
  write_config "$dir" "$http_port" "$tcp_port"
  local url="http://127.0.0.1:$http_port"
  # Its own session, so the caller's Ctrl-C or process group kill does not reach it.
  setsid clickhouse-server --config-file="$dir/config.xml" >>"$dir/log/stdout.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$dir/clickhouse.pid"
  for _ in $(seq 1 300); do
    if answers "$url"; then
      echo "$url"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "clickhouse-server exited; see $dir/log/" >&2
      tail -n 20 "$dir/log/clickhouse-server.err.log" "$dir/log/stdout.log" >&2 2>/dev/null || true
      rm -f "$dir/clickhouse.pid"
      return 1
    fi
    sleep 0.1
  done
  echo "clickhouse-server did not answer on $url within 30 s; see $dir/log/" >&2
  return 1
}

stop() {
  stop_pidfile "${1:?usage: clickhouse.sh stop <dir>}/clickhouse.pid" 300
}

case "${1:-}" in
  ensure) ensure ;;
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  *) echo "usage: $0 ensure | start <dir> [http_port] [tcp_port] | stop <dir>" >&2; exit 2 ;;
esac
