import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatBody, png, postJson } from '../support/requests';
import { cleanupPrefix, startWorker, stopWorker, uniquePrefix, type WorkerProcess } from '../support/stack';
import { bearer, createKey, leaksIn, startSecureGateway, type SecureGateway } from './support/gateways';

const TENANTS = ['t-alpha', 't-beta', 't-gamma'] as const;
type TenantName = (typeof TENANTS)[number];

const pair = fc.tuple(fc.constantFrom(...TENANTS), fc.constantFrom(...TENANTS)).filter(([a, b]) => a !== b);
const question = fc.string({ minLength: 1, maxLength: 40 }).map((s) => `isolation ${s.replace(/[^\x20-\x7e]/g, '?')}`);

describe('tenant isolation (property-based, through HTTP)', () => {
  const prefix = uniquePrefix();
  let gw: SecureGateway;
  let worker: WorkerProcess;
  const keys = {} as Record<TenantName, string>;
  const images: Buffer[] = [];
  const asked: string[] = [];

  beforeAll(async () => {
    const generous = { RATE_LIMIT_KEY_RPM: '100000', RATE_LIMIT_TENANT_RPM: '100000', TENANT_MAX_QUEUED_JOBS: '1000', TENANT_MAX_INFLIGHT_JOBS: '1000' };
    [gw, worker] = await Promise.all([startSecureGateway(prefix, generous), startWorker(prefix)]);
    for (const t of TENANTS) keys[t] = (await createKey(prefix, t, ['infer', 'jobs:read'])).key;
    for (let i = 0; i < 3; i++) images.push(await png(16, 16, 20 + i));
  });
  afterAll(async () => {
    await gw?.close();
    if (worker) await stopWorker(worker);
    await cleanupPrefix(prefix);
  });

  it("never shows a job of tenant A to tenant B (read, events, cancel, idempotency replay)", async () => {
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(pair, question, fc.integer({ min: 0, max: 2 }), fc.string({ minLength: 1, maxLength: 20 }), async ([a, b], q, img, key) => {
        asked.push(q);
        // A key reused by an earlier run with another body is a legitimate 409; each run gets its own.
        const idem = `${key}-${runs++}`;
        const body = chatBody(images[img] as Buffer, q, { max_tokens: 2 });
        const created = await postJson(`${gw.url}/v1/jobs`, body, { ...bearer(keys[a]), 'idempotency-key': idem });
        expect(created.status).toBe(202);
        const { id } = (await created.json()) as { id: string };
        expect((await fetch(`${gw.url}/v1/jobs/${id}`, { headers: bearer(keys[b]) })).status).toBe(404);
        expect((await fetch(`${gw.url}/v1/jobs/${id}/events`, { headers: bearer(keys[b]) })).status).toBe(404);
        expect((await fetch(`${gw.url}/v1/jobs/${id}`, { method: 'DELETE', headers: bearer(keys[b]) })).status).toBe(404);
        const replay = await postJson(`${gw.url}/v1/jobs`, body, { ...bearer(keys[b]), 'idempotency-key': idem });
        expect(replay.status).toBe(202);
        expect(((await replay.json()) as { id: string }).id).not.toBe(id);
        expect((await fetch(`${gw.url}/v1/jobs/${id}`, { headers: bearer(keys[a]) })).status).toBe(200);
      }),
      { numRuns: 25 },
    );
  });

  it("never serves tenant A's cached answer to tenant B", async () => {
    await fc.assert(
      fc.asyncProperty(pair, question, fc.integer({ min: 0, max: 2 }), async ([a, b], q, img) => {
        asked.push(q);
        const body = chatBody(images[img] as Buffer, q, { max_tokens: 2 });
        const first = await postJson(`${gw.url}/v1/chat/completions`, body, bearer(keys[a]));
        expect(first.status).toBe(200);
        const again = await postJson(`${gw.url}/v1/chat/completions`, body, bearer(keys[a]));
        expect(again.headers.get('x-cache')).toMatch(/^hit-/);
        const other = await postJson(`${gw.url}/v1/chat/completions`, body, bearer(keys[b]));
        expect(other.status).toBe(200);
        // B may have asked the same thing in an earlier run; it must never be A's entry that answers.
        const bFirstTime = !asked.slice(0, -1).includes(q);
        if (bFirstTime) expect(other.headers.get('x-cache')).toBe('miss');
      }),
      { numRuns: 10 },
    );
  });

  it('leaves no key or question text in the logs', () => {
    expect(leaksIn(gw.logs() + worker.output(), { keys: Object.values(keys), questions: asked.filter((q) => q.length >= 16) })).toEqual([]);
  });
});
