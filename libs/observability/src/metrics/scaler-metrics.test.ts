import { describe, expect, it } from 'vitest';
import { metricNames } from './catalogue';
import { ScalerMetrics } from './scaler-metrics';

const lines = async (m: ScalerMetrics): Promise<string[]> => (await m.scrape()).split('\n').filter((l) => l && !l.startsWith('#'));

describe('scaler metrics', () => {
  it("shows every strategy's desired count for a ScaledObject, its own strategy marked chosen, and forgets it on request", async () => {
    const m = new ScalerMetrics();
    m.scaledObject({ scaledObject: 'ml/w', queue: 'inference', desired: { conservative: 2, aggressive: 5, adaptive: 3, predictive: 3 }, chosen: 'aggressive', panic: true, forecastRps: null, active: true });
    m.queueSignals('inference', { queued: 12, active: 2, ready: 1, loading: 1, arrivals_per_second: 0.5, replica_capacity: 1, startup_seconds: 120 });
    m.grpcRequest('GetMetrics', 'OK');
    const out = await lines(m);
    expect(out).toContain('fastvlm_scaler_desired_replicas{scaled_object="ml/w",queue="inference",strategy="aggressive",chosen="true"} 5');
    expect(out).toContain('fastvlm_scaler_desired_replicas{scaled_object="ml/w",queue="inference",strategy="adaptive",chosen="false"} 3');
    expect(out.filter((l) => l.includes('chosen="true"'))).toHaveLength(1);
    expect(out).toContain('fastvlm_scaler_mode{scaled_object="ml/w",queue="inference"} 1');
    expect(out).toContain('fastvlm_scaler_active{scaled_object="ml/w",queue="inference"} 1');
    expect(out).toContain('fastvlm_scaler_signal{queue="inference",signal="queued"} 12');
    expect(out).toContain('fastvlm_scaler_grpc_requests_total{method="GetMetrics",code="OK"} 1');
    // No trusted forecast: no series, rather than a made-up 0.
    expect(out.some((l) => l.startsWith('fastvlm_scaler_forecast_arrivals_per_second'))).toBe(false);

    // The ScaledObject switched strategy: still exactly one chosen series.
    m.scaledObject({ scaledObject: 'ml/w', queue: 'inference', desired: { conservative: 2, aggressive: 5, adaptive: 3, predictive: 4 }, chosen: 'predictive', panic: false, forecastRps: 0.25, active: true });
    const switched = await lines(m);
    expect(switched.filter((l) => l.includes('chosen="true"'))).toEqual(['fastvlm_scaler_desired_replicas{scaled_object="ml/w",queue="inference",strategy="predictive",chosen="true"} 4']);
    expect(switched).toContain('fastvlm_scaler_forecast_arrivals_per_second{scaled_object="ml/w",queue="inference"} 0.25');

    m.forgetScaledObject('ml/w');
    m.forgetQueue('inference');
    const after = await lines(m);
    expect(after.some((l) => l.startsWith('fastvlm_scaler_desired_replicas') || l.startsWith('fastvlm_scaler_signal'))).toBe(false);
  });

  it('lists the scaler metrics under the scaler app only', () => {
    expect(metricNames('scaler')).toEqual(
      expect.arrayContaining(['fastvlm_scaler_desired_replicas', 'fastvlm_scaler_mode', 'fastvlm_scaler_forecast_arrivals_per_second', 'fastvlm_scaler_active', 'fastvlm_scaler_signal', 'fastvlm_scaler_grpc_requests_total']),
    );
    expect(metricNames('gateway').some((n) => n.startsWith('fastvlm_scaler_'))).toBe(false);
    expect(metricNames('worker').some((n) => n.startsWith('fastvlm_scaler_'))).toBe(false);
  });
});
