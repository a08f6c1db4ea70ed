import type * as ort from 'onnxruntime-node';
import { allocLike, i64, kvData, kvTensor, releaseArray, type KvArray } from './tensors';

export interface KvShape {
  layers: number;
  heads: number;
  headDim: number;
}

const KINDS = ['key', 'value'] as const;

/**
 * The KV cache of the sequences decoded together: per layer, key and value
 * `[rows, heads, length, headDim]`, left-padded so that every row ends at the
 * same column, with a mask saying which columns are real for each row.
 * Joining and leaving copy the cache once; decode steps adopt the decoder's
 * `present` outputs without copying. Arrays the batch stops using are freed
 * at once (`releaseArray`): a real model's cache is megabytes per row and
 * step, too much to leave to the garbage collector.
 */
export class KvBatch {
  private constructor(
    readonly shape: KvShape,
    /** `[layer][key|value]` arrays. */
    private data: KvArray[][],
    /** Per row, 1 for real columns and 0 for padding. */
    private masks: Uint8Array[],
    private len: number,
  ) {}

  /** The cache a single sequence's prefill produced. */
  static fromPresent(shape: KvShape, out: ort.InferenceSession.OnnxValueMapType, length: number): KvBatch {
    const data: KvArray[][] = [];
    for (let l = 0; l < shape.layers; l++) data.push(KINDS.map((k) => kvData(present(out, l, k))));
    return new KvBatch(shape, data, [new Uint8Array(length).fill(1)], length);
  }

  get rows(): number {
    return this.masks.length;
  }

  /** Copies of the first `columns` positions of a one-row cache (`[layer][key|value]`), e.g. a shared prompt prefix. */
  prefix(columns: number): KvArray[][] {
    const { heads, headDim } = this.shape;
    return this.data.map((layer) =>
      layer.map((a) => {
        const out = allocLike(a, heads * columns * headDim);
        for (let h = 0; h < heads; h++) out.set(a.subarray(h * this.len * headDim, (h * this.len + columns) * headDim), h * columns * headDim);
        return out;
      }),
    );
  }

  /** Past feeds for one sequence from a stored prefix (see `prefix`). */
  static prefixFeeds(shape: KvShape, prefix: KvArray[][], columns: number): Record<string, ort.Tensor> {
    const feeds: Record<string, ort.Tensor> = {};
    for (let l = 0; l < shape.layers; l++) {
      for (const [i, k] of KINDS.entries()) feeds[`past_key_values.${l}.${k}`] = kvTensor(prefix[l]?.[i] as KvArray, [1, shape.heads, columns, shape.headDim]);
    }
    return feeds;
  }

  get length(): number {
    return this.len;
  }

  /** Past feeds for the decoder. */
  pastFeeds(): Record<string, ort.Tensor> {
    const feeds: Record<string, ort.Tensor> = {};
    const dims = [this.rows, this.shape.heads, this.len, this.shape.headDim];
    for (let l = 0; l < this.shape.layers; l++) {
      for (const [i, k] of KINDS.entries()) feeds[`past_key_values.${l}.${k}`] = kvTensor(this.data[l]?.[i] as KvArray, dims);
    }
    return feeds;
  }

  /** `attention_mask` for a step that adds `extra` real columns to every row. */
  attentionMask(extra: number): ort.Tensor {
    const width = this.len + extra;
    const values = new Array<number>(this.rows * width);
    for (let r = 0; r < this.rows; r++) {
      const m = this.masks[r] as Uint8Array;
      for (let c = 0; c < this.len; c++) values[r * width + c] = m[c] as number;
      for (let c = this.len; c < width; c++) values[r * width + c] = 1;
    }
    return i64(values, [this.rows, width]);
  }

  /** Takes the decoder's `present` outputs after a step that added `added` columns. */
  adopt(out: ort.InferenceSession.OnnxValueMapType, added: number): void {
    this.release();
    for (let l = 0; l < this.shape.layers; l++) this.data[l] = KINDS.map((k) => kvData(present(out, l, k)));
    this.masks = this.masks.map((m) => {
      const grown = new Uint8Array(m.length + added).fill(1);
      grown.set(m);
      return grown;
    });
    this.len += added;
  }

  /** Appends another batch's rows, left-padding the shorter side; `other` is used up. */
  join(other: KvBatch): void {
    const width = Math.max(this.len, other.len);
    const data: KvArray[][] = [];
    for (let l = 0; l < this.shape.layers; l++) {
      data.push(
        KINDS.map((_, i) => {
          const a = this.data[l]?.[i] as KvArray;
          const b = other.data[l]?.[i] as KvArray;
          const out = allocLike(a, (this.rows + other.rows) * this.shape.heads * width * this.shape.headDim);
          this.copyRows(a, this.len, out, width, 0, range(this.rows));
          this.copyRows(b, other.len, out, width, this.rows, range(other.rows));
          return out;
        }),
      );
    }
    this.release();
    other.release();
    this.data = data;
    this.masks = [...this.masks.map((m) => pad(m, width)), ...other.masks.map((m) => pad(m, width))];
    this.len = width;
  }

  /** Drops rows (finished or cancelled sequences), then padding columns no row needs any more. */
  remove(rows: readonly number[]): void {
    if (rows.length === 0) return;
    const gone = new Set(rows);
    const keep = range(this.rows).filter((r) => !gone.has(r));
    const masks = keep.map((r) => this.masks[r] as Uint8Array);
    // Leading columns that are padding in every remaining row carry nothing.
    let skip = this.len;
    for (const m of masks) skip = Math.min(skip, m.indexOf(1) < 0 ? this.len : m.indexOf(1));
    if (keep.length === 0) skip = 0;
    const width = this.len - skip;
    const old = this.data;
    this.data = this.data.map((layer) =>
      layer.map((a) => {
        const out = allocLike(a, keep.length * this.shape.heads * width * this.shape.headDim);
        this.copyRows(a, this.len, out, width, 0, keep, skip);
        return out;
      }),
    );
    for (const layer of old) for (const a of layer) releaseArray(a);
    this.masks = masks.map((m) => m.slice(skip));
    this.len = width;
  }

  /** Frees the arrays the batch holds now (it is about to replace them). */
  private release(): void {
    for (const layer of this.data) for (const a of layer) releaseArray(a);
  }

  /**
   * Copies `rows` of `src` (`srcLen` columns) into `dst` (`dstLen` columns)
   * starting at destination row `firstDst`, right-aligned, skipping the first
   * `skip` source columns.
   */
  private copyRows(src: KvArray, srcLen: number, dst: KvArray, dstLen: number, firstDst: number, rows: number[], skip = 0): void {
    const { heads, headDim } = this.shape;
    const cols = srcLen - skip;
    for (const [i, r] of rows.entries()) {
      for (let h = 0; h < heads; h++) {
        const from = ((r * heads + h) * srcLen + skip) * headDim;
        const to = (((firstDst + i) * heads + h) * dstLen + (dstLen - cols)) * headDim;
        dst.set(src.subarray(from, from + cols * headDim), to);
      }
    }
  }
}

function present(out: ort.InferenceSession.OnnxValueMapType, layer: number, kind: string): ort.Tensor {
  const t = out[`present.${layer}.${kind}`];
  if (!t) throw new Error(`decoder returned no present.${layer}.${kind}`);
  return t;
}

function pad(mask: Uint8Array, width: number): Uint8Array {
  const out = new Uint8Array(width);
  out.set(mask, width - mask.length);
  return out;
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
