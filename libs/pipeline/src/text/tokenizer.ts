import { access, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { AutoTokenizer, env, type PreTrainedTokenizer } from '@huggingface/transformers';
import { AppError } from '@fastvlm/contracts';
import { RedecodingStreamDecoder, WindowedStreamDecoder, type StreamDecoder } from './stream-decoder';

export type { StreamDecoder } from './stream-decoder';

const tokenId = z.number().int().nonnegative();
const tokenIds = z.union([tokenId, z.array(tokenId), z.null()]).optional();

const ModelConfigSchema = z.object({
  image_token_index: tokenId,
  eos_token_id: tokenIds,
  // transformers.js copies these sub-configs over the top level before reading eos_token_id.
  decoder: z.object({ eos_token_id: tokenIds }).optional(),
  generator: z.object({ eos_token_id: tokenIds }).optional(),
  text_config: z.object({ eos_token_id: tokenIds }).optional(),
});

const GenerationConfigSchema = z.object({ eos_token_id: tokenIds });

const ProcessorConfigSchema = z.object({ image_token: z.string().min(1).optional() });

const TokenizerConfigSchema = z.object({
  chat_template: z.unknown().refine((t) => t !== undefined && t !== null, 'a chat template is required'),
  clean_up_tokenization_spaces: z.boolean().nullable().optional(),
});

const DEFAULT_IMAGE_TOKEN = '<image>';

async function readJson<T>(dir: string, file: string, schema: z.ZodType<T>, optional: true): Promise<T | undefined>;
async function readJson<T>(dir: string, file: string, schema: z.ZodType<T>, optional?: false): Promise<T>;
async function readJson<T>(dir: string, file: string, schema: z.ZodType<T>, optional = false): Promise<T | undefined> {
  const path = join(dir, file);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if (optional && (e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new AppError('model_load_failed', `cannot read ${path}`, undefined, { cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new AppError('model_load_failed', `${path} is not valid JSON`, undefined, { cause: e });
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new AppError('model_load_failed', `${path}: ${issues}`);
  }
  return parsed.data;
}

function asList(ids: number | number[] | null | undefined): number[] {
  if (ids === null || ids === undefined) return [];
  return Array.isArray(ids) ? ids : [ids];
}

/** The eos ids transformers.js's `generate()` stops on, resolved the way `_prepare_generation_config` does. */
function resolveEos(config: z.infer<typeof ModelConfigSchema>, generation: { eos_token_id?: number | number[] | null } | undefined) {
  let eos = config.eos_token_id;
  for (const sub of [config.decoder, config.generator, config.text_config]) {
    if (sub && 'eos_token_id' in sub) eos = sub.eos_token_id;
  }
  if (generation && 'eos_token_id' in generation) eos = generation.eos_token_id;
  return [...new Set(asList(eos))];
}

/**
 * FastVLM's text side: prompt construction exactly as transformers.js's
 * LlavaProcessor + Qwen2 tokenizer produce it, and detokenisation.
 */
export class TextCodec {
  private constructor(
    private readonly tokenizer: PreTrainedTokenizer,
    /** The placeholder string the processor expands, `<image>` for FastVLM. */
    readonly imageToken: string,
    readonly imageTokenId: number,
    /** Generation stops at any of these (from generation_config.json, else config.json). */
    readonly eosTokenIds: number[],
    private readonly cleansSpaces: boolean,
  ) {}

  /**
   * Loads tokenizer.json + tokenizer_config.json, config.json, and the optional
   * generation_config.json and processor_config.json from a local folder.
   * Never touches the network: transformers.js treats an absolute path that is
   * not a hub id as a local folder, and remote loading is switched off globally
   * (process-wide: this module's contract is that models are local folders).
   */
  static async load(dir: string): Promise<TextCodec> {
    const root = resolve(dir);
    const config = await readJson(root, 'config.json', ModelConfigSchema);
    const generation = await readJson(root, 'generation_config.json', GenerationConfigSchema, true);
    const processor = await readJson(root, 'processor_config.json', ProcessorConfigSchema, true);
    const tokenizerConfig = await readJson(root, 'tokenizer_config.json', TokenizerConfigSchema);
    // Checked here for a clear error; transformers.js would only report "not found locally".
    await access(join(root, 'tokenizer.json')).catch((e: unknown) => {
      throw new AppError('model_load_failed', `cannot read ${join(root, 'tokenizer.json')}`, undefined, { cause: e });
    });

    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    let tokenizer: PreTrainedTokenizer;
    try {
      tokenizer = await AutoTokenizer.from_pretrained(root, { local_files_only: true });
    } catch (e) {
      const reason = e instanceof Error ? e.message : String(e);
      throw new AppError('model_load_failed', `cannot load the tokenizer in ${root}: ${reason}`, undefined, { cause: e });
    }

    const imageToken = processor?.image_token ?? DEFAULT_IMAGE_TOKEN;
    const imageTokenId = tokenizer.convert_tokens_to_ids(imageToken);
    // An image token missing from the vocabulary would be split into ordinary
    // tokens and the engine would find no positions for the image features.
    if (imageTokenId !== config.image_token_index) {
      throw new AppError(
        'model_load_failed',
        `${root}: tokenizer maps ${imageToken} to ${String(imageTokenId)} but config.json has image_token_index ${config.image_token_index}`,
      );
    }
    const eosTokenIds = resolveEos(config, generation);
    if (eosTokenIds.length === 0) throw new AppError('model_load_failed', `${root}: no eos_token_id in config.json or generation_config.json`);

    // Same default as the tokenizer's own decode (absent means true).
    const cleansSpaces = tokenizerConfig.clean_up_tokenization_spaces ?? true;
    return new TextCodec(tokenizer, imageToken, imageTokenId, eosTokenIds, cleansSpaces);
  }

  /**
   * The model's chat template applied to one user turn `<image>\n{question}`
   * (FastVLM's training format); the template adds its default system prompt.
   */
  buildPrompt(question: string): string {
    if (question.includes(this.imageToken)) {
      // A second placeholder would become image tokens without image features.
      throw new AppError('invalid_request', `the question must not contain ${this.imageToken}`);
    }
    return this.tokenizer.apply_chat_template([{ role: 'user', content: `${this.imageToken}\n${question}` }], {
      tokenize: false,
      add_generation_prompt: true,
    });
  }

  /**
   * Prompt ids with the image placeholder expanded to `numImageTokens` copies
   * of `imageTokenId`, identical to LlavaProcessor's `input_ids`: it replaces
   * the first placeholder in the prompt string by N copies and tokenises the
   * result with the tokenizer's defaults (`add_special_tokens: true`, which adds
   * nothing for Qwen2: its post-processor is plain ByteLevel, no BOS).
   */
  encodePrompt(question: string, numImageTokens: number): number[] {
    if (!Number.isInteger(numImageTokens) || numImageTokens < 1) {
      throw new RangeError(`numImageTokens must be a positive integer, got ${numImageTokens}`);
    }
    const prompt = this.buildPrompt(question).replace(this.imageToken, this.imageToken.repeat(numImageTokens));
    const ids = this.tokenizer.encode(prompt, { add_special_tokens: true });
    const found = ids.reduce((n, id) => (id === this.imageTokenId ? n + 1 : n), 0);
    if (found !== numImageTokens) {
      throw new AppError('internal', `prompt has ${found} image tokens, expected ${numImageTokens}`);
    }
    return ids;
  }

  /** Ids of plain text, no special tokens added (special-token strings in it still map to their ids). */
  encode(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false });
  }

  /** Text of `ids` with special tokens (eos, `<image>`, chat markers) left out. */
  decode(ids: readonly number[]): string {
    if (ids.length === 0) return '';
    return this.tokenizer.decode([...ids], { skip_special_tokens: true });
  }

  /** Incremental decoder whose pieces concatenate to `decode(allIds)`. */
  createStreamDecoder(): StreamDecoder {
    const decode = (ids: readonly number[]) => this.decode(ids);
    return this.cleansSpaces ? new RedecodingStreamDecoder(decode) : new WindowedStreamDecoder(decode);
  }
}
