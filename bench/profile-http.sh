#!/bin/bash
# A CPU profile of one Spillway process under a closed loop: the server runs with `node --cpu-prof`,
# wrk sends single events (or NDJSON batches) for 10 s, and the profiles (one per thread) land in
# OUT_DIR, to open in Chrome DevTools or any .cpuprofile viewer.
#   bash bench/profile-http.sh OUT_DIR [single|batch] [serve flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PWD/node_modules/.bin:$PATH
out=${1:?usage: bash bench/profile-http.sh OUT_DIR [single|batch] [serve flags...]}; shift
kind=${1:-single}; shift || true
bash scripts/ensure-wrk.sh > /dev/null
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
mkdir -p "$out"
node --cpu-prof --cpu-prof-dir="$out" src/cli/main.ts serve --workers 1 --data-dir "$data" \
  --http-port 18096 --metrics-port 0 --log-level warn "$@" > "$data/serve.log" 2>&1 &
SP=$!
for _ in $(seq 50); do curl -sf localhost:18096/health > /dev/null && break; sleep 0.2; done
if [ "$kind" = batch ]; then
  wrk -t1 -c8 -d10s -s bench/wrk/ndjson-batch.lua http://127.0.0.1:18096/events/batch | grep "requests in"
else
  wrk -t1 -c64 -d10s -s bench/wrk/single-event.lua http://127.0.0.1:18096/events | grep "requests in"
fi
kill -INT $SP; wait $SP 2>/dev/null || true
ls -S "$out"/*.cpuprofile
