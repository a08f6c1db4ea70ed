import type { BatchRecord } from '@fastvlm/batches';

/** OpenAI's `Batch` object, with two extensions about the completion window (ignored by the SDKs). */
export interface BatchView {
  id: string;
  object: 'batch';
  endpoint: string;
  errors: { object: 'list'; data: { code: string; message: string; param: string | null; line: number | null }[] } | null;
  input_file_id: string;
  completion_window: string;
  status: BatchRecord['status'];
  output_file_id: string | null;
  error_file_id: string | null;
  created_at: number;
  in_progress_at: number | null;
  expires_at: number;
  finalizing_at: number | null;
  completed_at: number | null;
  failed_at: number | null;
  expired_at: number | null;
  cancelling_at: number | null;
  cancelled_at: number | null;
  request_counts: { total: number; completed: number; failed: number };
  usage: {
    input_tokens: number;
    input_tokens_details: { cached_tokens: number };
    output_tokens: number;
    output_tokens_details: { reasoning_tokens: number };
    total_tokens: number;
  };
  metadata: Record<string, string> | null;
  /** Extension: when the batch should end at its current pace (Unix seconds); null until measured or once it ended. */
  projected_completion_at: number | null;
  /** Extension: whether that is after the completion window's end (the pool cannot keep up; unfinished requests would expire). */
  completion_window_at_risk: boolean;
}

const s = (ms: number | undefined): number | null => (ms === undefined ? null : Math.floor(ms / 1000));

export function toBatchView(b: BatchRecord): BatchView {
  const open = b.status === 'validating' || b.status === 'in_progress';
  const projected = open && b.projectedAt !== null ? b.projectedAt : null;
  return {
    id: b.id,
    object: 'batch',
    endpoint: b.endpoint,
    errors: b.errors.length > 0 ? { object: 'list', data: b.errors } : null,
    input_file_id: b.inputFileId,
    completion_window: b.completionWindow,
    status: b.status,
    output_file_id: b.outputFileId,
    error_file_id: b.errorFileId,
    created_at: s(b.times.created_at) ?? 0,
    in_progress_at: s(b.times.in_progress_at),
    expires_at: Math.floor(b.expiresAt / 1000),
    finalizing_at: s(b.times.finalizing_at),
    completed_at: s(b.times.completed_at),
    failed_at: s(b.times.failed_at),
    expired_at: s(b.times.expired_at),
    cancelling_at: s(b.times.cancelling_at),
    cancelled_at: s(b.times.cancelled_at),
    request_counts: { total: b.total, completed: b.completed, failed: b.failed },
    usage: {
      input_tokens: b.promptTokens,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: b.completionTokens,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: b.promptTokens + b.completionTokens,
    },
    metadata: b.metadata,
    projected_completion_at: projected === null ? null : Math.floor(projected / 1000),
    completion_window_at_risk: projected !== null && projected > b.expiresAt,
  };
}
