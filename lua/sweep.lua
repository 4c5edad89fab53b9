--[[
  sweep.lua: forget the expired holds of ONE section and record each expiry in the audit trail.
  Run by the reconciler's expiry sweeper. Seats are already free the moment their expiry passes
  (every script compares the score with redis TIME); this only cleans the keys up, tells the
  audit trail, and bumps the version so seat-map caches refresh.

  KEYS[1]  held     ZSET    seat_id -> hold expiry (unix ms)               seat:{ev:E:sec:S}:held
  KEYS[2]  holder   HASH    seat_id -> hold_id
  KEYS[3]  ver      STRING  change counter
  KEYS[4]  audit    STREAM  the section's audit trail
  KEYS[5]  wl       STRING  waiting-list entries that want this section (lua/include/waitlist.lua)
  KEYS[6]  reserved HASH    seat_id -> when it came back: seats set aside for the waiting list
  ARGV[1]  limit            at most this many seats per call (bounds the script's run time)
  ARGV[2]  copied           the audit copier's cursor ("<ms>-<seq>"): entries up to it are in Postgres,
                            and are trimmed here; "" when the caller has none (nothing is trimmed
                            or returned: it reads and trims itself)
  ARGV[3]  count            at most this many audit entries after `copied` are returned (0: none)

  Returns  {0, swept, version, last_audit_id, next_expiry_ms, added, length, entries}
                                 `swept` expired seats forgotten (0: nothing to do); while a
                                 waiting list wants the section, they are set aside for it.
                                 `last_audit_id`: the newest id the audit trail ever had ("0-0"
                                 when there is none; once copied entries are trimmed, the copier's
                                 cursor), so the reconciler learns whether there is anything to
                                 copy without another call.
                                 `next_expiry_ms`: the earliest hold expiry still ahead (0 when
                                 nothing is held), so a quiet section need not be swept before.
                                 `added`, `length`: the trail's entries ever added and in it now,
                                 after the trim (XINFO STREAM; 0, 0 when there is no trail): an
                                 entry added, neither copied nor still there, was dropped by the
                                 length cap.
                                 `entries`: up to `count` entries after `copied`, as XRANGE gives
                                 them ({} without `copied`).
  One call does a section's whole pass when the copier's cursor is current: sweep, trim what was
  copied, count, read what is new (the copier used to spend five calls on it).

  Audit entries (every script writes the same shape; the reconciler copies them to Postgres):
    a  action   held | released | expired | extended | pinned | unpinned | sold | blocked | unblocked
                | reserved (set aside for the waiting list) | unreserved (back to the open sale)
    h  hold id (the organizer's tag for blocks; empty for unblocks)
    u  actor    the buyer's user id, `checkout`, `system`, `system:expiry`, `organizer`, ...
    t  when, unix ms (redis TIME; for expiries, the moment the hold ended)
    s  seat ids, space-separated
  The stream is capped near `audit_max_len` entries (RedisSettings, 1,000,000 by default; MAXLEN ~,
  lua/include/audit.lua) so a reconciler outage cannot exhaust
  memory; the audit lag metric alerts long before the cap is reached.

  Cluster: all KEYS share the hash tag {ev:E:sec:S}.   Clock: redis TIME.
]]
--@include time.lua
--@include audit.lua
--@include waitlist.lua
local held, holder, ver, audit, wl, reserved = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local limit = tonumber(ARGV[1])

local now = now_ms()

local expired = redis.call('ZRANGEBYSCORE', held, '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
local swept = {}
for i = 1, #expired, 2 do
  local seat, ended = expired[i], expired[i + 1]
  audit_add(audit, 'expired', redis.call('HGET', holder, seat) or '', 'system:expiry', ended, seat)
  redis.call('ZREM', held, seat)
  redis.call('HDEL', holder, seat)
  swept[#swept + 1] = seat
end
set_aside(wl, reserved, audit, swept, now)
swept = #swept
local version
if swept > 0 then
  version = redis.call('INCR', ver)
else
  version = tonumber(redis.call('GET', ver) or '0')
end
local next_expiry = redis.call('ZRANGE', held, 0, 0, 'WITHSCORES')[2]

local copied, count = ARGV[2], tonumber(ARGV[3])
local newest, added, length, entries = '0-0', 0, 0, {}
if redis.call('EXISTS', audit) == 1 then
  if copied ~= '' then
    local ms, seq = string.match(copied, '^(%d+)-(%d+)$')
    if ms then
      -- MINID keeps ids >= the threshold: the id after the cursor.
      redis.call('XTRIM', audit, 'MINID', ms .. '-' .. (tonumber(seq) + 1))
    end
  end
  -- The newest id the trail ever had, not its newest entry: once what was copied is trimmed
  -- the trail may be empty, and it still ends where the copier's cursor is.
  local info = redis.call('XINFO', 'STREAM', audit)
  for i = 1, #info, 2 do
    if info[i] == 'entries-added' then
      added = info[i + 1]
    elseif info[i] == 'length' then
      length = info[i + 1]
    elseif info[i] == 'last-generated-id' then
      newest = info[i + 1]
    end
  end
  if copied ~= '' and count > 0 then
    entries = redis.call('XRANGE', audit, '(' .. copied, '+', 'COUNT', count)
  end
end
if copied == '' then
  added, length = 0, 0
end
return {0, swept, version, newest, tonumber(next_expiry or '0'), added, length, entries}
