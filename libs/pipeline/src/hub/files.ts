import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { AppError } from '@fastvlm/contracts';
import { onnxFileName, SESSION_FILES, type DtypeMap } from '../engine/dtype';

/** Configs and tokenizer every FastVLM export has; the pipeline cannot start without them. */
export const REQUIRED_FILES = [
  'config.json',
  'generation_config.json',
  'preprocessor_config.json',
  'processor_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
] as const;

/** Tokenizer extras some exports carry and others fold into tokenizer_config.json. */
export const OPTIONAL_FILES = ['special_tokens_map.json', 'added_tokens.json', 'chat_template.json', 'chat_template.jinja'] as const;

/** The ONNX graph of each session in the dtype chosen for it. */
export function sessionFiles(dtypes: DtypeMap): string[] {
  return SESSION_FILES.map((s) => onnxFileName(s, dtypes[s]));
}

/**
 * External weights of an ONNX graph: `<graph>_data`, and the numbered chunks
 * (`<graph>_data_1`, …) exports use when the weights exceed one protobuf's 2 GB.
 */
export function isExternalDataOf(graph: string, path: string): boolean {
  if (!path.startsWith(`${graph}_data`)) return false;
  const rest = path.slice(graph.length + '_data'.length);
  return rest === '' || /^_\d+$/.test(rest);
}

/** Files the pipeline needs for `dtypes` (configs, tokenizer, one graph per session), by relative path. */
export function requiredFiles(dtypes: DtypeMap): string[] {
  return [...REQUIRED_FILES, ...sessionFiles(dtypes)];
}

/** Required files that `dir` lacks; empty when the pipeline can load from it. */
export async function missingFiles(dir: string, dtypes: DtypeMap): Promise<string[]> {
  const present = await Promise.all(
    requiredFiles(dtypes).map((f) =>
      stat(join(dir, ...f.split('/'))).then(
        (s) => s.isFile(),
        () => false,
      ),
    ),
  );
  return requiredFiles(dtypes).filter((_, i) => !present[i]);
}

export interface HubRef {
  /** `org/name`. */
  repo: string;
  /** Branch, tag or commit as asked for; `main` when none was given. */
  revision: string;
}

const REPO = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;
const REVISION = /^[\w.-]+(\/[\w.-]+)*$/;

/**
 * Splits `org/name[@revision]`. Names and revisions become cache folders, so
 * any `.`/`..` segment (which would climb out of the cache) is refused.
 */
export function parseHubRef(id: string): HubRef {
  const at = id.indexOf('@');
  const repo = at === -1 ? id : id.slice(0, at);
  const revision = at === -1 ? 'main' : id.slice(at + 1);
  const segments = [...repo.split('/'), ...revision.split('/')];
  if (!REPO.test(repo) || !REVISION.test(revision) || segments.some((s) => s === '.' || s === '..')) {
    throw new AppError('model_not_found', `"${id}" is not a Hugging Face hub id (org/name[@revision], without "." or ".." parts).`);
  }
  return { repo, revision };
}

/** `<cacheDir>/hub/<org>/<name>/<revision>`: the revision as asked for, so that `main` and a pinned tag never mix. */
export function hubCacheDir(cacheDir: string, ref: HubRef): string {
  return join(cacheDir, 'hub', ...ref.repo.split('/'), ...ref.revision.split('/'));
}
