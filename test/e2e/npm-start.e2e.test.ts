import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chatBody, png, postJson } from '../support/requests';
import { freePort } from '../support/redis-server';
import { ROOT, testCacheDir, uniquePrefix, until } from '../support/stack';

/** `npm start` as a user runs it: scripts/start.mjs in the foreground, stopped with SIGTERM. */
function start(env: Record<string, string>) {
  const child = spawn(process.execPath, [join(ROOT, 'scripts', 'start.mjs')], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', FASTVLM_CACHE_DIR: testCacheDir(), FASTVLM_THREADS: '1', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, output: () => out, exited };
}

describe('npm start', () => {
  it('starts a gateway and a worker on the tiny model, prints a usable key, answers, and stops everything on SIGTERM', async () => {
    const port = await freePort();
    const workerPort = await freePort();
    const app = start({ FASTVLM_MODEL: 'tiny-random', PORT: String(port), WORKER_HTTP_PORT: String(workerPort), FASTVLM_REDIS_PREFIX: uniquePrefix() });
    try {
      const key = await until('the API key line', () => /API key: (\S+)/.exec(app.output())?.[1], 90_000);
      expect(app.output()).toContain(`http://127.0.0.1:${port}`);
      await until('readiness', async () => (await fetch(`http://127.0.0.1:${port}/health/ready`).catch(() => null))?.status === 200, 90_000);
      const res = await postJson(`http://127.0.0.1:${port}/v1/chat/completions`, chatBody(await png(32, 32, 1), 'hello', { max_tokens: 3 }), {
        authorization: `Bearer ${key}`,
      });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens).toBe(3);
    } finally {
      app.child.kill('SIGTERM');
    }
    expect(await app.exited).toBe(0);
    // Nothing it started still listens.
    await expect(fetch(`http://127.0.0.1:${port}/health/live`)).rejects.toThrow();
  }, 180_000);
});
