/**
 * The Lua scripts of the Redis store. Each runs as one command (Redis executes a script without
 * interleaving any other client's command), which is what makes a check and the write that
 * depends on it atomic across every gateway and dispatcher sharing the server. They are sent
 * with EVALSHA through ioredis `defineCommand`, which falls back to EVAL when the server does not
 * know the script (NOSCRIPT, as after a restart).
 *
 * Times (`now`) come from the caller, as in the SQLite store: deliveries' due times are set by
 * the dispatchers' clocks already, and a script calling TIME would mix two clocks. The limit
 * scripts (limit-scripts.ts) are the exception: a bucket's refill is measured from one take to
 * the next, possibly by two gateways, so they read the server's clock, one for every gateway.
 */

/**
 * A stored record is `<rank> <attempts> <record JSON>`: the supersede rule needs only rank and
 * attempts, so the script reads them off the head of the value instead of decoding the JSON,
 * and a write stays one SET with PX.
 *
 * KEYS: the records' keys. ARGV: retention ms, then rank, progress (storeProgress()), value for each key.
 * Returns 1 or 0 per key: written (it superseded the stored record) or not. Keys are handled in
 * order, so a record repeated in one batch is written once.
 */
export const putRecordsLua = `
local written = {}
for i, key in ipairs(KEYS) do
  local base = 1 + (i - 1) * 3
  local rank = tonumber(ARGV[base + 1])
  local attempts = tonumber(ARGV[base + 2])
  local current = redis.call('GET', key)
  local write = true
  if current then
    local r, a = string.match(current, '^(%d+) (%d+) ')
    r = tonumber(r)
    a = tonumber(a)
    -- rank = generation * 3 + status rank, so rank % 3 == 1 is "running" (storeRank()).
    write = rank > r or (rank == r and rank % 3 == 1 and attempts > a)
  end
  if write then
    redis.call('SET', key, ARGV[base + 3], 'PX', ARGV[1])
    written[i] = 1
  else
    written[i] = 0
  end
end
return written
`;

/**
 * KEYS[1]: the idempotency key. ARGV: the claim's value (JSON), retention ms.
 * Returns nil if the key was free and is now held for this claim, else the holder's value.
 */
export const claimKeyLua = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return nil
end
return redis.call('GET', KEYS[1])
`;

/** KEYS[1]: the idempotency key. ARGV[1]: the prediction id. Deletes it only if held for that id. */
export const releaseKeyLua = `
local held = redis.call('GET', KEYS[1])
if held and cjson.decode(held).id == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`;

/**
 * Callback keys share the hash tag of the due set (see keys.ts): the scripts below name delivery
 * keys they read from that set, which a cluster allows only within one slot.
 *
 * Enqueue. KEYS[1]: the due set. ARGV: now, retention ms, delivery key prefix, index key prefix,
 * then webhookId, predictionId, event, url, body, has tenant (1 or 0), tenant, has traceparent (1
 * or 0), traceparent for each delivery. A delivery without a tenant or traceparent has no such
 * field (as those enqueued before either existed).
 * Returns how many were new.
 */
export const enqueueCallbacksLua = `
local now, retention = ARGV[1], ARGV[2]
local new = 0
for i = 5, #ARGV, 9 do
  local webhookId, predictionId = ARGV[i], ARGV[i + 1]
  local key = ARGV[3] .. webhookId
  if redis.call('EXISTS', key) == 0 then
    redis.call('HSET', key, 'prediction_id', predictionId, 'event', ARGV[i + 2], 'url', ARGV[i + 3],
      'body', ARGV[i + 4], 'attempts', 0, 'state', 'pending', 'next_attempt_at', now, 'lease_until', 0,
      'created_at', now)
    if ARGV[i + 5] == '1' then redis.call('HSET', key, 'tenant', ARGV[i + 6]) end
    if ARGV[i + 7] == '1' then redis.call('HSET', key, 'traceparent', ARGV[i + 8]) end
    redis.call('PEXPIRE', key, retention)
    redis.call('ZADD', KEYS[1], now, webhookId)
    local index = ARGV[4] .. predictionId
    redis.call('ZADD', index, now, webhookId)
    redis.call('PEXPIRE', index, retention)
    new = new + 1
  end
end
return new
`;

/**
 * Claim. KEYS[1]: the due set, scored by when each pending delivery may next be claimed (its
 * next attempt, or the end of its lease). ARGV: now, limit, lease until, lease token, delivery
 * key prefix. Leases up to `limit` due deliveries and returns, flat, for each: webhookId,
 * predictionId, event, url, body, attempts, tenant, traceparent (each nil without one). A member whose delivery
 * expired is dropped.
 */
export const claimCallbacksLua = `
local now, limit, leaseUntil, token = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]
local claimed = {}
local taken = 0
while taken < limit do
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit - taken)
  if #due == 0 then break end
  for _, webhookId in ipairs(due) do
    local key = ARGV[5] .. webhookId
    local d = redis.call('HMGET', key, 'state', 'lease_until', 'prediction_id', 'event', 'url', 'body', 'attempts', 'tenant', 'traceparent')
    if d[1] == 'pending' and tonumber(d[2]) <= now then
      redis.call('HSET', key, 'lease_until', leaseUntil, 'lease_token', token)
      redis.call('ZADD', KEYS[1], leaseUntil, webhookId)
      table.insert(claimed, webhookId)
      -- HMGET gives false for a missing field (no tenant): kept in place, sent as nil.
      for f = 3, 9 do table.insert(claimed, d[f]) end
      taken = taken + 1
    elseif d[1] == 'pending' then
      redis.call('ZADD', KEYS[1], d[2], webhookId)
    else
      -- Expired, or no longer pending: nothing to send.
      redis.call('ZREM', KEYS[1], webhookId)
    end
  end
end
return claimed
`;

/**
 * Record an attempt. KEYS[1]: the delivery, KEYS[2]: the due set. ARGV: webhookId, lease token,
 * state, next attempt at, then field, value pairs of the outcome's last_status, last_error and
 * delivered_at that it has (those it lacks are cleared). Returns 1, or 0 if the token no longer
 * holds the lease.
 */
export const recordAttemptLua = `
if redis.call('HGET', KEYS[1], 'lease_token') ~= ARGV[2] then return 0 end
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HDEL', KEYS[1], 'lease_token', 'last_status', 'last_error', 'delivered_at')
redis.call('HSET', KEYS[1], 'state', ARGV[3], 'next_attempt_at', ARGV[4], 'lease_until', 0, unpack(ARGV, 5))
if ARGV[3] == 'pending' then
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
else
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return 1
`;

/** Resend. KEYS[1]: the delivery, KEYS[2]: the due set. ARGV: webhookId, now. 1 if it was dead. */
export const resendCallbackLua = `
if redis.call('HGET', KEYS[1], 'state') ~= 'dead' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'pending', 'attempts', 0, 'next_attempt_at', ARGV[2], 'lease_until', 0)
redis.call('HDEL', KEYS[1], 'lease_token')
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
`;

/**
 * List. KEYS[1]: the prediction's index. ARGV[1]: delivery key prefix. Returns, flat, for each
 * delivery still kept, oldest first: webhookId, event, state, attempts, last_status, last_error,
 * delivered_at, next_attempt_at (nil for a missing field). One script, so the list is one
 * consistent read.
 */
export const listCallbacksLua = `
local out = {}
for _, webhookId in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local d = redis.call('HMGET', ARGV[1] .. webhookId, 'event', 'state', 'attempts', 'last_status', 'last_error', 'delivered_at', 'next_attempt_at')
  if d[1] then
    table.insert(out, webhookId)
    -- HMGET gives false for a missing field: kept in place (a nil would end the table), sent as nil.
    for f = 1, 7 do table.insert(out, d[f]) end
  end
end
return out
`;

/**
 * Put an API key. KEYS[1]: its hash, KEYS[2]: the index of ids by creation time. ARGV: id,
 * creation epoch ms, then field, value pairs (api-key-fields.ts). The hash is replaced whole, so
 * a field the new version lacks (a name removed) is gone, and the index entry moves with a
 * changed creation time. Neither key has a TTL: keys outlive the record retention.
 */
export const putApiKeyLua = `
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
`;

/**
 * List API keys. KEYS[1]: the index. ARGV[1]: key hash prefix. Returns each key's fields
 * (HGETALL's flat field, value list), oldest first, ties by id; one consistent read.
 */
export const listApiKeysLua = `
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local fields = redis.call('HGETALL', ARGV[1] .. id)
  if #fields > 0 then table.insert(out, fields) end
end
return out
`;
