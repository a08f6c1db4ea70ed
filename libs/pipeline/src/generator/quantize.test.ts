import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { weightMatMul } from './layers.js';
import { GraphBuilder, toFloat16Bits, type MatMulScheme } from './onnx-builder.js';
import { dequantizeQ4, quantizeInt8, quantizeQ4 } from './quantize.js';
import { Rng } from './rng.js';

function randomMatrix(rows: number, cols: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: rows * cols }, () => rng.normal());
}

function matmul(x: Float32Array, w: Float32Array, M: number, K: number, N: number): Float32Array {
  const y = new Float32Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let k = 0; k < K; k++) {
      const a = x[m * K + k] ?? 0;
      for (let n = 0; n < N; n++) y[m * N + n] = (y[m * N + n] ?? 0) + a * (w[k * N + n] ?? 0);
    }
  }
  return y;
}

/** x [M, K] @ W [K, N] through one weightMatMul of `scheme`, run by onnxruntime. */
async function runMatMul(scheme: MatMulScheme, x: Float32Array, w: Float32Array, M: number, K: number, N: number): Promise<Float32Array> {
  const g = new GraphBuilder('matmul', { act: 'float32', matmul: scheme });
  const y = weightMatMul(g, g.input('x', 'float32', [M, K]), 'w', K, N, () => w);
  g.output('y', y, 'float32', [M, N]);
  const session = await ort.InferenceSession.create(g.encode());
  try {
    return (await session.run({ x: new ort.Tensor('float32', x, [M, K]) })).y?.data as Float32Array;
  } finally {
    await session.release();
  }
}

const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - (b[i] ?? 0))), 0);

describe('4-bit block quantization', () => {
  it('rounds every weight to within half a step of its block scale', () => {
    const [K, N] = [96, 7];
    const w = randomMatrix(K, N, 1);
    const q = quantizeQ4(w, K, N);
    const back = dequantizeQ4(q, K, N);
    for (let k = 0; k < K; k++) {
      for (let n = 0; n < N; n++) {
        const scale = q.scales[n * 3 + Math.floor(k / 32)] ?? 0;
        expect(Math.abs((back[k * N + n] ?? 0) - (w[k * N + n] ?? 0))).toBeLessThanOrEqual(scale / 2 + 1e-6);
      }
    }
  });

  it('packs a [N, K] table row-wise exactly as the transposed [K, N] weight', () => {
    const [K, N] = [64, 5];
    const w = randomMatrix(K, N, 2);
    const t = new Float32Array(K * N);
    for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) t[n * K + k] = w[k * N + n] ?? 0;
    const a = quantizeQ4(w, K, N, 32, 'kn');
    const b = quantizeQ4(t, K, N, 32, 'nk');
    expect(b.packed).toEqual(a.packed);
    expect(b.scales).toEqual(a.scales);
  });

  it('lays weights out as onnxruntime\'s MatMulNBits reads them, padding a partial last block', async () => {
    const [M, K, N] = [3, 80, 6];
    const x = randomMatrix(M, K, 3);
    const w = randomMatrix(K, N, 4);
    const expected = matmul(x, dequantizeQ4(quantizeQ4(w, K, N), K, N), M, K, N);
    expect(maxAbsDiff(await runMatMul('q4', x, w, M, K, N), expected)).toBeLessThan(1e-4);
  });
});

describe('8-bit weights', () => {
  // Inputs on a 0.01 grid in [0, 2.55] quantize exactly (scale 0.01, zero point 0),
  // so the integer MatMul must equal x @ dequantized W up to float rounding.
  const [M, K, N] = [2, 40, 5];
  const x = Float32Array.from({ length: M * K }, (_, i) => ((i * 37) % 256) / 100);
  x[0] = 2.55;
  x[1] = 0;
  const w = randomMatrix(K, N, 5);

  for (const kind of ['int8', 'uint8'] as const) {
    it(`runs ${kind} codes through DynamicQuantizeLinear + MatMulInteger as x @ dequantized W`, async () => {
      const q = quantizeInt8(w, K, N, kind);
      const deq = new Float32Array(K * N);
      for (let i = 0; i < K * N; i++) {
        const code = kind === 'int8' ? ((q.codes[i] ?? 0) << 24) >> 24 : (q.codes[i] ?? 0);
        deq[i] = (code - q.zeroPoint) * (q.scales[i % N] ?? 0);
      }
      expect(maxAbsDiff(deq, w)).toBeLessThan(Math.max(...q.scales) / 2 + 1e-6);
      expect(maxAbsDiff(await runMatMul(kind, x, w, M, K, N), matmul(x, deq, M, K, N))).toBeLessThan(1e-4);
    });
  }
});

describe('float16 storage', () => {
  it('rounds like the platform\'s Float16Array (nearest even, subnormals, overflow, NaN)', () => {
    const values = [0, -0, 1, -2.5, 65504, 65520, 1e6, -1e6, 6e-8, 3e-8, 1e-5, 0.1, 1 / 3, Number.NaN, Infinity];
    const rng = new Rng(6);
    for (let i = 0; i < 2000; i++) values.push(rng.normal() * 10 ** Math.floor(rng.uniform() * 12 - 8));
    const platform = new Uint16Array(Float16Array.from(values).buffer);
    expect(values.map(toFloat16Bits)).toEqual(Array.from(platform));
  });
});
