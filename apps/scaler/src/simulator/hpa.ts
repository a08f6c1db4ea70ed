/**
 * The Kubernetes HorizontalPodAutoscaler (autoscaling/v2) as KEDA configures
 * it: one External metric with an `AverageValue` target. Follows the
 * controller's code (pkg/controller/podautoscaler: `GetExternalPerPodMetricReplicas`,
 * `stabilizeRecommendationWithBehaviors`, `convertDesiredReplicasWithBehaviorRate`),
 * with the behaviour as data so that deployment manifests can be checked
 * against the defaults here.
 */

export interface HpaScalingPolicy {
  type: 'Pods' | 'Percent';
  /** Pods, or percent of the replicas at the start of the period. */
  value: number;
  /** Seconds the policy's change is measured over. */
  periodSeconds: number;
}

/** `Max`: the policy that allows the largest change; `Min`: the smallest; `Disabled`: no change this way. */
export type HpaSelectPolicy = 'Max' | 'Min' | 'Disabled';

export interface HpaScalingRules {
  /** Seconds of past recommendations the result is stabilized over. */
  stabilizationWindowSeconds: number;
  selectPolicy: HpaSelectPolicy;
  policies: readonly HpaScalingPolicy[];
}

export interface HpaBehavior {
  scaleUp: HpaScalingRules;
  scaleDown: HpaScalingRules;
}

/** Kubernetes' defaults for `spec.behavior` (what a ScaledObject without `advanced.horizontalPodAutoscalerConfig` gets). */
export const DEFAULT_HPA_BEHAVIOR: HpaBehavior = {
  scaleUp: {
    stabilizationWindowSeconds: 0,
    selectPolicy: 'Max',
    policies: [
      { type: 'Percent', value: 100, periodSeconds: 15 },
      { type: 'Pods', value: 4, periodSeconds: 15 },
    ],
  },
  scaleDown: {
    stabilizationWindowSeconds: 300,
    selectPolicy: 'Max',
    policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }],
  },
};

/** kube-controller-manager `--horizontal-pod-autoscaler-sync-period` default, seconds. */
export const HPA_SYNC_PERIOD_SECONDS = 15;
/** kube-controller-manager `--horizontal-pod-autoscaler-tolerance` default. */
export const HPA_TOLERANCE = 0.1;

export interface HpaOptions {
  /** `spec.minReplicas`; KEDA sets 1 when the ScaledObject's minReplicaCount is 0. Default 1. */
  minReplicas?: number;
  /** `spec.maxReplicas`. Default 100. */
  maxReplicas?: number;
  /** `spec.behavior`. Default `DEFAULT_HPA_BEHAVIOR`. */
  behavior?: HpaBehavior;
  /** Ratio the metric may stray from the target without a change. Default `HPA_TOLERANCE` (0.1). */
  tolerance?: number;
}

interface Timed {
  t: number;
  value: number;
}

export class HorizontalPodAutoscaler {
  readonly minReplicas: number;
  readonly maxReplicas: number;
  readonly behavior: HpaBehavior;
  readonly tolerance: number;
  private recommendations: Timed[] = [];
  private scaleUpEvents: Timed[] = [];
  private scaleDownEvents: Timed[] = [];

  constructor(o: HpaOptions = {}) {
    this.minReplicas = o.minReplicas ?? 1;
    this.maxReplicas = o.maxReplicas ?? 100;
    this.behavior = o.behavior ?? DEFAULT_HPA_BEHAVIOR;
    this.tolerance = o.tolerance ?? HPA_TOLERANCE;
  }

  /** The controller's first sight of the HPA (`recordInitialRecommendation`): the current count, so that it does not scale down at once. */
  start(now: number, currentReplicas: number): void {
    if (this.recommendations.length === 0) this.recommendations.push({ t: now, value: currentReplicas });
  }

  /**
   * The replica count a metric asks for: with `current` replicas, metric value
   * `metric` and target average value `target`, the ratio metric / (target ×
   * current); within the tolerance of 1 the count stays, else ceil(metric /
   * target), within [minReplicas, maxReplicas].
   */
  recommend(currentReplicas: number, metric: number, target: number): number {
    const usageRatio = metric / (target * currentReplicas);
    // The controller's own comparison, float quirks included (1.1 is outside a 0.1 tolerance there too).
    const replicas = Math.abs(1.0 - usageRatio) > this.tolerance ? Math.ceil(metric / target) : currentReplicas;
    return Math.min(this.maxReplicas, Math.max(this.minReplicas, replicas));
  }

  /** One sync at `now` (seconds): recommendation, stabilization, rate limits. Returns the new replica count (maybe unchanged). */
  sync(now: number, currentReplicas: number, metric: number, target: number): number {
    const recommended = this.recommend(currentReplicas, metric, target);
    const stabilized = this.stabilize(now, currentReplicas, recommended);
    const desired = this.limitRate(now, currentReplicas, stabilized);
    if (desired > currentReplicas) this.scaleUpEvents.push({ t: now, value: desired - currentReplicas });
    if (desired < currentReplicas) this.scaleDownEvents.push({ t: now, value: currentReplicas - desired });
    return desired;
  }

  /**
   * Up: the smallest recommendation within the scale-up window (the current
   * one alone with the default 0 s); down: the largest within the scale-down
   * window, the current one included. The count moves only as far as both allow.
   */
  private stabilize(now: number, current: number, recommended: number): number {
    const { scaleUp, scaleDown } = this.behavior;
    const upCutoff = now - scaleUp.stabilizationWindowSeconds;
    const downCutoff = now - scaleDown.stabilizationWindowSeconds;
    let up = recommended;
    let down = recommended;
    for (const r of this.recommendations) {
      if (r.t > upCutoff) up = Math.min(up, r.value);
      if (r.t > downCutoff) down = Math.max(down, r.value);
    }
    const keepAfter = Math.min(upCutoff, downCutoff);
    this.recommendations = this.recommendations.filter((r) => r.t >= keepAfter);
    this.recommendations.push({ t: now, value: recommended });
    let result = current;
    if (result < up) result = up;
    if (result > down) result = down;
    return result;
  }

  private limitRate(now: number, current: number, desired: number): number {
    if (desired > current) {
      const limit = Math.max(current, this.scaleUpLimit(now, current));
      return Math.min(desired, Math.min(this.maxReplicas, limit));
    }
    if (desired < current) {
      const limit = Math.min(current, this.scaleDownLimit(now, current));
      return Math.max(desired, Math.max(this.minReplicas, limit));
    }
    return desired;
  }

  private scaleUpLimit(now: number, current: number): number {
    const rules = this.behavior.scaleUp;
    if (rules.selectPolicy === 'Disabled') return current;
    let result = rules.selectPolicy === 'Min' ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
    for (const p of rules.policies) {
      const periodStart = current - this.changeWithin(this.scaleUpEvents, now, p.periodSeconds) + this.changeWithin(this.scaleDownEvents, now, p.periodSeconds);
      const proposed = p.type === 'Pods' ? periodStart + p.value : Math.ceil(periodStart * (1 + p.value / 100));
      result = rules.selectPolicy === 'Min' ? Math.min(result, proposed) : Math.max(result, proposed);
    }
    this.pruneEvents(now);
    return result;
  }

  private scaleDownLimit(now: number, current: number): number {
    const rules = this.behavior.scaleDown;
    if (rules.selectPolicy === 'Disabled') return current;
    // The largest change down is the lowest count.
    let result = rules.selectPolicy === 'Min' ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
    for (const p of rules.policies) {
      const periodStart = current - this.changeWithin(this.scaleUpEvents, now, p.periodSeconds) + this.changeWithin(this.scaleDownEvents, now, p.periodSeconds);
      const proposed = p.type === 'Pods' ? periodStart - p.value : Math.trunc(periodStart * (1 - p.value / 100));
      result = rules.selectPolicy === 'Min' ? Math.max(result, proposed) : Math.min(result, proposed);
    }
    this.pruneEvents(now);
    return result;
  }

  /** Replicas changed by events strictly within the last `periodSeconds`. */
  private changeWithin(events: readonly Timed[], now: number, periodSeconds: number): number {
    let sum = 0;
    for (const e of events) if (e.t > now - periodSeconds) sum += e.value;
    return sum;
  }

  private pruneEvents(now: number): void {
    const longest = Math.max(0, ...this.behavior.scaleUp.policies.map((p) => p.periodSeconds), ...this.behavior.scaleDown.policies.map((p) => p.periodSeconds));
    this.scaleUpEvents = this.scaleUpEvents.filter((e) => e.t > now - longest);
    this.scaleDownEvents = this.scaleDownEvents.filter((e) => e.t > now - longest);
  }
}
