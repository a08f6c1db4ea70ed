import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { freePort } from '../support/redis-server';
import { until } from '../support/stack';
import { KUBECTL, containerEnv, expandK8s, named, noteMissingKubectl, quantityBytes, rendering, specOf, workload, type K8sDoc } from './support/manifests';

noteMissingKubectl();

function redisPod(docs: readonly K8sDoc[]) {
  const w = workload(docs, 'redis');
  const c = w.pod.containers.find((x) => x.name === 'redis');
  if (!c) throw new Error('no redis container');
  return { w, c };
}

/** redis.conf as the StatefulSet mounts it: its ConfigMap's file and the folder it is mounted at. */
function redisConf(docs: readonly K8sDoc[]): { text: string; path: string } {
  const { w, c } = redisPod(docs);
  const volume = (w.pod.volumes ?? []).find((v) => v.configMap);
  const mount = (c.volumeMounts ?? []).find((m) => m.name === volume?.name);
  const cm = named<{ data: Record<string, string> }>(docs, 'ConfigMap', volume?.configMap?.name ?? '');
  const [file, text] = Object.entries(cm.data)[0] ?? ['', ''];
  return { text, path: `${mount?.mountPath ?? ''}/${file}` };
}

function directives(conf: string): Map<string, string> {
  return new Map(
    conf
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => {
        const [k = '', ...rest] = l.split(/\s+/);
        return [k.toLowerCase(), rest.join(' ')] as const;
      }),
  );
}

describe.skipIf(!KUBECTL).each(['cpu-dev', 'gpu'] as const)('deploy/k8s Redis, rendering %s', (name) => {
  const docs = (): K8sDoc[] => rendering(name);

  it('is a StatefulSet with a PVC for its AOF, a readiness probe on redis-cli ping, and a memory limit equal to its request', () => {
    const { w, c } = redisPod(docs());
    expect(w.doc.kind).toBe('StatefulSet');
    const claims = specOf<{ volumeClaimTemplates?: { metadata: { name: string } }[] }>(w.doc).volumeClaimTemplates ?? [];
    const data = (c.volumeMounts ?? []).find((m) => m.mountPath === directives(redisConf(docs()).text).get('dir'));
    expect(claims.map((t) => t.metadata.name)).toContain(data?.name);
    expect(c.readinessProbe?.exec?.command?.join(' ')).toMatch(/redis-cli .*ping/);
    // A limit above the request would let Redis be killed for memory the node lent it.
    expect(c.resources?.limits?.memory).toBe(c.resources?.requests?.memory);
  });

  it('never evicts and appends every write to its AOF each second', () => {
    const d = directives(redisConf(docs()).text);
    expect(d.get('maxmemory-policy')).toBe('noeviction');
    expect(d.get('appendonly')).toBe('yes');
    expect(d.get('appendfsync')).toBe('everysec');
  });

  it('the container’s own command starts a Redis with noeviction, AOF everysec, and maxmemory set from the memory limit', async () => {
    const { c } = redisPod(docs());
    const conf = redisConf(docs());
    const limit = quantityBytes(c.resources?.limits?.memory ?? '');
    const fromLimit = c.env?.find((e) => e.valueFrom?.resourceFieldRef?.resource === 'limits.memory');
    expect(fromLimit?.valueFrom?.resourceFieldRef?.containerName).toBe(c.name);
    // Run it here as the kubelet would: the downward API's value in the env, $(…) expanded,
    // the mounted redis.conf at a temporary path, on a free loopback port and a temporary data folder.
    const dir = mkdtempSync(join(tmpdir(), 'fastvlm-redis-conf-'));
    const port = await freePort();
    const env = { ...containerEnv(docs(), c), [fromLimit?.name ?? '']: String(limit) };
    const local = conf.text.replace(/^port .*$/m, `port ${port}`).replace(/^bind .*$/m, 'bind 127.0.0.1').replace(/^dir .*$/m, `dir ${dir}`);
    writeFileSync(join(dir, 'redis.conf'), local);
    const argv = [...(c.command ?? []), ...(c.args ?? [])].map((a) => expandK8s(a, env).replaceAll(conf.path, join(dir, 'redis.conf')));
    expect(argv[0]).toBe('sh');
    const child = spawn(argv[0] ?? 'sh', argv.slice(1), { env: { PATH: process.env.PATH ?? '', ...env }, stdio: 'ignore' });
    const redis = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    // Refused connections while the server starts are expected; the poll below retries.
    redis.on('error', () => undefined);
    try {
      await until('the Redis to answer', async () => {
        try {
          if (redis.status !== 'ready') await redis.connect();
          return (await redis.ping()) === 'PONG';
        } catch {
          redis.disconnect();
          return false;
        }
      });
      const get = async (k: string): Promise<string | undefined> => (await redis.config('GET', k))[1];
      expect(await get('maxmemory-policy')).toBe('noeviction');
      expect(await get('appendonly')).toBe('yes');
      expect(await get('appendfsync')).toBe('everysec');
      const maxmemory = Number(await get('maxmemory'));
      expect(maxmemory).toBeGreaterThan(0);
      expect(maxmemory).toBeLessThan(limit);
      expect(maxmemory).toBeGreaterThanOrEqual(limit * 0.7);
    } finally {
      redis.disconnect();
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!KUBECTL)('deploy/k8s with an external Redis (components/external-redis)', () => {
  it('drops the StatefulSet, its Service, ConfigMap and NetworkPolicy, and points every app at the external URL', () => {
    const docs = rendering('cpu-dev + external-redis, monitoring');
    expect(docs.filter((d) => d.metadata.name === 'redis' || d.metadata.name.startsWith('redis-config')).map((d) => d.kind)).toEqual([]);
    for (const app of ['gateway', 'worker', 'scaler']) {
      const c = workload(docs, app).pod.containers[0];
      if (!c) throw new Error(`no ${app} container`);
      const url = new URL(containerEnv(docs, c).REDIS_URL ?? '');
      expect(url.hostname, app).not.toBe('redis');
    }
  });
});
