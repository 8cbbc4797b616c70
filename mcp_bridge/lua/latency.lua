-- One upstream latency sample, stamped with its Redis minute, newest first; the list is
-- capped and expires, and the per-minute roll-up computes p50/p95 from it.
--
-- KEYS[1] latency list; ARGV: latency_ms, max_samples, ttl_s
local now = redis_now_us()
redis.call('LPUSH', KEYS[1], string.format('%d:%s', math.floor(now / 60000000), ARGV[1]))
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return now
