--[[
  open_section.lua: load (part of) one section's seat inventory. Seats start free.

  KEYS[1]  inv      SET     every seat id of the section (its capacity)    seat:{ev:E:sec:S}:inv
  KEYS[2]  ver      STRING  the section's change counter (seat-map cache version)
  ARGV[1..] seat_id         seats to add (a chunk; callers send at most a few thousand)

  Returns  {0, added, capacity}   `added` seats were new; a re-run adds 0 (idempotent)

  Cluster: both KEYS share the hash tag {ev:E:sec:S}.   Clock: not used.
  Opening never frees, sells or un-blocks a seat that already exists: re-opening an event that is on
  sale is harmless.
]]
local inv, ver = KEYS[1], KEYS[2]

local added = 0
local chunk = 500 -- unpack() is bounded by Lua's stack; stay far below it
for first = 1, #ARGV, chunk do
  local last = math.min(first + chunk - 1, #ARGV)
  added = added + redis.call('SADD', inv, unpack(ARGV, first, last))
end
if added > 0 then
  redis.call('INCR', ver)
end
return {0, added, redis.call('SCARD', inv)}
