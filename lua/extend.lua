--[[
  extend.lua: move the expiry of a live hold's seats in ONE section (extension and payment pin).

  KEYS[1]  held     ZSET    seat_id -> hold expiry (unix ms)               seat:{ev:E:sec:S}:held
  KEYS[2]  holder   HASH    seat_id -> hold_id
  ARGV[1]  hold_id
  ARGV[2]  expires_ms       the new absolute expiry, unix ms (the cap was checked by hold_transition.lua)
  ARGV[3..] seat_id         the hold's seats in this section

  Returns  {0, seats}       every seat's expiry is now expires_ms
           {-1, seat_id, ...} these seats are no longer held by hold_id (expired, or lost in a
                            failover); nothing written

  Cluster: all KEYS share the hash tag {ev:E:sec:S}.   Clock: redis TIME.
  A seat whose hold has expired cannot be revived here: another buyer may already hold it.
]]
local held, holder = KEYS[1], KEYS[2]
local hold_id = ARGV[1]
local expires_ms = tonumber(ARGV[2])

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local lost = {}
for i = 3, #ARGV do
  local seat = ARGV[i]
  local score = redis.call('ZSCORE', held, seat)
  if not score or tonumber(score) <= now or redis.call('HGET', holder, seat) ~= hold_id then
    lost[#lost + 1] = seat
  end
end
if #lost > 0 then
  return {-1, unpack(lost)}
end
for i = 3, #ARGV do
  redis.call('ZADD', held, 'XX', expires_ms, ARGV[i])
end
return {0, #ARGV - 2}
