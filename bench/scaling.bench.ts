/**
 * bench:scaling — every autoscaler on every trace in apps/scaler/traces,
 * against KEDA's plain Redis list-length scaler (the baseline). Each run is
 * the CLI (`scaler:simulate --json --plot`) in a child process of its own,
 * as many at once as there are cores. Targets are reported, never enforced.
 *
 *   npm run bench:scaling
 *   npm run bench:scaling -- --seed 7
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, extname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { AUTO_SCALE_PEAK_REPLICAS, autoScale } from '../apps/scaler/src/simulator/arrivals';
import { formatTable } from '../apps/scaler/src/simulator/report';
import type { RunFigures } from '../apps/scaler/src/simulator/report';
import { BASELINE, SCALER_NAMES, SCENARIO_DEFAULTS, type ScalerName } from '../apps/scaler/src/simulator/scenario';
import { parseTrace } from '../apps/scaler/src/simulator/trace';

const ROOT = resolve(import.meta.dirname, '..');
const TRACES = join(ROOT, 'apps', 'scaler', 'traces');
const PLOTS = join(ROOT, 'test-artifacts', 'scaling');
const CLI = join(ROOT, 'apps', 'scaler', 'src', 'simulator', 'cli.ts');
/** The strategies held to the target: half the baseline's SLO violations at no more replica-minutes. */
const TARGETED = ['adaptive', 'predictive'] as const;

const { values } = parseArgs({ options: { seed: { type: 'string', default: String(SCENARIO_DEFAULTS.seed) } } });
const seed = Number(values.seed);
if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) {
  console.error(`bench:scaling: --seed must be a whole number in [0, 4294967295], got "${values.seed}"`);
  process.exit(2);
}
const { replicaRps, startupS, sloS } = SCENARIO_DEFAULTS;

interface Run {
  figures: RunFigures;
  wallS: number;
}

function simulateInChild(tracePath: string, scaler: ScalerName, scale: number, plot: string): Promise<Run> {
  const args = [
    ...['--import', 'tsx', CLI, '--trace', tracePath, '--strategy', scaler, '--scale', String(scale), '--seed', String(seed)],
    ...['--replica-rps', String(replicaRps), '--startup-s', String(startupS), '--slo-s', String(sloS), '--json', '--plot', plot],
  ];
  const started = performance.now();
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', fail);
    child.on('close', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !line.startsWith('{')) fail(new Error(`${scaler} on ${basename(tracePath)} failed (exit ${code}): ${err.trim() || out.trim()}`));
      else done({ figures: JSON.parse(line) as RunFigures, wallS: (performance.now() - started) / 1000 });
    });
  });
}

/** Runs `tasks` with at most `limit` in flight; results in task order. */
async function pool<T>(tasks: readonly (() => Promise<T>)[], limit: number): Promise<T[]> {
  const results: T[] = new Array<T>(tasks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, tasks.length) }, async () => {
      while (next < tasks.length) {
        const i = next++;
        results[i] = await (tasks[i] as () => Promise<T>)();
      }
    }),
  );
  return results;
}

const ratio = (a: number, b: number): string => (b > 0 ? (a / b).toFixed(3) : a > 0 ? 'inf' : '-');

async function main(): Promise<void> {
  mkdirSync(PLOTS, { recursive: true });
  const traces = readdirSync(TRACES)
    .filter((f) => f.endsWith('.csv'))
    .sort();
  const lines: string[] = [];
  for (const file of traces) {
    const path = join(TRACES, file);
    const scale = autoScale(parseTrace(readFileSync(path, 'utf8')), replicaRps);
    const stem = basename(file, extname(file));
    console.log(
      `\n## ${file}: scale ×${scale.toPrecision(6)} (the peak minute needs ${AUTO_SCALE_PEAK_REPLICAS} replicas), seed ${seed}, R = ${replicaRps} requests/s per replica, start-up S = ${startupS} s, SLO = ${sloS} s queue wait`,
    );
    const runs = await pool(
      SCALER_NAMES.map((name) => () => simulateInChild(path, name, scale, join(PLOTS, `${stem}-${name}.svg`))),
      Math.max(1, availableParallelism()),
    );
    const byName = new Map(SCALER_NAMES.map((name, i) => [name, runs[i] as Run]));
    const base = (byName.get(BASELINE) as Run).figures;
    const targetMet: Record<string, boolean> = {};
    for (const name of TARGETED) {
      const f = (byName.get(name) as Run).figures;
      targetMet[name] = f.sloViolationPct <= 0.5 * base.sloViolationPct && f.replicaMinutes <= base.replicaMinutes;
    }
    const rows = SCALER_NAMES.map((name) => {
      const { figures: f, wallS } = byName.get(name) as Run;
      const target = name in targetMet ? (targetMet[name] ? 'met' : 'MISSED') : '-';
      return [
        name,
        f.sloViolationPct.toFixed(3),
        f.p95QueueWaitS.toFixed(2),
        f.p99QueueWaitS.toFixed(2),
        f.replicaMinutes.toFixed(1),
        String(f.scaleEvents),
        ratio(f.sloViolationPct, base.sloViolationPct),
        ratio(f.replicaMinutes, base.replicaMinutes),
        target,
        wallS.toFixed(1),
      ];
    });
    console.log(
      formatTable(
        ['strategy', 'slo_violation_%', 'p95_wait_s', 'p99_wait_s', 'replica_minutes', 'scale_events', 'violation/baseline', 'replica_min/baseline', 'target', 'wall_s'],
        rows,
        ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'left', 'right'],
      ),
    );
    console.log(`requests: ${base.requests}; target (adaptive, predictive): violations ≤ 0.5 × baseline and replica-minutes ≤ baseline; plots: ${PLOTS}/${stem}-*.svg`);
    const results: Record<string, Omit<RunFigures, 'strategy' | 'trace' | 'requests'>> = {};
    for (const [name, { figures: f }] of byName) {
      results[name] = { sloViolationPct: f.sloViolationPct, p95QueueWaitS: f.p95QueueWaitS, p99QueueWaitS: f.p99QueueWaitS, replicaMinutes: f.replicaMinutes, scaleEvents: f.scaleEvents };
    }
    lines.push(JSON.stringify({ bench: 'scaling', trace: file, requests: base.requests, scale, seed, replicaRps, startupS, sloS, results, targetMet }));
  }
  console.log('');
  for (const l of lines) console.log(l);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
