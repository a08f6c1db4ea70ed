import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '@fastvlm/contracts';
import type { GenerateResult } from '../types';
import { FastVlmPipeline } from './pipeline';
import { answer, collector, gradientPng, greedy, noisyJpeg, ringsWebp, sampled, solidPng, stripesPng, useTinyPipeline } from './test-fixtures';

const { model, pipeline } = useTinyPipeline(1);

let image: Buffer;
const QUESTION = 'What is in the picture?';
let expected: GenerateResult;

beforeAll(async () => {
  image = await gradientPng(64, 64);
  expected = await pipeline().generate({ image, question: QUESTION, params: greedy(24) });
});

async function rejection(p: Promise<unknown>): Promise<AppError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(AppError);
  return e as AppError;
}

describe('cancellation', () => {
  it('aborting from inside onToken after the third token ends with cancelled and at most four tokens', async () => {
    const controller = new AbortController();
    const c = collector();
    const result = await pipeline().generate({
      image,
      question: QUESTION,
      params: greedy(24),
      signal: controller.signal,
      onToken: (d) => {
        c.onToken(d);
        if (d.index === 2) controller.abort();
      },
    });
    expect(result.finishReason).toBe('cancelled');
    expect(result.tokenIds.length).toBeGreaterThanOrEqual(3);
    expect(result.tokenIds.length).toBeLessThanOrEqual(4);
    expect(result.usage.completionTokens).toBeLessThanOrEqual(4);
    expect(result.tokenIds).toEqual(expected.tokenIds.slice(0, result.tokenIds.length));
    expect(c.text()).toBe(result.text);
    expect(c.deltas.length).toBeLessThanOrEqual(4);
  });

  it('the pipeline gives the normal answer to the next request after a cancellation', async () => {
    const controller = new AbortController();
    await pipeline().generate({ image, question: QUESTION, params: greedy(24), signal: controller.signal, onToken: () => controller.abort() });
    expect(answer(await pipeline().generate({ image, question: QUESTION, params: greedy(24) }))).toEqual(answer(expected));
  });

  it('an already-aborted signal returns cancelled without generating', async () => {
    const c = collector();
    const result = await pipeline().generate({ image, question: QUESTION, params: greedy(24), signal: AbortSignal.abort(), onToken: c.onToken });
    expect(result).toMatchObject({ text: '', finishReason: 'cancelled', tokenIds: [] });
    expect(result.usage.completionTokens).toBe(0);
    expect(c.deltas).toEqual([]);
  });

  it('a request aborted while it waits behind another one generates nothing; the other is unaffected', async () => {
    const controller = new AbortController();
    const first = pipeline().generate({ image, question: QUESTION, params: greedy(24), onToken: () => controller.abort() });
    const second = pipeline().generate({ image: await stripesPng(40, 100), question: 'x', params: greedy(24), signal: controller.signal });
    expect(answer(await first)).toEqual(answer(expected));
    expect(await second).toMatchObject({ finishReason: 'cancelled', tokenIds: [], usage: { completionTokens: 0 } });
  });
});

describe('concurrent requests', () => {
  it('three requests at once each get the answer they get alone', async () => {
    const requests = [
      { image: await noisyJpeg(120, 80, 11), question: 'Describe it.', params: greedy(16) },
      { image: await ringsWebp(300, 300), question: '¿Qué colores ves?', params: sampled(12, 0.9, 0.9, 42) },
      { image: await stripesPng(40, 100), question: 'Count the stripes', params: greedy(20) },
    ];
    const alone: GenerateResult[] = [];
    for (const r of requests) alone.push(await pipeline().generate(r));
    const streams = requests.map(() => collector());
    const together = await Promise.all(requests.map((r, i) => pipeline().generate({ ...r, onToken: streams[i]?.onToken })));
    expect(together.map(answer)).toEqual(alone.map(answer));
    together.forEach((r, i) => expect(streams[i]?.text()).toBe(r.text));
    // The answers differ, so a mix-up between requests would show.
    expect(new Set(alone.map((r) => r.text)).size).toBe(3);
  });
});

describe('bad input', () => {
  const half = (bytes: Buffer): Uint8Array => bytes.subarray(0, Math.floor(bytes.length / 2));
  // Noise does not compress, so half the file cuts the pixel data, not just the trailer.
  const noisyPng = async () => sharp(await noisyJpeg(64, 64, 2)).png().toBuffer();
  const bad: [string, () => Promise<Uint8Array>][] = [
    ['empty bytes', () => Promise.resolve(new Uint8Array(0))],
    ['random bytes', () => Promise.resolve(Uint8Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 251))],
    ['a truncated PNG', async () => half(await noisyPng())],
    ['a truncated JPEG', async () => half(await noisyJpeg(120, 80, 5))],
  ];
  for (const [name, make] of bad) {
    it(`${name} is rejected as invalid_image and the pipeline still answers afterwards`, async () => {
      const error = await rejection(pipeline().generate({ image: await make(), question: QUESTION, params: greedy(4) }));
      expect(error.code).toBe('invalid_image');
      expect(answer(await pipeline().generate({ image, question: QUESTION, params: greedy(24) }))).toEqual(answer(expected));
    });
  }

  it('a bad image queued between good requests fails alone', async () => {
    const [a, b, c] = await Promise.allSettled([
      pipeline().generate({ image, question: QUESTION, params: greedy(24) }),
      pipeline().generate({ image: new Uint8Array([1, 2, 3]), question: QUESTION, params: greedy(24) }),
      pipeline().generate({ image, question: QUESTION, params: greedy(24) }),
    ]);
    expect(a.status === 'fulfilled' && answer(a.value)).toEqual(answer(expected));
    expect(b.status).toBe('rejected');
    expect(c.status === 'fulfilled' && answer(c.value)).toEqual(answer(expected));
  });

  it('a question containing the image placeholder is rejected as invalid_request', async () => {
    const error = await rejection(pipeline().generate({ image, question: 'what about <image>?', params: greedy(4) }));
    expect(error.code).toBe('invalid_request');
  });
});

describe('load, warmup, info and dispose', () => {
  it('info names the model, its revision, fp32 and the folder', () => {
    const info = pipeline().info;
    expect(info).toEqual({ id: model.dir, revision: expect.stringMatching(/^[0-9a-f]{16}$/) as unknown, dtype: 'fp32', device: 'cpu', dir: model.dir });
  });

  it('warmup then dispose works; afterwards generate is refused with service_unavailable and dispose is idempotent', async () => {
    const own = await FastVlmPipeline.load({ model: model.dir, threads: 1 });
    await own.warmup();
    expect(answer(await own.generate({ image, question: QUESTION, params: greedy(24) }))).toEqual(answer(expected));
    await own.dispose();
    const error = await rejection(own.generate({ image, question: QUESTION, params: greedy(4) }));
    expect(error.code).toBe('service_unavailable');
    await own.dispose();
  });

  it('dispose lets the requests already accepted finish first', async () => {
    const own = await FastVlmPipeline.load({ model: model.dir, threads: 1 });
    const running = own.generate({ image, question: QUESTION, params: greedy(24) });
    const queued = own.generate({ image: await solidPng(50, 70, '#808000'), question: QUESTION, params: greedy(8) });
    await own.dispose();
    expect(answer(await running)).toEqual(answer(expected));
    expect((await queued).usage.completionTokens).toBe(8);
  });

  it('a folder that is not a model fails to load with model_not_found', async () => {
    const error = await rejection(FastVlmPipeline.load({ model: model.root }));
    expect(error.code).toBe('model_not_found');
  });
});
