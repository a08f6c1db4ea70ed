import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys } from '@fastvlm/contracts';
import { sha256Hex } from '@fastvlm/jobs';
import { auth, chatBody, png, postJson } from '../support/requests';
import { REDIS_URL, cleanupPrefix, startGateway, uniquePrefix, until, type GatewayHandle } from '../support/stack';

describe('Idempotency-Key while the first request is still being admitted', () => {
  const prefix = uniquePrefix();
  const keys = new RedisKeys(prefix);
  let redis: Redis;
  let gw: GatewayHandle;
  let image: Buffer;
  const claimKey = (key: string): string => keys.idempotency('acme', sha256Hex(key));

  beforeAll(async () => {
    redis = new Redis(REDIS_URL);
    [gw, image] = await Promise.all([startGateway(prefix), png(24, 24, 6)]);
  });
  afterAll(async () => {
    await gw?.close();
    await cleanupPrefix(prefix);
    redis.disconnect();
  });

  it('answers a replay 409 "in progress" with Retry-After, and a claim whose gateway died lapses so that a retry creates the job', async () => {
    const body = chatBody(image, 'slow admission', { max_tokens: 2 });
    // A first request under another key shows what this body's claim holds once final.
    const first = await postJson(`${gw.url}/v1/jobs`, body, { ...auth(), 'idempotency-key': 'probe' });
    expect(first.status).toBe(202);
    const final = JSON.parse((await redis.get(claimKey('probe'))) ?? '{}') as { bodyHash: string; jobId: string; state: string };
    expect(final.jobId).toBe(((await first.json()) as { id: string }).id);
    expect(await redis.ttl(claimKey('probe'))).toBeGreaterThan(86_000);

    // The same body under a key another gateway claimed, then died (or is still fetching the image).
    await redis.set(claimKey('in-flight'), JSON.stringify({ bodyHash: final.bodyHash, jobId: 'job_neverCreated00000000', state: 'pending' }), 'EX', 1);
    const replay = await postJson(`${gw.url}/v1/jobs`, body, { ...auth(), 'idempotency-key': 'in-flight' });
    expect(replay.status).toBe(409);
    expect(replay.headers.get('retry-after')).toBe('1');
    expect(await replay.json()).toEqual({
      error: {
        message: 'A request with this Idempotency-Key is still in progress; retry after the Retry-After delay to get its job.',
        type: 'conflict_error',
        code: 'idempotency_conflict',
        param: 'Idempotency-Key',
      },
    });
    const retried = await until('the pending claim to lapse', async () => {
      const res = await postJson(`${gw.url}/v1/jobs`, body, { ...auth(), 'idempotency-key': 'in-flight' });
      return res.status === 409 ? undefined : res;
    });
    expect(retried.status).toBe(202);
    const job = (await retried.json()) as { id: string; status: string };
    expect(job.status).toBe('queued');
    expect(JSON.parse((await redis.get(claimKey('in-flight'))) ?? '{}')).toEqual({ bodyHash: final.bodyHash, jobId: job.id, state: 'final' });
  });
});
