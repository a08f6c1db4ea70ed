/**
 * bench:batch — a large batch through the Batch API, and what it costs a tenant's interactive traffic (issue 14).
 *
 * `npm run bench:batch -- [--requests N] [--tokens T] [--trickle-rps R] [--trickle N] [--slots K] [--json FILE]`
 *
 * One worker (tiny-random, `--slots` concurrent requests per engine batch) and the built gateway on a
 * private redis-server. Two phases, with the same trickle of interactive requests (sync chat
 * completions of tenant B, `--trickle-rps` per second, `--trickle` of them, each a distinct question):
 * 1. idle: the trickle alone, on the idle cluster: the reference latency;
 * 2. batch: tenant A uploads a JSONL of `--requests` image questions and creates a batch
 *    (`completion_window` 24h), and B's trickle runs while it runs. Measured: the batch's time from
 *    create to `completed` (as the client sees it, polling every 200 ms), its requests/s, and the
 *    trickle's latencies.
 * Reported side by side: the trickle's p50/p99 idle and during the batch, and their ratio.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateModel } from '../libs/pipeline/src/generator/index';
import { startGatewayProcess, stopProcess } from '../test/support/processes';
import { PrivateRedis } from '../test/support/redis-server';
import { chatBody, dataUrl, png } from '../test/support/requests';
import { ROOT, startWorker, testCacheDir, uniquePrefix, until } from '../test/support/stack';
import { runMain } from './run-main';
import { percentile, table } from './stats';
import { NO_LIMITS } from './limits';

const { values: args } = parseArgs({
  options: {
    requests: { type: 'string', default: '2000' },
    tokens: { type: 'string', default: '16' },
    'trickle-rps': { type: 'string', default: '2' },
    trickle: { type: 'string', default: '40' },
    slots: { type: 'string', default: '4' },
    json: { type: 'string' },
  },
});
const S = { requests: Number(args.requests), tokens: Number(args.tokens), rps: Number(args['trickle-rps']), trickle: Number(args.trickle), slots: Number(args.slots) };
if (!Object.values(S).every((x) => Number.isFinite(x) && x > 0)) {
  console.error('usage: npm run bench:batch -- [--requests N] [--tokens T] [--trickle-rps R] [--trickle N] [--slots K] [--json FILE]');
  process.exit(2);
}
const KEYS = { a: `a-${randomBytes(12).toString('hex')}`, b: `b-${randomBytes(12).toString('hex')}` };
const IMAGES = 32;
const cleanups: (() => Promise<void>)[] = [];

interface Trickle {
  ms: number[];
  errors: string[];
}

async function main(): Promise<boolean> {
  execFileSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs'), 'gateway', 'worker'], { cwd: ROOT, stdio: 'inherit' });
  const modelDir = join(testCacheDir(), 'tiny-random');
  if (!existsSync(join(modelDir, 'config.json'))) await generateModel({ preset: 'tiny', outDir: modelDir, seed: 0 });
  const images = await Promise.all(Array.from({ length: IMAGES }, (_, i) => png(64, 48, i)));
  const server = await PrivateRedis.start();
  cleanups.push(() => server.dispose());
  const filesDir = mkdtempSync(join(tmpdir(), 'bench-batch-'));
  cleanups.push(() => Promise.resolve(rmSync(filesDir, { recursive: true, force: true })));
  const prefix = uniquePrefix();
  const worker = await startWorker(prefix, { WORKER_CONCURRENCY: String(S.slots), FASTVLM_MAX_BATCH: String(S.slots), FASTVLM_THREADS: '1' }, server.url);
  cleanups.push(async () => void (await stopProcess(worker, 'SIGKILL')));
  const gw = await startGatewayProcess(prefix, server.url, {
    FASTVLM_API_KEYS: Object.entries(KEYS).map(([t, k]) => `${t}:${k}`).join(','),
    FAIR_DISPATCH_TARGET: String(2 * S.slots),
    FILES_DIR: filesDir,
    BATCH_TICK_MS: '100',
    ...NO_LIMITS,
    LOG_LEVEL: 'warn',
  });
  cleanups.push(async () => void (await stopProcess(gw, 'SIGKILL')));
  await until('the gateway to be ready', async () => (await fetch(`${gw.url}/health/ready`).catch(() => null))?.status === 200, 60_000);
  const auth = (t: keyof typeof KEYS) => ({ authorization: `Bearer ${KEYS[t]}` });

  console.log(`bench:batch — tiny-random, 1 worker × ${S.slots} slots, ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}); a batch of ${S.requests} requests (max_tokens ${S.tokens}); trickle of ${S.trickle} sync requests at ${S.rps}/s`);
  // Warm-up: every image once, so both phases find the vision features alike.
  await Promise.all(images.map((img, i) => sync(gw.url, auth('b'), chatBody(img, `warm-up ${i}`, { max_tokens: S.tokens, temperature: 0 }))));

  const idle = await trickle(gw.url, auth('b'), images, 'idle');
  console.log(`idle trickle: p99 ${percentile(idle.ms, 99).toFixed(0)} ms`);

  const lines = Array.from({ length: S.requests }, (_, i) =>
    JSON.stringify({ custom_id: `r-${i}`, method: 'POST', url: '/v1/chat/completions', body: { model: 'tiny-random', max_tokens: S.tokens, temperature: 0, messages: [{ role: 'user', content: [{ type: 'text', text: `batch bench question ${i}: what is in this picture?` }, { type: 'image_url', image_url: { url: dataUrl(images[i % IMAGES] as Buffer) } }] }] } }),
  );
  const form = new FormData();
  form.append('purpose', 'batch');
  form.append('file', new Blob([`${lines.join('\n')}\n`]), 'bench.jsonl');
  const file = (await (await fetch(`${gw.url}/v1/files`, { method: 'POST', headers: auth('a'), body: form })).json()) as { id: string };
  const t0 = performance.now();
  const created = (await (await fetch(`${gw.url}/v1/batches`, { method: 'POST', headers: { ...auth('a'), 'content-type': 'application/json' }, body: JSON.stringify({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' }) })).json()) as { id: string };
  let finalStatus = '';
  let counts = { total: 0, completed: 0, failed: 0 };
  /** When validation ended, ms after create, as the client first saw the batch in progress. */
  let validatedMs = 0;
  const batchDone = (async () => {
    for (;;) {
      const b = (await (await fetch(`${gw.url}/v1/batches/${created.id}`, { headers: auth('a') })).json()) as { status: string; request_counts: typeof counts };
      counts = b.request_counts;
      if (validatedMs === 0 && b.status !== 'validating') validatedMs = performance.now() - t0;
      if (['completed', 'failed', 'expired', 'cancelled'].includes(b.status)) {
        finalStatus = b.status;
        return (performance.now() - t0) / 1000;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  // The trickle starts once the batch is running and has filled the pool.
  await until('the batch to run', () => counts.completed > 0, 120_000);
  const during = await trickle(gw.url, auth('b'), images, 'during');
  const batchS = await batchDone;

  const p99Idle = percentile(idle.ms, 99);
  const p99During = percentile(during.ms, 99);
  console.log(
    table([
      { measure: 'batch create → in progress: validation (s)', value: (validatedMs / 1000).toFixed(1) },
      { measure: 'batch create → completed (s)', value: batchS.toFixed(1) },
      { measure: 'batch requests/s', value: (S.requests / batchS).toFixed(1) },
      { measure: 'batch status, completed/failed', value: `${finalStatus}, ${counts.completed}/${counts.failed}` },
      { measure: 'interactive p50 idle / during (ms)', value: `${percentile(idle.ms, 50).toFixed(0)} / ${percentile(during.ms, 50).toFixed(0)}` },
      { measure: 'interactive p99 idle / during (ms)', value: `${p99Idle.toFixed(0)} / ${p99During.toFixed(0)}` },
      { measure: 'interactive p99 during / idle', value: `${(p99During / p99Idle).toFixed(2)}×` },
      { measure: 'trickle errors idle / during', value: `${idle.errors.length} / ${during.errors.length}` },
    ]),
  );
  if (args.json) writeFileSync(args.json, JSON.stringify({ settings: S, validatedMs, batchS, counts, finalStatus, idle, during }, null, 2));
  return finalStatus === 'completed' && counts.completed === S.requests && idle.errors.length === 0 && during.errors.length === 0;
}

async function sync(url: string, headers: Record<string, string>, body: unknown): Promise<Response> {
  return fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

/** Sends the trickle on a fixed schedule (open loop: a slow answer does not delay the next request). */
async function trickle(url: string, headers: Record<string, string>, images: Buffer[], phase: string): Promise<Trickle> {
  const out: Trickle = { ms: [], errors: [] };
  const start = performance.now();
  await Promise.all(
    Array.from({ length: S.trickle }, async (_, i) => {
      await new Promise((r) => setTimeout(r, Math.max(0, start + (i * 1000) / S.rps - performance.now())));
      const t = performance.now();
      const res = await sync(url, headers, chatBody(images[i % IMAGES] as Buffer, `${phase} trickle question ${i}`, { max_tokens: S.tokens, temperature: 0 }));
      const text = await res.text();
      if (res.status === 200) out.ms.push(performance.now() - t);
      else out.errors.push(`${res.status} ${text.slice(0, 120)}`);
    }),
  );
  return out;
}

runMain(main, async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});
