-- NDJSON batches of BATCH events (default 1000) for the ClickHouse benchmark: unique event_ids,
-- five channels, 100k users, timestamps spread over the last 24 hours (live traffic: one or two
-- day partitions per insert, 24 hour groups). RUN prefixes the ids: wrk does not seed its random
-- numbers, so two runs would otherwise send the same ids.
local counter = 0
local run = os.getenv("RUN") or "run"
local batch = tonumber(os.getenv("BATCH") or "1000")
local now = os.time() - 60
local channels = {"web", "mobile", "api", "email", "push"}
-- Seeded from /dev/urandom, so two runs against one server do not repeat ids.
local urandom = io.open("/dev/urandom", "rb")
local b1, b2, b3, b4 = urandom:read(4):byte(1, 4)
urandom:close()
math.randomseed(((b1 * 256 + b2) * 256 + b3) * 256 + b4)
setup = function(thread) thread:set("tid", math.random(1, 1e9)) end
request = function()
  counter = counter + 1
  local lines = {}
  for i = 1, batch do
    local n = counter * batch + i
    lines[i] = string.format(
      '{"event_id":"%s-%d-%d-%d","event_name":"bench_clickhouse","channel":"%s","campaign_id":"cmp_%d","user_id":"user_%d","timestamp":%d,"tags":["a","b"],"metadata":{"product_id":"prod-%d","price":129.99}}',
      run, tid, counter, i, channels[n % 5 + 1], n % 50, (n * 7919) % 100000, now - (n * 37) % 86400, n % 1000)
  end
  return wrk.format("POST", wrk.path, {["Content-Type"] = "application/x-ndjson"}, table.concat(lines, "\n"))
end
