import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys } from '@fastvlm/contracts';
import { cleanupPrefix, TEST_REDIS_URL, testPrefix } from '@fastvlm/jobs';
import { BatchStore } from './batch-store';
import { newBatchId } from './ids';

describe('BatchStore', () => {
  const prefix = testPrefix();
  const keys = new RedisKeys(prefix);
  let redis: Redis;
  let store: BatchStore;

  const created = async (tenant = 'acme', createdAt = Date.now()): Promise<string> => {
    const id = newBatchId();
    await store.create({ id, tenant, keyId: 'key_1', endpoint: '/v1/chat/completions', inputFileId: 'file-x', completionWindow: '24h', createdAt, expiresAt: createdAt + 86_400_000, metadata: { a: 'b' } }, 10 * 86_400_000);
    return id;
  };
  const running = async (total: number): Promise<string> => {
    const id = await created();
    expect(await store.start(id, total, Date.now(), [0, 640])).toBe(true);
    return id;
  };

  beforeAll(() => {
    redis = new Redis(TEST_REDIS_URL);
    store = new BatchStore(redis, keys);
  });
  afterAll(async () => {
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('creates a validating batch, listed for its tenant and among the active ones', async () => {
    const id = await created();
    expect(await store.get(id)).toMatchObject({ id, tenant: 'acme', status: 'validating', metadata: { a: 'b' }, total: 0, next: 0, errors: [] });
    expect(await store.active()).toContain(id);
    expect((await store.list('acme', undefined, 100)).data.map((b) => b.id)).toContain(id);
    expect((await store.list('globex', undefined, 100)).data).toEqual([]);
  });

  it('starts only a validating batch, with its offsets', async () => {
    const id = await running(100);
    expect(await store.offsets(id)).toEqual([0, 640]);
    expect(await store.get(id)).toMatchObject({ status: 'in_progress', total: 100, next: 0 });
    expect(await store.start(id, 5, Date.now(), [])).toBe(false);
  });

  it('claims from the cursor the caller read only, keeping each custom id', async () => {
    const id = await running(10);
    expect(await store.claim(id, 0, ['a', 'b|c'], 1000)).toBe(1);
    expect(await store.claim(id, 0, ['x'], 1000)).toBe(-2);
    expect((await store.get(id))?.next).toBe(2);
    await store.markWaiting(id, 1, 5000);
    expect((await store.inflight(id)).sort((p, q) => p.index - q.index)).toEqual([
      { index: 0, customId: 'a', state: 'submitted', at: 1000 },
      { index: 1, customId: 'b|c', state: 'waiting', at: 5000 },
    ]);
    expect(await store.transition(id, ['in_progress'], 'cancelling', Date.now())).toBe(true);
    expect(await store.claim(id, 2, ['y'], 1000)).toBe(-1);
  });

  it('records a request exactly once, counting it and its tokens once', async () => {
    const id = await running(3);
    await store.claim(id, 0, ['a', 'b'], 1);
    const twice = await Promise.all([store.record(id, 0, 'o', '{"x":1}', 10, 3), store.record(id, 0, 'o', '{"x":1}', 10, 3)]);
    expect(twice.filter(Boolean)).toHaveLength(1);
    expect(await store.record(id, 1, 'e', '{"e":1}', 0, 0)).toBe(true);
    expect(await store.record(id, 2, 'o', 'never claimed', 1, 1)).toBe(false);
    expect(await store.get(id)).toMatchObject({ completed: 1, failed: 1, promptTokens: 10, completionTokens: 3 });
    expect(await store.results(id)).toEqual(new Map([[0, 'o{"x":1}'], [1, 'e{"e":1}']]));
    expect(await store.inflight(id)).toEqual([]);
  });

  it('notes a flushed segment once: a late flush of the same segment is refused and keeps nothing', async () => {
    const id = await running(2);
    await store.claim(id, 0, ['a', 'b'], 1);
    await store.record(id, 0, 'o', 'A', 0, 0);
    await store.record(id, 1, 'e', 'B', 0, 0);
    expect(await store.flushed(id, 0, { key: 'k/out', bytes: 2 }, { key: 'k/err', bytes: 2 }, [0, 1])).toBe(true);
    expect(await store.flushed(id, 0, { key: 'k/late', bytes: 2 }, null, [0, 1])).toBe(false);
    expect(await store.parts(id)).toEqual({ out: [{ key: 'k/out', bytes: 2 }], err: [{ key: 'k/err', bytes: 2 }] });
    expect(await store.resultCount(id)).toBe(0);
    expect(await store.flushSeq(id)).toBe(1);
  });

  it('skips never-fed requests from the cursor it read, counting them as failed', async () => {
    const id = await running(3);
    await store.claim(id, 0, ['a'], 1);
    expect(await store.skip(id, 1, ['L1', 'L2'])).toBe(true);
    expect(await store.skip(id, 1, ['L1', 'L2'])).toBe(false);
    expect(await store.get(id)).toMatchObject({ next: 3, failed: 2 });
  });

  it('finishes once, dropping working keys and keeping the record for its TTL', async () => {
    const id = await running(1);
    await store.claim(id, 0, ['a'], 1);
    await store.transition(id, ['in_progress'], 'finalizing', 5);
    expect(await store.finish(id, ['finalizing'], 'completed', 6, { output: 'file-o', error: null }, 120)).toBe(true);
    expect(await store.finish(id, ['finalizing'], 'completed', 7, { output: 'file-o', error: null }, 120)).toBe(false);
    expect(await store.get(id)).toMatchObject({ status: 'completed', outputFileId: 'file-o', errorFileId: null, times: { finalizing_at: 5, completed_at: 6 } });
    expect(await redis.exists(keys.batch(id, 'inflight'), keys.batch(id, 'offsets'))).toBe(0);
    expect(await redis.ttl(keys.batch(id))).toBeGreaterThan(100);
  });

  it("pages a tenant's batches newest first with after/limit", async () => {
    const t = `pager-${Date.now()}`;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await created(t, 1_000_000 + i));
    const first = await store.list(t, undefined, 2);
    expect(first.data.map((b) => b.id)).toEqual([ids[4], ids[3]]);
    expect(first.hasMore).toBe(true);
    const second = await store.list(t, ids[3], 3);
    expect(second.data.map((b) => b.id)).toEqual([ids[2], ids[1], ids[0]]);
    expect(second.hasMore).toBe(false);
  });

  it("drops index entries older than the records' lifetime when a batch is created", async () => {
    const t = `old-${Date.now()}`;
    await created(t, Date.now() - 11 * 86_400_000);
    const recent = await created(t);
    expect(await redis.zrange(keys.tenantBatches(t), '0', '-1')).toEqual([recent]);
  });

  it('leases a batch to one holder at a time', async () => {
    const id = newBatchId();
    expect(await store.lease(id, 'a', 5000)).toBe(true);
    expect(await store.lease(id, 'b', 5000)).toBe(false);
    expect(await store.lease(id, 'a', 5000)).toBe(true);
    await store.unlease(id, 'b');
    expect(await store.lease(id, 'b', 5000)).toBe(false);
    await store.unlease(id, 'a');
    expect(await store.lease(id, 'b', 5000)).toBe(true);
  });
});
