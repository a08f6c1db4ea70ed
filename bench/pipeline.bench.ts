/**
 * bench:pipeline — the engine against transformers.js's own `generate()` on
 * the same model files, side by side in one run. Each engine runs in a child
 * process of its own (so peak RSS and threads are its own) over the same
 * workload: distinct images for cold measurements, so no cache helps either.
 *
 *   npm run bench:pipeline                 both presets
 *   npm run bench:pipeline -- --preset tiny
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { generateModel, type PresetName } from '@fastvlm/pipeline';
import { measure, type EngineName, type Measurements } from './pipeline-engines';
import { table } from './stats';

const ROOT = resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: { preset: { type: 'string', multiple: true }, child: { type: 'string' }, dir: { type: 'string' }, dtype: { type: 'string' }, tokens: { type: 'string' } },
});

interface PresetPlan {
  preset: PresetName;
  dtype: 'fp32' | 'q4';
  /** Tokens per answer in the throughput rows. */
  tokens: number;
}

const PLANS: Record<string, PresetPlan> = {
  tiny: { preset: 'tiny', dtype: 'fp32', tokens: 64 },
  // Real shapes as q4 (the common deployment choice), within a few hundred MB.
  'fastvlm-0.5b': { preset: 'fastvlm-0.5b', dtype: 'q4', tokens: 32 },
};

async function modelDir(plan: PresetPlan): Promise<string> {
  const dir = join(ROOT, '.cache', 'bench', `${plan.preset}-${plan.dtype}`);
  if (!existsSync(join(dir, 'config.json'))) {
    console.log(`generating ${plan.preset} (${plan.dtype}) into ${dir} …`);
    await generateModel({ preset: plan.preset, outDir: dir, seed: 0, dtypes: [plan.dtype] });
  }
  return dir;
}

function runChild(engine: EngineName, dir: string, plan: PresetPlan): Measurements {
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'bench', 'pipeline.bench.ts'), '--child', engine, '--dir', dir, '--dtype', plan.dtype, '--tokens', String(plan.tokens)],
    { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 },
  );
  const line = r.stdout.trim().split('\n').pop() ?? '';
  if (r.status !== 0 || !line.startsWith('{')) throw new Error(`${engine} run failed (${r.status}): ${r.stdout}`);
  return JSON.parse(line) as Measurements;
}

const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;

async function main(): Promise<void> {
  if (values.child) {
    const m = await measure(values.child as EngineName, values.dir ?? '', values.dtype ?? 'fp32', Number(values.tokens ?? 32));
    process.stdout.write(`${JSON.stringify(m)}\n`);
    return;
  }
  const presets = values.preset ?? Object.keys(PLANS);
  for (const name of presets) {
    const plan = PLANS[name];
    if (!plan) throw new Error(`unknown preset ${name} (known: ${Object.keys(PLANS).join(', ')})`);
    const dir = await modelDir(plan);
    const base = runChild('transformers.js', dir, plan);
    const ours = runChild('engine', dir, plan);
    const rows = [
      { metric: 'TTFT p50 (ms), cold image', 'transformers.js': base.ttftP50Ms, engine: ours.ttftP50Ms, ratio: base.ttftP50Ms / ours.ttftP50Ms },
      { metric: 'decode tokens/s, one stream', 'transformers.js': base.decodeTps, engine: ours.decodeTps, ratio: ours.decodeTps / base.decodeTps },
      ...([1, 4, 8] as const).map((c) => ({
        metric: `aggregate tokens/s, ${c} concurrent`,
        'transformers.js': base.aggregateTps[c],
        engine: ours.aggregateTps[c],
        ratio: ours.aggregateTps[c] / base.aggregateTps[c],
      })),
      { metric: 'TTFT (ms), 2nd question same image', 'transformers.js': base.repeatTtftMs, engine: ours.repeatTtftMs, ratio: base.repeatTtftMs / ours.repeatTtftMs },
      { metric: 'peak RSS (MB)', 'transformers.js': base.peakRssMb, engine: ours.peakRssMb, ratio: ours.peakRssMb / base.peakRssMb },
    ];
    console.log(`\nbench:pipeline — preset ${plan.preset} (${plan.dtype}), ${plan.tokens} tokens per answer, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), onnxruntime default threads; ratio > 1 favours the engine (RSS: engine/baseline)`);
    console.log(table(rows.map((r) => ({ ...r, 'transformers.js': round(r['transformers.js']), engine: round(r.engine), ratio: round(r.ratio) }))));
    console.log(
      JSON.stringify({
        bench: 'pipeline',
        preset: plan.preset,
        singleStreamRatio: round(ours.decodeTps / base.decodeTps),
        aggregate8Ratio: round(ours.aggregateTps[8] / base.aggregateTps[8]),
        repeatImageTtftRatio: round(ours.repeatTtftMs / ours.ttftP50Ms),
        peakRssMb: round(ours.peakRssMb, 0),
      }),
    );
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
