import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseCliArgs, UsageError } from './cli-args.js';

const base = ['--preset', 'tiny', '--out', 'some/dir'];

function usageError(argv: string[]): string {
  try {
    parseCliArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) return err.message;
    throw err;
  }
  throw new Error('expected a usage error');
}

describe('model:make arguments', () => {
  it('writes fp32 only unless --dtype says otherwise', () => {
    expect(parseCliArgs(base)).toEqual({ preset: 'tiny', outDir: resolve('some/dir'), seed: 0, dtypes: ['fp32'] });
  });

  it('takes a comma-separated --dtype list, in order, without duplicates', () => {
    expect(parseCliArgs([...base, '--dtype', 'q4, fp16,q4'])).toMatchObject({ dtypes: ['q4', 'fp16'] });
    expect(parseCliArgs([...base, '--preset', 'fastvlm-0.5b', '--dtype', 'q4f16'])).toMatchObject({ preset: 'fastvlm-0.5b', dtypes: ['q4f16'] });
  });

  it('names an unknown dtype and lists the ones it writes', () => {
    expect(usageError([...base, '--dtype', 'q3'])).toBe(
      'unknown --dtype "q3"; the generator writes: fp32, fp16, q4, q4f16, int8, uint8, quantized',
    );
  });

  it('tells an export dtype it does not generate apart from a typo', () => {
    expect(usageError([...base, '--dtype', 'q4,bnb4'])).toMatch(/^--dtype bnb4 is an export format the generator does not write/);
  });

  it('rejects an empty --dtype and empty list entries', () => {
    expect(usageError([...base, '--dtype', ''])).toMatch(/^--dtype needs at least one of: fp32/);
    expect(usageError([...base, '--dtype', 'q4,,fp16'])).toMatch(/has an empty entry/);
  });

  it('exits with status 2 and the usage text on a bad --dtype', () => {
    const tsx = createRequire(import.meta.url).resolve('tsx/package.json').replace(/package\.json$/, 'dist/cli.mjs');
    const cli = join(fileURLToPath(new URL('.', import.meta.url)), 'cli.ts');
    const run = spawnSync(process.execPath, [tsx, cli, ...base, '--dtype', 'fp64'], { encoding: 'utf8' });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('error: unknown --dtype "fp64"');
    expect(run.stderr).toContain('usage: npm run model:make');
  });
});
