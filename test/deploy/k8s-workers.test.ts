import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseScalerMetadata } from '@fastvlm/autoscaling';
import { poolQueue } from '@fastvlm/contracts';
import { DEFAULT_HPA_BEHAVIOR } from '../../apps/scaler/src/simulator/hpa';
import { DEFAULT_SCALED_OBJECT } from '../../apps/scaler/src/simulator/keda';
import { KUBECTL, K8S, RENDERINGS, container, containerEnv, named, noteMissingKubectl, ofKind, parseYamlDocuments, rendering, workload, workloads, type K8sDoc } from './support/manifests';

noteMissingKubectl();

interface ScaledObjectSpec {
  scaleTargetRef: { name: string; kind?: string };
  minReplicaCount: number;
  maxReplicaCount: number;
  pollingInterval: number;
  cooldownPeriod: number;
  fallback?: { failureThreshold: number; replicas: number };
  advanced?: { horizontalPodAutoscalerConfig?: { behavior?: unknown } };
  triggers: { type: string; metadata: Record<string, string> }[];
}

function scaledObject(docs: readonly K8sDoc[]): K8sDoc & { spec: ScaledObjectSpec } {
  const all = ofKind<{ spec: ScaledObjectSpec }>(docs, 'ScaledObject');
  expect(all).toHaveLength(1);
  return all[0] as K8sDoc & { spec: ScaledObjectSpec };
}

/** Every container of every workload, with the resources it asks for. */
function gpuRequests(docs: readonly K8sDoc[]): string[] {
  return workloads(docs).flatMap((w) =>
    [...(w.pod.initContainers ?? []), ...w.pod.containers]
      .filter((c) => c.resources?.limits?.['nvidia.com/gpu'] !== undefined || c.resources?.requests?.['nvidia.com/gpu'] !== undefined)
      .map((c) => `${w.doc.metadata.name}/${c.name}`),
  );
}

describe.skipIf(!KUBECTL).each(RENDERINGS.map((r) => r.name))('deploy/k8s workers and their ScaledObject, rendering %s', (name) => {
  const docs = (): K8sDoc[] => rendering(name);

  it('the ScaledObject scales the worker Deployment through the scaler’s gRPC Service, with metadata its own parser accepts', () => {
    const so = scaledObject(docs());
    expect(so.spec.scaleTargetRef.name).toBe(workload(docs(), 'worker').doc.metadata.name);
    expect(so.spec.triggers).toHaveLength(1);
    const trigger = so.spec.triggers[0];
    expect(trigger?.type).toBe('external-push');
    const metadata = trigger?.metadata ?? {};
    // The address names the scaler's Service, in this namespace, on its gRPC port.
    const scaler = workload(docs(), 'scaler');
    const svc = ofKind<{ spec: { selector: Record<string, string>; ports: { name: string; port: number }[] } }>(docs(), 'Service').find(
      (s) => s.spec.selector['app.kubernetes.io/component'] === scaler.component,
    );
    const grpc = svc?.spec.ports.find((p) => p.name === 'grpc');
    expect(metadata.scalerAddress).toBe(`${svc?.metadata.name ?? '?'}.${svc?.metadata.namespace ?? '?'}.svc.cluster.local:${grpc?.port ?? '?'}`);
    // KEDA passes the whole metadata, scalerAddress included; the scaler must take it as it comes.
    const settings = parseScalerMetadata(metadata, 'no-queue-named');
    expect(settings.minReplicas).toBe(so.spec.minReplicaCount);
    expect(settings.maxReplicas).toBe(so.spec.maxReplicaCount);
    expect(['conservative', 'aggressive', 'adaptive', 'predictive']).toContain(settings.strategy);
    const { scalerAddress: _address, ...own } = metadata;
    expect(() => parseScalerMetadata(own, 'no-queue-named')).not.toThrow();
  });

  it('the ScaledObject scales on the pool queue of the model its workers serve, which the scaler and the gateways know too', () => {
    const so = scaledObject(docs());
    const model = containerEnv(docs(), container(workload(docs(), 'worker'), 'worker')).FASTVLM_MODEL ?? '';
    expect(so.spec.triggers[0]?.metadata.queue).toBe(poolQueue(model));
    expect(so.spec.triggers[0]?.metadata.queue).toBe(name.startsWith('gpu') ? 'inference-onnx-community~2fFastVLM-0.5B-ONNX' : 'inference-tiny-random');
    // The scaler's own watch and a gateway's routing use the same model: its default pool is this queue.
    expect(containerEnv(docs(), container(workload(docs(), 'scaler'), 'scaler')).FASTVLM_MODEL).toBe(model);
    expect(containerEnv(docs(), container(workload(docs(), 'gateway'), 'gateway')).FASTVLM_MODEL).toBe(model);
  });

  it('the ScaledObject’s HPA behaviour, polling and cooldown are the ones the simulator replays', () => {
    const so = scaledObject(docs());
    expect(so.spec.advanced?.horizontalPodAutoscalerConfig?.behavior).toEqual(DEFAULT_HPA_BEHAVIOR);
    expect(so.spec.pollingInterval).toBe(DEFAULT_SCALED_OBJECT.pollingIntervalSeconds);
    expect(so.spec.cooldownPeriod).toBe(DEFAULT_SCALED_OBJECT.cooldownPeriodSeconds);
  });

  it('a dead scaler does not scale the workers to zero: the fallback holds at least one worker', () => {
    const so = scaledObject(docs());
    expect(so.spec.fallback?.failureThreshold).toBeGreaterThanOrEqual(1);
    expect(so.spec.fallback?.replicas).toBeGreaterThanOrEqual(Math.max(1, so.spec.minReplicaCount));
    expect(so.spec.fallback?.replicas).toBeLessThanOrEqual(so.spec.maxReplicaCount);
  });

  it('workers scale to zero only with gateways that stay ready without one (else the ingress refuses the jobs that wake a worker)', () => {
    const so = scaledObject(docs());
    const gatewayEnv = containerEnv(docs(), container(workload(docs(), 'gateway'), 'gateway'));
    if (so.spec.minReplicaCount === 0) expect(gatewayEnv.READINESS_REQUIRES_WORKER).toBe('false');
    expect(so.spec.minReplicaCount).toBe(0);
  });

  it('a worker’s grace period outlasts the job deadline and its own drain, so that a scale-down never kills a job', () => {
    const worker = workload(docs(), 'worker');
    const gatewayEnv = containerEnv(docs(), container(workload(docs(), 'gateway'), 'gateway'));
    const workerEnv = containerEnv(docs(), container(worker, 'worker'));
    const grace = worker.pod.terminationGracePeriodSeconds ?? 30;
    const deadlineS = Number(gatewayEnv.JOB_DEADLINE_S);
    const drainS = Number(workerEnv.SHUTDOWN_TIMEOUT_MS) / 1000;
    expect(deadlineS).toBeGreaterThan(0);
    expect(drainS).toBeGreaterThanOrEqual(deadlineS);
    // The worker exits at most 5 s after SHUTDOWN_TIMEOUT_MS (its backstop).
    expect(grace).toBeGreaterThan(drainS + 5);
    expect(grace).toBeGreaterThan(deadlineS);
  });

  it('an init container pulls the model into the cache volume, with an optional HF_TOKEN, before a startup probe long enough for a model load', () => {
    const worker = workload(docs(), 'worker');
    const init = worker.pod.initContainers ?? [];
    expect(init.map((c) => c.name)).toEqual(['model-pull']);
    const pull = container(worker, 'model-pull');
    const main = container(worker, 'worker');
    expect(pull.image).toBe(main.image);
    expect(pull.command).toEqual(['node', 'dist/apps/worker/model-pull.js', '$(FASTVLM_MODEL)']);
    expect(containerEnv(docs(), pull).FASTVLM_MODEL).toBe(containerEnv(docs(), main).FASTVLM_MODEL);
    const token = pull.env?.find((e) => e.name === 'HF_TOKEN');
    expect(token?.valueFrom?.secretKeyRef?.optional).toBe(true);
    // The worker itself never downloads: the pod's start-up is the init container's pull plus the load.
    expect(containerEnv(docs(), main).HF_HUB_OFFLINE).toBe('true');
    const startup = main.startupProbe;
    expect(startup?.httpGet?.path).toBe('/health/ready');
    expect((startup?.periodSeconds ?? 10) * (startup?.failureThreshold ?? 3)).toBeGreaterThanOrEqual(300);
  });

  it('the ScaledObject and the worker Deployment are the only things that set the worker count', () => {
    expect(ofKind(docs(), 'HorizontalPodAutoscaler').map((h) => h.metadata.name)).not.toContain(workload(docs(), 'worker').doc.metadata.name);
  });
});

describe.skipIf(!KUBECTL)('deploy/k8s overlays: the GPU worker and the CPU worker', () => {
  it('gpu: one NVIDIA GPU per worker, on tolerated GPU nodes, the CUDA image and the cuda device', () => {
    const docs = rendering('gpu');
    const worker = workload(docs, 'worker');
    const main = container(worker, 'worker');
    expect(main.resources?.limits?.['nvidia.com/gpu']).toBe(1);
    expect(main.resources?.requests?.['nvidia.com/gpu']).toBe(1);
    expect(gpuRequests(docs)).toEqual([`${worker.doc.metadata.name}/worker`]);
    expect(worker.pod.tolerations?.some((t) => t.key === 'nvidia.com/gpu' && t.effect === 'NoSchedule')).toBe(true);
    expect(Object.keys(worker.pod.nodeSelector ?? {}).length).toBeGreaterThan(0);
    for (const c of [main, container(worker, 'model-pull')]) expect(c.image).toMatch(/^fastvlm\/worker-cuda:/);
    expect(containerEnv(docs, main).FASTVLM_DEVICE).toBe('cuda');
    expect(containerEnv(docs, main).FASTVLM_MODEL).toBe('onnx-community/FastVLM-0.5B-ONNX');
    // runtimeClassName is optional: only its component sets it.
    expect(worker.pod.runtimeClassName).toBeUndefined();
    expect(workload(rendering('gpu + monitoring, model-cache-rwx, nvidia-runtime-class'), 'worker').pod.runtimeClassName).toBe('nvidia');
  });

  it('cpu-dev: no GPU anywhere, the CPU image, the generated tiny-random model', () => {
    const docs = rendering('cpu-dev');
    expect(gpuRequests(docs)).toEqual([]);
    const worker = workload(docs, 'worker');
    const main = container(worker, 'worker');
    expect(main.image).toMatch(/^fastvlm\/worker-cpu:/);
    expect(worker.pod.tolerations ?? []).toEqual([]);
    expect(worker.pod.runtimeClassName).toBeUndefined();
    const env = containerEnv(docs, main);
    expect(env.FASTVLM_DEVICE).toBe('cpu');
    expect(env.FASTVLM_MODEL).toBe('tiny-random');
    expect(containerEnv(docs, container(workload(docs, 'gateway'), 'gateway')).FASTVLM_MODEL).toBe('tiny-random');
  });

  it('the model cache is a PVC per worker pod by default, and one ReadWriteMany claim with model-cache-rwx', () => {
    const volume = (docs: readonly K8sDoc[]) => (workload(docs, 'worker').pod.volumes ?? []).find((v) => v.name === 'model-cache');
    expect(volume(rendering('gpu'))?.ephemeral?.volumeClaimTemplate?.spec.accessModes).toEqual(['ReadWriteOnce']);
    const rwx = rendering('gpu + monitoring, model-cache-rwx, nvidia-runtime-class');
    const claim = volume(rwx)?.persistentVolumeClaim?.claimName ?? '';
    expect(named<{ spec: { accessModes: string[] } }>(rwx, 'PersistentVolumeClaim', claim).spec.accessModes).toEqual(['ReadWriteMany']);
  });

  it('the overlays change the base only where they say so: both render the same kinds and names', () => {
    const ids = (docs: readonly K8sDoc[]) => docs.map((d) => `${d.kind}/${d.metadata.name.replace(/-[a-z0-9]{10}$/, '')}`).sort();
    expect(ids(rendering('gpu'))).toEqual(ids(rendering('cpu-dev')));
  });
});

describe('deploy/k8s without kubectl', () => {
  it('the base worker Deployment parses and names the model pull CLI the worker image ships', () => {
    // Read without kustomize, so that this holds where kubectl is missing too.
    const [doc] = parseYamlDocuments(readFileSync(join(K8S, 'base', 'worker', 'deployment.yaml'), 'utf8'));
    const spec = (doc as unknown as { spec: { template: { spec: { initContainers: { command: string[] }[] } } } }).spec.template.spec;
    expect(spec.initContainers[0]?.command.slice(0, 2)).toEqual(['node', 'dist/apps/worker/model-pull.js']);
  });
});
