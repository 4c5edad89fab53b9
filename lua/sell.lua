--[[
  sell.lua: mark seats of ONE section sold to a hold (after its order is durable in Postgres).

  KEYS[1]  inv      SET     every seat id of the section                   seat:{ev:E:sec:S}:inv
  KEYS[2]  held     ZSET    seat_id -> hold expiry (unix ms)
  KEYS[3]  holder   HASH    seat_id -> hold_id
  KEYS[4]  sold     HASH    seat_id -> hold_id that bought it
  KEYS[5]  blocked  HASH    seat_id -> organizer's tag
  KEYS[6]  ver      STRING  change counter
  KEYS[7]  audit    STREAM  the section's audit trail (see lua/sweep.lua for the entry format)
  KEYS[8]  reserved HASH    seats set aside for the waiting list: a repair takes a seat from it
  ARGV[1]  hold_id
  ARGV[2]  mode             "strict": every seat must be live-held by hold_id (checkout)
                            "repair": Postgres says these seats are sold to hold_id; make Redis agree
                            whatever holds or blocks are on them (reconciler), but never take a seat
                            sold to someone else; a hold or block it removes gets its own audit
                            entry (released or expired, unblocked) before the sale's
  ARGV[3]  actor            who sells (checkout, reconciler), for the audit trail
  ARGV[4..] seat_id

  Returns  {0, newly_sold, version}   all seats are sold to hold_id (a replay sells 0: idempotent)
           {-1, seat_id, ...}         already sold to ANOTHER hold: an oversell attempt; nothing written
           {-2, seat_id, ...}         not in this section's inventory; nothing written
           {-3, seat_id, ...}         strict mode: not live-held by hold_id; nothing written

  Cluster: all KEYS share the hash tag {ev:E:sec:S}.   Clock: redis TIME.
]]
--@include time.lua
--@include audit.lua
local inv, held, holder, sold, blocked, ver, audit, reserved = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local hold_id, mode, actor = ARGV[1], ARGV[2], ARGV[3]

local now = now_ms()

local conflict, unknown, not_held, todo = {}, {}, {}, {}
for i = 4, #ARGV do
  local seat = ARGV[i]
  local buyer = redis.call('HGET', sold, seat)
  if redis.call('SISMEMBER', inv, seat) == 0 then
    unknown[#unknown + 1] = seat
  elseif buyer then
    if buyer ~= hold_id then
      conflict[#conflict + 1] = seat
    end
  else
    if mode == 'strict' then
      local score = redis.call('ZSCORE', held, seat)
      if not score or tonumber(score) <= now or redis.call('HGET', holder, seat) ~= hold_id then
        not_held[#not_held + 1] = seat
      end
    end
    todo[#todo + 1] = seat
  end
end
if #conflict > 0 then
  return {-1, unpack(conflict)}
end
if #unknown > 0 then
  return {-2, unpack(unknown)}
end
if #not_held > 0 then
  return {-3, unpack(not_held)}
end

for _, seat in ipairs(todo) do
  if mode == 'repair' then
    -- What the repair takes away is recorded like any other change: another buyer's hold
    -- (released while live, else expired) and the organizer's block.
    local previous = redis.call('HGET', holder, seat)
    if previous and previous ~= hold_id then
      local until_ms = tonumber(redis.call('ZSCORE', held, seat) or '0')
      local why = until_ms > now and 'released' or 'expired'
      audit_add(audit, why, previous, actor, now, seat)
    end
    local tag = redis.call('HGET', blocked, seat)
    if tag then
      audit_add(audit, 'unblocked', tag, actor, now, seat)
    end
    if redis.call('HDEL', reserved, seat) == 1 then
      audit_add(audit, 'unreserved', '', actor, now, seat)
    end
  end
  redis.call('HSET', sold, seat, hold_id)
  redis.call('ZREM', held, seat)
  redis.call('HDEL', holder, seat)
  redis.call('HDEL', blocked, seat)
end
local version
if #todo > 0 then
  version = redis.call('INCR', ver)
  audit_add(audit, 'sold', hold_id, actor, now, table.concat(todo, ' '))
else
  version = tonumber(redis.call('GET', ver) or '0')
end
return {0, #todo, version}
