import type { Redis } from 'ioredis';
import { LuaScript } from '@fastvlm/jobs';
import { KEY_GUARD_LUA } from './key-store';
import { LimitExceeded, type LimitName, type LimitState } from './limit-error';

export interface WindowLimit {
  name: LimitName;
  key: string;
  /** Units this request takes (1 for a request, max_tokens for tokens). */
  cost: number;
  max: number;
  windowMs: number;
}

/**
 * Fixed windows that start with their first use (as rate-limiter-flexible's
 * Redis limiter does), checked all-or-nothing in one script: a request
 * refused by one limit takes nothing from the others, and every gateway pod
 * shares the counters. Within one window at most `max` units pass.
 *
 * consume(ko, ao): counters are KEYS[ko + 1 …], and ARGV[ao + 1 …] holds
 * cost, max, window ms for each. Reply: {1, used_1, pttl_1, …} or
 * {0, index, used, pttl} for the first limit that refuses.
 */
const CONSUME_FN = `
local function consume(ko, ao)
  local n = #KEYS - ko
  local used, ttl, fresh = {}, {}, {}
  for i = 1, n do
    local cost, max, win = tonumber(ARGV[ao + 3 * i - 2]), tonumber(ARGV[ao + 3 * i - 1]), tonumber(ARGV[ao + 3 * i])
    local u = tonumber(redis.call('GET', KEYS[ko + i]) or '0')
    local t = redis.call('PTTL', KEYS[ko + i])
    if t < 0 then u = 0; t = win; fresh[i] = true end
    if u + cost > max then return {0, i, u, t} end
    used[i] = u; ttl[i] = t
  end
  local out = {1}
  for i = 1, n do
    local cost, win = tonumber(ARGV[ao + 3 * i - 2]), tonumber(ARGV[ao + 3 * i])
    if fresh[i] then redis.call('SET', KEYS[ko + i], cost, 'PX', win) else redis.call('INCRBY', KEYS[ko + i], cost) end
    out[#out + 1] = used[i] + cost
    out[#out + 1] = ttl[i]
  end
  return out
end
`;

/** KEYS: counters. ARGV: cost, max, window ms for each. */
const CONSUME = new LuaScript(`${CONSUME_FN}
return consume(0, 0)
`, { batch: true });

/** KEYS: key record, tenant settings, counters. ARGV: fingerprint, then cost, max, window ms for each counter. */
const CONSUME_GUARDED = new LuaScript(`${CONSUME_FN}
${KEY_GUARD_LUA}
return consume(2, 1)
`, { batch: true });

/** The key record and tenant settings a guarded consume depends on, and their expected hash. */
export interface KeyGuard {
  recordKey: string;
  tenantSettingsKey: string;
  fingerprint: string;
}

export class WindowLimiter {
  constructor(private readonly redis: Redis) {}

  /** Takes `cost` from every limit, or throws `LimitExceeded` (429) for the first one that cannot give it. */
  async consume(limits: readonly WindowLimit[]): Promise<LimitState[]> {
    if (limits.length === 0) return [];
    const r = (await CONSUME.run(this.redis, limits.map((l) => l.key), limitArgs(limits))) as number[];
    return settle(limits, r);
  }

  /**
   * As `consume`, but only while the guarded key and tenant settings still
   * hash to the guard's fingerprint; null (nothing taken) when they changed.
   */
  async consumeGuarded(guard: KeyGuard, limits: readonly WindowLimit[]): Promise<LimitState[] | null> {
    const keys = [guard.recordKey, guard.tenantSettingsKey, ...limits.map((l) => l.key)];
    const r = (await CONSUME_GUARDED.run(this.redis, keys, [guard.fingerprint, ...limitArgs(limits)])) as number[];
    return r[0] === -1 ? null : settle(limits, r);
  }
}

function limitArgs(limits: readonly WindowLimit[]): number[] {
  const args: number[] = [];
  for (const l of limits) args.push(l.cost, l.max, l.windowMs);
  return args;
}

/** The states after a consume script's reply, or the refusal it reports. */
function settle(limits: readonly WindowLimit[], r: number[]): LimitState[] {
  if (r[0] === 1) {
    return limits.map((l, i) => ({ name: l.name, limit: l.max, remaining: Math.max(0, l.max - (r[1 + 2 * i] ?? 0)), resetMs: r[2 + 2 * i] ?? l.windowMs }));
  }
  const l = limits[(r[1] ?? 1) - 1] as WindowLimit;
  const used = r[2] ?? l.max;
  const resetMs = r[3] ?? l.windowMs;
  const state: LimitState = { name: l.name, limit: l.max, remaining: Math.max(0, l.max - used), resetMs };
  throw new LimitExceeded('rate_limited', limitMessage(l), state, resetMs);
}

function limitMessage(l: WindowLimit): string {
  const per = `${Math.round(l.windowMs / 1000)} s`;
  switch (l.name) {
    case 'key_requests':
      return `This API key's rate limit of ${l.max} requests per ${per} is used up; retry after the Retry-After delay.`;
    case 'tenant_requests':
      return `Your organisation's rate limit of ${l.max} requests per ${per} is used up; retry after the Retry-After delay.`;
    case 'tenant_tokens':
      return `Your organisation's limit of ${l.max} generated tokens per ${per} is used up (each request reserves its max_tokens); retry later or lower max_tokens.`;
    case 'auth_failures':
      return `Too many failed authentication attempts from your address (${l.max} per ${per}); retry after the Retry-After delay.`;
    case 'tenant_in_flight':
    case 'tenant_queued':
    case 'global_backlog':
      return `Limit ${l.name} reached.`;
  }
}
