import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys } from '@fastvlm/contracts';
import { DeliveryLog, type DeliveryLogEntry } from './delivery-log';
import { EndpointCircuit } from './endpoint-circuit';
import { EndpointStore, isActive } from './endpoint-store';
import { cleanupPrefix, TEST_REDIS_URL, testPrefix } from '@fastvlm/jobs';

const T0 = 1_700_000_000_000;
const HOUR = 3_600_000;

describe('webhook endpoints in Redis', () => {
  const prefix = testPrefix();
  const keys = new RedisKeys(prefix);
  let redis: Redis;
  let store: EndpointStore;

  beforeAll(() => {
    redis = new Redis(TEST_REDIS_URL);
    store = new EndpointStore(redis, keys);
  });
  afterAll(async () => {
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  const make = (tenant = 'acme', url = 'https://hooks.example.com/in') => store.create({ tenant, url, events: ['batch.completed', 'job.succeeded'], description: 'ops', now: T0 });

  it('round-trips an endpoint with its first secret, and lists it under its tenant only', async () => {
    const { endpoint, secret } = await make();
    expect(endpoint.id).toMatch(/^whep_[A-Za-z0-9_-]+$/);
    expect(secret).toMatch(/^whsec_/);
    const read = await store.get(endpoint.id);
    expect(read).toEqual(endpoint);
    expect(read?.secrets.map((s) => s.value)).toEqual([secret]);
    expect(read).toMatchObject({ tenant: 'acme', url: 'https://hooks.example.com/in', events: ['batch.completed', 'job.succeeded'], enabled: true, failures: 0, circuitOpenUntil: null });
    const other = await make('globex');
    expect((await store.list('acme')).map((e) => e.id)).toContain(endpoint.id);
    expect((await store.list('acme')).map((e) => e.id)).not.toContain(other.endpoint.id);
    expect((await store.list('globex')).map((e) => e.id)).toEqual([other.endpoint.id]);
    expect(await store.get('whep_missing')).toBeNull();
  });

  it('changes fields of an existing endpoint only, and a new URL starts with a closed circuit', async () => {
    const { endpoint } = await make();
    await redis.hset(keys.webhookEndpoint(endpoint.id), 'failures', '7', 'open_until', String(T0 + HOUR));
    const changed = await store.update(endpoint.id, { enabled: false, description: 'paused' });
    expect(changed).toMatchObject({ enabled: false, description: 'paused', failures: 7, circuitOpenUntil: T0 + HOUR });
    const moved = await store.update(endpoint.id, { url: 'https://other.example.com/', events: ['batch.failed'] });
    expect(moved).toMatchObject({ url: 'https://other.example.com/', events: ['batch.failed'], failures: 0, circuitOpenUntil: null });
    await store.delete(endpoint.id);
    expect(await store.update(endpoint.id, { enabled: true })).toBeNull();
    expect(await redis.exists(keys.webhookEndpoint(endpoint.id))).toBe(0);
  });

  it('deletes the endpoint, its tenant index entry and its delivery log; later log writes leave nothing behind', async () => {
    const { endpoint } = await make('initech');
    const log = new DeliveryLog(redis, keys, 10);
    const entry: DeliveryLogEntry = { event_id: 'evt_1', type: 'batch.completed', attempt: 1, status: 'delivered', http_status: 200, error: null, duration_ms: 3, at: 1 };
    await log.append(endpoint.id, entry);
    expect(await log.read(endpoint.id, 10)).toEqual([entry]);
    expect((await store.delete(endpoint.id))?.id).toBe(endpoint.id);
    expect(await store.list('initech')).toEqual([]);
    expect(await redis.exists(keys.webhookDeliveries(endpoint.id))).toBe(0);
    await log.append(endpoint.id, entry);
    expect(await redis.exists(keys.webhookDeliveries(endpoint.id))).toBe(0);
    expect(await store.delete(endpoint.id)).toBeNull();
  });

  it('rotates secrets: the previous ones sign until their expiry, 0 retires them at once, expired ones are dropped', async () => {
    const { endpoint, secret: first } = await make();
    const r1 = await store.rotateSecret(endpoint.id, T0 + 1000, 24 * HOUR);
    expect(r1?.secret).toMatch(/^whsec_/);
    expect(r1?.endpoint.secrets.map((s) => [s.value, s.expiresAt])).toEqual([
      [first, T0 + 1000 + 24 * HOUR],
      [r1?.secret, null],
    ]);
    // A shorter overlap shortens, never lengthens, an expiry already set.
    const r2 = await store.rotateSecret(endpoint.id, T0 + 2000, 0);
    const active = r2?.endpoint.secrets.filter((s) => isActive(s, T0 + 2000)).map((s) => s.value);
    expect(active).toEqual([r2?.secret]);
    const r3 = await store.rotateSecret(endpoint.id, T0 + 3000, HOUR);
    expect(r3?.endpoint.secrets.map((s) => s.value)).toEqual([r2?.secret, r3?.secret]);
    expect(await store.rotateSecret('whep_missing', T0, 0)).toBeNull();
  });

  it('keeps every secret made by concurrent rotations', async () => {
    const { endpoint } = await make();
    const made = await Promise.all(Array.from({ length: 5 }, () => store.rotateSecret(endpoint.id, T0 + 1000, HOUR)));
    const stored = (await store.get(endpoint.id))?.secrets.map((s) => s.value) ?? [];
    for (const m of made) expect(stored).toContain(m?.secret);
  });

  it('deletes a secret unless it is the only one that still signs', async () => {
    const { endpoint } = await make();
    const only = endpoint.secrets[0]?.id ?? '';
    expect(await store.removeSecret(endpoint.id, only, T0)).toEqual({ outcome: 'last' });
    const r = await store.rotateSecret(endpoint.id, T0, HOUR);
    const removed = await store.removeSecret(endpoint.id, only, T0);
    expect(removed.outcome).toBe('removed');
    expect(removed.outcome === 'removed' && removed.endpoint.secrets.map((s) => s.value)).toEqual([r?.secret]);
    expect(await store.removeSecret(endpoint.id, only, T0)).toEqual({ outcome: 'no_secret' });
    expect(await store.removeSecret('whep_missing', only, T0)).toEqual({ outcome: 'no_endpoint' });
  });

  it('keeps the newest entries of the delivery log, newest first', async () => {
    const { endpoint } = await make();
    const log = new DeliveryLog(redis, keys, 3);
    for (let i = 1; i <= 5; i++) {
      await log.append(endpoint.id, { event_id: `evt_${i}`, type: 'batch.completed', attempt: i, status: 'failed', http_status: 500, error: 'HTTP 500', duration_ms: 1, at: i });
    }
    expect((await log.read(endpoint.id, 10)).map((e) => e.event_id)).toEqual(['evt_5', 'evt_4', 'evt_3']);
    expect((await log.read(endpoint.id, 2)).map((e) => e.event_id)).toEqual(['evt_5', 'evt_4']);
  });
});

describe('an endpoint circuit', () => {
  const prefix = testPrefix();
  const keys = new RedisKeys(prefix);
  let redis: Redis;
  let store: EndpointStore;
  let circuit: EndpointCircuit;
  const OPEN = 60_000;

  beforeAll(() => {
    redis = new Redis(TEST_REDIS_URL);
    store = new EndpointStore(redis, keys);
    circuit = new EndpointCircuit(redis, keys, { failures: 3, openMs: OPEN, maxOpenMs: 3 * OPEN }, 20_000);
  });
  afterAll(async () => {
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('opens after the threshold of consecutive failures, lets one probe through, doubles on a failed probe, closes on success', async () => {
    const { endpoint, secret } = await store.create({ tenant: 'acme', url: 'https://h.example.com/', events: ['batch.completed'], description: '', now: T0 });
    const id = endpoint.id;
    expect(await circuit.admit(id, T0)).toEqual({ kind: 'send', probe: false, url: 'https://h.example.com/', secrets: endpoint.secrets });
    expect(endpoint.secrets[0]?.value).toBe(secret);
    // A success in between resets the count: only consecutive failures open the circuit.
    expect(await circuit.record(id, false, false, T0)).toBe(0);
    expect(await circuit.record(id, true, false, T0)).toBe(0);
    expect(await circuit.record(id, false, false, T0 + 1)).toBe(0);
    expect(await circuit.record(id, false, false, T0 + 2)).toBe(0);
    expect(await circuit.record(id, false, false, T0 + 3)).toBe(OPEN);
    expect(await circuit.admit(id, T0 + 4)).toEqual({ kind: 'open', until: T0 + 3 + OPEN });
    expect((await store.get(id))?.circuitOpenUntil).toBe(T0 + 3 + OPEN);
    // A late failure of an attempt that started before the opening does not extend it.
    expect(await circuit.record(id, false, false, T0 + 5)).toBe(0);

    const end = T0 + 3 + OPEN;
    expect(await circuit.admit(id, end)).toMatchObject({ kind: 'send', probe: true });
    expect(await circuit.admit(id, end + 1)).toEqual({ kind: 'probing', until: end + 20_000 });
    expect(await circuit.record(id, false, true, end + 10)).toBe(2 * OPEN);
    const end2 = end + 10 + 2 * OPEN;
    expect(await circuit.admit(id, end2 - 1)).toEqual({ kind: 'open', until: end2 });
    expect(await circuit.admit(id, end2)).toMatchObject({ kind: 'send', probe: true });
    expect(await circuit.record(id, false, true, end2)).toBe(3 * OPEN);
    const end3 = end2 + 3 * OPEN;
    expect(await circuit.admit(id, end3)).toMatchObject({ kind: 'send', probe: true });
    expect(await circuit.record(id, true, true, end3)).toBe(0);
    expect(await circuit.admit(id, end3 + 1)).toMatchObject({ kind: 'send', probe: false });
    expect(await store.get(id)).toMatchObject({ failures: 0, circuitOpenUntil: null });
  });

  it('refuses deliveries to a disabled endpoint and knows a deleted one is gone', async () => {
    const { endpoint } = await store.create({ tenant: 'acme', url: 'https://h.example.com/', events: ['batch.completed'], description: '', now: T0 });
    await store.update(endpoint.id, { enabled: false });
    expect(await circuit.admit(endpoint.id, T0)).toEqual({ kind: 'disabled' });
    await store.delete(endpoint.id);
    expect(await circuit.admit(endpoint.id, T0)).toEqual({ kind: 'gone' });
    expect(await circuit.record(endpoint.id, false, false, T0)).toBe(0);
    expect(await redis.exists(keys.webhookEndpoint(endpoint.id))).toBe(0);
  });
});
