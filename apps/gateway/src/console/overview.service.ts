import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { STRATEGY_NAMES, readDecision, type DecisionRecord } from '@fastvlm/autoscaling';
import type { RedisKeys } from '@fastvlm/contracts';
import type { JobRecord, JobStore, WorkerRegistry } from '@fastvlm/jobs';
import type { GatewayMetrics, MetricPoint } from '@fastvlm/observability';
import type { Pools } from '../infra/pools';
import { JOB_STORE, KEYS, POOLS, REDIS, REGISTRY } from '../infra/tokens';
import { readQueue } from '../metrics/queue-snapshot';
import { METRICS } from '../metrics/tokens';
import { ModelCatalog, type PoolModel } from '../models/model-catalog';
import type { ConsoleAutoscaler, ConsoleJob, ConsoleOverview, ConsolePool } from './overview-types';

const RECENT_JOBS = 20;
const CHAT_ROUTE = '/v1/chat/completions';

/**
 * The figures the console's cluster view polls: each model pool's queue and
 * autoscaler decision (the default pool's also as the top-level `queue` and
 * `autoscaler` the panels draw), workers, this gateway's traffic, the tenant's jobs.
 */
@Injectable()
export class OverviewService {
  constructor(
    @Inject(ModelCatalog) private readonly catalog: ModelCatalog,
    @Inject(POOLS) private readonly pools: Pools,
    @Inject(REGISTRY) private readonly registry: WorkerRegistry,
    @Inject(JOB_STORE) private readonly store: JobStore,
    @Inject(METRICS) private readonly metrics: GatewayMetrics,
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(KEYS) private readonly keys: RedisKeys,
  ) {}

  async read(tenant: string): Promise<ConsoleOverview> {
    const now = Date.now();
    const [pools, workers, jobs, requests, durations] = await Promise.all([
      this.catalog.pools().then((all) => Promise.all(all.map((p) => this.pool(p, now)))),
      this.registry.alive(now),
      this.store.recent(tenant, RECENT_JOBS),
      this.metrics.registry.points('requests'),
      this.metrics.registry.points('requestDuration'),
    ]);
    const main = pools.find((p) => p.model === this.catalog.defaultModel);
    // The catalog lists every configured model, the default first: this is a defect.
    if (!main) throw new Error(`no pool for the default model ${this.catalog.defaultModel}`);
    return {
      model: main.model,
      time: now,
      queue: { name: main.queue, counts: main.counts, oldest_wait_seconds: main.oldest_wait_seconds },
      workers: workers.map((w) => ({ id: w.id, model: w.model, revision: w.revision, dtype: w.dtype, device: w.device, started_at: w.startedAt })),
      gateway: { completions: answered(requests), latency: chatLatency(durations) },
      jobs: jobs.map(toConsoleJob),
      autoscaler: main.autoscaler,
      pools,
    };
  }

  private async pool(p: PoolModel, now: number): Promise<ConsolePool> {
    const { queue } = this.pools.of(p.id);
    const [snapshot, decision] = await Promise.all([readQueue(queue, now), readDecision(this.redis, this.keys, queue.name)]);
    return {
      model: p.id,
      aliases: [...this.catalog.routing.aliases].filter(([, id]) => id === p.id).map(([alias]) => alias),
      configured: p.configured,
      workers: p.workers,
      queue: queue.name,
      counts: snapshot.counts,
      oldest_wait_seconds: snapshot.oldestWaitSeconds,
      autoscaler: decision && toConsoleAutoscaler(decision),
    };
  }
}

/** Chat completions this gateway answered successfully. */
function answered(points: MetricPoint[]): number {
  return points
    .filter((p) => p.labels.route === CHAT_ROUTE && p.labels.status?.startsWith('2'))
    .reduce((n, p) => n + (typeof p.value === 'number' ? p.value : 0), 0);
}

function chatLatency(points: MetricPoint[]): ConsoleOverview['gateway']['latency'] {
  const p = points.find((x) => x.labels.route === CHAT_ROUTE && x.labels.method === 'POST');
  return p && typeof p.value !== 'number' ? { boundaries: p.value.boundaries, counts: p.value.counts } : { boundaries: [], counts: [] };
}

function toConsoleAutoscaler(d: DecisionRecord): ConsoleAutoscaler {
  const s = d.signals;
  return {
    at: d.at,
    queue: d.queue,
    scaled_object: d.scaledObject,
    strategy: d.strategy,
    desired: STRATEGY_NAMES.map((strategy) => ({ strategy, replicas: d.desired[strategy] })),
    mode: d.mode,
    forecast_rps: d.forecastRps,
    active: d.active,
    signals: {
      queued: s.queued,
      active: s.active,
      ready: s.ready,
      loading: s.loading,
      arrivals_per_second: s.arrivalsPerSecond,
      replica_capacity: s.replicaCapacity,
      replica_capacity_measured: s.replicaCapacityMeasured,
      startup_seconds: s.startupSeconds,
      startup_measured: s.startupMeasured,
    },
  };
}

function toConsoleJob(r: JobRecord): ConsoleJob {
  return {
    id: r.id,
    status: r.status,
    created_at: r.createdAt,
    started_at: r.startedAt ?? null,
    finished_at: r.finishedAt ?? null,
    queue_ms: r.startedAt !== undefined ? Math.max(0, r.startedAt - r.createdAt) : null,
    latency_ms: r.finishedAt !== undefined ? Math.max(0, r.finishedAt - r.createdAt) : null,
    completion_tokens: r.result?.usage.completionTokens ?? null,
    finish_reason: r.result?.finishReason ?? null,
    error_code: r.error?.code ?? null,
  };
}
