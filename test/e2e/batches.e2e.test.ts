import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys } from '@fastvlm/contracts';
import { startS3Server, type TestS3Server } from '@fastvlm/files';
import { count, scrape } from '../observability/prom';
import { dataUrl, png } from '../support/requests';
import { API_KEYS, cleanupPrefix, REDIS_URL, startGateway, startWorker, stopWorker, uniquePrefix, until, type GatewayHandle, type WorkerProcess } from '../support/stack';

interface OutputLine {
  id: string;
  custom_id: string;
  response: { status_code: number; request_id: string | null; body: Record<string, unknown> } | null;
  error: { code: string; message: string } | null;
}

const request = (customId: string, image: Buffer, question: string, extra: Record<string, unknown> = {}) => ({
  custom_id: customId,
  method: 'POST',
  url: '/v1/chat/completions',
  body: {
    model: 'tiny-random',
    max_tokens: 6,
    temperature: 0,
    messages: [{ role: 'user', content: [{ type: 'text', text: question }, { type: 'image_url', image_url: { url: dataUrl(image) } }] }],
    ...extra,
  },
});

const jsonl = (lines: unknown[]): string => `${lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n')}\n`;
const parseLines = (text: string): OutputLine[] =>
  text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as OutputLine);

describe('OpenAI Batch API through the official openai client', () => {
  const prefix = `t-batch-${Math.random().toString(36).slice(2, 8)}`;
  const filesDir = mkdtempSync(join(tmpdir(), 'fastvlm-files-'));
  let gw: GatewayHandle;
  let worker: WorkerProcess;
  let redis: Redis;
  let acme: OpenAI;
  let globex: OpenAI;
  let images: Buffer[];

  const finished = (c: OpenAI, id: string) =>
    until(`batch ${id} to end`, async () => {
      const b = await c.batches.retrieve(id);
      return ['completed', 'failed', 'expired', 'cancelled'].includes(b.status) ? b : undefined;
    }, 90_000);

  beforeAll(async () => {
    [gw, worker] = await Promise.all([
      // Files may be larger than a request body: BODY_LIMIT_BYTES (1 MiB here) bounds each line, FILES_MAX_BYTES the file.
      startGateway(prefix, { FILES_DIR: filesDir, BATCH_TICK_MS: '50', FILES_MAX_LINES: '100', FILES_MAX_BYTES: String(2 * 1024 * 1024), BODY_LIMIT_BYTES: String(1024 * 1024), BATCH_SEGMENT_LINES: '5', BATCH_MAX_IN_FLIGHT: '8', BATCH_MIN_QUEUED: '4' }),
      startWorker(prefix),
    ]);
    redis = new Redis(REDIS_URL);
    const client = (key: string) => new OpenAI({ apiKey: key, baseURL: `${gw.url}/v1`, maxRetries: 0 });
    acme = client(API_KEYS.acme);
    globex = client(API_KEYS.globex);
    images = await Promise.all(Array.from({ length: 4 }, (_, i) => png(40, 32, 300 + i)));
  });
  afterAll(async () => {
    await gw?.close();
    if (worker) await stopWorker(worker);
    redis?.disconnect();
    await cleanupPrefix(prefix);
    rmSync(filesDir, { recursive: true, force: true });
  });

  it('runs an uploaded JSONL of image questions to completion and serves one output line per request', async () => {
    const lines = Array.from({ length: 12 }, (_, i) => request(`req-${i}`, images[i % 4] as Buffer, `What is in picture ${i}?`));
    const file = await acme.files.create({ file: await toFile(Buffer.from(jsonl(lines)), 'questions.jsonl'), purpose: 'batch' });
    expect(file).toMatchObject({ object: 'file', purpose: 'batch', filename: 'questions.jsonl', status: 'processed', bytes: Buffer.byteLength(jsonl(lines)) });
    expect(file.expires_at).toBe(file.created_at + 30 * 86_400);

    const created = await acme.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h', metadata: { run: 'nightly' } });
    expect(created).toMatchObject({ object: 'batch', status: 'validating', input_file_id: file.id, completion_window: '24h', metadata: { run: 'nightly' } });
    expect(created.expires_at).toBe(created.created_at + 86_400);

    const done = await finished(acme, created.id);
    expect(done.status).toBe('completed');
    expect(done.request_counts).toEqual({ total: 12, completed: 12, failed: 0 });
    for (const t of ['in_progress_at', 'finalizing_at', 'completed_at'] as const) expect(done[t]).toBeGreaterThanOrEqual(done.created_at);
    expect(done.error_file_id).toBeNull();
    const outputId = done.output_file_id ?? '';

    const out = parseLines(await (await acme.files.content(outputId)).text());
    expect(out.map((l) => l.custom_id).sort()).toEqual(lines.map((l) => l.custom_id).sort());
    expect(new Set(out.map((l) => l.id)).size).toBe(12);
    for (const l of out) {
      expect(l.error).toBeNull();
      expect(l.response?.status_code).toBe(200);
      expect(l.response?.body).toMatchObject({ object: 'chat.completion', model: 'tiny-random', choices: [{ index: 0, message: { role: 'assistant' } }] });
      expect(l.response?.request_id).toMatch(/^job_/);
    }
    // The same request asked twice (same image, question and greedy decoding) has the same answer.
    const text = (id: string) => (out.find((l) => l.custom_id === id)?.response?.body as { choices: { message: { content: string } }[] }).choices[0]?.message.content;
    expect(text('req-0')).toBe(text('req-0'));
    const usage = out.map((l) => (l.response?.body as { usage: { prompt_tokens: number; completion_tokens: number } }).usage);
    expect(done.usage).toMatchObject({
      input_tokens: usage.reduce((n, u) => n + u.prompt_tokens, 0),
      output_tokens: usage.reduce((n, u) => n + u.completion_tokens, 0),
      total_tokens: usage.reduce((n, u) => n + u.prompt_tokens + u.completion_tokens, 0),
    });

    // Segments of 5 lines were flushed as the batch ran: the output is their concatenation.
    const outputFile = await acme.files.retrieve(outputId);
    expect(outputFile).toMatchObject({ purpose: 'batch_output', filename: `${created.id}_output.jsonl` });
    expect(outputFile.bytes).toBe(Buffer.byteLength(await (await acme.files.content(outputId)).text()));

    const listed = await acme.batches.list({ limit: 10 });
    expect(listed.data.map((b) => b.id)).toContain(created.id);
    const files = await acme.files.list();
    expect(files.data.map((f) => f.id)).toEqual(expect.arrayContaining([file.id, outputId]));

    // The gateway counts the requests and the batch (this is the first batch of this gateway).
    const samples = await scrape(gw.url);
    expect(count(samples, 'fastvlm_batch_requests_total', { outcome: 'completed' })).toBe(12);
    expect(count(samples, 'fastvlm_batch_requests_total', { outcome: 'failed' })).toBe(0);
    expect(count(samples, 'fastvlm_batches_total', { status: 'completed' })).toBe(1);

    // Another tenant sees none of it.
    await expect(globex.batches.retrieve(created.id)).rejects.toMatchObject({ status: 404 });
    await expect(globex.files.retrieve(file.id)).rejects.toMatchObject({ status: 404 });
    await expect(globex.files.content(outputId)).rejects.toMatchObject({ status: 404 });
    expect((await globex.batches.list()).data).toEqual([]);
  });

  it('fails validation with OpenAI-shaped errors naming each bad line, and runs none of them', async () => {
    const good = request('a', images[0] as Buffer, 'fine question');
    const lines = [
      good,
      '{not json',
      { ...request('b', images[1] as Buffer, 'q'), custom_id: undefined },
      request('a', images[2] as Buffer, 'duplicate id'),
      { ...request('c', images[3] as Buffer, 'q'), url: '/v1/embeddings' },
      { custom_id: 'd', method: 'POST', url: '/v1/chat/completions', body: { messages: [{ role: 'user', content: [{ type: 'text', text: 'q' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] }] } },
      request('e', images[0] as Buffer, 'unknown model', { model: 'no-such-model' }),
      { ...request('f', images[0] as Buffer, 'q'), body: { messages: [{ role: 'user', content: [{ type: 'text', text: 'q' }, { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }] }] } },
    ];
    const file = await acme.files.create({ file: await toFile(Buffer.from(jsonl(lines)), 'bad.jsonl'), purpose: 'batch' });
    const batch = await acme.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    const done = await finished(acme, batch.id);
    expect(done.status).toBe('failed');
    expect(done.failed_at).toBeGreaterThanOrEqual(done.created_at);
    expect(done.errors?.data?.map((e) => [e.line, e.code, e.param])).toEqual([
      [2, 'invalid_json_line', null],
      [3, 'missing_required_parameter', 'custom_id'],
      [4, 'duplicate_custom_id', 'custom_id'],
      [5, 'mismatched_url', 'url'],
      [6, 'invalid_image', 'body.image_url'],
      [7, 'model_not_found', expect.stringMatching(/^body/)],
      // This tenant may not send image URLs, in a batch as alone.
      [8, 'image_url_not_enabled', 'body.image_url'],
    ]);
    expect(done.request_counts).toEqual({ total: 0, completed: 0, failed: 0 });
    expect(await redis.keys(`${prefix}:job:*`)).toEqual(expect.not.arrayContaining([expect.stringContaining(batch.id)]));
  });

  it('feeds the queue gradually: never more requests in flight than BATCH_MAX_IN_FLIGHT', async () => {
    const lines = Array.from({ length: 24 }, (_, i) => request(`g-${i}`, images[i % 4] as Buffer, `gradual ${i}`, { max_tokens: 16 }));
    const file = await acme.files.create({ file: await toFile(Buffer.from(jsonl(lines)), 'gradual.jsonl'), purpose: 'batch' });
    const batch = await acme.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    const inflight = new RedisKeys(prefix).batch(batch.id, 'inflight');
    let most = 0;
    const done = await until('the batch to end', async () => {
      most = Math.max(most, await redis.hlen(inflight));
      const b = await acme.batches.retrieve(batch.id);
      return b.status === 'completed' ? b : undefined;
    }, 90_000);
    expect(done.request_counts).toEqual({ total: 24, completed: 24, failed: 0 });
    expect(most).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(8);
  });

  it('cancels a running batch: every request ends once, done ones in the output and the rest as batch_cancelled errors', async () => {
    const lines = Array.from({ length: 30 }, (_, i) => request(`c-${i}`, images[i % 4] as Buffer, `cancel me ${i}`, { max_tokens: 24 }));
    const file = await acme.files.create({ file: await toFile(Buffer.from(jsonl(lines)), 'many.jsonl'), purpose: 'batch' });
    const batch = await acme.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    await until('the batch to run', async () => (await acme.batches.retrieve(batch.id)).status === 'in_progress');
    const cancelling = await acme.batches.cancel(batch.id);
    expect(['cancelling', 'cancelled']).toContain(cancelling.status);
    const done = await finished(acme, batch.id);
    expect(done.status).toBe('cancelled');
    expect(done.cancelling_at).not.toBeNull();
    expect(done.cancelled_at).not.toBeNull();
    const counts = done.request_counts ?? { total: 0, completed: 0, failed: 0 };
    expect(counts.completed + counts.failed).toBe(30);
    expect(counts.failed).toBeGreaterThan(0);
    const out = done.output_file_id ? parseLines(await (await acme.files.content(done.output_file_id)).text()) : [];
    const errs = parseLines(await (await acme.files.content(done.error_file_id ?? '')).text());
    expect(out.length).toBe(counts.completed);
    expect(errs.length).toBe(counts.failed);
    expect([...out, ...errs].map((l) => l.custom_id).sort()).toEqual(lines.map((l) => l.custom_id).sort());
    expect(errs.every((l) => l.error?.code === 'batch_cancelled' && l.response === null)).toBe(true);
    await expect(acme.batches.cancel(batch.id)).rejects.toMatchObject({ status: 409 });
  });

  it('ends a batch at its window: unfinished requests are batch_expired lines in the error file', async () => {
    const lines = Array.from({ length: 20 }, (_, i) => request(`x-${i}`, images[i % 4] as Buffer, `expire me ${i}`, { max_tokens: 24 }));
    const file = await acme.files.create({ file: await toFile(Buffer.from(jsonl(lines)), 'late.jsonl'), purpose: 'batch' });
    const batch = await acme.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '1h' as '24h' });
    expect(batch.expires_at).toBe(batch.created_at + 3600);
    await until('the batch to run', async () => (await acme.batches.retrieve(batch.id)).status === 'in_progress');
    // The window's end, brought forward: what the runner reads is the record's deadline.
    await redis.hset(new RedisKeys(prefix).batch(batch.id), 'expires_at', Date.now());
    const done = await finished(acme, batch.id);
    expect(done.status).toBe('expired');
    expect(done.expired_at).not.toBeNull();
    const out = done.output_file_id ? parseLines(await (await acme.files.content(done.output_file_id)).text()) : [];
    const errs = parseLines(await (await acme.files.content(done.error_file_id ?? '')).text());
    expect([...out, ...errs].map((l) => l.custom_id).sort()).toEqual(lines.map((l) => l.custom_id).sort());
    expect(errs.length).toBeGreaterThan(0);
    expect(errs.every((l) => l.error?.code === 'batch_expired')).toBe(true);
    expect(done.request_counts).toEqual({ total: 20, completed: out.length, failed: errs.length });
  });

  it('refuses bad uploads and batches with clear 4xx errors', async () => {
    await expect(acme.files.create({ file: await toFile(Buffer.from('{}\n'), 'x.jsonl'), purpose: 'assistants' })).rejects.toMatchObject({ status: 400, param: 'purpose' });
    const tooMany = jsonl(Array.from({ length: 101 }, () => '{}'));
    await expect(acme.files.create({ file: await toFile(Buffer.from(tooMany), 'x.jsonl'), purpose: 'batch' })).rejects.toMatchObject({ status: 400, param: 'file' });
    await expect(acme.files.create({ file: await toFile(Buffer.alloc(3 * 1024 * 1024, 0x20), 'big.jsonl'), purpose: 'batch' })).rejects.toMatchObject({ status: 413 });
    // Larger than a request body may be, within the file limit: accepted, byte for byte.
    const large = Buffer.from(jsonl(Array.from({ length: 90 }, (_, i) => ({ custom_id: `l-${i}`, pad: 'x'.repeat(17_000) }))));
    expect(large.length).toBeGreaterThan(1024 * 1024);
    const stored = await acme.files.create({ file: await toFile(large, 'large.jsonl'), purpose: 'batch' });
    expect(stored.bytes).toBe(large.length);
    expect(Buffer.from(await (await acme.files.content(stored.id)).arrayBuffer()).equals(large)).toBe(true);
    const notMultipart = await fetch(`${gw.url}/v1/files`, { method: 'POST', headers: { authorization: `Bearer ${API_KEYS.acme}`, 'content-type': 'application/json' }, body: '{}' });
    expect(notMultipart.status).toBe(400);
    await expect(acme.files.retrieve('file-doesnotexist0000000000')).rejects.toMatchObject({ status: 404 });
    await expect(acme.batches.retrieve('batch_nope')).rejects.toMatchObject({ status: 404 });
    await expect(acme.batches.create({ input_file_id: 'file-AAAAAAAAAAAAAAAAAAAAAA', endpoint: '/v1/chat/completions', completion_window: '24h' })).rejects.toMatchObject({ status: 404, param: 'input_file_id' });
    const file = await acme.files.create({ file: await toFile(Buffer.from(jsonl([request('a', images[0] as Buffer, 'q')])), 'ok.jsonl'), purpose: 'batch' });
    await expect(acme.batches.create({ input_file_id: file.id, endpoint: '/v1/embeddings', completion_window: '24h' })).rejects.toMatchObject({ status: 400, param: 'endpoint' });
    await expect(acme.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '7d' as '24h' })).rejects.toMatchObject({ status: 400, param: 'completion_window' });
    // Deleting a file removes it for good.
    expect(await acme.files.delete(file.id)).toEqual({ id: file.id, object: 'file', deleted: true });
    await expect(acme.files.retrieve(file.id)).rejects.toMatchObject({ status: 404 });
  });

  it('deletes a file once its expiry passes: record, listing and bytes', async () => {
    const file = await acme.files.create({ file: await toFile(Buffer.from('{}\n'), 'short.jsonl'), purpose: 'batch', expires_after: { anchor: 'created_at', seconds: 3600 } });
    expect(file.expires_at).toBe(file.created_at + 3600);
    // The expiry, brought forward: the sweeper reads the expiry index.
    await redis.zadd(new RedisKeys(prefix).fileExpiry(), Date.now() - 1, file.id);
    await until('the sweeper to delete the file', () => acme.files.retrieve(file.id).then(() => false, (e: { status?: number }) => e.status === 404), 30_000);
    expect((await acme.files.list()).data.map((f) => f.id)).not.toContain(file.id);
    await until('the bytes to go', () => !existsSync(join(filesDir, 'files', file.id)));
  });
});

describe('the Batch API on S3-compatible storage (s3rver)', () => {
  const prefix = uniquePrefix();
  let s3: TestS3Server;
  let gw: GatewayHandle;
  let worker: WorkerProcess;

  beforeAll(async () => {
    s3 = await startS3Server();
    [gw, worker] = await Promise.all([
      startGateway(prefix, {
        FILES_STORAGE: 's3',
        FILES_S3_ENDPOINT: s3.endpoint,
        FILES_S3_BUCKET: s3.bucket,
        FILES_S3_PREFIX: 'fastvlm',
        FILES_S3_FORCE_PATH_STYLE: 'true',
        FILES_S3_ACCESS_KEY_ID: s3.credentials.accessKeyId,
        FILES_S3_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
        BATCH_TICK_MS: '50',
        BATCH_SEGMENT_LINES: '3',
      }),
      startWorker(prefix),
    ]);
  });
  afterAll(async () => {
    await gw?.close();
    if (worker) await stopWorker(worker);
    await s3?.stop();
    await cleanupPrefix(prefix);
  });

  it('keeps the upload and the output segments in the bucket and serves them back', async () => {
    const client = new OpenAI({ apiKey: API_KEYS.acme, baseURL: `${gw.url}/v1`, maxRetries: 0 });
    const image = await png(40, 32, 900);
    const lines = Array.from({ length: 7 }, (_, i) => request(`s3-${i}`, image, `s3 question ${i}`));
    const body = jsonl(lines);
    const file = await client.files.create({ file: await toFile(Buffer.from(body), 's3.jsonl'), purpose: 'batch' });
    expect(await (await client.files.content(file.id)).text()).toBe(body);
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    const done = await until('the batch to end', async () => {
      const b = await client.batches.retrieve(batch.id);
      return ['completed', 'failed', 'expired', 'cancelled'].includes(b.status) ? b : undefined;
    }, 90_000);
    expect(done.status).toBe('completed');
    const out = parseLines(await (await client.files.content(done.output_file_id ?? '')).text());
    expect(out.map((l) => l.custom_id).sort()).toEqual(lines.map((l) => l.custom_id).sort());
    expect(out.every((l) => l.response?.status_code === 200)).toBe(true);
  });
});
