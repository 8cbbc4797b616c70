-- Per-account usage counters: a ring of per-minute slots in one hash (KEYS declared by
-- the caller, so the script stays Redis Cluster safe). Slot s holds minute m when field
-- "m<s>" = m; counters: c calls, b background calls, w waits, r rejections,
-- u upstream 429s. A slot reused for a newer minute is reset first.
local USAGE_SLOTS = 120

local function usage_bump(key, minute, kind, ttl)
  local slot = minute % USAGE_SLOTS
  local mark = 'm' .. slot
  if tonumber(redis.call('HGET', key, mark) or '-1') ~= minute then
    redis.call('HDEL', key, 'c' .. slot, 'b' .. slot, 'w' .. slot, 'r' .. slot, 'u' .. slot)
    redis.call('HSET', key, mark, minute)
  end
  redis.call('HINCRBY', key, kind .. slot, 1)
  redis.call('EXPIRE', key, ttl)
end

local function redis_now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
