/**
 * bench:e2e — what the serving path costs on top of the model. Sync chat
 * completions through gateway → BullMQ → worker (separate processes) against
 * direct in-process pipeline calls on the same tiny model, in the same run,
 * with distinct questions so the answer cache never serves them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { loadPipeline } from '@fastvlm/pipeline';
import { percentile, runLoad, table } from './stats';

const ROOT = resolve(import.meta.dirname, '..');
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const N = Number(process.env.BENCH_REQUESTS ?? 200);
const MAX_TOKENS = Number(process.env.BENCH_MAX_TOKENS ?? 8);
const THREADS = 1;
const CACHE_DIR = join(ROOT, '.cache', 'bench');
const KEY = `bench-key-${randomBytes(8).toString('hex')}`;
const PREFIX = `bench-${randomBytes(4).toString('hex')}`;

function startApp(name: string, env: Record<string, string>, readyLine: string | null): Promise<ChildProcess> {
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'apps', name, 'main.js')], {
    env: { PATH: process.env.PATH ?? '', REDIS_URL, FASTVLM_REDIS_PREFIX: PREFIX, FASTVLM_MODEL: 'tiny-random', FASTVLM_CACHE_DIR: CACHE_DIR, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (readyLine === null) return Promise.resolve(child);
  return new Promise((res, rej) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(readyLine)) res(child);
    });
    child.on('exit', (code) => rej(new Error(`${name} exited with ${code}`)));
  });
}

async function main(): Promise<void> {
  const build = spawn(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { stdio: 'inherit' });
  await new Promise((r) => build.on('exit', r));
  const image = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 40, g: 120, b: 200 } } }).png().toBuffer();
  const direct = await loadPipeline({ model: 'tiny-random', cacheDir: CACHE_DIR, threads: THREADS });
  await direct.warmup();

  const worker = await startApp('worker', { FASTVLM_THREADS: String(THREADS) }, '"worker ready"');
  const port = 18_000 + Math.floor(Math.random() * 2000);
  const gateway = await startApp('gateway', { PORT: String(port), FASTVLM_API_KEYS: `bench:${KEY}`, LOG_LEVEL: 'warn' }, null);
  const url = `http://127.0.0.1:${port}/v1/chat/completions`;
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${port}/health/ready`).then((r) => r.ok).catch(() => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const dataUrl = `data:image/png;base64,${image.toString('base64')}`;
  let q = 0;
  const viaGateway = async (): Promise<void> => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'tiny-random',
        max_tokens: MAX_TOKENS,
        messages: [{ role: 'user', content: [{ type: 'text', text: `question number ${q++}` }, { type: 'image_url', image_url: { url: dataUrl } }] }],
      }),
    });
    if (res.status !== 200 || res.headers.get('x-cache') !== 'miss') throw new Error(`unexpected ${res.status} ${res.headers.get('x-cache')}`);
    await res.arrayBuffer();
  };
  const viaPipeline = async (): Promise<void> => {
    await direct.generate({ image, question: `question number ${q++}`, params: { maxTokens: MAX_TOKENS, temperature: 0, topP: 1, stop: [] } });
  };

  // Warm both paths, then measure them alternately so drift hits both alike.
  await runLoad(20, 1, viaGateway);
  await runLoad(20, 1, viaPipeline);
  const rows: Record<string, string | number>[] = [];
  const results: Record<string, { latencies: number[]; wallMs: number }> = {};
  // Concurrency 1: the two paths alternate request by request, so that the
  // machine's drift (this is a shared 2-core VM) lands on both alike.
  const one = { pipeline: [] as number[], e2e: [] as number[], pipelineMs: 0, e2eMs: 0 };
  for (let i = 0; i < N; i++) {
    for (const [path, fn] of [['pipeline', viaPipeline], ['e2e', viaGateway]] as const) {
      const t = performance.now();
      await fn();
      const ms = performance.now() - t;
      one[path].push(ms);
      if (path === 'pipeline') one.pipelineMs += ms;
      else one.e2eMs += ms;
    }
  }
  results['pipeline-c1'] = { latencies: one.pipeline, wallMs: one.pipelineMs };
  results['e2e-c1'] = { latencies: one.e2e, wallMs: one.e2eMs };
  results['pipeline-c8'] = await runLoad(N, 8, viaPipeline);
  results['e2e-c8'] = await runLoad(N, 8, viaGateway);
  for (const [name, r] of Object.entries(results)) {
    rows.push({ path: name, requests: N, p50Ms: percentile(r.latencies, 50), p99Ms: percentile(r.latencies, 99), reqPerS: (N / r.wallMs) * 1000 });
  }
  const p1 = results['pipeline-c1'];
  const e1 = results['e2e-c1'];
  const p8 = results['pipeline-c8'];
  const e8 = results['e2e-c8'];
  if (!p1 || !e1 || !p8 || !e8) throw new Error('missing results');
  const overheadP50Ms = percentile(e1.latencies, 50) - percentile(p1.latencies, 50);
  const overheadP99Ms = percentile(e1.latencies, 99) - percentile(p1.latencies, 99);
  const c8ThroughputRatio = (N / e8.wallMs) / (N / p8.wallMs);
  console.log(`bench:e2e — tiny-random model, ${MAX_TOKENS} tokens per answer, ${N} requests per row, ${THREADS} onnxruntime thread, ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'})`);
  console.log(table(rows));
  console.log(`overhead at concurrency 1: p50 ${overheadP50Ms.toFixed(2)} ms, p99 ${overheadP99Ms.toFixed(2)} ms; throughput at concurrency 8: ${c8ThroughputRatio.toFixed(2)}× the direct pipeline`);
  console.log(JSON.stringify({ bench: 'e2e', overheadP50Ms: round(overheadP50Ms), overheadP99Ms: round(overheadP99Ms), c8ThroughputRatio: round(c8ThroughputRatio) }));

  gateway.kill('SIGTERM');
  worker.kill('SIGTERM');
  await direct.dispose();
  const r = new Redis(REDIS_URL);
  let cursor = '0';
  do {
    const [next, keys] = await r.scan(cursor, 'MATCH', `${PREFIX}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await r.del(...keys);
  } while (cursor !== '0');
  r.disconnect();
}

const round = (x: number): number => Math.round(x * 100) / 100;

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
