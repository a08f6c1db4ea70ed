import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyDigest } from './api-key-format';
import { BootstrapKeys } from './api-keys';
import { AuditLog } from './audit-log';
import { AuthError, Authenticator } from './authenticator';
import { ApiKeyStore } from './key-store';
import { runKeysCli } from './keys-cli';
import { TenantSettingsStore } from './tenant-settings';
import { cleanupPrefix, TEST_TENANT_DEFAULTS, testPrefix, testRedis } from './test-redis';

const DEFAULTS = TEST_TENANT_DEFAULTS;

async function reason(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return e instanceof AuthError ? e.reason : 'other';
  }
  return 'none';
}

async function allStoredValues(redis: Redis, prefix: string): Promise<string> {
  const keys = await redis.keys(`${prefix}:*`);
  let out = keys.join('\n');
  for (const k of keys) {
    const type = await redis.type(k);
    if (type === 'hash') out += JSON.stringify(await redis.hgetall(k));
    else if (type === 'string') out += (await redis.get(k)) ?? '';
    else if (type === 'stream') out += JSON.stringify(await redis.xrange(k, '-', '+'));
  }
  return out;
}

describe('API keys in Redis', () => {
  const prefix = testPrefix();
  let redis: Redis;
  let store: ApiKeyStore;
  let settings: TenantSettingsStore;
  const authenticator = (boot = '') =>
    new Authenticator(store, new BootstrapKeys(boot), { defaults: DEFAULTS, tenantSettingsJson: (t) => redis.get(settings.key(t)), touchIntervalMs: 0 });

  beforeAll(() => {
    redis = testRedis();
    store = new ApiKeyStore(redis, prefix);
    settings = new TenantSettingsStore(redis, prefix, DEFAULTS);
  });
  afterAll(async () => {
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('stores a created key only as its SHA-256 and authenticates it to its tenant, scopes and limits', async () => {
    const { key, record } = await store.create({ tenant: 'acme', name: 'ci', scopes: ['infer'], now: 1_000 });
    await settings.patch('acme', { tokensPerMinute: 42 });
    const stored = await allStoredValues(redis, prefix);
    expect(stored).not.toContain(key);
    expect(stored).toContain(keyDigest(key));
    const p = await authenticator().authenticate(`Bearer ${key}`);
    expect(p).toMatchObject({ tenant: 'acme', keyId: record.id, scopes: ['infer'] });
    expect(p.settings.tokensPerMinute).toBe(42);
    expect(p.settings.requestsPerMinute).toBe(100);
  });

  it('refuses a revoked key on the next request of every authenticator (no cache to invalidate)', async () => {
    const { key, record } = await store.create({ tenant: 'acme', name: 'to-revoke', scopes: ['infer'], now: 1 });
    const podA = authenticator();
    const podB = authenticator();
    await podA.authenticate(`Bearer ${key}`);
    await podB.authenticate(`Bearer ${key}`);
    expect((await store.revoke(record.id, 2))?.revokedAt).toBe(2);
    expect(await reason(podA.authenticate(`Bearer ${key}`))).toBe('revoked');
    expect(await reason(podB.authenticate(`Bearer ${key}`))).toBe('revoked');
    expect((await store.revoke(record.id, 3))?.revokedAt).toBe(2);
  });

  it('tells missing, malformed, unknown and bad-checksum keys apart for the audit log', async () => {
    const a = authenticator();
    const { key } = await store.create({ tenant: 'acme', name: 'x', scopes: ['infer'], now: 1 });
    expect(await reason(a.authenticate(undefined))).toBe('missing');
    expect(await reason(a.authenticate('Basic abc'))).toBe('malformed');
    expect(await reason(a.authenticate(`Bearer ${'x'.repeat(300)}`))).toBe('malformed');
    expect(await reason(a.authenticate(`Bearer ${key.slice(0, -1)}${key.endsWith('A') ? 'B' : 'A'}`))).toBe('unknown_key');
    expect(await reason(a.authenticate('Bearer fvlm_000000000000000000000000000000000000000'))).toBe('unknown_key');
  });

  it('records when a key was last used', async () => {
    const { key, record } = await store.create({ tenant: 'acme', name: 'used', scopes: ['infer'], now: 1 });
    const clock = { t: 5_000 };
    const a = new Authenticator(store, new BootstrapKeys(''), { defaults: DEFAULTS, tenantSettingsJson: () => Promise.resolve(null), now: () => clock.t });
    await a.authenticate(`Bearer ${key}`);
    await expect.poll(async () => (await store.get(record.id))?.lastUsedAt).toBe(5_000);
  });

  it('reads bootstrap keys with optional scopes and refuses malformed entries', async () => {
    const boot = 'dev:dev-key-0123456789abcdef,ops:ops-key-0123456789abcdef:admin+jobs:read';
    const a = authenticator(boot);
    expect((await a.authenticate('Bearer dev-key-0123456789abcdef')).scopes).toEqual(['infer', 'jobs:read']);
    expect((await a.authenticate('Bearer ops-key-0123456789abcdef')).scopes).toEqual(['admin', 'jobs:read']);
    expect(() => new BootstrapKeys('dev:short')).toThrow(/at least 16/);
    expect(() => new BootstrapKeys('dev:dev-key-0123456789abcdef:root')).toThrow(/Unknown scope/);
  });

  it('creates, lists and revokes keys from the CLI, auditing each change', async () => {
    const lines: string[] = [];
    const audit = new AuditLog(redis, prefix);
    const deps = { store, audit, out: (l: string) => lines.push(l) };
    expect(await runKeysCli(['create', '--tenant', 'globex', '--name', 'ci', '--scopes', 'infer,jobs:read', '--json'], deps)).toBe(0);
    const created = JSON.parse(lines.pop() ?? '{}') as { id: string; key: string; scopes: string[] };
    expect(created.scopes).toEqual(['infer', 'jobs:read']);
    expect((await authenticator().authenticate(`Bearer ${created.key}`)).tenant).toBe('globex');
    expect(await runKeysCli(['list', '--tenant', 'globex'], deps)).toBe(0);
    expect(lines.pop()).toContain(created.id);
    expect(await runKeysCli(['revoke', created.id], deps)).toBe(0);
    expect(await reason(authenticator().authenticate(`Bearer ${created.key}`))).toBe('revoked');
    expect(await runKeysCli(['create', '--tenant', 'globex', '--name', 'x', '--scopes', 'root'], deps)).toBe(2);
    const events = (await audit.read({ limit: 10 })).map((e) => e.event.type);
    expect(events).toEqual(['key_revoked', 'key_created']);
    expect(JSON.stringify(await audit.read({ limit: 10 }))).not.toContain(created.key);
  });

  it('migrate-layout reports what it moved and what it kept, and fails while a key was kept', async () => {
    const lines: string[] = [];
    const audit = new AuditLog(redis, prefix);
    const deps = (kept: string[]) => ({ store, audit, out: (l: string) => lines.push(l), migrateLayout: () => Promise.resolve({ moved: 3, kept }) });
    expect(await runKeysCli(['migrate-layout'], deps([]))).toBe(0);
    expect(lines.splice(0)).toEqual(['moved 3 keys into the shared slot']);
    expect(await runKeysCli(['migrate-layout'], deps(['p:tenant:x']))).toBe(1);
    expect(lines.splice(0)).toEqual(['moved 3 keys into the shared slot', 'kept p:tenant:x: its new name exists already (compare the two and delete one)']);
  });
});
