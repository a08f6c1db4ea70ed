import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { BatchRecord, BatchStatus, FilePart } from '@fastvlm/batches';
import type { BatchContext, BatchEventType } from './batch-context';

const EVENT_OF: Partial<Record<BatchStatus, BatchEventType>> = {
  completed: 'batch.completed',
  failed: 'batch.failed',
  expired: 'batch.expired',
  cancelled: 'batch.cancelled',
};

/** A batch's output or error file id: derived from the batch, so a runner that finishes twice writes the same record. */
function outputFileId(batchId: string, kind: 'output' | 'error'): string {
  return `file-${createHash('sha256').update(`${batchId}:${kind}`).digest('base64url').slice(0, 22)}`;
}

async function putLines(ctx: BatchContext, key: string, lines: string[]): Promise<FilePart> {
  const { bytes } = await ctx.blobs.put(key, Readable.from(lines.map((l) => `${l}\n`)), { contentType: 'application/jsonl' });
  return { key, bytes };
}

/**
 * Writes the result lines gathered in Redis to storage as one more segment of
 * the output (and error) file, in request order, then drops them from Redis.
 * Each segment's blob name carries a random token: a runner that lost its
 * lease and flushes late writes its own blob, never over the winner's, and
 * deletes it when the record says another flush got there first.
 */
export async function flush(ctx: BatchContext, id: string): Promise<void> {
  const seq = await ctx.store.flushSeq(id);
  const results = await ctx.store.results(id);
  if (results.size === 0) return;
  const indices = [...results.keys()].sort((a, b) => a - b);
  const out: string[] = [];
  const err: string[] = [];
  for (const i of indices) {
    const v = results.get(i) ?? '';
    (v.startsWith('o') ? out : err).push(v.slice(1));
  }
  const token = randomBytes(6).toString('base64url');
  const outPart = out.length > 0 ? await putLines(ctx, `batches/${id}/output-${seq}-${token}.jsonl`, out) : null;
  const errPart = err.length > 0 ? await putLines(ctx, `batches/${id}/errors-${seq}-${token}.jsonl`, err) : null;
  if (!(await ctx.store.flushed(id, seq, outPart, errPart, indices))) {
    await Promise.all([outPart, errPart].flatMap((p) => (p ? [ctx.blobs.delete(p.key)] : [])));
  }
}

/**
 * Ends a batch: flushes what is left, records its output and error files (each
 * the concatenation of its segments), and moves it to `to` from one of `from`.
 */
export async function close(ctx: BatchContext, b: BatchRecord, from: readonly BatchStatus[], to: 'completed' | 'expired' | 'cancelled'): Promise<void> {
  await flush(ctx, b.id);
  const parts = await ctx.store.parts(b.id);
  const now = Date.now();
  const file = async (kind: 'output' | 'error', list: FilePart[]): Promise<string | null> => {
    if (list.length === 0) return null;
    const id = outputFileId(b.id, kind);
    await ctx.files.create({
      id,
      tenant: b.tenant,
      purpose: 'batch_output',
      filename: `${b.id}_${kind}.jsonl`,
      bytes: list.reduce((n, p) => n + p.bytes, 0),
      createdAt: now,
      expiresAt: now + ctx.cfg.FILES_DEFAULT_EXPIRY_S * 1000,
      parts: list,
    });
    return id;
  };
  const output = await file('output', parts.out);
  const error = await file('error', parts.err);
  if (await ctx.store.finish(b.id, from, to, now, { output, error }, ctx.cfg.BATCH_TTL_S)) {
    ctx.metrics.batchEnded(to);
    ctx.log.info({ batch: b.id, tenant: b.tenant, status: to }, 'batch ended');
  }
}

/**
 * Announces a batch's end to its tenant's webhooks and takes it off the runners' list. Runs for
 * every ended batch still listed, so an end whose announcement a crash interrupted is announced
 * after all (the event id is the batch's, so an announcement repeated is sent once).
 */
export async function announce(ctx: BatchContext, b: BatchRecord): Promise<void> {
  const type = EVENT_OF[b.status];
  if (type && !b.notified) {
    await ctx.events.emit({ tenant: b.tenant, type, objectId: b.id, eventId: `evt_${b.id}_${b.status}` });
    await ctx.store.setNotified(b.id);
  }
  await ctx.store.deactivate(b.id);
}
