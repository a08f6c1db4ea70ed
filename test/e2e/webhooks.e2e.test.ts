import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import OpenAI, { toFile } from 'openai';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys } from '@fastvlm/contracts';
import { WEBHOOK_QUEUE, deliveryJobId } from '@fastvlm/webhooks';
import { WebhooksEnvShape } from '../../apps/gateway/src/webhooks/webhooks-config';
import { count, scrape } from '../observability/prom';
import { auth, chatBody, png, postJson } from '../support/requests';
import { API_KEYS, cleanupPrefix, REDIS_URL, startGateway, startWorker, stopWorker, uniquePrefix, until, type GatewayHandle, type WorkerProcess } from '../support/stack';

const ADMIN_KEY = 'ops-admin-key-0123456789abcdef';
const admin = { authorization: `Bearer ${ADMIN_KEY}` };

interface Received {
  path: string;
  headers: Record<string, string>;
  body: string;
}
interface EndpointView {
  id: string;
  object: string;
  tenant: string;
  url: string;
  events: string[];
  enabled: boolean;
  secrets: { id: string; created_at: number; expires_at: number | null }[];
  failures: number;
  circuit_open_until: number | null;
  secret?: string;
}
interface LogEntry {
  event_id: string;
  type: string;
  attempt: number;
  status: string;
  http_status: number | null;
  error: string | null;
}

/**
 * A real receiver on loopback. Each path answers the statuses queued for it
 * in order, then 200; every request is kept with its exact body bytes.
 */
class Receiver {
  readonly requests: Received[] = [];
  private readonly scripts = new Map<string, number[]>();
  private server: Server | null = null;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const path = req.url ?? '';
        this.requests.push({ path, headers: flat(req.headers), body: Buffer.concat(chunks).toString('utf8') });
        res.writeHead(this.scripts.get(path)?.shift() ?? 200).end();
      });
    });
    await new Promise<void>((r) => this.server?.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  answer(path: string, statuses: number[]): void {
    this.scripts.set(path, [...statuses]);
  }

  at(path: string): Received[] {
    return this.requests.filter((r) => r.path === path);
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(r));
  }
}

function flat(h: IncomingHttpHeaders): Record<string, string> {
  return Object.fromEntries(Object.entries(h).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')]));
}

/** Both independent verifiers accept the delivery with `secret`; answers the payload they parsed. */
async function verifiedByBoth(r: Received, secret: string): Promise<unknown> {
  const standard: unknown = new Webhook(secret).verify(r.body, r.headers);
  const openai: unknown = await new OpenAI({ apiKey: 'unused', webhookSecret: secret }).webhooks.unwrap(r.body, r.headers, secret);
  expect(openai).toEqual(standard);
  return standard;
}

async function refusedByBoth(r: Received, secret: string): Promise<void> {
  expect(() => new Webhook(secret).verify(r.body, r.headers)).toThrow();
  await expect(new OpenAI({ apiKey: 'unused', webhookSecret: secret }).webhooks.unwrap(r.body, r.headers, secret)).rejects.toThrow();
}

describe('webhooks: signed, per tenant, delivered from a durable queue', () => {
  const prefix = uniquePrefix();
  const receiver = new Receiver();
  const filesDir = mkdtempSync(join(tmpdir(), 'fastvlm-webhook-files-'));
  let gw: GatewayHandle;
  let worker: WorkerProcess;
  let redis: Redis;
  let queue: Queue;

  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = admin): Promise<Response> =>
    fetch(`${gw.url}${path}`, {
      method,
      headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  const json = async <T>(res: Response, status: number): Promise<T> => {
    const text = await res.text();
    expect(res.status, text).toBe(status);
    return JSON.parse(text) as T;
  };
  const createEndpoint = async (tenant: string, path: string, events?: string[]): Promise<{ id: string; secret: string }> => {
    const made = await json<EndpointView>(await call('POST', '/v1/admin/webhooks', { tenant, url: `${receiver.url}${path}`, ...(events ? { events } : {}) }), 201);
    return { id: made.id, secret: made.secret ?? '' };
  };
  const sendTest = async (id: string): Promise<string> => (await json<{ event_id: string }>(await call('POST', `/v1/admin/webhooks/${id}/test`), 202)).event_id;
  /** The delivery log, oldest first. */
  const log = async (id: string): Promise<LogEntry[]> => (await json<{ data: LogEntry[] }>(await call('GET', `/v1/admin/webhooks/${id}/deliveries`), 200)).data.reverse();

  beforeAll(async () => {
    await receiver.start();
    const keys = [...Object.entries(API_KEYS).map(([t, k]) => `${t}:${k}`), `ops:${ADMIN_KEY}:admin`].join(',');
    [gw, worker] = await Promise.all([
      startGateway(prefix, {
        FASTVLM_API_KEYS: keys,
        FILES_DIR: filesDir,
        BATCH_TICK_MS: '50',
        WEBHOOK_ALLOW_LOOPBACK_FOR_TESTS: 'true',
        WEBHOOK_RETRY_BASE_MS: '100',
        WEBHOOK_RETRY_MAX_DELAY_MS: '400',
        WEBHOOK_MAX_ATTEMPTS: '6',
        WEBHOOK_CIRCUIT_FAILURES: '3',
        WEBHOOK_CIRCUIT_OPEN_MS: '2500',
        WEBHOOK_TIMEOUT_MS: '3000',
      }),
      startWorker(prefix),
    ]);
    redis = new Redis(REDIS_URL);
    queue = new Queue(WEBHOOK_QUEUE, { connection: redis, prefix: new RedisKeys(prefix).bull() });
  });
  afterAll(async () => {
    await gw?.close();
    if (worker) await stopWorker(worker);
    await queue?.close();
    redis?.disconnect();
    await receiver.stop();
    await cleanupPrefix(prefix);
    rmSync(filesDir, { recursive: true, force: true });
  });

  it('shows an endpoint secret once, at creation, and subscribes to the batch events by default', async () => {
    const res = await call('POST', '/v1/admin/webhooks', { tenant: 'acme', url: `${receiver.url}/once`, description: 'nightly batches' });
    const made = await json<EndpointView>(res, 201);
    expect(made.secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(made).toMatchObject({ object: 'webhook_endpoint', tenant: 'acme', enabled: true, failures: 0, circuit_open_until: null });
    expect(made.events).toEqual(['batch.completed', 'batch.failed', 'batch.expired', 'batch.cancelled']);
    const secret = made.secret ?? '';
    const got = await call('GET', `/v1/admin/webhooks/${made.id}`);
    const text = await got.text();
    expect(got.status).toBe(200);
    expect(text).not.toContain(secret.slice('whsec_'.length));
    expect(JSON.parse(text)).not.toHaveProperty('secret');
    const list = await json<{ data: EndpointView[] }>(await call('GET', '/v1/admin/webhooks?tenant=acme'), 200);
    expect(list.data.map((e) => e.id)).toContain(made.id);
    expect(JSON.stringify(list)).not.toContain(secret.slice('whsec_'.length));
    // Tenants' keys are not admins.
    expect((await call('GET', '/v1/admin/webhooks?tenant=acme', undefined, auth('acme'))).status).toBe(403);
  });

  it('refuses URLs on private, link-local or metadata addresses, other schemes and credentials (400 naming url)', async () => {
    for (const url of ['http://10.0.0.1/hook', 'http://169.254.169.254/latest/meta-data', 'http://[fd00::1]/', 'ftp://127.0.0.1/', `http://user:pw@127.0.0.1:1/`]) {
      const body = await json<{ error: { code: string; param: string } }>(await call('POST', '/v1/admin/webhooks', { tenant: 'acme', url }), 400);
      expect(body.error, url).toMatchObject({ code: 'invalid_request', param: 'url' });
    }
    // Loopback is open here only because this gateway runs with the test-only switch, which is off by default
    // (libs/webhooks/src/url-policy.test.ts checks that loopback is refused without it).
    expect(WebhooksEnvShape.WEBHOOK_ALLOW_LOOPBACK_FOR_TESTS.parse(undefined)).toBe(false);
    const { id } = await createEndpoint('acme', '/patched');
    expect((await call('PATCH', `/v1/admin/webhooks/${id}`, { url: 'http://192.168.0.10/' })).status).toBe(400);
  });

  it('announces a finished async job, signed for both independent verifiers, only to endpoints of its tenant that opted in', async () => {
    const optedIn = await createEndpoint('acme', '/jobs', ['job.succeeded', 'job.failed']);
    const batchesOnly = await createEndpoint('acme', '/batches-only');
    const otherTenant = await createEndpoint('globex', '/globex', ['job.succeeded', 'batch.completed']);

    const submit = async (): Promise<string> => {
      const res = await postJson(`${gw.url}/v1/jobs`, chatBody(await png(40, 40, 7), 'what is this?', { max_tokens: 4 }), auth('acme'));
      return (await json<{ id: string }>(res, 202)).id;
    };
    const jobId = await submit();
    const delivered = await until('the job.succeeded delivery', () => receiver.at('/jobs').find((r) => r.body.includes(jobId)), 60_000);
    const payload = await verifiedByBoth(delivered, optedIn.secret);
    const eventId = `evt_${jobId}_succeeded`;
    expect(payload).toEqual({ id: eventId, object: 'event', type: 'job.succeeded', created_at: expect.any(Number) as number, data: { id: jobId } });
    expect(Object.keys(payload as object)).toEqual(['id', 'object', 'type', 'created_at', 'data']);
    expect(delivered.headers['webhook-id']).toBe(eventId);
    expect(delivered.headers['content-type']).toBe('application/json');
    expect(Number(delivered.headers['webhook-timestamp'])).toBeGreaterThanOrEqual((payload as { created_at: number }).created_at);

    // Neither the endpoint without job events nor the other tenant's got a delivery for it, not even queued.
    expect(await queue.getJob(deliveryJobId(batchesOnly.id, eventId))).toBeUndefined();
    expect(await queue.getJob(deliveryJobId(otherTenant.id, eventId))).toBeUndefined();

    // The same question again may come from the answer cache: that job ended at once and is announced too.
    const again = await submit();
    await until('the second job.succeeded delivery', () => receiver.at('/jobs').find((r) => r.body.includes(again)), 60_000);

    // A real batch's end, through the official client, reaches the batch subscriber of acme only.
    const client = new OpenAI({ apiKey: API_KEYS.acme, baseURL: `${gw.url}/v1`, maxRetries: 0 });
    const line = { custom_id: 'w-1', method: 'POST', url: '/v1/chat/completions', body: chatBody(await png(40, 40, 8), 'a batch question', { max_tokens: 4 }) };
    const file = await client.files.create({ file: await toFile(Buffer.from(`${JSON.stringify(line)}\n`), 'w.jsonl'), purpose: 'batch' });
    const created = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    const batch = await until('the batch.completed delivery', () => receiver.at('/batches-only')[0], 60_000);
    const batchEvent = `evt_${created.id}_completed`;
    expect(await verifiedByBoth(batch, batchesOnly.secret)).toEqual({ id: batchEvent, object: 'event', type: 'batch.completed', created_at: expect.any(Number) as number, data: { id: created.id } });
    expect((await client.batches.retrieve(created.id)).status).toBe('completed');
    expect(await queue.getJob(deliveryJobId(otherTenant.id, batchEvent))).toBeUndefined();
    expect(await queue.getJob(deliveryJobId(optedIn.id, batchEvent))).toBeUndefined();
    expect(receiver.at('/batches-only')).toHaveLength(1);
    expect(receiver.at('/globex')).toEqual([]);
  });

  it('retries a failing receiver with the same webhook-id and body until it answers 2xx', async () => {
    receiver.answer('/flaky', [500, 500]);
    const { id, secret } = await createEndpoint('acme', '/flaky');
    const eventId = await sendTest(id);
    await until('three attempts', () => receiver.at('/flaky').length >= 3);
    const attempts = receiver.at('/flaky');
    expect(attempts.map((r) => r.headers['webhook-id'])).toEqual([eventId, eventId, eventId]);
    expect(new Set(attempts.map((r) => r.body)).size).toBe(1);
    expect(await verifiedByBoth(attempts[2] as Received, secret)).toMatchObject({ id: eventId, type: 'webhook.test', data: { id } });
    const entries = await until('the delivered entry', async () => {
      const l = await log(id);
      return l.some((e) => e.status === 'delivered') ? l : undefined;
    });
    expect(entries.map((e) => [e.status, e.attempt, e.http_status])).toEqual([
      ['failed', 1, 500],
      ['failed', 2, 500],
      ['delivered', 3, 200],
    ]);
    expect(entries.every((e) => e.event_id === eventId)).toBe(true);
    // Every attempt is counted in the gateway's metrics too (other tests' attempts add to them).
    const samples = await scrape(gw.url);
    expect(count(samples, 'fastvlm_webhook_deliveries_total', { status: 'failed' })).toBeGreaterThanOrEqual(2);
    expect(count(samples, 'fastvlm_webhook_deliveries_total', { status: 'delivered' })).toBeGreaterThanOrEqual(1);
  });

  it('signs with the old and the new secret after a rotation, and with the new one only once the old is retired', async () => {
    const { id, secret: old } = await createEndpoint('acme', '/rotate');
    const rotated = await json<EndpointView>(await call('POST', `/v1/admin/webhooks/${id}/secrets`, {}), 201);
    const fresh = rotated.secret ?? '';
    expect(fresh).toMatch(/^whsec_/);
    expect(fresh).not.toBe(old);
    expect(rotated.secrets).toHaveLength(2);
    expect(rotated.secrets[0]?.expires_at).toBeGreaterThan(Date.now() / 1000 + 86_000);
    expect(rotated.secrets[1]?.expires_at).toBeNull();

    await sendTest(id);
    const first = await until('the delivery after rotation', () => receiver.at('/rotate')[0]);
    expect(first.headers['webhook-signature']?.split(' ')).toHaveLength(2);
    await verifiedByBoth(first, old);
    await verifiedByBoth(first, fresh);

    const retired = await json<EndpointView>(await call('POST', `/v1/admin/webhooks/${id}/secrets`, { expire_previous_in_seconds: 0 }), 201);
    const newest = retired.secret ?? '';
    expect(retired.secrets).toHaveLength(1);
    await sendTest(id);
    const second = await until('the delivery after retiring the old secrets', () => receiver.at('/rotate')[1]);
    expect(second.headers['webhook-signature']?.split(' ')).toHaveLength(1);
    await verifiedByBoth(second, newest);
    await refusedByBoth(second, old);
    await refusedByBoth(second, fresh);
    // The only secret that still signs cannot be deleted.
    expect((await call('DELETE', `/v1/admin/webhooks/${id}/secrets/${retired.secrets[0]?.id ?? ''}`)).status).toBe(400);
  });

  it('opens the circuit after consecutive failures, sends nothing while it is open, and closes it on a successful probe', async () => {
    receiver.answer('/breaker', [500, 500, 500]);
    const { id, secret } = await createEndpoint('acme', '/breaker');
    const eventId = await sendTest(id);
    const open = await until('the circuit to open', async () => {
      const e = await json<EndpointView>(await call('GET', `/v1/admin/webhooks/${id}`), 200);
      return e.circuit_open_until !== null ? e : undefined;
    });
    expect(open.failures).toBe(3);
    // The circuit opened on the third failure: nothing more reached the receiver since.
    expect(receiver.at('/breaker')).toHaveLength(3);
    const entries = await until('the probe to deliver', async () => {
      const l = await log(id);
      return l.some((e) => e.status === 'delivered') ? l : undefined;
    });
    const statuses = entries.map((e) => e.status);
    expect(statuses.slice(0, 3)).toEqual(['failed', 'failed', 'failed']);
    expect(statuses.at(-1)).toBe('delivered');
    expect(statuses.slice(3, -1).length).toBeGreaterThanOrEqual(1);
    expect(statuses.slice(3, -1).every((s) => s === 'circuit_open')).toBe(true);
    // Waiting for the circuit spent no attempt: the probe is the fourth.
    expect(entries.at(-1)).toMatchObject({ attempt: 4, http_status: 200, event_id: eventId });
    expect(receiver.at('/breaker')).toHaveLength(4);
    await verifiedByBoth(receiver.at('/breaker')[3] as Received, secret);
    expect(await json<EndpointView>(await call('GET', `/v1/admin/webhooks/${id}`), 200)).toMatchObject({ failures: 0, circuit_open_until: null });
  });

  it('refuses deliveries to a disabled endpoint without sending them, and deletes an endpoint', async () => {
    const { id } = await createEndpoint('acme', '/disabled');
    expect(await json<EndpointView>(await call('PATCH', `/v1/admin/webhooks/${id}`, { enabled: false }), 200)).toMatchObject({ enabled: false });
    const eventId = await sendTest(id);
    const entry = await until('the refusal', async () => (await log(id))[0]);
    expect(entry).toMatchObject({ event_id: eventId, status: 'refused', http_status: null });
    expect(receiver.at('/disabled')).toEqual([]);
    expect(await json<{ deleted: boolean }>(await call('DELETE', `/v1/admin/webhooks/${id}`), 200)).toMatchObject({ deleted: true });
    expect((await call('GET', `/v1/admin/webhooks/${id}`)).status).toBe(404);
    expect((await call('GET', `/v1/admin/webhooks/${id}/deliveries`)).status).toBe(404);
  });
});
