--[[
  unblock.lua: return blocked seats of ONE section to sale.

  KEYS[1]  blocked  HASH    seat_id -> tag                                 seat:{ev:E:sec:S}:blocked
  KEYS[2]  ver      STRING  change counter
  ARGV[1..] seat_id

  Returns  {0, seat_id, ...}   the seats that were blocked and are now free (others are untouched:
                               unblocking a free, held or sold seat changes nothing; idempotent)

  Cluster: both KEYS share the hash tag {ev:E:sec:S}.   Clock: not used.
]]
local blocked, ver = KEYS[1], KEYS[2]

local freed = {}
for i = 1, #ARGV do
  if redis.call('HDEL', blocked, ARGV[i]) == 1 then
    freed[#freed + 1] = ARGV[i]
  end
end
if #freed > 0 then
  redis.call('INCR', ver)
end
return {0, unpack(freed)}
