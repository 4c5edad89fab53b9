--[[
  extend.lua: move the expiry of a live hold's seats in ONE section (extension and payment pin).

  KEYS[1]  held     ZSET    seat_id -> hold expiry (unix ms)               seat:{ev:E:sec:S}:held
  KEYS[2]  holder   HASH    seat_id -> hold_id
  KEYS[3]  audit    STREAM  the section's audit trail (see lua/sweep.lua for the entry format)
  ARGV[1]  hold_id
  ARGV[2]  expires_ms       the new absolute expiry, unix ms (the cap was checked by hold_transition.lua)
  ARGV[3]  action           extended | pinned | unpinned: what the audit trail records
                            check: move nothing and write nothing; confirms that every seat is
                            held by hold_id until at least expires_ms (the durable writer's check
                            that a hold pinned moments ago still has its seats)
  ARGV[4]  actor            who asks, for the audit trail
  ARGV[5..] seat_id         the hold's seats in this section

  Returns  {0, seats}       every seat's expiry is now expires_ms (check: is at least expires_ms)
           {-1, seat_id, ...} these seats are no longer held by hold_id (expired, or lost in a
                            failover), or expires_ms is already past by this node's clock
                            (extended, pinned); nothing written

  Cluster: all KEYS share the hash tag {ev:E:sec:S}.   Clock: redis TIME.
  A seat whose hold has expired cannot be revived here: another buyer may already hold it.
]]
--@include time.lua
--@include audit.lua
local held, holder, audit = KEYS[1], KEYS[2], KEYS[3]
local hold_id = ARGV[1]
local expires_ms = tonumber(ARGV[2])
local action, actor = ARGV[3], ARGV[4]

local now = now_ms()

local lost = {}
-- The new expiry was computed on the record's node (hold_transition.lua); by this node's clock
-- it may already be past (clock skew, a slow call). Writing it would free the seats while the
-- record says they are held or pinned: they are reported lost instead. An unpin writes the
-- hold's own expiry back, which may rightly be past (the hold ended during the payment).
local stale = action ~= 'unpinned' and expires_ms <= now
local check = action == 'check'
for i = 5, #ARGV do
  local seat = ARGV[i]
  local score = redis.call('ZSCORE', held, seat)
  if stale or not score or tonumber(score) <= now or redis.call('HGET', holder, seat) ~= hold_id
      or (check and tonumber(score) < expires_ms) then
    lost[#lost + 1] = seat
  end
end
if #lost > 0 then
  return {-1, unpack(lost)}
end
if check then
  return {0, #ARGV - 4}
end
local seats = {}
for i = 5, #ARGV do
  redis.call('ZADD', held, 'XX', expires_ms, ARGV[i])
  seats[#seats + 1] = ARGV[i]
end
audit_add(audit, action, hold_id, actor, now, table.concat(seats, ' '))
return {0, #seats}
