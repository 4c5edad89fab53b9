-- sell_seats(hold_id, mode, actor, seats, now): sell.lua's work for one hold on the section whose
-- keys are KEYS[1..8] (sell.lua documents keys, arguments and replies); sell_batch.lua runs it
-- once per hold of a batch. Needs audit.lua.
local inv, held, holder, sold, blocked, ver, audit, reserved = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]

local function sell_seats(hold_id, mode, actor, seats, now)
  local conflict, unknown, not_held, todo = {}, {}, {}, {}
  for _, seat in ipairs(seats) do
    local buyer = redis.call('HGET', sold, seat)
    if redis.call('SISMEMBER', inv, seat) == 0 then
      unknown[#unknown + 1] = seat
    elseif buyer then
      if buyer ~= hold_id then
        conflict[#conflict + 1] = seat
      end
    else
      if mode == 'strict' then
        local score = redis.call('ZSCORE', held, seat)
        if not score or tonumber(score) <= now or redis.call('HGET', holder, seat) ~= hold_id then
          not_held[#not_held + 1] = seat
        end
      end
      todo[#todo + 1] = seat
    end
  end
  if #conflict > 0 then
    return {-1, unpack(conflict)}
  end
  if #unknown > 0 then
    return {-2, unpack(unknown)}
  end
  if #not_held > 0 then
    return {-3, unpack(not_held)}
  end

  for _, seat in ipairs(todo) do
    if mode == 'repair' then
      -- What the repair takes away is recorded like any other change: another buyer's hold
      -- (released while live, else expired) and the organizer's block.
      local previous = redis.call('HGET', holder, seat)
      if previous and previous ~= hold_id then
        local until_ms = tonumber(redis.call('ZSCORE', held, seat) or '0')
        local why = until_ms > now and 'released' or 'expired'
        audit_add(audit, why, previous, actor, now, seat)
      end
      local tag = redis.call('HGET', blocked, seat)
      if tag then
        audit_add(audit, 'unblocked', tag, actor, now, seat)
      end
      if redis.call('HDEL', reserved, seat) == 1 then
        audit_add(audit, 'unreserved', '', actor, now, seat)
      end
    end
    redis.call('HSET', sold, seat, hold_id)
    redis.call('ZREM', held, seat)
    redis.call('HDEL', holder, seat)
    redis.call('HDEL', blocked, seat)
  end
  local version
  if #todo > 0 then
    version = redis.call('INCR', ver)
    audit_add(audit, 'sold', hold_id, actor, now, table.concat(todo, ' '))
  else
    version = tonumber(redis.call('GET', ver) or '0')
  end
  return {0, #todo, version}
end
