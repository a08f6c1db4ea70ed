/** Building blocks shared by the graphs: norms, projections, activations. */
import { DataType, float32Bytes, floatBytes, MS_DOMAIN, type GraphBuilder } from './onnx-builder.js';
import { Q4_BLOCK, quantizeInt8, quantizeQ4 } from './quantize.js';
import type { WeightSource } from './rng.js';

/** x / sqrt(mean(x²) + eps) over the last axis. */
export function rmsNormalize(g: GraphBuilder, x: string, eps: number): string {
  const meanSq = g.op('ReduceMean', [g.op('Mul', [x, x])], { axes: [-1], keepdims: 1 });
  return g.op('Div', [x, g.op('Sqrt', [g.op('Add', [meanSq, g.scalar(eps)])])]);
}

/** Qwen2 RMSNorm: rmsNormalize(x) · weight. */
export function rmsNorm(g: GraphBuilder, w: WeightSource, x: string, name: string, size: number, eps: number): string {
  // Weights near 1 (not exactly 1) so every norm still carries seed-dependent information.
  const weight = g.weight(name, [size], w.normal(name, size, 0.05, 1));
  return g.op('Mul', [rmsNormalize(g, x, eps), weight]);
}

/** Hands one computed value to `uses` consumers, then lets it be collected. */
function shared<T>(make: () => T, uses: number): () => T {
  let value: T | undefined;
  let left = uses;
  return () => {
    value ??= make();
    const v = value;
    if (--left === 0) value = undefined;
    return v;
  };
}

/**
 * x [..., K] @ W [K, N] for a weight drawn by `make` when the file is written,
 * stored as the graph's precision says. Quantized weights are the float weights
 * rounded, so every variant of one seed computes approximately the same function.
 */
export function weightMatMul(g: GraphBuilder, x: string, name: string, K: number, N: number, make: () => Float32Array): string {
  const scheme = g.precision.matmul;
  switch (scheme) {
    case 'float':
      return g.op('MatMul', [x, g.lazyWeight(name, [K, N], make)]);
    case 'q4': {
      const q = shared(() => quantizeQ4(make(), K, N), 2);
      const blocks = Math.ceil(K / Q4_BLOCK);
      const packed = g.lazyInitializer(`${name}_Q4`, 'uint8', [N, blocks, Q4_BLOCK / 2], () => q().packed);
      const scales = g.lazyInitializer(`${name}_scales`, g.act, [N * blocks], () => floatBytes(q().scales, g.act));
      return g.op('MatMulNBits', [x, packed, scales], { K, N, bits: 4, block_size: Q4_BLOCK }, '', MS_DOMAIN);
    }
    case 'int8':
    case 'uint8': {
      // DynamicQuantizeLinear only reads float32, so 8-bit variants keep float32 activations.
      if (g.act !== 'float32') throw new Error(`${scheme} MatMuls need float32 activations`);
      const q = shared(() => quantizeInt8(make(), K, N, scheme), 2);
      const codes = g.lazyInitializer(`${name}_quantized`, scheme, [K, N], () => q().codes);
      const scale = g.lazyInitializer(`${name}_scale`, 'float32', [N], () => float32Bytes(q().scales));
      const [xq, xScale, xZero] = g.opMulti('DynamicQuantizeLinear', [x], 3);
      if (!xq || !xScale || !xZero) throw new Error('DynamicQuantizeLinear has three outputs');
      const ints = [xq, codes, xZero];
      if (scheme === 'uint8') ints.push(g.initializer(`${name}_zero_point`, 'uint8', [], Uint8Array.of(128)));
      const acc = g.op('Cast', [g.op('MatMulInteger', ints)], { to: DataType.FLOAT });
      return g.op('Mul', [acc, g.op('Mul', [xScale, scale])]);
    }
  }
}

export interface LinearSpec {
  /** Weight std = gain / sqrt(inFeatures): variance-preserving for unit-variance inputs when gain = 1. */
  gain: number;
  /** null = no bias; otherwise the bias std. */
  biasStd: number | null;
}

/** x [..., in] @ W [in, out] (+ b): weights stored [in, out] so no Transpose is needed. */
export function linear(
  g: GraphBuilder,
  w: WeightSource,
  x: string,
  name: string,
  inFeatures: number,
  outFeatures: number,
  spec: LinearSpec,
): string {
  const weightName = `${name}.weight`;
  const std = spec.gain / Math.sqrt(inFeatures);
  const y = weightMatMul(g, x, weightName, inFeatures, outFeatures, () => w.normal(weightName, inFeatures * outFeatures, std));
  if (spec.biasStd === null) return y;
  const biasName = `${name}.bias`;
  return g.op('Add', [y, g.weight(biasName, [outFeatures], w.normal(biasName, outFeatures, spec.biasStd))]);
}

/** Exact (erf) GELU; the Gelu op only exists from opset 20. */
export function gelu(g: GraphBuilder, x: string): string {
  const erf = g.op('Erf', [g.op('Mul', [x, g.scalar(Math.SQRT1_2)])]);
  return g.op('Mul', [g.op('Mul', [x, g.scalar(0.5)]), g.op('Add', [erf, g.scalar(1)])]);
}

export function silu(g: GraphBuilder, x: string): string {
  return g.op('Mul', [x, g.op('Sigmoid', [x])]);
}
