import type { Redis } from 'ioredis';

/**
 * How one write of counters ended:
 * - `sent`: Redis applied it;
 * - `unsent`: it surely never reached Redis (the connection was not ready, or refused the command before
 *   writing it): the caller keeps what it held and adds it to the next write;
 * - `unknown`: it was written but its reply failed (connection lost, error reply). Redis may or may not have
 *   applied it, so the caller drops it: counters are at-most-once, never counted twice by a retry.
 */
export type WriteOutcome = 'sent' | 'unsent' | 'unknown';

/**
 * ioredis' error for a command it refused to write (a fail-fast connection whose socket is not writable).
 * Not "Connection is closed": past the ready check that one comes from commands already written.
 */
const NOT_WRITTEN = /Stream isn't writeable|enableOfflineQueue/;

/**
 * Runs one write of signals over a fail-fast (`producer`) connection and classifies its end. Meant for
 * such connections only: one that queues commands offline would hold the write for the whole outage.
 */
export async function writeSignals(redis: Redis, write: () => Promise<unknown>): Promise<{ outcome: WriteOutcome; error?: unknown }> {
  // Not ready: nothing is sent at all (the connection's own error handler already reported the outage).
  if (redis.status !== 'ready') return { outcome: 'unsent' };
  try {
    await write();
    return { outcome: 'sent' };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { outcome: NOT_WRITTEN.test(message) ? 'unsent' : 'unknown', error };
  }
}

/** Runs a MULTI and throws the first error of its replies (ioredis resolves `exec` with per-command errors). */
export async function execOrThrow(multi: ReturnType<Redis['multi']>): Promise<void> {
  const replies = await multi.exec();
  if (replies === null) throw new Error('the transaction was aborted');
  for (const [err] of replies) if (err) throw err;
}
