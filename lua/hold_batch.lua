--[[
  hold_batch.lua: several hold.lua requests on ONE section in one call, each answered on its
  own. The coordinator gathers the holds of a section that arrive while a call to it is in
  flight (coordinator/src/batch.rs), so a hot section costs Redis one call per batch instead of
  one per hold; at low load nothing is gathered and hold.lua is called as before.

  KEYS[1..9] as hold.lua: inv, held, holder, sold, blocked, ver, audit, wl, reserved
  ARGV[1]  n                how many requests follow
  then, per request:
           count            how many arguments this request has (5 + its seats)
           hold_id, expires_ms, actor, mode, deadline_ms, seat_id...   as hold.lua's ARGV

  Returns  {0, reply, reply, ...}   one hold.lua reply per request, in order. The requests run
                                    one after the other, as separate calls would: a later one
                                    sees what an earlier one held, and a refused one writes
                                    nothing, whatever the others did.

  Cluster: all KEYS share the hash tag {ev:E:sec:S}.   Clock: redis TIME (one reading per call).
]]
--@include time.lua
--@include audit.lua
--@include waitlist.lua
--@include hold_seats.lua
local now = now_ms()
if redis.call('EXISTS', KEYS[1]) == 1 then
  purge_expired(now)
end
local replies = {0}
local at = 2
for _ = 1, tonumber(ARGV[1]) do
  local count = tonumber(ARGV[at])
  local seats = {}
  for i = at + 6, at + count do
    seats[#seats + 1] = ARGV[i]
  end
  replies[#replies + 1] = hold_seats(ARGV[at + 1], tonumber(ARGV[at + 2]), ARGV[at + 3], ARGV[at + 4],
    tonumber(ARGV[at + 5]), seats, now)
  at = at + count + 1
end
return replies
