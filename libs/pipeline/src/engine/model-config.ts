import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { AppError } from '@fastvlm/contracts';

const IntOrList = z.union([z.number().int(), z.array(z.number().int())]);

const ConfigJson = z.object({
  model_type: z.string(),
  image_token_index: z.number().int(),
  hidden_size: z.number().int().positive(),
  num_hidden_layers: z.number().int().positive(),
  num_attention_heads: z.number().int().positive(),
  num_key_value_heads: z.number().int().positive(),
  head_dim: z.number().int().positive().optional(),
  eos_token_id: IntOrList.optional(),
});

const GenerationConfigJson = z.object({ eos_token_id: IntOrList.optional() });

/** What the engine needs from `config.json` and `generation_config.json`. */
export interface ModelConfig {
  modelType: string;
  imageTokenId: number;
  hiddenSize: number;
  numLayers: number;
  numKvHeads: number;
  headDim: number;
  /** Tokens that end generation (generation_config first, as transformers does). */
  eosTokenIds: number[];
}

const list = (v: number | number[] | undefined): number[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

async function readJson(dir: string, name: string, required: boolean): Promise<unknown> {
  try {
    return JSON.parse(await readFile(join(dir, name), 'utf8'));
  } catch (e) {
    if (!required && (e as { code?: string }).code === 'ENOENT') return {};
    throw new AppError('model_load_failed', `Cannot read ${name} in ${dir}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

export async function loadModelConfig(dir: string): Promise<ModelConfig> {
  const cfg = ConfigJson.safeParse(await readJson(dir, 'config.json', true));
  if (!cfg.success) throw new AppError('model_load_failed', `config.json in ${dir} is not a FastVLM config: ${cfg.error.message}`);
  const gen = GenerationConfigJson.safeParse(await readJson(dir, 'generation_config.json', false));
  const c = cfg.data;
  const eos = list(gen.success ? gen.data.eos_token_id : undefined);
  return {
    modelType: c.model_type,
    imageTokenId: c.image_token_index,
    hiddenSize: c.hidden_size,
    numLayers: c.num_hidden_layers,
    numKvHeads: c.num_key_value_heads,
    headDim: c.head_dim ?? c.hidden_size / c.num_attention_heads,
    eosTokenIds: eos.length > 0 ? eos : list(c.eos_token_id),
  };
}
