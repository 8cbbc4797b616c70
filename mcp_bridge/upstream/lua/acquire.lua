-- Acquire one Core API request slot for one account. Atomic; Redis TIME is the only clock.
--
-- KEYS[1] log      sorted set: the requests of the rolling window (member = call id)
-- KEYS[2] bg       sorted set: the background requests among them
-- KEYS[3] block    string: upstream said 429, nobody starts a request before this time (µs)
-- KEYS[4] waiters  sorted set: callers sleeping until a slot frees (score = give-up time)
-- KEYS[5] usage    hash: per-minute counters (usage.lua)
-- KEYS[6] generation  string, present while this Redis keeps the account's window; its
--                     value: until when a lost window holds the account back (µs, 0: never)
-- KEYS[7..]  sorted sets: budgets inside the account's limit (e.g. one Open API site, one
--            subscriber), each with its cap in ARGV[12..]; a request is granted only if it
--            fits the account AND every budget, and is then counted in all of them
-- ARGV: cap, window_us, background_cap, background (0/1), call_id, wait_budget_us,
--       already_waited (0/1), usage_ttl_s, hold_us, known (0/1: the caller has been
--       granted or refused requests of this account lately), lost_allowance,
--       budget caps (one per KEYS[7..])
-- Returns {allowed 0/1, remaining, retry_after_us, now_us, window_lost 0/1, limited_by}:
-- limited_by is 0 when allowed or when the account's own limit is what refuses, else the
-- number (1-based) of the budget that refuses longest.
--
-- A request's score is when it last may have reached the upstream: while it is in flight,
-- grant time + hold_us (the longest a request can take to arrive, so a crashed caller
-- still frees its slot); once its answer is back, finish.lua lowers it to that moment.
-- A request is granted at time t only if fewer than `cap` requests score after t - window.
-- Every counted request arrived upstream before its score and the new one arrives after t,
-- so the upstream never sees more than `cap` in any rolling window, whatever the network
-- delays.
local cap = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local bg_cap = tonumber(ARGV[3])
local background = ARGV[4] == '1'
local call_id = ARGV[5]
local budget = tonumber(ARGV[6])
local already_waited = ARGV[7] == '1'
local usage_ttl = tonumber(ARGV[8])
local hold = tonumber(ARGV[9])
local known = ARGV[10] == '1'
local lost_allowance = tonumber(ARGV[11])

local now = redis_now_us()
local minute = math.floor(now / 60000000)

-- A lost window: the generation key is gone although a caller saw the account's state
-- lately, so this Redis restarted without persistence, failed over to a replica that
-- lagged, or was flushed, and forgot requests the upstream still counts. Assume the
-- forgotten window was full (cap requests that reached the upstream just now): until a
-- full window has passed only `lost_allowance` requests start (the safety margin: cap +
-- margin is the upstream's limit). The generation key keeps that moment.
local window_lost = 0
local held_until = tonumber(redis.call('GET', KEYS[6]) or '-1')
if held_until < 0 then
  held_until = 0
  if known then
    window_lost = 1
    held_until = now + window
  end
  redis.call('SET', KEYS[6], string.format('%d', held_until), 'EX', usage_ttl)
else
  redis.call('EXPIRE', KEYS[6], usage_ttl)
end
local limit = cap  -- what may start now: cap, or the allowance while held back
if held_until > now then
  limit = math.min(cap, lost_allowance)
end

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
local count = redis.call('ZCARD', KEYS[1])
local bg_count = redis.call('ZCARD', KEYS[2])

-- Time until the request that must leave for this one to fit leaves the window: exact for
-- a finished request; for one still in flight, the least it can be (window from now).
local function time_until_below(key, n, limit)
  local entry = redis.call('ZRANGE', key, n - limit, n - limit, 'WITHSCORES')
  return math.min(tonumber(entry[2]) - now, 0) + window
end

local retry = 0
local block_until = tonumber(redis.call('GET', KEYS[3]) or '0')
if block_until > now then
  retry = block_until - now
end
if count >= cap then
  retry = math.max(retry, time_until_below(KEYS[1], count, cap))
end
if count >= limit and held_until > now then
  retry = math.max(retry, held_until - now)  -- the forgotten requests leave the window then
end
if background and bg_count >= bg_cap then
  retry = math.max(retry, time_until_below(KEYS[2], bg_count, bg_cap))
end

-- Budgets: a budget's entry is scored like the account's (grant + hold while in flight,
-- the answer's time once finish.lua has seen it).
local limited_by = 0
local budget_count = #KEYS - 6
for i = 1, budget_count do
  local key = KEYS[6 + i]
  local budget_cap = tonumber(ARGV[11 + i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local n = redis.call('ZCARD', key)
  if n >= budget_cap then
    local wait = time_until_below(key, n, budget_cap)
    if wait > retry then
      retry = wait
      limited_by = i
    end
  end
end

local remaining = limit - count
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
  return {0, math.max(0, remaining), retry, now, window_lost, limited_by}
end

local ttl_ms = math.ceil((hold + window) / 1000) + 1000
redis.call('ZADD', KEYS[1], now + hold, call_id)
redis.call('PEXPIRE', KEYS[1], ttl_ms)
if background then
  redis.call('ZADD', KEYS[2], now + hold, call_id)
  redis.call('PEXPIRE', KEYS[2], ttl_ms)
  usage_bump(KEYS[5], minute, 'b', usage_ttl)
end
for i = 1, budget_count do
  redis.call('ZADD', KEYS[6 + i], now + hold, call_id)
  redis.call('PEXPIRE', KEYS[6 + i], ttl_ms)
end
redis.call('ZREM', KEYS[4], call_id)
usage_bump(KEYS[5], minute, 'c', usage_ttl)
return {1, remaining - 1, 0, now, window_lost, 0}
