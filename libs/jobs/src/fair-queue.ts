import type { Redis } from 'ioredis';
import { poolQueue, type RedisKeys } from '@fastvlm/contracts';
import { LuaScript } from './lua-script';

/** The lower classes of work, which wait in the fair queue rather than in the pool's BullMQ queue. */
export type BacklogClass = 'async' | 'batch';

/**
 * Weighted fair queueing (WFQ) of a pool's lower-class jobs across tenants.
 * Each job gets a virtual finish tag when it arrives: its tenant's previous
 * tag, or the queue's virtual time if that is later, plus 1 / the tenant's
 * weight. Jobs leave in tag order, and the virtual time becomes the tag of the
 * job that left. So a tenant that queued 5,000 jobs holds tags far ahead,
 * while a tenant arriving later starts at the current virtual time: its jobs
 * interleave with the flood's next ones instead of waiting behind all of
 * them, and an idle tenant banks no credit. Weights share the pool in
 * proportion: weight 2 gets two jobs for every one of weight 1.
 *
 * Every key is in the shared slot and named in KEYS. A claim leases the jobs
 * it returns: a dispatcher that dies before confirming them lets the lease
 * lapse, and the next claim returns them again (adding a job to BullMQ twice
 * under its id is a no-op, and a record that already ended refuses the run),
 * so no job is lost and concurrent dispatchers never take the same job.
 */
const PUSH = new LuaScript(
  `
local count = tonumber(redis.call('HGET', KEYS[4], ARGV[2]) or '0')
if count >= tonumber(ARGV[5]) then return {0, count} end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return {1, count} end
local vt = tonumber(redis.call('GET', KEYS[5]) or '0')
local last = tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0')
local tag = math.max(vt, last) + 1 / tonumber(ARGV[4])
redis.call('ZADD', KEYS[1], tag, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[3], ARGV[2], tag)
redis.call('HINCRBY', KEYS[4], ARGV[2], 1)
return {1, count + 1}
`,
  { batch: true },
);

/**
 * KEYS: async tags, batch tags, jobs (id → entry), counts (tenant → n), async vt, batch vt, leases, picks.
 * ARGV: n, now ms, lease ms, every how many picks batch goes first when both wait.
 * Reply: the entries (JSON), expired leases first.
 */
const CLAIM = new LuaScript(`
local n, now, lease, every = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[7], '-inf', now, 'LIMIT', 0, n)) do
  local entry = redis.call('HGET', KEYS[3], id)
  if entry then
    redis.call('ZADD', KEYS[7], now + lease, id)
    out[#out + 1] = entry
  else
    redis.call('ZREM', KEYS[7], id)
  end
end
while #out < n do
  local a = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local b = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  if #a == 0 and #b == 0 then break end
  local tags, vt, head = KEYS[1], KEYS[5], a
  if #a == 0 or (#b > 0 and redis.call('INCR', KEYS[8]) % every == 0) then tags, vt, head = KEYS[2], KEYS[6], b end
  local id = head[1]
  redis.call('ZREM', tags, id)
  redis.call('SET', vt, head[2])
  local entry = redis.call('HGET', KEYS[3], id)
  if entry then
    local tenant = cjson.decode(entry).tenant
    if redis.call('HINCRBY', KEYS[4], tenant, -1) <= 0 then redis.call('HDEL', KEYS[4], tenant) end
    redis.call('ZADD', KEYS[7], now + lease, id)
    out[#out + 1] = entry
  end
end
return out
`);

/** KEYS: jobs, leases. ARGV: ids. */
const CONFIRM = new LuaScript(`
for i = 1, #ARGV do
  redis.call('ZREM', KEYS[2], ARGV[i])
  redis.call('HDEL', KEYS[1], ARGV[i])
end
return #ARGV
`);

/** KEYS: async tags, batch tags, jobs, counts, leases. ARGV: id. Reply: 1 removed, 0 not held. */
const REMOVE = new LuaScript(`
local entry = redis.call('HGET', KEYS[3], ARGV[1])
if not entry then return 0 end
redis.call('HDEL', KEYS[3], ARGV[1])
if redis.call('ZREM', KEYS[1], ARGV[1]) + redis.call('ZREM', KEYS[2], ARGV[1]) > 0 then
  local tenant = cjson.decode(entry).tenant
  if redis.call('HINCRBY', KEYS[4], tenant, -1) <= 0 then redis.call('HDEL', KEYS[4], tenant) end
end
redis.call('ZREM', KEYS[5], ARGV[1])
return 1
`);

/** What waits in the fair queue: a job's id and tenant, and whatever the dispatcher needs to enqueue it. */
export interface FairEntry<T> {
  id: string;
  tenant: string;
  workClass: BacklogClass;
  job: T;
}

export interface FairQueueOptions {
  /** How long a claim holds its jobs before another dispatcher may take them again. Default 30 000 ms. */
  leaseMs?: number;
  /** When both classes wait, every how many picks a batch job goes first (the share that bounds batch's wait). Default 5. */
  batchEvery?: number;
}

/** The fair queue of one model pool (see the scripts above). */
export class FairQueue<T> {
  private readonly leaseMs: number;
  private readonly batchEvery: number;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly queue: string,
    opts: FairQueueOptions = {},
  ) {
    this.leaseMs = opts.leaseMs ?? 30_000;
    this.batchEvery = Math.max(2, opts.batchEvery ?? 5);
  }

  private key(part: string): string {
    return this.keys.fair(this.queue, part);
  }

  /**
   * Queues a job for its tenant with the tenant's weight; refused when the
   * tenant already holds `maxPerTenant` jobs here (both classes). Pushing an id again is a no-op.
   */
  async push(entry: FairEntry<T>, weight: number, maxPerTenant: number): Promise<{ accepted: boolean; held: number }> {
    const w = Number.isFinite(weight) && weight > 0 ? weight : 1;
    const [ok, held] = (await PUSH.run(
      this.redis,
      [this.key(`tags:${entry.workClass}`), this.key('jobs'), this.key('last'), this.key('counts'), this.key(`vt:${entry.workClass}`)],
      [entry.id, entry.tenant, JSON.stringify(entry), w, maxPerTenant],
    )) as [number, number];
    return { accepted: ok === 1, held };
  }

  /** Up to `n` jobs in fair order, leased to the caller until it confirms them. */
  async claim(n: number, now: number): Promise<FairEntry<T>[]> {
    if (n <= 0) return [];
    const raw = (await CLAIM.run(
      this.redis,
      [
        this.key('tags:async'),
        this.key('tags:batch'),
        this.key('jobs'),
        this.key('counts'),
        this.key('vt:async'),
        this.key('vt:batch'),
        this.key('leases'),
        this.key('picks'),
      ],
      [n, now, this.leaseMs, this.batchEvery],
    )) as string[];
    return raw.map((r) => JSON.parse(r) as FairEntry<T>);
  }

  /** The claimed jobs are in the pool's queue: they leave the fair queue for good. */
  async confirm(ids: string[]): Promise<void> {
    if (ids.length > 0) await CONFIRM.run(this.redis, [this.key('jobs'), this.key('leases')], ids);
  }

  /** Jobs waiting (not leased), by class: what the autoscaler and admission add to the pool's backlog. */
  async depth(): Promise<Record<BacklogClass, number>> {
    const [a, b] = await Promise.all([this.redis.zcard(this.key('tags:async')), this.redis.zcard(this.key('tags:batch'))]);
    return { async: a, batch: b };
  }

  /** Takes a job out (it was cancelled): it will never be dispatched. False when it was not held here. */
  async remove(id: string): Promise<boolean> {
    const keys = [this.key('tags:async'), this.key('tags:batch'), this.key('jobs'), this.key('counts'), this.key('leases')];
    return (await REMOVE.run(this.redis, keys, [id])) === 1;
  }

  /** Jobs a tenant holds here (waiting, both classes). */
  async heldBy(tenant: string): Promise<number> {
    return Number((await this.redis.hget(this.key('counts'), tenant)) ?? 0);
  }

  /** Whether a job is still held here (waiting or leased): the sweeper must not take it for lost. */
  async holds(id: string): Promise<boolean> {
    return (await this.redis.hexists(this.key('jobs'), id)) === 1;
  }
}

/**
 * Whether a model's pool holds a job: as a BullMQ job of its queue, or in its
 * fair queue (waiting or leased). One transaction: both live in the shared slot.
 */
export function poolHolds(redis: Redis, keys: RedisKeys): (id: string, model: string) => Promise<boolean> {
  return async (id, model) => {
    const queue = poolQueue(model);
    const replies = await redis.multi().exists(`${keys.bull()}:${queue}:${id}`).hexists(keys.fair(queue, 'jobs'), id).exec();
    return (replies ?? []).some(([err, n]) => err === null && n === 1);
  };
}
