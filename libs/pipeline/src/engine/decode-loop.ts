import * as ort from 'onnxruntime-node';
import type { DecodingParams, FinishReason } from '@fastvlm/contracts';
import type { GenerateResult, TokenDelta } from '../types';
import type { ModelConfig } from './model-config';
import { createSampler } from './sampler';
import type { ModelSessions } from './sessions';

/** Text side of generation: the model's tokenizer, and stop handling. */
export interface TextSide {
  /** Prompt ids with the image placeholder expanded to `numImageTokens` image tokens. */
  encodePrompt(question: string, numImageTokens: number): number[];
  /** Incremental detokenizer: push ids, get newly complete text. */
  streamDecoder(): { push(id: number): string; flush(): string };
  /** Holds back text that may be the start of a stop sequence. */
  stopMatcher(stops: readonly string[]): { feed(delta: string): { emit: string; stopped: boolean }; finish(): string };
}

export interface DecodeInput {
  /** `[1, 3, H, W]` pixel values. */
  pixels: ort.Tensor;
  question: string;
  params: DecodingParams;
  signal?: AbortSignal;
  onToken?: (d: TokenDelta) => void;
}

const i64 = (values: number[], dims: number[]): ort.Tensor =>
  new ort.Tensor('int64', BigInt64Array.from(values, (v) => BigInt(v)), dims);

/**
 * One request, start to end: vision encoder, prompt embeddings with the image
 * features in place of the image tokens, prefill, then token by token with the
 * KV cache until eos, a stop sequence, `maxTokens` or cancellation.
 */
export async function decode(s: ModelSessions, cfg: ModelConfig, text: TextSide, input: DecodeInput): Promise<GenerateResult> {
  const { image_features: features } = await s.vision.run({ pixel_values: input.pixels });
  if (!features) throw new Error('vision encoder returned no image_features');
  const [, numImageTokens = 0, hidden = cfg.hiddenSize] = features.dims;
  const ids = text.encodePrompt(input.question, numImageTokens);
  const embeds = await embed(s, ids);
  mergeImageFeatures(embeds, ids, cfg.imageTokenId, features.data as Float32Array, hidden);

  const sample = createSampler(input.params);
  const decoder = text.streamDecoder();
  const stop = text.stopMatcher(input.params.stop);
  const eos = new Set(cfg.eosTokenIds);
  const generated: number[] = [];
  let answer = '';
  let finish: FinishReason = 'length';
  let produced = 0;
  let stoppedBySequence = false;
  const emit = (index: number, delta: string): void => {
    answer += delta;
    input.onToken?.({ index, text: delta });
  };

  let past = emptyCache(cfg);
  let step = new ort.Tensor('float32', embeds, [1, ids.length, hidden]);
  let total = ids.length;
  let positions = Array.from({ length: ids.length }, (_, i) => i);
  for (;;) {
    if (input.signal?.aborted) {
      finish = 'cancelled';
      break;
    }
    const out = await s.decoder.run({
      inputs_embeds: step,
      attention_mask: i64(new Array<number>(total).fill(1), [1, total]),
      position_ids: i64(positions, [1, positions.length]),
      ...past,
    });
    const token = sample(lastRow(out.logits));
    past = presentAsPast(out, cfg);
    produced++;
    if (eos.has(token)) {
      finish = 'stop';
      break;
    }
    generated.push(token);
    const fed = stop.feed(decoder.push(token));
    emit(generated.length - 1, fed.emit);
    if (fed.stopped) {
      finish = 'stop';
      stoppedBySequence = true;
      break;
    }
    if (generated.length >= input.params.maxTokens) break;
    step = new ort.Tensor('float32', await embed(s, [token]), [1, 1, hidden]);
    positions = [total];
    total += 1;
  }
  // Text held back for an incomplete character or a possible stop sequence
  // belongs to the answer, unless a stop sequence already ended it.
  if (finish === 'length' || (finish === 'stop' && !stoppedBySequence)) {
    const tail = stop.feed(decoder.flush());
    // The flushed text (an incomplete character, now U+FFFD) can still complete a stop sequence.
    if (tail.stopped) finish = 'stop';
    const rest = tail.stopped ? tail.emit : tail.emit + stop.finish();
    if (rest) emit(generated.length, rest);
  }
  return { text: answer, finishReason: finish, usage: { promptTokens: ids.length, completionTokens: produced }, tokenIds: generated };
}

async function embed(s: ModelSessions, ids: number[]): Promise<Float32Array> {
  const { inputs_embeds: out } = await s.embed.run({ input_ids: i64(ids, [1, ids.length]) });
  if (!out) throw new Error('embed_tokens returned no inputs_embeds');
  return out.data as Float32Array;
}

/** Puts image feature rows where the prompt holds image tokens, in order (LLaVA's masked scatter). */
function mergeImageFeatures(embeds: Float32Array, ids: number[], imageTokenId: number, features: Float32Array, hidden: number): void {
  let row = 0;
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] !== imageTokenId) continue;
    embeds.set(features.subarray(row * hidden, (row + 1) * hidden), i * hidden);
    row++;
  }
  if (row * hidden !== features.length) {
    throw new Error(`prompt has ${row} image tokens but the vision encoder produced ${features.length / hidden} features`);
  }
}

/** Copies the last position's logits out of the (possibly huge) prefill output. */
function lastRow(logits: ort.Tensor | undefined): Float32Array {
  if (!logits) throw new Error('decoder returned no logits');
  const vocab = logits.dims[logits.dims.length - 1] ?? 0;
  const data = logits.data as Float32Array;
  return data.slice(data.length - vocab);
}

function emptyCache(cfg: ModelConfig): Record<string, ort.Tensor> {
  const past: Record<string, ort.Tensor> = {};
  for (let i = 0; i < cfg.numLayers; i++) {
    for (const kind of ['key', 'value']) {
      past[`past_key_values.${i}.${kind}`] = new ort.Tensor('float32', new Float32Array(0), [1, cfg.numKvHeads, 0, cfg.headDim]);
    }
  }
  return past;
}

function presentAsPast(out: ort.InferenceSession.OnnxValueMapType, cfg: ModelConfig): Record<string, ort.Tensor> {
  const past: Record<string, ort.Tensor> = {};
  for (let i = 0; i < cfg.numLayers; i++) {
    for (const kind of ['key', 'value']) {
      const t = out[`present.${i}.${kind}`];
      if (!t) throw new Error(`decoder returned no present.${i}.${kind}`);
      past[`past_key_values.${i}.${kind}`] = t;
    }
  }
  return past;
}
