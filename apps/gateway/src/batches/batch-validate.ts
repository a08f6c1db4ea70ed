import { LineTooLong, readLines, type BatchError, type BatchRecord } from '@fastvlm/batches';
import { BlobNotFound } from '@fastvlm/files';
import { OFFSET_EVERY } from './batch-input';
import { batchPrincipal, maxLineBytes, type BatchContext } from './batch-context';
import { BatchLineError, fromAppError, parseBatchLine } from './batch-lines';

/** Errors listed before validation stops reading: enough to fix a file, bounded for a file of 50 000 bad lines. */
const MAX_ERRORS = 100;

/**
 * Reads the input file once, streaming, and checks every line as its request
 * would be checked alone (JSON shape, endpoint, unique custom ids, the body's
 * text, image and model). A valid file moves the batch to `in_progress` with
 * its request count and line offsets; any bad line fails it with OpenAI-shaped
 * errors naming the lines. `stillMine` says whether this runner still holds the batch.
 */
export async function validate(ctx: BatchContext, b: BatchRecord, stillMine: () => boolean): Promise<void> {
  const file = await ctx.files.get(b.inputFileId);
  const part = file?.parts[0];
  const missing: BatchError = { code: 'invalid_file', message: `The input file ${b.inputFileId} no longer exists.`, param: 'input_file_id', line: null };
  if (!file || !part) return fail(ctx, b, [missing]);
  let stream;
  try {
    stream = await ctx.blobs.get(part.key);
  } catch (e) {
    if (e instanceof BlobNotFound) return fail(ctx, b, [missing]);
    throw e;
  }
  const principal = await batchPrincipal(ctx, b.tenant, b.keyId);
  const errors: BatchError[] = [];
  const seen = new Set<string>();
  const offsets: number[] = [];
  let count = 0;
  try {
    for await (const line of readLines(stream, { maxLineBytes: maxLineBytes(ctx.cfg) })) {
      if (!stillMine()) return;
      if (line.index % OFFSET_EVERY === 0) offsets.push(line.offset);
      count += 1;
      try {
        const { customId, request } = parseBatchLine(line.bytes, line.index, b.endpoint);
        if (seen.has(customId)) {
          throw new BatchLineError('duplicate_custom_id', 'The custom_id for this request is a duplicate of another request. The custom_id parameter must be unique for each request in a batch.', 'custom_id', line.index + 1);
        }
        seen.add(customId);
        await ctx.inference.check(principal, request).catch((e: unknown) => {
          throw fromAppError(e, line.index + 1);
        });
      } catch (e) {
        if (!(e instanceof BatchLineError)) throw e;
        errors.push(e.toBatchError());
        if (errors.length >= MAX_ERRORS) break;
      }
    }
  } catch (e) {
    if (!(e instanceof LineTooLong)) throw e;
    errors.push({ code: 'line_too_long', message: `This line is longer than ${e.limit} bytes, the largest request body.`, param: null, line: e.index + 1 });
  } finally {
    stream.destroy();
  }
  if (count === 0 && errors.length === 0) errors.push({ code: 'empty_file', message: 'The input file has no requests.', param: 'input_file_id', line: null });
  if (errors.length > 0) return fail(ctx, b, errors);
  if (await ctx.store.start(b.id, count, Date.now(), offsets)) ctx.log.info({ batch: b.id, tenant: b.tenant, requests: count }, 'batch validated');
}

async function fail(ctx: BatchContext, b: BatchRecord, errors: BatchError[]): Promise<void> {
  if (await ctx.store.fail(b.id, Date.now(), errors)) {
    ctx.metrics.batchEnded('failed');
    ctx.log.info({ batch: b.id, tenant: b.tenant, errors: errors.length }, 'batch failed validation');
  }
}
