import { createLogger, startTracing } from '@fastvlm/observability';
import { loadScalerConfig } from './config';
import { startScaler } from './scaler-app';

/** Shutdown steps get this long before the process exits anyway. */
const SHUTDOWN_TIMEOUT_MS = 10_000;

async function main(): Promise<void> {
  const cfg = loadScalerConfig();
  const log = createLogger({ name: 'scaler', level: cfg.LOG_LEVEL });
  const tracing = await startTracing({ serviceName: 'fastvlm-scaler', env: cfg });
  // A rejection nothing handled is a defect; it must not take KEDA's scaler down with it.
  process.on('unhandledRejection', (reason: unknown) => log.error({ err: reason }, 'unhandled promise rejection (a defect): logged, the scaler goes on'));
  const app = await startScaler(cfg, log);
  log.info({ grpc: app.grpcAddress, http: app.httpUrl, tickMs: cfg.SCALER_TICK_MS, strategy: cfg.SCALER_STRATEGY }, 'scaler ready');
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'stopping: no more ticks, streams ended, servers and Redis closed');
    setTimeout(() => {
      log.error({ timeoutMs: SHUTDOWN_TIMEOUT_MS }, 'shutdown overran its timeout: exiting now');
      process.exit(1);
    }, SHUTDOWN_TIMEOUT_MS).unref();
    app
      .close()
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
}

main().catch((e: unknown) => {
  // The logger may not exist yet (bad configuration); stderr always does.
  process.stderr.write(`scaler failed to start: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
