import { LuaScript } from '@fastvlm/jobs';

/**
 * The endpoint store's Lua scripts. Each touches one endpoint's hash only
 * (in the shared slot), so each is one atomic step on any Redis topology.
 */

/**
 * Sets fields of an endpoint that still exists (a PATCH racing a DELETE must not resurrect it).
 * KEYS: endpoint. ARGV: field, value, … Reply: 1 set, 0 no such endpoint.
 */
export const UPDATE_IF_EXISTS = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
`);

/**
 * Compare-and-set of one field: the secrets list is rewritten whole, and two
 * rotations at once must not lose one of the new secrets.
 * KEYS: endpoint. ARGV: field, expected value, new value. Reply: 1 set, 0 changed meanwhile, -1 no such endpoint.
 */
export const SET_IF_UNCHANGED = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
`);

/**
 * Whether a delivery attempt may go out now, read with what it needs (URL and secrets) in one step.
 * Once the consecutive failures reach the threshold the circuit is open until `open_until`; after that,
 * one attempt at a time goes through as the probe (`probe_until` holds the others back while it runs).
 * KEYS: endpoint. ARGV: now ms, failure threshold, probe hold ms.
 * Reply: {'gone'} | {'disabled'} | {'open', until ms} | {'probing', probe deadline ms} | {'ok' or 'probe', url, secrets json}.
 */
export const ADMIT = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return {'gone'} end
local f = redis.call('HMGET', KEYS[1], 'enabled', 'failures', 'open_until', 'probe_until', 'url', 'secrets')
if f[1] ~= '1' then return {'disabled'} end
local now = tonumber(ARGV[1])
if (tonumber(f[2]) or 0) < tonumber(ARGV[2]) then return {'ok', f[5], f[6]} end
local openUntil = tonumber(f[3]) or 0
if openUntil > now then return {'open', tostring(openUntil)} end
local probeUntil = tonumber(f[4]) or 0
if probeUntil > now then return {'probing', tostring(probeUntil)} end
redis.call('HSET', KEYS[1], 'probe_until', string.format('%.0f', now + tonumber(ARGV[3])))
return {'probe', f[5], f[6]}
`);

/**
 * Records an attempt's result in the endpoint's circuit. A success closes it (failures back to 0);
 * the failure that reaches the threshold opens it for the base time, a failed probe for twice the
 * last opening (capped); other failures only count.
 * KEYS: endpoint. ARGV: ok (1/0), probe (1/0), now ms, threshold, open ms, max open ms.
 * Reply: the new opening in ms, 0 when the circuit did not open.
 */
export const RECORD_RESULT = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] == '1' then
  redis.call('HSET', KEYS[1], 'failures', 0, 'open_until', 0, 'open_ms', 0, 'probe_until', 0)
  return 0
end
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local base, cap = tonumber(ARGV[5]), tonumber(ARGV[6])
local openMs
if ARGV[2] == '1' then
  local last = tonumber(redis.call('HGET', KEYS[1], 'open_ms')) or 0
  if last > 0 then openMs = math.min(last * 2, cap) else openMs = math.min(base, cap) end
elseif failures == tonumber(ARGV[4]) then
  openMs = math.min(base, cap)
else
  return 0
end
redis.call('HSET', KEYS[1], 'open_until', string.format('%.0f', tonumber(ARGV[3]) + openMs), 'open_ms', string.format('%.0f', openMs), 'probe_until', 0)
return openMs
`);
