--[[
  sell_batch.lua: several holds' sell.lua requests on ONE section in one call, each answered on
  its own. The durable writer sells a batch's orders together (coordinator/src/sell.rs): a
  section with several of them costs Redis one call instead of one per order.

  KEYS[1..8] as sell.lua: inv, held, holder, sold, blocked, ver, audit, reserved
  ARGV[1]  mode             as sell.lua's ARGV[2], for every hold
  ARGV[2]  actor            as sell.lua's ARGV[3], for every hold
  ARGV[3]  n                how many holds follow
  then, per hold:
           count            how many arguments this hold has (1 + its seats)
           hold_id, seat_id...   as sell.lua's ARGV[1] and ARGV[4..]

  Returns  {0, reply, reply, ...}   one sell.lua reply per hold, in order. The holds are sold one
                                    after the other, as separate calls would: a refused one
                                    writes nothing, whatever the others did.

  Cluster: all KEYS share the hash tag {ev:E:sec:S}.   Clock: redis TIME (one reading per call).
]]
--@include time.lua
--@include audit.lua
--@include sell_seats.lua
local now = now_ms()
local mode, actor = ARGV[1], ARGV[2]
local replies = {0}
local at = 4
for _ = 1, tonumber(ARGV[3]) do
  local count = tonumber(ARGV[at])
  local seats = {}
  for i = at + 2, at + count do
    seats[#seats + 1] = ARGV[i]
  end
  replies[#replies + 1] = sell_seats(ARGV[at + 1], mode, actor, seats, now)
  at = at + count + 1
end
return replies
