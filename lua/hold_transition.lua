--[[
  hold_transition.lua: the hold's state machine, on its record. Seats are moved by the per-section
  scripts; this script decides whether a transition is allowed and records it.

      pending --settle--> held --pin--> pinned --sold--> sold
                             ^            |
                             +---unpin----+  (payment declined: back to the expiry it had)
                           |  \--extend--> held (expiry moved, never past cap_ms)
                           \--release--> released        (pinned cannot be released: a payment is in flight)
      held or pinned whose expires_ms <= now reads as "expired"

  KEYS[1]  record   HASH    the hold's record                        seat:{h:T}:hold:H
  ARGV[1]  op               read | release | extend | pin | unpin | sold
  ARGV[2]  user_id          the caller; "" for the system (reconciler, admin), which skips the owner check
  ARGV[3]  param_ms         extend: the new TTL from now | pin: how long the payment may take | else 0

  Returns  {code, state, expires_ms, cap_ms, created_ms, now_ms, event, user, seats, quote}
           code  0  done (for read: found)
           code  1  already in the target state: nothing written (replay)
           code -1  no such hold (never existed, or forgotten after its retention)
           code -2  the hold belongs to another user; nothing written
           code -3  the transition is not allowed from `state`; nothing written
           code -4  the hold has expired; nothing written
           code -5  extend: the new expiry would pass cap_ms; nothing written
  For -1 and -2 only {code} is returned: nothing about another user's hold leaks.

  Cluster: one key.   Clock: redis TIME.
]]
local record = KEYS[1]
local op, caller, param_ms = ARGV[1], ARGV[2], tonumber(ARGV[3])

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

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

if op == 'read' then
  return reply(0)
elseif op == 'release' then
  if state == 'released' then return reply(1) end
  if state == 'held' then
    -- An expired hold may be released too: it only tidies up seats it no longer owns.
    redis.call('HSET', record, 'state', 'released')
    shown = 'released'
    return reply(0)
  end
  if state == 'pinned' and not live then
    redis.call('HSET', record, 'state', 'released')
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
  end
  return reply(0)
elseif op == 'pin' then
  if state ~= 'held' and state ~= 'pinned' then return reply(-3) end
  if not live then return reply(-4) end
  if state == 'held' then
    -- Remembered so an unpin (payment declined) gives the buyer back exactly their hold.
    redis.call('HSET', record, 'held_expires_ms', expires_ms)
  end
  expires_ms = math.max(expires_ms, now + param_ms)
  -- The record must outlive the pin even when the pin passes the cap.
  redis.call('HSET', record, 'state', 'pinned', 'expires_ms', expires_ms)
  if redis.call('PTTL', record) < expires_ms - now then
    redis.call('PEXPIREAT', record, expires_ms + 3600000)
  end
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
  redis.call('HSET', record, 'state', 'sold')
  shown = 'sold'
  return reply(0)
end
return redis.error_reply('ERR hold_transition: unknown op ' .. tostring(op))
