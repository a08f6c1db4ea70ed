import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError, loadTrace, parseCli } from './cli-args';

const ROOT = resolve(import.meta.dirname, '../../../..');
const CLI = join(ROOT, 'apps/scaler/src/simulator/cli.ts');
const dir = mkdtempSync(join(tmpdir(), 'scaler-sim-'));
const tiny = join(dir, 'tiny.csv');
writeFileSync(tiny, ['minute,requests', ...Array.from({ length: 20 }, (_, m) => `${m},${m >= 8 && m < 11 ? 300 : 90}`)].join('\n') + '\n');

afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(...args: string[]): Promise<Ran> {
  return new Promise((done) => {
    execFile(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: ROOT }, (err, stdout, stderr) => {
      done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

describe('scaler:simulate CLI', () => {
  it.concurrent('prints exactly one JSON line with the documented keys in order, the trace by its base name', async () => {
    const r = await cli('--trace', tiny, '--strategy', 'conservative', '--json', '--seed', '3');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n').filter((l) => l !== '');
    expect(lines.length).toBe(1);
    const out = JSON.parse(lines[0] as string) as Record<string, unknown>;
    expect(Object.keys(out)).toEqual(['strategy', 'trace', 'requests', 'sloViolationPct', 'p95QueueWaitS', 'p99QueueWaitS', 'replicaMinutes', 'scaleEvents']);
    expect(out.strategy).toBe('conservative');
    expect(out.trace).toBe('tiny.csv');
    expect(out.requests).toBeGreaterThan(2_000);
  });

  it.concurrent('prints a table naming trace, strategy, auto scale factor and seed, and writes a plot', async () => {
    const plot = join(dir, 'plots', 'tiny-baseline.svg');
    const r = await cli('--trace', tiny, '--strategy', 'keda-list-length', '--plot', plot);
    expect(r.code).toBe(0);
    // Peak 300 per minute = 5 jobs/s; 8 replicas at 1 job/s need scale 8 / 5.
    expect(r.stdout).toContain('scale factor 1.60000 (auto:');
    expect(r.stdout).toMatch(/tiny\.csv\s+keda-list-length\s+1\.600\s+1\s+\d+/);
    expect(readFileSync(plot, 'utf8')).toContain('tiny.csv — strategy keda-list-length — scale ×1.6 — seed 1');
  });

  it.concurrent('refuses a bad flag with one line on stderr, no stack trace, and exit code 2', async () => {
    const r = await cli('--trace', tiny, '--strategy', 'magic');
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n').filter((l) => l !== '')).toEqual([
      'scaler:simulate: --strategy "magic" is not one of keda-list-length, conservative, aggressive, adaptive, predictive',
    ]);
  });
});

describe('scaler:simulate flags', () => {
  it('defaults to R = 1, S = 90 s, SLO = 10 s, seed 1 and auto scale', () => {
    expect(parseCli(['--trace', 't.csv', '--strategy', 'predictive'])).toEqual({
      trace: 't.csv',
      strategy: 'predictive',
      scale: 'auto',
      replicaRps: 1,
      startupS: 90,
      sloS: 10,
      seed: 1,
      json: false,
      plot: null,
    });
  });

  it('reads every flag', () => {
    const o = parseCli(['--trace', 't.csv', '--strategy', 'keda-list-length', '--scale', '2.5', '--replica-rps', '0.5', '--startup-s', '30', '--slo-s', '5', '--seed', '9', '--json', '--plot', 'p.svg']);
    expect(o).toEqual({ trace: 't.csv', strategy: 'keda-list-length', scale: 2.5, replicaRps: 0.5, startupS: 30, sloS: 5, seed: 9, json: true, plot: 'p.svg' });
  });

  it('refuses a trace it cannot read, or of another format, with a UsageError naming the file', () => {
    expect(() => loadTrace(join(dir, 'missing.csv'))).toThrow(/cannot read trace .*missing\.csv: ENOENT/);
    expect(() => loadTrace(join(ROOT, 'package.json'))).toThrow(UsageError);
    expect(() => loadTrace(join(ROOT, 'package.json'))).toThrow(/package\.json: unknown trace format/);
  });

  it.each([
    [['--trace', 'x.csv', '--strategy', 'magic'], /--strategy "magic" is not one of keda-list-length, conservative, aggressive, adaptive, predictive/],
    [['--strategy', 'adaptive'], /--trace is required/],
    [['--trace', 'x.csv'], /--strategy is required/],
    [['--trace', 'x.csv', '--strategy', 'adaptive', '--scale', '0'], /--scale must be above 0/],
    [['--trace', 'x.csv', '--strategy', 'adaptive', '--replica-rps', 'fast'], /--replica-rps must be a number/],
    [['--trace', 'x.csv', '--strategy', 'adaptive', '--slo-s', '0'], /--slo-s must be above 0/],
    [['--trace', 'x.csv', '--strategy', 'adaptive', '--startup-s', '-5'], /--startup-s/],
    [['--trace', 'x.csv', '--strategy', 'adaptive', '--seed', '1.5'], /--seed must be a whole number/],
    [['--trace', 'x.csv', '--strategy', 'adaptive', '--fast'], /Unknown option '--fast'/],
    [['--trace', 'x.csv', '--strategy', 'adaptive', 'extra'], /positional/],
  ])('refuses %j with a UsageError', (args, message) => {
    expect(() => parseCli(args)).toThrow(UsageError);
    expect(() => parseCli(args)).toThrow(message);
  });
});
