import type { Redis } from 'ioredis';
import type { RedisKeys } from '@fastvlm/contracts';

export interface WorkerInfo {
  id: string;
  model: string;
  revision: string;
  dtype: string;
  device: string;
  pid: number;
  startedAt: number;
}

/**
 * Workers announce themselves once their model is loaded and warmed, and renew
 * a heartbeat; the gateway is ready only while at least one is alive.
 */
export class WorkerRegistry {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    /** A worker whose last heartbeat is older than this is considered gone. */
    private readonly staleAfterMs = 15_000,
  ) {}

  async announce(info: WorkerInfo, now: number): Promise<void> {
    const fields: Record<string, string> = {};
    for (const [k, v] of Object.entries(info)) fields[k] = String(v);
    await this.redis
      .multi()
      .hset(this.keys.worker(info.id), fields)
      .pexpire(this.keys.worker(info.id), this.staleAfterMs * 4)
      .zadd(this.keys.workers(), now, info.id)
      .exec();
  }

  async heartbeat(id: string, now: number): Promise<void> {
    await this.redis
      .multi()
      .zadd(this.keys.workers(), now, id)
      .pexpire(this.keys.worker(id), this.staleAfterMs * 4)
      .exec();
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
      });
    }
    return out;
  }
}
