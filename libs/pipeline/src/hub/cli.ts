/**
 * npm run model:pull -- <org/name[@revision]> [--dtype SPEC] [--cache-dir DIR]
 *
 * Fills the model cache the way a worker would (same folder, same files), so an
 * init container or an operator can pull once and workers start offline.
 * Prints the model folder on stdout; everything else goes to stderr.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { AppError, envBoolean, parseEnv } from '@fastvlm/contracts';
import { parseDtypeSpec } from '../engine/dtype';
import { defaultCacheDir, resolveModel } from '../engine/model-repository';
import { DEFAULT_ENDPOINT } from './http';

const USAGE = `usage: npm run model:pull -- <org/name[@revision]> [--dtype SPEC] [--cache-dir DIR]

  --dtype      weight format: one for all sessions (fp32, fp16, q4, q4f16, int8, uint8, quantized, bnb4)
               or per session (vision_encoder=q4f16,embed_tokens=fp16,decoder_model_merged=q4);
               default FASTVLM_DTYPE, else fp32
  --cache-dir  model cache (default FASTVLM_CACHE_DIR, else ~/.cache/fastvlm)

environment: HF_ENDPOINT (default ${DEFAULT_ENDPOINT}), HF_TOKEN, HF_HUB_OFFLINE=1 (check the cache only)`;

const CliEnvSchema = z.object({
  HF_ENDPOINT: z.string().url().default(DEFAULT_ENDPOINT),
  HF_TOKEN: z.string().optional(),
  HF_HUB_OFFLINE: envBoolean.default(false),
  FASTVLM_CACHE_DIR: z.string().min(1).optional(),
  FASTVLM_DTYPE: z.string().optional(),
});

class UsageError extends Error {}

function parse(argv: string[]): { model: string; dtype: string | undefined; cacheDir: string | undefined } | 'help' {
  const { values, positionals } = (() => {
    try {
      return parseArgs({
        args: argv,
        strict: true,
        allowPositionals: true,
        options: { dtype: { type: 'string' }, 'cache-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      });
    } catch (err) {
      throw new UsageError(err instanceof Error ? err.message : String(err));
    }
  })();
  if (values.help) return 'help';
  if (positionals.length !== 1 || !positionals[0]) throw new UsageError('give exactly one model id');
  return { model: positionals[0], dtype: values.dtype, cacheDir: values['cache-dir'] };
}

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  if (args === 'help') {
    console.log(USAGE);
    return;
  }
  const env = (() => {
    try {
      return parseEnv(CliEnvSchema, process.env);
    } catch (err) {
      throw new UsageError(err instanceof Error ? err.message : String(err));
    }
  })();
  const cacheDir = resolve(args.cacheDir ?? env.FASTVLM_CACHE_DIR ?? defaultCacheDir());
  const dtypes = parseDtypeSpec(args.dtype ?? env.FASTVLM_DTYPE);
  const model = await resolveModel(args.model, cacheDir, {
    dtypes,
    hub: { endpoint: env.HF_ENDPOINT, token: env.HF_TOKEN, offline: env.HF_HUB_OFFLINE, log: (line) => console.error(line) },
  });
  console.error(`${args.model} is in ${model.dir} (content revision ${model.revision})`);
  console.log(model.dir);
}

main().catch((err: unknown) => {
  if (err instanceof UsageError) {
    console.error(`error: ${err.message}\n\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  console.error(err instanceof AppError ? `error (${err.code}): ${err.message}` : err instanceof Error ? (err.stack ?? err.message) : err);
  process.exitCode = 1;
});
