import type { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys } from '@fastvlm/contracts';
import { EndpointStore } from './endpoint-store';
import { DEFAULT_RETRY_POLICY } from './retry-policy';
import { cleanupPrefix, TEST_REDIS_URL, testPrefix } from '@fastvlm/jobs';
import { WebhookEvents } from './webhook-events';
import { createWebhookQueue, deliveryJobId, type DeliveryJobData } from './webhook-queue';

describe('emitting webhook events', () => {
  const prefix = testPrefix();
  const keys = new RedisKeys(prefix);
  let redis: Redis;
  let store: EndpointStore;
  let queue: Queue<DeliveryJobData>;
  let clock = 1_700_000_000_000;
  let events: WebhookEvents;

  beforeAll(() => {
    redis = new Redis(TEST_REDIS_URL);
    store = new EndpointStore(redis, keys);
    queue = createWebhookQueue(redis, keys);
    events = new WebhookEvents(queue, store, { retry: DEFAULT_RETRY_POLICY, subscriptionCacheMs: 5_000, now: () => clock });
  });
  afterAll(async () => {
    await queue.close();
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  const endpoint = async (tenant: string, events: ('batch.completed' | 'job.succeeded' | 'job.failed')[]) =>
    (await store.create({ tenant, url: 'https://hooks.example.com/', events, description: '', now: clock })).endpoint;

  it('enqueues one delivery per enabled endpoint of the tenant that subscribes to the type, with the thin body', async () => {
    const [batches, jobs, disabled, otherTenant] = await Promise.all([
      endpoint('acme', ['batch.completed']),
      endpoint('acme', ['job.succeeded', 'batch.completed']),
      endpoint('acme', ['batch.completed']),
      endpoint('globex', ['batch.completed']),
    ]);
    await store.update(disabled.id, { enabled: false });
    await events.emit({ tenant: 'acme', type: 'batch.completed', objectId: 'batch_1', eventId: 'evt_batch_1_completed', createdAt: 1_700_000_123_456 });
    const ids = [batches, jobs, disabled, otherTenant].map((e) => deliveryJobId(e.id, 'evt_batch_1_completed'));
    const found = await Promise.all(ids.map((id) => queue.getJob(id)));
    expect(found.map((j) => j !== undefined)).toEqual([true, true, false, false]);
    expect(found[0]?.data).toEqual({
      endpointId: batches.id,
      eventId: 'evt_batch_1_completed',
      type: 'batch.completed',
      body: '{"id":"evt_batch_1_completed","object":"event","type":"batch.completed","created_at":1700000123,"data":{"id":"batch_1"}}',
    });
    expect(found[0]?.opts.attempts).toBe(DEFAULT_RETRY_POLICY.maxAttempts);
  });

  it('enqueues nothing more when the same event id is emitted again', async () => {
    const e = await endpoint('initech', ['batch.completed']);
    const emit = () => events.emit({ tenant: 'initech', type: 'batch.completed', objectId: 'batch_2', eventId: 'evt_batch_2_completed' });
    await emit();
    await emit();
    const jobs = await queue.getJobs(['waiting', 'delayed', 'active', 'completed', 'failed']);
    expect(jobs.filter((j) => j.data.endpointId === e.id).map((j) => j.id)).toEqual([deliveryJobId(e.id, 'evt_batch_2_completed')]);
  });

  it('refuses event ids that BullMQ or a header could not carry', async () => {
    await expect(events.emit({ tenant: 'acme', type: 'batch.failed', objectId: 'b', eventId: 'evt_a:b' })).rejects.toThrow(/event ids/);
    await expect(events.emit({ tenant: 'acme', type: 'batch.failed', objectId: 'b', eventId: 'batch_1' })).rejects.toThrow(/event ids/);
  });

  it('answers whether a tenant subscribes to job events from memory for a few seconds, and at once after forget', async () => {
    expect(await events.subscribes('umbrella', 'job.')).toBe(false);
    await endpoint('umbrella', ['job.failed']);
    expect(await events.subscribes('umbrella', 'job.')).toBe(false);
    clock += 5_000;
    expect(await events.subscribes('umbrella', 'job.')).toBe(true);
    const batchOnly = await endpoint('hooli', ['batch.completed']);
    expect(await events.subscribes('hooli', 'job.')).toBe(false);
    await store.update(batchOnly.id, { events: ['job.succeeded'] });
    events.forget('hooli');
    expect(await events.subscribes('hooli', 'job.')).toBe(true);
  });
});
