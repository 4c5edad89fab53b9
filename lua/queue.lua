--[[
  queue.lua: an event's waiting room. One script for every operation, because they share the
  lazy lottery draw and the lazy token bucket (scripts cannot call each other).

    join   a buyer joins; one ticket per buyer (a second join returns the first ticket)
    poll   where a ticket stands (the hottest call of a sale: O(1) apart from the one-time draw)
    done   the ticket's buyer finished checkout: one admission is handed back to the bucket, so
           the next buyer gets in sooner
    status the room as a whole (ticket ignored)

  KEYS[1]  cfg      HASH    mode (queue|lottery), rate (admissions/s), burst, window_ms,
                            opens_ms (sale opening, unix ms), seed (lottery; revealed after the draw)
                                                                             seat:{q:E}:cfg
  KEYS[2]  users    HASH    user_id -> ticket
  KEYS[3]  tickets  HASH    ticket -> position (1-based admission order; 0 = lottery pre-queue,
                            not drawn yet)
  KEYS[4]  pre      LIST    lottery pre-queue tickets, in joining order
  KEYS[5]  state    HASH    joined (positions handed out), admitted (admitted up to this position),
                            tokens, last_ms (the token bucket), drawn (1 once the lottery ran)
  KEYS[6]  admitted HASH    ticket -> unix ms it was first seen admitted (its window starts);
                            ticket:done -> 1 once its buyer finished checkout
  KEYS[7]  owners   HASH    ticket -> user_id
  ARGV[1]  op               join | poll | done | status
  ARGV[2]  user_id          join, done: the buyer; poll: the caller, who must own the ticket
  ARGV[3]  ticket           join: a fresh ticket id from the caller, used only if the buyer has
                            none; poll: the ticket; done, status: ignored

  Returns  {code, position, admitted_upto, joined, admitted_at_ms, now_ms, ticket, rate, window_ms, opens_ms}
           code 0 waiting, 1 in the lottery pre-queue (not drawn yet), 2 admitted (admitted_at_ms
           is when it was first seen admitted: its shopping window starts there), 3 done
           {-1}             the event has no waiting room
           {-2}             poll/done: unknown ticket (done: the buyer has none)
           {-3}             poll: another buyer's ticket

  Cluster: all KEYS share the hash tag {q:E}.   Clock: redis TIME.
  The lottery draw and the token bucket run lazily on every call: no background process is
  needed. The draw orders the pre-queue by SHA1(seed .. ':' .. ticket) once, at the first call
  after the opening (O(pre-queue) that one time: ~100,000 SHA1s and a sort).
]]
local cfg, users, tickets, pre, state, admitted, owners = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local op, user, ticket = ARGV[1], ARGV[2], ARGV[3]

local mode = redis.call('HGET', cfg, 'mode')
if not mode or mode == 'open' then
  return {-1}
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local opens = tonumber(redis.call('HGET', cfg, 'opens_ms') or '0')

-- The lottery draw, once, at the first call after the opening: pre-queue tickets are ordered by
-- SHA1(seed .. ':' .. ticket), which anyone can recompute from the revealed seed and the list.
local function draw()
  if mode ~= 'lottery' or now < opens or redis.call('HGET', state, 'drawn') == '1' then
    return
  end
  local seed = redis.call('HGET', cfg, 'seed') or ''
  local list = redis.call('LRANGE', pre, 0, -1)
  local keyed = {}
  for i, t in ipairs(list) do
    keyed[i] = {redis.sha1hex(seed .. ':' .. t), t}
  end
  table.sort(keyed, function(a, b) return a[1] < b[1] end)
  local joined = tonumber(redis.call('HGET', state, 'joined') or '0')
  for i, kt in ipairs(keyed) do
    redis.call('HSET', tickets, kt[2], joined + i)
  end
  redis.call('HSET', state, 'joined', joined + #keyed, 'drawn', '1')
end

-- The token bucket: `rate` admissions a second, at most `burst` at once, from the opening.
-- Lazy but exact: the number waiting changes only at calls (joins run this first), so between
-- two calls tokens flow straight into admissions while anyone waits, and only what is left
-- over is capped at `burst`.
local function advance()
  if now < opens then
    return
  end
  local rate = tonumber(redis.call('HGET', cfg, 'rate') or '1')
  local burst = tonumber(redis.call('HGET', cfg, 'burst') or '1')
  local s = redis.call('HMGET', state, 'joined', 'admitted', 'tokens', 'last_ms')
  local joined, upto = tonumber(s[1] or '0'), tonumber(s[2] or '0')
  local tokens, last = tonumber(s[3] or tostring(burst)), tonumber(s[4] or tostring(opens))
  if last < opens then last = opens end
  local available = tokens + (now - last) * rate / 1000
  local n = math.max(0, math.min(math.floor(available), joined - upto))
  upto = upto + n
  tokens = math.min(burst, available - n)
  redis.call('HSET', state, 'admitted', upto, 'tokens', tostring(tokens), 'last_ms', now)
end

if op == 'join' then
  local existing = redis.call('HGET', users, user)
  if existing then
    ticket = existing
  else
    redis.call('HSET', users, user, ticket)
    redis.call('HSET', owners, ticket, user)
    draw()
    advance()
    if mode == 'lottery' and redis.call('HGET', state, 'drawn') ~= '1' then
      redis.call('RPUSH', pre, ticket)
      redis.call('HSET', tickets, ticket, 0)
    else
      redis.call('HSET', tickets, ticket, redis.call('HINCRBY', state, 'joined', 1))
    end
  end
end
draw()
advance()
local s = redis.call('HMGET', state, 'admitted', 'joined')
local upto, joined = tonumber(s[1] or '0'), tonumber(s[2] or '0')
local c = redis.call('HMGET', cfg, 'rate', 'window_ms')
local rate, window = c[1] or '1', tonumber(c[2] or '600000')
if op == 'status' then
  return {0, 0, upto, joined, 0, now, '', rate, window, opens}
end
if op == 'done' then
  ticket = redis.call('HGET', users, user)
  if not ticket then
    return {-2}
  end
end
local pos = redis.call('HGET', tickets, ticket)
if not pos then
  return {-2}
end
if op == 'poll' and redis.call('HGET', owners, ticket) ~= user then
  return {-3}
end
pos = tonumber(pos)
local code, at = 0, 0
if pos == 0 then
  code = 1
elseif pos <= upto then
  code = 2
  redis.call('HSETNX', admitted, ticket, now)
  at = tonumber(redis.call('HGET', admitted, ticket))
  if op == 'done' and redis.call('HGET', admitted, ticket .. ':done') ~= '1' then
    -- Checkout finished: the admission is handed back (once per ticket).
    redis.call('HSET', admitted, ticket .. ':done', '1')
    local burst = tonumber(redis.call('HGET', cfg, 'burst') or '1')
    local tokens = tonumber(redis.call('HGET', state, 'tokens') or '0')
    redis.call('HSET', state, 'tokens', tostring(math.min(burst, tokens + 1)))
  end
  if redis.call('HGET', admitted, ticket .. ':done') == '1' then
    code = 3
  end
end
return {code, pos, upto, joined, at, now, ticket, rate, window, opens}
