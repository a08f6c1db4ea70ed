const HUGE = '1000000000';

/** Gateway settings under which no rate limit, quota or admission cap refuses a bench's load: benches measure the system, not its limits. */
export const NO_LIMITS: Record<string, string> = {
  RATE_LIMIT_KEY_RPM: HUGE,
  RATE_LIMIT_TENANT_RPM: HUGE,
  TENANT_TOKENS_PER_MIN: HUGE,
  TENANT_MAX_INFLIGHT_JOBS: HUGE,
  TENANT_MAX_QUEUED_JOBS: HUGE,
  TENANT_MAX_BACKLOG_JOBS: HUGE,
  ADMISSION_MAX_BACKLOG: HUGE,
};
