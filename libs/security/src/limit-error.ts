import { AppError } from '@fastvlm/contracts';

/** Which limit a request met. */
export type LimitName = 'key_requests' | 'tenant_requests' | 'tenant_tokens' | 'tenant_in_flight' | 'tenant_queued' | 'global_backlog' | 'auth_failures';

/** Where a caller stands against one limit, for `RateLimit-*` headers. */
export interface LimitState {
  name: LimitName;
  /** The limit in its unit (requests, tokens, jobs). */
  limit: number;
  /** What is left of it now. */
  remaining: number;
  /** Milliseconds until the window resets (0 for limits without a window). */
  resetMs: number;
}

/**
 * A refusal because of a limit: `rate_limited` (429) for a tenant's or key's
 * own limits, `overloaded` (503) when the cluster's backlog is full. Carries
 * when to come back, so the gateway can send `Retry-After`.
 */
export class LimitExceeded extends AppError {
  constructor(
    code: 'rate_limited' | 'overloaded',
    message: string,
    readonly state: LimitState,
    /** Milliseconds after which a retry can succeed. */
    readonly retryAfterMs: number,
    param?: string,
  ) {
    super(code, message, param);
  }
}
