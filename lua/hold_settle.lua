--[[
  hold_settle.lua: finish an attempt started by hold_begin.lua.

  KEYS[1]  record   HASH    the hold's record                              seat:{hold:H}
  ARGV[1]  outcome          "held": every section is held | "abort": a section refused and the
                            sections already taken were released; forget the attempt so the same
                            client reservation id can be tried again
  ARGV[2]  retain_ms        how long a finished record is kept after its cap, to answer replays

  Returns  {0, expires_ms}          settled as asked (expires_ms is 0 for "abort")
           {-1, state}              the record is not pending (a concurrent attempt settled it, or
                                    it expired); nothing written

  Cluster: one key.   Clock: not used.
]]
local record = KEYS[1]
local outcome, retain_ms = ARGV[1], tonumber(ARGV[2])

local current = redis.call('HMGET', record, 'state', 'expires_ms', 'cap_ms')
if current[1] ~= 'pending' then
  return {-1, current[1] or ''}
end
if outcome == 'abort' then
  redis.call('DEL', record)
  return {0, 0}
end
redis.call('HSET', record, 'state', 'held')
redis.call('HDEL', record, 'attempt_until_ms')
redis.call('PEXPIREAT', record, tonumber(current[3]) + retain_ms)
return {0, tonumber(current[2])}
