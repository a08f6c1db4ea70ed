import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { HostPort } from '@fastvlm/contracts';
import { waitFor } from './test-redis-server';
import { freeTcpPort } from './test-ports';

const HOST = '127.0.0.1';

export interface SentinelGroupOptions {
  /** The name the Sentinels monitor (default `fastvlm-test`). */
  name?: string;
  /** `sentinel down-after-milliseconds`: how long the primary may be silent before it counts as down (default 1000). */
  downAfterMs?: number;
  /** `sentinel failover-timeout` (default 5000). */
  failoverTimeoutMs?: number;
}

interface Node {
  port: number;
  dir: string;
  proc: ChildProcess;
}

/**
 * A Sentinel-watched Redis on loopback, as production runs one: a primary and
 * a replica (AOF with a write per second, `noeviction`) and three Sentinels
 * with a quorum of two, each process in a temporary folder of its own.
 * `start` returns once the replica is in sync and every Sentinel knows the
 * primary, the replica and the two other Sentinels.
 */
export class RedisSentinelGroup {
  private constructor(
    readonly name: string,
    /** The primary at start (a failover moves it: ask `currentMaster`). */
    readonly masterPort: number,
    /** The replica at start. */
    readonly replicaPort: number,
    private readonly data: Map<number, Node>,
    private readonly watchers: Node[],
  ) {}

  static async start(opts: SentinelGroupOptions = {}): Promise<RedisSentinelGroup> {
    const name = opts.name ?? 'fastvlm-test';
    const data = new Map<number, Node>();
    const watchers: Node[] = [];
    const group = new RedisSentinelGroup(name, await freeTcpPort(), await freeTcpPort(), data, watchers);
    try {
      data.set(group.masterPort, dataNode(group.masterPort, null));
      data.set(group.replicaPort, dataNode(group.replicaPort, group.masterPort));
      await waitFor('the primary and the replica to answer', async () => (await ask(group.masterPort, (c) => c.ping())) === 'PONG' && (await ask(group.replicaPort, (c) => c.ping())) === 'PONG', 10_000);
      // Sentinels find the replica in the primary's INFO: start them once it is attached and in sync.
      await waitFor('the replica to be in sync', async () => /^master_link_status:up/m.test((await ask(group.replicaPort, (c) => c.info('replication'))) ?? ''), 15_000);
      for (let i = 0; i < 3; i++) {
        const port = await freeTcpPort();
        const dir = mkdtempSync(join(tmpdir(), 'fastvlm-sentinel-'));
        const conf = join(dir, 'sentinel.conf');
        // Sentinel rewrites its configuration file (what it learns, the epochs): one per Sentinel, in its folder.
        writeFileSync(
          conf,
          [
            `port ${port}`,
            `bind ${HOST}`,
            `dir ${dir}`,
            `logfile ${join(dir, 'sentinel.log')}`,
            `sentinel monitor ${name} ${HOST} ${group.masterPort} 2`,
            `sentinel down-after-milliseconds ${name} ${opts.downAfterMs ?? 1000}`,
            `sentinel failover-timeout ${name} ${opts.failoverTimeoutMs ?? 5000}`,
            `sentinel parallel-syncs ${name} 1`,
            '',
          ].join('\n'),
        );
        watchers.push({ port, dir, proc: spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' }) });
      }
      // Sentinels see each other through hello messages on the primary, every 2 s.
      await waitFor(
        'every Sentinel to know the primary, the replica and the other Sentinels',
        async () => {
          for (const s of watchers) {
            const known = await ask(s.port, async (c) => ({
              sentinels: ((await c.call('SENTINEL', 'sentinels', name)) as unknown[]).length,
              replicas: ((await c.call('SENTINEL', 'replicas', name)) as unknown[]).length,
            }));
            if (known?.sentinels !== 2 || known.replicas !== 1) return false;
          }
          return true;
        },
        20_000,
      );
      return group;
    } catch (e) {
      await group.dispose();
      throw e;
    }
  }

  /** The Sentinels as `REDIS_SENTINELS` takes them: `127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3`. */
  get sentinels(): string {
    return this.watchers.map((s) => `${HOST}:${s.port}`).join(',');
  }

  /** The Sentinels as a `RedisTarget` takes them. */
  get sentinelNodes(): HostPort[] {
    return this.watchers.map((s) => ({ host: HOST, port: s.port }));
  }

  /** The primary's address as the first Sentinel that answers gives it. */
  async currentMaster(): Promise<HostPort> {
    for (const s of this.watchers) {
      const addr = await ask(s.port, (c) => c.call('SENTINEL', 'get-master-addr-by-name', this.name) as Promise<[string, string] | null>);
      if (addr) return { host: addr[0], port: Number(addr[1]) };
    }
    throw new Error('no Sentinel answered get-master-addr-by-name');
  }

  /** The primary's address as every Sentinel gives it (null for one that did not answer). */
  async mastersSeen(): Promise<(number | null)[]> {
    return Promise.all(
      this.watchers.map(async (s) => {
        const addr = await ask(s.port, (c) => c.call('SENTINEL', 'get-master-addr-by-name', this.name) as Promise<[string, string] | null>);
        return addr ? Number(addr[1]) : null;
      }),
    );
  }

  /** SIGKILLs the data node that is the primary now (no shutdown, no last AOF write); returns its port. */
  async killMaster(): Promise<number> {
    const { port } = await this.currentMaster();
    const node = this.data.get(port);
    if (!node) throw new Error(`the primary ${port} is not one of this group's servers`);
    await kill(node.proc);
    return port;
  }

  /** A graceful failover (`SENTINEL FAILOVER`), which does not wait for the primary to be found down. */
  async failover(): Promise<void> {
    const first = this.watchers[0];
    if (!first) throw new Error('no Sentinel');
    const c = oneShot(first.port);
    try {
      await c.connect();
      await c.call('SENTINEL', 'failover', this.name);
    } finally {
      c.disconnect();
    }
  }

  /** Runs `fn` on a connection of its own straight to a data node (`port`). */
  async onNode<T>(port: number, fn: (c: Redis) => Promise<T>): Promise<T> {
    const c = oneShot(port);
    try {
      await c.connect();
      return await fn(c);
    } finally {
      c.disconnect();
    }
  }

  /** The Sentinels' logs (events such as `+switch-master`, `+odown`), for a failing test's message. */
  sentinelLogs(): string {
    return this.watchers.map((s) => `--- sentinel ${s.port}\n${readSafe(join(s.dir, 'sentinel.log'))}`).join('\n');
  }

  async dispose(): Promise<void> {
    for (const n of [...this.watchers, ...this.data.values()]) {
      await kill(n.proc);
      rmSync(n.dir, { recursive: true, force: true });
    }
  }
}

function dataNode(port: number, primary: number | null): Node {
  const dir = mkdtempSync(join(tmpdir(), 'fastvlm-redis-'));
  const args = ['--port', String(port), '--bind', HOST, '--dir', dir, '--logfile', join(dir, 'redis.log'), '--save', ''];
  args.push('--appendonly', 'yes', '--appendfsync', 'everysec', '--maxmemory-policy', 'noeviction');
  // A replica's full sync starts at once instead of after the default 5 s wait for other replicas to join it.
  args.push('--repl-diskless-sync-delay', '0');
  if (primary !== null) args.push('--replicaof', HOST, String(primary));
  return { port, dir, proc: spawn('redis-server', args, { stdio: 'ignore' }) };
}

function oneShot(port: number): Redis {
  const c = new Redis({ host: HOST, port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000, commandTimeout: 1000 });
  // Refused connections (a server starting or killed) are expected; connect() and the command report them.
  c.on('error', () => undefined);
  return c;
}

/** `fn`'s answer on a fresh connection to `port`, or undefined when the server did not answer. */
async function ask<T>(port: number, fn: (c: Redis) => Promise<T>): Promise<T | undefined> {
  const c = oneShot(port);
  try {
    await c.connect();
    return await fn(c);
  } catch {
    return undefined;
  } finally {
    c.disconnect();
  }
}

async function kill(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGKILL');
  await exited;
}

function readSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '(no log)';
  }
}
