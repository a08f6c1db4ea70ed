import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './redis-server';
import { until } from './stack';

/**
 * A redis-server on its own port in a mode FastVLM must refuse: a Redis
 * Cluster node (cluster-enabled, no slots assigned) or a Sentinel.
 */
export class OddRedis {
  private constructor(
    readonly port: number,
    private readonly proc: ChildProcess,
    private readonly dir: string,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async cluster(): Promise<OddRedis> {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'fastvlm-cluster-'));
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'];
    const proc = spawn('redis-server', [...args, '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf')], { stdio: 'ignore' });
    return OddRedis.started(port, proc, dir);
  }

  /** A Sentinel monitoring a primary that does not exist (it never touches the suite's Redis). */
  static async sentinel(): Promise<OddRedis> {
    const [port, nowhere] = [await freePort(), await freePort()];
    const dir = mkdtempSync(join(tmpdir(), 'fastvlm-sentinel-'));
    const conf = join(dir, 'sentinel.conf');
    // Sentinel rewrites its config file, so it lives in the temp folder.
    writeFileSync(conf, `port ${port}\nbind 127.0.0.1\ndir ${dir}\nsentinel monitor fastvlm-test 127.0.0.1 ${nowhere} 2\n`);
    const proc = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
    return OddRedis.started(port, proc, dir);
  }

  private static async started(port: number, proc: ChildProcess, dir: string): Promise<OddRedis> {
    const r = new OddRedis(port, proc, dir);
    await until(`redis-server on ${port} to answer`, async () => {
      const c = new Redis(r.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      // Refused connections while the server starts are expected; connect() reports them.
      c.on('error', () => undefined);
      try {
        await c.connect();
        return (await c.ping()) === 'PONG';
      } catch {
        return false;
      } finally {
        c.disconnect();
      }
    });
    return r;
  }

  async dispose(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      const exited = new Promise((r) => this.proc.once('exit', r));
      this.proc.kill('SIGKILL');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
