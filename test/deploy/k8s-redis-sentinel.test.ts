import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { IContainer } from 'kubernetes-models/v1';
import { describe, expect, it } from 'vitest';
import { redisTargets, type HostPort } from '@fastvlm/contracts';
import { createRedis, queueRedisProblem } from '@fastvlm/jobs';
import { loadGatewayConfig } from '../../apps/gateway/src/config';
import { loadScalerConfig } from '../../apps/scaler/src/config';
import { loadWorkerConfig } from '../../apps/worker/src/config';
import { freePort } from '../support/redis-server';
import { until } from '../support/stack';
import { unknownKeys, type AppName } from './support/app-config';
import {
  KUBECTL,
  container,
  containerEnv,
  expandK8s,
  named,
  noteMissingKubectl,
  ofKind,
  quantityBytes,
  render,
  rendering,
  selects,
  specOf,
  validateDoc,
  workload,
  workloads,
  type K8sDoc,
  type Workload,
} from './support/manifests';
import { allows, type Endpoint } from './support/network-policy';

noteMissingKubectl();

const NS = 'fastvlm';
const APPS = ['gateway', 'worker', 'scaler'] as const satisfies readonly AppName[];
const LOAD_CONFIG = { gateway: loadGatewayConfig, worker: loadWorkerConfig, scaler: loadScalerConfig } as const;

/** The component on the laptop overlay (rendered here), and on the GPU overlay with monitoring (one of RENDERINGS, so every deploy test checks it too). */
const WITH_SENTINEL = ['cpu-dev + redis-sentinel', 'gpu + redis-sentinel, monitoring'] as const;
type Name = (typeof WITH_SENTINEL)[number];
let cpuDev: K8sDoc[] | undefined;
function docsOf(name: Name): K8sDoc[] {
  if (name === 'gpu + redis-sentinel, monitoring') return rendering(name);
  cpuDev ??= render('overlays/cpu-dev', ['redis-sentinel']);
  return cpuDev;
}

interface StatefulSetSpec {
  replicas?: number;
  serviceName: string;
  volumeClaimTemplates?: { metadata: { name: string } }[];
}

/** The Redis StatefulSet: the one workload whose pods are `component: redis` (an error when there is not exactly one). */
function redisSet(docs: readonly K8sDoc[]): Workload & { spec: StatefulSetSpec } {
  const all = workloads(docs).filter((w) => w.component === 'redis');
  const w = all[0];
  if (!w || all.length !== 1 || w.doc.kind !== 'StatefulSet') throw new Error(`expected one Redis StatefulSet, found ${all.map((x) => `${x.doc.kind} ${x.doc.metadata.name}`).join(', ') || 'none'}`);
  return { ...w, spec: specOf<StatefulSetSpec>(w.doc) };
}

/** Pod N's DNS name in the StatefulSet's headless Service: `<set>-N.<service>.<namespace>.svc`. */
function podNames(docs: readonly K8sDoc[]): string[] {
  const set = redisSet(docs);
  return Array.from({ length: set.spec.replicas ?? 1 }, (_, i) => `${set.doc.metadata.name}-${i}.${set.spec.serviceName}.${NS}.svc`);
}

/** The files of the ConfigMap the Redis pods mount, and where each container mounts it. */
function redisFiles(docs: readonly K8sDoc[]): { volume: string; files: Record<string, string> } {
  const volume = (redisSet(docs).pod.volumes ?? []).find((v) => v.configMap);
  const cm = named<{ data: Record<string, string> }>(docs, 'ConfigMap', volume?.configMap?.name ?? '');
  return { volume: volume?.name ?? '', files: cm.data };
}

function file(docs: readonly K8sDoc[], name: string): string {
  const text = redisFiles(docs).files[name];
  if (text === undefined) throw new Error(`the Redis ConfigMap has no ${name}`);
  return text;
}

/** A config file's lines that are not comments, split into words. */
function lines(conf: string): string[][] {
  return conf
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(/\s+/));
}

function directive(conf: string, key: string): string | undefined {
  return lines(conf).find((w) => w[0] === key)?.[1];
}

/** `sentinel monitor <name> <host> <port> <quorum>`. */
function monitor(conf: string): { name: string; host: string; port: number; quorum: number } {
  const w = lines(conf).find((l) => l[0] === 'sentinel' && l[1] === 'monitor');
  if (!w) throw new Error('sentinel.conf has no monitor line');
  return { name: w[2] ?? '', host: w[3] ?? '', port: Number(w[4]), quorum: Number(w[5]) };
}

function port(c: IContainer, name: string): number {
  const p = (c.ports ?? []).find((x) => x.name === name);
  if (!p) throw new Error(`${c.name} declares no port ${name}`);
  return p.containerPort;
}

/** A container's environment in pod `podName` as the kubelet gives it: literal values with $(VAR) expanded, the downward API's fields. */
function podEnv(c: IContainer, podName: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = expandK8s(e.value, env);
    const field = e.valueFrom?.fieldRef?.fieldPath;
    if (field === 'metadata.name') env[e.name] = podName;
    if (field === 'metadata.namespace') env[e.name] = NS;
    if (e.valueFrom?.resourceFieldRef?.resource === 'limits.memory') env[e.name] = String(quantityBytes(c.resources?.limits?.memory ?? ''));
  }
  return env;
}

describe.skipIf(!KUBECTL).each(WITH_SENTINEL)('deploy/k8s with components/redis-sentinel, rendering %s', (name) => {
  const docs = (): K8sDoc[] => docsOf(name);

  it('every document is valid for its API and lives in the fastvlm namespace', () => {
    for (const d of docs()) {
      expect(() => validateDoc(d), `${d.kind} ${d.metadata.name}`).not.toThrow();
      if (d.kind !== 'Namespace') expect(d.metadata.namespace, `${d.kind} ${d.metadata.name}`).toBe(NS);
    }
  });

  it('runs one Redis StatefulSet of three pods, each with a redis and a sentinel container of the same image, a volume of its own, spread over nodes, one down at a time', () => {
    const set = redisSet(docs());
    expect(set.spec.replicas).toBe(3);
    const redis = container(set, 'redis');
    const sentinel = container(set, 'sentinel');
    expect(set.pod.containers.map((c) => c.name).sort()).toEqual(['redis', 'sentinel']);
    expect(sentinel.image).toBe(redis.image);
    // The AOF folder (redis.conf's `dir`) is a claim of each pod's own.
    const data = (redis.volumeMounts ?? []).find((m) => m.mountPath === directive(file(docs(), 'redis.conf'), 'dir'));
    expect((set.spec.volumeClaimTemplates ?? []).map((t) => t.metadata.name)).toContain(data?.name);
    const antiAffinity = set.pod.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? [];
    expect(antiAffinity.some((t) => t.podAffinityTerm.topologyKey === 'kubernetes.io/hostname' && selects(t.podAffinityTerm.labelSelector, set.podLabels))).toBe(true);
    const pdbs = ofKind<{ spec: { selector: Parameters<typeof selects>[0]; maxUnavailable?: number } }>(docs(), 'PodDisruptionBudget').filter((p) => selects(p.spec.selector, set.podLabels));
    expect(pdbs.map((p) => p.spec.maxUnavailable)).toEqual([1]);
  });

  it('each container has requests and limits (memory limit = request), a readiness probe that pings its own port, and writes only to its volumes', () => {
    const set = redisSet(docs());
    const volumes = new Map((set.pod.volumes ?? []).map((v) => [v.name, v]));
    const claims = new Set((set.spec.volumeClaimTemplates ?? []).map((t) => t.metadata.name));
    for (const [c, portName] of [
      [container(set, 'redis'), 'redis'],
      [container(set, 'sentinel'), 'sentinel'],
    ] as const) {
      for (const kind of ['requests', 'limits'] as const) {
        expect(c.resources?.[kind]?.cpu, `${c.name} ${kind}.cpu`).toBeDefined();
        expect(c.resources?.[kind]?.memory, `${c.name} ${kind}.memory`).toBeDefined();
      }
      expect(c.resources?.limits?.memory, c.name).toBe(c.resources?.requests?.memory);
      expect(c.readinessProbe?.exec?.command?.join(' '), c.name).toMatch(new RegExp(`redis-cli -p ${port(c, portName)} ping`));
      expect(c.livenessProbe, c.name).toBeDefined();
      expect(c.securityContext?.readOnlyRootFilesystem, c.name).toBe(true);
      expect(c.securityContext?.runAsNonRoot ?? set.pod.securityContext?.runAsNonRoot, c.name).toBe(true);
      for (const m of (c.volumeMounts ?? []).filter((x) => !x.readOnly)) {
        const v = volumes.get(m.name);
        expect(v?.emptyDir !== undefined || claims.has(m.name), `${c.name} writes to ${m.mountPath}: an emptyDir or the pod's claim`).toBe(true);
      }
    }
  });

  it('every Redis runs the base redis.conf (noeviction, AOF everysec) with maxmemory from its container’s memory limit', () => {
    const conf = file(docs(), 'redis.conf');
    expect(directive(conf, 'maxmemory-policy')).toBe('noeviction');
    expect(directive(conf, 'appendonly')).toBe('yes');
    expect(directive(conf, 'appendfsync')).toBe('everysec');
    const redis = container(redisSet(docs()), 'redis');
    const limit = (redis.env ?? []).find((e) => e.valueFrom?.resourceFieldRef?.resource === 'limits.memory');
    expect(limit?.valueFrom?.resourceFieldRef?.containerName).toBe('redis');
    expect(file(docs(), 'redis-ha.sh')).toMatch(new RegExp(`--maxmemory "\\$\\(\\(${limit?.name ?? '?'} /`));
  });

  it('the Sentinels monitor pod 0 by its DNS name with a quorum of 2 of 3, and resolve and announce host names', () => {
    const conf = file(docs(), 'sentinel.conf');
    const set = redisSet(docs());
    const m = monitor(conf);
    expect(m.host).toBe(podNames(docs())[0]);
    expect(m.port).toBe(port(container(set, 'redis'), 'redis'));
    expect(m.quorum).toBe(Math.floor((set.spec.replicas ?? 1) / 2) + 1);
    expect(m.quorum).toBe(2);
    expect(Number(directive(conf, 'port'))).toBe(port(container(set, 'sentinel'), 'sentinel'));
    // Sentinel reads host names only after these two, and must find them before the monitor line.
    const words = lines(conf).map((w) => w.join(' '));
    const at = (s: string): number => words.indexOf(s);
    expect(at('sentinel resolve-hostnames yes')).toBeGreaterThanOrEqual(0);
    expect(at('sentinel announce-hostnames yes')).toBeGreaterThanOrEqual(0);
    expect(at('sentinel resolve-hostnames yes')).toBeLessThan(words.findIndex((w) => w.startsWith('sentinel monitor ')));
    expect(at('sentinel announce-hostnames yes')).toBeLessThan(words.findIndex((w) => w.startsWith('sentinel monitor ')));
  });

  it('each pod announces its own DNS name, which the headless Service publishes before the pod is ready, and asks a Service of the Sentinels for the primary', () => {
    const set = redisSet(docs());
    const names = podNames(docs());
    for (const c of set.pod.containers) {
      names.forEach((podName, i) => expect(podEnv(c, `${set.doc.metadata.name}-${i}`).REDIS_HA_HOST, `${c.name} in pod ${i}`).toBe(podName));
      const service = named<{ spec: { selector: Record<string, string>; ports: { port: number; targetPort?: string | number }[] } }>(docs(), 'Service', podEnv(c, 'x').REDIS_HA_SENTINELS ?? '');
      expect(selects({ matchLabels: service.spec.selector }, set.podLabels)).toBe(true);
      expect(service.spec.ports.map((p) => p.port)).toContain(Number(directive(file(docs(), 'sentinel.conf'), 'port')));
    }
    const headless = named<{ spec: { clusterIP?: string; publishNotReadyAddresses?: boolean; selector: Record<string, string> } }>(docs(), 'Service', set.spec.serviceName);
    expect(headless.spec.clusterIP).toBe('None');
    expect(headless.spec.publishNotReadyAddresses).toBe(true);
    expect(selects({ matchLabels: headless.spec.selector }, set.podLabels)).toBe(true);
  });

  it('every app finds the primary through the three pods’ Sentinels under the monitored name, and no REDIS_URL names a Redis Service any more', () => {
    const sentinels = podNames(docs()).map((host) => `${host}:${port(container(redisSet(docs()), 'sentinel'), 'sentinel')}`);
    const services = new Set(ofKind(docs(), 'Service').flatMap((s) => [s.metadata.name, `${s.metadata.name}.${NS}`, `${s.metadata.name}.${NS}.svc`, `${s.metadata.name}.${NS}.svc.cluster.local`]));
    for (const app of APPS) {
      const w = workload(docs(), app);
      for (const c of w.pod.containers) {
        const env = containerEnv(docs(), c);
        const keys = new Set([...Object.keys(env), ...(c.env ?? []).map((e) => e.name)]);
        expect(unknownKeys(app, keys), `${app}/${c.name}: keys the ${app} config does not know`).toEqual([]);
        // Read as the app reads its environment at start-up.
        const { queue, cache } = redisTargets(LOAD_CONFIG[app](env));
        expect(queue.kind, app).toBe('sentinel');
        if (queue.kind !== 'sentinel') continue;
        expect(queue.sentinels.map((s) => `${s.host}:${s.port}`).sort(), app).toEqual(sentinels);
        expect(queue.name, app).toBe(monitor(file(docs(), 'sentinel.conf')).name);
        expect(cache, `${app}: the queue Redis serves the cache`).toBeNull();
        expect(services.has(new URL(env.REDIS_URL ?? '').hostname), `${app} REDIS_URL ${env.REDIS_URL ?? ''}`).toBe(false);
      }
    }
  });

  it('the NetworkPolicies let the apps reach the Redis pods’ Redis and Sentinels, the Redis pods reach each other, and nobody else in', () => {
    const set = redisSet(docs());
    const redis: Endpoint = { namespace: NS, labels: set.podLabels };
    for (const p of [port(container(set, 'redis'), 'redis'), port(container(set, 'sentinel'), 'sentinel')]) {
      for (const app of APPS) expect(allows(docs(), { namespace: NS, labels: workload(docs(), app).podLabels }, redis, p), `${app} → redis:${p}`).toBe(true);
      expect(allows(docs(), redis, redis, p), `redis → redis:${p}`).toBe(true);
      expect(allows(docs(), { namespace: NS, labels: { app: 'something-else' } }, redis, p), `another pod → redis:${p}`).toBe(false);
      for (const ns of ['default', 'monitoring']) expect(allows(docs(), { namespace: ns, labels: { app: 'any' } }, redis, p), `namespace ${ns} → redis:${p}`).toBe(false);
    }
  });
});

// ---------------------------------------------------------------------------
// The pods' own start-up scripts, run here as the kubelet would run them.

/** A Redis pod played on this machine: its containers as processes, its volumes as folders, its IP a loopback address of its own. */
interface LocalPod {
  index: number;
  ip: string;
  /** Volume name → folder (the claim's folder is kept across restarts, emptyDirs are not). */
  volumes: Map<string, string>;
  procs: Map<string, ChildProcess>;
}

class LocalCluster {
  readonly root = mkdtempSync(join(tmpdir(), 'fastvlm-redis-ha-'));
  readonly pods: LocalPod[] = [];
  private readonly logs: string[] = [];
  /** Pod DNS names and the Sentinel Service's name, resolved as the cluster's DNS would. */
  private readonly dns = new Map<string, string>();

  constructor(
    private readonly docs: readonly K8sDoc[],
    /** Container port → the free port used here (every pod has its own IP, so all use the same ones). */
    readonly ports: ReadonlyMap<number, number>,
    subnet: string,
  ) {
    podNames(docs).forEach((host, i) => {
      const ip = `${subnet}.${i + 1}`;
      this.dns.set(host, ip);
      this.pods.push({ index: i, ip, volumes: new Map(), procs: new Map() });
    });
  }

  private get set(): Workload & { spec: StatefulSetSpec } {
    return redisSet(this.docs);
  }

  pod(i: number): LocalPod {
    const p = this.pods[i];
    if (!p) throw new Error(`no pod ${i}`);
    return p;
  }

  resolve(host: string): string {
    return this.dns.get(host) ?? host;
  }

  local(hp: HostPort): HostPort {
    return { host: this.resolve(hp.host), port: this.ports.get(hp.port) ?? hp.port };
  }

  /** What a path of the pod's file system is on this machine: under the folder of the volume mounted there. */
  private localPaths(pod: LocalPod, text: string): string {
    const mounts = this.set.pod.containers.flatMap((c) => c.volumeMounts ?? []).sort((a, b) => b.mountPath.length - a.mountPath.length);
    let out = text;
    for (const m of mounts) {
      const dir = pod.volumes.get(m.name);
      if (!dir) throw new Error(`volume ${m.name} is not laid out`);
      out = out.replace(new RegExp(`(?<![\\w./-])${m.mountPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?=[/\\s"']|$)`, 'gm'), dir);
    }
    return out;
  }

  /**
   * Lays out the pod's volumes: the ConfigMap's files (with the addresses and
   * ports of this machine, and Sentinel's timings shortened so that a failover
   * takes seconds), fresh emptyDirs, and its claim, kept from an earlier start.
   */
  private layout(pod: LocalPod): void {
    const dir = (n: string): string => {
      const d = join(this.root, `pod-${pod.index}`, n);
      rmSync(d, { recursive: true, force: true });
      mkdirSync(d, { recursive: true });
      return d;
    };
    for (const v of this.set.pod.volumes ?? []) if (!v.configMap) pod.volumes.set(v.name, dir(v.name));
    for (const t of this.set.spec.volumeClaimTemplates ?? []) {
      const d = join(this.root, `pod-${pod.index}`, `claim-${t.metadata.name}`);
      mkdirSync(d, { recursive: true });
      pod.volumes.set(t.metadata.name, d);
    }
    const { volume, files } = redisFiles(this.docs);
    const config = dir(volume);
    pod.volumes.set(volume, config);
    for (const [name, text] of Object.entries(files)) {
      let out = text;
      if (name.endsWith('.conf')) {
        out = lines(text)
          .map((w) => {
            const [k = '', v = ''] = w;
            if (k === 'bind') return `bind ${pod.ip}`;
            if (k === 'port') return `port ${this.ports.get(Number(v)) ?? v}`;
            if (k === 'sentinel' && w[1] === 'monitor') return `sentinel monitor ${w[2] ?? ''} ${this.resolve(w[3] ?? '')} ${this.ports.get(Number(w[4])) ?? ''} ${w[5] ?? ''}`;
            if (k === 'sentinel' && w[1] === 'down-after-milliseconds') return `sentinel down-after-milliseconds ${w[2] ?? ''} 1000`;
            if (k === 'sentinel' && w[1] === 'failover-timeout') return `sentinel failover-timeout ${w[2] ?? ''} 5000`;
            return w.join(' ');
          })
          .join('\n');
      }
      writeFileSync(join(config, name), `${this.localPaths(pod, out)}\n`);
    }
  }

  private envOf(pod: LocalPod, c: IContainer, sentinelService: string): Record<string, string> {
    const env = podEnv(c, `${this.set.doc.metadata.name}-${pod.index}`);
    const mapped = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, this.resolve(v)]));
    return { ...mapped, REDIS_HA_SENTINELS: sentinelService, PATH: process.env.PATH ?? '' };
  }

  private run(pod: LocalPod, c: IContainer, argv: string[], env: Record<string, string>): ChildProcess {
    const [cmd = 'sh', ...rest] = argv.map((a) => this.localPaths(pod, expandK8s(a, env)));
    const child = spawn(cmd, rest, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const tag = `[pod ${pod.index} ${c.name}] `;
    const keep = (b: Buffer): void => {
      this.logs.push(...b.toString().split('\n').filter(Boolean).map((l) => tag + l));
      this.logs.splice(0, Math.max(0, this.logs.length - 400));
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    return child;
  }

  /**
   * Starts a pod's containers with their own command and environment, as the
   * kubelet does. `sentinelService` is where the Sentinel Service routes now: a
   * ready pod's address, or an address where nothing listens when none is ready.
   */
  start(i: number, sentinelService: string): void {
    const pod = this.pod(i);
    this.layout(pod);
    for (const c of this.set.pod.containers) {
      const env = this.envOf(pod, c, sentinelService);
      pod.procs.set(c.name, this.run(pod, c, [...(c.command ?? []), ...(c.args ?? [])], env));
    }
  }

  /** Runs the redis container's preStop hook to its end. */
  async preStop(i: number, sentinelService: string): Promise<number | null> {
    const pod = this.pod(i);
    const c = container(this.set, 'redis');
    const child = this.run(pod, c, c.lifecycle?.preStop?.exec?.command ?? [], this.envOf(pod, c, sentinelService));
    return new Promise((r) => child.once('exit', r));
  }

  /** SIGKILLs every container of the pod (a node lost). */
  async kill(i: number): Promise<void> {
    for (const p of this.pod(i).procs.values()) {
      if (p.exitCode !== null || p.signalCode !== null) continue;
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGKILL');
      await exited;
    }
    this.pod(i).procs.clear();
  }

  /** The pod's containers answer PING on their ports (their readiness probes). */
  async ready(i: number): Promise<boolean> {
    const pod = this.pod(i);
    for (const p of this.ports.values()) if ((await ask({ host: pod.ip, port: p }, (c) => c.ping())) !== 'PONG') return false;
    return true;
  }

  /** The folders of the pod's emptyDir volumes. */
  emptyDirs(i: number): string[] {
    return (this.set.pod.volumes ?? []).filter((v) => v.emptyDir).map((v) => this.pod(i).volumes.get(v.name) ?? '/nonexistent');
  }

  redisOf(i: number): HostPort {
    return this.local({ host: this.pod(i).ip, port: port(container(this.set, 'redis'), 'redis') });
  }

  sentinelOf(i: number): HostPort {
    return this.local({ host: this.pod(i).ip, port: port(container(this.set, 'sentinel'), 'sentinel') });
  }

  output(): string {
    return this.logs.join('\n');
  }

  async dispose(): Promise<void> {
    for (const p of this.pods) await this.kill(p.index);
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** `fn`'s answer on a fresh connection, or undefined when nothing answered. */
async function ask<T>(hp: HostPort, fn: (c: Redis) => Promise<T>): Promise<T | undefined> {
  const c = new Redis({ ...hp, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000, commandTimeout: 2000 });
  // Refused connections (a process starting or killed) are expected: the callers poll.
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

async function role(hp: HostPort): Promise<{ role: string; master?: string } | undefined> {
  const r = await ask(hp, (c) => c.call('ROLE') as Promise<unknown[]>);
  if (!r) return undefined;
  return r[0] === 'slave' ? { role: 'slave', master: `${String(r[1])}:${String(r[2])}` } : { role: String(r[0]) };
}

async function linkUp(hp: HostPort): Promise<boolean> {
  return /^master_link_status:up/m.test((await ask(hp, (c) => c.info('replication'))) ?? '');
}

async function masterSeenBy(sentinel: HostPort, name: string): Promise<string | undefined> {
  const addr = await ask(sentinel, (c) => c.call('SENTINEL', 'get-master-addr-by-name', name) as Promise<[string, string] | null>);
  return addr ? `${addr[0]}:${addr[1]}` : undefined;
}

async function sentinelState(sentinel: HostPort, name: string): Promise<Record<string, string> | undefined> {
  const flat = await ask(sentinel, (c) => c.call('SENTINEL', 'master', name) as Promise<string[]>);
  if (!flat) return undefined;
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i] ?? ''] = flat[i + 1] ?? '';
  return out;
}

const hp = (x: HostPort): string => `${x.host}:${x.port}`;

describe.skipIf(!KUBECTL)('components/redis-sentinel, its pods’ own scripts run on this machine', () => {
  it('form a Sentinel group from a fresh start that the apps’ config reaches; a lost primary fails over, its pod rejoins as a replica, and a planned stop hands the primary over', async () => {
    const docs = docsOf('cpu-dev + redis-sentinel');
    const set = redisSet(docs);
    const name = monitor(file(docs, 'sentinel.conf')).name;
    const ports = new Map([
      [port(container(set, 'redis'), 'redis'), await freePort()],
      [port(container(set, 'sentinel'), 'sentinel'), await freePort()],
    ]);
    // A loopback /24 of its own: pods get .1, .2, .3 (the same ports each, as pods do); nothing listens on .200.
    const subnet = `127.${10 + Math.floor(Math.random() * 240)}.${1 + Math.floor(Math.random() * 250)}`;
    const nowhere = `${subnet}.200`;
    const k = new LocalCluster(docs, ports, subnet);
    const client = { current: null as Redis | null };
    try {
      // A fresh start, pod by pod as the StatefulSet starts them (each once the one before is ready).
      // The Sentinel Service has no ready pod behind it for pod 0, then routes to a ready one.
      k.start(0, nowhere);
      await until('pod 0 to be ready', () => k.ready(0), 30_000);
      k.start(1, k.pod(0).ip);
      await until('pod 1 to be ready', () => k.ready(1), 30_000);
      k.start(2, k.pod(1).ip);
      await until('pod 2 to be ready', () => k.ready(2), 30_000);
      // Both processes run with a config file written into one of the pod's emptyDirs (Sentinel rewrites its own).
      for (const i of [0, 1, 2]) {
        for (const at of [k.redisOf(i), k.sentinelOf(i)]) {
          const configFile = /^config_file:(.*)$/m.exec((await ask(at, (c) => c.info('server'))) ?? '')?.[1]?.trim() ?? '';
          expect(k.emptyDirs(i).some((d) => configFile.startsWith(`${d}/`)), `${hp(at)} runs ${configFile}`).toBe(true);
          expect(existsSync(configFile)).toBe(true);
        }
      }

      expect((await role(k.redisOf(0)))?.role).toBe('master');
      for (const i of [1, 2]) {
        expect(await role(k.redisOf(i)), `pod ${i}`).toEqual({ role: 'slave', master: hp(k.redisOf(0)) });
        await until(`pod ${i} to be in sync`, () => linkUp(k.redisOf(i)), 20_000);
      }
      // Every Sentinel knows the primary, both replicas and the two other Sentinels (INFO every 10 s, hellos every 2 s).
      await until(
        'every Sentinel to know the whole group',
        async () => {
          for (const i of [0, 1, 2]) {
            const s = await sentinelState(k.sentinelOf(i), name);
            if (!s || s['num-slaves'] !== '2' || s['num-other-sentinels'] !== '2') return false;
            expect(s.quorum).toBe('2');
            expect(`${s.ip ?? ''}:${s.port ?? ''}`).toBe(hp(k.redisOf(0)));
          }
          return true;
        },
        30_000,
      );

      // The gateway's own config, from the rendered ConfigMaps, with the pods' names resolved here.
      const env = containerEnv(docs, container(workload(docs, 'gateway'), 'gateway'));
      const target = redisTargets(loadGatewayConfig(env)).queue;
      if (target.kind !== 'sentinel') throw new Error(`the gateway's queue Redis is ${target.kind}`);
      const errors: string[] = [];
      client.current = createRedis({ ...target, sentinels: target.sentinels.map((s) => k.local(s)) }, 'consumer', 'redis-ha-test', (e) => errors.push(e.message));
      const redis = client.current;
      expect(await queueRedisProblem(redis)).toBeNull();
      const cfg = async (key: string): Promise<string | undefined> => (await redis.config('GET', key))[1];
      expect(await cfg('appendfsync')).toBe('everysec');
      const limit = quantityBytes(container(set, 'redis').resources?.limits?.memory ?? '');
      expect(Number(await cfg('maxmemory'))).toBeLessThan(limit);
      expect(Number(await cfg('maxmemory'))).toBeGreaterThanOrEqual(limit * 0.7);
      await redis.set('before', 'kept');

      // Pod 0 lost (both containers, no shutdown): the two other Sentinels promote a replica.
      await k.kill(0);
      const promoted = await until(
        'a replica to be promoted',
        async () => {
          const seen = await masterSeenBy(k.sentinelOf(1), name);
          return seen && seen !== hp(k.redisOf(0)) && (await masterSeenBy(k.sentinelOf(2), name)) === seen ? seen : false;
        },
        30_000,
      );
      expect([hp(k.redisOf(1)), hp(k.redisOf(2))]).toContain(promoted);
      expect(await redis.get('before')).toBe('kept');
      await redis.set('after', 'failover');

      // Pod 0 comes back (new emptyDirs, its claim kept): a replica of the new primary, not a second primary.
      const survivor = promoted === hp(k.redisOf(1)) ? 1 : 2;
      k.start(0, k.pod(survivor).ip);
      await until('pod 0 to be ready again', () => k.ready(0), 30_000);
      expect(await role(k.redisOf(0))).toEqual({ role: 'slave', master: promoted });
      await until('pod 0 to catch up', async () => (await ask(k.redisOf(0), (c) => c.get('after'))) === 'failover', 20_000);
      expect(await masterSeenBy(k.sentinelOf(0), name)).toBe(promoted);

      // A planned stop of the primary (rollout, drain): its preStop hook has the Sentinels
      // promote a replica and returns once they name it; then the pod stops.
      const other = survivor === 1 ? 2 : 1;
      const started = Date.now();
      expect(await k.preStop(survivor, k.pod(other).ip)).toBe(0);
      expect(Date.now() - started, 'the hook returned before its 20 s bound').toBeLessThan(20_000);
      const now = await masterSeenBy(k.sentinelOf(other), name);
      const nextIndex = [0, other].find((i) => hp(k.redisOf(i)) === now);
      expect(nextIndex, `the Sentinels name ${now ?? 'nothing'}`).toBeDefined();
      await k.kill(survivor);
      await redis.set('handover', 'done');
      expect(await ask(k.redisOf(nextIndex ?? 0), (c) => c.get('handover'))).toBe('done');
      expect((await role(k.redisOf(nextIndex ?? 0)))?.role).toBe('master');
    } catch (e) {
      throw new Error(`${e instanceof Error ? e.message : String(e)}\n--- the pods' output\n${k.output()}`, { cause: e });
    } finally {
      client.current?.disconnect();
      await k.dispose();
    }
  }, 180_000);
});
