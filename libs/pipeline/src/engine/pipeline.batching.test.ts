import { describe, expect, it } from 'vitest';
import type { GenerateRequest, GenerateResult } from '../types';
import { FastVlmPipeline } from './pipeline';
import { answer, collector, gradientPng, greedy, noisyJpeg, ringsWebp, stripesPng, useTinyModel } from './test-fixtures';
import type { FeatureStore } from './vision-cache';

const model = useTinyModel(2);

const QUESTIONS = [
  'What is this?',
  'Describe every object in the picture, one by one, with its colour.',
  'Is there text?',
  '这张图片里有什么？',
  'Count the shapes.',
  'Which way is the light coming from, and how can you tell from the shadows?',
  'Name the dominant colour.',
  'Why?',
];

async function images(): Promise<Buffer[]> {
  return Promise.all([
    gradientPng(64, 64),
    noisyJpeg(120, 80, 1),
    stripesPng(40, 100),
    ringsWebp(300, 300),
    noisyJpeg(64, 64, 2),
    gradientPng(90, 30),
    noisyJpeg(80, 120, 3),
    stripesPng(64, 64),
  ]);
}

async function requests(n: number): Promise<GenerateRequest[]> {
  const imgs = await images();
  return Array.from({ length: n }, (_, i) => ({ image: imgs[i] as Buffer, question: QUESTIONS[i] as string, params: greedy(6 + ((i * 5) % 19)) }));
}

const open = (opts: Partial<Parameters<typeof FastVlmPipeline.load>[0]> = {}) =>
  FastVlmPipeline.load({ model: model.dir, threads: 1, ...opts });

describe('continuous batching', () => {
  for (const n of [1, 3, 8]) {
    it(`a batch of ${n} requests with different images, prompt lengths and answer lengths equals the same requests run one by one`, async () => {
      const reqs = await requests(n);
      const alone = await open({ maxBatchSize: 1, batchWindowMs: 0, visionCache: { l1MaxBytes: 0 } });
      const batched = await open({ maxBatchSize: 8, batchWindowMs: 50, visionCache: { l1MaxBytes: 0 } });
      try {
        const one: GenerateResult[] = [];
        for (const r of reqs) one.push(await alone.generate(r));
        const streams = reqs.map(() => collector());
        const together = await Promise.all(reqs.map((r, i) => batched.generate({ ...r, onToken: streams[i]?.onToken })));
        expect(together.map(answer)).toEqual(one.map(answer));
        together.forEach((r, i) => expect(streams[i]?.text()).toBe(r.text));
        const stats = batched.stats();
        // All of them arrived within the window: one vision run, and decode steps that carried several sequences.
        expect(stats.visionRuns).toBe(1);
        expect(stats.visionImages).toBe(n);
        if (n > 1) expect(stats.stepRows).toBeGreaterThan(stats.steps);
        expect(alone.stats().stepRows).toBe(alone.stats().steps);
      } finally {
        await Promise.all([alone.dispose(), batched.dispose()]);
      }
    });
  }

  it('a request that arrives while others decode joins the running batch and still gets its own answer', async () => {
    const reqs = await requests(4);
    const reference = await open({ maxBatchSize: 1, batchWindowMs: 0 });
    const pipeline = await open({ maxBatchSize: 4, batchWindowMs: 0 });
    try {
      const expected: GenerateResult[] = [];
      for (const r of reqs) expected.push(await reference.generate({ ...r, params: greedy(20) }));
      const late: Promise<GenerateResult>[] = [];
      const first = pipeline.generate({
        ...(reqs[0] as GenerateRequest),
        params: greedy(20),
        // Each of the others arrives after a few tokens of the previous one.
        onToken: (d) => {
          const next = reqs[d.index / 4];
          if (d.index % 4 === 0 && d.index > 0 && next) late.push(pipeline.generate({ ...next, params: greedy(20) }));
        },
      });
      const results = [await first, ...(await Promise.all(late))];
      expect(late).toHaveLength(3);
      expect(results.map(answer)).toEqual(expected.map(answer));
      expect(pipeline.stats().stepRows).toBeGreaterThan(pipeline.stats().steps);
    } finally {
      await Promise.all([reference.dispose(), pipeline.dispose()]);
    }
  });

  it('a cancelled sequence leaves the batch at its next token while the others go on unchanged', async () => {
    const reqs = await requests(3);
    const pipeline = await open({ maxBatchSize: 4, batchWindowMs: 30 });
    try {
      const expected = await Promise.all(reqs.map((r) => pipeline.generate({ ...r, params: greedy(16) })));
      const controller = new AbortController();
      const results = await Promise.all(
        reqs.map((r, i) =>
          pipeline.generate({ ...r, params: greedy(16), ...(i === 1 ? { signal: controller.signal, onToken: (d) => d.index === 2 && controller.abort() } : {}) }),
        ),
      );
      expect(results[1]?.finishReason).toBe('cancelled');
      expect(results[1]?.tokenIds.length).toBeLessThanOrEqual(4);
      expect(answer(results[0] as GenerateResult)).toEqual(answer(expected[0] as GenerateResult));
      expect(answer(results[2] as GenerateResult)).toEqual(answer(expected[2] as GenerateResult));
    } finally {
      await pipeline.dispose();
    }
  });

  it('a request past its deadline fails with timeout and does not disturb the batch', async () => {
    const reqs = await requests(2);
    const pipeline = await open({ maxBatchSize: 4, batchWindowMs: 20 });
    try {
      const [ok, late] = await Promise.allSettled([
        pipeline.generate({ ...(reqs[0] as GenerateRequest), params: greedy(12) }),
        pipeline.generate({ ...(reqs[1] as GenerateRequest), params: greedy(200), deadline: Date.now() - 1 }),
      ]);
      expect(ok.status).toBe('fulfilled');
      expect(late.status === 'rejected' && (late.reason as { code?: string }).code).toBe('timeout');
    } finally {
      await pipeline.dispose();
    }
  });
});

describe('vision-feature cache', () => {
  it('a second question about the same image skips preprocessing, the vision encoder and the prefill of the image prefix', async () => {
    const [image] = await images();
    const pipeline = await open();
    try {
      const first = await pipeline.generate({ image: image as Buffer, question: 'first question', params: greedy(8) });
      const second = await pipeline.generate({ image: image as Buffer, question: 'second question', params: greedy(8) });
      expect(pipeline.stats().visionRuns).toBe(1);
      expect(pipeline.stats().vision).toEqual({ hitsL1: 1, hitsL2: 0, misses: 1 });
      expect(pipeline.stats().prefixHits).toBe(1);
      expect(first.timings.visionMs).toBeGreaterThan(0);
      expect(second.timings).toMatchObject({ visionMs: 0, preprocessMs: 0 });
      // Cached features and the cached prefix give exactly the answer a cold pipeline computes.
      const cold = await open({ visionCache: { l1MaxBytes: 0 }, prefixCacheBytes: 0 });
      try {
        expect(answer(await cold.generate({ image: image as Buffer, question: 'second question', params: greedy(8) }))).toEqual(answer(second));
      } finally {
        await cold.dispose();
      }
    } finally {
      await pipeline.dispose();
    }
  });

  it('features stored by one process are found in the shared store by another (L2)', async () => {
    const [image] = await images();
    const shared = new Map<string, Buffer>();
    const store: FeatureStore = {
      get: (k) => Promise.resolve(shared.get(k) ?? null),
      set: (k, v) => {
        shared.set(k, Buffer.from(v));
        return Promise.resolve();
      },
    };
    const a = await open({ visionCache: { store } });
    const b = await open({ visionCache: { store } });
    try {
      const ra = await a.generate({ image: image as Buffer, question: 'q', params: greedy(6) });
      const rb = await b.generate({ image: image as Buffer, question: 'q', params: greedy(6) });
      expect(b.stats().visionRuns).toBe(0);
      expect(b.stats().vision.hitsL2).toBe(1);
      expect(answer(rb)).toEqual(answer(ra));
      expect(shared.size).toBe(1);
    } finally {
      await Promise.all([a.dispose(), b.dispose()]);
    }
  });
});

describe('penalties and timings', () => {
  it('a frequency penalty changes a greedy answer that repeats tokens, and reports timings for every stage', async () => {
    const [image] = await images();
    const pipeline = await open();
    try {
      const plain = await pipeline.generate({ image: image as Buffer, question: 'q', params: greedy(40) });
      const penalised = await pipeline.generate({ image: image as Buffer, question: 'q', params: { ...greedy(40), frequencyPenalty: 2, presencePenalty: 2 } });
      const repeats = (ids: number[]) => ids.length - new Set(ids).size;
      expect(repeats(penalised.tokenIds)).toBeLessThanOrEqual(repeats(plain.tokenIds));
      expect(penalised.tokenIds).not.toEqual(plain.tokenIds);
      for (const k of ['queueMs', 'prefillMs', 'decodeMs', 'ttftMs'] as const) expect(plain.timings[k]).toBeGreaterThan(0);
    } finally {
      await pipeline.dispose();
    }
  });
});
