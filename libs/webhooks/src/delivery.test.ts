import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys } from '@fastvlm/contracts';
import { WebhookDelivery } from './delivery';
import { DeliveryLog, type DeliveryLogEntry } from './delivery-log';
import { EndpointCircuit } from './endpoint-circuit';
import { EndpointStore } from './endpoint-store';
import { cleanupPrefix, TEST_REDIS_URL, testPrefix } from '@fastvlm/jobs';
import { webhookAddressPolicy } from './url-policy';
import { WebhookEvents } from './webhook-events';
import { createWebhookQueue, deliveryJobId, type DeliveryJobData } from './webhook-queue';

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

async function until<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const silent = { info: () => undefined, warn: () => undefined };

describe('the webhook delivery worker', () => {
  const prefix = testPrefix();
  const keys = new RedisKeys(prefix);
  const received: Received[] = [];
  let server: Server;
  let base = '';
  let redis: Redis;
  let workerRedis: Redis;
  let store: EndpointStore;
  let log: DeliveryLog;
  let queue: Queue<DeliveryJobData>;
  let events: WebhookEvents;
  let delivery: WebhookDelivery;
  const retry = { baseMs: 20, maxDelayMs: 50, maxAttempts: 2 };

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        if (req.url === '/ok') res.writeHead(204).end();
        else if (req.url === '/redirect') res.writeHead(302, { location: '/ok' }).end();
        // '/hang' never answers: the attempt must end on its own deadline.
        else if (req.url !== '/hang') res.writeHead(404).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    redis = new Redis(TEST_REDIS_URL);
    workerRedis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
    store = new EndpointStore(redis, keys);
    log = new DeliveryLog(redis, keys, 100);
    queue = createWebhookQueue(redis, keys);
    events = new WebhookEvents(queue, store, { retry });
    const circuit = new EndpointCircuit(workerRedis, keys, { failures: 100, openMs: 1000, maxOpenMs: 1000 }, 5000);
    const allowed = webhookAddressPolicy({ allowCidrs: [], allowLoopbackForTests: true });
    delivery = new WebhookDelivery(workerRedis, keys, circuit, new DeliveryLog(workerRedis, keys, 100), { concurrency: 4, timeoutMs: 500, retry, isAllowedAddress: allowed }, silent);
    delivery.start();
  });
  afterAll(async () => {
    await delivery.close();
    await queue.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
    workerRedis.disconnect();
  });

  // A tenant per test: an event goes to every endpoint of its tenant.
  const endpointAt = async (path: string, tenant: string) =>
    store.create({ tenant, url: `${base}${path}`, events: ['batch.completed'], description: '', now: Date.now() });
  const statuses = async (endpointId: string): Promise<DeliveryLogEntry[]> => (await log.read(endpointId, 100)).reverse();
  const settled = (endpointId: string, eventId: string) =>
    until('the delivery to settle', async () => {
      const job = await queue.getJob(deliveryJobId(endpointId, eventId));
      const state = await job?.getState();
      return state === 'completed' || state === 'failed' ? state : undefined;
    });

  it('POSTs the signed JSON body, which verifies, and logs it delivered', async () => {
    const { endpoint, secret } = await endpointAt('/ok', 'acme');
    await events.emit({ tenant: 'acme', type: 'batch.completed', objectId: 'batch_9', eventId: 'evt_batch_9_completed' });
    expect(await settled(endpoint.id, 'evt_batch_9_completed')).toBe('completed');
    const got = received.filter((r) => r.path === '/ok');
    expect(got).toHaveLength(1);
    const r = got[0] as Received;
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.headers['user-agent']).toMatch(/^fastvlm-webhooks/);
    expect(r.headers['webhook-id']).toBe('evt_batch_9_completed');
    expect(new Webhook(secret).verify(r.body, r.headers as Record<string, string>)).toMatchObject({ type: 'batch.completed', data: { id: 'batch_9' } });
    expect((await statuses(endpoint.id)).map((e) => [e.status, e.attempt, e.http_status])).toEqual([['delivered', 1, 204]]);
  });

  it('counts a redirect as a failure and does not follow it', async () => {
    const { endpoint } = await endpointAt('/redirect', 'globex');
    await events.emit({ tenant: 'globex', type: 'batch.completed', objectId: 'batch_r', eventId: 'evt_batch_r_completed' });
    expect(await settled(endpoint.id, 'evt_batch_r_completed')).toBe('failed');
    expect((await statuses(endpoint.id)).map((e) => [e.status, e.attempt, e.http_status])).toEqual([
      ['failed', 1, 302],
      ['failed', 2, 302],
    ]);
    expect(received.filter((r) => r.headers['webhook-id'] === 'evt_batch_r_completed').map((r) => r.path)).toEqual(['/redirect', '/redirect']);
  });

  it('gives an attempt up at its deadline', async () => {
    const { endpoint } = await endpointAt('/hang', 'initech');
    await events.emit({ tenant: 'initech', type: 'batch.completed', objectId: 'batch_h', eventId: 'evt_batch_h_completed' });
    expect(await settled(endpoint.id, 'evt_batch_h_completed')).toBe('failed');
    const log = await statuses(endpoint.id);
    expect(log.map((e) => [e.status, e.http_status])).toEqual([
      ['failed', null],
      ['failed', null],
    ]);
    expect(log[0]?.error).toMatch(/^timeout/);
  });

  it('refuses deliveries to a disabled endpoint without sending them, and drops those of a deleted one', async () => {
    const off = await endpointAt('/ok', 'hooli');
    const gone = await endpointAt('/ok', 'hooli');
    await store.update(off.endpoint.id, { enabled: false });
    const sentBefore = received.length;
    await events.sendTest((await store.get(off.endpoint.id))!);
    // Deleted before the delivery is enqueued: as a delivery that was pending when its endpoint went.
    await store.delete(gone.endpoint.id);
    const pingId = await events.sendTest(gone.endpoint);
    expect(await until('the refusal', async () => (await statuses(off.endpoint.id))[0])).toMatchObject({ status: 'refused', type: 'webhook.test' });
    expect(await settled(gone.endpoint.id, pingId)).toBe('failed');
    expect(received.length).toBe(sentBefore);
    expect(await redis.exists(keys.webhookDeliveries(gone.endpoint.id))).toBe(0);
  });
});
