--[[
  block.lua: block free seats of ONE section for the organizer (press, production); no expiry.

  KEYS[1]  inv      SET     every seat id of the section                   seat:{ev:E:sec:S}:inv
  KEYS[2]  held     ZSET    seat_id -> hold expiry (unix ms)
  KEYS[3]  sold     HASH    seat_id -> buyer hold_id
  KEYS[4]  blocked  HASH    seat_id -> tag
  KEYS[5]  ver      STRING  change counter
  KEYS[6]  audit    STREAM  the section's audit trail (see lua/sweep.lua for the entry format)
  KEYS[7]  reserved HASH    seats set aside for the waiting list: a block takes a seat from it
  ARGV[1]  tag              why the seats are blocked (e.g. "press"), kept for the audit trail
  ARGV[2]  actor            who blocks, for the audit trail
  ARGV[3..] seat_id         at most 2,000 (coordinator::block::MAX_SEATS_PER_BLOCK): the reply
                            unpacks up to two values a seat, and Lua stops near 8,000

  Returns  {0, seat_id, ...}            all seats are blocked; lists the ones newly blocked by this
                                        call (already blocked seats are left as they were)
           {-1, seat_id, why, ...}      pairs (seat, why) with why in held|sold; nothing written
           {-2, seat_id, ...}           not in this section's inventory; nothing written

  Cluster: all KEYS share the hash tag {ev:E:sec:S}.   Clock: redis TIME.
  A hold is never broken by a block: the organizer waits for it to end (or it expires), and for
  an ended hold's seat to be swept (within the reconciler's sweep interval), so a blocked seat is
  never also a seat some expiry returns.
]]
--@include time.lua
--@include audit.lua
local inv, held, sold, blocked, ver, audit, reserved = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local tag, actor = ARGV[1], ARGV[2]

local now = now_ms()

local unknown, taken, todo = {}, {}, {}
for i = 3, #ARGV do
  local seat = ARGV[i]
  if redis.call('SISMEMBER', inv, seat) == 0 then
    unknown[#unknown + 1] = seat
  elseif redis.call('HEXISTS', sold, seat) == 1 then
    taken[#taken + 1] = seat
    taken[#taken + 1] = 'sold'
  elseif redis.call('HEXISTS', blocked, seat) == 0 then
    -- A hold that has ended but is not swept yet still counts: its expiry (a hold's purge or
    -- the sweep) would otherwise return a blocked seat, and set it aside for the waiting list.
    if redis.call('ZSCORE', held, seat) then
      taken[#taken + 1] = seat
      taken[#taken + 1] = 'held'
    else
      todo[#todo + 1] = seat
    end
  end
end
if #unknown > 0 then
  return {-2, unpack(unknown)}
end
if #taken > 0 then
  return {-1, unpack(taken)}
end
for _, seat in ipairs(todo) do
  redis.call('HSET', blocked, seat, tag)
  redis.call('HDEL', reserved, seat)
end
if #todo > 0 then
  redis.call('INCR', ver)
  audit_add(audit, 'blocked', tag, actor, now, table.concat(todo, ' '))
end
return {0, unpack(todo)}
