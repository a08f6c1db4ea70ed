import { modelRouting } from '@fastvlm/contracts';
import { startTracing } from '@fastvlm/observability';
import { loadGatewayConfig } from './config';
import { createGateway } from './gateway';
import { createLogger } from './http/logger';

async function main(): Promise<void> {
  const cfg = loadGatewayConfig();
  const log = createLogger(cfg.LOG_LEVEL);
  // Before the app is built, so that every span it makes has a provider behind it.
  const tracing = await startTracing({ serviceName: 'fastvlm-gateway', env: cfg });
  const app = await createGateway(cfg, log);
  await app.listen({ port: cfg.PORT, host: cfg.HOST });
  const routing = modelRouting(cfg);
  log.info(
    { url: await app.getUrl(), model: routing.defaultModel, models: routing.models, aliases: Object.fromEntries(routing.aliases), tracesExported: tracing.exporting },
    'gateway listening',
  );
}

main().catch((e: unknown) => {
  process.stderr.write(`gateway failed to start: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
