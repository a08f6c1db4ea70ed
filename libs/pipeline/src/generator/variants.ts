/**
 * The weight formats the generator writes, named and suffixed as in
 * onnx-community exports (engine/dtype.ts), and what each means for the graphs.
 */
import { DTYPE_SUFFIXES, type Dtype } from '../engine/dtype.js';
import type { Precision } from './onnx-builder.js';

/**
 * - fp32: float32 everywhere.
 * - fp16: float16 weights and activations; every float graph input and output
 *   is float16 except pixel_values (see buildVisionEncoder).
 * - q4 / q4f16: the large MatMuls as 4-bit blocks (MatMulNBits, block 32) with
 *   float32 / float16 activations and KV cache; full embedding tables as 4-bit rows.
 * - int8 / uint8 / quantized: 8-bit weights run by DynamicQuantizeLinear +
 *   MatMulInteger, float32 I/O. `quantized` (transformers.js's q8) is written
 *   with int8 weights, the quantizer's choice for graphs without Conv (it picks
 *   uint8 when convs are quantized too; here they stay float).
 * Convolutions and small weights stay float in every variant, as weight-only
 * MatMul quantizers leave them.
 */
export const GENERATED_DTYPES = {
  fp32: { act: 'float32', matmul: 'float' },
  fp16: { act: 'float16', matmul: 'float' },
  q4: { act: 'float32', matmul: 'q4' },
  q4f16: { act: 'float16', matmul: 'q4' },
  int8: { act: 'float32', matmul: 'int8' },
  uint8: { act: 'float32', matmul: 'uint8' },
  quantized: { act: 'float32', matmul: 'int8' },
} as const satisfies Partial<Record<Dtype, Precision>>;

export type GeneratedDtype = keyof typeof GENERATED_DTYPES;

export const DEFAULT_DTYPES: readonly GeneratedDtype[] = ['fp32'];

export function isGeneratedDtype(name: string): name is GeneratedDtype {
  return Object.hasOwn(GENERATED_DTYPES, name);
}

/** `q4,fp16` → ['q4', 'fp16'] (duplicates dropped); throws a message fit for a command line. */
export function parseGeneratedDtypes(spec: string): GeneratedDtype[] {
  const names = spec.split(',').map((s) => s.trim());
  const known = Object.keys(GENERATED_DTYPES).join(', ');
  if (names.every((n) => n === '')) throw new Error(`--dtype needs at least one of: ${known}`);
  const out: GeneratedDtype[] = [];
  for (const name of names) {
    if (name === '') throw new Error(`--dtype "${spec}" has an empty entry; separate dtypes with single commas`);
    if (!isGeneratedDtype(name)) {
      if (Object.hasOwn(DTYPE_SUFFIXES, name)) {
        throw new Error(`--dtype ${name} is an export format the generator does not write; it writes: ${known}`);
      }
      throw new Error(`unknown --dtype "${name}"; the generator writes: ${known}`);
    }
    if (!out.includes(name)) out.push(name);
  }
  return out;
}
