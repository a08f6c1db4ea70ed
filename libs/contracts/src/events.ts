import { z } from 'zod';
import { ERROR_CODES } from './errors';
import { InferenceResultSchema, JOB_STATUSES } from './job';

/**
 * Entries of a job's event stream. `token.index` is the position of the
 * completion token that produced the text, so a reader that has seen index n
 * can drop repeats when a crashed job is re-run from the start. `attempt` is
 * the run that wrote it (1 for the first claim, 2 after a re-run, …): writes are
 * fenced by it, and a reader can tell a re-run's tokens from the first run's.
 */
export const JobEventSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('status'), status: z.enum(JOB_STATUSES) }),
  z.strictObject({ type: z.literal('token'), index: z.number().int().min(0), text: z.string(), attempt: z.number().int().min(1).optional() }),
  z.strictObject({ type: z.literal('done'), result: InferenceResultSchema }),
  z.strictObject({
    type: z.literal('error'),
    error: z.strictObject({ code: z.enum(ERROR_CODES), message: z.string(), param: z.string().optional() }),
  }),
]);
export type JobEvent = z.infer<typeof JobEventSchema>;

/** Whether this event ends the stream. */
export function isFinalEvent(e: JobEvent): boolean {
  switch (e.type) {
    case 'done':
    case 'error':
      return true;
    case 'status':
      return e.status === 'cancelled';
    case 'token':
      return false;
  }
}
