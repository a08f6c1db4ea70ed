import { QueueKeys } from 'bullmq';
import type { Redis } from 'ioredis';
import type { AutoscalePart, RedisKeys } from '@fastvlm/contracts';
import { LOADING_STALE_MS, type RecordedSample } from './layout';

/**
 * Counts the workers that take jobs from `queue` now. The scaler passes the
 * worker registry's live entries naming the queue; an adapter, so that this
 * library does not depend on the one that owns the registry.
 */
export type ReadyWorkers = (queue: string, nowMs: number) => Promise<number>;

/** One reading of a queue and its workers. */
export interface LiveSignals {
  /** The reading as the `samples` stream records it (`t` = the epoch second of `nowMs`). */
  sample: RecordedSample;
  /** The `startup` list: seconds from process start to ready of the most recent workers, newest first. */
  startupSeconds: number[];
}

/**
 * BullMQ 6 scores a delayed job `timestamp * 0x1000 + n` (n tells apart jobs of one millisecond), so the
 * jobs due at `nowMs` are those scored below `(nowMs + 1) * 0x1000`. They stay in the zset until a
 * worker fetching jobs promotes them, so with every worker busy (or none) they wait like any other.
 */
const DELAYED_SCORE_SHIFT = 0x1000;

/** Reads the live signals of a queue (see `layout.ts`) in one transaction, next to the registry's count. */
export class SignalReader {
  /** BullMQ's own key names (the class a `Queue` builds its `keys` and `toKey` with), never spelt here. */
  private readonly bull: QueueKeys;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly readyWorkers: ReadyWorkers,
  ) {
    this.bull = new QueueKeys(keys.bull());
  }

  async read(queue: string, nowMs: number): Promise<LiveSignals> {
    const q = (type: 'wait' | 'paused' | 'prioritized' | 'delayed' | 'active'): string => this.bull.toKey(queue, type);
    const k = (part: AutoscalePart): string => this.keys.autoscale(queue, part);
    const freshSince = nowMs - LOADING_STALE_MS;
    // MULTI, not a plain pipeline: one consistent snapshot, so a job moving from `wait` to `active`
    // between two reads is neither counted twice nor missed.
    const tx = this.redis
      .multi()
      .get(k('arrivals'))
      .get(k('completions'))
      .hmget(k('work'), 'busyMs', 'busyDone', 'satMs', 'satDone')
      .llen(q('wait'))
      .llen(q('paused'))
      .zcard(q('prioritized'))
      .zcount(q('delayed'), 0, (nowMs + 1) * DELAYED_SCORE_SHIFT - 1)
      .llen(q('active'))
      // A worker that stopped renewing its loading entry crashed during its load: prune it, count the rest.
      .zremrangebyscore(k('loading'), '-inf', `(${freshSince}`)
      .zcount(k('loading'), freshSince, '+inf')
      .lrange(k('startup'), 0, -1)
      // Async and batch jobs waiting their turn in the pool's fair queue are backlog too.
      .zcard(this.keys.fair(queue, 'tags:async'))
      .zcard(this.keys.fair(queue, 'tags:batch'));
    const [replies, ready] = await Promise.all([tx.exec(), this.readyWorkers(queue, nowMs)]);
    if (!replies) throw new Error('the signal transaction was aborted');
    const values = replies.map(([err, v]) => {
      if (err) throw err;
      return v;
    });
    const [arrivals, completions, work, wait, paused, prioritized, due, active, , loading, startup, fairAsync, fairBatch] = values;
    const w = (work as (string | null)[]).map(num);
    return {
      sample: {
        t: Math.floor(nowMs / 1000),
        arrivals: num(arrivals),
        completions: num(completions),
        queued: num(wait) + num(paused) + num(prioritized) + num(due) + num(fairAsync) + num(fairBatch),
        active: num(active),
        ready,
        loading: num(loading),
        busyMs: w[0] ?? 0,
        busyDone: w[1] ?? 0,
        satMs: w[2] ?? 0,
        satDone: w[3] ?? 0,
      },
      startupSeconds: (startup as string[]).map(Number).filter((x) => Number.isFinite(x) && x >= 0),
    };
  }
}

/** A counter or count as Redis returns it; absent (never written) is 0. */
function num(v: unknown): number {
  const n = typeof v === 'number' ? v : Number(v ?? 0);
  return Number.isFinite(n) ? n : 0;
}
