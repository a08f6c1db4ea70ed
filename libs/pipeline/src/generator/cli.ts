/** npm run model:make -- --preset tiny --out DIR [--seed N] */
import { readdir, stat } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { generateModel, PRESETS, type PresetName } from './index.js';

const USAGE = `usage: npm run model:make -- --preset <${Object.keys(PRESETS).join('|')}> --out <dir> [--seed <n>]

  --preset  model shapes to generate
  --out     folder to write (replaced atomically if it exists)
  --seed    unsigned 32-bit integer (default 0); same seed → identical files`;

class UsageError extends Error {}

function isPreset(name: string): name is PresetName {
  return Object.hasOwn(PRESETS, name);
}

const OPTIONS = {
  preset: { type: 'string' },
  out: { type: 'string' },
  seed: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function parse(argv: string[]): { preset: PresetName; outDir: string; seed: number } | 'help' {
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
  return { preset: values.preset, outDir: resolve(values.out), seed };
}

async function listFiles(dir: string): Promise<{ path: string; size: number }[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files = await Promise.all(
    entries
      .filter((e) => e.isFile())
      .map(async (e) => {
        const full = join(e.parentPath, e.name);
        return { path: relative(dir, full), size: (await stat(full)).size };
      }),
  );
  return files.sort((a, b) => a.path.localeCompare(b.path));
}

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  if (args === 'help') {
    console.log(USAGE);
    return;
  }
  const started = performance.now();
  await generateModel(args);
  const elapsed = performance.now() - started;
  const files = await listFiles(args.outDir);
  const total = files.reduce((sum, f) => sum + f.size, 0);
  console.log(`wrote ${args.preset} model (seed ${args.seed}) to ${args.outDir} in ${(elapsed / 1000).toFixed(2)} s`);
  for (const f of files) console.log(`  ${f.path.padEnd(34)} ${(f.size / 1e6).toFixed(3).padStart(8)} MB`);
  console.log(`  ${'total'.padEnd(34)} ${(total / 1e6).toFixed(3).padStart(8)} MB`);
}

main().catch((err: unknown) => {
  if (err instanceof UsageError) {
    console.error(`error: ${err.message}\n\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exitCode = 1;
});
