import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freeTcpPort } from './test-ports';

/**
 * A redis-server of the test's own, on its own port, for tests that change its
 * configuration (maxmemory) or kill it; the shared Redis is never reconfigured.
 */
export class OwnRedis {
  private constructor(
    private readonly proc: ChildProcess,
    private readonly dir: string,
    readonly url: string,
  ) {}

  static async start(): Promise<OwnRedis> {
    const port = await freeTcpPort();
    const dir = mkdtempSync(join(tmpdir(), 'fastvlm-jobs-redis-'));
    const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', ''], { stdio: 'ignore' });
    const url = `redis://127.0.0.1:${port}`;
    const deadline = Date.now() + 10_000;
    for (;;) {
      const c = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      // Refused connections while the server starts are expected; connect() reports them.
      c.on('error', () => undefined);
      const up = await c.connect().then(
        async () => (await c.ping()) === 'PONG',
        () => false,
      );
      c.disconnect();
      if (up) return new OwnRedis(proc, dir, url);
      if (Date.now() > deadline) throw new Error(`redis-server did not answer on port ${port}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  async dispose(): Promise<void> {
    if (this.proc.exitCode === null) {
      const exited = new Promise((r) => this.proc.once('exit', r));
      this.proc.kill('SIGKILL');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Polls `check` until it returns something other than undefined/false, or throws after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
