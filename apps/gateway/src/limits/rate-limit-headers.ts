import type { LimitExceeded, LimitState } from '@fastvlm/security';

/**
 * `RateLimit-*` headers (IETF httpapi draft, the form most clients read):
 * limit, what remains, and seconds until the window resets, for the limit
 * closest to running out.
 */
export function rateLimitHeaders(states: readonly LimitState[]): Record<string, string> {
  const tightest = [...states].sort((a, b) => a.remaining / a.limit - b.remaining / b.limit)[0];
  if (!tightest) return {};
  const reset = Math.ceil(tightest.resetMs / 1000);
  return {
    'ratelimit-limit': String(tightest.limit),
    'ratelimit-remaining': String(tightest.remaining),
    'ratelimit-reset': String(reset),
    'ratelimit-policy': reset > 0 ? `${tightest.limit};w=60` : String(tightest.limit),
  };
}

/** Headers of a refusal: the limit met and `Retry-After` in whole seconds (at least 1). */
export function limitExceededHeaders(e: LimitExceeded): Record<string, string> {
  return { ...rateLimitHeaders([e.state]), 'retry-after': String(Math.max(1, Math.ceil(e.retryAfterMs / 1000))) };
}
