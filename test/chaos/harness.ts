import { appendFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { RedisKeys, poolQueue, type JobEvent } from '@fastvlm/contracts';
import { PrivateRedis } from '../support/redis-server';
import { startGatewayProcess, stopProcess, type GatewayProcess } from '../support/processes';
import { auth, chatBody, png, postJson, type Tenant } from '../support/requests';
import { startWorker, uniquePrefix, type WorkerProcess } from '../support/stack';

/** Locks short enough that a lost worker's job is taken over within seconds, even on a loaded machine. */
export const FAST_LOCKS = { WORKER_LOCK_DURATION_MS: '2000', WORKER_STALLED_INTERVAL_MS: '1000' } as const;

/** Each scenario's measured figures, printed (and appended to $CHAOS_FIGURES_FILE when set) for the notes. */
export function reportFigures(scenario: string, figures: Record<string, unknown>): void {
  const line = JSON.stringify({ scenario, ...figures });
  console.log(`[chaos] ${line}`);
  const file = process.env.CHAOS_FIGURES_FILE;
  if (file) appendFileSync(file, `${line}\n`);
}

export interface StreamEntry {
  id: string;
  event: JobEvent;
}

export interface JobView {
  id: string;
  status: string;
  result: { choices: { message: { content: string } }[]; usage: { completion_tokens: number } } | null;
  error: { code: string; message: string } | null;
}

/**
 * One scenario's world: a private redis-server (AOF on, `appendfsync everysec`,
 * `noeviction`, as production runs it), and the gateway and worker processes
 * started on it. Everything is torn down by `dispose`.
 */
export class ChaosStack {
  readonly prefix = uniquePrefix();
  readonly keys = new RedisKeys(this.prefix);
  readonly gateways: GatewayProcess[] = [];
  readonly workers: WorkerProcess[] = [];
  /** A client that reconnects forever, for reading records while Redis comes and goes. */
  readonly redis: Redis;

  private constructor(readonly server: PrivateRedis) {
    this.redis = new Redis(server.url, { maxRetriesPerRequest: null, retryStrategy: () => 100 });
    this.redis.on('error', () => undefined);
  }

  static async start(): Promise<ChaosStack> {
    const stack = new ChaosStack(await PrivateRedis.start());
    await stack.assertProductionSettings();
    return stack;
  }

  /** The settings the guarantees are stated for: AOF with a write per second, and no eviction. */
  async assertProductionSettings(): Promise<void> {
    const get = async (name: string): Promise<string> => (await this.redis.config('GET', name))[1] ?? '';
    const settings = { appendonly: await get('appendonly'), appendfsync: await get('appendfsync'), policy: await get('maxmemory-policy') };
    if (settings.appendonly !== 'yes' || settings.appendfsync !== 'everysec' || settings.policy !== 'noeviction') {
      throw new Error(`private redis-server is not set up as production runs it: ${JSON.stringify(settings)}`);
    }
  }

  /** CONFIG SET on the private redis-server (maxmemory, policies). */
  async config(name: string, value: string): Promise<void> {
    await this.redis.config('SET', name, value);
  }

  get url(): string {
    return this.server.url;
  }

  async gateway(env: Record<string, string> = {}): Promise<GatewayProcess> {
    const g = await startGatewayProcess(this.prefix, this.url, env);
    this.gateways.push(g);
    return g;
  }

  async worker(env: Record<string, string> = {}): Promise<WorkerProcess> {
    const w = await startWorker(this.prefix, env, this.url);
    this.workers.push(w);
    return w;
  }

  /** Per-tenant overrides, as the admin API stores them. */
  async setTenant(tenant: Tenant, overrides: Record<string, unknown>): Promise<void> {
    await this.redis.set(`${this.keys.shared}:tenant:${tenant}`, JSON.stringify(overrides));
  }

  async record(id: string): Promise<Record<string, string>> {
    return this.redis.hgetall(this.keys.job(id));
  }

  async stream(id: string): Promise<StreamEntry[]> {
    const entries = await this.redis.xrange(this.keys.events(id), '-', '+');
    return entries.map(([sid, fields]) => ({ id: sid, event: JSON.parse(fields[1] ?? '{}') as JobEvent }));
  }

  /** How many runs have claimed the job so far: the `running` status events of its stream. */
  async runsStarted(id: string): Promise<number> {
    return (await this.stream(id)).filter((e) => e.event.type === 'status' && e.event.status === 'running').length;
  }

  /** BullMQ's view of a job (its id is the public job id): the set it sits in and why it failed. */
  async bullState(id: string): Promise<{ state: string; failedReason: string | null }> {
    // The stack's workers serve tiny-random: its pool's queue.
    const q = `${this.keys.bull()}:${poolQueue('tiny-random')}`;
    const [failed, completed, active, wait] = await Promise.all([
      this.redis.zscore(`${q}:failed`, id),
      this.redis.zscore(`${q}:completed`, id),
      this.redis.lpos(`${q}:active`, id),
      this.redis.lpos(`${q}:wait`, id),
    ]);
    const state = failed !== null ? 'failed' : completed !== null ? 'completed' : active !== null ? 'active' : wait !== null ? 'wait' : 'other';
    return { state, failedReason: await this.redis.hget(`${q}:${id}`, 'failedReason') };
  }

  async dispose(): Promise<void> {
    for (const p of [...this.gateways, ...this.workers]) {
      // A SIGSTOPped process must be continued before it can die of SIGKILL's exit handling.
      p.child.kill('SIGCONT');
      await stopProcess(p, 'SIGKILL');
    }
    this.redis.disconnect();
    await this.server.dispose();
  }
}

/** Posts an async job and returns its id (throws on anything but 202). */
export async function submitJob(gatewayUrl: string, body: Record<string, unknown>, tenant: Tenant = 'acme'): Promise<string> {
  const res = await postJson(`${gatewayUrl}/v1/jobs`, body, auth(tenant));
  if (res.status !== 202) throw new Error(`expected 202, got ${res.status}: ${await res.text()}`);
  return ((await res.json()) as JobView).id;
}

export async function jobView(gatewayUrl: string, id: string, tenant: Tenant = 'acme'): Promise<JobView> {
  const res = await fetch(`${gatewayUrl}/v1/jobs/${id}`, { headers: auth(tenant) });
  if (res.status !== 200) throw new Error(`GET /v1/jobs/${id}: ${res.status} ${await res.text()}`);
  return (await res.json()) as JobView;
}

/** A request body for a long answer (the tiny model never stops before max_tokens at temperature 0). */
export async function longBody(question: string, maxTokens: number, extra: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  return chatBody(await png(32, 32, 5), question, { max_tokens: maxTokens, ...extra });
}

/** Token events of a stream, in stream order. */
export function tokens(entries: StreamEntry[]): { index: number; text: string; attempt?: number; at: number }[] {
  const out: { index: number; text: string; attempt?: number; at: number }[] = [];
  entries.forEach((e, at) => {
    if (e.event.type === 'token') out.push({ index: e.event.index, text: e.event.text, ...(e.event.attempt !== undefined ? { attempt: e.event.attempt } : {}), at });
  });
  return out;
}

/** Times the index went down from one token event to the next: a spliced stream goes backwards. */
export function backwardSteps(ts: { index: number }[]): number {
  let n = 0;
  for (let i = 1; i < ts.length; i++) if ((ts[i]?.index ?? 0) <= (ts[i - 1]?.index ?? 0)) n++;
  return n;
}

export const quantile = (xs: number[], q: number): number => {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
};
