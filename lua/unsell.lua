--[[
  unsell.lua: return seats of ONE section that a refunded order had bought to sale.
  Postgres is changed first (the sale stops being live, then this runs); a replay is harmless.

  KEYS[1]  sold     HASH    seat_id -> hold_id that bought it               seat:{ev:E:sec:S}:sold
  KEYS[2]  ver      STRING  change counter
  KEYS[3]  wl       STRING  waiting-list entries that want this section (lua/include/waitlist.lua)
  KEYS[4]  reserved HASH    seat_id -> when it came back: seats set aside for the waiting list
  KEYS[5]  audit    STREAM  the section's audit trail (only for seats set aside)
  ARGV[1]  hold_id          only seats sold to this hold are touched
  ARGV[2..] seat_id

  Returns  {0, freed}       `freed` seats are for sale again, or set aside for the waiting list
                            while one wants the section (0 on a replay: idempotent)

  Cluster: all KEYS share the hash tag {ev:E:sec:S}.   Clock: redis TIME (set-aside only).
  No audit entry here: the refund's audit rows are written by Postgres in the refund's own
  transaction (orders/src/refund.rs), so they exist even when Redis had lost the sold marks;
  setting a seat aside for the waiting list is recorded here (`reserved`).
]]
--@include time.lua
--@include audit.lua
--@include waitlist.lua
local sold, ver, wl, reserved, audit = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local hold_id = ARGV[1]

local freed = {}
for i = 2, #ARGV do
  if redis.call('HGET', sold, ARGV[i]) == hold_id then
    redis.call('HDEL', sold, ARGV[i])
    freed[#freed + 1] = ARGV[i]
  end
end
if #freed > 0 then
  redis.call('INCR', ver)
  if waiting(wl) then
    set_aside(wl, reserved, audit, freed, now_ms())
  end
end
return {0, #freed}
