-- now_ms(): Redis TIME in unix milliseconds. Scripts read this node's clock, never the caller's,
-- so expiries need no process and no agreement with the hosts that send the calls.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
