import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GatewayProcess } from '../support/processes';
import { auth } from '../support/requests';
import { until } from '../support/stack';
import { ChaosStack, FAST_LOCKS, longBody, quantile, reportFigures } from './harness';

/** How long before a SIGKILL an acknowledged write may still be lost with AOF everysec (see the README's guarantees). */
const AOF_WINDOW_MS = 2_000;

interface Sample {
  startedAt: number;
  ms: number;
  status: number;
  retryAfter: string | null;
  id?: string;
  body?: string;
}

const CLIENTS = 3;

describe('chaos: the queue Redis shut down, then killed, under steady load (AOF everysec)', () => {
  let stack: ChaosStack;
  let gw: GatewayProcess;

  beforeAll(async () => {
    stack = await ChaosStack.start();
    // Limits are not under test: the load must never meet a tenant cap while jobs pile up during an outage.
    [gw] = await Promise.all([
      stack.gateway({ RATE_LIMIT_KEY_RPM: '100000', RATE_LIMIT_TENANT_RPM: '100000', TENANT_MAX_INFLIGHT_JOBS: '10000', TENANT_MAX_QUEUED_JOBS: '10000' }),
      stack.worker(FAST_LOCKS),
    ]);
  });
  afterAll(async () => {
    await stack?.dispose();
  });

  const answers = async (): Promise<boolean> => {
    const c = new Redis(stack.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 500 });
    c.on('error', () => undefined);
    try {
      await c.connect();
      return (await c.ping()) === 'PONG';
    } catch {
      return false;
    } finally {
      c.disconnect();
    }
  };

  it('runs every job it answered 202 to success, and answers 503 with Retry-After within 2 s while Redis is down', async () => {
    const samples: Sample[] = [];
    let running = true;
    let n = 0;
    const client = async (): Promise<void> => {
      while (running) {
        const startedAt = Date.now();
        const body = await longBody(`steady ${n++}`, 8);
        // A request the gateway never answers counts as status 0 (a hang), not as a stuck test.
        const res = await fetch(`${gw.url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth() }, body: JSON.stringify(body), signal: AbortSignal.timeout(15_000) }).catch(() => null);
        const sample: Sample = { startedAt, ms: Date.now() - startedAt, status: res?.status ?? 0, retryAfter: res?.headers.get('retry-after') ?? null };
        if (res?.status === 202) sample.id = ((await res.json()) as { id: string }).id;
        else if (res && res.status !== 503) sample.body = (await res.text()).slice(0, 200);
        else await res?.body?.cancel();
        samples.push(sample);
        // A refused client backs off a little, as Retry-After asks (bounded so that the outage is sampled densely).
        if (res?.status === 503) await new Promise((r) => setTimeout(r, 100));
      }
    };
    const load = Promise.all(Array.from({ length: CLIENTS }, client));
    const accepted = (): number => samples.filter((s) => s.status === 202).length;
    const outages: { kind: string; downAt: number; upAt: number; readyAfterMs: number }[] = [];
    let phase = 'start';
    let killedAt = 0;

    try {
      for (const kind of ['SHUTDOWN', 'SIGKILL'] as const) {
        phase = `${kind}: steady load`;
        const base = accepted();
        await until('steady load to be accepted', () => accepted() >= base + 30, 60_000);
        if (kind === 'SHUTDOWN') await shutdownRedis(stack.url);
        else {
          killedAt = Date.now();
          await stack.server.down();
        }
        phase = `${kind}: waiting for redis to go`;
        await until('redis to be gone', async () => !(await answers()), 10_000);
        const downAt = Date.now();
        await until('the gateway to refuse a few requests', () => samples.filter((s) => s.startedAt >= downAt && s.status !== 202).length >= 5, 30_000);
        phase = `${kind}: restarting`;
        const upAt = Date.now();
        await stack.server.up();
        await until('the gateway to be ready again', async () => (await fetch(`${gw.url}/health/ready`)).status === 200, 60_000);
        outages.push({ kind, downAt, upAt, readyAfterMs: Date.now() - upAt });
      }
      const base = accepted();
      await until('load to be accepted after the outages', () => accepted() >= base + 30, 60_000);
      phase = 'done';
    } finally {
      running = false;
      await load;
      if (phase !== 'done') reportFigures('redis-outage', { stuckIn: phase, statuses: samples.slice(-10).map((s) => s.status), gatewayLog: gw.output().slice(-1500) });
    }

    const ids = samples.flatMap((s) => (s.id ? [s.id] : []));
    let unfinished: string[] = ids;
    await until(
      'every accepted job to end',
      async () => {
        const statuses = await Promise.all(unfinished.map(async (id) => ((await stack.record(id)).status ?? 'missing')));
        unfinished = unfinished.filter((_, i) => !['succeeded', 'failed', 'cancelled', 'missing'].includes(statuses[i] ?? ''));
        return unfinished.length === 0;
      },
      120_000,
    ).catch(() => undefined);
    const finalStatuses = await Promise.all(ids.map(async (id) => (await stack.record(id)).status ?? 'missing'));
    // What AOF everysec does not promise: writes answered in the moment before a SIGKILL may still sit in Redis'
    // own AOF buffer (Redis postpones the write while a slow fsync runs, up to 2 s), and are gone with the process.
    const answeredBeforeKill = new Set(samples.filter((s) => s.id && s.startedAt + s.ms >= killedAt - AOF_WINDOW_MS && s.startedAt <= killedAt).map((s) => s.id));
    const lost = ids.filter((id, i) => finalStatuses[i] === 'missing' && answeredBeforeKill.has(id));
    const during = samples.filter((s) => outages.some((o) => s.startedAt >= o.downAt && s.startedAt + s.ms <= o.upAt));
    const statusCounts: Record<string, number> = {};
    for (const s of samples) statusCounts[s.status] = (statusCounts[s.status] ?? 0) + 1;
    reportFigures('redis-outage', {
      requests: samples.length,
      statusCounts,
      accepted: ids.length,
      succeeded: finalStatuses.filter((s) => s === 'succeeded').length,
      notSucceeded: finalStatuses.filter((s) => s !== 'succeeded').length,
      lostInTheAofWindow: lost.length,
      whileDown: during.length,
      whileDown503p50Ms: quantile(during.map((s) => s.ms), 0.5),
      whileDown503maxMs: Math.max(0, ...during.map((s) => s.ms)),
      readyAfterRestartMs: outages.map((o) => `${o.kind}:${o.readyAfterMs}`),
      otherAnswers: samples.filter((s) => s.body !== undefined).slice(0, 3).map((s) => `${s.status} ${s.body ?? ''}`),
    });

    expect(ids.filter((id, i) => finalStatuses[i] !== 'succeeded' && !lost.includes(id))).toEqual([]);
    expect(during.length).toBeGreaterThan(0);
    for (const s of during) {
      expect(s.status).toBe(503);
      expect(s.retryAfter).not.toBeNull();
      expect(s.ms).toBeLessThan(2_000);
    }
    // Around the outages, a request is either accepted or refused as unavailable: never a 500.
    expect(Object.keys(statusCounts).sort()).toEqual(['202', '503']);
  }, 180_000);
});

/**
 * SHUTDOWN on a one-shot connection: a reconnecting client would send the
 * unanswered command again on reconnect and shut the restarted server down too.
 */
async function shutdownRedis(url: string): Promise<void> {
  const c = new Redis(url, { maxRetriesPerRequest: 0, retryStrategy: () => null, autoResendUnfulfilledCommands: false });
  c.on('error', () => undefined);
  await c.call('SHUTDOWN').catch(() => undefined);
  c.disconnect();
}
