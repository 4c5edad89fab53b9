--[[
  open_section.lua: load (part of) one section's seat inventory together with the seats of it
  that Postgres says are sold or blocked, in one step. A section lost from Redis (a primary restarted
  empty, a replica promoted with a lag) is rebuilt by this script: a seat becomes holdable in
  the same call that marks it sold if it is, so no hold or commit ever sees a sold seat free
  (once, a reopened section was free until a later pass re-marked its sales one order at a
  time, and a commit in between was refused as an oversell, refunded, and froze the event).

  KEYS[1]  inv      SET     every seat id of the section (its capacity)    seat:{ev:E:sec:S}:inv
  KEYS[2]  ver      STRING  the section's change counter (seat-map cache version)
  KEYS[3]  sold     HASH    seat_id -> hold_id that bought it
  KEYS[4]  audit    STREAM  the section's audit trail (see lua/sweep.lua for the entry format)
  KEYS[5]  blocked  HASH    seat_id -> organizer's tag
  ARGV[1]  sold_n           how many (seat_id, hold_id) pairs follow: this chunk's seats that
                            Postgres says are live-sold, and to which hold
  ARGV[2]  blocked_n        how many (seat_id, tag) pairs follow them: this chunk's seats the
                            organizer blocked (seat_blocks)
  ARGV[3 .. 2*sold_n+2]     seat_id, hold_id, ...
  then 2*blocked_n          seat_id, tag, ...
  then                      seat_id: the chunk's seats (callers send at most a few thousand,
                            the sold and blocked ones among them)

  Returns  {0, added, capacity, marked}   `added` seats were new; `marked` sold or blocked
                                          seats Redis lacked were marked (a re-run adds and
                                          marks 0: idempotent)

  Cluster: all KEYS share the hash tag {ev:E:sec:S}.   Clock: redis TIME (audit only).
  Opening never frees, un-sells or un-blocks a seat that already exists, and never changes a
  sale Redis already has (a seat sold to another hold is left for the reconciler's oversell
  check), and never blocks a sold seat: re-opening an event that is on sale is harmless. Marks
  are audited ("sold", "blocked" by system:rebuild).
]]
--@include time.lua
--@include audit.lua
local inv, ver, sold, audit, blocked = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local sold_n, blocked_n = tonumber(ARGV[1]), tonumber(ARGV[2])

local now = now_ms()

local marked = 0
local first_sold = 3
for i = first_sold, first_sold + 2 * sold_n - 1, 2 do
  local seat, hold = ARGV[i], ARGV[i + 1]
  if redis.call('HSETNX', sold, seat, hold) == 1 then
    marked = marked + 1
    audit_add(audit, 'sold', hold, 'system:rebuild', now, seat)
  end
end
local first_blocked = first_sold + 2 * sold_n
for i = first_blocked, first_blocked + 2 * blocked_n - 1, 2 do
  local seat, tag = ARGV[i], ARGV[i + 1]
  if redis.call('HEXISTS', sold, seat) == 0 and redis.call('HSETNX', blocked, seat, tag) == 1 then
    marked = marked + 1
    audit_add(audit, 'blocked', tag, 'system:rebuild', now, seat)
  end
end

local added = 0
local first_seat = first_blocked + 2 * blocked_n
local chunk = 500 -- unpack() is bounded by Lua's stack; stay far below it
for first = first_seat, #ARGV, chunk do
  local last = math.min(first + chunk - 1, #ARGV)
  added = added + redis.call('SADD', inv, unpack(ARGV, first, last))
end
if added > 0 or marked > 0 then
  redis.call('INCR', ver)
end
return {0, added, redis.call('SCARD', inv), marked}
