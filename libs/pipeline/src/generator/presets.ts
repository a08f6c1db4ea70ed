/**
 * Model shapes as plain data. New shapes only need a new entry here; the size
 * tricks that make `tiny` small are options, not code paths specific to one preset.
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
  /**
   * Channel widths of the stand-in conv backbone: a patchifying stem into
   * stages[0], then one 2×2 stride-2 conv into each next width. The stem's
   * stride is patchSize / 2^(stages.length - 1), so the whole backbone
   * downsamples by patchSize.
   */
  stages: readonly number[];
  /** Backbone output width fed to the projector (`mm_hidden_size`). */
  mmHiddenSize: number;
}

export interface ModelPreset {
  text: TextDims;
  vision: VisionDims;
  /** null = full [vocab, hidden] tables, as in the real export (stored in the variant's format). */
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
    vision: { imageSize: 64, patchSize: 16, stages: [32], mmHiddenSize: 96 },
    embedTokens: { rank: 8, storage: 'int8' },
    lmHead: { rank: 8, storage: 'int8' },
    logitStd: 6,
  },
  /** Wide enough that the transformer layers, not the vocabulary factors, dominate the decoder file. */
  small: {
    text: {
      vocabSize: 151936,
      hiddenSize: 256,
      intermediateSize: 512,
      numLayers: 4,
      numHeads: 4,
      numKvHeads: 2,
      headDim: 64,
      maxPositionEmbeddings: 32768,
      ropeTheta: 1000000,
      rmsNormEps: 1e-6,
    },
    vision: { imageSize: 64, patchSize: 16, stages: [32, 64], mmHiddenSize: 96 },
    embedTokens: { rank: 8, storage: 'int8' },
    lmHead: { rank: 8, storage: 'int8' },
    logitStd: 6,
  },
  /**
   * The real FastVLM-0.5B shapes (Qwen2-0.5B text side, 1024 px images, 256
   * image tokens, 3072-wide vision features) with full vocabulary tables, for
   * honest timings. The backbone (64× downsampling, widths 64 → 1024, then a
   * 1×1 conv to 3072) is a stand-in for FastViTHD: see visionMacs().
   */
  'fastvlm-0.5b': {
    text: {
      vocabSize: 151936,
      hiddenSize: 896,
      intermediateSize: 4864,
      numLayers: 24,
      numHeads: 14,
      numKvHeads: 2,
      headDim: 64,
      maxPositionEmbeddings: 32768,
      ropeTheta: 1000000,
      rmsNormEps: 1e-6,
    },
    vision: { imageSize: 1024, patchSize: 64, stages: [64, 128, 256, 512, 1024], mmHiddenSize: 3072 },
    embedTokens: null,
    lmHead: null,
    logitStd: 6,
  },
} as const satisfies Record<string, ModelPreset>;

export type PresetName = keyof typeof PRESETS;

/** Stride (and kernel) of the patchifying stem; each later stage halves the grid. */
export function stemStride(vision: VisionDims): number {
  return vision.patchSize / 2 ** (vision.stages.length - 1);
}

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
  const v = p.vision;
  if (v.imageSize % v.patchSize !== 0) problems.push('imageSize must be a multiple of patchSize');
  if (v.stages.length === 0) problems.push('vision.stages needs at least one width');
  else if (!Number.isInteger(stemStride(v)) || stemStride(v) < 1) {
    problems.push(`patchSize must be a multiple of 2^${v.stages.length - 1} (one halving per stage after the first)`);
  }
  for (const [name, lr] of [['embedTokens', p.embedTokens], ['lmHead', p.lmHead]] as const) {
    if (lr && (!Number.isInteger(lr.rank) || lr.rank < 1)) problems.push(`${name}.rank must be a positive integer`);
  }
  if (problems.length > 0) throw new Error(`invalid preset: ${problems.join('; ')}`);
}
