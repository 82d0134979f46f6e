-- NDJSON batches of BATCH events (default 1000), each event with a unique event_id.
local counter = 0
local batch = tonumber(os.getenv("BATCH") or "1000")
local now = os.time() - 60
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
    lines[i] = string.format(
      '{"event_id":"%d-%d-%d","event_name":"bench_batch","channel":"web","campaign_id":"cmp_1","user_id":"user_%d","timestamp":%d,"tags":["a","b"],"metadata":{"product_id":"prod-789","price":129.99}}',
      tid, counter, i, (counter * batch + i) % 100000, now)
  end
  return wrk.format("POST", wrk.path, {["Content-Type"] = "application/x-ndjson"}, table.concat(lines, "\n"))
end
