import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys, type InferenceJobData, type JobEvent, poolQueue } from '@fastvlm/contracts';
import { WorkerRegistry, poolHolds } from '@fastvlm/jobs';
import { auth, chatBody, png, postJson, readSse } from '../support/requests';
import { REDIS_URL, cleanupPrefix, startGateway, uniquePrefix, until, type GatewayHandle } from '../support/stack';

/** What the job store's scripts do: append to a job's event stream and announce the entry. */
const APPEND = `
local id = redis.call('XADD', KEYS[1], '*', 'e', ARGV[2])
redis.call('PUBLISH', ARGV[1], id .. ' ' .. ARGV[2])
return id
`;

/** Reads a streaming response until `done(text)` holds or the body ends; then drops the connection. */
async function readUntil(res: Response, done: (text: string) => boolean, ctrl: AbortController): Promise<string> {
  if (!res.body) throw new Error(`no body (status ${res.status})`);
  const decoder = new TextDecoder();
  let text = '';
  try {
    for await (const piece of res.body as AsyncIterable<Uint8Array>) {
      text += decoder.decode(piece, { stream: true });
      if (done(text)) break;
    }
  } finally {
    ctrl.abort();
  }
  return text;
}

interface Fixture {
  prefix: string;
  keys: RedisKeys;
  redis: Redis;
  queue: Queue<InferenceJobData>;
}

function fixture(): Fixture {
  const prefix = uniquePrefix();
  const keys = new RedisKeys(prefix);
  const redis = new Redis(REDIS_URL);
  const queue = new Queue<InferenceJobData>(poolQueue('tiny-random'), { connection: redis, prefix: keys.bull() });
  return { prefix, keys, redis, queue };
}

/**
 * The tenant's newest job not in `known` (then added to it): sync responses do not
 * name their job. Records of requests de-duplicated onto another job are discarded.
 */
async function newJob(f: Fixture, known: Set<string>, tenant = 'acme'): Promise<string> {
  const id = await until(`a new job of ${tenant}`, async () => {
    for (const candidate of await f.redis.lrange(f.keys.tenantJobs(tenant), 0, -1)) {
      if (!known.has(candidate) && (await f.redis.exists(f.keys.job(candidate))) === 1) return candidate;
    }
    return undefined;
  });
  known.add(id);
  return id;
}

const status = (f: Fixture, id: string): Promise<string | null> => f.redis.hget(f.keys.job(id), 'status');

describe('abandoned and timed-out requests, with no worker running', () => {
  const f = fixture();
  let gw: GatewayHandle;
  let image: Buffer;
  const known = new Set<string>();

  beforeAll(async () => {
    [gw, image] = await Promise.all([startGateway(f.prefix, { SYNC_TIMEOUT_MS: '1000', SSE_KEEPALIVE_MS: '50' }), png(32, 32, 4)]);
  });
  afterAll(async () => {
    await gw?.close();
    await f.queue.close();
    await cleanupPrefix(f.prefix);
    f.redis.disconnect();
  });

  it('answers a sync request 504 at SYNC_TIMEOUT_MS and cancels its job, which leaves the queue', async () => {
    const res = await postJson(`${gw.url}/v1/chat/completions`, chatBody(image, 'nobody will run this', { max_tokens: 3 }));
    expect(res.status).toBe(504);
    const id = await newJob(f, known);
    expect(await res.json()).toEqual({
      error: { message: `No answer within 1000 ms; no worker took the job ${id}, so it was cancelled.`, type: 'server_error', code: 'timeout', param: null },
    });
    expect(await status(f, id)).toBe('cancelled');
    // The record ends first; the queue job is removed right after it.
    await until('the job to leave the queue', async () => (await f.queue.getJob(id)) === undefined);
    expect(await f.redis.exists(f.keys.syncWaiters(id))).toBe(0);
  });

  it('cancels a queued sync job when its only client disconnects', async () => {
    const ctrl = new AbortController();
    const pending = fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth() },
      body: JSON.stringify(chatBody(image, 'client hangs up', { max_tokens: 3 })),
      signal: ctrl.signal,
    }).catch((e: unknown) => (e instanceof Error ? e.name : 'failed'));
    const id = await newJob(f, known);
    await until('the request to wait', async () => (await f.redis.get(f.keys.syncWaiters(id))) === '1');
    ctrl.abort();
    expect(await pending).toBe('AbortError');
    await until('the job to be cancelled', async () => (await status(f, id)) === 'cancelled');
    // The record ends first; the queue job is removed right after it.
    await until('the job to leave the queue', async () => (await f.queue.getJob(id)) === undefined);
  });

  it('ends a streamed chat at SYNC_TIMEOUT_MS with a timeout error chunk and [DONE], sending keep-alives while it waits', async () => {
    const res = await postJson(`${gw.url}/v1/chat/completions`, chatBody(image, 'stream for nobody', { max_tokens: 3, stream: true }));
    expect(res.status).toBe(200);
    const text = await res.text();
    const id = await newJob(f, known);
    expect(text).toContain(': keep-alive\n\n');
    const events = (await readSse(new Response(text))).map((e) => e.data);
    expect(JSON.parse(events[0] ?? '{}')).toMatchObject({ object: 'chat.completion.chunk', choices: [{ delta: { role: 'assistant', content: '' } }] });
    expect(events.slice(-2)).toEqual([
      JSON.stringify({
        error: { message: `No answer within 1000 ms; no worker took the job ${id}, so it was cancelled.`, type: 'server_error', code: 'timeout', param: null },
      }),
      '[DONE]',
    ]);
    expect(await status(f, id)).toBe('cancelled');
    // The record ends first; the queue job is removed right after it.
    await until('the job to leave the queue', async () => (await f.queue.getJob(id)) === undefined);
  });

  it('sends keep-alive comments on /v1/jobs/{id}/events while the job waits in the queue', async () => {
    const created = (await (await postJson(`${gw.url}/v1/jobs`, chatBody(image, 'async, queued', { max_tokens: 3 }))).json()) as { id: string };
    known.add(created.id);
    const ctrl = new AbortController();
    const res = await fetch(`${gw.url}/v1/jobs/${created.id}/events`, { headers: auth(), signal: ctrl.signal });
    const text = await readUntil(res, (t) => t.includes(': keep-alive\n\n'), ctrl);
    expect(text.startsWith('id: ')).toBe(true);
    expect(text).toContain('event: status\ndata: {"status":"queued"}\n\n');
    expect(text).toContain(': keep-alive\n\n');
    // An async job is its owner's: nobody leaving its events stream cancels it.
    expect(await status(f, created.id)).toBe('queued');
  });

  it('removes a cancelled queued job from its pool at once, whether it waits in the fair queue or was dispatched', async () => {
    const holds = poolHolds(f.redis, f.keys);
    for (const dispatched of [false, true]) {
      const created = (await (await postJson(`${gw.url}/v1/jobs`, chatBody(image, `cancel me ${String(dispatched)}`, { max_tokens: 3 }))).json()) as { id: string };
      known.add(created.id);
      expect(await holds(created.id, 'tiny-random')).toBe(true);
      if (dispatched) await until('the dispatcher to move the job into the queue', async () => (await f.queue.getJob(created.id)) !== undefined);
      const res = await fetch(`${gw.url}/v1/jobs/${created.id}`, { method: 'DELETE', headers: auth() });
      expect(((await res.json()) as { status: string }).status).toBe('cancelled');
      expect(await holds(created.id, 'tiny-random')).toBe(false);
    }
  });

  it('sends each token index of /events once, tagged with its run, and resumes without repeating a re-run', async () => {
    const created = (await (await postJson(`${gw.url}/v1/jobs`, chatBody(image, 'crashed mid-answer', { max_tokens: 5 }))).json()) as { id: string };
    known.add(created.id);
    const write = (e: JobEvent): Promise<unknown> =>
      f.redis.eval(APPEND, 1, f.keys.events(created.id), f.keys.eventsChannel(created.id), JSON.stringify(e));
    const tok = (index: number, attempt: number): JobEvent => ({ type: 'token', index, text: `t${index}`, attempt });
    // Run 1 writes three tokens and dies; run 2 writes all five; then the job ends.
    await write({ type: 'status', status: 'running' });
    for (const i of [0, 1, 2]) await write(tok(i, 1));
    await write({ type: 'status', status: 'queued' });
    await write({ type: 'status', status: 'running' });
    for (const i of [0, 1, 2, 3, 4]) await write(tok(i, 2));
    await write({ type: 'error', error: { code: 'internal', message: 'end of the test stream' } });

    const all = await readSse(await fetch(`${gw.url}/v1/jobs/${created.id}/events`, { headers: auth() }));
    const shape = (events: typeof all): string[] => events.map((e) => `${e.event ?? ''} ${e.data}`);
    expect(shape(all)).toEqual([
      'status {"status":"queued"}',
      'status {"status":"running"}',
      'token {"index":0,"text":"t0","attempt":1}',
      'token {"index":1,"text":"t1","attempt":1}',
      'token {"index":2,"text":"t2","attempt":1}',
      'status {"status":"queued"}',
      'status {"status":"running"}',
      'token {"index":3,"text":"t3","attempt":2}',
      'token {"index":4,"text":"t4","attempt":2}',
      'error {"error":{"code":"internal","message":"end of the test stream"}}',
    ]);
    // Resuming after run 1's last token: run 2's repeats of indices 0-2 stay dropped.
    const resumed = await readSse(await fetch(`${gw.url}/v1/jobs/${created.id}/events`, { headers: { ...auth(), 'last-event-id': all[4]?.id ?? '' } }));
    expect(shape(resumed)).toEqual(shape(all.slice(5)));
    expect(resumed.map((e) => e.id)).toEqual(all.slice(5).map((e) => e.id));
    // Resuming after the final event ends at once, with no event (a keep-alive comment at most).
    const after = await (await fetch(`${gw.url}/v1/jobs/${created.id}/events`, { headers: { ...auth(), 'last-event-id': all.at(-1)?.id ?? '' } })).text();
    expect(after.split('\n\n').filter((block) => block !== '' && !block.startsWith(':'))).toEqual([]);
  });
});

describe('sync jobs shared by requests on two gateways (a worker is announced but takes nothing)', () => {
  const f = fixture();
  let patient: GatewayHandle;
  let hasty: GatewayHandle;
  let image: Buffer;
  const known = new Set<string>();
  let heartbeat: NodeJS.Timeout;
  const registry = new WorkerRegistry(f.redis, f.keys);
  const body = (question: string): Record<string, unknown> => chatBody(image, question, { max_tokens: 3 });
  const send = (gw: GatewayHandle, question: string, signal?: AbortSignal): Promise<Response> =>
    fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth() }, body: JSON.stringify(body(question)), ...(signal ? { signal } : {}) });

  beforeAll(async () => {
    // With a served model, deterministic sync requests get a cache key and identical ones share a job.
    const announce = (): Promise<void> =>
      registry.announce({ id: 'idle-worker', model: 'tiny-random', revision: 'rev-test', dtype: 'fp32', device: 'cpu', pid: 1, startedAt: Date.now(), queue: poolQueue('tiny-random') }, Date.now());
    await announce();
    heartbeat = setInterval(() => void announce().catch(() => undefined), 1_000);
    [patient, hasty, image] = await Promise.all([
      startGateway(f.prefix, { SYNC_TIMEOUT_MS: '60000' }),
      startGateway(f.prefix, { SYNC_TIMEOUT_MS: '1000' }),
      png(32, 32, 5),
    ]);
  });
  afterAll(async () => {
    clearInterval(heartbeat);
    await Promise.all([patient?.close(), hasty?.close()]);
    await f.queue.close();
    await cleanupPrefix(f.prefix);
    f.redis.disconnect();
  });

  it('keeps a job queued while a client on another gateway still waits for it, and cancels it when that one leaves too', async () => {
    const ctrl = new AbortController();
    const first = send(patient, 'shared question', ctrl.signal).catch((e: unknown) => (e instanceof Error ? e.name : 'failed'));
    const id = await newJob(f, known);
    await until('the first waiter', async () => (await f.redis.get(f.keys.syncWaiters(id))) === '1');
    const second = await send(hasty, 'shared question');
    expect(second.status).toBe(504);
    expect(((await second.json()) as { error: { message: string } }).error.message).toBe(`No answer within 1000 ms; the job ${id} goes on.`);
    // The second request joined the first one's job (its own record was discarded), and gave up on it alone.
    expect(await status(f, id)).toBe('queued');
    expect(await f.redis.get(f.keys.syncWaiters(id))).toBe('1');
    ctrl.abort();
    expect(await first).toBe('AbortError');
    await until('the job to be cancelled', async () => (await status(f, id)) === 'cancelled');
    // The record ends first; the queue job is removed right after it.
    await until('the job to leave the queue', async () => (await f.queue.getJob(id)) === undefined);
  });

  it('after DELETE of a shared sync job, an identical request gets a job of its own instead of joining the cancelled one', async () => {
    const ctrl = new AbortController();
    const first = send(patient, 'cancel then ask again', ctrl.signal);
    const id = await newJob(f, known);
    const cacheKey = (await f.queue.getJob(id))?.data.cacheKey;
    expect(cacheKey).toMatch(/^[0-9a-f]{64}$/);
    expect(await f.queue.getDeduplicationJobId(cacheKey ?? '')).toBe(id);
    const deleted = await fetch(`${patient.url}/v1/jobs/${id}`, { method: 'DELETE', headers: auth() });
    expect(((await deleted.json()) as { status: string }).status).toBe('cancelled');
    const answer = await first;
    expect(answer.status).toBe(409);
    expect(((await answer.json()) as { error: { code: string } }).error.code).toBe('cancelled');
    expect(await f.queue.getJob(id)).toBeUndefined();
    expect(await f.queue.getDeduplicationJobId(cacheKey ?? '')).toBeNull();

    const again = send(hasty, 'cancel then ask again');
    const fresh = await newJob(f, known);
    expect(fresh).not.toBe(id);
    expect(await f.queue.getDeduplicationJobId(cacheKey ?? '')).toBe(fresh);
    expect((await again).status).toBe(504);
    ctrl.abort();
  });
});
