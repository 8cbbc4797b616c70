-- Acquire one Core API request slot for one account. Atomic; Redis TIME is the only clock.
--
-- KEYS[1] log      sorted set: every grant in the rolling window (score = grant time, µs)
-- KEYS[2] bg       sorted set: the background grants among them
-- KEYS[3] block    string: upstream said 429, nobody starts a request before this time (µs)
-- KEYS[4] waiters  sorted set: callers sleeping until a slot frees (score = give-up time)
-- KEYS[5] usage    hash: per-minute counters (usage.lua)
-- ARGV: cap, window_us, background_cap, background (0/1), call_id, wait_budget_us,
--       already_waited (0/1), usage_ttl_s
-- Returns {allowed 0/1, remaining, retry_after_us, now_us}.
--
-- The guarantee: a grant at time t happens only if fewer than `cap` grants lie in
-- (t - window, t], so no rolling window of any alignment ever holds more than `cap`.
local cap = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local bg_cap = tonumber(ARGV[3])
local background = ARGV[4] == '1'
local call_id = ARGV[5]
local budget = tonumber(ARGV[6])
local already_waited = ARGV[7] == '1'
local usage_ttl = tonumber(ARGV[8])

local now = redis_now_us()
local minute = math.floor(now / 60000000)

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
local count = redis.call('ZCARD', KEYS[1])
local bg_count = redis.call('ZCARD', KEYS[2])

-- Exact time until the entry that must leave for this request to fit leaves the window.
local function time_until_below(key, n, limit)
  local entry = redis.call('ZRANGE', key, n - limit, n - limit, 'WITHSCORES')
  return tonumber(entry[2]) + window - now
end

local retry = 0
local block_until = tonumber(redis.call('GET', KEYS[3]) or '0')
if block_until > now then
  retry = block_until - now
end
if count >= cap then
  retry = math.max(retry, time_until_below(KEYS[1], count, cap))
end
if background and bg_count >= bg_cap then
  retry = math.max(retry, time_until_below(KEYS[2], bg_count, bg_cap))
end

local remaining = cap - count
if background then
  remaining = math.min(remaining, bg_cap - bg_count)
end

if retry > 0 then
  if retry <= budget then
    -- The caller will sleep and ask again: show it as waiting until it gives up.
    redis.call('ZADD', KEYS[4], now + retry + 2000000, call_id)
    local last = redis.call('ZRANGE', KEYS[4], -1, -1, 'WITHSCORES')
    redis.call('PEXPIREAT', KEYS[4], math.ceil(tonumber(last[2]) / 1000) + 1000)
    if not already_waited then
      usage_bump(KEYS[5], minute, 'w', usage_ttl)
    end
  else
    redis.call('ZREM', KEYS[4], call_id)
    usage_bump(KEYS[5], minute, 'r', usage_ttl)
  end
  return {0, math.max(0, remaining), retry, now}
end

local ttl_ms = math.ceil(window / 1000) + 1000
redis.call('ZADD', KEYS[1], now, call_id)
redis.call('PEXPIRE', KEYS[1], ttl_ms)
if background then
  redis.call('ZADD', KEYS[2], now, call_id)
  redis.call('PEXPIRE', KEYS[2], ttl_ms)
  usage_bump(KEYS[5], minute, 'b', usage_ttl)
end
redis.call('ZREM', KEYS[4], call_id)
usage_bump(KEYS[5], minute, 'c', usage_ttl)
return {1, remaining - 1, 0, now}
