import type { z } from 'zod';
import { RedisEnvSchema, parseEnv } from '@fastvlm/contracts';

/** The keys CLI reads the same Redis settings as the gateway, once. */
export function loadCliConfig(env: NodeJS.ProcessEnv = process.env): z.infer<typeof RedisEnvSchema> {
  return parseEnv(RedisEnvSchema, env);
}
