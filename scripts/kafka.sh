#!/usr/bin/env bash
# A private Apache Kafka for tests and benchmarks: one KRaft node (broker and controller in one
# JVM), from the broker's jars on Maven Central, fetched with mvn into a cache outside the repo.
#   scripts/kafka.sh ensure              install Java and maven when missing (Debian), fetch the
#                                        broker's jars into the cache when missing
#   scripts/kafka.sh start <dir> [port]  start one on 127.0.0.1:<port> (default: a free port, or the
#                                        one it had in <dir>), config, data and logs in <dir>, PID in
#                                        <dir>/kafka.pid; prints `127.0.0.1:<port>` once it answers
#   scripts/kafka.sh stop <dir>          stop the one started in <dir> (by PID)
# `start` again on a <dir> that was stopped restarts the same broker with its data (same cluster
# id, same controller port): tests use stop + start for a broker outage.
# Version: SPILLWAY_KAFKA_VERSION (default below); cache: ${SPILLWAY_CACHE_DIR:-~/.cache/spillway}.
# Topics are not created automatically: clients create theirs (the kafka sink does).
set -euo pipefail
# shellcheck source=scripts/service-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/service-lib.sh"

KAFKA_VERSION="${SPILLWAY_KAFKA_VERSION:-4.4.0}"
# The slf4j → log4j2 binding the broker's own pom leaves to the distribution (the broker logs
# through slf4j 1.7; without it the log is silent and `start` cannot see the broker start).
LOG4J_VERSION="2.25.5"
DEPENDENCY_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
CACHE_DIR="${SPILLWAY_CACHE_DIR:-$HOME/.cache/spillway}/kafka-$KAFKA_VERSION"
LIBS="$CACHE_DIR/libs"

ensure() {
  [ -f "$LIBS/.complete" ] && command -v java >/dev/null 2>&1 && return 0
  apt_install java default-jre-headless
  apt_install mvn maven
  mkdir -p "$CACHE_DIR"
  # One fetch at a time (test files may start brokers in parallel); the others wait for it.
  exec 9>"$CACHE_DIR/.lock"
  flock 9
  if [ ! -f "$LIBS/.complete" ]; then
    local work
    work="$(mktemp -d "$CACHE_DIR/fetch.XXXXXX")"
    cat >"$work/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>spillway</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
    echo "fetching Apache Kafka $KAFKA_VERSION from Maven Central into $LIBS" >&2
    if ! mvn -B -q -f "$work/pom.xml" "$DEPENDENCY_PLUGIN:copy-dependencies" \
      -DincludeScope=runtime -DoutputDirectory="$work/libs" >"$work/mvn.log" 2>&1; then
      cat "$work/mvn.log" >&2
      rm -rf "$work"
      echo "could not fetch Apache Kafka $KAFKA_VERSION with mvn" >&2
      return 1
    fi
    rm -rf "$LIBS"
    mv "$work/libs" "$LIBS"
    touch "$LIBS/.complete"
    rm -rf "$work"
  fi
  exec 9>&-
}


write_config() {
  local dir="$1" port="$2" controller_port="$3"
  cat >"$dir/server.properties" <<EOF
node.id=1
process.roles=broker,controller
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
controller.quorum.voters=1@127.0.0.1:$controller_port
log.dirs=$dir/data
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
log.retention.hours=24
EOF
  cat >"$dir/log4j2.properties" <<EOF
status = error
appender.file.type = File
appender.file.name = file
appender.file.fileName = $dir/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF
}

start() {
  local dir="${1:?usage: kafka.sh start <dir> [port]}" port="${2:-}"
  ensure
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  [ -n "$port" ] || port="$(cat "$dir/port" 2>/dev/null || true)"
  if [ -f "$dir/kafka.pid" ] && kill -0 "$(cat "$dir/kafka.pid")" 2>/dev/null; then
    if [ "$port" = "$(cat "$dir/port")" ]; then
      echo "127.0.0.1:$port" # already running
      return 0
    fi
    echo "a broker already runs in $dir (port $(cat "$dir/port")); stop it first" >&2
    return 1
  fi
  [ -n "$port" ] || port="$(free_port)"
  local controller_port
  controller_port="$(cat "$dir/controller-port" 2>/dev/null || true)"
  [ -n "$controller_port" ] || controller_port="$(free_port)"
  echo "$port" >"$dir/port"
  echo "$controller_port" >"$dir/controller-port"
  write_config "$dir" "$port" "$controller_port"
  local classpath="$LIBS/*"
  local jvm=(-Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$dir/log4j2.properties")
  if [ ! -f "$dir/data/meta.properties" ]; then
    local cluster_id
    # 16 random bytes, base64url (Kafka's Uuid), not starting with '-' (the tool would take it for an option).
    cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
    cluster_id="${cluster_id/#-/A}"
    if ! java -Xmx256m -cp "$classpath" -Dlog4j2.configurationFile="$dir/log4j2.properties" \
      kafka.tools.StorageTool format --cluster-id "$cluster_id" --config "$dir/server.properties" \
      >"$dir/format.log" 2>&1; then
      cat "$dir/format.log" >&2
      return 1
    fi
  fi
  local log="$dir/server.log" seen=0
  [ -f "$log" ] && seen="$(stat -c %s "$log")"
  # Its own session, so the caller's Ctrl-C or process group kill does not reach it.
  setsid java "${jvm[@]}" -cp "$classpath" kafka.Kafka "$dir/server.properties" \
    >>"$dir/stdout.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$dir/kafka.pid"
  for _ in $(seq 1 600); do
    if tail -c +"$((seen + 1))" "$log" 2>/dev/null | grep -q 'Kafka Server started' &&
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "127.0.0.1:$port"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "kafka exited; see $dir/server.log and $dir/stdout.log" >&2
      tail -n 20 "$log" "$dir/stdout.log" >&2 2>/dev/null || true
      rm -f "$dir/kafka.pid"
      return 1
    fi
    sleep 0.1
  done
  echo "kafka did not start on 127.0.0.1:$port within 60 s; see $dir/server.log" >&2
  return 1
}

stop() {
  stop_pidfile "${1:?usage: kafka.sh stop <dir>}/kafka.pid" 400
}

case "${1:-}" in
  ensure) ensure ;;
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  *) echo "usage: $0 ensure | start <dir> [port] | stop <dir>" >&2; exit 2 ;;
esac
