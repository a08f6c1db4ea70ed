/**
 * onnx/vision_encoder.onnx: pixel_values → image_features, one row per image token.
 * A stand-in for FastViTHD + projector with the same cost shape: a patchifying
 * conv backbone, then the "mlp2x_gelu" projector into the text hidden size.
 */
import { GraphBuilder } from './onnx-builder.js';
import { gelu, linear } from './layers.js';
import { numImageTokens, type ModelPreset } from './presets.js';
import type { WeightSource } from './rng.js';

export function buildVisionEncoder(p: ModelPreset, w: WeightSource): Uint8Array {
  const { imageSize: S, patchSize: P, backboneChannels: C, mmHiddenSize: M } = p.vision;
  const H = p.text.hiddenSize;
  const N = numImageTokens(p.vision);
  const g = new GraphBuilder('vision_encoder');
  const pixels = g.input('pixel_values', 'float32', ['batch_size', 3, S, S]);

  // Patchify: kernel = stride = P, so each output pixel sees exactly one patch.
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
  const patches = g.op('Conv', [
    pixels,
    g.weight('vision_tower.patch_embed.weight', [C, 3, P, P], patchW),
    g.weight('vision_tower.patch_embed.bias', [C], patchB),
  ], { kernel_shape: [P, P], strides: [P, P] });

  // 1×1 conv = per-token channel mixing into the backbone's output width.
  const mixW = w.normal('vision_tower.head.weight', M * C, Math.SQRT2 / Math.sqrt(C));
  const mixed = g.op('Conv', [
    gelu(g, patches),
    g.weight('vision_tower.head.weight', [M, C, 1, 1], mixW),
    g.weight('vision_tower.head.bias', [M], w.normal('vision_tower.head.bias', M, 0.1)),
  ], { kernel_shape: [1, 1] });

  // [B, M, S/P, S/P] → [B, N, M]: row-major over the patch grid, like a ViT token order.
  const tokens = g.op('Transpose', [g.op('Reshape', [mixed, g.i64([0, M, N])])], { perm: [0, 2, 1] });

  const h = gelu(g, linear(g, w, tokens, 'mm_projector.0', M, H, { gain: 1, biasStd: 0.1 }));
  const features = linear(g, w, h, 'mm_projector.2', H, H, { gain: Math.SQRT2, biasStd: 0.1 });
  g.output('image_features', features, 'float32', ['batch_size', N, H]);
  return g.encode();
}
