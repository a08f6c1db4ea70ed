import { createHash } from 'node:crypto';
import { open, readFile, readdir, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { AppError } from '@fastvlm/contracts';
import { generateModel } from '../generator/index';
import { pullModel, type HubOptions } from '../hub/index';
import { GENERATED_DTYPES, type GeneratedDtype } from '../generator/variants';
import { SESSION_FILES, onnxFileName, parseDtypeSpec, type DtypeMap } from './dtype';

/** The generated random-weight model in the FastVLM export layout (tests, development). */
export const TINY_RANDOM = 'tiny-random';

export interface ResolvedModel {
  /** What the operator asked for, as clients see it. */
  id: string;
  dir: string;
  /** Content hash of the model's files; changes whenever the weights or configs do. */
  revision: string;
}

/**
 * `tiny-random@<name>`: the same generated files under a model id of its own, so
 * that one machine can run several pools (each id has its own queue, cache keys
 * and metrics) without real weights.
 */
const TINY_RANDOM_NAMED = /^tiny-random@[A-Za-z0-9][\w.-]{0,63}$/;

export function defaultCacheDir(): string {
  return join(homedir(), '.cache', 'fastvlm');
}

const HUB_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+(@[\w./-]+)?$/;

export interface ResolveOptions {
  /** Weight formats whose graphs a hub pull fetches (default fp32 for every session). */
  dtypes?: DtypeMap | undefined;
  /** Pull hub ids missing from the cache from here; without it only the cache is looked at. */
  hub?: HubOptions | undefined;
}

/**
 * Finds the folder holding `model`: a local folder, `tiny-random` (generated
 * once into the cache folder), or a hub id, from the cache or (with
 * `options.hub`) pulled into it.
 */
export async function resolveModel(model: string, cacheDir = defaultCacheDir(), options: ResolveOptions = {}): Promise<ResolvedModel> {
  if (model === TINY_RANDOM || TINY_RANDOM_NAMED.test(model)) {
    const dir = join(cacheDir, TINY_RANDOM);
    await ensureTinyRandom(dir, options.dtypes ?? parseDtypeSpec(undefined));
    return { id: model, dir, revision: await modelRevision(dir) };
  }
  if (isAbsolute(model) || model.startsWith('.') || (await isModelDir(model))) {
    const dir = resolve(model);
    if (!(await isModelDir(dir))) {
      throw new AppError('model_not_found', `The folder ${dir} does not hold a model (no config.json and onnx/ folder).`);
    }
    return { id: model, dir, revision: await modelRevision(dir) };
  }
  if (HUB_ID.test(model) && !model.split(/[/@]/).some((part) => part === '.' || part === '..')) {
    const [repo = model, rev = 'main'] = model.split('@');
    const dir = join(cacheDir, 'hub', ...repo.split('/'), rev);
    // The id stays exactly what was asked for (with its @revision): jobs carry
    // FASTVLM_MODEL and workers are matched to them by this id.
    if (options.hub) {
      // The pull returns at once when the cache already holds every file the dtypes need.
      await pullModel(model, cacheDir, options.dtypes ?? parseDtypeSpec(undefined), options.hub);
      return { id: model, dir, revision: await modelRevision(dir) };
    }
    if (await isModelDir(dir)) return { id: model, dir, revision: await modelRevision(dir) };
    throw new AppError(
      'model_not_found',
      `The model ${model} is not in the cache folder (${dir}). Pull it with npm run model:pull -- ${model}, ` +
        `put the ONNX export in that folder, set FASTVLM_MODEL to a local folder holding it, or set FASTVLM_MODEL=${TINY_RANDOM} ` +
        `for the generated random-weight test model.`,
    );
  }
  throw new AppError('model_not_found', `FASTVLM_MODEL="${model}" is neither a folder, a hub id (org/name[@revision]) nor ${TINY_RANDOM}[@name].`);
}

async function isModelDir(dir: string): Promise<boolean> {
  try {
    const [cfg, onnx] = await Promise.all([stat(join(dir, 'config.json')), stat(join(dir, 'onnx'))]);
    return cfg.isFile() && onnx.isDirectory();
  } catch {
    return false;
  }
}

const SAMPLE = 1 << 20;

/**
 * Every file besides the ONNX graphs that changes what the model answers:
 * configs, and the tokenizer (vocabulary, merges, added tokens, chat template).
 * Hashed whole; absent ones count as empty.
 */
const REVISION_FILES = [
  'config.json',
  'generation_config.json',
  'preprocessor_config.json',
  'processor_config.json',
  'tokenizer_config.json',
  'tokenizer.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'chat_template.json',
  'chat_template.jinja',
];

/**
 * Hash of the configs, the tokenizer and each ONNX file's size, head and tail.
 * Reading gigabytes at every start is too slow; head + tail + size tells exports
 * apart (weights sit throughout the file, and any re-export changes the header).
 * The revision keys the answer cache, so anything that can change an answer
 * must be part of it.
 */
async function modelRevision(dir: string): Promise<string> {
  const h = createHash('sha256');
  for (const name of REVISION_FILES) {
    h.update(name).update(await readFile(join(dir, name)).catch(() => Buffer.alloc(0)));
  }
  const onnx = (await readdir(join(dir, 'onnx'))).filter((f) => f.endsWith('.onnx') || f.endsWith('.onnx_data')).sort();
  for (const f of onnx) {
    const file = await open(join(dir, 'onnx', f), 'r');
    try {
      const { size } = await file.stat();
      h.update(`${f}:${size}`);
      const head = Buffer.alloc(Math.min(SAMPLE, size));
      await file.read(head, 0, head.length, 0);
      h.update(head);
      if (size > SAMPLE) {
        const tail = Buffer.alloc(Math.min(SAMPLE, size - SAMPLE));
        await file.read(tail, 0, tail.length, size - tail.length);
        h.update(tail);
      }
    } finally {
      await file.close();
    }
  }
  return h.digest('hex').slice(0, 16);
}

/** Generates the tiny model with every weight format asked for (plus fp32) unless its files are all there. */
async function ensureTinyRandom(dir: string, dtypes: DtypeMap): Promise<void> {
  const files = SESSION_FILES.map((f) => join(dir, onnxFileName(f, dtypes[f])));
  const present = await Promise.all(files.map((f) => stat(f).then(() => true, () => false)));
  if ((await isModelDir(dir)) && present.every(Boolean)) return;
  const wanted = new Set<string>(['fp32', ...Object.values(dtypes)]);
  const generated = (Object.keys(GENERATED_DTYPES) as GeneratedDtype[]).filter((d) => wanted.has(d));
  if (generated.length !== wanted.size) {
    throw new AppError('model_load_failed', `the generated test model has no ${[...wanted].filter((d) => !generated.includes(d as GeneratedDtype)).join(', ')} variant`);
  }
  await generateModel({ preset: 'tiny', outDir: dir, seed: 0, dtypes: generated });
}
