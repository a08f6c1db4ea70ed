/**
 * Model shapes as plain data. A preset for the real FastVLM-0.5B shapes only needs
 * a new entry here; the size tricks that make `tiny` small are options, not code paths
 * specific to one preset.
 */

/** Token ids fixed by the Qwen2 tokenizer and the FastVLM export. */
export const TOKEN_IDS = {
  endOfText: 151643,
  imStart: 151644,
  imEnd: 151645,
  image: 151646,
} as const;

/**
 * A [vocab, rank] factor instead of a [vocab, hidden] table: the vocabulary is
 * fixed at 151936 by the tokenizer, so a full table would dominate the file size.
 * `int8` stores one byte per value (the scale is folded into the float factor).
 */
export interface LowRankVocab {
  rank: number;
  storage: 'int8' | 'float16';
}

export interface TextDims {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  maxPositionEmbeddings: number;
  ropeTheta: number;
  rmsNormEps: number;
}

export interface VisionDims {
  /** Square input size S after resize + center crop. */
  imageSize: number;
  /** Each P×P patch becomes one image token, so (S/P)² tokens per image. */
  patchSize: number;
  /** Width of the stand-in conv backbone. */
  backboneChannels: number;
  /** Backbone output width fed to the projector (`mm_hidden_size`). */
  mmHiddenSize: number;
}

export interface ModelPreset {
  text: TextDims;
  vision: VisionDims;
  /** null = full float32 table, as in the real export. */
  embedTokens: LowRankVocab | null;
  lmHead: LowRankVocab | null;
  /** Target std of the logits across the vocabulary; wide spread keeps greedy argmax away from ties. */
  logitStd: number;
}

export const PRESETS = {
  tiny: {
    text: {
      vocabSize: 151936,
      hiddenSize: 64,
      intermediateSize: 128,
      numLayers: 2,
      numHeads: 4,
      numKvHeads: 2,
      headDim: 16,
      maxPositionEmbeddings: 32768,
      ropeTheta: 1000000,
      rmsNormEps: 1e-6,
    },
    vision: { imageSize: 64, patchSize: 16, backboneChannels: 32, mmHiddenSize: 96 },
    embedTokens: { rank: 8, storage: 'int8' },
    lmHead: { rank: 8, storage: 'int8' },
    logitStd: 6,
  },
} as const satisfies Record<string, ModelPreset>;

export type PresetName = keyof typeof PRESETS;

export function numImageTokens(vision: VisionDims): number {
  const side = Math.floor(vision.imageSize / vision.patchSize);
  return side * side;
}

/** Rejects shapes the graphs cannot express, before any file is written. */
export function validatePreset(p: ModelPreset): void {
  const t = p.text;
  const problems: string[] = [];
  if (t.numHeads % t.numKvHeads !== 0) problems.push('numHeads must be a multiple of numKvHeads');
  if (t.headDim % 2 !== 0) problems.push('headDim must be even (rotate-half RoPE)');
  if (p.vision.imageSize % p.vision.patchSize !== 0) problems.push('imageSize must be a multiple of patchSize');
  for (const [name, lr] of [['embedTokens', p.embedTokens], ['lmHead', p.lmHead]] as const) {
    if (lr && (!Number.isInteger(lr.rank) || lr.rank < 1)) problems.push(`${name}.rank must be a positive integer`);
  }
  if (problems.length > 0) throw new Error(`invalid preset: ${problems.join('; ')}`);
}
