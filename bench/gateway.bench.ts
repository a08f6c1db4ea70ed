/**
 * bench:gateway — what authentication, limits, validation and enqueueing
 * cost. POST /v1/jobs with a small PNG under autocannon (50 connections)
 * against the real gateway (a Redis-stored API key, so each request checks
 * the key in Redis; generous limits, so every request passes them) and
 * against a bare Fastify server that only calls queue.add, in the same run,
 * each as its own process, measured alternately. A third target, the bare
 * server with three Redis round trips of its own before queue.add (one per
 * step of the gateway's: authentication + request limits, job quota, job
 * record), shows what those steps would cost by themselves if each request
 * made its own round trips; the gateway shares them among requests that
 * arrive together.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { RedisKeys } from '@fastvlm/contracts';
import { ApiKeyStore } from '@fastvlm/security';
import { table } from './stats';
import { NO_LIMITS } from './limits';

const ROOT = resolve(import.meta.dirname, '..');
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 10);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const CONNECTIONS = 50;
const PREFIX = `bench-gw-${randomBytes(4).toString('hex')}`;
/** Redis steps the gateway takes per accepted job besides queue.add. */
const GATEWAY_ROUND_TRIPS = 3;

function start(args: string[], env: Record<string, string>, readyLine: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { PATH: process.env.PATH ?? '', REDIS_URL, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((res, rej) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(readyLine)) res(child);
    });
    child.on('exit', (code) => rej(new Error(`${args.join(' ')} exited with ${code}:\n${out}`)));
  });
}

async function load(url: string, headers: Record<string, string>, body: string, seconds: number): Promise<autocannon.Result> {
  return autocannon({ url, method: 'POST', connections: CONNECTIONS, duration: seconds, headers: { 'content-type': 'application/json', ...headers }, body });
}

async function cleanup(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 5000);
    cursor = next;
    if (keys.length) await redis.unlink(...keys);
  } while (cursor !== '0');
}

async function main(): Promise<void> {
  const build = spawn(process.execPath, [join(ROOT, 'scripts', 'build.mjs'), 'gateway'], { stdio: 'inherit' });
  await new Promise((r) => build.on('exit', r));
  const redis = new Redis(REDIS_URL);
  const { key } = await new ApiKeyStore(redis, new RedisKeys(PREFIX).shared).create({ tenant: 'bench', name: 'bench', scopes: ['infer'], now: Date.now() });
  const png = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 40, g: 120, b: 200 } } }).png().toBuffer();
  const body = JSON.stringify({
    model: 'tiny-random',
    max_tokens: 16,
    messages: [{ role: 'user', content: [{ type: 'text', text: 'What is in this picture?' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${png.toString('base64')}` } }] }],
  });

  const gwPort = 18_000 + Math.floor(Math.random() * 1000);
  const barePort = gwPort + 1000;
  const gateway = await start([join(ROOT, 'dist', 'apps', 'gateway', 'main.js')], {
    PORT: String(gwPort),
    FASTVLM_REDIS_PREFIX: PREFIX,
    FASTVLM_MODEL: 'tiny-random',
    LOG_LEVEL: 'info',
    ...NO_LIMITS,
  }, '"gateway listening"');
  const bare = await start(['--import', 'tsx', join(ROOT, 'bench', 'bare-server.ts'), String(barePort), `${PREFIX}-bare`], {}, 'bare server listening');
  const tripsPort = barePort + 1;
  const trips = await start(
    ['--import', 'tsx', join(ROOT, 'bench', 'bare-server.ts'), String(tripsPort), `${PREFIX}-trips`, String(GATEWAY_ROUND_TRIPS)],
    {},
    'bare server listening',
  );

  const targets = {
    gateway: () => load(`http://127.0.0.1:${gwPort}/v1/jobs`, { authorization: `Bearer ${key}` }, body, DURATION_S),
    bare: () => load(`http://127.0.0.1:${barePort}/v1/jobs`, {}, body, DURATION_S),
    [`bare+${GATEWAY_ROUND_TRIPS}rt`]: () => load(`http://127.0.0.1:${tripsPort}/v1/jobs`, {}, body, DURATION_S),
  };
  // Warm both (JIT, connections, Redis scripts), then alternate so that drift on this shared VM lands on both.
  await load(`http://127.0.0.1:${gwPort}/v1/jobs`, { authorization: `Bearer ${key}` }, body, 2);
  await load(`http://127.0.0.1:${barePort}/v1/jobs`, {}, body, 2);
  await load(`http://127.0.0.1:${tripsPort}/v1/jobs`, {}, body, 2);
  const runs: { target: string; r: autocannon.Result }[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (const [target, run] of Object.entries(targets)) runs.push({ target, r: await run() });
  }
  const rows = runs.map(({ target, r }, i) => ({
    run: i + 1,
    target,
    reqPerS: r.requests.average,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts,
  }));
  const mean = (t: string, f: (r: autocannon.Result) => number) => {
    const rs = runs.filter((x) => x.target === t).map((x) => f(x.r));
    return rs.reduce((a, b) => a + b, 0) / rs.length;
  };
  const acceptRps = mean('gateway', (r) => r.requests.average);
  const bareRps = mean('bare', (r) => r.requests.average);
  const tripsRps = mean(`bare+${GATEWAY_ROUND_TRIPS}rt`, (r) => r.requests.average);
  const p99Ms = Math.max(...runs.filter((x) => x.target === 'gateway').map((x) => x.r.latency.p99));
  const failures = runs.reduce((n, x) => n + x.r.non2xx + x.r.errors + x.r.timeouts, 0);

  console.log(`bench:gateway — POST /v1/jobs with a ${png.length}-byte PNG, ${CONNECTIONS} connections, ${ROUNDS}×${DURATION_S} s per target, ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'})`);
  console.log(table(rows));
  console.log(`gateway ${acceptRps.toFixed(0)} req/s vs bare queue.add ${bareRps.toFixed(0)} req/s: ratio ${(acceptRps / bareRps).toFixed(2)}; gateway p99 ${p99Ms} ms${failures ? `; ${failures} non-2xx or failed requests` : ''}`);
  console.log(
    `reference: the bare server with the gateway's ${GATEWAY_ROUND_TRIPS} extra Redis round trips and nothing else does ${tripsRps.toFixed(0)} req/s (ratio ${(tripsRps / bareRps).toFixed(2)})`,
  );
  console.log(
    JSON.stringify({ bench: 'gateway', acceptRps: round(acceptRps), bareRps: round(bareRps), ratio: round(acceptRps / bareRps), p99Ms: round(p99Ms), roundTripFloorRps: round(tripsRps) }),
  );

  gateway.kill('SIGTERM');
  bare.kill('SIGTERM');
  trips.kill('SIGTERM');
  await cleanup(redis, PREFIX);
  await cleanup(redis, `${PREFIX}-bare`);
  await cleanup(redis, `${PREFIX}-trips`);
  redis.disconnect();
}

const round = (x: number): number => Math.round(x * 100) / 100;

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
