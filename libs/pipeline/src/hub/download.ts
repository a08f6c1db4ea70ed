import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { AppError } from '@fastvlm/contracts';
import { describeCause, IdleTimer, type HubClient, type RemoteFile } from './http';
import { formatBytes, type Progress } from './progress';

export interface DownloadOptions {
  client: HubClient;
  repo: string;
  url: URL;
  file: RemoteFile;
  /** Final path; the bytes gather in `<dest>.incomplete` until they are complete and verified. */
  dest: string;
  progress: Progress;
  timeoutMs: number;
  /** Tries per file for transient failures (each one resumes where the last stopped). */
  attempts: number;
  retryDelayMs: number;
}

/**
 * Downloads one file resumably and publishes it with a rename only once it is
 * complete and, where the hub states a SHA-256, verified. Transient failures
 * are retried, resuming with a byte range; the partial file outlives the
 * process so that a restarted pod resumes too.
 */
export async function downloadFile(o: DownloadOptions): Promise<void> {
  const partial = `${o.dest}.incomplete`;
  await mkdir(dirname(o.dest), { recursive: true });
  for (let whole = 0; ; whole++) {
    const resumed = await transfer(o, partial);
    const expected = o.file.sha256;
    const actual = expected ? await sha256File(partial) : undefined;
    if (actual === expected) break;
    await rm(partial, { force: true });
    // A partial left by an earlier run may itself have been the bad part: one
    // fresh download settles it before the file is declared corrupt.
    if (resumed && whole === 0) continue;
    throw new AppError(
      'model_load_failed',
      `${o.file.path} of ${o.repo} downloaded from ${o.url.host} is corrupt: its SHA-256 is ${actual}, the hub states ${expected}. ` +
        `Nothing was kept; pull again, and if this recurs something between here and the hub alters the file.`,
    );
  }
  await rename(partial, o.dest);
}

/** Fills `partial` completely; true when some of it came from an earlier try or run. */
async function transfer(o: DownloadOptions, partial: string): Promise<boolean> {
  let resumed = false;
  for (let attempt = 1; ; attempt++) {
    try {
      resumed = (await fetchOnce(o, partial)) || resumed;
      return resumed;
    } catch (e) {
      if (!(e instanceof AppError) || e.code !== 'service_unavailable' || attempt >= o.attempts) throw e;
      await delay(o.retryDelayMs * attempt);
    }
  }
}

/** One request for the rest of the file; true when it continued an existing partial. */
async function fetchOnce(o: DownloadOptions, partial: string): Promise<boolean> {
  const { size, sha256, path } = o.file;
  // Only a file with a stated hash may be resumed: otherwise a partial left
  // from another commit could be completed into a silently wrong file.
  let offset = sha256 ? await fileSize(partial) : 0;
  if (size !== undefined && offset > size) offset = 0;
  if (size !== undefined && offset === size) return true;
  const idle = new IdleTimer(o.timeoutMs);
  idle.arm();
  let written = 0;
  try {
    const res = await o.client.get(o.url, offset > 0 ? { range: `bytes=${offset}-` } : {}, idle.signal, o.repo);
    if (res.status === 416 || (res.status === 206 && rangeStart(res) !== offset)) {
      await res.body?.cancel();
      await rm(partial, { force: true });
      throw new AppError('service_unavailable', `The hub at ${o.url.host} could not continue ${path} at byte ${offset}; starting it over.`);
    }
    // A 200 to a range request is the whole file: the server ignored the range.
    if (res.status !== 206) offset = 0;
    o.progress.fileStarted(path, size, offset);
    const out = await open(partial, offset > 0 ? 'a' : 'w');
    try {
      if (res.body) {
        // undici types the stream's chunks loosely; a fetch body yields bytes.
        const body: AsyncIterable<Uint8Array> = res.body;
        for await (const chunk of body) {
          idle.arm();
          await out.write(chunk);
          written += chunk.byteLength;
          o.progress.advance(chunk.byteLength);
        }
      }
    } finally {
      await out.close();
    }
  } catch (e) {
    if (e instanceof AppError) throw e;
    const reason = idle.fired ? `no data for ${o.timeoutMs / 1000} s` : describeCause(e);
    throw new AppError(
      'service_unavailable',
      `Downloading ${path} of ${o.repo} from ${o.url.host} broke off after ${formatBytes(offset + written)} (${reason}); ` +
        `the partial file is kept and the next try resumes it.`,
      undefined,
      { cause: e },
    );
  } finally {
    idle.clear();
  }
  const total = offset + written;
  if (size !== undefined && total < size) {
    throw new AppError('service_unavailable', `The connection to ${o.url.host} closed after ${total} of ${size} bytes of ${path}.`);
  }
  if (size !== undefined && total > size) {
    await rm(partial, { force: true });
    throw new AppError('model_load_failed', `${path} of ${o.repo} from ${o.url.host} has ${total} bytes, the hub states ${size}; nothing was kept.`);
  }
  o.progress.fileDone(path, total);
  return offset > 0;
}

function rangeStart(res: Response): number | undefined {
  const m = /^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '');
  return m ? Number(m[1]) : undefined;
}

async function fileSize(path: string): Promise<number> {
  return stat(path).then(
    (s) => s.size,
    () => 0,
  );
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}
