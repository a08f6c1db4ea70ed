import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys, poolQueue } from '@fastvlm/contracts';
import { auth, chatBody, png, postJson, readSse } from '../support/requests';
import { API_KEYS, REDIS_URL, cleanupPrefix, startGateway, startWorker, stopWorker, uniquePrefix, until, type GatewayHandle, type WorkerProcess } from '../support/stack';

interface Completion {
  id: string;
  object: string;
  model: string;
  choices: { index: number; message: { role: string; content: string }; finish_reason: string }[];
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

describe('POST /v1/chat/completions through gateway, queue and worker', () => {
  const prefix = uniquePrefix();
  let gw: GatewayHandle;
  let worker: WorkerProcess;
  let image: Buffer;
  const completions = (): string => `${gw.url}/v1/chat/completions`;

  beforeAll(async () => {
    [gw, worker, image] = await Promise.all([startGateway(prefix), startWorker(prefix), png(64, 48, 1)]);
  });
  afterAll(async () => {
    await gw?.close();
    if (worker) await stopWorker(worker);
    await cleanupPrefix(prefix);
  });

  it('answers an image and a question with a chat.completion and usage, identically on repeat', async () => {
    const body = chatBody(image, 'What is in this image?', { max_tokens: 12 });
    const first = await postJson(completions(), body);
    expect(first.status).toBe(200);
    expect(first.headers.get('x-cache')).toBe('miss');
    const a = (await first.json()) as Completion;
    expect(a.object).toBe('chat.completion');
    expect(a.model).toBe('tiny-random');
    expect(a.choices).toHaveLength(1);
    expect(a.choices[0]?.message.role).toBe('assistant');
    expect(a.choices[0]?.message.content.length).toBeGreaterThan(0);
    expect(a.choices[0]?.finish_reason).toBe('length');
    expect(a.usage.completion_tokens).toBe(12);
    expect(a.usage.prompt_tokens).toBeGreaterThan(16);
    expect(a.usage.total_tokens).toBe(a.usage.prompt_tokens + 12);

    const again = await postJson(completions(), body);
    expect(again.headers.get('x-cache')).toBe('hit-l1');
    const b = (await again.json()) as Completion;
    expect(b.choices[0]?.message.content).toBe(a.choices[0]?.message.content);
    expect(b.usage).toEqual(a.usage);
  });

  it('serves a cached answer from Redis (L2) to another gateway, and never to another tenant', async () => {
    const body = chatBody(image, 'Describe the colours.', { max_tokens: 8 });
    const first = (await (await postJson(completions(), body)).json()) as Completion;
    const other = await startGateway(prefix);
    try {
      const res = await postJson(`${other.url}/v1/chat/completions`, body);
      expect(res.headers.get('x-cache')).toBe('hit-l2');
      expect(((await res.json()) as Completion).choices[0]?.message.content).toBe(first.choices[0]?.message.content);
      const foreign = await postJson(`${other.url}/v1/chat/completions`, body, auth('globex'));
      expect(foreign.status).toBe(200);
      expect(foreign.headers.get('x-cache')).toBe('miss');
    } finally {
      await other.close();
    }
  });

  it('streams chat.completion.chunk events that concatenate to the sync answer and end with [DONE]', async () => {
    const question = 'What shapes do you see?';
    const sync = (await (await postJson(completions(), chatBody(image, question, { max_tokens: 10, seed: 7, temperature: 0 }))).json()) as Completion;
    // Another parameter set (no seed) so the stream is computed, not cached.
    const res = await postJson(completions(), chatBody(image, question, { max_tokens: 10, stream: true, stream_options: { include_usage: true } }));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(res.headers.get('x-cache')).toBe('miss');
    const events = await readSse(res);
    expect(events.at(-1)?.data).toBe('[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.data) as { object: string; choices: { delta: { content?: string }; finish_reason: string | null }[]; usage?: { completion_tokens: number } | null });
    expect(chunks.every((c) => c.object === 'chat.completion.chunk')).toBe(true);
    const text = chunks.flatMap((c) => c.choices.map((ch) => ch.delta.content ?? '')).join('');
    expect(text).toBe(sync.choices[0]?.message.content);
    // One chunk per token (some tokens complete no character), then finish, then usage.
    expect(chunks.filter((c) => c.choices[0]?.delta.content).length).toBeGreaterThan(3);
    expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe('length');
    expect(chunks.at(-1)?.choices).toEqual([]);
    expect(chunks.at(-1)?.usage?.completion_tokens).toBe(10);
  });

  it('runs the model once for ten identical requests in flight together', async () => {
    const queue = new Queue(poolQueue('tiny-random'), { connection: new Redis(REDIS_URL, { maxRetriesPerRequest: null }), prefix: new RedisKeys(prefix).bull() });
    try {
      const before = (await queue.getJobCounts('completed')).completed ?? 0;
      const body = chatBody(image, 'Ten at once: what is this?', { max_tokens: 40 });
      const answers = await Promise.all(Array.from({ length: 10 }, () => postJson(completions(), body).then((r) => r.json() as Promise<Completion>)));
      const texts = new Set(answers.map((a) => a.choices[0]?.message.content));
      expect(texts.size).toBe(1);
      // Answers reach clients through the job's events a moment before BullMQ files the job as completed.
      await until('the job to be filed as completed', async () => ((await queue.getJobCounts('completed')).completed ?? 0) > before);
      const counts = await queue.getJobCounts('completed', 'wait', 'active', 'delayed', 'prioritized');
      expect((counts.completed ?? 0) - before).toBe(1);
      expect((counts.wait ?? 0) + (counts.active ?? 0) + (counts.delayed ?? 0) + (counts.prioritized ?? 0)).toBe(0);
    } finally {
      await queue.close();
      await queue.disconnect();
    }
  });

  it('works with the official openai client, sync and streaming', async () => {
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: API_KEYS.acme, maxRetries: 0 });
    const messages = [
      {
        role: 'user' as const,
        content: [
          { type: 'text' as const, text: 'openai client question' },
          { type: 'image_url' as const, image_url: { url: `data:image/png;base64,${image.toString('base64')}` } },
        ],
      },
    ];
    const answer = await client.chat.completions.create({ model: 'tiny-random', messages, max_tokens: 9 });
    expect(answer.usage?.completion_tokens).toBe(9);
    const stream = await client.chat.completions.create({ model: 'tiny-random', messages, max_tokens: 9, stream: true });
    let streamed = '';
    for await (const c of stream) streamed += c.choices[0]?.delta?.content ?? '';
    expect(streamed).toBe(answer.choices[0]?.message.content);
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['tiny-random']);
  });

  it('ends the answer before a stop sequence', async () => {
    const full = (await (await postJson(completions(), chatBody(image, 'stop test', { max_tokens: 12 }))).json()) as Completion;
    const text = full.choices[0]?.message.content ?? '';
    const stop = text.slice(Math.floor(text.length / 2), Math.floor(text.length / 2) + 2);
    const cut = (await (await postJson(completions(), chatBody(image, 'stop test', { max_tokens: 12, stop: [stop] }))).json()) as Completion;
    expect(cut.choices[0]?.message.content).toBe(text.slice(0, text.indexOf(stop)));
    expect(cut.choices[0]?.finish_reason).toBe('stop');
  });

  it('reports readiness once a worker with the model is registered', async () => {
    const res = await fetch(`${gw.url}/health/ready`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { status: string; info: Record<string, { status: string }> };
    expect(body.status).toBe('ok');
    expect(body.info.workers?.status).toBe('up');
    expect((await fetch(`${gw.url}/health/live`)).status).toBe(200);
  });
});
