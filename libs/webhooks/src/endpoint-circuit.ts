import type { Redis } from 'ioredis';
import type { RedisKeys } from '@fastvlm/contracts';
import { ADMIT, RECORD_RESULT } from './endpoint-scripts';
import { parseSecrets, type WebhookSecret } from './endpoint-store';
import type { CircuitPolicy } from './retry-policy';

/** What the delivery worker may do with an attempt now. */
export type Admission =
  | { kind: 'gone' }
  | { kind: 'disabled' }
  /** Wait, without spending an attempt, until `until` (epoch ms): the circuit is open. */
  | { kind: 'open'; until: number }
  /** Another attempt is the probe, which decides by `until` (epoch ms) at the latest: look again soon. */
  | { kind: 'probing'; until: number }
  /** Send to `url`, signed with the active `secrets`; `probe`: the attempt that decides whether the circuit closes. */
  | { kind: 'send'; probe: boolean; url: string; secrets: WebhookSecret[] };

/**
 * An endpoint's circuit breaker, shared by every gateway through the
 * endpoint's hash: after `failures` consecutive failed attempts it opens for
 * `openMs`; then one probe goes through; its success closes the circuit, its
 * failure opens it again for twice as long (up to `maxOpenMs`).
 */
export class EndpointCircuit {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly policy: CircuitPolicy,
    /** How long a probe holds the other attempts back, in ms: longer than one attempt can take. */
    private readonly probeHoldMs: number,
  ) {}

  async admit(endpointId: string, now: number): Promise<Admission> {
    const reply = (await ADMIT.run(this.redis, [this.keys.webhookEndpoint(endpointId)], [now, this.policy.failures, this.probeHoldMs])) as string[];
    const [kind, a, b] = reply;
    switch (kind) {
      case 'gone':
        return { kind: 'gone' };
      case 'disabled':
        return { kind: 'disabled' };
      case 'open':
      case 'probing':
        return { kind, until: Number(a) };
      case 'ok':
      case 'probe':
        return { kind: 'send', probe: kind === 'probe', url: a ?? '', secrets: parseSecrets(b ?? '[]') };
      default:
        throw new Error(`unexpected circuit reply ${String(kind)}`);
    }
  }

  /** Records an attempt's result; answers how long the circuit just opened for, in ms (0: it did not open). */
  async record(endpointId: string, ok: boolean, probe: boolean, now: number): Promise<number> {
    const p = this.policy;
    const reply = await RECORD_RESULT.run(this.redis, [this.keys.webhookEndpoint(endpointId)], [ok ? 1 : 0, probe ? 1 : 0, now, p.failures, p.openMs, p.maxOpenMs]);
    return Number(reply);
  }
}
