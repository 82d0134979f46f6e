-- One event per request, each with a unique event_id (thread id + counter), like distinct clients.
local counter = 0
local now = os.time() - 60
-- Seeded from /dev/urandom: two runs against one server (a warm-up, then the measure) must not
-- repeat ids, or the second would be answered as duplicates or conflicts (409), not stored.
local urandom = io.open("/dev/urandom", "rb")
local b1, b2, b3, b4 = urandom:read(4):byte(1, 4)
urandom:close()
math.randomseed(((b1 * 256 + b2) * 256 + b3) * 256 + b4)
-- `tid` is a global of the thread's state, set here (a local of that name hid it: every id was 0-n).
setup = function(thread) thread:set("tid", math.random(1, 1e9)) end
request = function()
  counter = counter + 1
  local body = string.format(
    '{"event_id":"%d-%d","event_name":"bench_single","channel":"web","campaign_id":"cmp_1","user_id":"user_%d","timestamp":%d,"tags":["a","b"],"metadata":{"product_id":"prod-789","price":129.99}}',
    tid, counter, counter % 100000, now)
  return wrk.format("POST", wrk.path, {["Content-Type"] = "application/json"}, body)
end
