import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { releaseArray, releaseNow } from './tensors';

describe('releasing output memory at once', () => {
  it('detaches the buffer of a tensor that owns all of it', () => {
    const t = new ort.Tensor('float32', new Float32Array(1024), [32, 32]);
    const buffer = t.data.buffer;
    releaseNow(t);
    expect(buffer.byteLength).toBe(0);
  });

  it('leaves views into a larger buffer, and anything that is not a typed array, alone', () => {
    const whole = new Float32Array(1024);
    releaseArray(whole.subarray(0, 512));
    expect(whole.length).toBe(1024);
    expect(() => releaseArray(undefined)).not.toThrow();
    expect(() => releaseNow(undefined)).not.toThrow();
  });
});
