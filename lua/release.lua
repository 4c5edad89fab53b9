--[[
  release.lua: free the seats of ONE section that a hold id holds.

  KEYS[1]  held     ZSET    seat_id -> hold expiry (unix ms)               seat:{ev:E:sec:S}:held
  KEYS[2]  holder   HASH    seat_id -> hold_id
  KEYS[3]  ver      STRING  change counter
  KEYS[4]  audit    STREAM  the section's audit trail (see lua/sweep.lua for the entry format)
  KEYS[5]  wl       STRING  waiting-list entries that want this section (lua/include/waitlist.lua)
  KEYS[6]  reserved HASH    seat_id -> when it came back: seats set aside for the waiting list
  ARGV[1]  hold_id          only seats whose holder is this hold are touched
  ARGV[2]  actor            who releases (the buyer, or `system` for a rollback), for the audit trail
  ARGV[3..] seat_id         the hold's seats in this section

  Returns  {0, released}    `released` seats were freed (0 on a replay, or when the hold had already
                            lost them, e.g. expired and re-held by someone else): idempotent.
                            While a waiting list wants the section, they are set aside for it.

  Cluster: all KEYS share the hash tag {ev:E:sec:S}.   Clock: redis TIME (audit only).
]]
--@include time.lua
--@include audit.lua
--@include waitlist.lua
local held, holder, ver, audit, wl, reserved = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local hold_id, actor = ARGV[1], ARGV[2]

local now = now_ms()

local released = {}
for i = 3, #ARGV do
  local seat = ARGV[i]
  if redis.call('HGET', holder, seat) == hold_id then
    redis.call('HDEL', holder, seat)
    redis.call('ZREM', held, seat)
    released[#released + 1] = seat
  end
end
if #released > 0 then
  redis.call('INCR', ver)
  audit_add(audit, 'released', hold_id, actor, now, table.concat(released, ' '))
  set_aside(wl, reserved, audit, released, now)
end
return {0, #released}
