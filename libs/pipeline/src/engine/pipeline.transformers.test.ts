import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GenerateResult } from '../types';
import {
  gradientPng,
  greedy,
  noisyJpeg,
  ringsWebp,
  stripesPng,
  transformersReference,
  useTinyPipeline,
  type ReferenceAnswer,
} from './test-fixtures';

const MAX_TOKENS = 24;

interface Case {
  name: string;
  image: () => Promise<Buffer>;
  question: string;
}

const CASES: Case[] = [
  { name: '64×64 gradient PNG, short question', image: () => gradientPng(64, 64), question: 'What is this?' },
  {
    name: '120×80 noisy JPEG, long question',
    image: () => noisyJpeg(120, 80, 7),
    question: 'Describe everything you can see in this picture, including colours, shapes, textures and any text, in two sentences.',
  },
  { name: '40×100 striped PNG (tall), non-ASCII question', image: () => stripesPng(40, 100), question: '这张图片里有什么？ Réponds en français 🙂' },
  { name: '300×300 WebP, one-word question', image: () => ringsWebp(300, 300), question: 'Colours?' },
];

const { model, pipeline } = useTinyPipeline(0);
let reference: Awaited<ReturnType<typeof transformersReference>>;
const images = new Map<string, Buffer>();
const ours = new Map<string, GenerateResult>();
const theirs = new Map<string, ReferenceAnswer>();

beforeAll(async () => {
  reference = await transformersReference(model.dir);
  for (const c of CASES) {
    const image = await c.image();
    images.set(c.name, image);
    ours.set(c.name, await pipeline().generate({ image, question: c.question, params: greedy(MAX_TOKENS) }));
    theirs.set(c.name, await reference.answer(image, c.question, MAX_TOKENS));
  }
});

afterAll(async () => {
  await reference.close();
});

describe('greedy decoding matches transformers.js on the same model files', () => {
  for (const c of CASES) {
    it(`${c.name}: same new token ids, same text, same prompt length`, () => {
      const a = ours.get(c.name);
      const b = theirs.get(c.name);
      if (!a || !b) throw new Error('missing run');
      expect(a.tokenIds).toEqual(b.newIds);
      expect(a.text).toBe(b.text);
      expect(a.usage.promptTokens).toBe(b.promptIds.length);
      expect(a.finishReason).toBe(b.newIds.length < MAX_TOKENS ? 'stop' : 'length');
    });
  }

  it('the answers are not all the same (the comparison is not vacuous)', () => {
    const texts = new Set(CASES.map((c) => JSON.stringify(ours.get(c.name)?.tokenIds)));
    expect(texts.size).toBeGreaterThan(1);
  });
});

describe('maxTokens and usage against transformers.js', () => {
  it('maxTokens 5 ends with length after exactly 5 tokens, and promptTokens is the processor input_ids length', async () => {
    const c = CASES[2];
    const image = images.get(c?.name ?? '');
    if (!c || !image) throw new Error('missing case');
    const result = await pipeline().generate({ image, question: c.question, params: greedy(5) });
    const ref = await reference.answer(image, c.question, 5);
    expect(result.finishReason).toBe('length');
    expect(result.usage.completionTokens).toBe(5);
    expect(result.tokenIds).toEqual(ref.newIds);
    expect(result.text).toBe(ref.text);
    expect(result.usage.promptTokens).toBe(ref.promptIds.length);
  });
});

describe('the image and the question both reach the decoder', () => {
  it('a different image with the same question gives a different answer', async () => {
    const question = CASES[0]?.question ?? '';
    const first = await pipeline().generate({ image: await gradientPng(64, 64), question, params: greedy(MAX_TOKENS) });
    const second = await pipeline().generate({ image: await stripesPng(64, 64), question, params: greedy(MAX_TOKENS) });
    expect(second.tokenIds).not.toEqual(first.tokenIds);
    // And transformers.js agrees on the second one too.
    expect(second.tokenIds).toEqual((await reference.answer(await stripesPng(64, 64), question, MAX_TOKENS)).newIds);
  });

  it('a different question about the same image gives a different answer', async () => {
    const image = await gradientPng(64, 64);
    const first = await pipeline().generate({ image, question: 'What is this?', params: greedy(MAX_TOKENS) });
    const second = await pipeline().generate({ image, question: 'How many objects are there?', params: greedy(MAX_TOKENS) });
    expect(second.tokenIds).not.toEqual(first.tokenIds);
  });
});
