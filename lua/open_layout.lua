--[[
  open_layout.lua: record which section each seat of an event belongs to (the event's layout).

  KEYS[1]  layout    HASH  seat_id -> section_id, one per event      seat:{ev:E}:layout
  KEYS[2]  sections  SET   section ids of the event                  seat:{ev:E}:sections
  ARGV[1]  section_id      the section these seats belong to
  ARGV[2..] seat_id        seats of that section (a chunk; callers send at most a few thousand)

  Returns  {0, added}             recorded; `added` seats were new (a re-run adds 0: idempotent)
           {-1, seat_id, ...}     these seats are already recorded under another section; nothing written

  Cluster: both KEYS share the hash tag {ev:E}.   Clock: not used.
  Why a script: the "same seat, other section" check and the write must be one step, so two organizers
  opening the same event concurrently cannot leave a seat mapped to two sections.
]]
local layout, sections = KEYS[1], KEYS[2]
local section = ARGV[1]

local conflicts = {}
for i = 2, #ARGV do
  local current = redis.call('HGET', layout, ARGV[i])
  if current and current ~= section then
    conflicts[#conflicts + 1] = ARGV[i]
  end
end
if #conflicts > 0 then
  return {-1, unpack(conflicts)}
end

local added = 0
for i = 2, #ARGV do
  added = added + redis.call('HSETNX', layout, ARGV[i], section)
end
redis.call('SADD', sections, section)
return {0, added}
