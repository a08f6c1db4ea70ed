import { createHash } from 'node:crypto';
import calculateSlot from 'cluster-key-slot';
import type { Redis } from 'ioredis';
import { asCluster } from './redis';
import { TickBatch } from './tick-batch';

/** Most calls one batched script runs: a batch is one Redis command, and Redis serves nothing else while it runs. */
const MAX_BATCH = 64;

interface Call {
  keys: string[];
  args: (string | number)[];
}

/**
 * A Lua script run by SHA, loaded on first use or after a Redis restart (NOSCRIPT).
 *
 * With `batch`, calls made on one connection while the event loop is in one
 * phase (requests that arrived together) run as one command: a wrapper script
 * runs the script once per call, in call order, each in its own `pcall`.
 * Every call is still atomic and sees the writes of the calls before it,
 * exactly as if they had been sent one after another, and an error in one
 * call is that call's alone. Under load this replaces a round trip per call
 * by one per batch, which is most of what a short script costs; a call made
 * alone runs the script itself. The price: a call goes out when the phase
 * ends, after commands issued later without waiting for it, so batch only
 * scripts whose callers await them before anything that depends on them.
 *
 * On a Redis Cluster a command may only touch keys of one hash slot, so a
 * batch is split by slot (each call's keys must share one, as every script
 * here declares): calls of one slot still run as one command, and the slots'
 * commands go out together.
 */
export class LuaScript {
  private readonly one: ScriptSource;
  private readonly batched: ScriptSource | null;
  private readonly batches = new WeakMap<Redis, TickBatch<Call, unknown>>();

  constructor(source: string, opts: { batch?: boolean } = {}) {
    this.one = new ScriptSource(source);
    this.batched = opts.batch ? new ScriptSource(batchSource(source)) : null;
  }

  run(redis: Redis, keys: string[], args: (string | number)[]): Promise<unknown> {
    const batched = this.batched;
    if (!batched) return this.one.run(redis, keys, args);
    let batch = this.batches.get(redis);
    if (!batch) {
      const many = asCluster(redis) ? runPerSlot : runMany;
      batch = new TickBatch<Call, unknown>(
        (calls) => many(batched, this.one, redis, calls),
        (c) => this.one.run(redis, c.keys, c.args),
        MAX_BATCH,
      );
      this.batches.set(redis, batch);
    }
    return batch.submit({ keys, args });
  }
}

/** Runs a batch through the wrapper script (see `batchSource`); one reply per call. */
async function runMany(batched: ScriptSource, _one: ScriptSource, redis: Redis, calls: Call[]): Promise<unknown[]> {
  const header: number[] = [calls.length];
  for (const c of calls) header.push(c.keys.length, c.args.length);
  const replies = await batched.run(redis, calls.flatMap((c) => c.keys), [...header, ...calls.flatMap((c) => c.args)]);
  if (!Array.isArray(replies)) throw new Error('a batched script did not answer with an array');
  return replies as unknown[];
}

/** `runMany` once per hash slot of the calls' first keys (a call alone in its slot runs the plain script). */
async function runPerSlot(batched: ScriptSource, one: ScriptSource, redis: Redis, calls: Call[]): Promise<unknown[]> {
  const bySlot = new Map<number, number[]>();
  calls.forEach((c, i) => {
    const slot = c.keys.length > 0 ? calculateSlot(c.keys[0] as string) : 0;
    const group = bySlot.get(slot);
    if (group) group.push(i);
    else bySlot.set(slot, [i]);
  });
  const replies = new Array<unknown>(calls.length);
  await Promise.all(
    [...bySlot.values()].map(async (indices) => {
      const group = indices.map((i) => calls[i] as Call);
      if (group.length === 1) {
        const c = group[0] as Call;
        // An error is this call's alone, as in a batch.
        replies[indices[0] as number] = await one.run(redis, c.keys, c.args).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
        return;
      }
      const out = await runMany(batched, one, redis, group);
      indices.forEach((i, k) => (replies[i] = out[k]));
    }),
  );
  return replies;
}

class ScriptSource {
  private readonly sha: string;

  constructor(private readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(redis: Redis, keys: string[], args: (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (e) {
      if (e instanceof Error && e.message.startsWith('NOSCRIPT')) {
        return redis.eval(this.source, keys.length, ...keys, ...args);
      }
      throw e;
    }
  }
}

/**
 * The script as a function of (KEYS, ARGV), run for each call of a batch.
 * ARGV: number of calls n, then each call's key count and argument count,
 * then every call's arguments; KEYS: every call's keys. Reply: one entry per
 * call; nil becomes false so that the array keeps its length.
 */
function batchSource(source: string): string {
  return `local function script(KEYS, ARGV)
${source}
end
local n = tonumber(ARGV[1])
local out = {}
local k, a = 0, 1 + 2 * n
for i = 1, n do
  local nk, na = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local keys, args = {}, {}
  for j = 1, nk do keys[j] = KEYS[k + j] end
  for j = 1, na do args[j] = ARGV[a + j] end
  k, a = k + nk, a + na
  local ok, r = pcall(script, keys, args)
  if not ok then
    if type(r) == 'table' and r.err then out[i] = r else out[i] = { err = tostring(r) } end
  elseif r == nil then
    out[i] = false
  else
    out[i] = r
  end
end
return out
`;
}
