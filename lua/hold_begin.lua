--[[
  hold_begin.lua: open (or find again) the record of a hold, before any seat is touched.
  The record is what makes a hold idempotent: its id is derived from (event, user, client
  reservation id), so a replayed request lands on the same record and gets the same hold back.

  KEYS[1]  record   HASH    the hold's record                        seat:{h:T}:hold:H
           fields: event, user, fingerprint, seats, sections, attempt, quote, state
                   (pending|aborting|held|pinned|released|sold), created_ms, expires_ms, cap_ms,
                   attempt_until_ms
  KEYS[2]  live_counts ZSET live counted holds of every buyer of tag T: hold_id -> the hold's
                            expiry + 5 s                     seat:{h:T}:quota:live
  KEYS[3]  live_seats HASH  hold_id -> "seats event user"    seat:{h:T}:quota:live:seats
  KEYS[4]  bought   HASH    this buyer's bought holds for the event: hold_id -> seats
                                                             seat:{h:T}:quota:E:U:bought
  ARGV[1]  event_id
  ARGV[2]  user_id
  ARGV[3]  fingerprint      canonical form of the request (sorted seats and TTL); a replay must match
  ARGV[4]  ttl_ms           hold duration, already within the configured range
  ARGV[5]  lifetime_ms      absolute cap on the hold's total life (extensions stop there)
  ARGV[6]  attempt_ms       how long one attempt may take before another caller may take it over
  ARGV[7]  seats            the seat ids, space separated
  ARGV[8]  sections         the section ids the seats span, space separated, in lock order
  ARGV[9]  attempt          a random token naming this attempt; hold_settle.lua only obeys the
                            attempt that owns the record, so a slow attempt that was taken over
                            can neither settle nor roll back its successor
  ARGV[10] quote            opaque text kept with the hold (the gateway stores the price it quoted,
                            so a later price change does not change what this hold costs);
                            not part of the fingerprint
  ARGV[11] hold_id          the member of KEYS[2], KEYS[3] and KEYS[4]
  ARGV[12] limit            the event's tickets per buyer; a new attempt counts its seats against
                            it (this buyer's live holds for the event and bought seats) and is
                            refused past it; 0: no limit, and nothing is counted
  ARGV[13] mode             optional. "settle" (or absent): the record is written pending and the
                            caller settles it with hold_settle.lua after every section is held
                            (multi-section holds). "direct": a single-section hold. The record is
                            written held at once, and the caller's one hold.lua call is the whole
                            rest of the hold: 2 calls, no settle. What "pending" said is kept by
                            the record's `direct` flag and its attempt window (see below).
  ARGV[14] retain_ms        direct only: how long the record is kept after its cap (hold_settle.lua
                            ARGV[2] for settled holds)

  Returns  {0, expires_ms, cap_ms, now_ms}   a new attempt: the caller now holds the sections, then
                                             calls hold_settle.lua (also the answer to the same
                                             call resent with its attempt token after a lost reply)
           {1, state, expires_ms, cap_ms, created_ms, now_ms, quote}
                                             a replay of a finished request: nothing written
           {-1}                              the id exists for another event, user or request
                                             (idempotency key reused with other parameters)
           {-2, retry_after_ms}              another attempt with this id is in flight (pending or
                                             rolling back), whatever its parameters
           {-3, counted}                     over the buyer's ticket limit (they have `counted`
                                             seats); nothing written
           {2, state, expires_ms, cap_ms, created_ms, now_ms, quote, attempt}
                                             direct record, replayed inside its attempt window:
                                             the original may still be in flight. The caller asks
                                             the section to confirm (hold.lua "confirm", writes
                                             nothing); confirmed, it adopts the attempt
                                             (hold_settle.lua "adopt" from `attempt`) so a failing
                                             original can no longer roll it back, and answers the
                                             replay; not confirmed, it answers "in progress".
           {3, state, expires_ms, cap_ms, created_ms, now_ms, quote, deadline_ms}
                                             direct record, live and held, replayed after its
                                             attempt window: taken over (this call's token now
                                             owns it, with a new window; the clocks are kept, so
                                             a replay never lengthens a hold). The caller takes
                                             the section again (hold.lua "take": the hold's own
                                             seats are kept, seats a dead original never took
                                             are taken) and rolls the record back on a refusal.

  Direct mode, what it gives up and why: a settled record told replays "this hold exists"; a
  direct record only says "this hold exists unless its attempt failed", because the one call
  that could say more (settle) is the cost being removed. A replay inside the attempt window
  therefore pays a confirmation (2-3 calls), and the slow-original guarantee moves to the
  section: hold.lua refuses an attempt past its deadline (the middle of the window), so an
  original slower than that can no longer take seats under a successor's record. This relies on
  the record's and the section's primaries agreeing on the time within half the window (5 s by
  default), where a settle step relied on nothing. A hold with its limit counted and its seats
  freed at once on a cancel still costs 2 calls to hold and 2 to release: the buyer's count and
  the section's seats live in two slots, and each operation must change both.

  Cluster: the KEYS share the buyer's tag {h:T} (carried in the hold id).   Clock: redis TIME;
  every section of the hold gets the expiry decided here. The live count is keyed by the tag alone
  so that hold_transition.lua, which knows only the hold id, keeps it (a cancel gives the seats
  back, a pin or extension moves the count's expiry, a sale moves it to KEYS[4]); hold_settle.lua
  gives it back when the attempt is rolled back. A count expires with its hold (+5 s) unless the
  hold is sold; expired counts are skipped by the sum and purged here, 256 a call: no process
  is needed, and no call's work grows with the pile.
]]
--@include time.lua
local record = KEYS[1]
local event, user, fingerprint = ARGV[1], ARGV[2], ARGV[3]
local ttl_ms, lifetime_ms, attempt_ms = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])

local now = now_ms()
local direct = ARGV[13] == 'direct'

local current = redis.call('HMGET', record, 'state', 'event', 'user', 'fingerprint', 'attempt_until_ms',
  'expires_ms', 'cap_ms', 'created_ms', 'quote', 'attempt', 'direct')
local state = current[1]

local live_counts, live_seats, bought, hold_id = KEYS[2], KEYS[3], KEYS[4], ARGV[11]
local _, seats_n = string.gsub(ARGV[7], '%S+', '')
local limit = tonumber(ARGV[12])

-- Counts the attempt's seats against the buyer's limit; false (and the count) when over.
local function take_count()
  -- Housekeeping in slices: a tag whose counts piled up (8,000 expired ones once made every
  -- hold on it fail, past Lua's unpack limit) is emptied over several calls. The sum below
  -- skips expired counts itself, so what is left of the pile changes no answer.
  local expired = redis.call('ZRANGEBYSCORE', live_counts, '-inf', now, 'LIMIT', 0, 256)
  if #expired > 0 then
    redis.call('ZREM', live_counts, unpack(expired))
    redis.call('HDEL', live_seats, unpack(expired))
  end
  local expires = now + ttl_ms + 5000
  if redis.call('ZSCORE', live_counts, hold_id) or redis.call('HEXISTS', bought, hold_id) == 1 then
    -- Taking over an attempt of this same hold (or reopening a bought one whose record is
    -- gone): its seats are counted already.
    redis.call('ZADD', live_counts, 'XX', 'GT', expires, hold_id)
    return true
  end
  -- The tag's live holds are a few buyers' (about 1.5 per tag for 100,000 buyers of one event),
  -- each within their own limit: the scan is short.
  local owner = event .. ' ' .. user
  local sum = 0
  local entries = redis.call('HGETALL', live_seats)
  for i = 1, #entries, 2 do
    local n, who = string.match(entries[i + 1], '^(%d+) (.*)$')
    if who == owner then
      local until_ms = redis.call('ZSCORE', live_counts, entries[i])
      if until_ms and tonumber(until_ms) > now then
        sum = sum + tonumber(n)
      end
    end
  end
  for _, n in ipairs(redis.call('HVALS', bought)) do
    sum = sum + tonumber(n)
  end
  if sum + seats_n > limit then
    return false, sum
  end
  redis.call('ZADD', live_counts, expires, hold_id)
  redis.call('HSET', live_seats, hold_id, seats_n .. ' ' .. owner)
  return true
end

local function start_attempt()
  if limit > 0 then
    local counted, has = take_count()
    if not counted then
      return {-3, has}
    end
  end
  redis.call('HSET', record,
    'event', event, 'user', user, 'fingerprint', fingerprint, 'seats', ARGV[7], 'sections', ARGV[8],
    'attempt', ARGV[9], 'quote', ARGV[10] or '', 'state', direct and 'held' or 'pending', 'created_ms', now, 'expires_ms', now + ttl_ms, 'cap_ms', now + lifetime_ms,
    'attempt_until_ms', now + attempt_ms)
  if direct then
    -- Held at once: kept as a settled record is, to answer replays after the cap.
    redis.call('HSET', record, 'direct', 1)
    redis.call('PEXPIREAT', record, now + lifetime_ms + tonumber(ARGV[14]))
  else
    -- A pending record whose caller died must not linger: it lives as long as the hold could.
    redis.call('PEXPIRE', record, ttl_ms + attempt_ms)
  end
  return {0, now + ttl_ms, now + lifetime_ms, now}
end

if not state then
  return start_attempt()
end
if state == 'aborting' then
  return {-2, 100}
end
if (state == 'pending' or (state == 'held' and current[11] == '1')) and current[10] == ARGV[9] then
  -- This very call again: the client resent it after losing the reply (a dropped connection).
  -- The attempt is the caller's own; it goes on as if the first reply had arrived.
  return {0, tonumber(current[6]), tonumber(current[7]), now}
end
if state == 'pending' then
  local attempt_until = tonumber(current[5])
  if attempt_until > now then
    return {-2, attempt_until - now}
  end
  if current[2] ~= event or current[3] ~= user or current[4] ~= fingerprint then
    return {-1}
  end
  -- The previous attempt's caller died mid-way: take over with fresh clocks and a new token.
  -- Seats it took are recorded under this same hold id, so hold.lua treats them as ours.
  return start_attempt()
end
if current[2] ~= event or current[3] ~= user or current[4] ~= fingerprint then
  return {-1}
end
local expires = tonumber(current[6])
if state == 'held' and current[11] == '1' and expires > now then
  local attempt_until = tonumber(current[5])
  if attempt_until > now then
    return {2, state, expires, tonumber(current[7]), tonumber(current[8]), now, current[9] or '', current[10]}
  end
  -- Past the window: this call owns the record now, with a new window of its own.
  redis.call('HSET', record, 'attempt', ARGV[9], 'attempt_until_ms', now + attempt_ms)
  return {3, state, expires, tonumber(current[7]), tonumber(current[8]), now, current[9] or '',
    now + math.floor(attempt_ms / 2)}
end
return {1, state, tonumber(current[6]), tonumber(current[7]), tonumber(current[8]), now, current[9] or ''}
