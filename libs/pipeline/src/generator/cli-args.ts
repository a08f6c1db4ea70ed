/** Command-line parsing of `npm run model:make`, apart from cli.ts so tests can call it. */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { PRESETS, type PresetName } from './presets.js';
import { DEFAULT_DTYPES, GENERATED_DTYPES, parseGeneratedDtypes, type GeneratedDtype } from './variants.js';

export const USAGE = `usage: npm run model:make -- --preset <${Object.keys(PRESETS).join('|')}> --out <dir> [--seed <n>] [--dtype <list>]

  --preset  model shapes to generate
  --out     folder to write (replaced atomically if it exists)
  --seed    unsigned 32-bit integer (default 0); same seed → identical files
  --dtype   comma-separated weight formats to write, exactly these (default fp32):
            ${Object.keys(GENERATED_DTYPES).join(', ')}
            e.g. --dtype fp32,q4 writes onnx/*.onnx and onnx/*_q4.onnx`;

/** A mistake in the arguments: print it with the usage, exit 2. */
export class UsageError extends Error {}

export interface CliArgs {
  preset: PresetName;
  outDir: string;
  seed: number;
  dtypes: GeneratedDtype[];
}

function isPreset(name: string): name is PresetName {
  return Object.hasOwn(PRESETS, name);
}

const OPTIONS = {
  preset: { type: 'string' },
  out: { type: 'string' },
  seed: { type: 'string' },
  dtype: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export function parseCliArgs(argv: string[]): CliArgs | 'help' {
  const values = (() => {
    try {
      return parseArgs({ args: argv, strict: true, allowPositionals: false, options: OPTIONS }).values;
    } catch (err) {
      throw new UsageError(err instanceof Error ? err.message : String(err));
    }
  })();
  if (values.help) return 'help';
  if (values.preset === undefined) throw new UsageError('--preset is required');
  if (!isPreset(values.preset)) throw new UsageError(`unknown preset "${values.preset}"`);
  if (values.out === undefined || values.out === '') throw new UsageError('--out is required');
  const seedText = values.seed ?? '0';
  const seed = /^\d+$/.test(seedText) ? Number(seedText) : NaN;
  if (!Number.isSafeInteger(seed) || seed > 0xffffffff) {
    throw new UsageError(`--seed must be an integer in [0, 4294967295], got "${seedText}"`);
  }
  let dtypes = [...DEFAULT_DTYPES];
  if (values.dtype !== undefined) {
    try {
      dtypes = parseGeneratedDtypes(values.dtype);
    } catch (err) {
      throw new UsageError(err instanceof Error ? err.message : String(err));
    }
  }
  return { preset: values.preset, outDir: resolve(values.out), seed, dtypes };
}
