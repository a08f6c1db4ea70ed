/**
 * onnx/vision_encoder.onnx: pixel_values → image_features, one row per image token.
 * A stand-in for FastViTHD + projector with the same cost shape: a patchifying
 * conv stem, stride-2 conv stages that widen the channels, then the "mlp2x_gelu"
 * projector into the text hidden size.
 */
import { type EncodedModel } from './proto-stream.js';
import { GraphBuilder, type Precision } from './onnx-builder.js';
import { gelu, linear } from './layers.js';
import { numImageTokens, stemStride, type ModelPreset } from './presets.js';
import type { WeightSource } from './rng.js';

/**
 * Multiply-adds of one image through the encoder (convs + projector; norms and
 * activations are a rounding error). FLOPs ≈ 2 × this.
 */
export function visionMacs(p: ModelPreset): number {
  const { imageSize: S, stages, mmHiddenSize: M } = p.vision;
  const H = p.text.hiddenSize;
  const stride = stemStride(p.vision);
  let side = S / stride;
  let macs = side * side * (stages[0] ?? 0) * 3 * stride * stride;
  for (let i = 1; i < stages.length; i++) {
    side /= 2;
    macs += side * side * (stages[i] ?? 0) * (stages[i - 1] ?? 0) * 4;
  }
  const N = numImageTokens(p.vision);
  return macs + N * M * (stages.at(-1) ?? 0) + N * M * H + N * H * H;
}

/** A conv with bias; weights std = gain / sqrt(fan-in), so unit-variance inputs stay near unit variance. */
function conv(g: GraphBuilder, w: WeightSource, x: string, name: string, cin: number, cout: number, k: number, gain: number): string {
  const fanIn = cin * k * k;
  const weight = g.weight(`${name}.weight`, [cout, cin, k, k], w.normal(`${name}.weight`, cout * fanIn, gain / Math.sqrt(fanIn)));
  const bias = g.weight(`${name}.bias`, [cout], w.normal(`${name}.bias`, cout, 0.1));
  return g.op('Conv', [x, weight, bias], { kernel_shape: [k, k], strides: [k, k] });
}

/**
 * pixel_values is float32 in every variant: transformers.js feeds the
 * processor's float32 tensor to the vision session unchanged (and
 * transformers.js's own fp16 conversion keeps float32 graph inputs), so a
 * float16 variant casts it on entry.
 */
export function buildVisionEncoder(p: ModelPreset, w: WeightSource, precision?: Precision): EncodedModel {
  const { imageSize: S, stages, mmHiddenSize: M } = p.vision;
  const H = p.text.hiddenSize;
  const N = numImageTokens(p.vision);
  const g = new GraphBuilder('vision_encoder', precision);
  const pixels = g.toAct(g.input('pixel_values', 'float32', ['batch_size', 3, S, S]));

  // Patchify: kernel = stride, so each output pixel sees exactly one patch.
  const P = stemStride(p.vision);
  const C = stages[0] ?? 0;
  const fanIn = 3 * P * P;
  const patchW = w.normal('vision_tower.patch_embed.weight', C * fanIn, 3 / Math.sqrt(fanIn));
  // The processor feeds pixels in [0, 1] (mean 0, std 1 normalisation); the bias
  // recentres them at 0.5 so patch content, not overall brightness, dominates.
  const patchB = w.normal('vision_tower.patch_embed.bias', C, 0.5);
  for (let c = 0; c < C; c++) {
    let sum = 0;
    for (let i = 0; i < fanIn; i++) sum += patchW[c * fanIn + i] ?? 0;
    patchB[c] = (patchB[c] ?? 0) - 0.5 * sum;
  }
  let x = g.op('Conv', [
    pixels,
    g.weight('vision_tower.patch_embed.weight', [C, 3, P, P], patchW),
    g.weight('vision_tower.patch_embed.bias', [C], patchB),
  ], { kernel_shape: [P, P], strides: [P, P] });

  // Each stage halves the grid and widens the channels (2×2 patch merging).
  for (let i = 1; i < stages.length; i++) {
    x = conv(g, w, gelu(g, x), `vision_tower.stages.${i}.downsample`, stages[i - 1] ?? 0, stages[i] ?? 0, 2, Math.SQRT2);
  }

  // 1×1 conv = per-token channel mixing into the backbone's output width.
  const last = stages.at(-1) ?? 0;
  const mixW = w.normal('vision_tower.head.weight', M * last, Math.SQRT2 / Math.sqrt(last));
  const mixed = g.op('Conv', [
    gelu(g, x),
    g.weight('vision_tower.head.weight', [M, last, 1, 1], mixW),
    g.weight('vision_tower.head.bias', [M], w.normal('vision_tower.head.bias', M, 0.1)),
  ], { kernel_shape: [1, 1] });

  // [B, M, S/P, S/P] → [B, N, M]: row-major over the patch grid, like a ViT token order.
  const tokens = g.op('Transpose', [g.op('Reshape', [mixed, g.i64([0, M, N])])], { perm: [0, 2, 1] });

  const h = gelu(g, linear(g, w, tokens, 'mm_projector.0', M, H, { gain: 1, biasStd: 0.1 }));
  const features = linear(g, w, h, 'mm_projector.2', H, H, { gain: Math.SQRT2, biasStd: 0.1 });
  g.output('image_features', features, g.act, ['batch_size', N, H]);
  return g.finish();
}
