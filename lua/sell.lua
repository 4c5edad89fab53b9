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
--@include sell_seats.lua
local seats = {}
for i = 4, #ARGV do
  seats[#seats + 1] = ARGV[i]
end
return sell_seats(ARGV[1], ARGV[2], ARGV[3], seats, now_ms())
