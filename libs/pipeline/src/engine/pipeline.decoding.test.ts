import { beforeAll, describe, expect, it } from 'vitest';
import type { GenerateRequest, GenerateResult, TokenDelta } from '../types';
import { answer, collector, gradientPng, greedy, noisyJpeg, sampled, stripesPng, useTinyPipeline } from './test-fixtures';

const { pipeline } = useTinyPipeline(0);

interface Input {
  image: Buffer;
  question: string;
}
const inputs: Input[] = [];
/** Greedy 24-token answers of `inputs`, run once. */
const baselines: GenerateResult[] = [];

beforeAll(async () => {
  inputs.push(
    { image: await gradientPng(64, 64), question: 'What is this?' },
    { image: await noisyJpeg(120, 80, 3), question: 'Décris cette image, s’il te plaît 🙏' },
    { image: await stripesPng(40, 100), question: '数一数条纹。' },
  );
  for (const input of inputs) baselines.push(await pipeline().generate({ ...input, params: greedy(24) }));
});

const input = (i: number): Input => inputs[i] ?? { image: Buffer.alloc(0), question: '' };
const baseline = (i: number): GenerateResult => {
  const b = baselines[i];
  if (!b) throw new Error(`no baseline ${i}`);
  return b;
};

async function streamed(req: Omit<GenerateRequest, 'onToken'>): Promise<{ result: GenerateResult; deltas: TokenDelta[]; text: string }> {
  const c = collector();
  const result = await pipeline().generate({ ...req, onToken: c.onToken });
  return { result, deltas: c.deltas, text: c.text() };
}

/** One call per generated token, indices 0..n-1 in order, plus at most one final call with index n. */
function expectOneCallPerToken(deltas: TokenDelta[], generated: number): void {
  expect(deltas.slice(0, generated).map((d) => d.index)).toEqual(Array.from({ length: generated }, (_, i) => i));
  const extra = deltas.slice(generated);
  expect(extra.length).toBeLessThanOrEqual(1);
  for (const d of extra) expect(d.index).toBe(generated);
}

describe('streaming', () => {
  for (const i of [0, 1, 2]) {
    it(`the streamed pieces concatenate to the answer, one call per token in order (input ${i})`, async () => {
      const { result, deltas, text } = await streamed({ ...input(i), params: greedy(24) });
      expect(text).toBe(result.text);
      expect(answer(result)).toEqual(answer(baseline(i)));
      expectOneCallPerToken(deltas, result.tokenIds.length);
      for (let k = 1; k < deltas.length; k++) expect(deltas[k]?.index).toBeGreaterThan(deltas[k - 1]?.index ?? -1);
      expect(deltas.some((d) => d.text.includes('\uFFFD'))).toBe(false);
    });
  }
});

describe('stop sequences', () => {
  /** A piece of the greedy answer starting at `from` (in UTF-16 units), `length` long. */
  const pieceOf = (text: string, from: number, length: number): string => text.slice(from, from + length);

  it('the answer ends right before the stop sequence, with finishReason stop, and nothing of it is streamed', async () => {
    const full = baseline(0).text;
    const stop = pieceOf(full, Math.floor(full.length / 2), 3);
    const cut = full.indexOf(stop);
    const { result, deltas, text } = await streamed({ ...input(0), params: greedy(24, [stop]) });
    expect(result.finishReason).toBe('stop');
    expect(result.text).toBe(full.slice(0, cut));
    expect(text).toBe(result.text);
    for (const d of deltas) expect(d.text).not.toContain(stop);
    // It stopped at the token that completed the stop sequence, not later.
    expect(result.tokenIds).toEqual(baseline(0).tokenIds.slice(0, result.tokenIds.length));
    expect(result.tokenIds.length).toBeLessThan(24);
    expect(result.usage.completionTokens).toBe(result.tokenIds.length);
    expectOneCallPerToken(deltas, result.tokenIds.length);
  });

  it('a stop sequence spanning two tokens is caught and none of its first token is streamed', async () => {
    const { deltas } = await streamed({ ...input(1), params: greedy(24) });
    const k = deltas.findIndex((d, j) => j > 2 && d.text.length >= 2 && (deltas[j + 1]?.text.length ?? 0) >= 2);
    expect(k).toBeGreaterThan(0);
    const stop = (deltas[k]?.text.slice(-2) ?? '') + (deltas[k + 1]?.text.slice(0, 2) ?? '');
    const full = baseline(1).text;
    const { result, text } = await streamed({ ...input(1), params: greedy(24, [stop]) });
    expect(result.finishReason).toBe('stop');
    expect(result.text).toBe(full.slice(0, full.indexOf(stop)));
    expect(text).toBe(result.text);
  });

  it('of several stop sequences the earliest occurrence wins; absent ones change nothing', async () => {
    const full = baseline(2).text;
    const early = pieceOf(full, 4, 2);
    const late = pieceOf(full, full.length - 4, 3);
    const both = await pipeline().generate({ ...input(2), params: greedy(24, [late, '\u0000never\u0000', early]) });
    expect(both.text).toBe(full.slice(0, Math.min(full.indexOf(early), full.indexOf(late))));
    const none = await pipeline().generate({ ...input(2), params: greedy(24, ['\u0000never\u0000']) });
    expect(answer(none)).toEqual(answer(baseline(2)));
  });

  it('a stop sequence at the very start gives an empty answer', async () => {
    const stop = pieceOf(baseline(0).text, 0, 2);
    const { result, text } = await streamed({ ...input(0), params: greedy(24, [stop]) });
    expect(result).toMatchObject({ text: '', finishReason: 'stop' });
    expect(text).toBe('');
  });
});

describe('maxTokens', () => {
  for (const maxTokens of [1, 5, 24]) {
    it(`stops with finishReason length after exactly ${maxTokens} tokens, a prefix of the longer answer`, async () => {
      const { result, deltas, text } = await streamed({ ...input(1), params: greedy(maxTokens) });
      expect(result.finishReason).toBe('length');
      expect(result.usage.completionTokens).toBe(maxTokens);
      expect(result.tokenIds).toEqual(baseline(1).tokenIds.slice(0, maxTokens));
      expect(result.usage.promptTokens).toBe(baseline(1).usage.promptTokens);
      expect(text).toBe(result.text);
      expect(baseline(1).text.startsWith(result.text)).toBe(true);
      expectOneCallPerToken(deltas, maxTokens);
    });
  }
});

describe('sampling', () => {
  it('the same seed gives the same answer, another seed a different one', async () => {
    const run = (seed: number) => pipeline().generate({ ...input(0), params: sampled(24, 0.8, 1, seed) });
    const a = await run(42);
    const b = await run(42);
    const c = await run(43);
    expect(answer(b)).toEqual(answer(a));
    expect(c.tokenIds).not.toEqual(a.tokenIds);
    expect(a.tokenIds).not.toEqual(baseline(0).tokenIds);
    expect(a.usage.completionTokens).toBe(24);
  });

  it('a tiny top_p at temperature 1 is greedy', async () => {
    for (const i of [0, 1]) {
      const result = await pipeline().generate({ ...input(i), params: sampled(24, 1, 1e-6, 9) });
      expect(answer(result)).toEqual(answer(baseline(i)));
    }
  });

  it('sampled answers stream like greedy ones', async () => {
    const { result, deltas, text } = await streamed({ ...input(2), params: sampled(24, 1.2, 0.95, 5) });
    expect(text).toBe(result.text);
    expectOneCallPerToken(deltas, result.tokenIds.length);
  });
});
