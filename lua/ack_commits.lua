--[[
  ack_commits.lua: acknowledge commits the durable writer has written, and delete them from the
  commit queue. One call where XACK then XDEL were two, for every batch the writer writes.

  KEYS[1]  queue    STREAM  the commit queue                          seat:{commits:N}:queue
  ARGV[1]  group            the writers' consumer group
  ARGV[2..] id              the entries written (their orders are in Postgres)

  Returns  {0, acked}       `acked` of them were still pending (fewer on a replay, or for an
                            entry another writer claimed and acknowledged); every one is deleted.

  Cluster: one key.
]]
local queue, group = KEYS[1], ARGV[1]
local acked = 0
-- In slices: unpack() puts every id on Lua's C stack.
local SLICE = 500
for first = 2, #ARGV, SLICE do
  local last = math.min(first + SLICE - 1, #ARGV)
  acked = acked + redis.call('XACK', queue, group, unpack(ARGV, first, last))
  redis.call('XDEL', queue, unpack(ARGV, first, last))
end
return {0, acked}
