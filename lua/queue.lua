--[[
  queue.lua: an event's waiting room. One script for every operation, because they share the
  lazy lottery draw and the lazy token bucket (scripts cannot call each other).

    join   a buyer joins; one ticket per buyer (a second join returns the first ticket)
    poll   where a ticket stands (the hottest call of a sale: O(1) apart from the one-time draw
           and O(log n) reads of the marks when admitting)
    done   the ticket's buyer finished checkout: they no longer count as shopping, so where
           admission is tied to the inventory the next buyer gets in sooner. The bucket gets no
           token back: the rate is the organizer's outflow, and a token per finished checkout
           would admit the rate plus checkout's own throughput, more than checkout can take
    status the room as a whole (ticket ignored)
    check  where the buyer's own ticket stands, found by the buyer (reserving checks that the
           admission has not ended with a finished checkout: one admission, one checkout)

  KEYS[1]  cfg      HASH    mode (queue|lottery), rate (admissions/s), burst, window_ms,
                            opens_ms (sale opening, unix ms), seed (lottery; revealed after the
                            draw), per_free_seat (most buyers shopping per free seat; 0 = off)
                                                                             seat:{q:E}:cfg
  KEYS[2]  users    HASH    user_id -> ticket
  KEYS[3]  tickets  HASH    ticket -> position (1-based admission order; 0 = lottery pre-queue,
                            not drawn yet)
  KEYS[4]  pre      LIST    lottery pre-queue tickets, in joining order
  KEYS[5]  state    HASH    joined (positions handed out), admitted (admitted up to this position),
                            tokens, last_ms (the token bucket), drawn (1 once the lottery ran),
                            done (checkouts finished), free (the last seats-free figure told)
  KEYS[6]  admitted HASH    ticket -> unix ms it was first seen admitted (its window starts);
                            ticket:done -> 1 once its buyer finished checkout;
                            ticket:joined -> unix ms it joined
  KEYS[7]  owners   HASH    ticket -> user_id
  KEYS[8]  marks    ZSET    "second:admitted:done" scored by that second (ms): the room's counts
                            at each second they changed, kept one window back, so the buyers
                            shopping now are the admissions of the last window minus its
                            finished checkouts
  ARGV[1]  op               join | poll | done | check | status
  ARGV[2]  user_id          join, done, check: the buyer; poll: the caller, who must own the ticket
  ARGV[3]  ticket           join: a fresh ticket id from the caller, used only if the buyer has
                            none; poll: the ticket; done, check, status: ignored
  ARGV[4]  free             seats free now as the caller knows them (-1: unknown, the last figure
                            told is used; none yet: not tied). Admission is tied to it: buyers
                            shopping stay under ceil(free * per_free_seat); the bucket's tokens
                            wait (up to burst) until seats come back
  ARGV[5]  pace             0 to 1 (absent: 1): the share of `rate` admission runs at now. The
                            caller's checkout health (the gateway slows the room while commits
                            answer slower than its target: back-pressure, so admitted buyers are
                            not sent into a checkout that cannot take them). Tokens accrue at
                            rate * pace between calls; the reply's rate is that effective rate

  Returns  {code, position, admitted_upto, joined, admitted_at_ms, now_ms, ticket, rate, window_ms,
            opens_ms, waited_ms, shopping}
           code 0 waiting, code 1 in the lottery pre-queue (not drawn yet), code 2 admitted
           (admitted_at_ms is when it was first seen admitted: its shopping window starts there),
           code 3 done;
           waited_ms: on the call that first sees the ticket admitted, how long it waited (from
           joining, or from the opening if it joined before); -1 otherwise;
           shopping: status only, the buyers shopping now; -1 otherwise
           {-1}             the event has no waiting room
           {-2}             poll/done/check: unknown ticket (done, check: the buyer has none)
           {-3}             poll: another buyer's ticket

  Cluster: all KEYS share the hash tag {q:E}.   Clock: redis TIME.
  The lottery draw and the token bucket run lazily on every call: no background process is
  needed. The draw orders the pre-queue by SHA1(seed .. ':' .. ticket) once, at the first call
  after the opening (O(pre-queue) that one time: ~100,000 SHA1s and a sort).
]]
--@include time.lua
local cfg, users, tickets, pre, state, admitted, owners, marks = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local op, user, ticket, free = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4] or '-1')
local pace = math.min(1, math.max(0, tonumber(ARGV[5] or '1') or 1))

local mode = redis.call('HGET', cfg, 'mode')
if not mode or mode == 'open' then
  return {-1}
end
local now = now_ms()
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

-- The room's counts at each second they change, one window back (plus the newest older mark,
-- the base the window is measured from).
local function mark(upto, done)
  local sec = now - now % 1000
  redis.call('ZREMRANGEBYSCORE', marks, sec, sec)
  redis.call('ZADD', marks, sec, sec .. ':' .. upto .. ':' .. done)
end

-- Buyers shopping now: admitted within the last window, minus checkouts finished in it (an
-- admission older than the window has lapsed). Approximate by design (to the second, and a
-- checkout finished in the window by a buyer admitted before it counts against the window).
local function shopping(upto, done)
  local window = tonumber(redis.call('HGET', cfg, 'window_ms') or '600000')
  local base = redis.call('ZREVRANGEBYSCORE', marks, now - window, '-inf', 'WITHSCORES', 'LIMIT', 0, 1)
  local base_upto, base_done = 0, 0
  if #base > 0 then
    local _, u, d = string.match(base[1], '^(%d+):(%d+):(%d+)$')
    base_upto, base_done = tonumber(u), tonumber(d)
    redis.call('ZREMRANGEBYSCORE', marks, '-inf', '(' .. base[2])
  end
  return math.max(0, (upto - base_upto) - (done - base_done))
end

-- The token bucket: `rate` admissions a second, at most `burst` at once, from the opening.
-- Lazy but exact: the number waiting changes only at calls (joins run this first), so between
-- two calls tokens flow straight into admissions while anyone waits, and only what is left
-- over is capped at `burst`. Tied to the inventory (ARGV[4]): admissions stop while the buyers
-- shopping reach ceil(free * per_free_seat), and the tokens wait (capped at burst).
local function advance()
  if now < opens then
    return
  end
  local rate = tonumber(redis.call('HGET', cfg, 'rate') or '1') * pace
  local burst = tonumber(redis.call('HGET', cfg, 'burst') or '1')
  local s = redis.call('HMGET', state, 'joined', 'admitted', 'tokens', 'last_ms', 'done')
  local joined, upto = tonumber(s[1] or '0'), tonumber(s[2] or '0')
  local tokens, last = tonumber(s[3] or tostring(burst)), tonumber(s[4] or tostring(opens))
  local done = tonumber(s[5] or '0')
  if last < opens then last = opens end
  local available = tokens + (now - last) * rate / 1000
  local n = math.max(0, math.min(math.floor(available), joined - upto))
  local per_free_seat = tonumber(redis.call('HGET', cfg, 'per_free_seat') or '0')
  if free >= 0 then
    redis.call('HSET', state, 'free', free)
  else
    free = tonumber(redis.call('HGET', state, 'free') or '-1')
  end
  if n > 0 and free >= 0 and per_free_seat > 0 then
    n = math.max(0, math.min(n, math.ceil(free * per_free_seat) - shopping(upto, done)))
  end
  if n > 0 then
    upto = upto + n
    mark(upto, done)
  end
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
    redis.call('HSET', admitted, ticket .. ':joined', now)
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
local rate, window = tostring(tonumber(c[1] or '1') * pace), tonumber(c[2] or '600000')
if op == 'status' then
  local done = tonumber(redis.call('HGET', state, 'done') or '0')
  return {0, 0, upto, joined, 0, now, '', rate, window, opens, -1, shopping(upto, done)}
end
if op == 'done' or op == 'check' then
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
local code, at, waited = 0, 0, -1
if pos == 0 then
  code = 1
elseif pos <= upto then
  code = 2
  if redis.call('HSETNX', admitted, ticket, now) == 1 then
    local joined_at = tonumber(redis.call('HGET', admitted, ticket .. ':joined') or '-1')
    if joined_at >= 0 then
      waited = now - math.max(joined_at, opens)
    end
  end
  at = tonumber(redis.call('HGET', admitted, ticket))
  if op == 'done' and redis.call('HGET', admitted, ticket .. ':done') ~= '1' then
    -- Checkout finished (once per ticket): the buyer no longer counts as shopping.
    redis.call('HSET', admitted, ticket .. ':done', '1')
    mark(upto, redis.call('HINCRBY', state, 'done', 1))
  end
  if redis.call('HGET', admitted, ticket .. ':done') == '1' then
    code = 3
  end
end
return {code, pos, upto, joined, at, now, ticket, rate, window, opens, waited, -1}
