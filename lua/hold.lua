--[[
  hold.lua: hold N seats of ONE section for a hold id until an absolute expiry; all or nothing.
  A single-section hold is this call and hold_begin.lua's (mode "direct"), nothing else. A
  multi-section hold calls this once per section, in sorted section order, and releases the
  sections already taken when one refuses (see coordinator/src/hold.rs).

  KEYS[1]  inv      SET     every seat id of the section                   seat:{ev:E:sec:S}:inv
  KEYS[2]  held     ZSET    seat_id -> hold expiry (unix ms); a seat is held iff its score > now
  KEYS[3]  holder   HASH    seat_id -> hold_id of the (possibly expired) hold on it
  KEYS[4]  sold     HASH    seat_id -> hold_id / order reference that bought it
  KEYS[5]  blocked  HASH    seat_id -> organizer's tag (no expiry)
  KEYS[6]  ver      STRING  change counter, bumped when availability changes
  KEYS[7]  audit    STREAM  the section's audit trail (see lua/sweep.lua for the entry format)
  ARGV[1]  hold_id          caller-generated (derived from the client reservation id); a replay of
                            the same hold id on seats it already holds succeeds and changes nothing
                            but the expiry
  ARGV[2]  expires_ms       absolute expiry, unix ms (decided once per hold by hold_begin.lua)
  ARGV[3]  actor            who asks (the buyer's user id), for the audit trail
  ARGV[4]  mode             "take": hold the seats | "confirm": only check that every seat is
                            already this hold's and live, write nothing (a replay of a direct hold
                            whose attempt may still be in flight, hold_begin.lua code 2)
  ARGV[5]  deadline_ms      0, or the last instant (unix ms, this node's clock) at which the
                            attempt may still take seats: after it, hold_begin.lua lets a retry
                            take the attempt over, and a slow original that took seats then
                            could not learn it was replaced (a direct hold has no settle step to
                            tell it). The caller passes the attempt window's middle, so the two
                            primaries' clocks may disagree by up to half the window.
  ARGV[6..] seat_id         the seats, no duplicates (the caller rejects duplicates)

  Returns  {0, newly_held, version}        every seat is now held by hold_id
           {-1, seat_id, why, ...}         pairs of (seat, why) with why in held|sold|blocked; nothing written
           {-2, seat_id, ...}              seats not in this section's inventory; nothing written
           {-3, now_ms}                    expires_ms is not in the future; nothing written
           {-4}                            the section has no inventory (event not open); nothing written
           {-5, now_ms}                    past deadline_ms, or "confirm" found a seat that is not
                                           this hold's: nothing written

  Cluster: all KEYS share the hash tag {ev:E:sec:S}.   Clock: redis TIME.
  Expiry needs no background process: a seat whose score is <= now is free, whatever is left in
  the keys. The bounded purge below is housekeeping only.
]]
--@include time.lua
--@include audit.lua
local inv, held, holder, sold, blocked, ver, audit = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local hold_id = ARGV[1]
local expires_ms = tonumber(ARGV[2])
local actor = ARGV[3]
local mode, deadline = ARGV[4], tonumber(ARGV[5])
local FIRST = 6

local now = now_ms()

if expires_ms <= now then
  return {-3, now}
end
if deadline > 0 and now > deadline then
  return {-5, now}
end
if redis.call('EXISTS', inv) == 0 then
  return {-4}
end
if mode == 'confirm' then
  for i = FIRST, #ARGV do
    local score = redis.call('ZSCORE', held, ARGV[i])
    if not score or tonumber(score) <= now or redis.call('HGET', holder, ARGV[i]) ~= hold_id then
      return {-5, now}
    end
  end
  return {0, 0, tonumber(redis.call('GET', ver) or '0')}
end

-- Housekeeping: forget at most 256 expired holds so the keys do not grow without bound.
local expired = redis.call('ZRANGEBYSCORE', held, '-inf', now, 'LIMIT', 0, 256)
if #expired > 0 then
  for _, seat in ipairs(expired) do
    audit_add(audit, 'expired', redis.call('HGET', holder, seat) or '', 'system:expiry', redis.call('ZSCORE', held, seat), seat)
  end
  redis.call('ZREM', held, unpack(expired))
  redis.call('HDEL', holder, unpack(expired))
end

local unknown, taken, wanted = {}, {}, {}
for i = FIRST, #ARGV do
  local seat = ARGV[i]
  if redis.call('SISMEMBER', inv, seat) == 0 then
    unknown[#unknown + 1] = seat
  elseif redis.call('HEXISTS', sold, seat) == 1 then
    taken[#taken + 1] = seat
    taken[#taken + 1] = 'sold'
  elseif redis.call('HEXISTS', blocked, seat) == 1 then
    taken[#taken + 1] = seat
    taken[#taken + 1] = 'blocked'
  else
    local score = redis.call('ZSCORE', held, seat)
    if score and tonumber(score) > now and redis.call('HGET', holder, seat) ~= hold_id then
      taken[#taken + 1] = seat
      taken[#taken + 1] = 'held'
    else
      wanted[#wanted + 1] = seat
    end
  end
end
if #unknown > 0 then
  return {-2, unpack(unknown)}
end
if #taken > 0 then
  return {-1, unpack(taken)}
end

local newly = {}
for _, seat in ipairs(wanted) do
  if redis.call('HGET', holder, seat) == hold_id then
    -- Already this hold's (a replayed or taken-over attempt): never shorten its expiry.
    redis.call('ZADD', held, 'GT', expires_ms, seat)
  else
    local previous = redis.call('HGET', holder, seat)
    if previous then
      -- An expired hold the purge above did not reach: its end is recorded before it is replaced.
      audit_add(audit, 'expired', previous, 'system:expiry', redis.call('ZSCORE', held, seat) or now, seat)
    end
    newly[#newly + 1] = seat
    redis.call('ZADD', held, expires_ms, seat)
    redis.call('HSET', holder, seat, hold_id)
  end
end
local version
if #newly > 0 then
  audit_add(audit, 'held', hold_id, actor, now, table.concat(newly, ' '))
  version = redis.call('INCR', ver)
else
  version = tonumber(redis.call('GET', ver) or '0')
end
return {0, #newly, version}
