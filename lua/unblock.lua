--[[
  unblock.lua: return blocked seats of ONE section to sale.

  KEYS[1]  blocked  HASH    seat_id -> tag                                 seat:{ev:E:sec:S}:blocked
  KEYS[2]  ver      STRING  change counter
  KEYS[3]  audit    STREAM  the section's audit trail (see lua/sweep.lua for the entry format)
  KEYS[4]  wl       STRING  waiting-list entries that want this section (lua/include/waitlist.lua)
  KEYS[5]  reserved HASH    seat_id -> when it came back: seats set aside for the waiting list
  ARGV[1]  actor            who unblocks, for the audit trail
  ARGV[2..] seat_id         at most 2,000 (coordinator::block::MAX_SEATS_PER_BLOCK): the reply
                            unpacks up to two values a seat, and Lua stops near 8,000

  Returns  {0, seat_id, ...}   the seats that were blocked and are now free, or set aside for the
                               waiting list while one wants the section (others are untouched:
                               unblocking a free, held or sold seat changes nothing; idempotent)

  Cluster: all KEYS share the hash tag {ev:E:sec:S}.   Clock: redis TIME (audit only).
]]
--@include time.lua
--@include audit.lua
--@include waitlist.lua
local blocked, ver, audit, wl, reserved = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local actor = ARGV[1]

local now = now_ms()

local freed = {}
for i = 2, #ARGV do
  if redis.call('HDEL', blocked, ARGV[i]) == 1 then
    freed[#freed + 1] = ARGV[i]
  end
end
if #freed > 0 then
  redis.call('INCR', ver)
  audit_add(audit, 'unblocked', '', actor, now, table.concat(freed, ' '))
  set_aside(wl, reserved, audit, freed, now)
end
return {0, unpack(freed)}
