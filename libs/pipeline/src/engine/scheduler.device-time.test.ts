import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { StopMatcher } from '../text/stop';
import { TextCodec } from '../text/tokenizer';
import type { GenerateResult } from '../types';
import { FastVlmPipeline } from './pipeline';
import { Scheduler, type Prepared } from './scheduler';
import type { SequenceRequest, TextSide } from './sequence';
import type { ModelSessions } from './sessions';
import { gradientPng, greedy, noisyJpeg, SCRIPTED, scriptedConfig, stripesPng, useTinyModel } from './test-fixtures';
import { VisionCache } from './vision-cache';

/**
 * Device-time accounting: every model run's wall time is divided equally among
 * the requests in it. Exact shares are checked against sessions that advance
 * a fake clock by a fixed cost per run; the real tiny model checks that the
 * shares add up to the engine's total.
 */

const { vocab: VOCAB, hidden: HIDDEN, imageTokens: IMAGE_TOKENS } = SCRIPTED;
const CFG = scriptedConfig(1);
/** What each fake run costs on the fake clock: a vision run, an embedding run, a prefill and a decode step's decoder run. */
const COST = { vision: 100, embed: 2, prefill: 10, step: 4 } as const;
/** A decode step is the embedding of the last tokens and one decoder run. */
const STEP = COST.embed + COST.step;
const PREFILL = COST.embed + COST.prefill;

const model = useTinyModel(0);
let text: TextSide;
let token: number;

beforeAll(async () => {
  const codec = await TextCodec.load(model.dir);
  text = {
    encodePrompt: (q, n) => codec.encodePrompt(q, n),
    streamDecoder: () => codec.createStreamDecoder(),
    stopMatcher: (stops) => new StopMatcher(stops),
  };
  token = codec.encode(' a')[0] as number;
});

const zeros = (dims: number[]) => new ort.Tensor('float32', new Float32Array(dims.reduce((a, b) => a * b, 1)), dims);
const session = (run: (feeds: Record<string, ort.Tensor>) => Record<string, ort.Tensor>): ort.InferenceSession =>
  ({ run: (feeds: Record<string, ort.Tensor>) => Promise.resolve(run(feeds)) }) as unknown as ort.InferenceSession;

/**
 * Sessions that cost COST on `clock` and never emit eos (answers end at maxTokens);
 * the decoder fails on its `failAt`-th run (1-based), after its time has passed.
 */
function timedSessions(clock: { t: number }, failAt = 0): ModelSessions {
  let decoderRuns = 0;
  return {
    vision: session((feeds) => {
      clock.t += COST.vision;
      return { image_features: zeros([feeds.pixel_values?.dims[0] ?? 1, IMAGE_TOKENS, HIDDEN]) };
    }),
    embed: session((feeds) => {
      clock.t += COST.embed;
      const [rows = 1, seq = 1] = feeds.input_ids?.dims ?? [];
      return { inputs_embeds: zeros([rows, seq, HIDDEN]) };
    }),
    decoder: session((feeds) => {
      const [rows = 1, seq = 1] = feeds.inputs_embeds?.dims ?? [];
      const past = feeds['past_key_values.0.key']?.dims[2] ?? 0;
      clock.t += seq > 1 ? COST.prefill : COST.step;
      if (++decoderRuns === failAt) throw new Error('decoder failed');
      const logits = new Float32Array(rows * seq * VOCAB);
      for (let r = 0; r < rows; r++) logits[(r * seq + seq - 1) * VOCAB + token] = 10;
      const out: Record<string, ort.Tensor> = { logits: new ort.Tensor('float32', logits, [rows, seq, VOCAB]) };
      for (const kind of ['key', 'value']) out[`present.0.${kind}`] = zeros([rows, CFG.numKvHeads, past + seq, CFG.headDim]);
      return out;
    }),
    release: () => Promise.resolve(),
  };
}

const pixels: Prepared = { kind: 'pixels', pixels: new Float32Array(3 * 4 * 4), width: 4, height: 4, preprocessMs: 0 };
const features: Prepared = { kind: 'features', features: new Float32Array(IMAGE_TOKENS * HIDDEN) };
const sha = (c: string): string => c.repeat(64);

interface Submitted {
  result: Promise<GenerateResult>;
  /** Every share reported through onDeviceTime, in order. */
  shares: number[];
}

/** A scheduler on timed sessions; requests submitted in one turn share the first vision run and then decode together. */
function harness(opts: { failAt?: number } = {}) {
  const clock = { t: 0 };
  const scheduler = new Scheduler(timedSessions(clock, opts.failAt), CFG, text, new VisionCache('test', { l1MaxBytes: 0 }), {
    maxBatch: 8,
    // Requests submitted together are admitted together (the window lets the later ones of the turn arrive).
    windowMs: 1,
    prefixCacheBytes: 0,
    clock: () => clock.t,
  });
  const submit = (maxTokens: number, image: string, prep: Prepared = pixels): Submitted => {
    const shares: number[] = [];
    const req: SequenceRequest = { question: 'q', params: greedy(maxTokens), onDeviceTime: (ms) => shares.push(ms) };
    return { result: scheduler.submit(req, image, Promise.resolve(prep)), shares };
  };
  return { scheduler, submit };
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

describe('device time per request', () => {
  it('a request alone pays for every run it took part in, whole', async () => {
    const { scheduler, submit } = harness();
    const a = submit(3, sha('a'));
    const r = await a.result;
    // The prefill gives the first token, two decode steps the other two.
    expect(a.shares).toEqual([COST.vision, PREFILL, STEP, STEP]);
    expect(r.timings.deviceMs).toBe(COST.vision + PREFILL + 2 * STEP);
    expect(scheduler.stats.deviceMs).toBe(r.timings.deviceMs);
  });

  it('requests in one vision run and one decode step each pay an equal share; one left alone pays whole steps', async () => {
    const { scheduler, submit } = harness();
    const a = submit(3, sha('a'));
    const b = submit(5, sha('b'));
    const [ra, rb] = await Promise.all([a.result, b.result]);
    expect(scheduler.stats).toMatchObject({ visionRuns: 1, visionImages: 2, prefills: 2, steps: 4, stepRows: 6 });
    // One vision run for both images, a prefill each, two steps together, then two steps of b alone.
    expect(a.shares).toEqual([COST.vision / 2, PREFILL, STEP / 2, STEP / 2]);
    expect(b.shares).toEqual([COST.vision / 2, PREFILL, STEP / 2, STEP / 2, STEP, STEP]);
    expect(ra.timings.deviceMs).toBe(50 + 12 + 3 + 3);
    expect(rb.timings.deviceMs).toBe(50 + 12 + 3 + 3 + 6 + 6);
    // Nothing is lost or counted twice: the requests' device time is the engine's.
    expect(ra.timings.deviceMs + rb.timings.deviceMs).toBe(scheduler.stats.deviceMs);
    expect(scheduler.stats.deviceMs).toBe(COST.vision + 2 * PREFILL + 4 * STEP);
  });

  it('two requests about one image share its single encoding; features from the cache cost no vision time', async () => {
    const { scheduler, submit } = harness();
    const a = submit(1, sha('a'));
    const b = submit(1, sha('a'));
    const c = submit(1, sha('c'), features);
    const rs = await Promise.all([a.result, b.result, c.result]);
    expect(scheduler.stats).toMatchObject({ visionRuns: 1, visionImages: 1 });
    expect(a.shares).toEqual([COST.vision / 2, PREFILL]);
    expect(b.shares).toEqual([COST.vision / 2, PREFILL]);
    expect(c.shares).toEqual([PREFILL]);
    expect(sum(rs.map((r) => r.timings.deviceMs))).toBe(scheduler.stats.deviceMs);
  });

  it('a request that fails still reports the time it was charged, the failed run included', async () => {
    // Decoder runs: two prefills, then the first decode step fails.
    const { scheduler, submit } = harness({ failAt: 3 });
    const a = submit(4, sha('a'));
    const b = submit(4, sha('b'));
    await expect(a.result).rejects.toThrow('decoder failed');
    await expect(b.result).rejects.toThrow('decoder failed');
    expect(a.shares).toEqual([COST.vision / 2, PREFILL, STEP / 2]);
    expect(b.shares).toEqual([COST.vision / 2, PREFILL, STEP / 2]);
    expect(sum(a.shares) + sum(b.shares)).toBe(scheduler.stats.deviceMs);
  });
});

describe('device time on the tiny model', () => {
  it('the shares of batched requests add up to the wall time of the engine runs', async () => {
    const pipeline = await FastVlmPipeline.load({ model: model.dir, threads: 1, maxBatchSize: 8, batchWindowMs: 50, visionCache: { l1MaxBytes: 0 } });
    try {
      const images = await Promise.all([gradientPng(64, 64), noisyJpeg(64, 64, 1), stripesPng(64, 64)]);
      const shares = images.map(() => [] as number[]);
      const results = await Promise.all(
        images.map((image, i) => pipeline.generate({ image, question: 'What is this?', params: greedy(4 + 4 * i), onDeviceTime: (ms) => shares[i]?.push(ms) })),
      );
      const stats = pipeline.stats();
      expect(stats.visionRuns).toBe(1);
      expect(stats.stepRows).toBeGreaterThan(stats.steps);
      results.forEach((r, i) => {
        expect(r.timings.deviceMs).toBeGreaterThan(0);
        expect(sum(shares[i] ?? [])).toBeCloseTo(r.timings.deviceMs, 9);
        // A vision share, a prefill, and one share per decode step (every token after the first, eos never comes).
        expect(shares[i]).toHaveLength(2 + r.usage.completionTokens - 1);
      });
      expect(sum(results.map((r) => r.timings.deviceMs))).toBeCloseTo(stats.deviceMs, 9);
    } finally {
      await pipeline.dispose();
    }
  });
});
