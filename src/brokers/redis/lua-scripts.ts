/**
 * Server-side steps that must not interleave with other clients' commands. Redis runs a script
 * atomically, so a check and the write that depends on it cannot be split by another consumer.
 */

/**
 * KEYS[1] stream; ARGV group, owner, new owner, idle ms, ids…. Resets the idle time of the ids
 * this owner still holds (moving them to `new owner`) and returns those ids. The ownership check
 * keeps a subscriber that stalled past its lease from taking back an entry another consumer has
 * already reclaimed. JUSTID: the delivery counter is left alone (XCLAIM's documented behaviour
 * with JUSTID), so renewing a lease never counts as a delivery.
 */
export const resetIdleScript = `
local owned = {}
for i = 5, #ARGV do
  local row = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)[1]
  if row and row[2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, ARGV[i], 'IDLE', ARGV[4], 'JUSTID')
    owned[#owned + 1] = ARGV[i]
  end
end
return owned`;

/**
 * KEYS[1] stream; ARGV group, consumer. Deletes the consumer only if it holds nothing:
 * XGROUP DELCONSUMER drops the consumer's pending entries, which would then never come back.
 */
export const deleteIdleConsumerScript = `
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) == 0 then
  return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
end
return -1`;

/**
 * KEYS[1] stream; ARGV[1] the newest time (ms) an entry may be from to be dropped. The trim that
 * works on every Redis with streams: drop entries below the smallest of, for each group, its
 * oldest pending id and the id just after its last delivered one. Everything below that is acked
 * by every group; nothing at or above it is dropped. A stream with no group keeps everything
 * (nobody has read it yet). Returns the entries dropped.
 */
export const safeTrimScript = `
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
if #groups == 0 then return 0 end
local bestMs, bestSeq = tonumber(ARGV[1]), 0
local function consider(ms, seq)
  if ms < bestMs or (ms == bestMs and seq < bestSeq) then bestMs, bestSeq = ms, seq end
end
for _, flat in ipairs(groups) do
  local g = {}
  for i = 1, #flat, 2 do g[flat[i]] = flat[i + 1] end
  local ms, seq = string.match(g['last-delivered-id'], '^(%d+)-(%d+)$')
  consider(tonumber(ms), tonumber(seq) + 1)
  if g['pending'] > 0 then
    local oldest = redis.call('XPENDING', KEYS[1], g['name'])[2]
    local pms, pseq = string.match(oldest, '^(%d+)-(%d+)$')
    consider(tonumber(pms), tonumber(pseq))
  end
end
return redis.call('XTRIM', KEYS[1], 'MINID', string.format('%.0f-%.0f', bestMs, bestSeq))`;

/**
 * KEYS[1] stream; ARGV[1] an id. Counts the entries after it, for a backlog when XINFO GROUPS
 * cannot give a lag (deleted entries after the group's position). Pages of 1000 keep each
 * XRANGE bounded; the loop runs inside Redis so no entry's value crosses the network.
 */
export const countAfterScript = `
local count, from = 0, '(' .. ARGV[1]
while true do
  local page = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', 1000)
  count = count + #page
  if #page < 1000 then return count end
  from = '(' .. page[#page][1]
end`;

/**
 * KEYS[1] stream; ARGV group, id, lease ms, cap. Where the entry `id` stands in the group's queue,
 * counted at one instant (a script runs atomically): `{ahead, exact}`, or nil once the group holds
 * or has acked it (or it is gone). Waiting means, as in the queue stats: after the group's
 * last-delivered id, or pending and idle for a lease or more (nacked with its delay over, or left
 * by a dead consumer). Counting walks the entries in pages inside Redis; past `cap` it stops and
 * says the count is not exact (it is then a lower bound).
 */
export const queuePlaceScript = `
local key, group, id, lease, cap = KEYS[1], ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
if #redis.call('XRANGE', key, id, id) == 0 then return nil end
local function parse(s)
  local ms, seq = string.match(s, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function count(from, to)
  local n = 0
  while n < cap do
    local page = redis.call('XRANGE', key, from, to, 'COUNT', 1000)
    n = n + #page
    if #page < 1000 then return n end
    from = '(' .. page[#page][1]
  end
  return n
end
local function claimable()
  return #redis.call('XPENDING', key, group, 'IDLE', lease, '-', '(' .. id, cap)
end
local last
for _, flat in ipairs(redis.call('XINFO', 'GROUPS', key)) do
  local g = {}
  for i = 1, #flat, 2 do g[flat[i]] = flat[i + 1] end
  if g['name'] == group then last = g['last-delivered-id'] end
end
local ahead
if last == nil then
  ahead = count('-', '(' .. id)
else
  local lms, lseq = parse(last)
  local ims, iseq = parse(id)
  if ims > lms or (ims == lms and iseq > lseq) then
    ahead = count('(' .. last, '(' .. id) + claimable()
  else
    local row = redis.call('XPENDING', key, group, id, id, 1)[1]
    if row == nil or row[3] < tonumber(lease) then return nil end
    ahead = claimable()
  end
end
if ahead >= cap then return {cap, 0} end
return {ahead, 1}`;

// The hand-off over KEYS after the first k0 and ARGV after the first a0 (what a view's chunk took).
const handOffBody = `
local added = {}
local at = a0 + 2
for _ = 1, tonumber(ARGV[a0 + 1]) do
  local n = tonumber(ARGV[at])
  added[#added + 1] = redis.call('XADD', KEYS[k0 + 1], '*', unpack(ARGV, at + 1, at + n))
  at = at + n + 1
end
for k = k0 + 2, #KEYS do
  local group, deletes, n = ARGV[at], ARGV[at + 1], tonumber(ARGV[at + 2])
  local first = at + 3
  local last = first + n - 1
  for from = first, last, 1000 do
    local to = math.min(from + 999, last)
    if deletes == '1' then
      redis.call('XACKDEL', KEYS[k], group, 'ACKED', 'IDS', to - from + 1, unpack(ARGV, from, to))
    else
      redis.call('XACK', KEYS[k], group, unpack(ARGV, from, to))
    end
  end
  at = last + 1
end`;

/**
 * KEYS[1] the results' stream, KEYS[2…] the request streams; ARGV: the number of results, then
 * each result as its field count and fields; then for each request stream its group, whether
 * its acks also delete (`1`: XACKDEL … ACKED), the number of ids and the ids. Returns the ids
 * of the results. A worker's hand-off: the XADDs run first, and an error in one ends the script
 * before any ack, so a request is never acked without its result (the results added before the
 * error stay, and the request runs again). With no request streams it is a publish of several
 * messages. Ids go 1000 at a time: Lua's unpack has a bounded stack.
 */
export const handOffScript = `local k0, a0 = 0, 0${handOffBody}
return added`;

/**
 * handOffScript after a view's chunk (StreamView.lua): KEYS start with the chunk's, ARGV with
 * the number of its keys, the number of its args, and its args; the hand-off's follow. The
 * chunk runs first, with KEYS and ARGV of its own, and an error in it ends the script before
 * anything is added. Returns {the ids added, the chunk's reply}.
 */
export function viewedHandOffScript(viewLua: string): string {
  return `local nk, na = tonumber(ARGV[1]), tonumber(ARGV[2])
local viewed = (function(KEYS, ARGV)
${viewLua}
end)({unpack(KEYS, 1, nk)}, {unpack(ARGV, 3, 2 + na)})
local k0, a0 = nk, 2 + na${handOffBody}
return {added, viewed}`;
}
