-- hold_seats(hold_id, expires_ms, actor, mode, deadline, seats, now): hold.lua's work for one
-- request on the section whose keys are KEYS[1..9] (hold.lua documents keys, arguments and
-- replies); hold_batch.lua runs it once per request of a batch. purge_expired(now) is the
-- bounded housekeeping both run once per call. Needs audit.lua and waitlist.lua.
local inv, held, holder, sold, blocked, ver, audit = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local wl, reserved = KEYS[8], KEYS[9]

local function purge_expired(now)
  -- Forget at most 256 expired holds so the keys do not grow without bound; while a waiting
  -- list wants the section, their seats go to it (waitlist.lua).
  local expired = redis.call('ZRANGEBYSCORE', held, '-inf', now, 'LIMIT', 0, 256)
  if #expired > 0 then
    for _, seat in ipairs(expired) do
      audit_add(audit, 'expired', redis.call('HGET', holder, seat) or '', 'system:expiry', redis.call('ZSCORE', held, seat), seat)
    end
    redis.call('ZREM', held, unpack(expired))
    redis.call('HDEL', holder, unpack(expired))
    set_aside(wl, reserved, audit, expired, now)
  end
end

local function hold_seats(hold_id, expires_ms, actor, mode, deadline, seats, now)
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
    for _, seat in ipairs(seats) do
      local score = redis.call('ZSCORE', held, seat)
      if not score or tonumber(score) <= now or redis.call('HGET', holder, seat) ~= hold_id then
        return {-5, now}
      end
    end
    return {0, 0, tonumber(redis.call('GET', ver) or '0')}
  end

  -- While a waiting list wants the section, a seat whose hold has ended belongs to it even
  -- before the purge has moved it (more than 256 ended at once): only an offer takes it.
  -- `reserved` is empty whenever nobody waits (waitlist.lua), so it is only read when someone does.
  local listed = waiting(wl)
  local unknown, taken, wanted = {}, {}, {}
  -- A seat the list is owed: an offer takes it, any other hold is refused it.
  local function owed_to_the_list(seat)
    if mode == 'offer' then
      wanted[#wanted + 1] = seat
    else
      taken[#taken + 1] = seat
      taken[#taken + 1] = 'reserved'
    end
  end
  for _, seat in ipairs(seats) do
    if redis.call('SISMEMBER', inv, seat) == 0 then
      unknown[#unknown + 1] = seat
    elseif redis.call('HEXISTS', sold, seat) == 1 then
      taken[#taken + 1] = seat
      taken[#taken + 1] = 'sold'
    elseif redis.call('HEXISTS', blocked, seat) == 1 then
      taken[#taken + 1] = seat
      taken[#taken + 1] = 'blocked'
    elseif listed and redis.call('HEXISTS', reserved, seat) == 1 then
      owed_to_the_list(seat)
    else
      local score = redis.call('ZSCORE', held, seat)
      local owner = redis.call('HGET', holder, seat)
      if score and tonumber(score) > now and owner ~= hold_id then
        taken[#taken + 1] = seat
        taken[#taken + 1] = 'held'
      elseif owner and owner ~= hold_id and listed then
        -- Ended, not purged yet, and wanted by the list.
        owed_to_the_list(seat)
      elseif mode == 'offer' and owner ~= hold_id then
        -- An offer takes only what came back to the list.
        taken[#taken + 1] = seat
        taken[#taken + 1] = 'free'
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
        -- An expired hold the purge did not reach: its end is recorded before it is replaced.
        audit_add(audit, 'expired', previous, 'system:expiry', redis.call('ZSCORE', held, seat) or now, seat)
      end
      newly[#newly + 1] = seat
      redis.call('ZADD', held, expires_ms, seat)
      redis.call('HSET', holder, seat, hold_id)
      if mode == 'offer' then
        redis.call('HDEL', reserved, seat)
      end
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
end
