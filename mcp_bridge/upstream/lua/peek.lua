-- The limiter state of one account, for the dashboard. Writes nothing.
--
-- KEYS: log, bg, block, waiters, usage (as acquire.lua); ARGV[1] window_us
-- Returns {now_us, in_window, background_in_window, oldest_us or -1, block_until_us,
--          waiting, usage hash as a flat list}.
local now = redis_now_us()
local since = '(' .. string.format('%d', now - tonumber(ARGV[1]))
local oldest = redis.call('ZRANGEBYSCORE', KEYS[1], since, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
return {
  now,
  redis.call('ZCOUNT', KEYS[1], since, '+inf'),
  redis.call('ZCOUNT', KEYS[2], since, '+inf'),
  oldest[2] and tonumber(oldest[2]) or -1,
  tonumber(redis.call('GET', KEYS[3]) or '0'),
  redis.call('ZCOUNT', KEYS[4], '(' .. string.format('%d', now), '+inf'),
  redis.call('HGETALL', KEYS[5]),
}
