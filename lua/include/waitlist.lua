-- A section's waiting list, as the seat scripts see it (the list itself is in Postgres; see
-- docs/waitlist.md). While `wl` (STRING, the number of waiting entries that want a category the
-- section sells) is above 0, a seat that comes back (a hold that ends, a release, a refunded
-- sale, a lifted block) is set aside in `reserved` (HASH seat id -> when, unix ms) instead of
-- going back to the open sale, in the same script as its return; only an offer hold (hold.lua's
-- mode "offer") takes it from there. Needs audit.lua.
--
-- waiting(wl): is anyone waiting for this section.
-- set_aside(wl, reserved, audit, seats, now): when someone is, set `seats` aside and record it in
--   the audit trail; returns true when it did (the caller then does not count them as free).
local function waiting(wl)
  return tonumber(redis.call('GET', wl) or '0') > 0
end

local function set_aside(wl, reserved, audit, seats, now)
  if #seats == 0 or not waiting(wl) then
    return false
  end
  for _, seat in ipairs(seats) do
    redis.call('HSET', reserved, seat, now)
  end
  audit_add(audit, 'reserved', '', 'system:waitlist', now, table.concat(seats, ' '))
  return true
end
