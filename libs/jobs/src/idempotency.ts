import type { Redis } from 'ioredis';
import { AppError, type RedisKeys } from '@fastvlm/contracts';
import { sha256Hex } from './image-store';
import { LuaScript } from './lua-script';

/**
 * Turns a pending claim into the final record, only if it is still this
 * request's claim (a pending claim that outlived its TTL may have been taken
 * by a retry). KEYS: record. ARGV: pending JSON, final JSON, ttl seconds.
 */
const CONFIRM = new LuaScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
`);

/** Frees a claim only if it is still this request's pending one. KEYS: record. ARGV: pending JSON. */
const RELEASE = new LuaScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
`);

interface StoredClaim {
  bodyHash: string;
  jobId: string;
  /** Absent in records written before claims were two-phase: those were final. */
  state?: 'pending' | 'final';
}

/** A replay arrived while the first request with its key is still being admitted; the client may retry. */
export class IdempotencyInProgress extends AppError {
  constructor(readonly retryAfterMs: number) {
    super(
      'idempotency_conflict',
      'A request with this Idempotency-Key is still in progress; retry after the Retry-After delay to get its job.',
      'Idempotency-Key',
    );
  }
}

/** What a claim holds until `confirm` or `release`. */
export interface IdempotencyClaim {
  tenant: string;
  key: string;
  bodyHash: string;
  jobId: string;
}

export type ClaimOutcome = { replay: false; claim: IdempotencyClaim } | { replay: true; jobId: string };

/**
 * `Idempotency-Key` records: the same key and body within the TTL return the
 * same job; the same key with another body is a conflict.
 *
 * Two phases: a claim is `pending` (short TTL) while the first request is
 * admitted, and becomes `final` (the full TTL) once its job record exists. A
 * replay meanwhile is told to retry (409 + Retry-After) rather than pointed at
 * a job that does not exist yet, and a gateway that dies mid-admission leaves
 * a claim that lapses within the pending TTL instead of one that names a job
 * that never existed for a day.
 */
export class IdempotencyKeys {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly ttlSeconds: number,
    /** Lifetime of a pending claim; must outlast the slowest admission (a URL image fetch). */
    private readonly pendingTtlSeconds = 30,
  ) {}

  /**
   * Claims `key` for `jobId` (pending), or answers a replay: the job an earlier
   * identical request created. Throws `IdempotencyInProgress` while the earlier
   * request is still pending, and `idempotency_conflict` for another body.
   */
  async claim(tenant: string, key: string, bodyHash: string, jobId: string): Promise<ClaimOutcome> {
    if (key.length === 0 || key.length > 255) {
      throw new AppError('invalid_request', 'Idempotency-Key must be 1 to 255 characters.', 'Idempotency-Key');
    }
    const redisKey = this.redisKey(tenant, key);
    const claim: IdempotencyClaim = { tenant, key, bodyHash, jobId };
    for (;;) {
      const set = await this.redis.set(redisKey, pendingJson(claim), 'EX', this.pendingTtlSeconds, 'NX');
      if (set === 'OK') return { replay: false, claim };
      const existing = await this.redis.get(redisKey);
      // Lapsed between the two commands: claim again.
      if (existing === null) continue;
      const parsed = JSON.parse(existing) as StoredClaim;
      if (parsed.bodyHash !== bodyHash) {
        throw new AppError('idempotency_conflict', 'This Idempotency-Key was already used with a different request body.', 'Idempotency-Key');
      }
      // Admission takes milliseconds, or a URL fetch's seconds: a second is a fair first retry.
      if (parsed.state === 'pending') throw new IdempotencyInProgress(1_000);
      return { replay: true, jobId: parsed.jobId };
    }
  }

  /** The claimed job's record exists: the key now names it for the full TTL. */
  async confirm(c: IdempotencyClaim): Promise<void> {
    const final: StoredClaim = { bodyHash: c.bodyHash, jobId: c.jobId, state: 'final' };
    await CONFIRM.run(this.redis, [this.redisKey(c.tenant, c.key)], [pendingJson(c), JSON.stringify(final), this.ttlSeconds]);
  }

  /** Frees a claim whose job could not be created, so that a retry with the same key can succeed. */
  async release(c: IdempotencyClaim): Promise<void> {
    await RELEASE.run(this.redis, [this.redisKey(c.tenant, c.key)], [pendingJson(c)]);
  }

  private redisKey(tenant: string, key: string): string {
    return this.keys.idempotency(tenant, sha256Hex(key));
  }
}

function pendingJson(c: IdempotencyClaim): string {
  const stored: StoredClaim = { bodyHash: c.bodyHash, jobId: c.jobId, state: 'pending' };
  return JSON.stringify(stored);
}
