import { Inject, Injectable } from '@nestjs/common';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { STRATEGY_NAMES, readDecision, type DecisionRecord } from '@fastvlm/autoscaling';
import { INFERENCE_QUEUE, type RedisKeys } from '@fastvlm/contracts';
import type { JobRecord, JobStore, WorkerRegistry } from '@fastvlm/jobs';
import type { GatewayMetrics, MetricPoint } from '@fastvlm/observability';
import { CONFIG, type GatewayConfig } from '../config';
import { JOB_STORE, KEYS, QUEUE, REDIS, REGISTRY } from '../infra/tokens';
import { readQueue } from '../metrics/queue-snapshot';
import { METRICS } from '../metrics/tokens';
import type { ConsoleAutoscaler, ConsoleJob, ConsoleOverview } from './overview-types';

const RECENT_JOBS = 20;
const CHAT_ROUTE = '/v1/chat/completions';

/** The figures the console's cluster view polls: queue, workers, this gateway's traffic, the tenant's jobs, the autoscaler's decision. */
@Injectable()
export class OverviewService {
  constructor(
    @Inject(CONFIG) private readonly cfg: GatewayConfig,
    @Inject(QUEUE) private readonly queue: Queue,
    @Inject(REGISTRY) private readonly registry: WorkerRegistry,
    @Inject(JOB_STORE) private readonly store: JobStore,
    @Inject(METRICS) private readonly metrics: GatewayMetrics,
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(KEYS) private readonly keys: RedisKeys,
  ) {}

  async read(tenant: string): Promise<ConsoleOverview> {
    const now = Date.now();
    const [queue, workers, jobs, requests, durations, decision] = await Promise.all([
      readQueue(this.queue, now),
      this.registry.alive(now),
      this.store.recent(tenant, RECENT_JOBS),
      this.metrics.registry.points('requests'),
      this.metrics.registry.points('requestDuration'),
      readDecision(this.redis, this.keys, INFERENCE_QUEUE),
    ]);
    return {
      model: this.cfg.FASTVLM_MODEL,
      time: now,
      queue: { counts: queue.counts, oldest_wait_seconds: queue.oldestWaitSeconds },
      workers: workers.map((w) => ({ id: w.id, model: w.model, revision: w.revision, dtype: w.dtype, device: w.device, started_at: w.startedAt })),
      gateway: { completions: answered(requests), latency: chatLatency(durations) },
      jobs: jobs.map(toConsoleJob),
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
