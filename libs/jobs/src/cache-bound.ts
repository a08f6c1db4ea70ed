/** A cache call Redis did not answer in time; the caller treats it as a miss or a dropped write. */
export class CacheTimeout extends Error {
  override readonly name = 'CacheTimeout';
  constructor(op: CacheOp, ms: number) {
    super(`cache ${op} took longer than ${ms} ms`);
  }
}

/** What a cache call did: `get` reads, `set` writes. */
export type CacheOp = 'get' | 'set';

/** Receives every cache error and timeout (metrics, logs); the cache itself carries on. */
export type CacheErrorSink = (op: CacheOp, err: unknown) => void;

/** Milliseconds a cache call may take by default before it counts as failed. */
export const DEFAULT_CACHE_TIMEOUT_MS = 100;

/**
 * Runs one cache call with a deadline and never rejects: a failure or a
 * timeout is reported to `onError` and answered with `fallback`. The call
 * itself is not cancelled (Redis may still apply a late write); its late
 * rejection is swallowed, so nothing goes unhandled.
 */
export function boundedCacheCall<T>(op: CacheOp, call: () => Promise<T>, fallback: T, timeoutMs: number, onError: CacheErrorSink | undefined): Promise<T> {
  return new Promise<T>((resolve) => {
    let settled = false;
    const fail = (err: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      onError?.(op, err);
      resolve(fallback);
    };
    const timer = setTimeout(() => fail(new CacheTimeout(op, timeoutMs)), timeoutMs);
    let pending: Promise<T>;
    try {
      pending = call();
    } catch (e) {
      fail(e);
      return;
    }
    pending.then((v) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(v);
    }, fail);
  });
}
