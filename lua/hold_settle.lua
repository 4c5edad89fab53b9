--[[
  hold_settle.lua: finish, or start rolling back, an attempt started by hold_begin.lua. Only the
  attempt that owns the record (its token) is obeyed.

  KEYS[1]  record   HASH    the hold's record                        seat:{h:T}:hold:H
  KEYS[2]  live_counts ZSET    live holds counted against their buyer's limit (hold_begin.lua KEYS[2])
  KEYS[3]  live_seats HASH  (hold_begin.lua KEYS[3])
  ARGV[1]  outcome          "held": every section is held
                            "aborting": a section refused; mark the record so no other attempt
                            starts while this one releases the sections it took
                            "abort": the sections are released; forget the attempt so the same
                            client reservation id can be tried again, and give its seats back to
                            the buyer's ticket count
                            "adopt": a replay confirmed a direct record's seats (hold_begin.lua
                            code 2): the record's attempt becomes ARGV[5], so the original, should
                            it fail after all, can no longer roll back a hold a replay reported
  ARGV[2]  retain_ms        how long a finished record is kept after its cap, to answer replays
  ARGV[3]  attempt          the caller's attempt token (hold_begin.lua ARGV[9])
  ARGV[4]  hold_id          the member of KEYS[2] and KEYS[3]
  ARGV[5]  new attempt      adopt only: the replay's token
  ARGV[6]  seats            "held" only, optional: the seats to record, when the sections chose
                            them (a general-admission hold: hold_area.lua picks its places)

  A direct record (hold_begin.lua mode "direct") is written held, not pending: "aborting" and
  "abort" accept it too, from its own attempt, while its attempt window is open (it has never
  been reported held to anyone but through an adopt, which takes the attempt away).

  Returns  {0, expires_ms}          done (expires_ms is 0 for "aborting" and "abort"); also the
                                    answer to "held" resent by its own attempt after a lost reply
                                    (the record is held or already pinned: nothing written)
           {-1, state}              the record is not this attempt's (taken over by a retry after
                                    the attempt window, or gone); nothing written: the caller must
                                    not touch the seats and must not report a hold

  Cluster: the KEYS share the buyer's tag {h:T}.   Clock: not used.
]]
local record = KEYS[1]
local outcome, retain_ms, attempt = ARGV[1], tonumber(ARGV[2]), ARGV[3]

local current = redis.call('HMGET', record, 'state', 'expires_ms', 'cap_ms', 'attempt', 'direct')
local state = current[1]
local mine = current[4] == attempt
if mine and current[5] == '1' and (state == 'held' or state == 'aborting') and outcome ~= 'held' then
  if outcome == 'adopt' then
    if state ~= 'held' then
      return {-1, state}
    end
    redis.call('HSET', record, 'attempt', ARGV[5])
    return {0, tonumber(current[2])}
  end
  -- Rolling back a direct attempt: treated as the pending attempt it stands for.
  state = state == 'held' and 'pending' or state
end
if mine and outcome == 'held' and (state == 'held' or state == 'pinned') then
  -- This very call again (the client resent it after losing the reply): the hold is this
  -- attempt's, and the answer is the one the first call gave.
  return {0, tonumber(current[2])}
end
if not mine or (state ~= 'pending' and state ~= 'aborting') then
  return {-1, state or ''}
end
if outcome == 'aborting' then
  redis.call('HSET', record, 'state', 'aborting')
  return {0, 0}
end
if outcome == 'abort' then
  redis.call('DEL', record)
  redis.call('ZREM', KEYS[2], ARGV[4])
  redis.call('HDEL', KEYS[3], ARGV[4])
  return {0, 0}
end
if state ~= 'pending' then
  return {-1, state}
end
redis.call('HSET', record, 'state', 'held')
if ARGV[6] and ARGV[6] ~= '' then
  redis.call('HSET', record, 'seats', ARGV[6])
end
redis.call('HDEL', record, 'attempt_until_ms')
redis.call('PEXPIREAT', record, tonumber(current[3]) + retain_ms)
return {0, tonumber(current[2])}
