import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { HostPort, RedisTarget } from '@fastvlm/contracts';
import { waitFor } from './test-redis-server';
import { freeTcpPort } from './test-ports';

const HOST = '127.0.0.1';

interface Node {
  port: number;
  dir: string;
  proc: ChildProcess;
}

/**
 * A Redis Cluster of `masters` primaries (no replicas) on loopback, as
 * production runs its nodes (AOF with a write per second, `noeviction`), made
 * with `redis-cli --cluster create`. `start` returns once every node agrees
 * the cluster is `ok` and every slot is served.
 */
export class RedisClusterGroup {
  private constructor(private readonly nodes: Node[]) {}

  static async start(masters = 3): Promise<RedisClusterGroup> {
    const nodes: Node[] = [];
    const group = new RedisClusterGroup(nodes);
    try {
      for (let i = 0; i < masters; i++) nodes.push(clusterNode(await freeTcpPort()));
      await waitFor('the cluster nodes to answer', async () => (await Promise.all(nodes.map((n) => ask(n.port, (c) => c.ping())))).every((p) => p === 'PONG'), 10_000);
      const created = spawnSync(
        'redis-cli',
        ['--cluster', 'create', ...nodes.map((n) => `${HOST}:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'],
        { encoding: 'utf8', timeout: 30_000 },
      );
      if (created.status !== 0) throw new Error(`redis-cli --cluster create failed:\n${created.stdout}${created.stderr}`);
      await waitFor('every node to see the cluster as ok', async () => (await Promise.all(nodes.map((n) => ask(n.port, (c) => c.cluster('INFO'))))).every((i) => /^cluster_state:ok/m.test(i ?? '')), 20_000);
      return group;
    } catch (e) {
      await group.dispose();
      throw e;
    }
  }

  /** Seed nodes for `REDIS_CLUSTER_NODES`. */
  get seeds(): string {
    return this.nodes.map((n) => `${HOST}:${n.port}`).join(',');
  }

  get seedNodes(): HostPort[] {
    return this.nodes.map((n) => ({ host: HOST, port: n.port }));
  }

  /** What `createRedis` takes for this cluster. */
  get target(): RedisTarget {
    return { kind: 'cluster', url: `redis://${HOST}:${this.nodes[0]?.port ?? 0}`, nodes: this.seedNodes };
  }

  get ports(): number[] {
    return this.nodes.map((n) => n.port);
  }

  /** `fn`'s answer on a plain connection to one node (not cluster-aware: for admin commands). */
  async onNode<T>(port: number, fn: (c: Redis) => Promise<T>): Promise<T> {
    const c = new Redis({ host: HOST, port, maxRetriesPerRequest: 1 });
    try {
      return await fn(c);
    } finally {
      c.disconnect();
    }
  }

  /** The port of the node that serves `slot`. */
  async ownerOf(slot: number): Promise<number> {
    const first = this.nodes[0];
    if (!first) throw new Error('the cluster has no node');
    const ranges = await this.onNode(first.port, (c) => c.cluster('SLOTS'));
    const range = ranges.find(([from, to]) => slot >= from && slot <= to);
    const owner = range?.[2]?.[1];
    if (owner === undefined) throw new Error(`no node serves slot ${slot}`);
    return owner;
  }

  /** A node's cluster id. */
  async idOf(port: number): Promise<string> {
    return this.onNode<string>(port, (c) => c.cluster('MYID'));
  }

  async dispose(): Promise<void> {
    await Promise.all(
      this.nodes.map(async (n) => {
        if (n.proc.exitCode === null && n.proc.signalCode === null) {
          const exited = new Promise((r) => n.proc.once('exit', r));
          n.proc.kill('SIGKILL');
          await exited;
        }
        rmSync(n.dir, { recursive: true, force: true });
      }),
    );
  }
}

function clusterNode(port: number): Node {
  const dir = mkdtempSync(join(tmpdir(), 'fastvlm-cluster-'));
  const args = ['--port', String(port), '--bind', HOST, '--dir', dir, '--logfile', join(dir, 'redis.log'), '--save', ''];
  args.push('--appendonly', 'yes', '--appendfsync', 'everysec', '--maxmemory-policy', 'noeviction');
  args.push('--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf'), '--cluster-node-timeout', '2000');
  return { port, dir, proc: spawn('redis-server', args, { stdio: 'ignore' }) };
}

/** `fn`'s answer on a fresh connection to `port`, or undefined when the server did not answer. */
async function ask<T>(port: number, fn: (c: Redis) => Promise<T>): Promise<T | undefined> {
  const c = new Redis({ host: HOST, port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 });
  // Refused connections while a server starts are expected; connect() reports them.
  c.on('error', () => undefined);
  try {
    await c.connect();
    return await fn(c);
  } catch {
    return undefined;
  } finally {
    c.disconnect();
  }
}
