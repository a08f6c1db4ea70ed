import { z } from 'zod';
import { envBoolean } from '@fastvlm/contracts';
import { parseCidrList } from '@fastvlm/security';
import { DEFAULT_CIRCUIT_POLICY, DEFAULT_RETRY_POLICY, type CircuitPolicy, type RetryPolicy, type WebhookUrlPolicy } from '@fastvlm/webhooks';

const int = (min: number) => z.coerce.number().int().min(min);

const cidrs = (v: string): string[] => v.split(',').map((s) => s.trim()).filter(Boolean);

/** Refused at start-up, not at the first delivery. */
function checkCidrs(v: string, ctx: z.RefinementCtx): void {
  try {
    parseCidrList(cidrs(v), 'WEBHOOK_URL_ALLOW_CIDRS');
  } catch {
    ctx.addIssue({ code: 'custom', message: 'WEBHOOK_URL_ALLOW_CIDRS must be a comma list of IP addresses or CIDR ranges' });
  }
}

/**
 * Webhook delivery settings (the gateway's config schema extends itself with these).
 * With the defaults a delivery is tried 16 times over at least 29 h 22 min:
 * 10 s, 20 s, 40 s … doubling to 5 h 41 min (12 delays, 11 h 22 min), then
 * 3 × 6 h; each delay gets up to 20 % more as jitter, never less.
 */
export const WebhooksEnvShape = {
  /** Deliveries in flight at once per gateway. Default 8. */
  WEBHOOK_CONCURRENCY: int(1).max(1_000).default(8),
  /** Milliseconds one attempt may take (connection and response headers); past it the attempt failed. Default 15 000. */
  WEBHOOK_TIMEOUT_MS: int(100).max(120_000).default(15_000),
  /** Milliseconds before the first retry; each retry doubles it. Default 10 000. */
  WEBHOOK_RETRY_BASE_MS: int(10).default(DEFAULT_RETRY_POLICY.baseMs),
  /** Longest wait between two attempts, in milliseconds. Default 21 600 000 (6 h). */
  WEBHOOK_RETRY_MAX_DELAY_MS: int(10).default(DEFAULT_RETRY_POLICY.maxDelayMs),
  /** Attempts of one delivery, the first included. Default 16 (at least 29 h with the defaults above). */
  WEBHOOK_MAX_ATTEMPTS: int(1).max(100).default(DEFAULT_RETRY_POLICY.maxAttempts),
  /** Consecutive failed attempts of one endpoint that open its circuit (its deliveries then wait without spending attempts). Default 10. */
  WEBHOOK_CIRCUIT_FAILURES: int(1).default(DEFAULT_CIRCUIT_POLICY.failures),
  /** Milliseconds the circuit first stays open; doubled after each failed probe, up to 1 h. Default 300 000 (5 min). */
  WEBHOOK_CIRCUIT_OPEN_MS: int(10).max(DEFAULT_CIRCUIT_POLICY.maxOpenMs).default(DEFAULT_CIRCUIT_POLICY.openMs),
  /** Attempts kept in each endpoint's delivery log. Default 1 000. */
  WEBHOOK_LOG_ENTRIES: int(1).max(100_000).default(1_000),
  /**
   * Internal ranges webhook URLs may reach anyway (comma-separated CIDRs or addresses), for receivers an
   * operator runs inside the network. Empty by default: only public addresses, as for image URLs.
   */
  WEBHOOK_URL_ALLOW_CIDRS: z.string().default('').superRefine(checkCidrs),
  /**
   * TEST ONLY: also allow loopback receivers (127.0.0.0/8 and ::1), for tests that run one on the
   * same machine. Never set it in a deployment: any admin could then make the gateway POST to
   * services on its own host. Default false; the gateway logs a warning at start-up when it is on.
   */
  WEBHOOK_ALLOW_LOOPBACK_FOR_TESTS: envBoolean.default(false),
};

export type WebhooksConfig = z.infer<z.ZodObject<typeof WebhooksEnvShape>>;

export function retryPolicy(c: WebhooksConfig): RetryPolicy {
  return { baseMs: c.WEBHOOK_RETRY_BASE_MS, maxDelayMs: c.WEBHOOK_RETRY_MAX_DELAY_MS, maxAttempts: c.WEBHOOK_MAX_ATTEMPTS };
}

export function circuitPolicy(c: WebhooksConfig): CircuitPolicy {
  return { failures: c.WEBHOOK_CIRCUIT_FAILURES, openMs: c.WEBHOOK_CIRCUIT_OPEN_MS, maxOpenMs: DEFAULT_CIRCUIT_POLICY.maxOpenMs };
}

export function urlPolicy(c: WebhooksConfig): WebhookUrlPolicy {
  return {
    allowCidrs: cidrs(c.WEBHOOK_URL_ALLOW_CIDRS),
    allowLoopbackForTests: c.WEBHOOK_ALLOW_LOOPBACK_FOR_TESTS,
  };
}
