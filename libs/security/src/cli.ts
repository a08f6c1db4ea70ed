import { RedisKeys, redisTargets } from '@fastvlm/contracts';
import { createRedis, waitReady } from '@fastvlm/jobs';
import { AuditLog } from './audit-log';
import { loadCliConfig } from './cli-config';
import { ApiKeyStore } from './key-store';
import { runKeysCli } from './keys-cli';
import { migrateKeyLayout } from './layout-migration';

/** `npm run keys -- create|list|revoke …`: manages API keys in Redis. */
async function main(): Promise<number> {
  const cfg = loadCliConfig();
  const redis = createRedis(redisTargets(cfg).queue, 'producer', 'keys-cli', () => undefined);
  try {
    await waitReady(redis, 5000);
    return await runKeysCli(process.argv.slice(2), {
      // The gateway's own key layout: API keys and the audit log live in the shared slot.
      store: new ApiKeyStore(redis, new RedisKeys(cfg.FASTVLM_REDIS_PREFIX).shared),
      audit: new AuditLog(redis, new RedisKeys(cfg.FASTVLM_REDIS_PREFIX).shared),
      migrateLayout: () => migrateKeyLayout(redis, cfg.FASTVLM_REDIS_PREFIX),
      out: (line) => console.log(line),
    });
  } finally {
    redis.disconnect();
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  },
);
