import { WorkerMetrics, createLogger, startTracing } from '@fastvlm/observability';
import { loadPipeline, type FastVlmPipeline } from '@fastvlm/pipeline';
import { restrictImageLoaders } from '@fastvlm/security';
import { AppError, RedisKeys, redisTargets } from '@fastvlm/contracts';
import { RedisFeatureStore, createRedis } from '@fastvlm/jobs';
import { loadWorkerConfig } from './config';
import { startWorkerHttp } from './http/worker-http';
import { AutoscaleSignals } from './telemetry/autoscale-signals';
import { WorkerTelemetry } from './telemetry/job-telemetry';
import { reportLoadFailure } from './telemetry/load-failure';
import { WorkerStatus } from './telemetry/worker-status';
import { WorkerApp, concurrencyOf, newWorkerId, servedQueue } from './worker-app';

/** What the steps after the drain (HTTP server, trace flush, a forced engine dispose) get beyond SHUTDOWN_TIMEOUT_MS. */
const SHUTDOWN_BACKSTOP_GRACE_MS = 5_000;

async function main(): Promise<void> {
  const cfg = loadWorkerConfig();
  // Same loaders as the gateway's checks allow: JPEG, PNG, WebP, GIF (first frame); libvips' others are blocked.
  restrictImageLoaders();
  const log = createLogger({ name: 'worker', level: cfg.LOG_LEVEL });
  // The autoscaler counts this worker as capacity on its way from now until it is ready (or gives up);
  // the id is the one it will announce in the registry.
  const workerId = newWorkerId();
  // Signals of its model pool's queue: the scaler decides per pool, from that pool's own figures.
  const autoscale = new AutoscaleSignals(cfg, workerId, servedQueue(cfg), concurrencyOf(cfg), log);
  autoscale.loading();
  const tracing = await startTracing({ serviceName: 'fastvlm-worker', env: cfg });
  const telemetry = new WorkerTelemetry(new WorkerMetrics(cfg.FASTVLM_MODEL, (err) => log.warn({ err }, 'metric observation failed')), new WorkerStatus());
  // A rejection nothing handled is a defect, but it must not end every job of the batch with the process: log it, count it, go on.
  process.on('unhandledRejection', (reason: unknown) => {
    telemetry.metrics.unhandledRejection();
    log.error({ err: reason }, 'unhandled promise rejection (a defect): logged and counted, the worker goes on');
  });
  // Up before the model loads: liveness answers during a long load, readiness says why it is not ready.
  const http = await startWorkerHttp({ host: cfg.WORKER_HTTP_HOST, port: cfg.WORKER_HTTP_PORT, status: telemetry.status, metrics: telemetry.metrics });
  log.info({ url: http.url, tracesExported: tracing.exporting }, 'worker http listening');
  log.info({ model: cfg.FASTVLM_MODEL, queue: servedQueue(cfg) }, 'loading model');
  // Image features are shared through the cache Redis; a lookup that fails is a miss, never an error.
  const featureRedis = createRedis(redisTargets(cfg).cache ?? redisTargets(cfg).queue, 'producer', 'worker-features', (err) =>
    log.warn({ err: err.message }, 'vision cache redis error'),
  );
  const featureStore = new RedisFeatureStore(featureRedis, new RedisKeys(cfg.FASTVLM_REDIS_PREFIX), {
    timeoutMs: cfg.CACHE_TIMEOUT_MS,
    onError: (op) => telemetry.metrics.cacheError('vision', op),
  });
  let engine: FastVlmPipeline;
  try {
    engine = await loadPipeline({
      model: cfg.FASTVLM_MODEL,
      cacheDir: cfg.FASTVLM_CACHE_DIR,
      threads: cfg.FASTVLM_THREADS,
      dtype: cfg.FASTVLM_DTYPE,
      device: cfg.FASTVLM_DEVICE,
      imageAspect: cfg.FASTVLM_IMAGE_ASPECT,
      maxBatchSize: cfg.FASTVLM_MAX_BATCH,
      batchWindowMs: cfg.FASTVLM_BATCH_WINDOW_MS,
      visionCache: {
        l1MaxBytes: cfg.VISION_CACHE_L1_BYTES,
        l2TtlSeconds: cfg.VISION_CACHE_TTL_S,
        store: cfg.VISION_CACHE_TTL_S > 0 ? featureStore : undefined,
      },
      hub: {
        endpoint: cfg.HF_ENDPOINT,
        token: cfg.HF_TOKEN,
        offline: cfg.HF_HUB_OFFLINE,
        log: (line) => log.info(line),
      },
      onStep: (rows) => telemetry.metrics.batchStep(rows),
    });
    await engine.warmup();
  } catch (e) {
    await autoscale.failed();
    await reportLoadFailure(redisTargets(cfg).queue, cfg.FASTVLM_REDIS_PREFIX, cfg.FASTVLM_MODEL);
    if (!cfg.FASTVLM_MODEL.startsWith('tiny-random') && e instanceof AppError && (e.code === 'model_not_found' || e.code === 'service_unavailable')) {
      throw new AppError(
        e.code,
        `${e.message} To try the stack without the real weights, set FASTVLM_MODEL=tiny-random (a generated random-weight model in the same layout).`,
      );
    }
    throw e;
  }
  const vision = (): { hits: number; misses: number } => {
    const v = engine.stats().vision;
    return { hits: v.hitsL1 + v.hitsL2, misses: v.misses };
  };
  telemetry.metrics.observeVisionCache(vision);
  const app = new WorkerApp(cfg, engine, log, telemetry, { id: workerId, activity: autoscale.meter });
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals += 1;
    if (signals > 1) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    log.info({ signal, timeoutMs: cfg.SHUTDOWN_TIMEOUT_MS }, 'draining: no new jobs, finishing active ones');
    // Backstop: app.stop() bounds its own steps; this also bounds the HTTP server and the trace exporter's flush.
    setTimeout(() => {
      log.error({ timeoutMs: cfg.SHUTDOWN_TIMEOUT_MS }, 'shutdown overran SHUTDOWN_TIMEOUT_MS and its grace: exiting now');
      process.exit(1);
    }, cfg.SHUTDOWN_TIMEOUT_MS + SHUTDOWN_BACKSTOP_GRACE_MS).unref();
    app
      .stop()
      .then(() => autoscale.close())
      .then(() => http.close())
      .then(() => featureRedis.disconnect())
      .then(() => tracing.shutdown())
      .then(
        () => process.exit(0),
        (e: unknown) => {
          log.error({ err: e }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    await app.start();
  } catch (e) {
    await autoscale.failed();
    throw e;
  }
  // Seconds from process start (not from this module's start) to taking jobs; not awaited: best effort.
  void autoscale.ready(Math.round(process.uptime() * 1000) / 1000);
}

main().catch((e: unknown) => {
  // The logger may not exist yet (bad configuration); stderr always does.
  process.stderr.write(`worker failed to start: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
