import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auth, chatBody, png, postJson } from '../support/requests';
import { cleanupPrefix, uniquePrefix } from '../support/stack';
import { bearer, createKey, leaksIn, startSecureGateway, type SecureGateway } from './support/gateways';

interface ErrorBody {
  error: { message: string; type: string; code: string; param: string | null };
}
interface KeyBody {
  id: string;
  key: string;
  tenant: string;
  scopes: string[];
  revoked_at: number | null;
}
interface AuditBody {
  data: { id: string; type: string; reason?: string; tenant?: string; keyId?: string; actor?: string; limit?: string; ip?: string }[];
}

async function code(res: Response): Promise<string> {
  return ((await res.json()) as ErrorBody).error.code;
}

describe('API keys, scopes, revocation, network rules and the audit log', () => {
  const prefix = uniquePrefix();
  let a: SecureGateway;
  let b: SecureGateway;
  let proxied: SecureGateway;
  let admin: string;
  let image: Buffer;
  const created: string[] = [];
  const questions: string[] = [];

  const adminCall = (gw: SecureGateway, method: string, path: string, body?: unknown): Promise<Response> =>
    fetch(`${gw.url}${path}`, { method, headers: { ...bearer(admin), ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });

  async function newKey(tenant: string, scopes: string[]): Promise<KeyBody> {
    const res = await adminCall(a, 'POST', '/v1/admin/keys', { tenant, name: `k-${scopes.join('-')}`, scopes });
    expect(res.status).toBe(201);
    const k = (await res.json()) as KeyBody;
    created.push(k.key);
    return k;
  }

  beforeAll(async () => {
    admin = (await createKey(prefix, 'ops', ['admin'])).key;
    created.push(admin);
    [a, b, proxied, image] = await Promise.all([
      startSecureGateway(prefix),
      startSecureGateway(prefix),
      startSecureGateway(prefix, { TRUST_PROXY: '127.0.0.1' }),
      png(16, 16, 4),
    ]);
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close(), proxied?.close()]);
    await cleanupPrefix(prefix);
  });

  it('creates a key through the admin API, shows it once, and lists it without the key', async () => {
    const k = await newKey('acme', ['infer', 'jobs:read']);
    expect(k.key).toMatch(/^fvlm_[0-9A-Za-z]{39}$/);
    expect((await fetch(`${b.url}/v1/models`, { headers: bearer(k.key) })).status).toBe(200);
    const list = await (await adminCall(a, 'GET', '/v1/admin/keys?tenant=acme')).text();
    expect(list).toContain(k.id);
    expect(list).not.toContain(k.key);
    expect(list).toContain('"source":"bootstrap"');
  });

  it('enforces scopes per route with 403 forbidden', async () => {
    const reader = await newKey('acme', ['jobs:read']);
    const inferer = await newKey('acme', ['infer']);
    const q = 'scope check question';
    questions.push(q);
    const denied = await postJson(`${a.url}/v1/jobs`, chatBody(image, q), bearer(reader.key));
    expect(denied.status).toBe(403);
    const body = (await denied.json()) as ErrorBody;
    expect(body.error).toMatchObject({ code: 'forbidden', type: 'permission_error' });
    expect(body.error.message).toContain('"infer"');
    const job = await postJson(`${a.url}/v1/jobs`, chatBody(image, q), bearer(inferer.key));
    expect(job.status).toBe(202);
    const { id } = (await job.json()) as { id: string };
    expect((await fetch(`${a.url}/v1/jobs/${id}`, { headers: bearer(inferer.key) })).status).toBe(403);
    expect((await fetch(`${a.url}/v1/jobs/${id}`, { headers: bearer(reader.key) })).status).toBe(200);
    expect((await fetch(`${a.url}/v1/jobs/${id}/events`, { headers: bearer(inferer.key) })).status).toBe(403);
    expect(await code(await fetch(`${a.url}/v1/admin/keys`, { headers: bearer(inferer.key) }))).toBe('forbidden');
    expect(await code(await fetch(`${a.url}/v1/admin/audit`, { headers: auth('acme') }))).toBe('forbidden');
    expect((await postJson(`${a.url}/v1/jobs`, chatBody(image, q), bearer(admin))).status).toBe(403);
  });

  it('revokes a key for the next request on every gateway', async () => {
    const k = await newKey('acme', ['infer', 'jobs:read']);
    expect((await fetch(`${a.url}/v1/models`, { headers: bearer(k.key) })).status).toBe(200);
    expect((await fetch(`${b.url}/v1/models`, { headers: bearer(k.key) })).status).toBe(200);
    const revoked = (await (await adminCall(a, 'DELETE', `/v1/admin/keys/${k.id}`)).json()) as KeyBody;
    expect(revoked.revoked_at).not.toBeNull();
    expect(await code(await fetch(`${b.url}/v1/models`, { headers: bearer(k.key) }))).toBe('unauthorized');
    expect(await code(await fetch(`${a.url}/v1/models`, { headers: bearer(k.key) }))).toBe('unauthorized');
    expect(await code(await adminCall(a, 'DELETE', '/v1/admin/keys/key_0000000000000000'))).toBe('not_found');
  });

  it('refuses missing, malformed and unknown keys with 401 before reading the body', async () => {
    expect(await code(await fetch(`${a.url}/v1/models`))).toBe('unauthorized');
    expect(await code(await fetch(`${a.url}/v1/models`, { headers: { authorization: 'Basic eDp5' } }))).toBe('unauthorized');
    expect(await code(await fetch(`${a.url}/v1/models`, { headers: bearer('fvlm_000000000000000000000000000000000000000') }))).toBe('unauthorized');
    // A body far over the limit: refused for the key, not for its size.
    const big = await fetch(`${a.url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(30 * 1024 * 1024) });
    expect(big.status).toBe(401);
  });

  it('validates tenant settings and key requests, naming the field', async () => {
    const bad = (await (await adminCall(a, 'PATCH', '/v1/admin/tenants/acme', { maxInFlightJobs: -1 })).json()) as ErrorBody;
    expect(bad.error).toMatchObject({ code: 'invalid_request', param: 'maxInFlightJobs' });
    const badKey = (await (await adminCall(a, 'POST', '/v1/admin/keys', { tenant: 'acme', name: 'x', scopes: ['root'] })).json()) as ErrorBody;
    expect(badKey.error.param).toBe('scopes.0');
    const badTenant = (await (await adminCall(a, 'POST', '/v1/admin/keys', { tenant: 'a b', name: 'x', scopes: ['infer'] })).json()) as ErrorBody;
    expect(badTenant.error.param).toBe('tenant');
  });

  it("applies a tenant's IP allowlist, believing X-Forwarded-For only where TRUST_PROXY says so", async () => {
    const k = await newKey('netco', ['infer', 'jobs:read']);
    expect((await adminCall(a, 'PATCH', '/v1/admin/tenants/netco', { ipAllowlist: ['203.0.113.0/24'] })).status).toBe(200);
    const from = (gw: SecureGateway, xff?: string) => fetch(`${gw.url}/v1/models`, { headers: { ...bearer(k.key), ...(xff ? { 'x-forwarded-for': xff } : {}) } });
    expect(await code(await from(a))).toBe('forbidden');
    expect((await from(a, '203.0.113.9')).status).toBe(403);
    expect((await from(proxied, '203.0.113.9')).status).toBe(200);
    expect((await from(proxied, '198.51.100.1')).status).toBe(403);
    expect((await adminCall(a, 'PATCH', '/v1/admin/tenants/netco', { ipAllowlist: null })).status).toBe(200);
    expect((await from(a)).status).toBe(200);
  });

  it('refuses an address with 429 after its failed authentications pass the limit, while other addresses go on', async () => {
    const strict = await startSecureGateway(prefix, { TRUST_PROXY: '127.0.0.1', AUTH_FAILURES_PER_IP_PER_MIN: '3' });
    try {
      const k = await newKey('throttled', ['infer']);
      const call = (xff: string, key: string) => fetch(`${strict.url}/v1/models`, { headers: { ...bearer(key), 'x-forwarded-for': xff } });
      const guess = 'fvlm_000000000000000000000000000000000000000';
      for (let i = 0; i < 3; i++) expect((await call('192.0.2.7', guess)).status).toBe(401);
      const over = await call('192.0.2.7', guess);
      expect(over.status).toBe(429);
      expect(await code(over)).toBe('rate_limited');
      expect(Number(over.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      // The address is refused whatever key it sends until the minute is over; others are not.
      expect((await call('192.0.2.7', k.key)).status).toBe(429);
      expect((await call('192.0.2.8', k.key)).status).toBe(200);
      expect((await call('192.0.2.8', guess)).status).toBe(401);
      const audit = (await (await adminCall(strict, 'GET', '/v1/admin/audit?type=limit_hit&limit=50')).json()) as AuditBody;
      expect(audit.data.find((e) => e.limit === 'auth_failures')).toMatchObject({ ip: '192.0.2.7' });
    } finally {
      await strict.close();
    }
  });

  it('records security events in an audit log that admins read, without keys or question text', async () => {
    const res = await adminCall(b, 'GET', '/v1/admin/audit?limit=200');
    expect(res.status).toBe(200);
    const text = await res.text();
    const events = (JSON.parse(text) as AuditBody).data;
    const types = new Set(events.map((e) => e.type));
    for (const t of ['auth_failed', 'forbidden', 'key_created', 'key_revoked', 'admin_action']) expect(types).toContain(t);
    expect(events.filter((e) => e.type === 'auth_failed').map((e) => e.reason)).toEqual(expect.arrayContaining(['missing', 'malformed', 'unknown_key', 'revoked']));
    expect(events.find((e) => e.type === 'forbidden')?.reason).toBeDefined();
    for (const k of created) expect(text).not.toContain(k);
    for (const q of questions) expect(text).not.toContain(q);
    const filtered = (await (await adminCall(b, 'GET', '/v1/admin/audit?type=key_revoked')).json()) as AuditBody;
    expect(filtered.data.length).toBeGreaterThan(0);
    expect(filtered.data.every((e) => e.type === 'key_revoked')).toBe(true);
    expect(await code(await adminCall(b, 'GET', '/v1/admin/audit?type=nope'))).toBe('invalid_request');
  });

  it('leaves no key, Authorization header or question text in the gateway logs', () => {
    const logs = a.logs() + b.logs() + proxied.logs();
    expect(logs).toContain('"audit"');
    expect(leaksIn(logs, { keys: created, questions })).toEqual([]);
  });
});
