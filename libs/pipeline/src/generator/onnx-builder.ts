/**
 * A small ONNX graph builder over the `onnx-proto` protobuf classes. Node and
 * value names come from a counter, so the same build calls always encode to the
 * same bytes.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
type TensorProtoInit = onnxProto.onnx.ITensorProto;
type NodeProtoInit = onnxProto.onnx.INodeProto;
type ValueInfoInit = onnxProto.onnx.IValueInfoProto;
type AttributeInit = onnxProto.onnx.IAttributeProto;

export const DataType = onnx.TensorProto.DataType;
export type ElemType = 'float32' | 'float16' | 'int8' | 'int64' | 'bool';

const ELEM_TYPES: Record<ElemType, number> = {
  float32: DataType.FLOAT,
  float16: DataType.FLOAT16,
  int8: DataType.INT8,
  int64: DataType.INT64,
  bool: DataType.BOOL,
};

/** A dimension: a fixed size, or a symbolic name that runtimes (and transformers.js) read back. */
export type Dim = number | string;
export type AttrValue = number | number[] | string | { float: number };

/** ir_version 8 pairs with opset 17 (ONNX 1.12). */
export const IR_VERSION = 8;
export const OPSET = 17;

/** Little-endian raw bytes regardless of the host byte order. */
export function float32Bytes(values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i] ?? 0, true);
  return out;
}

function int64Bytes(values: readonly number[]): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setBigInt64(i * 8, BigInt(v), true));
  return out;
}

/** IEEE binary16 bits of a float (round to nearest even), for float16 storage. */
export function toFloat16Bits(value: number): number {
  const f32 = new Float32Array([value]);
  const bits = new Uint32Array(f32.buffer)[0] ?? 0;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    if (rem > half || (rem === half && (r & 1) === 1)) r++;
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1) === 1)) r++;
  return sign | r;
}

export function float16Bytes(values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length * 2);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setUint16(i * 2, toFloat16Bits(values[i] ?? 0), true);
  return out;
}

function attribute(name: string, value: AttrValue): AttributeInit {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(value) };
  if (typeof value === 'number') return { name, type: T.INT, i: value };
  if (Array.isArray(value)) return { name, type: T.INTS, ints: value };
  return { name, type: T.FLOAT, f: value.float };
}

function valueInfo(name: string, elem: ElemType, dims: readonly Dim[]): ValueInfoInit {
  return {
    name,
    type: {
      tensorType: {
        elemType: ELEM_TYPES[elem],
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

export class GraphBuilder {
  private readonly nodes: NodeProtoInit[] = [];
  private readonly initializers: TensorProtoInit[] = [];
  private readonly inputs: ValueInfoInit[] = [];
  private readonly outputs: ValueInfoInit[] = [];
  private readonly constCache = new Map<string, string>();
  private counter = 0;

  constructor(private readonly name: string) {}

  input(name: string, elem: ElemType, dims: readonly Dim[]): string {
    this.inputs.push(valueInfo(name, elem, dims));
    return name;
  }

  /** Declares a graph output; `value` is renamed to `name` through Identity when they differ. */
  output(name: string, value: string, elem: ElemType, dims: readonly Dim[]): void {
    if (value !== name) this.nodes.push({ opType: 'Identity', input: [value], output: [name], name: `${name}/Identity` });
    this.outputs.push(valueInfo(name, elem, dims));
  }

  /** A stored weight: `bytes` are little-endian raw data of `elem` values. */
  initializer(name: string, elem: ElemType, dims: readonly number[], bytes: Uint8Array): string {
    this.initializers.push({ name, dataType: ELEM_TYPES[elem], dims: [...dims], rawData: bytes });
    return name;
  }

  weight(name: string, dims: readonly number[], values: Float32Array): string {
    return this.initializer(name, 'float32', dims, float32Bytes(values));
  }

  /** Shared int64 constant (shapes, axes, indices); a scalar when `dims` is []. */
  i64(values: readonly number[], dims: readonly number[] = [values.length]): string {
    return this.cachedConst(`i64:${dims.join('x')}:${values.join(',')}`, 'int64', dims, int64Bytes(values));
  }

  /** Shared float32 constant, a scalar by default. */
  f32(value: number): string {
    return this.cachedConst(`f32:${value}`, 'float32', [], float32Bytes(new Float32Array([value])));
  }

  private cachedConst(key: string, elem: ElemType, dims: readonly number[], bytes: Uint8Array): string {
    const hit = this.constCache.get(key);
    if (hit !== undefined) return hit;
    const name = `const_${this.constCache.size}`;
    this.constCache.set(key, name);
    return this.initializer(name, elem, dims, bytes);
  }

  /** Adds one node and returns its single output's name. */
  op(opType: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}, hint = ''): string {
    const [out] = this.opMulti(opType, inputs, 1, attrs, hint);
    if (out === undefined) throw new Error(`${opType} produced no output`);
    return out;
  }

  opMulti(
    opType: string,
    inputs: readonly string[],
    outputCount: number,
    attrs: Record<string, AttrValue> = {},
    hint = '',
  ): string[] {
    const id = this.counter++;
    const base = `${hint ? `${hint}/` : ''}${opType}_${id}`;
    const outputs = Array.from({ length: outputCount }, (_, i) => `${base}_out${i}`);
    this.nodes.push({
      name: base,
      opType,
      input: [...inputs],
      output: outputs,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outputs;
  }

  /** Serialises the graph as a complete ModelProto. */
  encode(): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION,
      producerName: 'fastvlm-model-generator',
      producerVersion: '1',
      opsetImport: [{ domain: '', version: OPSET }],
      graph: {
        name: this.name,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}
