import { readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AppError } from '@fastvlm/contracts';
import { describeDtypes, type DtypeMap } from '../engine/dtype';
import { downloadFile } from './download';
import { hubCacheDir, isExternalDataOf, missingFiles, OPTIONAL_FILES, parseHubRef, REQUIRED_FILES, requiredFiles, sessionFiles } from './files';
import { DEFAULT_ENDPOINT, HubClient, type RemoteFile } from './http';
import { withDirLock } from './lock';
import { createProgress, formatBytes, type ProgressMode } from './progress';

/** How to reach the Hugging Face hub (HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE) and how to report a pull. */
export interface HubOptions {
  /** Default `https://huggingface.co`. */
  endpoint?: string | undefined;
  /** Bearer token for private and gated repos; sent to the endpoint's origin only. */
  token?: string | undefined;
  /** Never touch the network: use the cache or fail. */
  offline?: boolean | undefined;
  /** One line per event (start and end of each file, waiting for another process). */
  log?: ((line: string) => void) | undefined;
  /** Default `auto`: a bar when stderr is a terminal, else log lines. */
  progress?: ProgressMode | undefined;
  /** Milliseconds without an answer or without new bytes before a try counts as failed (default 30 s). */
  timeoutMs?: number | undefined;
  /** Tries per file for transient failures (default 5). */
  attempts?: number | undefined;
  /** Pause before the n-th retry is n times this (default 1 s). */
  retryDelayMs?: number | undefined;
  /** How often a process waiting for another one's pull checks the lock (default 500 ms). */
  lockPollMs?: number | undefined;
}

export interface PullResult {
  dir: string;
  /** The commit the files came from, when the hub stated it. */
  commit: string | undefined;
  /** Files fetched by this call, in order. */
  downloaded: string[];
}

const COMMIT_FILE = '.commit';

/**
 * Makes `<cacheDir>/hub/<org>/<name>/<revision>` hold what the pipeline needs
 * for `dtypes`, downloading only the files that are missing. Processes sharing
 * the cache take turns: the second one waits and then finds the files there.
 */
export async function pullModel(id: string, cacheDir: string, dtypes: DtypeMap, hub: HubOptions = {}): Promise<PullResult> {
  const ref = parseHubRef(id);
  const dir = hubCacheDir(cacheDir, ref);
  const missing = await missingFiles(dir, dtypes);
  if (missing.length === 0) return { dir, commit: await readCommit(dir), downloaded: [] };
  if (hub.offline) {
    const lacks = missing.length === requiredFiles(dtypes).length ? 'holds none of its files' : `lacks ${missing.join(', ')}`;
    throw new AppError(
      'model_not_found',
      `HF_HUB_OFFLINE is set, so ${id} is not downloaded, and the cache folder ${dir} ${lacks} ` +
        `(dtype ${describeDtypes(dtypes)}). Fill the cache where the hub is reachable (npm run model:pull -- ${id}) or unset HF_HUB_OFFLINE.`,
    );
  }
  const log = hub.log ?? (() => undefined);
  const lockOpts = { pollMs: hub.lockPollMs ?? 500, onWait: () => log(`another process is pulling ${id} into ${dir}; waiting for it`) };
  return withDirLock(dir, lockOpts, async (lost) => {
    if ((await missingFiles(dir, dtypes)).length === 0) return { dir, commit: await readCommit(dir), downloaded: [] };
    const client = new HubClient({ endpoint: hub.endpoint ?? DEFAULT_ENDPOINT, token: hub.token, timeoutMs: hub.timeoutMs ?? 30_000 });
    // Files added to a folder pulled before (another dtype) come from the same
    // commit as the configs already there, even if the branch has moved since.
    const recorded = await readCommit(dir);
    const plan = await planPull(client, ref.repo, recorded ?? ref.revision, dtypes, dir);
    const commit = plan.commit ?? recorded;
    const total = plan.files.reduce((sum, f) => sum + (f.size ?? 0), 0);
    log(`pulling ${id} (${describeDtypes(dtypes)}) from ${client.host}: ${plan.files.length} files, ${formatBytes(total)}, into ${dir}`);
    const progress = createProgress(hub.progress ?? 'auto', total, hub.log);
    const downloaded: string[] = [];
    try {
      for (const file of plan.files) {
        const stolen = lost();
        if (stolen) throw new AppError('model_load_failed', `Lost the lock on ${dir} while pulling ${id}: ${stolen.message}`);
        await downloadFile({
          client,
          repo: ref.repo,
          url: client.fileUrl(ref.repo, commit ?? ref.revision, file.path),
          file,
          dest: join(dir, ...file.path.split('/')),
          progress,
          timeoutMs: hub.timeoutMs ?? 30_000,
          attempts: hub.attempts ?? 5,
          retryDelayMs: hub.retryDelayMs ?? 1000,
        });
        downloaded.push(file.path);
      }
    } finally {
      progress.stop();
    }
    if (commit && commit !== recorded) await writeAtomically(join(dir, COMMIT_FILE), `${commit}\n`);
    log(`pulled ${id} into ${dir}${commit ? ` (commit ${commit})` : ''}`);
    return { dir, commit, downloaded };
  });
}

/**
 * What to fetch, in an order that makes an interrupted pull recognisable:
 * configs first, then for each session its external weights before its graph,
 * so that "every graph present" implies everything before it is present too.
 */
async function planPull(
  client: HubClient,
  repo: string,
  revision: string,
  dtypes: DtypeMap,
  dir: string,
): Promise<{ commit: string | undefined; files: RemoteFile[] }> {
  const listing = await client.listFiles(repo, revision);
  let commit = listing?.commit;
  const head = async (path: string): Promise<RemoteFile | undefined> => {
    if (listing && !listing.files.has(path)) return undefined;
    const meta = await client.head(repo, commit ?? revision, path);
    commit ??= meta?.commit;
    return meta;
  };
  const files: RemoteFile[] = [];
  const absent: string[] = [];
  const want = async (path: string, required: boolean): Promise<void> => {
    if (await isFile(join(dir, ...path.split('/')))) return;
    const meta = await head(path);
    if (meta) files.push(meta);
    else if (required) absent.push(path);
  };
  for (const path of REQUIRED_FILES) await want(path, true);
  for (const path of OPTIONAL_FILES) await want(path, false);
  for (const graph of sessionFiles(dtypes)) {
    if (await isFile(join(dir, ...graph.split('/')))) continue;
    for (const data of await externalData(graph, listing?.files, head)) files.push(data);
    await want(graph, true);
  }
  if (absent.length > 0) {
    throw new AppError(
      'model_not_found',
      `${repo}@${revision} on ${client.host} has no ${absent.join(', ')}. Check the id, and that the dtype ` +
        `(${describeDtypes(dtypes)}; FASTVLM_DTYPE or --dtype) is one the repo exports in its onnx/ folder.`,
    );
  }
  return { commit, files };
}

/** `<graph>_data` and its numbered chunks: from the listing when there is one, else probed one by one. */
async function externalData(
  graph: string,
  listed: Set<string> | undefined,
  head: (path: string) => Promise<RemoteFile | undefined>,
): Promise<RemoteFile[]> {
  const names = listed ? [...listed].filter((p) => isExternalDataOf(graph, p)).sort(byChunk) : undefined;
  const found: RemoteFile[] = [];
  if (names) {
    for (const name of names) {
      const meta = await head(name);
      if (meta) found.push(meta);
    }
    return found;
  }
  for (let i = 0; ; i++) {
    const meta = await head(i === 0 ? `${graph}_data` : `${graph}_data_${i}`);
    if (!meta) return found;
    found.push(meta);
  }
}

function byChunk(a: string, b: string): number {
  const n = (s: string): number => Number(/_(\d+)$/.exec(s)?.[1] ?? 0);
  return n(a) - n(b);
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isFile(),
    () => false,
  );
}

async function readCommit(dir: string): Promise<string | undefined> {
  const text = await readFile(join(dir, COMMIT_FILE), 'utf8').catch(() => '');
  return /^[0-9a-f]{40}$/.test(text.trim()) ? text.trim() : undefined;
}

async function writeAtomically(path: string, text: string): Promise<void> {
  await writeFile(`${path}.tmp`, text);
  await rename(`${path}.tmp`, path);
}
