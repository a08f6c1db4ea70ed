import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import type { DecodingParams } from '@fastvlm/contracts';
import { TOKEN_IDS } from '../generator/index';
import { StopMatcher } from '../text/stop';
import { TextCodec } from '../text/tokenizer';
import { Scheduler } from './scheduler';
import type { SequenceRequest, TextSide } from './sequence';
import { VisionCache } from './vision-cache';
import type { ModelConfig } from './model-config';
import type { ModelSessions } from './sessions';
import { collector, greedy, SCRIPTED, scriptedConfig, useTinyModel } from './test-fixtures';

/**
 * The decode loop against scripted sessions: the "decoder" answers a fixed
 * token sequence, so eos, split characters and the exact feeds can be checked
 * (the random-weight model never produces eos).
 */

const { vocab: VOCAB, hidden: HIDDEN, imageTokens: IMAGE_TOKENS } = SCRIPTED;
const CFG = scriptedConfig(2);

interface DecoderCall {
  positions: number[];
  maskLength: number;
  pastLength: number;
  embedRows: number;
}

const model = useTinyModel(0);
let codec: TextCodec;
let text: TextSide;

beforeAll(async () => {
  codec = await TextCodec.load(model.dir);
  text = {
    encodePrompt: (q, n) => codec.encodePrompt(q, n),
    streamDecoder: () => codec.createStreamDecoder(),
    stopMatcher: (stops) => new StopMatcher(stops),
  };
});

const fake = (run: (feeds: Record<string, ort.Tensor>) => Record<string, ort.Tensor>): ort.InferenceSession =>
  ({ run: (feeds: Record<string, ort.Tensor>) => Promise.resolve(run(feeds)) }) as unknown as ort.InferenceSession;

/** Sessions whose decoder emits `script` in order (then eos forever), recording every decoder call. */
function scripted(script: number[], features = IMAGE_TOKENS): { sessions: ModelSessions; calls: DecoderCall[] } {
  const calls: DecoderCall[] = [];
  let step = 0;
  const zeros = (dims: number[]) => new ort.Tensor('float32', new Float32Array(dims.reduce((a, b) => a * b, 1)), dims);
  const sessions: ModelSessions = {
    vision: fake(() => ({ image_features: zeros([1, features, HIDDEN]) })),
    embed: fake((feeds) => ({ inputs_embeds: zeros([1, feeds.input_ids?.dims[1] ?? 0, HIDDEN]) })),
    decoder: fake((feeds) => {
      const seq = feeds.inputs_embeds?.dims[1] ?? 0;
      const past = feeds['past_key_values.0.key']?.dims[2] ?? -1;
      calls.push({
        positions: Array.from(feeds.position_ids?.data as BigInt64Array, Number),
        maskLength: feeds.attention_mask?.dims[1] ?? -1,
        pastLength: past,
        embedRows: seq,
      });
      const logits = new Float32Array(seq * VOCAB);
      logits[(seq - 1) * VOCAB + (script[step++] ?? TOKEN_IDS.imEnd)] = 10;
      const out: Record<string, ort.Tensor> = { logits: new ort.Tensor('float32', logits, [1, seq, VOCAB]) };
      for (let i = 0; i < CFG.numLayers; i++) {
        for (const kind of ['key', 'value']) out[`present.${i}.${kind}`] = zeros([1, CFG.numKvHeads, past + seq, CFG.headDim]);
      }
      return out;
    }),
    release: () => Promise.resolve(),
  };
  return { sessions, calls };
}

/** One request through a scheduler of batch size 1 (the batching itself is tested on the real model). */
function decode(sessions: ModelSessions, cfg: ModelConfig, side: TextSide, req: SequenceRequest) {
  const scheduler = new Scheduler(sessions, cfg, side, new VisionCache('test', { l1MaxBytes: 0 }), { maxBatch: 1, windowMs: 0, prefixCacheBytes: 0 });
  const pixels = { kind: 'pixels' as const, pixels: new Float32Array(3 * 4 * 4), width: 4, height: 4, preprocessMs: 0 };
  return scheduler.submit(req, 'a'.repeat(64), Promise.resolve(pixels));
}

function run(script: number[], params: DecodingParams, features = IMAGE_TOKENS) {
  const { sessions, calls } = scripted(script, features);
  const c = collector();
  const result = decode(sessions, CFG, text, { question: 'q', params, onToken: c.onToken });
  return { result, calls, c };
}

/** A character Qwen2's byte-level BPE splits over several tokens, and its ids. */
function splitCharacter(): { char: string; ids: number[] } {
  for (const char of ['𝔘', '𓀀', '🪼', '𝔫', '龘']) {
    const ids = codec.encode(char);
    if (ids.length >= 2) return { char, ids };
  }
  throw new Error('no split character found');
}

describe('scheduler, one sequence at a time', () => {
  it('eos ends the answer with stop; tokenIds leave it out, completionTokens count it', async () => {
    const words = codec.encode(' Hello world');
    const { result, c } = run([...words, TOKEN_IDS.imEnd, ...codec.encode(' ignored')], greedy(24));
    const r = await result;
    expect(r).toMatchObject({ text: ' Hello world', finishReason: 'stop', tokenIds: words });
    expect(r.usage.completionTokens).toBe(words.length + 1);
    expect(c.text()).toBe(r.text);
    expect(c.deltas.map((d) => d.index)).toEqual(words.map((_, i) => i));
  });

  it('eos as the first token gives an empty answer', async () => {
    const r = await run([TOKEN_IDS.imEnd], greedy(24)).result;
    expect(r).toMatchObject({ text: '', finishReason: 'stop', tokenIds: [], usage: { completionTokens: 1 } });
  });

  it('prefills the whole prompt from position 0, then feeds one token at a time at the next position', async () => {
    const ids = codec.encode(' a b c');
    const { result, calls } = run([...ids, TOKEN_IDS.imEnd], greedy(24));
    const r = await result;
    const n = r.usage.promptTokens;
    expect(n).toBe(codec.encodePrompt('q', IMAGE_TOKENS).length);
    expect(calls[0]).toEqual({ positions: Array.from({ length: n }, (_, i) => i), maskLength: n, pastLength: 0, embedRows: n });
    calls.slice(1).forEach((call, k) => {
      expect(call).toEqual({ positions: [n + k], maskLength: n + k + 1, pastLength: n + k, embedRows: 1 });
    });
    expect(calls).toHaveLength(ids.length + 1);
  });

  it('a character split over tokens is streamed whole, never as U+FFFD', async () => {
    const { char, ids } = splitCharacter();
    const script = [...codec.encode('x '), ...ids, ...codec.encode(' y'), TOKEN_IDS.imEnd];
    const { result, c } = run(script, greedy(24));
    const r = await result;
    expect(r.text).toBe(`x ${char} y`);
    expect(c.text()).toBe(r.text);
    expect(c.deltas.some((d) => d.text.includes('\uFFFD'))).toBe(false);
  });

  it('maxTokens in the middle of a character releases the partial text in one final call with index maxTokens', async () => {
    const { ids } = splitCharacter();
    const prefix = codec.encode('ab');
    const { result, c } = run([...prefix, ...ids], greedy(prefix.length + 1));
    const r = await result;
    expect(r.finishReason).toBe('length');
    expect(r.text).toBe(codec.decode([...prefix, ...ids.slice(0, 1)]));
    expect(c.text()).toBe(r.text);
    expect(c.deltas.at(-1)?.index).toBe(prefix.length + 1);
  });

  it('a stop sequence completed only by that final release still ends with stop, before it', async () => {
    const { ids } = splitCharacter();
    const prefix = codec.encode('ab');
    const r = await run([...prefix, ...ids], greedy(prefix.length + 1, ['\uFFFD'])).result;
    expect(r).toMatchObject({ text: 'ab', finishReason: 'stop' });
  });

  it('text held back for a possible stop sequence is released when the answer ends without it', async () => {
    const ids = codec.encode('one two');
    const { result, c } = run([...ids, TOKEN_IDS.imEnd], greedy(24, ['two three']));
    const r = await result;
    expect(r).toMatchObject({ text: 'one two', finishReason: 'stop' });
    expect(c.text()).toBe('one two');
    expect(c.deltas.at(-1)).toEqual({ index: ids.length, text: expect.stringContaining('two') as unknown });
  });

  it('fails clearly when the vision encoder gives more features than the prompt has image tokens', async () => {
    const { sessions } = scripted([TOKEN_IDS.imEnd], IMAGE_TOKENS);
    const mismatched = { ...text, encodePrompt: (q: string) => codec.encodePrompt(q, IMAGE_TOKENS - 1) };
    await expect(decode(sessions, CFG, mismatched, { question: 'q', params: greedy(4) })).rejects.toThrow(/image tokens/);
  });
});
