#!/bin/bash
# Server CPU per request, every thread, for the bare node:http baseline and for Spillway (durable,
# one process), measured the same way: `spillway load --connections 64 --requests N` against each,
# per-thread CPU (utime+stime) read from /proc before and after. Linux only.
#   bash bench/cpu-per-request.sh [requests=200000] [serve flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PWD/node_modules/.bin:$PATH
n=${1:-200000}; shift || true
data=$(mktemp -d)
trap 'kill $SP 2>/dev/null || true; rm -rf "$data"' EXIT

threads() { # pid -> "thread-name ticks" summed by name
  for t in /proc/$1/task/*; do
    read -r line < "$t/stat"; name=$(cat "$t/comm"); set -- ${line#*) }; echo "$name $(( ${12} + ${13} ))"
  done | awk '{a[$1]+=$2} END {for (k in a) print k, a[k]}' | sort
}

measure() { # label url pid
  node src/cli/main.ts load --url "$2" --connections 64 --requests 20000 --quiet > /dev/null
  threads "$3" > "$data/a"
  node src/cli/main.ts load --url "$2" --connections 64 --requests "$n" --quiet > /dev/null
  sleep 0.5
  threads "$3" > "$data/b"
  echo "$1"
  join "$data/a" "$data/b" | awk -v n="$n" '{ d = ($3 - $2) * 10000 / n; tot += d; if (d >= 0.05) printf "  %-18s %6.1f us/req\n", $1, d } END { printf "  TOTAL              %6.1f us/req\n", tot }'
}

PORT=18082 node bench/baseline-server.ts > "$data/bare.log" 2>&1 & SP=$!
sleep 1
measure "bare node:http (bench/baseline-server.ts)" http://127.0.0.1:18082 $SP
kill $SP; wait $SP 2>/dev/null || true

node src/cli/main.ts serve --workers 1 --data-dir "$data/spillway" --http-port 18081 --metrics-port 0 --log-level warn "$@" > "$data/serve.log" 2>&1 & SP=$!
for _ in $(seq 50); do curl -sf localhost:18081/health > /dev/null && break; sleep 0.2; done
measure "Spillway serve --workers 1 $*" http://127.0.0.1:18081 $SP
