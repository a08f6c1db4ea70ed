import { pino } from 'pino';
import { loadPipeline } from '@fastvlm/pipeline';
import { loadWorkerConfig } from './config';
import { WorkerApp } from './worker-app';

async function main(): Promise<void> {
  const cfg = loadWorkerConfig();
  const log = pino({ name: 'worker', level: cfg.LOG_LEVEL });
  log.info({ model: cfg.FASTVLM_MODEL }, 'loading model');
  const engine = await loadPipeline({
    model: cfg.FASTVLM_MODEL,
    cacheDir: cfg.FASTVLM_CACHE_DIR,
    threads: cfg.FASTVLM_THREADS,
  });
  await engine.warmup();
  const app = new WorkerApp(cfg, engine, log);
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals += 1;
    if (signals > 1) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    log.info({ signal }, 'draining: no new jobs, finishing active ones');
    app.stop().then(
      () => process.exit(0),
      (e: unknown) => {
        log.error({ err: e }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  await app.start();
}

main().catch((e: unknown) => {
  // The logger may not exist yet (bad configuration); stderr always does.
  process.stderr.write(`worker failed to start: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
