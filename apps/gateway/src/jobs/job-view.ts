import type { JobRecord } from '@fastvlm/jobs';
import { completionId, toChatCompletion, type ChatCompletion } from '../chat/completion';

export interface JobView {
  id: string;
  object: 'job';
  status: JobRecord['status'];
  model: string;
  /** Seconds since the epoch, as OpenAI's objects count time. */
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  result: ChatCompletion | null;
  error: { code: string; message: string } | null;
}

const sec = (ms: number | undefined): number | null => (ms === undefined ? null : Math.floor(ms / 1000));

export function toJobView(r: JobRecord): JobView {
  return {
    id: r.id,
    object: 'job',
    status: r.status,
    model: r.model,
    created_at: Math.floor(r.createdAt / 1000),
    started_at: sec(r.startedAt),
    finished_at: sec(r.finishedAt),
    result: r.result ? toChatCompletion(completionId(r.id), r.result) : null,
    error: r.error ? { code: r.error.code, message: r.error.message } : null,
  };
}
