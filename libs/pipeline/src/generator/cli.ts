/** npm run model:make -- --preset tiny --out DIR [--seed N] [--dtype fp32,q4] */
import { readdir, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { parseCliArgs, USAGE, UsageError } from './cli-args.js';
import { generateModel } from './index.js';

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
  const args = parseCliArgs(process.argv.slice(2));
  if (args === 'help') {
    console.log(USAGE);
    return;
  }
  const started = performance.now();
  // Large presets take a while per file; say which one is being written.
  const onFile = (path: string, bytes: number) => {
    if (bytes > 50e6) console.log(`  writing ${path} (${(bytes / 1e6).toFixed(0)} MB)…`);
  };
  await generateModel({ ...args, onFile });
  const elapsed = performance.now() - started;
  const files = await listFiles(args.outDir);
  const total = files.reduce((sum, f) => sum + f.size, 0);
  console.log(
    `wrote ${args.preset} model (seed ${args.seed}, ${args.dtypes.join(', ')}) to ${args.outDir} in ${(elapsed / 1000).toFixed(2)} s`,
  );
  for (const f of files) console.log(`  ${f.path.padEnd(38)} ${(f.size / 1e6).toFixed(3).padStart(9)} MB`);
  console.log(`  ${'total'.padEnd(38)} ${(total / 1e6).toFixed(3).padStart(9)} MB`);
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
