import { describe, expect, it } from 'vitest';
import { DEFAULT_HPA_BEHAVIOR, HorizontalPodAutoscaler, type HpaBehavior } from './hpa';

/** Runs syncs every 15 s from `from`, feeding back the replica count; returns the count after each. */
function syncs(hpa: HorizontalPodAutoscaler, start: number, metricAt: (t: number) => number, from: number, to: number): Map<number, number> {
  const out = new Map<number, number>();
  let current = start;
  for (let t = from; t <= to; t += 15) {
    current = hpa.sync(t, current, metricAt(t), 1);
    out.set(t, current);
  }
  return out;
}

describe('HPA replica calculation (AverageValue)', () => {
  it('keeps 10 replicas at a metric of 10.9 (within the 0.1 tolerance) and moves to 12 at 11.5', () => {
    const hpa = new HorizontalPodAutoscaler();
    expect(hpa.recommend(10, 10.9, 1)).toBe(10);
    expect(hpa.recommend(10, 11.5, 1)).toBe(12);
    expect(hpa.recommend(10, 9.1, 1)).toBe(10);
    expect(hpa.recommend(10, 8.5, 1)).toBe(9);
  });

  it('divides the metric by the target average value: 23 waiting jobs at listLength 5 ask for 5 replicas', () => {
    expect(new HorizontalPodAutoscaler().recommend(1, 23, 5)).toBe(5);
  });

  it('clamps to [minReplicas, maxReplicas]', () => {
    const hpa = new HorizontalPodAutoscaler({ minReplicas: 1, maxReplicas: 100 });
    expect(hpa.recommend(3, 0, 1)).toBe(1);
    expect(hpa.recommend(3, 500, 1)).toBe(100);
  });
});

describe('HPA scale-down stabilization (300 s window)', () => {
  it('waits out the window, then drops to the largest recommendation still inside it', () => {
    const hpa = new HorizontalPodAutoscaler();
    hpa.start(0, 10);
    // 10 wanted at t = 0, 6 at t = 15, then 2 from t = 30 on.
    const after = syncs(hpa, 10, (t) => (t === 0 ? 10 : t === 15 ? 6 : 2), 0, 330);
    expect(after.get(285)).toBe(10);
    expect(after.get(300)).toBe(6);
    expect(after.get(315)).toBe(2);
    expect(after.get(330)).toBe(2);
  });

  it('starts from the count it first saw, so a fresh HPA does not scale down at once', () => {
    const hpa = new HorizontalPodAutoscaler();
    hpa.start(0, 8);
    expect(hpa.sync(15, 8, 1, 1)).toBe(8);
  });
});

describe('HPA scale-up rate policies (max of 100 % and 4 pods per 15 s)', () => {
  it('limits a jump from 2 to a metric of 20 to 6 in one sync, then 12, then reaches 20', () => {
    const hpa = new HorizontalPodAutoscaler();
    hpa.start(0, 2);
    const after = syncs(hpa, 2, () => 20, 15, 45);
    expect([after.get(15), after.get(30), after.get(45)]).toEqual([6, 12, 20]);
  });

  it('counts scale-ups strictly within the last 15 s against the period: a second sync 5 s later adds nothing', () => {
    const hpa = new HorizontalPodAutoscaler();
    hpa.start(0, 2);
    expect(hpa.sync(15, 2, 20, 1)).toBe(6);
    expect(hpa.sync(20, 6, 20, 1)).toBe(6);
    expect(hpa.sync(30, 6, 20, 1)).toBe(12);
  });

  it('doubles large counts (100 % beats 4 pods) and stops at maxReplicas', () => {
    const hpa = new HorizontalPodAutoscaler({ maxReplicas: 100 });
    hpa.start(0, 30);
    expect(hpa.sync(15, 30, 500, 1)).toBe(60);
    expect(hpa.sync(30, 60, 500, 1)).toBe(100);
  });

  it('takes its behaviour as data: one pod per minute down steps down one pod per minute', () => {
    const behavior: HpaBehavior = {
      scaleUp: DEFAULT_HPA_BEHAVIOR.scaleUp,
      scaleDown: { stabilizationWindowSeconds: 0, selectPolicy: 'Max', policies: [{ type: 'Pods', value: 1, periodSeconds: 60 }] },
    };
    const hpa = new HorizontalPodAutoscaler({ behavior });
    hpa.start(0, 5);
    const after = syncs(hpa, 5, () => 1, 15, 135);
    expect([15, 30, 45, 60, 75, 90, 135].map((t) => after.get(t))).toEqual([4, 4, 4, 4, 3, 3, 2]);
  });
});

describe('default behaviour', () => {
  it("is Kubernetes' autoscaling/v2 default", () => {
    expect(DEFAULT_HPA_BEHAVIOR).toEqual({
      scaleUp: {
        stabilizationWindowSeconds: 0,
        selectPolicy: 'Max',
        policies: [
          { type: 'Percent', value: 100, periodSeconds: 15 },
          { type: 'Pods', value: 4, periodSeconds: 15 },
        ],
      },
      scaleDown: { stabilizationWindowSeconds: 300, selectPolicy: 'Max', policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }] },
    });
  });
});
