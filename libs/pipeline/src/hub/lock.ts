import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { lock } from 'proper-lockfile';
import { AppError } from '@fastvlm/contracts';

export interface DirLockOptions {
  /** How often a waiting process tries the lock again. */
  pollMs: number;
  /** Called once when the lock is held by someone else and this process starts waiting. */
  onWait?: (() => void) | undefined;
}

/**
 * Runs `fn` holding `<dir>.lock`, waiting as long as another process (a
 * worker sharing the volume) holds it: that one is downloading the same
 * files, and may rightly take an hour. A holder that dies stops refreshing
 * the lock, which turns stale after 30 s and passes to the next process.
 * `lost()` tells `fn` when that happened to this process (it stalled past the
 * stale time), so that it stops instead of writing next to the new holder.
 */
export async function withDirLock<T>(dir: string, opts: DirLockOptions, fn: (lost: () => Error | undefined) => Promise<T>): Promise<T> {
  await mkdir(dirname(dir), { recursive: true });
  let compromised: Error | undefined;
  let waiting = false;
  let release: () => Promise<void>;
  for (;;) {
    try {
      release = await lock(dir, {
        realpath: false,
        lockfilePath: `${dir}.lock`,
        stale: 30_000,
        update: 5_000,
        onCompromised: (e) => {
          compromised = e;
        },
      });
      break;
    } catch (e) {
      if (!(e instanceof Error && 'code' in e && e.code === 'ELOCKED')) {
        throw new AppError('model_load_failed', `Could not lock the model cache folder ${dir}: ${e instanceof Error ? e.message : String(e)}`);
      }
      if (!waiting) opts.onWait?.();
      waiting = true;
      await delay(opts.pollMs);
    }
  }
  try {
    return await fn(() => compromised);
  } finally {
    await release().catch(() => undefined);
  }
}
