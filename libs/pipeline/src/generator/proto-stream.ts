/**
 * Streaming ModelProto encoding. protobufjs encodes a message in one buffer, so a
 * 1 GB model would sit in memory twice (the weights, then the encoded copy). Here
 * every part but the initializers' raw bytes is encoded by protobufjs, and each
 * initializer's bytes are produced only when the writer reaches it. Fields are
 * emitted in field-number order, exactly as protobufjs would, so the bytes equal a
 * one-shot `ModelProto.encode` of the same model.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

/** protobuf's hard parse limit (INT32_MAX bytes): larger models need ONNX external data. */
export const PROTOBUF_LIMIT_BYTES = 2 ** 31 - 1;

/** Initializer payload: bytes already made, or a producer called while the file is written. */
export interface TensorPayload {
  byteLength: number;
  produce(): Uint8Array;
}

export interface StreamedInitializer {
  name: string;
  dataType: number;
  dims: readonly number[];
  payload: TensorPayload;
}

/** A model whose size is known before any weight is produced. */
export interface EncodedModel {
  byteLength: number;
  /** Yields the file's bytes in order; weights are produced one tensor at a time. */
  chunks(): Generator<Uint8Array>;
}

function varint(value: number): number[] {
  const out: number[] = [];
  let v = value;
  // Division, not bit shifts: lengths may pass 2^31.
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

/** Tag and length of a length-delimited field (wire type 2). */
function fieldPrefix(field: number, length: number): Uint8Array {
  return Uint8Array.from([...varint(field * 8 + 2), ...varint(length)]);
}

const GRAPH_INITIALIZER_FIELD = 5;
const MODEL_GRAPH_FIELD = 7;
const TENSOR_RAW_DATA_FIELD = 9;

interface InitializerParts {
  prefix: Uint8Array;
  header: Uint8Array;
  rawPrefix: Uint8Array;
  payload: TensorPayload;
}

function initializerParts(t: StreamedInitializer): InitializerParts {
  // raw_data (9) is the highest field set, so header + raw_data is field order.
  const header = onnx.TensorProto.encode({ name: t.name, dataType: t.dataType, dims: [...t.dims] }).finish();
  const rawPrefix = fieldPrefix(TENSOR_RAW_DATA_FIELD, t.payload.byteLength);
  const tensorLength = header.length + rawPrefix.length + t.payload.byteLength;
  return { prefix: fieldPrefix(GRAPH_INITIALIZER_FIELD, tensorLength), header, rawPrefix, payload: t.payload };
}

export interface ModelParts {
  irVersion: number;
  producerName: string;
  producerVersion: string;
  opsetImport: onnxProto.onnx.IOperatorSetIdProto[];
  graphName: string;
  nodes: onnxProto.onnx.INodeProto[];
  initializers: readonly StreamedInitializer[];
  inputs: onnxProto.onnx.IValueInfoProto[];
  outputs: onnxProto.onnx.IValueInfoProto[];
}

export function streamModel(m: ModelParts): EncodedModel {
  // GraphProto field order: node (1), name (2), initializer (5), input (11), output (12).
  const graphHead = onnx.GraphProto.encode({ node: m.nodes, name: m.graphName }).finish();
  const graphTail = onnx.GraphProto.encode({ input: m.inputs, output: m.outputs }).finish();
  const inits = m.initializers.map(initializerParts);
  const initBytes = inits.reduce(
    (sum, p) => sum + p.prefix.length + p.header.length + p.rawPrefix.length + p.payload.byteLength,
    0,
  );
  const graphLength = graphHead.length + initBytes + graphTail.length;
  // ModelProto field order: ir_version (1), producer (2, 3), graph (7), opset_import (8).
  const modelHead = onnx.ModelProto.encode({
    irVersion: m.irVersion,
    producerName: m.producerName,
    producerVersion: m.producerVersion,
  }).finish();
  const graphPrefix = fieldPrefix(MODEL_GRAPH_FIELD, graphLength);
  const modelTail = onnx.ModelProto.encode({ opsetImport: m.opsetImport }).finish();
  const byteLength = modelHead.length + graphPrefix.length + graphLength + modelTail.length;
  return {
    byteLength,
    *chunks() {
      yield modelHead;
      yield graphPrefix;
      yield graphHead;
      for (const p of inits) {
        yield p.prefix;
        yield p.header;
        yield p.rawPrefix;
        const raw = p.payload.produce();
        if (raw.length !== p.payload.byteLength) {
          throw new Error(`initializer produced ${raw.length} bytes, declared ${p.payload.byteLength}`);
        }
        yield raw;
      }
      yield graphTail;
      yield modelTail;
    },
  };
}

/** The whole model in one buffer (small graphs, tests). */
export function concatChunks(model: EncodedModel): Uint8Array {
  const out = new Uint8Array(model.byteLength);
  let offset = 0;
  for (const c of model.chunks()) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}
