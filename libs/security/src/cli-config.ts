import { RedisEnvSchema, parseEnv } from '@fastvlm/contracts';

/** The keys CLI reads the same Redis settings as the gateway, once. */
export function loadCliConfig(env: NodeJS.ProcessEnv = process.env): { REDIS_URL: string; FASTVLM_REDIS_PREFIX: string } {
  return parseEnv(RedisEnvSchema, env);
}
