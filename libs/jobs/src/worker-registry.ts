import type { Redis } from 'ioredis';
import { poolQueue, type RedisKeys } from '@fastvlm/contracts';
import { LuaScript } from './lua-script';

/** Most stale workers one prune removes: every heartbeat prunes, so a backlog drains in a few beats. */
const PRUNE_LIMIT = 100;

/**
 * Removes the given workers whose last heartbeat is still older than ARGV[1]
 * (ms): their member of the set (KEYS[1]) and their hash (KEYS[1 + i] for
 * ARGV[1 + i]). The candidates are read first, outside the script, so that
 * every key it touches is declared (a Cluster requires it); the score is
 * checked again here, so a worker that beat in between stays.
 */
const PRUNE = new LuaScript(`
local n = 0
for i = 2, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) <= tonumber(ARGV[1]) then
    redis.call('ZREM', KEYS[1], ARGV[i])
    redis.call('DEL', KEYS[i])
    n = n + 1
  end
end
return n
`);

export interface WorkerInfo {
  id: string;
  model: string;
  revision: string;
  dtype: string;
  device: string;
  pid: number;
  startedAt: number;
  /** BullMQ queue the worker consumes (its model pool's); the scaler counts ready workers per queue. */
  queue: string;
}

/**
 * Workers announce themselves once their model is loaded and warmed, and renew
 * a heartbeat; the gateway is ready only while at least one is alive. Workers
 * that died without withdrawing (kill -9, a lost node) are pruned by the
 * heartbeats of the others, so the registry never grows without bound.
 */
export class WorkerRegistry {
  /** What this process announced, so that a heartbeat can announce again if its hash was pruned or expired. */
  private announced: WorkerInfo | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    /** A worker whose last heartbeat is older than this is considered gone. */
    private readonly staleAfterMs = 15_000,
  ) {}

  async announce(info: WorkerInfo, now: number): Promise<void> {
    this.announced = info;
    const fields: Record<string, string> = {};
    for (const [k, v] of Object.entries(info)) fields[k] = String(v);
    await this.redis
      .multi()
      .hset(this.keys.worker(info.id), fields)
      .pexpire(this.keys.worker(info.id), this.staleAfterMs * 4)
      .zadd(this.keys.workers(), now, info.id)
      .exec();
  }

  /**
   * Renews this worker's heartbeat and prunes dead ones. A worker paused past
   * the prune bound (its hash gone) announces itself again.
   */
  async heartbeat(id: string, now: number): Promise<void> {
    const replies = await this.redis
      .multi()
      .zadd(this.keys.workers(), now, id)
      .pexpire(this.keys.worker(id), this.staleAfterMs * 4)
      .exec();
    const renewed = replies?.[1]?.[1] === 1;
    if (!renewed && this.announced?.id === id) await this.announce(this.announced, now);
    await this.prune(now);
  }

  /**
   * Removes up to `limit` workers whose last heartbeat is older than four
   * stale periods (their hash has expired by then too); returns how many.
   */
  async prune(now: number, limit = PRUNE_LIMIT): Promise<number> {
    const cutoff = now - this.staleAfterMs * 4;
    const ids = await this.redis.zrangebyscore(this.keys.workers(), '-inf', cutoff, 'LIMIT', 0, limit);
    if (ids.length === 0) return 0;
    const n = await PRUNE.run(this.redis, [this.keys.workers(), ...ids.map((id) => this.keys.worker(id))], [cutoff, ...ids]);
    return Number(n);
  }

  async withdraw(id: string): Promise<void> {
    await this.redis.multi().zrem(this.keys.workers(), id).del(this.keys.worker(id)).exec();
  }

  /** Counts a worker that could not load `model`; such a worker exits, so the count lives here for the gateway's metrics. */
  async recordLoadFailure(model: string): Promise<void> {
    await this.redis.hincrby(this.keys.modelLoadFailures(), model, 1);
  }

  /** Model load failures so far, by model. */
  async loadFailures(): Promise<Record<string, number>> {
    const h = await this.redis.hgetall(this.keys.modelLoadFailures());
    return Object.fromEntries(Object.entries(h).map(([model, n]) => [model, Number(n)]));
  }

  /** Workers with a recent heartbeat, newest first. */
  async alive(now: number): Promise<WorkerInfo[]> {
    const ids = await this.redis.zrevrangebyscore(this.keys.workers(), '+inf', now - this.staleAfterMs);
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hgetall(this.keys.worker(id));
    const rows = (await pipeline.exec()) ?? [];
    const out: WorkerInfo[] = [];
    for (const [err, h] of rows) {
      const r = h as Record<string, string> | null;
      if (err || !r?.id) continue;
      out.push({
        id: r.id,
        model: r.model ?? '',
        revision: r.revision ?? '',
        dtype: r.dtype ?? '',
        device: r.device ?? '',
        pid: Number(r.pid),
        startedAt: Number(r.startedAt),
        // Every worker announces its queue; a hash without one can only be its model's pool.
        queue: r.queue ?? poolQueue(r.model ?? ''),
      });
    }
    return out;
  }
}
