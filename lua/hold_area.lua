--[[
  hold_area.lua: hold `quantity` places of ONE shard of a general-admission area, any free ones,
  for a hold id until an absolute expiry; all or nothing.

  A general-admission area (a standing floor) is opened as several shard sections
  `ga.<area>.<i>`, each a slot of its own with its share of the capacity as anonymous places
  `ga.<area>.<i>-<n>`: a hot floor spreads over the cluster instead of pinning one primary, and
  a place, once held, is a seat like any other (released, pinned, sold, audited by the same
  scripts). The caller tries the shards one by one from one chosen by the hold id and stops at
  the first with room. Postgres sells a place at most once (its unique constraint on sold seats),
  and there are exactly `capacity` places: no more than the capacity can ever be sold.

  KEYS[1..7] as hold.lua: inv, held, holder, sold, blocked, ver, audit   seat:{ev:E:sec:S}:...
  ARGV[1]  hold_id
  ARGV[2]  expires_ms       absolute expiry, unix ms (decided by hold_begin.lua)
  ARGV[3]  actor            who asks, for the audit trail
  ARGV[4]  deadline_ms      0, or the last instant the attempt may take places (hold.lua ARGV[5])
  ARGV[5]  quantity         how many places, at least 1

  Returns  {0, newly_held, version, seat_id, ...}   the places now held by hold_id
           {-3, now_ms}     expires_ms is not in the future; nothing written
           {-4}             the shard has no inventory (event not open); nothing written
           {-5, now_ms}     past deadline_ms; nothing written
           {-6, free}       fewer than `quantity` places free in this shard (`free` are); nothing
                            written

  What it gives up: a retry that takes over a dead attempt picks places afresh; places the dead
  attempt took stay held under the same hold id until their expiry (bounded by the TTL).
  Cluster: all KEYS share the hash tag {ev:E:sec:S}.   Clock: redis TIME.
]]
--@include time.lua
--@include audit.lua
local inv, held, holder, sold, blocked, ver, audit = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local hold_id, expires_ms, actor = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local deadline, quantity = tonumber(ARGV[4]), tonumber(ARGV[5])

local now = now_ms()
if expires_ms <= now then
  return {-3, now}
end
if deadline > 0 and now > deadline then
  return {-5, now}
end
local capacity = redis.call('SCARD', inv)
if capacity == 0 then
  return {-4}
end

-- Free by the counts (O(log N)), as snapshot.lua counts them.
local free = capacity - redis.call('ZCOUNT', held, '(' .. now, '+inf') - redis.call('HLEN', sold)
  - redis.call('HLEN', blocked)
if free < quantity then
  return {-6, math.max(free, 0)}
end

local function is_free(seat)
  if redis.call('HEXISTS', sold, seat) == 1 or redis.call('HEXISTS', blocked, seat) == 1 then
    return false
  end
  local score = redis.call('ZSCORE', held, seat)
  return not score or tonumber(score) <= now
end

-- A random sample finds free places at once while the shard has many; a full scan finds the
-- last ones (only near the sell-out, and a shard is a few thousand places at most).
local picked, seen = {}, {}
for _, seat in ipairs(redis.call('SRANDMEMBER', inv, math.min(capacity, quantity * 8 + 16))) do
  if #picked < quantity and not seen[seat] and is_free(seat) then
    seen[seat] = true
    picked[#picked + 1] = seat
  end
end
local cursor = '0'
while #picked < quantity do
  local page = redis.call('SSCAN', inv, cursor, 'COUNT', 512)
  cursor = page[1]
  for _, seat in ipairs(page[2]) do
    if #picked < quantity and not seen[seat] and is_free(seat) then
      seen[seat] = true
      picked[#picked + 1] = seat
    end
  end
  if cursor == '0' then
    break
  end
end
if #picked < quantity then
  return {-6, #picked}
end

for _, seat in ipairs(picked) do
  local previous = redis.call('HGET', holder, seat)
  if previous then
    audit_add(audit, 'expired', previous, 'system:expiry', redis.call('ZSCORE', held, seat) or now, seat)
  end
  redis.call('ZADD', held, expires_ms, seat)
  redis.call('HSET', holder, seat, hold_id)
end
audit_add(audit, 'held', hold_id, actor, now, table.concat(picked, ' '))
local version = redis.call('INCR', ver)
return {0, #picked, version, unpack(picked)}
