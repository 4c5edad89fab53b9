-- audit_add(stream, action, hold, actor, t_ms, seats): one entry of a section's audit trail
-- (lua/sweep.lua documents the fields). The stream is trimmed to about AUDIT_MAXLEN entries:
-- the durable copy is the reconciler's, so Redis keeps only a bounded recent window. The value
-- is put in at load time from the coordinator's settings (`RedisSettings::audit_max_len`).
local AUDIT_MAXLEN = __AUDIT_MAXLEN__
local function audit_add(stream, action, hold, actor, t, seats)
  return redis.call('XADD', stream, 'MAXLEN', '~', AUDIT_MAXLEN, '*',
    'a', action, 'h', hold, 'u', actor, 't', t, 's', seats)
end
