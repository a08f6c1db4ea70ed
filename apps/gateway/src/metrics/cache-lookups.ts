import type { SubmitOutcome } from '@fastvlm/jobs';
import type { CacheLevel } from '@fastvlm/observability';

/**
 * The answer-cache lookups a submission made, read from its outcome: a hit at
 * L2 means L1 missed first; a queued job with a cache key missed both; a job
 * without one (sampled decoding, no worker yet) looked nothing up.
 */
export function cacheLookups(outcome: SubmitOutcome, l1Enabled: boolean): [CacheLevel, boolean][] {
  const l1: [CacheLevel, boolean][] = l1Enabled ? [['answer_l1', false]] : [];
  if (outcome.kind === 'cached') return outcome.level === 'l1' ? [['answer_l1', true]] : [...l1, ['answer_l2', true]];
  return outcome.cacheKey ? [...l1, ['answer_l2', false]] : [];
}

/**
 * Whether an error answer counts as a rejection (the gateway refused the
 * request) and under which reason: client errors and 503, but not lookups of
 * unknown jobs or routes, nor requests the caller abandoned.
 */
export function rejectionReason(status: number, code: string): string | null {
  if (code === 'not_found' || code === 'cancelled') return null;
  return (status >= 400 && status < 500) || status === 503 ? code : null;
}
