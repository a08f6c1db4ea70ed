import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { RedisKeys } from '@fastvlm/contracts';
import { CLAIM, FINISH, FLUSHED, RECORD, RELEASE, RENEW, SET_INFLIGHT, SKIP, START, TRANSITION } from './batch-scripts';
import type { FilePart, Page } from './file-records';

export const BATCH_STATUSES = ['validating', 'failed', 'in_progress', 'finalizing', 'completed', 'expired', 'cancelling', 'cancelled'] as const;
export type BatchStatus = (typeof BATCH_STATUSES)[number];

/** Statuses a runner still has work in. */
export const ACTIVE_STATUSES: readonly BatchStatus[] = ['validating', 'in_progress', 'finalizing', 'cancelling'];

/** The time field each status stamps (OpenAI's names, in ms here). */
export const STATUS_TIME = {
  validating: 'created_at',
  failed: 'failed_at',
  in_progress: 'in_progress_at',
  finalizing: 'finalizing_at',
  completed: 'completed_at',
  expired: 'expired_at',
  cancelling: 'cancelling_at',
  cancelled: 'cancelled_at',
} as const satisfies Record<BatchStatus, string>;

export interface BatchError {
  code: string;
  message: string;
  param: string | null;
  /** 1-based line of the input file. */
  line: number | null;
}

export interface BatchRecord {
  id: string;
  tenant: string;
  /** The API key that created it (its requests run as this key's tenant). */
  keyId: string;
  endpoint: string;
  inputFileId: string;
  completionWindow: string;
  status: BatchStatus;
  /** Epoch ms of each status reached (`created_at`, `in_progress_at`, …). */
  times: Partial<Record<(typeof STATUS_TIME)[BatchStatus], number>>;
  /** Epoch ms: the completion window's end. */
  expiresAt: number;
  metadata: Record<string, string> | null;
  errors: BatchError[];
  outputFileId: string | null;
  errorFileId: string | null;
  total: number;
  completed: number;
  failed: number;
  /** Requests fed so far (the next line to feed). */
  next: number;
  promptTokens: number;
  completionTokens: number;
  /** Epoch ms at which the batch should end at its current pace; null until measured. */
  projectedAt: number | null;
  /** Whether the final webhook event was queued. */
  notified: boolean;
}

export type NewBatch = Pick<BatchRecord, 'id' | 'tenant' | 'keyId' | 'endpoint' | 'inputFileId' | 'completionWindow' | 'expiresAt' | 'metadata'> & { createdAt: number };

/** A request in flight: its job submitted at `at`, or waiting to be (re)submitted at `at`. */
export interface InFlight {
  index: number;
  customId: string;
  state: 'submitted' | 'waiting';
  at: number;
}

const num = (v: string | undefined): number => (v === undefined || v === '' ? 0 : Number(v));
const opt = (v: string | undefined): number | undefined => (v === undefined || v === '' ? undefined : Number(v));

/**
 * Batches in Redis: the record with its counters, the requests in flight, the
 * result lines waiting to be flushed to storage, the input's line offsets and
 * the flushed parts. Every change is a script on one batch's keys.
 */
export class BatchStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  private k(id: string): string[] {
    return ['record', 'inflight', 'results', 'offsets', 'out', 'err'].map((p) => this.keys.batch(id, p));
  }

  /**
   * Indexes first (shared slot), then the record (its own slot); an index entry without a record is skipped by
   * readers. Entries created more than `keepMs` ago name records that have expired: they are dropped here, so
   * a tenant's index stays as long as its batches live.
   */
  async create(b: NewBatch, keepMs: number): Promise<void> {
    const index = this.keys.tenantBatches(b.tenant);
    await this.redis.multi().zremrangebyscore(index, 0, b.createdAt - keepMs).zadd(index, b.createdAt, b.id).sadd(this.keys.activeBatches(), b.id).exec();
    await this.redis.hset(this.keys.batch(b.id), {
      id: b.id,
      tenant: b.tenant,
      key_id: b.keyId,
      endpoint: b.endpoint,
      input_file_id: b.inputFileId,
      completion_window: b.completionWindow,
      status: 'validating',
      created_at: b.createdAt,
      expires_at: b.expiresAt,
      metadata: JSON.stringify(b.metadata),
      errors: '[]',
      total: 0,
      completed: 0,
      failed: 0,
      next: 0,
      flush_seq: 0,
      prompt_tokens: 0,
      completion_tokens: 0,
    });
  }

  async get(id: string): Promise<BatchRecord | null> {
    const h = await this.redis.hgetall(this.keys.batch(id));
    if (!h.id || !h.tenant) return null;
    const times: BatchRecord['times'] = {};
    for (const f of Object.values(STATUS_TIME)) {
      const t = opt(h[f]);
      if (t !== undefined) times[f] = t;
    }
    return {
      id: h.id,
      tenant: h.tenant,
      keyId: h.key_id ?? '',
      endpoint: h.endpoint ?? '',
      inputFileId: h.input_file_id ?? '',
      completionWindow: h.completion_window ?? '24h',
      status: (BATCH_STATUSES as readonly string[]).includes(h.status ?? '') ? (h.status as BatchStatus) : 'failed',
      times,
      expiresAt: num(h.expires_at),
      metadata: h.metadata ? (JSON.parse(h.metadata) as Record<string, string> | null) : null,
      errors: h.errors ? (JSON.parse(h.errors) as BatchError[]) : [],
      outputFileId: h.output_file_id || null,
      errorFileId: h.error_file_id || null,
      total: num(h.total),
      completed: num(h.completed),
      failed: num(h.failed),
      next: num(h.next),
      promptTokens: num(h.prompt_tokens),
      completionTokens: num(h.completion_tokens),
      projectedAt: opt(h.projected_at) ?? null,
      notified: h.notified === '1',
    };
  }

  /** A tenant's batches, newest first, after the batch `after`. */
  async list(tenant: string, after: string | undefined, limit: number): Promise<Page<BatchRecord>> {
    const index = this.keys.tenantBatches(tenant);
    let start = 0;
    if (after !== undefined) {
      const r = await this.redis.zrevrank(index, after);
      if (r === null) return { data: [], hasMore: false };
      start = r + 1;
    }
    const out: BatchRecord[] = [];
    for (;;) {
      const ids = await this.redis.zrevrange(index, start, start + limit);
      for (const id of ids) {
        const b = await this.get(id);
        if (!b || b.tenant !== tenant) continue;
        if (out.length === limit) return { data: out, hasMore: true };
        out.push(b);
      }
      if (ids.length < limit + 1) return { data: out, hasMore: false };
      start += ids.length;
    }
  }

  async active(): Promise<string[]> {
    return this.redis.smembers(this.keys.activeBatches());
  }

  async deactivate(id: string): Promise<void> {
    await this.redis.srem(this.keys.activeBatches(), id);
  }

  /** Forgets a batch whose record expired (the tenant index still names it). */
  async forget(id: string, tenant: string): Promise<void> {
    await this.redis.zrem(this.keys.tenantBatches(tenant), id);
  }

  async start(id: string, total: number, at: number, offsets: number[]): Promise<boolean> {
    return (await START.run(this.redis, this.k(id), [total, at, ...offsets])) === 1;
  }

  async fail(id: string, at: number, errors: BatchError[]): Promise<boolean> {
    await this.redis.hset(this.keys.batch(id), 'errors', JSON.stringify(errors));
    return this.transition(id, ['validating'], 'failed', at);
  }

  async transition(id: string, from: readonly BatchStatus[], to: BatchStatus, at: number): Promise<boolean> {
    return (await TRANSITION.run(this.redis, this.k(id), [to, STATUS_TIME[to], at, ...from])) === 1;
  }

  /** Claims the requests from `expectedNext` on, one per custom id. 1 claimed; -1 the batch is no longer in progress; -2 another runner fed meanwhile. */
  async claim(id: string, expectedNext: number, customIds: string[], now: number): Promise<1 | -1 | -2> {
    return (await CLAIM.run(this.redis, this.k(id), [expectedNext, now, ...customIds])) as 1 | -1 | -2;
  }

  async inflight(id: string): Promise<InFlight[]> {
    const h = await this.redis.hgetall(this.keys.batch(id, 'inflight'));
    return Object.entries(h).map(([i, v]) => {
      const bar = v.indexOf('|');
      return { index: Number(i), customId: v.slice(bar + 1), state: v.startsWith('r') ? 'waiting' : 'submitted', at: Number(v.slice(1, bar)) };
    });
  }

  async markSubmitted(id: string, index: number, at: number): Promise<void> {
    await SET_INFLIGHT.run(this.redis, this.k(id), [index, `j${at}`]);
  }

  async markWaiting(id: string, index: number, at: number): Promise<void> {
    await SET_INFLIGHT.run(this.redis, this.k(id), [index, `r${at}`]);
  }

  /** Whether this call recorded the request (false: it was recorded before). */
  async record(id: string, index: number, kind: 'o' | 'e', line: string, promptTokens: number, completionTokens: number): Promise<boolean> {
    return (await RECORD.run(this.redis, this.k(id), [index, kind, line, promptTokens, completionTokens])) === 1;
  }

  async skip(id: string, expectedNext: number, lines: string[]): Promise<boolean> {
    return (await SKIP.run(this.redis, this.k(id), [expectedNext, ...lines])) === 1;
  }

  /** Result lines not yet flushed, by request index. */
  async results(id: string): Promise<Map<number, string>> {
    const h = await this.redis.hgetall(this.keys.batch(id, 'results'));
    return new Map(Object.entries(h).map(([i, v]) => [Number(i), v]));
  }

  async resultCount(id: string): Promise<number> {
    return this.redis.hlen(this.keys.batch(id, 'results'));
  }

  async flushSeq(id: string): Promise<number> {
    return num((await this.redis.hget(this.keys.batch(id), 'flush_seq')) ?? undefined);
  }

  async flushed(id: string, seq: number, out: FilePart | null, err: FilePart | null, indices: number[]): Promise<boolean> {
    const part = (p: FilePart | null) => (p ? JSON.stringify(p) : '');
    return (await FLUSHED.run(this.redis, this.k(id), [seq, part(out), part(err), ...indices])) === 1;
  }

  async parts(id: string): Promise<{ out: FilePart[]; err: FilePart[] }> {
    const [out, err] = await Promise.all([this.redis.lrange(this.keys.batch(id, 'out'), 0, -1), this.redis.lrange(this.keys.batch(id, 'err'), 0, -1)]);
    const parse = (l: string[]) => l.map((s) => JSON.parse(s) as FilePart);
    return { out: parse(out), err: parse(err) };
  }

  /** Byte offsets of every `every`th input line, from validation. */
  async offsets(id: string): Promise<number[]> {
    return (await this.redis.lrange(this.keys.batch(id, 'offsets'), 0, -1)).map(Number);
  }

  async finish(id: string, from: readonly BatchStatus[], to: BatchStatus, at: number, files: { output: string | null; error: string | null }, ttlSeconds: number): Promise<boolean> {
    return (await FINISH.run(this.redis, this.k(id), [to, STATUS_TIME[to], at, files.output ?? '', files.error ?? '', ttlSeconds, ...from])) === 1;
  }

  async setProjection(id: string, projectedAt: number | null): Promise<void> {
    if (projectedAt === null) await this.redis.hdel(this.keys.batch(id), 'projected_at');
    else await this.redis.hset(this.keys.batch(id), 'projected_at', Math.round(projectedAt));
  }

  async setNotified(id: string): Promise<void> {
    await this.redis.hset(this.keys.batch(id), 'notified', '1');
  }

  /** Takes or renews the lease on a batch's runner; a token identifies the holder. */
  async lease(id: string, token: string, ms: number): Promise<boolean> {
    const key = this.keys.batchLease(id);
    if ((await this.redis.set(key, token, 'PX', ms, 'NX')) === 'OK') return true;
    return (await RENEW.run(this.redis, [key], [token, ms])) === 1;
  }

  async unlease(id: string, token: string): Promise<void> {
    await RELEASE.run(this.redis, [this.keys.batchLease(id)], [token]);
  }
}

export function leaseToken(): string {
  return randomBytes(12).toString('base64url');
}
