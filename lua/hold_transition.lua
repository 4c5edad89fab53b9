--[[
  hold_transition.lua: the hold's state machine, on its record. Seats are moved by the per-section
  scripts; this script decides whether a transition is allowed and records it.

      pending --settle--> held --pin--> pinned --sold--> sold
                             ^            |  (a pin moves the expiry too, never past cap_ms)
                             +---unpin----+  (payment declined: back to the expiry it had)
                           |  \--extend--> held (expiry moved, never past cap_ms)
                           \--release--> released        (pinned cannot be released: a payment is in flight)
      held or pinned whose expires_ms <= now reads as "expired"

  KEYS[1]  record   HASH    the hold's record                        seat:{h:T}:hold:H
  KEYS[2]  live_counts ZSET every op but read: live holds counted against their buyer's
                            ticket limit (hold_begin.lua KEYS[2])    seat:{h:T}:quota:live
  KEYS[3]  live_seats HASH  every op but read (hold_begin.lua KEYS[3]) seat:{h:T}:quota:live:seats
  KEYS[4]  bought   HASH    sold only: the buyer's bought holds for the event (hold_begin.lua
                            KEYS[4])                                 seat:{h:T}:quota:E:U:bought
  ARGV[1]  op               read | release | extend | pin | unpin | sold
  ARGV[2]  user_id          the caller; "" for the system (reconciler, admin), which skips the owner check
  ARGV[3]  param_ms         extend: the new TTL from now | pin: how long the payment may take
                            (the expiry moves to now + param_ms, but never past cap_ms) | else 0
  ARGV[4]  hold_id          the member of KEYS[2], KEYS[3] and KEYS[4]

  Returns  {code, state, expires_ms, cap_ms, created_ms, now_ms, event, user, seats, quote}
           code  0  done (for read: found)
           code  1  already in the target state: nothing written (replay)
           code -1  no such hold (never existed, or forgotten after its retention)
           code -2  the hold belongs to another user; nothing written
           code -3  the transition is not allowed from `state`; nothing written
           code -4  the hold has expired; nothing written
           code -5  extend: the new expiry would pass cap_ms; nothing written
  For -1 and -2 only {code} is returned: nothing about another user's hold leaks.

  The buyer's ticket count follows the hold in the same step: a release gives its seats back, a
  pin or an extension moves the count's expiry with the hold's (+5 s), a sale counts the seats
  for good. Refusals, and replays of a release or a sale, write nothing; an unpin leaves the
  count's expiry where the pin put it (it only runs out later).

  Cluster: the KEYS share the buyer's tag {h:T} (carried in the hold id).   Clock: redis TIME.
]]
--@include time.lua
local record, live_counts, live_seats = KEYS[1], KEYS[2], KEYS[3]
local op, caller, param_ms, hold_id = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]

local now = now_ms()

local h = redis.call('HMGET', record, 'state', 'expires_ms', 'cap_ms', 'created_ms', 'event', 'user', 'seats', 'quote',
  'held_expires_ms')
local state = h[1]
if not state then
  return {-1}
end
if caller ~= '' and caller ~= h[6] then
  return {-2}
end
local expires_ms, cap_ms = tonumber(h[2]), tonumber(h[3])
local live = expires_ms > now
local shown = state
if (state == 'held' or state == 'pinned') and not live then
  shown = 'expired'
end

local function reply(code)
  return {code, shown, expires_ms, cap_ms, tonumber(h[4]), now, h[5], h[6], h[7], h[8] or ''}
end

local function uncount()
  redis.call('ZREM', live_counts, hold_id)
  redis.call('HDEL', live_seats, hold_id)
end

-- The count lives as long as the hold could (only a hold that was counted has a count).
local function count_until(ms)
  redis.call('ZADD', live_counts, 'XX', 'GT', ms + 5000, hold_id)
end

if op == 'read' then
  return reply(0)
elseif op == 'release' then
  if state == 'released' then return reply(1) end
  if state == 'held' then
    -- An expired hold may be released too: it only tidies up seats it no longer owns.
    redis.call('HSET', record, 'state', 'released')
    uncount()
    shown = 'released'
    return reply(0)
  end
  if state == 'pinned' and not live then
    redis.call('HSET', record, 'state', 'released')
    uncount()
    shown = 'released'
    return reply(0)
  end
  return reply(-3)
elseif op == 'extend' then
  if state ~= 'held' then return reply(-3) end
  if not live then return reply(-4) end
  local wanted = now + param_ms
  if wanted > cap_ms then return reply(-5) end
  if wanted > expires_ms then
    expires_ms = wanted
    redis.call('HSET', record, 'expires_ms', expires_ms)
    count_until(expires_ms)
  end
  return reply(0)
elseif op == 'pin' then
  if state ~= 'held' and state ~= 'pinned' then return reply(-3) end
  if not live then return reply(-4) end
  if state == 'held' then
    -- Remembered so an unpin (payment declined) gives the buyer back exactly their hold.
    redis.call('HSET', record, 'held_expires_ms', expires_ms)
  end
  -- The cap is absolute: a pin is taken again by every replay of a commit (and by the writer),
  -- so a pin past it would keep the seats for as long as replays come. A payment that completes
  -- after the cap finds the hold expired and is refunded. (The record outlives the cap by its
  -- retention, so it outlives any pin.)
  expires_ms = math.max(expires_ms, math.min(now + param_ms, cap_ms))
  redis.call('HSET', record, 'state', 'pinned', 'expires_ms', expires_ms)
  count_until(expires_ms)
  local was = state
  shown = 'pinned'
  -- 1: it was pinned already (the pin was only moved); the audit trail records an extension.
  if was == 'pinned' then return reply(1) end
  return reply(0)
elseif op == 'unpin' then
  if state == 'held' then return reply(1) end
  if state ~= 'pinned' then return reply(-3) end
  expires_ms = tonumber(h[9]) or expires_ms
  redis.call('HSET', record, 'state', 'held', 'expires_ms', expires_ms)
  shown = expires_ms > now and 'held' or 'expired'
  return reply(0)
elseif op == 'sold' then
  if state == 'sold' then return reply(1) end
  -- Not gated on `live`: sell.lua already proved the seats were ours when the order was written.
  if state ~= 'held' and state ~= 'pinned' then return reply(-3) end
  if not KEYS[4] then
    return redis.error_reply('ERR hold_transition: sold needs the buyer\'s bought key')
  end
  redis.call('HSET', record, 'state', 'sold')
  local _, seats_n = string.gsub(h[7], '%S+', '')
  redis.call('HSET', KEYS[4], hold_id, seats_n)
  uncount()
  shown = 'sold'
  return reply(0)
end
return redis.error_reply('ERR hold_transition: unknown op ' .. tostring(op))
