import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Redis } from 'ioredis';
import { RedisKeys } from '@fastvlm/contracts';
import { createLogger } from '@fastvlm/observability';
import { ApiKeyStore, type Resolver, type Scope } from '@fastvlm/security';
import { loadGatewayConfig } from '../../../apps/gateway/src/config';
import { createGateway } from '../../../apps/gateway/src/gateway';
import { freePort } from '../../support/redis-server';
import { API_KEYS, REDIS_URL, ROOT, until } from '../../support/stack';

export const BOOTSTRAP = Object.entries(API_KEYS).map(([t, k]) => `${t}:${k}`).join(',');

export interface SecureGateway {
  app: NestFastifyApplication;
  url: string;
  /** Everything the gateway logged (JSON lines, debug level, every request). */
  logs: () => string;
  close: () => Promise<void>;
}

/** The real gateway in this process, logging at debug level into memory so tests can scan what it writes. */
export async function startSecureGateway(prefix: string, env: Record<string, string> = {}, opts: { resolver?: Resolver } = {}): Promise<SecureGateway> {
  let out = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out += chunk.toString();
      cb();
    },
  });
  const cfg = loadGatewayConfig({
    REDIS_URL,
    FASTVLM_REDIS_PREFIX: prefix,
    FASTVLM_MODEL: 'tiny-random',
    FASTVLM_API_KEYS: BOOTSTRAP,
    LOG_LEVEL: 'debug',
    LOG_REQUESTS: 'true',
    ...env,
  });
  const log = createLogger({ name: 'gateway', level: 'debug', destination: sink });
  const app = await createGateway(cfg, log, opts.resolver ? { imageUrlResolver: opts.resolver } : {});
  await app.listen({ port: 0, host: '127.0.0.1' });
  const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  return { app, url, logs: () => out, close: () => app.close() };
}

export interface GatewayProcess {
  child: ChildProcess;
  url: string;
  output: () => string;
  /** Resident set size of the gateway process, in bytes (Linux /proc). */
  rss: () => number;
  stop: () => Promise<void>;
}

/** The built gateway (`dist/apps/gateway/main.js`) as its own process, as pods run it. */
export async function startGatewayProcess(prefix: string, env: Record<string, string> = {}): Promise<GatewayProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'apps', 'gateway', 'main.js')], {
    env: {
      PATH: process.env.PATH ?? '',
      REDIS_URL,
      FASTVLM_REDIS_PREFIX: prefix,
      FASTVLM_MODEL: 'tiny-random',
      FASTVLM_API_KEYS: BOOTSTRAP,
      PORT: String(port),
      LOG_LEVEL: 'debug',
      LOG_REQUESTS: 'true',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  await until('the gateway process to listen', () => {
    if (child.exitCode !== null) throw new Error(`gateway exited:\n${out}`);
    return out.includes('"gateway listening"');
  }, 30_000);
  return {
    child,
    url: `http://127.0.0.1:${port}`,
    output: () => out,
    rss: () => {
      const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1];
      return Number(kb) * 1024;
    },
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** A key in the key store under `prefix` (what `npm run keys -- create` makes). */
export async function createKey(prefix: string, tenant: string, scopes: Scope[], name = 'test'): Promise<{ key: string; id: string }> {
  const redis = new Redis(REDIS_URL);
  try {
    const { key, record } = await new ApiKeyStore(redis, new RedisKeys(prefix).shared).create({ tenant, name, scopes, now: Date.now() });
    return { key, id: record.id };
  } finally {
    redis.disconnect();
  }
}

export const bearer = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` });

/**
 * What must never appear in logs: API keys (created and bootstrap), an
 * Authorization header value, and question texts. Returns the offending
 * needles (empty when clean).
 */
export function leaksIn(logs: string, secrets: { keys: string[]; questions: string[] }): string[] {
  const found: string[] = [];
  for (const k of [...secrets.keys, ...Object.values(API_KEYS)]) if (logs.includes(k)) found.push(`key ${k.slice(0, 8)}…`);
  for (const q of secrets.questions) if (q.length >= 8 && logs.includes(q)) found.push(`question "${q.slice(0, 20)}…"`);
  if (/Bearer\s+\S/i.test(logs)) found.push('an Authorization header value');
  if (/fvlm_[0-9A-Za-z]{39}/.test(logs)) found.push('something shaped like an API key');
  return found;
}
