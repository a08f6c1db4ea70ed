/** When failed deliveries are tried again, and when an endpoint's circuit opens. */
export interface RetryPolicy {
  /** Delay before the first retry, in ms; each further retry doubles it. */
  baseMs: number;
  /** Longest delay between two attempts, in ms. */
  maxDelayMs: number;
  /** Attempts of one delivery, the first included. */
  maxAttempts: number;
}

export interface CircuitPolicy {
  /** Consecutive failed attempts of one endpoint that open its circuit. */
  failures: number;
  /** How long the circuit first stays open, in ms; doubled after each failed probe. */
  openMs: number;
  /** Longest opening, in ms. */
  maxOpenMs: number;
}

/**
 * The defaults: 16 attempts over at least 29 h 22 min 30 s. Delays 10 s, 20 s, 40 s … doubling
 * to 20 480 s (5 h 41 min; 12 delays, 40 950 s in all), then 3 × 6 h (64 800 s): 105 750 s.
 */
export const DEFAULT_RETRY_POLICY: RetryPolicy = { baseMs: 10_000, maxDelayMs: 6 * 3_600_000, maxAttempts: 16 };

/** The default circuit: open after 10 consecutive failures, for 5 min, doubling while probes fail, up to 1 h. */
export const DEFAULT_CIRCUIT_POLICY: CircuitPolicy = { failures: 10, openMs: 300_000, maxOpenMs: 3_600_000 };

/** Jitter is added, never taken off: the schedule never runs shorter than its nominal span (the 24 h promise holds on every draw). */
export const RETRY_JITTER = 0.2;

/** The nominal delay after the `failedAttempts`-th failed attempt (1-based): base × 2^(n−1), capped. */
export function nominalRetryDelayMs(failedAttempts: number, p: Pick<RetryPolicy, 'baseMs' | 'maxDelayMs'>): number {
  // Capping the exponent first keeps 2^n finite for any attempt count.
  const exp = Math.min(Math.max(failedAttempts - 1, 0), 40);
  return Math.min(p.maxDelayMs, p.baseMs * 2 ** exp);
}

/** The delay BullMQ waits before the next attempt: the nominal delay plus up to 20 % (spreads the retries of many deliveries that failed together). */
export function retryDelayMs(failedAttempts: number, p: Pick<RetryPolicy, 'baseMs' | 'maxDelayMs'>, random: () => number = Math.random): number {
  const nominal = nominalRetryDelayMs(failedAttempts, p);
  return Math.round(nominal * (1 + RETRY_JITTER * random()));
}

/** The shortest time from a delivery's first attempt to its last (every delay at its nominal value). */
export function minimumRetrySpanMs(p: RetryPolicy): number {
  let total = 0;
  for (let n = 1; n < p.maxAttempts; n++) total += nominalRetryDelayMs(n, p);
  return total;
}
