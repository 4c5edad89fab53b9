--[[
  unsell.lua: return seats of ONE section that a refunded order had bought to sale.
  Postgres is changed first (the sale stops being live, then this runs); a replay is harmless.

  KEYS[1]  sold     HASH    seat_id -> hold_id that bought it               seat:{ev:E:sec:S}:sold
  KEYS[2]  ver      STRING  change counter
  ARGV[1]  hold_id          only seats sold to this hold are touched
  ARGV[2..] seat_id

  Returns  {0, freed}       `freed` seats are for sale again (0 on a replay: idempotent)

  Cluster: all KEYS share the hash tag {ev:E:sec:S}.   Clock: not used.
  No audit entry here: the refund's audit rows are written by Postgres in the refund's own
  transaction (orders/src/refund.rs), so they exist even when Redis had lost the sold marks.
]]
local sold, ver = KEYS[1], KEYS[2]
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
end
return {0, #freed}
