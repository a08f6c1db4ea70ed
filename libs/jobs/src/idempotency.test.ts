import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError, RedisKeys } from '@fastvlm/contracts';
import { IdempotencyInProgress, IdempotencyKeys } from './idempotency';
import { sha256Hex } from './image-store';
import { cleanupPrefix, TEST_REDIS_URL, testPrefix } from './test-redis';

describe('IdempotencyKeys (two-phase claims)', () => {
  const prefix = testPrefix();
  const keys = new RedisKeys(prefix);
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis(TEST_REDIS_URL);
  });
  afterAll(async () => {
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('tells a replay that arrives while the first request is still being admitted to retry, then answers it with the job', async () => {
    const idem = new IdempotencyKeys(redis, keys, 86_400, 30);
    const first = await idem.claim('acme', 'k-pending', 'body', 'job_first');
    expect(first.replay).toBe(false);
    const during = await idem.claim('acme', 'k-pending', 'body', 'job_second').catch((e: unknown) => e);
    expect(during).toBeInstanceOf(IdempotencyInProgress);
    expect(during).toMatchObject({
      code: 'idempotency_conflict',
      param: 'Idempotency-Key',
      retryAfterMs: 1_000,
      message: 'A request with this Idempotency-Key is still in progress; retry after the Retry-After delay to get its job.',
    });
    if (first.replay) throw new Error('unreachable');
    await idem.confirm(first.claim);
    expect(await idem.claim('acme', 'k-pending', 'body', 'job_third')).toEqual({ replay: true, jobId: 'job_first' });
    // Final: the full TTL.
    expect(await redis.ttl(keys.idempotency('acme', sha256Hex('k-pending')))).toBeGreaterThan(86_000);
  });

  it('lets a claim whose request never finished lapse after the pending TTL, so the key can make a new job', async () => {
    const idem = new IdempotencyKeys(redis, keys, 86_400, 1);
    const crashed = await idem.claim('acme', 'k-crash', 'body', 'job_never');
    expect(crashed.replay).toBe(false);
    expect(await redis.ttl(keys.idempotency('acme', sha256Hex('k-crash')))).toBeLessThanOrEqual(1);
    const deadline = Date.now() + 5_000;
    for (;;) {
      const again = await idem.claim('acme', 'k-crash', 'body', 'job_retry').catch((e: unknown) => e);
      if (!(again instanceof IdempotencyInProgress)) {
        expect(again).toEqual({ replay: false, claim: { tenant: 'acme', key: 'k-crash', bodyHash: 'body', jobId: 'job_retry' } });
        break;
      }
      if (Date.now() > deadline) throw new Error('the pending claim never lapsed');
      await new Promise((r) => setTimeout(r, 50));
    }
  });

  it('refuses the same key with another body, pending or final', async () => {
    const idem = new IdempotencyKeys(redis, keys, 86_400, 30);
    const first = await idem.claim('acme', 'k-body', 'body-a', 'job_a');
    const pending = await idem.claim('acme', 'k-body', 'body-b', 'job_b').catch((e: unknown) => e);
    expect(pending).toBeInstanceOf(AppError);
    expect(pending).not.toBeInstanceOf(IdempotencyInProgress);
    expect(pending).toMatchObject({ code: 'idempotency_conflict', message: 'This Idempotency-Key was already used with a different request body.' });
    if (first.replay) throw new Error('unreachable');
    await idem.confirm(first.claim);
    await expect(idem.claim('acme', 'k-body', 'body-b', 'job_b')).rejects.toMatchObject({ code: 'idempotency_conflict' });
  });

  it('frees a released claim at once, and never releases or confirms a claim another request has since taken', async () => {
    const idem = new IdempotencyKeys(redis, keys, 86_400, 30);
    const first = await idem.claim('acme', 'k-rel', 'body', 'job_1');
    if (first.replay) throw new Error('unreachable');
    await idem.release(first.claim);
    const second = await idem.claim('acme', 'k-rel', 'body', 'job_2');
    if (second.replay) throw new Error('unreachable');
    // The first request's late confirm or release must not touch the second one's claim.
    await idem.confirm(first.claim);
    await idem.release(first.claim);
    expect(JSON.parse((await redis.get(keys.idempotency('acme', sha256Hex('k-rel')))) ?? 'null')).toEqual({ bodyHash: 'body', jobId: 'job_2', state: 'pending' });
  });

  it('reads a record written before claims were two-phase as final', async () => {
    const idem = new IdempotencyKeys(redis, keys, 86_400, 30);
    await redis.set(keys.idempotency('acme', sha256Hex('k-old')), JSON.stringify({ bodyHash: 'body', jobId: 'job_old' }), 'EX', 60);
    expect(await idem.claim('acme', 'k-old', 'body', 'job_new')).toEqual({ replay: true, jobId: 'job_old' });
  });
});
