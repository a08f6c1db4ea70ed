/**
 * bench:fairness — does a small tenant still get served while a big one floods the pool (issue 13)?
 *
 * `npm run bench:fairness -- [--flood N] [--delay-s S] [--modes fair,fifo] [--max-wait-s W] [--json FILE]`
 *
 * One worker (tiny-random model, `--slots` 4: WORKER_CONCURRENCY = FASTVLM_MAX_BATCH) and the built
 * gateway on a private redis-server, fresh for each mode. Per mode, three phases:
 *
 * 1. idle: tenant B's interactive requests (sync chat completions, all sent at once) on the idle
 *    cluster: the reference latency; then B's async jobs alone: the reference start delay;
 * 2. flood: tenant A submits `--flood` async jobs (POST /v1/jobs, `--flood-concurrency` in flight,
 *    `--a-tokens` each) as fast as the gateway takes them;
 * 3. run: `--delay-s` after the flood began (or when its last job was accepted, if later), B sends
 *    its interactive requests and its async jobs, all at once. Measured: each interactive request's
 *    latency (request → whole response) and each async job's start delay (its record's
 *    `created_at` → `started_at`, both written in ms by the gateway and the worker). B's work is
 *    followed for at most `--max-wait-s`: what has not answered or started by then is counted as
 *    censored (≥ the cap), and A's remaining backlog is not waited for (everything is torn down).
 *
 * Modes, with the same requests: `fair` (FAIR_QUEUEING=true, FAIR_DISPATCH_TARGET = 2 × slots:
 * interactive work taken first, async work dispatched from the fair queue in tenant turns) and
 * `fifo` (FAIR_QUEUEING=false: the behaviour before issue 13, one FIFO queue, no priorities).
 * Targets (issue 13): B's interactive p99 ≤ 2 × the idle p99, and every B async job started ≤ 5 s
 * after it was accepted. With 20 samples, p99 by nearest rank is the slowest of them.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { RedisKeys } from '@fastvlm/contracts';
import { generateModel } from '../libs/pipeline/src/generator/index';
import { startGatewayProcess, stopProcess, type GatewayProcess } from '../test/support/processes';
import { PrivateRedis } from '../test/support/redis-server';
import { chatBody, png } from '../test/support/requests';
import { ROOT, startWorker, testCacheDir, uniquePrefix, until, type WorkerProcess } from '../test/support/stack';
import { percentile, runLoad, table } from './stats';
import { runMain } from './run-main';
import { NO_LIMITS } from './limits';

const { values: args } = parseArgs({
  options: {
    flood: { type: 'string', default: '2000' },
    'delay-s': { type: 'string', default: '30' },
    modes: { type: 'string', default: 'fair,fifo' },
    'b-interactive': { type: 'string', default: '20' },
    'b-async': { type: 'string', default: '20' },
    'a-tokens': { type: 'string', default: '32' },
    'b-tokens': { type: 'string', default: '16' },
    slots: { type: 'string', default: '4' },
    'flood-concurrency': { type: 'string', default: '16' },
    'max-wait-s': { type: 'string', default: '180' },
    json: { type: 'string' },
  },
  allowPositionals: false,
});
const MODES = ['fair', 'fifo'] as const;
type Mode = (typeof MODES)[number];
const modes = (args.modes ?? '').split(',').map((m) => m.trim()).filter(Boolean);
const S = {
  flood: Number(args.flood),
  delayS: Number(args['delay-s']),
  bInteractive: Number(args['b-interactive']),
  bAsync: Number(args['b-async']),
  aTokens: Number(args['a-tokens']),
  bTokens: Number(args['b-tokens']),
  slots: Number(args.slots),
  floodConcurrency: Number(args['flood-concurrency']),
  maxWaitS: Number(args['max-wait-s']),
};
if (
  !Object.values(S).every((x) => Number.isInteger(x) && x >= 0) ||
  S.slots < 1 || S.floodConcurrency < 1 || S.maxWaitS < 1 || S.bInteractive < 1 || S.bAsync < 1 ||
  modes.length === 0 || !modes.every((m): m is Mode => (MODES as readonly string[]).includes(m))
) {
  console.error('usage: npm run bench:fairness -- [--flood N] [--delay-s S] [--modes fair,fifo] [--b-interactive N] [--b-async N] [--a-tokens T] [--b-tokens T] [--slots K] [--flood-concurrency C] [--max-wait-s W] [--json FILE]');
  process.exit(2);
}
const DISPATCH_TARGET = 2 * S.slots;
/** Issue 13's targets. */
const TARGET_P99_RATIO = 2;
const TARGET_START_S = 5;
const KEYS = { tenantA: `a-${randomBytes(12).toString('hex')}`, tenantB: `b-${randomBytes(12).toString('hex')}`, warmup: `w-${randomBytes(12).toString('hex')}` };
type Tenant = keyof typeof KEYS;
const IMAGES = 32;

/** Samples in ms; `censored` of them did not finish within the cap and stand at the cap (lower bounds). */
interface Samples {
  ms: number[];
  censored: number;
  /** Requests that ended in an error other than the cap (status codes, network errors). */
  errors: string[];
}

interface ModeResult {
  mode: Mode;
  idle: Samples;
  idleAsyncStart: Samples;
  interactive: Samples;
  asyncStart: Samples;
  /** Completion tokens of B's interactive answers (idle and run), mean. */
  bTokensMean: number;
  flood: { accepted: number; refused: Record<string, number>; seconds: number };
  /** A's jobs not yet started when B arrived, and A's jobs started while B's work ran. */
  aBacklogAtB: number;
  aStartedDuringB: number;
  bPhaseSeconds: number;
  /** Mean completion tokens of A's finished jobs (the model may stop before max_tokens). */
  aTokensMean: number;
  seconds: number;
}

/** What to stop, newest first, whether the run ends normally or not. */
let cleanups: (() => Promise<void>)[] = [];

async function main(): Promise<void> {
  const t0 = performance.now();
  execFileSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs'), 'gateway', 'worker'], { cwd: ROOT, stdio: 'inherit' });
  const modelDir = join(testCacheDir(), 'tiny-random');
  if (!existsSync(join(modelDir, 'config.json'))) await generateModel({ preset: 'tiny', outDir: modelDir, seed: 0 });
  const images = await Promise.all(Array.from({ length: IMAGES }, (_, i) => png(64, 48, i)));

  console.log(
    `bench:fairness — tiny-random, 1 worker × ${S.slots} slots, ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}); ` +
      `A floods ${S.flood} async jobs (max_tokens ${S.aTokens}, ${S.floodConcurrency} in flight); ${S.delayS} s later B sends ${S.bInteractive} interactive ` +
      `(max_tokens ${S.bTokens}, all at once) + ${S.bAsync} async jobs; B followed for at most ${S.maxWaitS} s; modes ${modes.join(', ')}`,
  );
  const results: ModeResult[] = [];
  for (const mode of modes as Mode[]) results.push(await runMode(mode, images));
  const seconds = (performance.now() - t0) / 1000;
  report(results, seconds);
}

async function runMode(mode: Mode, images: Buffer[]): Promise<ModeResult> {
  const started = performance.now();
  const log = (msg: string): void => console.log(`[${mode} ${((performance.now() - started) / 1000).toFixed(1)} s] ${msg}`);
  const server = await PrivateRedis.start();
  cleanups.push(() => server.dispose());
  const redis = new Redis(server.url);
  cleanups.push(() => Promise.resolve(redis.disconnect()));
  await redis.call('CONFIG', 'SET', 'appendonly', 'no');
  const prefix = uniquePrefix();
  const keys = new RedisKeys(prefix);

  const worker: WorkerProcess = await startWorker(prefix, { WORKER_CONCURRENCY: String(S.slots), FASTVLM_MAX_BATCH: String(S.slots), FASTVLM_THREADS: '1' }, server.url);
  cleanups.push(async () => void (await stopProcess(worker, 'SIGKILL')));
  const gateway: GatewayProcess = await startGatewayProcess(prefix, server.url, {
    FASTVLM_API_KEYS: Object.entries(KEYS).map(([t, k]) => `${t}:${k}`).join(','),
    FAIR_QUEUEING: mode === 'fair' ? 'true' : 'false',
    FAIR_DISPATCH_TARGET: String(DISPATCH_TARGET),
    // The client gives up at the cap first; the gateway's own 504 comes later.
    SYNC_TIMEOUT_MS: String((S.maxWaitS + 60) * 1000),
    ...NO_LIMITS,
    LOG_LEVEL: 'warn',
  });
  cleanups.push(async () => void (await stopProcess(gateway, 'SIGKILL')));
  await until('the gateway to be ready (a live worker)', async () => (await fetch(`${gateway.url}/health/ready`).catch(() => null))?.status === 200, 60_000);

  const post = (tenant: Tenant, path: string, body: unknown, signal?: AbortSignal): Promise<Response> =>
    fetch(`${gateway.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEYS[tenant]}` },
      body: JSON.stringify(body),
      ...(signal ? { signal } : {}),
    });
  // Identical requests in every mode (each mode has a Redis of its own); distinct questions, so that
  // neither the answer cache nor de-duplication serves one.
  const body = (who: string, i: number, maxTokens: number): Record<string, unknown> =>
    chatBody(images[i % IMAGES] as Buffer, `fairness bench, ${who} question ${i}: what is in this picture?`, { max_tokens: maxTokens, temperature: 0 });
  const bTokens: number[] = [];

  /** A sync chat completion: its latency, or censored at the cap. */
  const interactive = async (who: string, i: number, deadline: number, out: Samples): Promise<void> => {
    const t = performance.now();
    try {
      const res = await post('tenantB', '/v1/chat/completions', body(who, i, S.bTokens), AbortSignal.timeout(Math.max(1, Math.round(deadline - t))));
      const text = await res.text();
      if (res.status !== 200) {
        out.errors.push(`${res.status} ${text.slice(0, 160)}`);
        return;
      }
      out.ms.push(performance.now() - t);
      const tokens = (JSON.parse(text) as { usage?: { completion_tokens?: number } }).usage?.completion_tokens;
      if (tokens !== undefined) bTokens.push(tokens);
    } catch (e) {
      if (e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError')) {
        out.ms.push(S.maxWaitS * 1000);
        out.censored++;
      } else out.errors.push(String(e));
    }
  };
  /** Submits async jobs; returns the accepted ids, counts refusals by status. */
  const submitJobs = async (tenant: Tenant, who: string, n: number, concurrency: number, maxTokens: number, refused: Record<string, number>): Promise<string[]> => {
    const ids: string[] = [];
    await runLoad(n, Math.min(n, concurrency), async (i) => {
      try {
        const res = await post(tenant, '/v1/jobs', body(who, i, maxTokens));
        const json = (await res.json().catch(() => ({}))) as { id?: string };
        if (res.status === 202 && json.id) ids.push(json.id);
        else refused[res.status] = (refused[res.status] ?? 0) + 1;
      } catch (e) {
        const k = e instanceof Error ? e.name : 'error';
        refused[k] = (refused[k] ?? 0) + 1;
      }
    });
    return ids;
  };
  /** Polls the job records until every job started or the deadline passed: start delays (created_at → started_at). */
  const startDelays = async (ids: string[], deadline: number): Promise<Samples> => {
    const out: Samples = { ms: [], censored: 0, errors: [] };
    let left = [...ids];
    for (;;) {
      const pipe = redis.pipeline();
      for (const id of left) pipe.hmget(keys.job(id), 'created_at', 'started_at', 'status');
      const rows = ((await pipe.exec()) ?? []).map(([, v]) => v as (string | null)[]);
      const still: string[] = [];
      rows.forEach((r, i) => {
        const [created, start, status] = r;
        if (start) out.ms.push(Number(start) - Number(created));
        else if (status === 'failed' || status === 'cancelled') out.errors.push(`job ${left[i]} ${status}`);
        else still.push(left[i] as string);
      });
      left = still;
      if (left.length === 0) return out;
      if (performance.now() >= deadline) {
        out.censored = left.length;
        out.ms.push(...left.map(() => S.maxWaitS * 1000));
        return out;
      }
      await sleep(100);
    }
  };
  /** Counts jobs by status (one pipeline of HGETs). */
  const statuses = async (ids: string[]): Promise<Record<string, number>> => {
    const pipe = redis.pipeline();
    for (const id of ids) pipe.hget(keys.job(id), 'status');
    const out: Record<string, number> = {};
    for (const [, v] of (await pipe.exec()) ?? []) out[String(v)] = (out[String(v)] ?? 0) + 1;
    return out;
  };

  // Warm-up: one job per image, so that every phase finds the images' vision features cached alike
  // (the requests of all phases cycle through the same IMAGES pictures).
  log('warm-up');
  const warm = await submitJobs('warmup', 'warm-up', IMAGES, 2 * S.slots, S.bTokens, {});
  const warmSync: Samples = { ms: [], censored: 0, errors: [] };
  await Promise.all(Array.from({ length: S.slots }, (_, i) => interactive('warm-up sync', i, performance.now() + S.maxWaitS * 1000, warmSync)));
  if (warm.length < IMAGES || warmSync.ms.length < S.slots || warmSync.censored > 0) throw new Error(`the warm-up failed: ${warm.length} jobs accepted; ${warmSync.errors.join(' | ')}`);
  await startDelays(warm, performance.now() + S.maxWaitS * 1000);
  await until('the warm-up jobs to finish', async () => ((await statuses(warm)).succeeded ?? 0) === warm.length, S.maxWaitS * 1000);

  log(`idle: B's ${S.bInteractive} interactive requests, then its ${S.bAsync} async jobs`);
  const idle: Samples = { ms: [], censored: 0, errors: [] };
  const idleDeadline = performance.now() + S.maxWaitS * 1000;
  await Promise.all(Array.from({ length: S.bInteractive }, (_, i) => interactive('B idle sync', i, idleDeadline, idle)));
  const idleIds = await submitJobs('tenantB', 'B idle async', S.bAsync, S.bAsync, S.bTokens, {});
  const idleAsyncStart = await startDelays(idleIds, performance.now() + S.maxWaitS * 1000);
  await until('B\'s idle jobs to finish', async () => ((await statuses(idleIds)).succeeded ?? 0) === idleIds.length, S.maxWaitS * 1000);

  log(`flood: A submits ${S.flood} async jobs`);
  const floodStart = performance.now();
  const refused: Record<string, number> = {};
  const aIds = await submitJobs('tenantA', 'A flood', S.flood, S.floodConcurrency, S.aTokens, refused);
  const floodSeconds = (performance.now() - floodStart) / 1000;
  log(`flood: ${aIds.length} accepted in ${floodSeconds.toFixed(1)} s${Object.keys(refused).length ? `, refused ${JSON.stringify(refused)}` : ''}`);
  await sleep(floodStart + S.delayS * 1000 - performance.now());

  const before = await statuses(aIds);
  const aBacklogAtB = before.queued ?? 0;
  log(`run: B arrives; A's jobs ${JSON.stringify(before)}`);
  const bStart = performance.now();
  const deadline = bStart + S.maxWaitS * 1000;
  const run: Samples = { ms: [], censored: 0, errors: [] };
  const [, asyncStart] = await Promise.all([
    Promise.all(Array.from({ length: S.bInteractive }, (_, i) => interactive('B run sync', i, deadline, run))),
    submitJobs('tenantB', 'B run async', S.bAsync, S.bAsync, S.bTokens, {}).then((ids) => startDelays(ids, deadline)),
  ]);
  const bPhaseSeconds = (performance.now() - bStart) / 1000;
  const after = await statuses(aIds);
  const aStartedDuringB = (before.queued ?? 0) - (after.queued ?? 0);
  log(`run: B done in ${bPhaseSeconds.toFixed(1)} s; A's jobs ${JSON.stringify(after)}`);

  const aTokensMean = await meanTokens(redis, keys, aIds, after);
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
  if (worker.child.exitCode !== null && worker.child.exitCode !== 0) console.warn(worker.output().slice(-2000));
  return {
    mode,
    idle,
    idleAsyncStart,
    interactive: run,
    asyncStart,
    bTokensMean: bTokens.length ? bTokens.reduce((s, x) => s + x, 0) / bTokens.length : NaN,
    flood: { accepted: aIds.length, refused, seconds: floodSeconds },
    aBacklogAtB,
    aStartedDuringB,
    bPhaseSeconds,
    aTokensMean,
    seconds: (performance.now() - started) / 1000,
  };
}

/** Mean completion tokens of (up to 200 of) A's succeeded jobs. */
async function meanTokens(redis: Redis, keys: RedisKeys, ids: string[], counts: Record<string, number>): Promise<number> {
  if (!counts.succeeded) return NaN;
  const pipe = redis.pipeline();
  for (const id of ids.slice(0, 400)) pipe.hget(keys.job(id), 'result');
  const tokens = ((await pipe.exec()) ?? [])
    .map(([, v]) => (typeof v === 'string' ? (JSON.parse(v) as { usage?: { completionTokens?: number } }).usage?.completionTokens : undefined))
    .filter((t): t is number => t !== undefined)
    .slice(0, 200);
  return tokens.length ? tokens.reduce((s, x) => s + x, 0) / tokens.length : NaN;
}

// --- The figures. ---

/** A percentile of samples, marked `≥` when it lands on a censored sample (a lower bound). */
function pct(s: Samples, p: number): { value: number; bound: boolean } {
  const value = percentile(s.ms, p);
  return { value, bound: s.censored > 0 && value >= S.maxWaitS * 1000 };
}
const maxOf = (s: Samples): { value: number; bound: boolean } => pct(s, 100);
const fmtMs = (x: { value: number; bound: boolean }): string => (Number.isNaN(x.value) ? '-' : `${x.bound ? '≥' : ''}${Math.round(x.value)}`);
const fmtS = (x: { value: number; bound: boolean }): string => (Number.isNaN(x.value) ? '-' : `${x.bound ? '≥' : ''}${(x.value / 1000).toFixed(2)}`);
const r2 = (x: number): number => Math.round(x * 100) / 100;

function verdict(r: ModeResult): { p99: number; idleP99: number; ratio: number; ratioBound: boolean; startMaxS: number; p99Met: boolean; startMet: boolean } {
  const p99 = pct(r.interactive, 99);
  const idleP99 = pct(r.idle, 99).value;
  const startMax = maxOf(r.asyncStart);
  const ok = r.interactive.errors.length === 0 && r.asyncStart.errors.length === 0;
  return {
    p99: p99.value,
    idleP99,
    ratio: p99.value / idleP99,
    ratioBound: p99.bound,
    startMaxS: startMax.value / 1000,
    p99Met: ok && !p99.bound && p99.value <= TARGET_P99_RATIO * idleP99,
    startMet: ok && !startMax.bound && startMax.value <= TARGET_START_S * 1000,
  };
}

function report(results: ModeResult[], seconds: number): void {
  const rows = results.map((r) => {
    const v = verdict(r);
    return {
      mode: r.mode,
      'B int p50 ms': fmtMs(pct(r.interactive, 50)),
      'B int p99 ms': fmtMs(pct(r.interactive, 99)),
      'idle p50 ms': fmtMs(pct(r.idle, 50)),
      'idle p99 ms': fmtMs(pct(r.idle, 99)),
      'p99/idle': `${v.ratioBound ? '≥' : ''}${v.ratio.toFixed(2)}`,
      'B async start p50 s': fmtS(pct(r.asyncStart, 50)),
      'max s': fmtS(maxOf(r.asyncStart)),
      'A queued at B': r.aBacklogAtB,
      [`p99 ≤ ${TARGET_P99_RATIO}× idle`]: v.p99Met ? 'yes' : 'NO',
      [`start ≤ ${TARGET_START_S} s`]: v.startMet ? 'yes' : 'NO',
    };
  });
  console.log(`\n${table(rows)}`);
  for (const r of results) {
    const errors = [...r.interactive.errors, ...r.asyncStart.errors, ...r.idle.errors];
    console.log(
      `${r.mode}: ${r.interactive.censored}/${r.interactive.ms.length} interactive and ${r.asyncStart.censored}/${r.asyncStart.ms.length} async of B not answered/started within ${S.maxWaitS} s (counted at the cap, ≥)` +
        `${errors.length ? `; errors: ${errors.slice(0, 3).join(' | ')}` : ''}; idle async start p50/max ${fmtS(pct(r.idleAsyncStart, 50))}/${fmtS(maxOf(r.idleAsyncStart))} s; ` +
        `flood ${r.flood.accepted} accepted in ${r.flood.seconds.toFixed(1)} s${Object.keys(r.flood.refused).length ? ` (refused ${JSON.stringify(r.flood.refused)})` : ''}; ` +
        `A started ${r.aStartedDuringB} jobs in B's ${r.bPhaseSeconds.toFixed(1)} s (${(r.aStartedDuringB / r.bPhaseSeconds).toFixed(1)} jobs/s), ${r.aTokensMean.toFixed(1)} tokens each; ` +
        `B's answers ${r.bTokensMean.toFixed(1)} tokens; mode took ${r.seconds.toFixed(0)} s`,
    );
    if (r.aBacklogAtB < 4 * S.slots) console.log(`${r.mode}: WARNING: only ${r.aBacklogAtB} of A's jobs were still queued when B arrived: B did not arrive behind a backlog (raise --flood or --a-tokens, or lower --delay-s)`);
  }
  console.log(`total ${seconds.toFixed(0)} s`);
  const json = {
    bench: 'fairness',
    settings: { ...S, dispatchTarget: DISPATCH_TARGET, modes, cpus: cpus().length },
    modes: Object.fromEntries(
      results.map((r) => {
        const v = verdict(r);
        return [
          r.mode,
          {
            interactiveP50Ms: r2(percentile(r.interactive.ms, 50)),
            interactiveP99Ms: r2(v.p99),
            interactiveCensored: r.interactive.censored,
            idleP50Ms: r2(percentile(r.idle.ms, 50)),
            idleP99Ms: r2(v.idleP99),
            p99Ratio: r2(v.ratio),
            asyncStartP50S: r2(percentile(r.asyncStart.ms, 50) / 1000),
            asyncStartMaxS: r2(v.startMaxS),
            asyncCensored: r.asyncStart.censored,
            idleAsyncStartMaxS: r2(percentile(r.idleAsyncStart.ms, 100) / 1000),
            aQueuedAtB: r.aBacklogAtB,
            errors: r.interactive.errors.length + r.asyncStart.errors.length + r.idle.errors.length,
            floodSeconds: r2(r.flood.seconds),
            p99Met: v.p99Met,
            startMet: v.startMet,
            seconds: r2(r.seconds),
          },
        ];
      }),
    ),
    seconds: r2(seconds),
  };
  console.log(JSON.stringify(json));
  if (args.json) writeFileSync(args.json, `${JSON.stringify(json, null, 2)}\n`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

async function cleanUp(): Promise<void> {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
}

runMain(main, cleanUp);
