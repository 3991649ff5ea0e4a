/**
 * The Lua scripts behind per-tenant limits. Unlike the other scripts, these read the server's
 * clock (`TIME`), not the caller's: every gateway's takes meet in one bucket, and a refill
 * measured from one gateway's take to another's on their own clocks would hand out the skew
 * between them as tokens (or withhold it). `now` is whole epoch ms, as the SQLite store's
 * `Date.now()`. A capped set's expiries are still the callers' times (the gateway says how long
 * a place is held), compared with the server's clock, so a skewed gateway's places last a
 * little more or less; keep the clocks in sync. TIME may precede writes in a script since
 * Redis 5 (effects replication), which is all Redis 7 does.
 */

/**
 * Take one token from every bucket, or from none. KEYS: the buckets' hashes ({tokens, ts}).
 * ARGV: rate per second and burst for each key, in order (both already 0 or more). Returns
 * 1 or 0 (taken from all, or from none), then each bucket's tokens after, as text so that
 * fractions survive (Redis would truncate a Lua number to an integer).
 *
 * The arithmetic is token-bucket.ts's, operation for operation, so both stores answer alike: a
 * bucket without a hash is full; tokens refill at the rate, never past the burst (so a lowered
 * burst clamps an old count). A bucket taken from expires when it would be full again, and
 * so the same as a missing one; one that never refills (rate 0) is kept.
 */
export const takeTokensLua = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tokens = {}
local allowed = 1
for i, key in ipairs(KEYS) do
  local rate, burst = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local level = burst
  local held = redis.call('HMGET', key, 'tokens', 'ts')
  if held[1] then
    local elapsed = math.max(0, now - tonumber(held[2]))
    level = math.min(burst, tonumber(held[1]) + elapsed * rate / 1000)
  end
  if level < 1 then allowed = 0 end
  tokens[i] = level
end
if allowed == 1 then
  for i, key in ipairs(KEYS) do
    local rate, burst = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
    tokens[i] = tokens[i] - 1
    redis.call('HSET', key, 'tokens', string.format('%.17g', tokens[i]), 'ts', string.format('%d', now))
    if rate > 0 then
      redis.call('PEXPIRE', key, math.max(1, math.ceil((burst - tokens[i]) * 1000 / rate)))
    else
      redis.call('PERSIST', key)
    end
  end
end
local out = {allowed}
for i = 1, #KEYS do out[i + 1] = string.format('%.17g', tokens[i]) end
return out
`;

/**
 * Join a capped set. KEYS[1]: the set, a sorted set of members scored by the epoch ms at which
 * each stops counting. ARGV: member, cap, expires at. Drops the expired members first, so a
 * gateway that died holding places frees them; a live member that joins again gets its new
 * expiry, full set or not. The set expires with its last member, so one nobody uses any more
 * disappears. Returns {1 or 0 (joined or not), live members now}.
 */
export const joinCappedLua = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local joined = 0
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  joined = 1
end
local size = redis.call('ZCARD', KEYS[1])
if size > 0 then
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil(tonumber(last[2]) - now)))
end
return {joined, size}
`;
