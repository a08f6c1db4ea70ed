import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { pino } from 'pino';
import { loadGatewayConfig } from '../../apps/gateway/src/config';
import { createGateway } from '../../apps/gateway/src/gateway';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const API_KEYS = { acme: 'acme-key-0123456789abcdef', globex: 'globex-key-0123456789abcdef' } as const;

export function testCacheDir(): string {
  return process.env.FASTVLM_TEST_CACHE_DIR ?? join(ROOT, '.cache', 'test');
}

/** A key prefix no other test uses, so tests share one Redis without seeing each other. */
export function uniquePrefix(): string {
  return `t-${randomBytes(5).toString('hex')}`;
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function until<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export interface WorkerProcess {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** Starts the built worker (`dist/apps/worker/main.js`) as a real process and waits until it takes jobs. */
export async function startWorker(prefix: string, env: Record<string, string> = {}, redisUrl = REDIS_URL): Promise<WorkerProcess> {
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'apps', 'worker', 'main.js')], {
    env: {
      PATH: process.env.PATH ?? '',
      REDIS_URL: redisUrl,
      FASTVLM_REDIS_PREFIX: prefix,
      FASTVLM_MODEL: 'tiny-random',
      FASTVLM_CACHE_DIR: testCacheDir(),
      FASTVLM_THREADS: '1',
      LOG_LEVEL: 'info',
      // Tests run workers side by side: each takes a free port for /metrics and /health.
      WORKER_HTTP_PORT: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  let gone = false;
  void exited.then(() => (gone = true));
  await until('the worker to be ready', () => {
    if (gone) throw new Error(`worker exited before it was ready:\n${out}`);
    return out.includes('"worker ready"');
  }, 60_000);
  return { child, output: () => out, exited };
}

export async function stopWorker(w: WorkerProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill(signal);
  return w.exited;
}

export interface GatewayHandle {
  app: NestFastifyApplication;
  url: string;
  close: () => Promise<void>;
}

/** Boots the real gateway in this process on a free port. */
export async function startGateway(prefix: string, env: Record<string, string> = {}): Promise<GatewayHandle> {
  const cfg = loadGatewayConfig({
    REDIS_URL,
    FASTVLM_REDIS_PREFIX: prefix,
    FASTVLM_MODEL: 'tiny-random',
    FASTVLM_API_KEYS: Object.entries(API_KEYS).map(([t, k]) => `${t}:${k}`).join(','),
    PORT: '0',
    LOG_LEVEL: 'silent',
    ...env,
  });
  const app = await createGateway(cfg, pino({ level: 'silent' }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  const url = await app.getUrl();
  return { app, url: url.replace('[::1]', '127.0.0.1'), close: () => app.close() };
}

/** Deletes every key under the prefix. */
export async function cleanupPrefix(prefix: string, redisUrl = REDIS_URL): Promise<void> {
  const r = new Redis(redisUrl);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await r.del(...keys);
    } while (cursor !== '0');
  } finally {
    r.disconnect();
  }
}
