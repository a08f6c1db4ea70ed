import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { transformersReference } from '../../libs/pipeline/src/engine/test-fixtures';
import { auth, chatBody, png, postJson } from '../support/requests';
import { cleanupPrefix, startGateway, startWorker, stopWorker, testCacheDir, uniquePrefix, type GatewayHandle, type WorkerProcess } from '../support/stack';

interface Completion {
  choices: { message: { content: string } }[];
  usage: { prompt_tokens: number; completion_tokens: number };
}

/**
 * The whole serving path — gateway, queue, a batching worker — gives exactly
 * the answers transformers.js's own generate() gives on the same model files.
 */
describe('answers through the running stack', () => {
  const prefix = uniquePrefix();
  let gw: GatewayHandle;
  let worker: WorkerProcess;
  let reference: Awaited<ReturnType<typeof transformersReference>>;

  beforeAll(async () => {
    [gw, worker, reference] = await Promise.all([
      startGateway(prefix),
      startWorker(prefix, { FASTVLM_MAX_BATCH: '8', FASTVLM_BATCH_WINDOW_MS: '50' }),
      transformersReference(join(testCacheDir(), 'tiny-random')),
    ]);
  });
  afterAll(async () => {
    await reference?.close();
    await gw?.close();
    if (worker) await stopWorker(worker);
    await cleanupPrefix(prefix);
  });

  it('equal transformers.js generate() for several images and questions sent together (batched) and one by one', async () => {
    const cases = [
      { image: await png(64, 64, 1), question: 'What is in this image?' },
      { image: await png(120, 80, 2), question: 'Describe the colours you see, from left to right.' },
      { image: await sharp(await png(50, 90, 3)).jpeg({ quality: 90 }).toBuffer(), question: '图里有什么？' },
      { image: await png(200, 100, 4), question: 'Count the stripes.' },
    ];
    const maxTokens = 16;
    const expected: Awaited<ReturnType<typeof reference.answer>>[] = [];
    for (const c of cases) expected.push(await reference.answer(c.image, c.question, maxTokens));
    // Together: the worker batches them.
    const together = await Promise.all(
      cases.map(async (c) => (await (await postJson(`${gw.url}/v1/chat/completions`, chatBody(c.image, c.question, { max_tokens: maxTokens }))).json()) as Completion),
    );
    together.forEach((r, i) => {
      expect(r.choices[0]?.message.content).toBe(expected[i]?.text);
      expect(r.usage.prompt_tokens).toBe(expected[i]?.promptIds.length);
    });
    // One by one, as another tenant (no answer cache shared): the same answers.
    for (const [i, c] of cases.entries()) {
      const r = (await (
        await postJson(`${gw.url}/v1/chat/completions`, chatBody(c.image, c.question, { max_tokens: maxTokens }), auth('globex'))
      ).json()) as Completion;
      expect(r.choices[0]?.message.content).toBe(expected[i]?.text);
    }
  }, 120_000);
});
