import onnxProto from 'onnx-proto';
import { describe, expect, it } from 'vitest';
import { GraphBuilder } from './onnx-builder.js';
import { concatChunks } from './proto-stream.js';

const { onnx } = onnxProto;

function sampleGraph(): GraphBuilder {
  const g = new GraphBuilder('sample', { act: 'float16', matmul: 'q4' });
  const x = g.input('x', 'float16', ['batch', 64]);
  const w = g.lazyWeight('w', [64, 3], () => Float32Array.from({ length: 192 }, (_, i) => i / 100));
  g.output('y', g.op('Add', [g.op('MatMul', [x, w]), g.scalar(1)]), 'float16', ['batch', 3]);
  g.op('MatMulNBits', [x, g.initializer('packed', 'uint8', [3, 2, 16], new Uint8Array(96))], { K: 64, N: 3 }, '', 'com.microsoft');
  return g;
}

describe('streamed model encoding', () => {
  it('yields exactly the bytes protobufjs encodes for the same ModelProto', () => {
    const bytes = sampleGraph().encode();
    const decoded = onnx.ModelProto.decode(bytes);
    // protobufjs hands out a Buffer; compare the bytes, not the classes.
    expect(new Uint8Array(onnx.ModelProto.encode(decoded).finish())).toEqual(bytes);
    expect(decoded.graph?.initializer?.map((t) => t.name)).toEqual(['w', 'const_0', 'packed']);
    expect(decoded.opsetImport?.map((o) => [o.domain, Number(o.version)])).toEqual([['', 17], ['com.microsoft', 1]]);
  });

  it('knows its size before producing any weight', () => {
    let produced = 0;
    const g = new GraphBuilder('lazy');
    const x = g.input('x', 'float32', [2]);
    g.output('y', g.op('Mul', [x, g.lazyWeight('w', [2], () => (produced++, Float32Array.of(1, 2)))]), 'float32', [2]);
    const model = g.finish();
    expect(produced).toBe(0);
    expect(concatChunks(model)).toHaveLength(model.byteLength);
    expect(produced).toBe(1);
  });

  it('fails loudly when a producer breaks its declared size', () => {
    const g = new GraphBuilder('broken');
    g.lazyInitializer('w', 'float32', [4], () => new Uint8Array(8));
    expect(() => concatChunks(g.finish())).toThrow(/produced 8 bytes, declared 16/);
  });
});
