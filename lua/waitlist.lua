--[[
  waitlist.lua: tell ONE section how many waiting-list entries want it, and give seats set aside
  for the list back to the open sale when nobody on it can use them. Run by the reconciler's
  offer loop (reconciler/src/waitlist.rs), which derives the count from Postgres each pass.

  KEYS[1]  wl       STRING  waiting-list entries that want this section     seat:{ev:E:sec:S}:wl
  KEYS[2]  reserved HASH    seat_id -> when it came back: seats set aside for the waiting list
  KEYS[3]  ver      STRING  change counter
  KEYS[4]  audit    STREAM  the section's audit trail (see lua/sweep.lua for the entry format)
  ARGV[1]  waiting          the count; 0 gives every seat set aside back to the open sale
  ARGV[2..] seat_id         seats set aside that no entry can use (another category): back to sale

  Returns  {0, unreserved, version, flipped}   `unreserved` seats went back to the open sale;
                                     `flipped` 1 when the section went from nobody waiting to
                                     someone, or back (the seat map's view of ended holds
                                     changes then: the version moves and the caller announces)

  Cluster: all KEYS share the hash tag {ev:E:sec:S}.   Clock: redis TIME (audit only).
  Giving everything back walks the hash seat by seat (no unpack: a section may have set aside
  more seats than Lua's unpack limit); it is bounded by the section's size.
]]
--@include time.lua
--@include audit.lua
local wl, reserved, ver, audit = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local count = tonumber(ARGV[1])
local was_waiting = tonumber(redis.call('GET', wl) or '0') > 0
local flipped = was_waiting ~= (count > 0)

if count > 0 then
  redis.call('SET', wl, count)
else
  redis.call('DEL', wl)
end

local back = {}
if count <= 0 then
  for _, seat in ipairs(redis.call('HKEYS', reserved)) do
    back[#back + 1] = seat
  end
  redis.call('DEL', reserved)
else
  for i = 2, #ARGV do
    if redis.call('HDEL', reserved, ARGV[i]) == 1 then
      back[#back + 1] = ARGV[i]
    end
  end
end

if #back > 0 then
  audit_add(audit, 'unreserved', '', 'system:waitlist', now_ms(), table.concat(back, ' '))
end
local version
if #back > 0 or flipped then
  version = redis.call('INCR', ver)
else
  version = tonumber(redis.call('GET', ver) or '0')
end
return {0, #back, version, flipped and 1 or 0}
