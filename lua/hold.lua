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
  KEYS[8]  wl       STRING  waiting-list entries that want this section (lua/include/waitlist.lua)
  KEYS[9]  reserved HASH    seat_id -> when it came back: seats set aside for the waiting list
  ARGV[1]  hold_id          caller-generated (derived from the client reservation id); a replay of
                            the same hold id on seats it already holds succeeds and changes nothing
                            but the expiry
  ARGV[2]  expires_ms       absolute expiry, unix ms (decided once per hold by hold_begin.lua)
  ARGV[3]  actor            who asks (the buyer's user id), for the audit trail
  ARGV[4]  mode             "take": hold the seats | "confirm": only check that every seat is
                            already this hold's and live, write nothing (a replay of a direct hold
                            whose attempt may still be in flight, hold_begin.lua code 2) |
                            "offer": a waiting-list offer, which takes only seats set aside for
                            the list (reserved, or ended while someone waits)
  ARGV[5]  deadline_ms      0, or the last instant (unix ms, this node's clock) at which the
                            attempt may still take seats: after it, hold_begin.lua lets a retry
                            take the attempt over, and a slow original that took seats then
                            could not learn it was replaced (a direct hold has no settle step to
                            tell it). The caller passes the attempt window's middle, so the two
                            primaries' clocks may disagree by up to half the window.
  ARGV[6..] seat_id         the seats, no duplicates (the caller rejects duplicates)

  Returns  {0, newly_held, version}        every seat is now held by hold_id
           {-1, seat_id, why, ...}         pairs of (seat, why) with why in held|sold|blocked|reserved
                                           (set aside for the waiting list)|free (mode "offer"
                                           only: not the list's to offer); nothing written
           {-2, seat_id, ...}              seats not in this section's inventory; nothing written
           {-3, now_ms}                    expires_ms is not in the future; nothing written
           {-4}                            the section has no inventory (event not open); nothing written
           {-5, now_ms}                    past deadline_ms, or "confirm" found a seat that is not
                                           this hold's: nothing written

  Cluster: all KEYS share the hash tag {ev:E:sec:S}.   Clock: redis TIME.
  Expiry needs no background process: a seat whose score is <= now is free, whatever is left in
  the keys. The bounded purge is housekeeping only. The work itself is lua/include/hold_seats.lua,
  shared with hold_batch.lua.
]]
--@include time.lua
--@include audit.lua
--@include waitlist.lua
--@include hold_seats.lua
local now = now_ms()
local deadline = tonumber(ARGV[5])
-- Housekeeping only when the call may write (a refusal for time, or a confirmation, does not).
if ARGV[4] ~= 'confirm' and tonumber(ARGV[2]) > now and (deadline == 0 or now <= deadline)
    and redis.call('EXISTS', KEYS[1]) == 1 then
  purge_expired(now)
end
local seats = {}
for i = 6, #ARGV do
  seats[#seats + 1] = ARGV[i]
end
return hold_seats(ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], deadline, seats, now)
