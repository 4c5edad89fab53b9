--[[
  quota.lua: a buyer's seats for one event (held, pinned and bought together), against the
  event's per-buyer ticket limit. One key per (event, buyer), so the check and the change are one
  atomic step on one slot, whichever sections the seats are in.

  KEYS[1]  holds    ZSET    hold_id -> the hold's expiry, unix ms (+inf once sold)
                                                          seat:{h:T}:quota:E:U:holds
  KEYS[2]  counts   HASH    hold_id -> seats
  ARGV[1]  op               extend | sold | release (the count is taken by hold_begin.lua)
  ARGV[2]  hold_id
  ARGV[3]  seats            sold: how many
  ARGV[4]  expires_ms       extend: the hold's new expiry (+5 s)

  Returns  {0}                    done (the limit is checked by hold_begin.lua, which sums the
                                  counts itself)

  Cluster: both KEYS share the buyer's tag {h:T} (see coordinator keys::quota), with the buyer's
  hold records: hold_begin.lua takes the count as it opens a hold (with the same rules), and
  hold_settle.lua gives it back on a rollback.   Clock: redis TIME.
  Holds that expired drop out by their score (purged on every call): no process is needed.
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

if op == 'extend' then
  redis.call('ZADD', holds, 'XX', 'GT', tonumber(ARGV[4]), hold)
elseif op == 'sold' then
  redis.call('ZADD', holds, '+inf', hold)
  redis.call('HSET', counts, hold, tonumber(ARGV[3]))
elseif op == 'release' then
  redis.call('ZREM', holds, hold)
  redis.call('HDEL', counts, hold)
end
return {0}
