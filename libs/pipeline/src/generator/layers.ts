/** Building blocks shared by the graphs: norms, projections, activations. */
import type { GraphBuilder } from './onnx-builder.js';
import type { WeightSource } from './rng.js';

/** x / sqrt(mean(x²) + eps) over the last axis. */
export function rmsNormalize(g: GraphBuilder, x: string, eps: number): string {
  const meanSq = g.op('ReduceMean', [g.op('Mul', [x, x])], { axes: [-1], keepdims: 1 });
  return g.op('Div', [x, g.op('Sqrt', [g.op('Add', [meanSq, g.f32(eps)])])]);
}

/** Qwen2 RMSNorm: rmsNormalize(x) · weight. */
export function rmsNorm(g: GraphBuilder, w: WeightSource, x: string, name: string, size: number, eps: number): string {
  // Weights near 1 (not exactly 1) so every norm still carries seed-dependent information.
  const weight = g.weight(name, [size], w.normal(name, size, 0.05, 1));
  return g.op('Mul', [rmsNormalize(g, x, eps), weight]);
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
  const values = w.normal(weightName, inFeatures * outFeatures, spec.gain / Math.sqrt(inFeatures));
  const y = g.op('MatMul', [x, g.weight(weightName, [inFeatures, outFeatures], values)]);
  if (spec.biasStd === null) return y;
  const biasName = `${name}.bias`;
  return g.op('Add', [y, g.weight(biasName, [outFeatures], w.normal(biasName, outFeatures, spec.biasStd))]);
}

/** Exact (erf) GELU; the Gelu op only exists from opset 20. */
export function gelu(g: GraphBuilder, x: string): string {
  const erf = g.op('Erf', [g.op('Mul', [x, g.f32(Math.SQRT1_2)])]);
  return g.op('Mul', [g.op('Mul', [x, g.f32(0.5)]), g.op('Add', [erf, g.f32(1)])]);
}

export function silu(g: GraphBuilder, x: string): string {
  return g.op('Mul', [x, g.op('Sigmoid', [x])]);
}
