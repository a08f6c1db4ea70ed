/**
 * KEDA's part of the scaling: the ScaledObject's activation (0 ↔ 1 replicas)
 * around the HPA it creates, which runs only while replicas ≥ 1 (with
 * minReplicas 1 when the ScaledObject's minReplicaCount is 0).
 */

/** The ScaledObject fields the simulator models. */
export interface ScaledObjectSpec {
  /** `minReplicaCount`: 0 lets KEDA scale to zero. */
  minReplicaCount: number;
  /** `maxReplicaCount`: the HPA's maxReplicas. */
  maxReplicaCount: number;
  /** `pollingInterval`, seconds: how often KEDA asks a polled trigger whether it is active. */
  pollingIntervalSeconds: number;
  /** `cooldownPeriod`, seconds: how long after the last active check KEDA scales to zero. */
  cooldownPeriodSeconds: number;
}

/** The ScaledObject the simulator replays against (KEDA's defaults for polling and cooldown). */
export const DEFAULT_SCALED_OBJECT: ScaledObjectSpec = {
  minReplicaCount: 0,
  maxReplicaCount: 100,
  pollingIntervalSeconds: 30,
  cooldownPeriodSeconds: 300,
};

/** KEDA's Redis list scaler defaults: target `listLength` 5, active above `activationListLength` 0. */
export const REDIS_LIST_TRIGGER = { listLength: 5, activationListLength: 0 } as const;

/** The HPA minReplicas KEDA sets for a ScaledObject (1 when it may scale to zero). */
export function hpaMinReplicas(spec: ScaledObjectSpec): number {
  return Math.max(1, spec.minReplicaCount);
}

/**
 * KEDA's scale loop for one ScaledObject: each activity check either wakes a
 * Deployment at zero, or, when nothing was active for longer than the
 * cooldown since the last active check, scales it to zero.
 */
export class KedaActivation {
  private lastActiveS: number;

  /** `startS`: when the ScaledObject starts (counts as active then, like a fresh `lastActiveTime`). */
  constructor(
    readonly spec: ScaledObjectSpec,
    startS: number,
  ) {
    this.lastActiveS = startS;
  }

  /** Epoch second of the last check that found the trigger active. */
  get lastActive(): number {
    return this.lastActiveS;
  }

  /** One check at `now`: the replica count KEDA sets, or null to leave it to the HPA. */
  check(now: number, active: boolean, replicas: number): number | null {
    if (active) {
      this.lastActiveS = now;
      return replicas === 0 ? hpaMinReplicas(this.spec) : null;
    }
    // KEDA: lastActiveTime + cooldownPeriod before now.
    if (replicas > 0 && this.spec.minReplicaCount === 0 && this.lastActiveS + this.spec.cooldownPeriodSeconds < now) return 0;
    return null;
  }
}
