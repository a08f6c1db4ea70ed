import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { API_KEYS, ROOT, testCacheDir, until } from './stack';
import { freePort } from './redis-server';

/** A gateway started from the built bundle (`dist/apps/gateway/main.js`), so that a test can SIGKILL it. */
export interface GatewayProcess {
  child: ChildProcess;
  url: string;
  port: number;
  output: () => string;
  exited: Promise<number | null>;
}

/** The bootstrap keys of test/support/stack.ts, in the gateway's `FASTVLM_API_KEYS` form. */
export const BOOTSTRAP_KEYS = Object.entries(API_KEYS)
  .map(([t, k]) => `${t}:${k}`)
  .join(',');

/** Starts the built gateway as a real process on a free port and waits until it answers /health/live. */
export async function startGatewayProcess(prefix: string, redisUrl: string, env: Record<string, string> = {}): Promise<GatewayProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'apps', 'gateway', 'main.js')], {
    env: {
      PATH: process.env.PATH ?? '',
      REDIS_URL: redisUrl,
      FASTVLM_REDIS_PREFIX: prefix,
      FASTVLM_MODEL: 'tiny-random',
      FASTVLM_CACHE_DIR: testCacheDir(),
      FASTVLM_API_KEYS: BOOTSTRAP_KEYS,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      // Chaos runs send many requests from one address; failed-auth throttling is not under test.
      AUTH_FAILURES_PER_IP_PER_MIN: '0',
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
  const url = `http://127.0.0.1:${port}`;
  await until(
    'the gateway to listen',
    async () => {
      if (gone) throw new Error(`gateway exited before it listened:\n${out}`);
      return (await fetch(`${url}/health/live`).catch(() => null))?.status === 200;
    },
    60_000,
  );
  return { child, url, port, output: () => out, exited };
}

/** Sends `signal` unless the process already ended, and waits for its exit code. */
export async function stopProcess(p: { child: ChildProcess; exited: Promise<number | null> }, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill(signal);
  return p.exited;
}

/** Whether the process is still running (it may be stopped by SIGSTOP). */
export function isAlive(p: { child: ChildProcess }): boolean {
  return p.child.exitCode === null && p.child.signalCode === null;
}

/** Resident set size of a process in bytes, from /proc (Linux). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!m?.[1]) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}
