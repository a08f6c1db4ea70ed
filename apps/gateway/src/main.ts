import { loadGatewayConfig } from './config';
import { createGateway } from './gateway';
import { createLogger } from './http/logger';

async function main(): Promise<void> {
  const cfg = loadGatewayConfig();
  const log = createLogger(cfg.LOG_LEVEL);
  const app = await createGateway(cfg, log);
  await app.listen({ port: cfg.PORT, host: cfg.HOST });
  log.info({ url: await app.getUrl(), model: cfg.FASTVLM_MODEL }, 'gateway listening');
}

main().catch((e: unknown) => {
  process.stderr.write(`gateway failed to start: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
