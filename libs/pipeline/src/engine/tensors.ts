import * as ort from 'onnxruntime-node';
import { float16Input } from './sessions';

/** Element types the FastVLM exports use for activations and the KV cache. */
export type FloatType = 'float32' | 'float16';
/** KV cache storage: float32, or float16 as onnxruntime hands it out. */
export type KvArray = Float32Array | Uint16Array | Float16Array;

export const i64 = (values: ArrayLike<number>, dims: number[]): ort.Tensor =>
  new ort.Tensor('int64', BigInt64Array.from(values, (v) => BigInt(v)), dims);

/** Float32 copy (or view) of a float tensor's data, whatever its element type. */
export function toFloat32(t: ort.Tensor): Float32Array {
  if (t.type === 'float32') return t.data as Float32Array;
  if (t.type === 'float16') {
    const d = t.data as Uint16Array | Float16Array;
    const half = d instanceof Float16Array ? d : new Float16Array(d.buffer, d.byteOffset, d.length);
    return Float32Array.from(half);
  }
  throw new Error(`expected a float tensor, got ${t.type}`);
}

/** A tensor of `type` from float32 values (converted to half precision when asked). */
export function floatTensor(type: FloatType, data: Float32Array, dims: number[]): ort.Tensor {
  if (type === 'float32') return new ort.Tensor('float32', data, dims);
  return float16Input(Float16Array.from(data), dims);
}

/** The declared element type of a session input (float32 when the session does not say, e.g. test doubles). */
export function inputType(session: ort.InferenceSession, name: string): FloatType {
  const meta = (session.inputMetadata as readonly ort.InferenceSession.ValueMetadata[] | undefined)?.find((m) => m.name === name);
  return meta?.isTensor && meta.type === 'float16' ? 'float16' : 'float32';
}

/** An empty array of the same kind as `like`. */
export function allocLike(like: KvArray, length: number): KvArray {
  if (like instanceof Float32Array) return new Float32Array(length);
  if (like instanceof Float16Array) return new Float16Array(length);
  return new Uint16Array(length);
}

export function kvTensor(data: KvArray, dims: number[]): ort.Tensor {
  if (data instanceof Float32Array) return new ort.Tensor('float32', data, dims);
  return float16Input(data, dims);
}

export function kvData(t: ort.Tensor): KvArray {
  if (t.type === 'float32') return t.data as Float32Array;
  if (t.type === 'float16') return t.data as Uint16Array | Float16Array;
  throw new Error(`unexpected KV cache element type ${t.type}`);
}

/**
 * Frees an output tensor's memory at once instead of at the next major GC,
 * by detaching its ArrayBuffer (ArrayBuffer.prototype.transfer). The
 * decoder's logits cover every input position (hundreds of MB for a real
 * prompt's prefill); left to the GC, they pile up as external memory and
 * force frequent full collections that stall decoding. Only for a tensor
 * that owns its whole buffer and that nothing reads afterwards.
 */
export function releaseNow(t: ort.Tensor | undefined): void {
  releaseArray(t?.data);
}

/** `releaseNow` for a typed array: detaches its buffer when the array covers all of it. */
export function releaseArray(data: unknown): void {
  if (!ArrayBuffer.isView(data)) return;
  const buffer = data.buffer;
  if (!(buffer instanceof ArrayBuffer) || data.byteOffset !== 0 || data.byteLength !== buffer.byteLength) return;
  (buffer as ArrayBuffer & { transfer(length: number): ArrayBuffer }).transfer(0);
}
