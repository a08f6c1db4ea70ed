/**
 * Weight quantizers for the generated variants, in the layouts onnxruntime's
 * quantized operators read. Weights arrive as [K, N] row-major (x @ W); every
 * scheme here is symmetric, so a zero weight stays exactly zero.
 */

/**
 * Where w[k, n] sits: 'kn' = k·N + n (a MatMul weight), 'nk' = n·K + k (an
 * embedding table [vocab, hidden] quantized in blocks along each row).
 */
export type WeightLayout = 'kn' | 'nk';

/** Block length along K for 4-bit weights (the `block_size` attribute); 32, as the real q4 exports use. */
export const Q4_BLOCK = 32;

export interface Q4Weights {
  /** [N, ceil(K / block), block / 2]: two 4-bit values per byte, the lower k in the low nibble. */
  packed: Uint8Array;
  /** [N * ceil(K / block)] per-block scales. */
  scales: Float32Array;
}

/**
 * MatMulNBits' layout, with no zero_points input: the operator then uses 8, so a
 * stored nibble q means (q - 8) · scale. Scale = max|w| / 7 keeps ±max exact in
 * [-7, 7]; -8 stays unused, which loses 1/16 of the range but never clips.
 * Padding past K is stored as 8 (zero), so it adds nothing to the product.
 */
export function quantizeQ4(w: Float32Array, K: number, N: number, block = Q4_BLOCK, layout: WeightLayout = 'kn'): Q4Weights {
  if (block % 2 !== 0) throw new Error('4-bit blocks must have an even length');
  const blocks = Math.ceil(K / block);
  const out: Q4Weights = { packed: new Uint8Array(N * blocks * (block / 2)), scales: new Float32Array(N * blocks) };
  if (layout === 'kn') quantizeQ4Columns(w, K, N, block, out);
  else quantizeQ4Rows(w, K, N, block, out);
  return out;
}

const nibble = (v: number, inv: number) => Math.max(0, Math.min(15, Math.round(v * inv) + 8));

/**
 * [K, N] weights: one k-block at a time over whole rows, so reads stay
 * sequential (a column walk over a 151936-wide lm_head misses the cache on
 * every element and takes several times longer).
 */
function quantizeQ4Columns(w: Float32Array, K: number, N: number, block: number, out: Q4Weights): void {
  const blocks = Math.ceil(K / block);
  const blob = block / 2;
  const inv = new Float32Array(N);
  for (let b = 0; b < blocks; b++) {
    const k0 = b * block;
    const k1 = Math.min(K, k0 + block);
    inv.fill(0);
    for (let k = k0; k < k1; k++) {
      for (let n = 0, row = k * N; n < N; n++) inv[n] = Math.max(inv[n] ?? 0, Math.abs(w[row + n] ?? 0));
    }
    for (let n = 0; n < N; n++) {
      const scale = (inv[n] ?? 0) / 7;
      out.scales[n * blocks + b] = scale;
      inv[n] = scale > 0 ? 1 / scale : 0;
    }
    for (let i = 0; i < block; i++) {
      const k = k0 + i;
      const shift = (i % 2) * 4;
      for (let n = 0, row = k * N; n < N; n++) {
        const q = k < k1 ? nibble(w[row + n] ?? 0, inv[n] ?? 0) : 8;
        const at = (n * blocks + b) * blob + (i >> 1);
        out.packed[at] = (out.packed[at] ?? 0) | (q << shift);
      }
    }
  }
}

/** [N, K] tables (embedding rows): each row's blocks are contiguous already. */
function quantizeQ4Rows(w: Float32Array, K: number, N: number, block: number, out: Q4Weights): void {
  const blocks = Math.ceil(K / block);
  const blob = block / 2;
  for (let n = 0; n < N; n++) {
    for (let b = 0; b < blocks; b++) {
      const k0 = b * block;
      const k1 = Math.min(K, k0 + block);
      let max = 0;
      for (let k = k0; k < k1; k++) max = Math.max(max, Math.abs(w[n * K + k] ?? 0));
      const scale = max / 7;
      out.scales[n * blocks + b] = scale;
      const inv = scale > 0 ? 1 / scale : 0;
      const base = (n * blocks + b) * blob;
      for (let j = 0; j < blob; j++) {
        const lo = k0 + 2 * j < k1 ? nibble(w[n * K + k0 + 2 * j] ?? 0, inv) : 8;
        const hi = k0 + 2 * j + 1 < k1 ? nibble(w[n * K + k0 + 2 * j + 1] ?? 0, inv) : 8;
        out.packed[base + j] = lo | (hi << 4);
      }
    }
  }
}

/** What `quantizeQ4` stores, as float [K, N] again (tests, error estimates). */
export function dequantizeQ4(qw: Q4Weights, K: number, N: number, block = Q4_BLOCK): Float32Array {
  const blocks = Math.ceil(K / block);
  const out = new Float32Array(K * N);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const b = Math.floor(k / block);
      const i = k % block;
      const byte = qw.packed[(n * blocks + b) * (block / 2) + (i >> 1)] ?? 0;
      const nibble = i % 2 === 0 ? byte & 0x0f : byte >> 4;
      out[k * N + n] = (nibble - 8) * (qw.scales[n * blocks + b] ?? 0);
    }
  }
  return out;
}

export type Int8Kind = 'int8' | 'uint8';

export interface Int8Weights {
  /** [K, N] codes: int8 two's complement, or uint8 offset by 128. */
  codes: Uint8Array;
  /** [N] per-output-column scales: w ≈ (code - zeroPoint) · scale. */
  scales: Float32Array;
  zeroPoint: number;
}

/** Per-column symmetric 8-bit codes, the layout of MatMulInteger's B with a per-tensor zero point. */
export function quantizeInt8(w: Float32Array, K: number, N: number, kind: Int8Kind): Int8Weights {
  const scales = new Float32Array(N);
  for (let k = 0; k < K; k++) {
    for (let n = 0; n < N; n++) scales[n] = Math.max(scales[n] ?? 0, Math.abs(w[k * N + n] ?? 0));
  }
  // Signed weights use 7 bits, as onnxruntime's own quantizer does (reduce_range):
  // its u8·s8 kernel on AVX2 without VNNI adds pairs of products in int16
  // (vpmaddubsw), which saturates for codes past ±64 and gives wrong sums.
  const levels = kind === 'int8' ? 63 : 127;
  for (let n = 0; n < N; n++) scales[n] = (scales[n] ?? 0) / levels;
  const zeroPoint = kind === 'uint8' ? 128 : 0;
  const codes = new Uint8Array(K * N);
  for (let k = 0; k < K; k++) {
    for (let n = 0; n < N; n++) {
      const s = scales[n] ?? 0;
      const v = s > 0 ? Math.max(-levels, Math.min(levels, Math.round((w[k * N + n] ?? 0) / s))) : 0;
      // `& 0xff` turns a negative int8 into its two's-complement byte.
      codes[k * N + n] = (v + zeroPoint) & 0xff;
    }
  }
  return { codes, scales, zeroPoint };
}

/** Per-row 8-bit codes of a [rows, cols] table (embedding rows are gathered whole). */
export function quantizeRowsInt8(w: Float32Array, rows: number, cols: number, kind: Int8Kind): Int8Weights {
  const zeroPoint = kind === 'uint8' ? 128 : 0;
  const scales = new Float32Array(rows);
  const codes = new Uint8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let max = 0;
    for (let c = 0; c < cols; c++) max = Math.max(max, Math.abs(w[r * cols + c] ?? 0));
    const s = max / 127;
    scales[r] = s;
    for (let c = 0; c < cols; c++) {
      const v = s > 0 ? Math.max(-127, Math.min(127, Math.round((w[r * cols + c] ?? 0) / s))) : 0;
      codes[r * cols + c] = (v + zeroPoint) & 0xff;
    }
  }
  return { codes, scales, zeroPoint };
}
