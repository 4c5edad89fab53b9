--[[
  quota.lua: a buyer's seats for one event (held, pinned and bought together), against the
  event's per-buyer ticket limit. One key per (event, buyer), so the check and the change are one
  atomic step on one slot, whichever sections the seats are in.

  KEYS[1]  holds    ZSET    hold_id -> the hold's expiry, unix ms (+inf once sold)
                                                                     seat:{quota:E:U}:holds
  KEYS[2]  counts   HASH    hold_id -> seats
  ARGV[1]  op               take | extend | sold | release
  ARGV[2]  hold_id
  ARGV[3]  seats            take, sold: how many
  ARGV[4]  expires_ms       take, extend: the hold's expiry
  ARGV[5]  limit            take: the event's per-buyer limit

  Returns  {0, seats_counted}     done (take: the hold's seats are counted; a replay is a no-op)
           {-1, seats_counted}    take: over the limit; nothing written

  Cluster: both KEYS share the hash tag {quota:E:U}.   Clock: redis TIME.
  Holds that expired drop out by their score (purged on every take): no process is needed.
  `sold` writes the count whether or not it was there: the durable writer and the reconciler's
  repair send it for every paid order, so a count lost in a failover (soft state, like a hold)
  is counted again from Postgres and the limit holds after one.
]]
local holds, counts = KEYS[1], KEYS[2]
local op, hold = ARGV[1], ARGV[2]

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local expired = redis.call('ZRANGEBYSCORE', holds, '-inf', now)
if #expired > 0 then
  redis.call('ZREM', holds, unpack(expired))
  redis.call('HDEL', counts, unpack(expired))
end

local function total()
  local sum = 0
  for _, n in ipairs(redis.call('HVALS', counts)) do
    sum = sum + tonumber(n)
  end
  return sum
end

if op == 'take' then
  local seats, expires, limit = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
  if redis.call('ZSCORE', holds, hold) then
    redis.call('ZADD', holds, 'GT', expires, hold)
    return {0, total()}
  end
  local sum = total()
  if sum + seats > limit then
    return {-1, sum}
  end
  redis.call('ZADD', holds, expires, hold)
  redis.call('HSET', counts, hold, seats)
  return {0, sum + seats}
elseif op == 'extend' then
  redis.call('ZADD', holds, 'XX', 'GT', tonumber(ARGV[4]), hold)
elseif op == 'sold' then
  redis.call('ZADD', holds, '+inf', hold)
  redis.call('HSET', counts, hold, tonumber(ARGV[3]))
elseif op == 'release' then
  redis.call('ZREM', holds, hold)
  redis.call('HDEL', counts, hold)
end
return {0, total()}
