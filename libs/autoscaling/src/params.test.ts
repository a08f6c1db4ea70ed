import { describe, expect, it } from 'vitest';
import { InvalidScalerMetadata, PRIOR_REPLICA_CAPACITY, PRIOR_STARTUP_SECONDS, parseScalerMetadata, resolveParams } from './params';

const parse = (m: Record<string, string>) => parseScalerMetadata(m, 'inference');
const fieldOf = (m: Record<string, string>): string => {
  try {
    parse(m);
  } catch (e) {
    if (e instanceof InvalidScalerMetadata) return e.field;
    throw e;
  }
  throw new Error('accepted');
};

describe('scaler metadata', () => {
  it('fills every default from empty metadata', () => {
    expect(parse({})).toEqual({
      queue: 'inference',
      strategy: 'adaptive',
      targetQueueWaitSeconds: 10,
      replicaCapacity: 'measured',
      minReplicas: 0,
      maxReplicas: 100,
      startupSeconds: 'measured',
      forecastHorizonSeconds: null,
      scaleToZeroGraceSeconds: 60,
    });
  });

  it('ignores the keys KEDA itself reads from the trigger and passes along', () => {
    expect(parse({ scalerAddress: 'fastvlm-scaler.fastvlm.svc.cluster.local:9090', unsafeSsl: 'false', enableTLS: 'false', strategy: 'conservative' }).strategy).toBe(
      'conservative',
    );
  });

  it('reads every setting', () => {
    expect(
      parse({
        queue: 'inference-onnx-community~2fFastVLM-0.5B-ONNX',
        strategy: 'predictive',
        targetQueueWaitSeconds: '2.5',
        replicaCapacity: '4',
        minReplicas: '1',
        maxReplicas: '12',
        startupSeconds: '75',
        forecastHorizonSeconds: '300',
        scaleToZeroGraceSeconds: '120',
      }),
    ).toEqual({
      queue: 'inference-onnx-community~2fFastVLM-0.5B-ONNX',
      strategy: 'predictive',
      targetQueueWaitSeconds: 2.5,
      replicaCapacity: 4,
      minReplicas: 1,
      maxReplicas: 12,
      startupSeconds: 75,
      forecastHorizonSeconds: 300,
      scaleToZeroGraceSeconds: 120,
    });
  });

  it.each([
    [{ strategy: 'magic' }, 'strategy'],
    [{ targetQueueWaitSeconds: '-1' }, 'targetQueueWaitSeconds'],
    [{ targetQueueWaitSeconds: 'soon' }, 'targetQueueWaitSeconds'],
    [{ replicaCapacity: '0' }, 'replicaCapacity'],
    [{ replicaCapacity: 'guess' }, 'replicaCapacity'],
    [{ minReplicas: '1.5' }, 'minReplicas'],
    [{ maxReplicas: '0' }, 'maxReplicas'],
    [{ minReplicas: '5', maxReplicas: '2' }, 'minReplicas'],
    [{ startupSeconds: '1e3' }, 'startupSeconds'],
    [{ scaleToZeroGraceSeconds: '3600' }, 'scaleToZeroGraceSeconds'],
    [{ queue: 'a:b' }, 'queue'],
    [{ queue: 'a/b' }, 'queue'],
    [{ targetQueueWait: '5' }, 'targetQueueWait'],
  ])('refuses %j naming the field', (m, field) => {
    expect(fieldOf(m)).toBe(field);
  });

  it('resolves measured settings from measurements, or from the priors before there are any', () => {
    const s = parse({ startupSeconds: 'measured' });
    expect(resolveParams(s, { replicaCapacity: 2.5, startupSeconds: 70 })).toMatchObject({ replicaCapacity: 2.5, startupSeconds: 70, forecastHorizonSeconds: 100 });
    expect(resolveParams(s, { replicaCapacity: null, startupSeconds: null })).toMatchObject({
      replicaCapacity: PRIOR_REPLICA_CAPACITY,
      startupSeconds: PRIOR_STARTUP_SECONDS,
    });
    expect(resolveParams(parse({ replicaCapacity: '3', startupSeconds: '40' }), { replicaCapacity: 9, startupSeconds: 9 })).toMatchObject({
      replicaCapacity: 3,
      startupSeconds: 40,
    });
  });
});
