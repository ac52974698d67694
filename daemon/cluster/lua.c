/*
 * The Lua scripts (lua.h). Shared pieces are C string macros, so each
 * script is one literal that Redis caches by its digest.
 */
#include "cluster/lua.h"

#include <stddef.h>

/* The end of every way a task ends: its hash and output expire after the
 * retention, its entry is acknowledged, and an awaiter anywhere is told
 * (on the events channel, every script's last argument: lua.h).
 * Expects `task`, `stream`, `eid`, `ttl`, `out` (or nil) and `w` (someone
 * awaits the task: its hash has the field w). EXPIRE of an output stream
 * that was never written does nothing. The entry stays in the stream until
 * LUA_TRIM drops it with the other acknowledged ones: an XDEL for each
 * entry was the dearest command of a task's whole way through Redis. */
#define LUA_SETTLE                                                                                 \
    "redis.call('EXPIRE', task, ttl)\n"                                                            \
    "if out then redis.call('EXPIRE', out, ttl) end\n"                                             \
    "if stream and eid then redis.call('XACK', stream, 'aiod', eid) end\n"                         \
    "if w then redis.call('PUBLISH', ARGV[#ARGV], 'done ' .. string.sub(task, 8)) end\n"

/* Drops the acknowledged head of each stream in `acked` (stream -> the id
 * of an entry just acknowledged there). The group reads a stream in order,
 * so every entry before the oldest pending one was delivered and
 * acknowledged; with none pending, every entry before the group's last
 * delivered one was (XINFO GROUPS; an entry just acknowledged, if that
 * cannot be read). XTRIM MINID ~ drops them, whole stream nodes at a time,
 * which costs little, and leaves at most the node that id is in. Through
 * pcall, so that a refusal cannot fail the outcomes written before: a
 * stream or group that is gone (NOGROUP: deleted, or lost by Redis) has
 * nothing to trim; any other refusal (an ACL user without +xpending,
 * +xinfo|groups or +xtrim) is answered after the outcomes' replies as
 * "notrim REASON", for the host to say. */
#define LUA_TRIM                                                                                   \
    "local notrim\n"                                                                               \
    "local function refused(r)\n"                                                                  \
    "  if type(r) ~= 'table' or not r.err then return false end\n"                                 \
    "  if not string.find(r.err, 'NOGROUP', 1, true) then notrim = r.err end\n"                    \
    "  return true\n"                                                                              \
    "end\n"                                                                                        \
    "for stream, eid in pairs(acked) do\n"                                                         \
    "  local p = redis.pcall('XPENDING', stream, 'aiod')\n"                                        \
    "  if not refused(p) then\n"                                                                   \
    "    local upto = p[2]\n"                                                                      \
    "    if p[1] == 0 then\n"                                                                      \
    "      upto = eid\n"                                                                           \
    "      local g = redis.pcall('XINFO', 'GROUPS', stream)\n"                                     \
    "      for _, x in ipairs(refused(g) and {} or g) do\n"                                        \
    "        local name, last\n"                                                                   \
    "        for i = 1, #x, 2 do\n"                                                                \
    "          if x[i] == 'name' then name = x[i + 1] end\n"                                       \
    "          if x[i] == 'last-delivered-id' then last = x[i + 1] end\n"                          \
    "        end\n"                                                                                \
    "        if name == 'aiod' and last then upto = last end\n"                                    \
    "      end\n"                                                                                  \
    "    end\n"                                                                                    \
    "    refused(redis.pcall('XTRIM', stream, 'MINID', '~', upto))\n"                              \
    "  end\n"                                                                                      \
    "end\n"                                                                                        \
    "if notrim then res[#KEYS / 3 + 1] = 'notrim ' .. notrim end\n"

const char lua_submit[] =
    "local host, res = ARGV[1], {}\n"
    "for j = 0, (#KEYS - 1) / 2 - 1 do\n"
    "  local stream, serve, a = KEYS[2 + 2 * j], KEYS[3 + 2 * j], 2 + 5 * j\n"
    "  if redis.call('EXISTS', serve) == 0 then\n"
    "    res[j + 1] = 'NOSERVE'\n"
    "  else\n"
    "    local id\n"
    "    repeat\n"
    "      id = string.format('%.0f', 281474976710656 + redis.call('INCR', KEYS[1]))\n"
    "    until redis.call('EXISTS', 'aiod:t:' .. id) == 0\n"
    "    local eid = redis.call('XADD', stream, '*', 'id', id)\n"
    "    redis.call('HSET', 'aiod:t:' .. id, 'state', 'queued', 'q', ARGV[a + 1],\n"
    "      'f', ARGV[a + 2], 'uid', ARGV[a + 3], 'ohost', host, 'created', ARGV[a + 4],\n"
    "      'stream', stream, 'eid', eid, 't', ARGV[a], 'attempt', '0')\n"
    "    res[j + 1] = id\n"
    "  end\n"
    "end\n"
    "return res\n";

const char lua_start[] =
    "local task, stream, eid, ttl = KEYS[1], KEYS[2], ARGV[1], ARGV[7]\n"
    "local out = nil\n"
    "local st = redis.call('HGET', task, 'state')\n"
    "if st == 'queued' then\n"
    "  redis.call('HSET', task, 'state', 'running', 'host', ARGV[2], 'started', ARGV[3],\n"
    "    'run', ARGV[8])\n"
    "  redis.call('HINCRBY', task, 'attempt', 1)\n"
    "  return {'run', redis.call('HGET', task, 't'), ''}\n"
    "end\n"
    "if st == 'running' and redis.call('HGET', task, 'cancel') == '1' then\n"
    "  redis.call('HSET', task, 'state', 'cancelled', 'kind', 'CancelledError',\n"
    "    'msg', 'cancelled while its host was cut off', 'finished', ARGV[3])\n"
    "  out = 'aiod:o:' .. string.sub(task, 8)\n"
    "  local w = redis.call('HEXISTS', task, 'w') == 1\n" LUA_SETTLE "  return {'ended'}\n"
    "end\n"
    "if st == 'running' then\n"
    "  local prev = redis.call('HGET', task, 'host') or ''\n"
    /* Taken by this very process, whose reply was lost: it never ran. */
    "  if prev == ARGV[2] and redis.call('HGET', task, 'run') == ARGV[8] then\n"
    "    redis.call('HSET', task, 'started', ARGV[3])\n"
    "    return {'run', redis.call('HGET', task, 't'), ''}\n"
    "  end\n"
    "  local n = tonumber(redis.call('HGET', task, 'interrupted') or '0')\n"
    "  redis.call('HSET', task, 'interrupted', n + 1)\n"
    "  if ARGV[4] == '1' and n < tonumber(ARGV[5]) then\n"
    "    redis.call('HSET', task, 'host', ARGV[2], 'started', ARGV[3], 'run', ARGV[8])\n"
    "    redis.call('HINCRBY', task, 'attempt', 1)\n"
    "    return {'run', redis.call('HGET', task, 't'), prev}\n"
    "  end\n"
    "  redis.call('HSET', task, 'state', 'failed', 'kind', 'Interrupted',\n"
    "    'msg', string.format(ARGV[6], prev), 'finished', ARGV[3])\n"
    "  out = 'aiod:o:' .. string.sub(task, 8)\n"
    "  local w = redis.call('HEXISTS', task, 'w') == 1\n" LUA_SETTLE "  return {'ended'}\n"
    "end\n"
    "redis.call('XACK', stream, 'aiod', eid)\n"
    "return {'skip'}\n";

const char lua_finish[] =
    "local host, ttl, res, acked = ARGV[1], ARGV[2], {}, {}\n"
    "for j = 0, #KEYS / 3 - 1 do\n"
    "  local task, stream = KEYS[3 * j + 1], KEYS[3 * j + 2]\n"
    "  local a = 3 + 8 * j\n"
    "  local eid = ARGV[a]\n"
    "  local v = redis.call('HMGET', task, 'state', 'host', 'w', 'attempt')\n"
    "  if v[1] ~= 'running' or v[2] ~= host then\n"
    "    res[j + 1] = 'lost'\n"
    "  else\n"
    "    local f, n = {'state', ARGV[a + 1], 'finished', ARGV[a + 5]}, 4\n"
    "    if ARGV[a + 2] ~= '' then f[n + 1], f[n + 2], n = 'kind', ARGV[a + 2], n + 2 end\n"
    "    if ARGV[a + 3] ~= '' then f[n + 1], f[n + 2], n = 'msg', ARGV[a + 3], n + 2 end\n"
    "    if ARGV[a + 4] ~= '' then f[n + 1], f[n + 2], n = 'result', ARGV[a + 4], n + 2 end\n"
    "    if ARGV[a + 7] ~= '0' then f[n + 1], f[n + 2], n = 'dropped', ARGV[a + 7], n + 2 end\n"
    "    local out, w = nil, v[3]\n"
    "    if ARGV[a + 6] ~= '0' then\n"
    "      f[n + 1], f[n + 2], out = 'lines', ARGV[a + 6], KEYS[3 * j + 3]\n"
    "    end\n"
    /* An earlier attempt (another host's) may have printed: its stream
     * expires with the task too. */
    "    if not out and (tonumber(v[4]) or 1) > 1 then out = KEYS[3 * j + 3] end\n"
    "    redis.call('HSET', task, unpack(f))\n" LUA_SETTLE "    acked[stream] = eid\n"
    "    res[j + 1] = 'ok'\n"
    "  end\n"
    "end\n" LUA_TRIM "return res\n";

const char lua_cancel[] =
    "local task, ttl = KEYS[1], ARGV[4]\n"
    "local v = redis.call('HMGET', task, 'state', 'uid', 'host', 'stream', 'eid')\n"
    "if not v[1] then return {'none'} end\n"
    "if ARGV[2] ~= '1' and v[2] ~= ARGV[1] then return {'denied', v[2]} end\n"
    "if v[1] == 'queued' then\n"
    "  redis.call('HSET', task, 'state', 'cancelled', 'kind', 'CancelledError',\n"
    "    'msg', 'cancelled while queued (from host ' .. ARGV[5] .. ')', 'finished', ARGV[3])\n"
    "  local stream, eid, out = v[4], v[5], nil\n"
    "  local w = redis.call('HEXISTS', task, 'w') == 1\n" LUA_SETTLE
    /* Deleted too, so that no host reads it to find it cancelled. */
    "  redis.call('XDEL', stream, eid)\n"
    "  return {'cancelled'}\n"
    "end\n"
    "if v[1] == 'running' then\n"
    "  redis.call('HSET', task, 'cancel', '1')\n"
    "  redis.call('PUBLISH', ARGV[#ARGV], 'cancel ' .. string.sub(task, 8))\n"
    "  return {'running', v[3]}\n"
    "end\n"
    "return {'finished', v[1]}\n";

const char lua_await[] = "local v = redis.call('HMGET', KEYS[1], 'state', 'uid')\n"
                         "if not v[1] then return {'none'} end\n"
                         "if v[1] == 'queued' or v[1] == 'running' then\n"
                         "  redis.call('HSET', KEYS[1], 'w', '1')\n"
                         "  return {'wait', v[2]}\n"
                         "end\n"
                         "local r = redis.call('HGETALL', KEYS[1])\n"
                         "table.insert(r, 1, 'done')\n"
                         "return r\n";

const char lua_unstart[] =
    "local task, ttl = KEYS[1], ARGV[3]\n"
    "local v = redis.call('HMGET', task, 'state', 'host', 'cancel', 'stream', 'eid')\n"
    "if v[1] ~= 'running' or v[2] ~= ARGV[1] then return 0 end\n"
    /* A cancel came while it was being put back: it ends cancelled, as a
     * queued task's cancel does, instead of running after all. */
    "if v[3] == '1' then\n"
    "  redis.call('HSET', task, 'state', 'cancelled', 'kind', 'CancelledError',\n"
    "    'msg', 'cancelled before it started', 'finished', ARGV[2])\n"
    "  redis.call('HDEL', task, 'run')\n"
    "  local out, stream, eid = nil, v[4], v[5]\n"
    "  local w = redis.call('HEXISTS', task, 'w') == 1\n" LUA_SETTLE "  return 2\n"
    "end\n"
    "redis.call('HSET', task, 'state', 'queued')\n"
    "redis.call('HDEL', task, 'host', 'started', 'run')\n"
    "redis.call('HINCRBY', task, 'attempt', -1)\n"
    "return 1\n";

const char lua_fetch[] =
    "local host, left, n, out = ARGV[1], tonumber(ARGV[2]), #KEYS, {}\n"
    "for i = 0, n - 1 do\n"
    "  if left <= 0 then break end\n"
    "  local at = ((tonumber(ARGV[3]) + i) % n) + 1\n"
    "  local k = KEYS[at]\n"
    "  local count = math.min(left, tonumber(ARGV[5 + at]))\n"
    "  local r = count > 0 and redis.call('XREADGROUP', 'GROUP', 'aiod', host, 'COUNT', count,\n"
    "    'STREAMS', k, '>')\n"
    "  if r then\n"
    "    for _, e in ipairs(r[1][2]) do\n"
    "      left = left - 1\n"
    "      local id = e[2] and e[2][2]\n"
    "      local task = id and ('aiod:t:' .. id)\n"
    "      local v = task and redis.call('HMGET', task, 'state', 't', 'attempt')\n"
    "      if v and v[1] == 'queued' then\n"
    "        redis.call('HSET', task, 'state', 'running', 'host', host, 'started', ARGV[4],\n"
    "          'attempt', (tonumber(v[3]) or 0) + 1, 'run', ARGV[5])\n"
    "        table.insert(out, {k, e[1], id, v[2]})\n"
    "      else\n"
    "        redis.call('XACK', k, 'aiod', e[1])\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return out\n";

/* Whether Redis ran the hosts' periodic calls steadily (lua.h, lua_pulse):
 * pulse(pulse key, calm key, visibility ms) records Redis's clock, opens a
 * calm of one visibility after a gap of over half of one, and says whether
 * claims may go now (no calm running). */
#define LUA_PULSE                                                                                  \
    "local function pulse(pk, ck, vis)\n"                                                          \
    "  local t = redis.call('TIME')\n"                                                             \
    "  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"                    \
    "  local last = tonumber(redis.call('GET', pk))\n"                                             \
    "  redis.call('SET', pk, string.format('%.0f', now))\n"                                        \
    "  if last and now - last > vis / 2 then\n"                                                    \
    "    redis.call('SET', ck, string.format('%.0f', now + vis))\n"                                \
    "  end\n"                                                                                      \
    "  local calm = tonumber(redis.call('GET', ck))\n"                                             \
    "  if calm and calm > now + vis then\n"                                                        \
    "    redis.call('SET', ck, string.format('%.0f', now))\n"                                      \
    "    calm = now\n"                                                                             \
    "  end\n"                                                                                      \
    "  return not calm or now >= calm\n"                                                           \
    "end\n"

const char lua_pulse[] = LUA_PULSE "pulse(KEYS[1], KEYS[2], tonumber(ARGV[1]))\n"
                                   "return 1\n";

const char lua_claim[] =
    LUA_PULSE "if not pulse(KEYS[2], KEYS[3], tonumber(ARGV[1])) then return {'calm'} end\n"
              "return redis.call('XAUTOCLAIM', KEYS[1], 'aiod', ARGV[2], ARGV[1], ARGV[3], "
              "'COUNT', ARGV[4])\n";

const char *const lua_scripts[] = {lua_submit,  lua_start, lua_finish, lua_cancel, lua_await,
                                   lua_unstart, lua_fetch, lua_pulse,  lua_claim,  NULL};
