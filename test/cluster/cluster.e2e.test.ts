import calculateSlot from 'cluster-key-slot';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys, poolQueue } from '@fastvlm/contracts';
import { createRedis, waitReady } from '@fastvlm/jobs';
import { auth, chatBody, png, postJson, readSse } from '../support/requests';
import { RedisClusterGroup } from '../support/redis-cluster';
import { startGateway, startWorker, stopWorker, uniquePrefix, until, type GatewayHandle, type WorkerProcess } from '../support/stack';
import { KedaClient, ref, startTestScaler } from '../scaler/harness';
import { migrateSlot } from './migrate-slot';

interface JobView {
  id: string;
  status: string;
  result: { choices: { message: { content: string } }[]; usage: { completion_tokens: number } } | null;
  error: { code: string } | null;
}

/** Locks short enough that a killed worker's job is taken over within seconds. */
const FAST_LOCKS = { WORKER_LOCK_DURATION_MS: '2000', WORKER_STALLED_INTERVAL_MS: '1000' };

/**
 * The end-to-end core on a Redis Cluster of three primaries: gateways and
 * workers given only REDIS_CLUSTER_NODES, every feature that writes Redis.
 */
describe('on a Redis Cluster of three primaries', () => {
  const prefix = uniquePrefix();
  const keys = new RedisKeys(prefix);
  let cluster: RedisClusterGroup;
  let redis: Redis;
  let gw: GatewayHandle;
  const workers: WorkerProcess[] = [];
  let image: Buffer;
  const env = (): Record<string, string> => ({ REDIS_CLUSTER_NODES: cluster.seeds, ...FAST_LOCKS });
  const jobs = (): string => `${gw.url}/v1/jobs`;
  const job = async (id: string): Promise<JobView> => (await (await fetch(`${jobs()}/${id}`, { headers: auth() })).json()) as JobView;
  const ended = (id: string, timeoutMs = 30_000): Promise<JobView> =>
    until(`job ${id} to end`, async () => {
      const j = await job(id);
      return ['succeeded', 'failed', 'cancelled'].includes(j.status) ? j : undefined;
    }, timeoutMs);
  const submit = async (question: string, extra: Record<string, unknown> = {}, headers = auth()): Promise<Response> =>
    postJson(jobs(), chatBody(image, question, { max_tokens: 8, ...extra }), headers);
  const submitted = async (question: string, extra: Record<string, unknown> = {}): Promise<string> => {
    const res = await submit(question, extra);
    expect(res.status).toBe(202);
    return ((await res.json()) as JobView).id;
  };

  beforeAll(async () => {
    [cluster, image] = await Promise.all([RedisClusterGroup.start(3), png(64, 64, 21)]);
    redis = createRedis(cluster.target, 'consumer', 'cluster-e2e', () => undefined);
    await waitReady(redis, 10_000);
    const [g, w] = await Promise.all([startGateway(prefix, env()), startWorker(prefix, env())]);
    gw = g;
    workers.push(w);
  }, 120_000);
  afterAll(async () => {
    await gw?.close();
    await Promise.all(workers.map((w) => stopWorker(w, 'SIGKILL')));
    redis?.disconnect();
    await cluster?.dispose();
  });

  it('spreads the traffic: every primary holds job keys, and the queue lives on one', async () => {
    const ids = await Promise.all(Array.from({ length: 12 }, (_, i) => submitted(`spread ${i}`)));
    await Promise.all(ids.map((id) => ended(id)));
    const perNode = await Promise.all(cluster.ports.map((p) => cluster.onNode(p, (c) => c.keys(`${prefix}:job:*`))));
    expect(perNode.every((k) => k.length > 0)).toBe(true);
    const queueSlot = calculateSlot(`${keys.bull()}:${poolQueue('tiny-random')}:wait`);
    expect(calculateSlot(keys.pendingJobs())).toBe(queueSlot);
  });

  it('answers a sync chat completion, and the same request again from the cache', async () => {
    const body = chatBody(image, 'what is here?', { max_tokens: 6, temperature: 0 });
    const first = await postJson(`${gw.url}/v1/chat/completions`, body);
    expect(first.status).toBe(200);
    const a = (await first.json()) as { choices: { message: { content: string } }[]; usage: { completion_tokens: number } };
    expect(a.usage.completion_tokens).toBe(6);
    const again = await postJson(`${gw.url}/v1/chat/completions`, body);
    expect(again.status).toBe(200);
    expect(((await again.json()) as typeof a).choices[0]?.message.content).toBe(a.choices[0]?.message.content);
    expect(first.headers.get('x-cache')).toBe('miss');
    expect(again.headers.get('x-cache')).toMatch(/^hit-/);
  });

  it('streams a chat completion token by token to [DONE]', async () => {
    const res = await postJson(`${gw.url}/v1/chat/completions`, chatBody(image, 'stream it', { max_tokens: 5, stream: true }));
    expect(res.status).toBe(200);
    const events = await readSse(res);
    expect(events.at(-1)?.data).toBe('[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.data) as { choices: { delta: { content?: string }; finish_reason: string | null }[] });
    expect(chunks.filter((c) => c.choices[0]?.delta.content !== undefined && c.choices[0].delta.content !== '').length).toBe(5);
    expect(chunks.at(-1)?.choices[0]?.finish_reason).toBe('length');
  });

  it('runs an async job whose events a client follows live (sharded pub/sub), ending with done', async () => {
    const id = await submitted('async on a cluster', { max_tokens: 7 });
    const events = await readSse(await fetch(`${jobs()}/${id}/events`, { headers: auth() }));
    const done = await ended(id);
    expect(done.status).toBe('succeeded');
    expect(done.result?.usage.completion_tokens).toBe(7);
    expect(events[0]?.event).toBe('status');
    expect(events.at(-1)?.event).toBe('done');
    const tokens = events.filter((e) => e.event === 'token').map((e) => (JSON.parse(e.data) as { text: string }).text);
    expect(tokens).toHaveLength(7);
    expect(tokens.join('')).toBe(done.result?.choices[0]?.message.content);
  });

  it('cancels a job, which then never runs to the end', async () => {
    const id = await submitted('cancel me', { max_tokens: 2000 });
    const res = await fetch(`${jobs()}/${id}`, { method: 'DELETE', headers: auth() });
    expect(res.status).toBe(200);
    expect((await ended(id)).status).toBe('cancelled');
  });

  it('replays an Idempotency-Key with the same job', async () => {
    const headers = { ...auth(), 'idempotency-key': `cluster-${prefix}` };
    const first = await submit('idempotent', {}, headers);
    const second = await submit('idempotent', {}, headers);
    expect([first.status, second.status]).toEqual([202, 202]);
    expect(((await second.json()) as JobView).id).toBe(((await first.json()) as JobView).id);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
  });

  it('enforces a tenant\'s in-flight cap on interactive work, and frees the slot once the job ends (the quota prunes across slots)', async () => {
    await redis.set(`${keys.shared}:tenant:globex`, JSON.stringify({ maxInFlightJobs: 1 }));
    const chat = (q: string, extra: Record<string, unknown> = {}): Promise<Response> =>
      postJson(`${gw.url}/v1/chat/completions`, chatBody(image, q, { max_tokens: 3, ...extra }), auth('globex'));
    // A streamed answer holds the tenant's one slot while it runs.
    const first = await chat('cap 1', { max_tokens: 200, stream: true });
    expect(first.status).toBe(200);
    const refused = await chat('cap 2');
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('rate_limited');
    expect((await readSse(first)).at(-1)?.data).toBe('[DONE]');
    expect((await chat('cap 3')).status).toBe(200);
  });

  it('re-runs the job of a worker killed mid-answer on another worker', async () => {
    const id = await submitted('crash me', { max_tokens: 400 });
    const first = workers[0] as WorkerProcess;
    await until('the job to stream tokens', async () => (await redis.xlen(keys.events(id))) > 5);
    const second = await startWorker(prefix, env());
    workers.push(second);
    await stopWorker(first, 'SIGKILL');
    const done = await ended(id, 60_000);
    expect(done.status).toBe('succeeded');
    expect(done.result?.usage.completion_tokens).toBe(400);
  }, 90_000);

  it('completes every job while the slot holding a running job\'s keys moves to another primary', async () => {
    const id = await submitted('moving', { max_tokens: 300 });
    const others = await Promise.all(Array.from({ length: 6 }, (_, i) => submitted(`alongside ${i}`, { max_tokens: 20 })));
    await until('the job to stream tokens', async () => (await redis.xlen(keys.events(id))) > 3);
    const slot = calculateSlot(keys.job(id));
    const from = await cluster.ownerOf(slot);
    const to = cluster.ports.find((p) => p !== from) as number;
    const moved = await migrateSlot(cluster, slot, from, to);
    expect(moved).toBeGreaterThanOrEqual(2);
    expect(await cluster.ownerOf(slot)).toBe(to);
    const done = await ended(id, 60_000);
    expect(done.status).toBe('succeeded');
    expect(done.result?.usage.completion_tokens).toBe(300);
    for (const other of others) expect((await ended(other)).status).toBe('succeeded');
    // The moved job's whole history is on its new primary.
    const events = await cluster.onNode(to, (c) => c.xlen(keys.events(id)));
    expect(events).toBe(await redis.xlen(keys.events(id)));
  }, 90_000);

  it('completes every job while the slot of the queue and the shared keys moves to another primary', async () => {
    const ids = await Promise.all(Array.from({ length: 8 }, (_, i) => submitted(`queue moves ${i}`, { max_tokens: 40 })));
    const slot = calculateSlot(keys.pendingJobs());
    const from = await cluster.ownerOf(slot);
    const to = cluster.ports.find((p) => p !== from) as number;
    expect(await migrateSlot(cluster, slot, from, to)).toBeGreaterThanOrEqual(5);
    expect(await cluster.ownerOf(slot)).toBe(to);
    const late = await Promise.all(Array.from({ length: 4 }, (_, i) => submitted(`after the move ${i}`)));
    for (const id of [...ids, ...late]) expect((await ended(id, 60_000)).status).toBe('succeeded');
  }, 90_000);

  it('lets the scaler read the backlog and the signals (one transaction in the queue\'s slot) and ask for workers', async () => {
    await Promise.all(workers.splice(0).map((w) => stopWorker(w, 'SIGTERM')));
    await Promise.all(Array.from({ length: 5 }, (_, i) => submitted(`waiting ${i}`)));
    const scaler = await startTestScaler(prefix, { REDIS_CLUSTER_NODES: cluster.seeds, SCALER_TICK_MS: '60000' });
    const keda = new KedaClient(scaler.grpcAddress);
    try {
      const so = ref('cluster-workers', { queue: poolQueue('tiny-random'), strategy: 'adaptive', replicaCapacity: '1', minReplicas: '0', maxReplicas: '10' });
      // The scaler answers UNAVAILABLE until its Cluster connection has the slots: ask until it answers.
      expect(await until('the scaler to read the cluster', () => keda.isActive(so).catch(() => undefined))).toBe(true);
      const metricName = (await keda.getMetricSpec(so)).metricSpecs[0]?.metricName ?? '';
      const metric = (await keda.getMetrics(so, metricName)).metricValues[0];
      expect(Number(metric?.metricValue)).toBeGreaterThanOrEqual(1);
    } finally {
      keda.close();
      await scaler.close();
    }
  });
});
