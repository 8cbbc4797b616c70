-- The upstream answered 429 although the limiter granted the request (another client
-- shares the API key, or clocks disagree): block the account until its Retry-After, so
-- every process pauses at once.
--
-- KEYS[1] block, KEYS[2] usage; ARGV: retry_after_us, usage_ttl_s
-- Returns the block's end (µs).
local now = redis_now_us()
local retry = tonumber(ARGV[1])
local until_us = now + retry
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_us > current then
  redis.call('SET', KEYS[1], string.format('%d', until_us), 'PX', math.max(1, math.ceil(retry / 1000)))
else
  until_us = current
end
usage_bump(KEYS[2], math.floor(now / 60000000), 'u', tonumber(ARGV[2]))
return until_us
