-- One event per request, each with a unique event_id (thread id + counter), like distinct clients.
local counter = 0
local tid = 0
local now = os.time() - 60
setup = function(thread) thread:set("tid", math.random(1, 1e9)) end
init = function() tid = tid end
request = function()
  counter = counter + 1
  local body = string.format(
    '{"event_id":"%d-%d","event_name":"bench_single","channel":"web","campaign_id":"cmp_1","user_id":"user_%d","timestamp":%d,"tags":["a","b"],"metadata":{"product_id":"prod-789","price":129.99}}',
    tid, counter, counter % 100000, now)
  return wrk.format("POST", wrk.path, {["Content-Type"] = "application/json"}, body)
end
