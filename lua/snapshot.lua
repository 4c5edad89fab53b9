--[[
  snapshot.lua: availability of ONE section: counts, and optionally the ids of seats not free.

  KEYS[1]  inv      SET     every seat id of the section                   seat:{ev:E:sec:S}:inv
  KEYS[2]  held     ZSET    seat_id -> hold expiry (unix ms)
  KEYS[3]  holder   HASH    seat_id -> hold_id
  KEYS[4]  sold     HASH    seat_id -> buyer hold_id
  KEYS[5]  blocked  HASH    seat_id -> tag
  KEYS[6]  ver      STRING  change counter
  KEYS[7]  wl       STRING  waiting-list entries that want this section (lua/include/waitlist.lua)
  KEYS[8]  reserved HASH    seats set aside for the waiting list
  ARGV[1]  detail           "0": counts only, O(log N) | "1": also list held, sold and blocked seats

  Returns  {0, capacity, held, sold, blocked, version, now_ms}                       detail = 0
           {0, capacity, held, sold, blocked, version, now_ms, held..., sold..., blocked...}
                                                                                     detail = 1
           {-1}   the section has no inventory (event not open)
  free = capacity - held - sold - blocked. With detail, the three lists follow in that order and
  their lengths are the three counts. Seats set aside for the waiting list count as held (nobody
  in the open sale can take them), and so do seats whose hold ended while someone waits.

  Cluster: all KEYS share the hash tag {ev:E:sec:S}.   Clock: redis TIME.
  Counts are cheap for a 50,000-seat section: SCARD, HLEN and ZCOUNT; nothing is scanned.
]]
--@include time.lua
local inv, held, holder, sold, blocked, ver, wl, reserved = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]

local now = now_ms()

local capacity = redis.call('SCARD', inv)
if capacity == 0 then
  return {-1}
end

-- Expired holds are counted out below, not purged here: forgetting them is sweep.lua's job,
-- which records each expiry in the audit trail.

-- While someone waits, an ended hold's seat is the list's, not free: every held seat counts.
local live_from = '(' .. now
if tonumber(redis.call('GET', wl) or '0') > 0 then
  live_from = '-inf'
end
local reply = {
  0,
  capacity,
  redis.call('ZCOUNT', held, live_from, '+inf') + redis.call('HLEN', reserved),
  redis.call('HLEN', sold),
  redis.call('HLEN', blocked),
  tonumber(redis.call('GET', ver) or '0'),
  now,
}
if ARGV[1] == '1' then
  for _, seat in ipairs(redis.call('ZRANGEBYSCORE', held, live_from, '+inf')) do
    reply[#reply + 1] = seat
  end
  for _, seat in ipairs(redis.call('HKEYS', reserved)) do
    reply[#reply + 1] = seat
  end
  for _, seat in ipairs(redis.call('HKEYS', sold)) do
    reply[#reply + 1] = seat
  end
  for _, seat in ipairs(redis.call('HKEYS', blocked)) do
    reply[#reply + 1] = seat
  end
end
return reply
