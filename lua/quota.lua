--[[
  quota.lua: a sale's seats counted against its buyer's ticket limit for good, or no longer, when
  Postgres says so and the hold's record may not (the reconciler's repair after a failover, a
  refund). The everyday changes of the count happen with the hold's own transitions
  (hold_begin.lua, hold_settle.lua, hold_transition.lua).

  KEYS[1]  live_counts ZSET live holds counted against their buyer's limit (hold_begin.lua KEYS[2])
                                                          seat:{h:T}:quota:live
  KEYS[2]  live_seats HASH  (hold_begin.lua KEYS[3])      seat:{h:T}:quota:live:seats
  KEYS[3]  bought   HASH    the buyer's bought holds for the event: hold_id -> seats
                                                          seat:{h:T}:quota:E:U:bought
  ARGV[1]  op               sold | release
  ARGV[2]  hold_id
  ARGV[3]  seats            sold: how many

  Returns  {0}              done (both ops are idempotent)

  Cluster: the KEYS share the buyer's tag {h:T} (see coordinator keys::counted and keys::bought).
  `sold` writes the count whether or not it was there: the durable writer (when the hold's record
  is gone) and the reconciler's repair send it for every paid order, so a count lost in a failover
  (soft state, like a hold) is counted again from Postgres and the limit holds after one.
  `release` (a refund) gives the seats back.
]]
local live_counts, live_seats, bought = KEYS[1], KEYS[2], KEYS[3]
local op, hold = ARGV[1], ARGV[2]

if op == 'sold' then
  redis.call('HSET', bought, hold, tonumber(ARGV[3]))
elseif op == 'release' then
  redis.call('HDEL', bought, hold)
else
  return redis.error_reply('ERR quota: unknown op ' .. tostring(op))
end
redis.call('ZREM', live_counts, hold)
redis.call('HDEL', live_seats, hold)
return {0}
