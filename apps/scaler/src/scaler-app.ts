import type { Logger } from 'pino';
import { DecisionStore, ForecastStore, QueueObserver, SampleRecorder, SignalReader } from '@fastvlm/autoscaling';
import { RedisKeys, modelRouting, poolQueue, redisTargets } from '@fastvlm/contracts';
import { WorkerRegistry, createRedis, waitReady } from '@fastvlm/jobs';
import { ScalerMetrics } from '@fastvlm/observability';
import type { ScalerConfig } from './config';
import { externalScalerHandlers } from './grpc/external-scaler';
import { startGrpcServer } from './grpc/grpc-server';
import { loadExternalScaler } from './grpc/proto';
import { startScalerHttp } from './http/scaler-http';
import { QueueEventsHub } from './scaling/queue-events-hub';
import { ScalerService } from './scaling/scaler-service';

/** How long start-up waits for Redis before serving anyway (calls answer UNAVAILABLE until it is back). */
const REDIS_START_WAIT_MS = 5_000;

export interface ScalerApp {
  /** `host:port` of the gRPC server (KEDA's `scalerAddress`). */
  grpcAddress: string;
  /** `http://host:port` of /metrics and /health. */
  httpUrl: string;
  metrics: ScalerMetrics;
  /** Stops ticking, ends streams, closes the servers and Redis (once, however often called). */
  close(): Promise<void>;
}

/** Wires the scaler: Redis and the signal stores, the use cases, the gRPC and HTTP servers; then starts ticking. */
export async function startScaler(cfg: ScalerConfig, log: Logger): Promise<ScalerApp> {
  const keys = new RedisKeys(cfg.FASTVLM_REDIS_PREFIX);
  const sink = (err: Error, connection: string): void => log.warn({ err: err.message, connection }, 'redis connection error; reconnecting');
  // Fail fast: while Redis is away a call answers UNAVAILABLE at once instead of holding KEDA's call.
  const redis = createRedis(redisTargets(cfg).queue, 'producer', 'scaler', sink);
  const registry = new WorkerRegistry(redis, keys);
  const readyWorkers = async (queue: string, nowMs: number): Promise<number> => (await registry.alive(nowMs)).filter((w) => w.queue === queue).length;
  const recorder = new SampleRecorder(redis, keys);
  const observer = new QueueObserver(new SignalReader(redis, keys, readyWorkers), recorder, new ForecastStore(redis, keys, recorder));
  const metrics = new ScalerMetrics((err) => log.warn({ err }, 'metric observation failed'));
  const routing = modelRouting(cfg);
  const service = new ScalerService({
    observer,
    decisions: new DecisionStore(redis, keys),
    metrics,
    log,
    // The same models as the gateways': a ScaledObject naming no queue scales the default model's pool.
    defaultQueue: poolQueue(routing.defaultModel),
    ownQueues: routing.models.map(poolQueue),
    defaultStrategy: cfg.SCALER_STRATEGY,
    tickMs: cfg.SCALER_TICK_MS,
    queueEvents: (handlers) =>
      new QueueEventsHub({
        prefix: keys.bull(),
        // Blocking reads of the queue's event stream: a connection each, reconnecting forever.
        connect: (queue) => createRedis(redisTargets(cfg).queue, 'subscriber', `scaler-events-${queue}`, sink),
        handlers,
        log,
      }),
  });
  const grpc = await startGrpcServer({
    host: cfg.SCALER_GRPC_HOST,
    port: cfg.SCALER_GRPC_PORT,
    service: loadExternalScaler().service,
    handlers: externalScalerHandlers(service, metrics, log),
  });
  const http = await startScalerHttp({
    host: cfg.SCALER_HTTP_HOST,
    port: cfg.SCALER_HTTP_PORT,
    status: { pingRedis: () => redis.ping(), grpcServing: () => grpc.serving },
    metrics,
  });
  await waitReady(redis, REDIS_START_WAIT_MS).catch(() => log.warn({ url: cfg.REDIS_URL }, 'Redis does not answer yet; calls answer UNAVAILABLE until it does'));
  await service.start();
  let closing: Promise<void> | null = null;
  return {
    grpcAddress: grpc.address,
    httpUrl: http.url,
    metrics,
    close: () =>
      (closing ??= (async () => {
        await service.stop();
        await grpc.close();
        await http.close();
        redis.disconnect();
        await metrics.registry.shutdown();
      })()),
  };
}
