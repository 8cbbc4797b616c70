-- A granted request got its answer: its score drops from "in flight" to now (it reached
-- the upstream before this moment), so its slot frees one window from now. Also keeps
-- one latency sample, stamped with its Redis minute, for the per-minute p50/p95 roll-up.
--
-- KEYS[1] log, KEYS[2] bg, KEYS[3] latency list, KEYS[4..] the request's budgets (acquire.lua)
-- ARGV: call_id ('' if unknown), latency_ms, max_samples, ttl_s
local now = redis_now_us()
if ARGV[1] ~= '' then
  for i = 1, #KEYS do
    if i ~= 3 then
      local score = redis.call('ZSCORE', KEYS[i], ARGV[1])
      if score and tonumber(score) > now then
        redis.call('ZADD', KEYS[i], 'XX', now, ARGV[1])
      end
    end
  end
end
redis.call('LPUSH', KEYS[3], string.format('%d:%s', math.floor(now / 60000000), ARGV[2]))
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[3]) - 1)
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[4]))
return now
