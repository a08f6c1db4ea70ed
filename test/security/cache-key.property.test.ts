import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DecodingParamsSchema, type DecodingParams } from '@fastvlm/contracts';
import { answerCacheKey, type CacheKeyInput } from '@fastvlm/jobs';

const params: fc.Arbitrary<DecodingParams> = fc
  .record(
    {
      maxTokens: fc.integer({ min: 1, max: 4096 }),
      temperature: fc.double({ min: 0, max: 2, noNaN: true }),
      topP: fc.double({ min: 0.01, max: 1, noNaN: true }),
      seed: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      presencePenalty: fc.double({ min: -2, max: 2, noNaN: true }),
      frequencyPenalty: fc.double({ min: -2, max: 2, noNaN: true }),
      stop: fc.array(fc.string({ minLength: 1, maxLength: 64 }), { maxLength: 4 }),
    },
    { requiredKeys: ['maxTokens', 'temperature', 'topP', 'stop'] },
  )
  .map((p) => DecodingParamsSchema.parse(p));

const input: fc.Arbitrary<CacheKeyInput> = fc.record({
  tenant: fc.string({ minLength: 1, maxLength: 64 }),
  modelId: fc.string({ minLength: 1 }),
  modelRevision: fc.string(),
  params,
  imageSha256: fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 64, maxLength: 64 }),
  question: fc.string({ unit: 'grapheme', maxLength: 200 }),
});

/** Every field of a cache key input, with a way to give it another value. */
const FIELDS: [string, (i: CacheKeyInput, v: CacheKeyInput) => CacheKeyInput][] = [
  ['tenant', (i, v) => ({ ...i, tenant: v.tenant })],
  ['model id', (i, v) => ({ ...i, modelId: v.modelId })],
  ['model revision', (i, v) => ({ ...i, modelRevision: v.modelRevision })],
  ['image', (i, v) => ({ ...i, imageSha256: v.imageSha256 })],
  ['question', (i, v) => ({ ...i, question: v.question })],
  ...(['maxTokens', 'temperature', 'topP', 'seed', 'stop', 'presencePenalty', 'frequencyPenalty'] as const).map(
    (k): [string, (i: CacheKeyInput, v: CacheKeyInput) => CacheKeyInput] => [`params.${k}`, (i, v) => ({ ...i, params: { ...i.params, [k]: v.params[k] } })],
  ),
];

const sameField = (a: CacheKeyInput, b: CacheKeyInput): boolean => JSON.stringify(a) === JSON.stringify(b);

describe('the answer cache key', () => {
  it.each(FIELDS)('changes whenever the %s changes', (_name, change) => {
    fc.assert(
      fc.property(input, input, (a, other) => {
        const b = change(a, other);
        fc.pre(!sameField(a, b));
        expect(answerCacheKey(b)).not.toBe(answerCacheKey(a));
      }),
      { numRuns: 300 },
    );
  });

  it('is the same for the same request, and never lets field boundaries shift ("ab"+"c" vs "a"+"bc")', () => {
    fc.assert(
      fc.property(input, fc.string({ minLength: 1, maxLength: 20 }), (a, s) => {
        expect(answerCacheKey({ ...a })).toBe(answerCacheKey(a));
        expect(answerCacheKey({ ...a, tenant: `${a.tenant}${s}` })).not.toBe(answerCacheKey({ ...a, modelId: `${s}${a.modelId}` }));
      }),
    );
  });
});
