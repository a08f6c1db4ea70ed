import { describe, expect, it } from 'vitest';
import type { IContainer } from 'kubernetes-models/v1';
import { isAppName, unknownKeys } from './support/app-config';
import {
  KUBECTL,
  RENDERINGS,
  containerEnv,
  named,
  noteMissingKubectl,
  ofKind,
  rendering,
  selects,
  specOf,
  validateDoc,
  workload,
  workloads,
  type K8sDoc,
} from './support/manifests';

noteMissingKubectl();

const NAMESPACE = 'fastvlm';

/** Ports each app reads from its config, by the container port name that must carry them. */
const CONFIG_PORTS: Record<string, Record<string, string>> = {
  gateway: { http: 'PORT' },
  worker: { http: 'WORKER_HTTP_PORT' },
  scaler: { grpc: 'SCALER_GRPC_PORT', http: 'SCALER_HTTP_PORT' },
};
/** The address variable of each port: containers must listen beyond loopback. */
const CONFIG_HOSTS: Record<string, string[]> = { gateway: ['HOST'], worker: ['WORKER_HTTP_HOST'], scaler: ['SCALER_GRPC_HOST', 'SCALER_HTTP_HOST'] };

function allContainers(docs: readonly K8sDoc[]): { owner: string; c: IContainer; init: boolean }[] {
  return workloads(docs).flatMap((w) => [
    ...(w.pod.initContainers ?? []).map((c) => ({ owner: w.doc.metadata.name, c, init: true })),
    ...w.pod.containers.map((c) => ({ owner: w.doc.metadata.name, c, init: false })),
  ]);
}

describe.skipIf(!KUBECTL).each(RENDERINGS.map((r) => r.name))('deploy/k8s rendering %s', (name) => {
  const docs = (): K8sDoc[] => rendering(name);

  it('every document is valid for its API (kubernetes-models, @kubernetes-models/keda) and lives in the fastvlm namespace', () => {
    let validated = 0;
    for (const d of docs()) {
      let modelled = false;
      expect(() => (modelled = validateDoc(d)), `${d.kind} ${d.metadata.name}`).not.toThrow();
      if (modelled) validated += 1;
      if (d.kind !== 'Namespace') expect(d.metadata.namespace, `${d.kind} ${d.metadata.name}`).toBe(NAMESPACE);
    }
    expect(validated).toBeGreaterThan(15);
    expect(named(docs(), 'Namespace', NAMESPACE)).toBeTruthy();
  });

  it('every container has cpu and memory requests and limits, and every long-running one liveness and readiness probes', () => {
    const containers = allContainers(docs());
    expect(containers.length).toBeGreaterThanOrEqual(4);
    for (const { owner, c, init } of containers) {
      const where = `${owner}/${c.name}`;
      for (const kind of ['requests', 'limits'] as const) {
        expect(c.resources?.[kind]?.cpu, `${where} ${kind}.cpu`).toBeDefined();
        expect(c.resources?.[kind]?.memory, `${where} ${kind}.memory`).toBeDefined();
      }
      // Kubernetes refuses probes on init containers; they run to completion instead.
      if (init) continue;
      expect(c.livenessProbe, `${where} livenessProbe`).toBeDefined();
      expect(c.readinessProbe, `${where} readinessProbe`).toBeDefined();
    }
  });

  it('every pod runs as non-root, read-only, without privilege escalation or capabilities, under the RuntimeDefault seccomp profile', () => {
    for (const w of workloads(docs())) {
      for (const c of [...(w.pod.initContainers ?? []), ...w.pod.containers]) {
        const where = `${w.doc.metadata.name}/${c.name}`;
        const s = c.securityContext ?? {};
        expect(s.runAsNonRoot ?? w.pod.securityContext?.runAsNonRoot, `${where} runAsNonRoot`).toBe(true);
        expect(s.runAsUser ?? w.pod.securityContext?.runAsUser ?? 0, `${where} runAsUser`).toBeGreaterThan(0);
        expect(s.readOnlyRootFilesystem, `${where} readOnlyRootFilesystem`).toBe(true);
        expect(s.allowPrivilegeEscalation, `${where} allowPrivilegeEscalation`).toBe(false);
        expect(s.capabilities?.drop, `${where} capabilities.drop`).toContain('ALL');
        expect(s.capabilities?.add ?? [], `${where} capabilities.add`).toEqual([]);
        expect((s.seccompProfile ?? w.pod.securityContext?.seccompProfile)?.type, `${where} seccompProfile`).toBe('RuntimeDefault');
      }
      expect(w.pod.automountServiceAccountToken, `${w.doc.metadata.name} automountServiceAccountToken`).toBe(false);
    }
  });

  it('the apps write only to volumes: /tmp is an emptyDir, the worker model cache is mounted at FASTVLM_CACHE_DIR', () => {
    for (const w of workloads(docs()).filter((x) => isAppName(x.component))) {
      const volumes = new Map((w.pod.volumes ?? []).map((v) => [v.name, v]));
      for (const c of [...(w.pod.initContainers ?? []), ...w.pod.containers]) {
        const tmp = (c.volumeMounts ?? []).find((m) => m.mountPath === '/tmp');
        expect(tmp, `${w.doc.metadata.name}/${c.name} mounts /tmp`).toBeDefined();
        expect(volumes.get(tmp?.name ?? '')?.emptyDir, `${w.doc.metadata.name}/${c.name} /tmp is an emptyDir`).toBeDefined();
      }
    }
    const worker = workload(docs(), 'worker');
    for (const c of [...(worker.pod.initContainers ?? []), ...worker.pod.containers]) {
      const cacheDir = containerEnv(docs(), c).FASTVLM_CACHE_DIR;
      expect(cacheDir, `${c.name} FASTVLM_CACHE_DIR`).toBeTruthy();
      const mount = (c.volumeMounts ?? []).find((m) => m.mountPath === cacheDir);
      expect(mount?.readOnly ?? false, `${c.name} mounts the model cache writable at ${cacheDir}`).toBe(false);
      const volume = (worker.pod.volumes ?? []).find((v) => v.name === mount?.name);
      expect(volume?.persistentVolumeClaim ?? volume?.ephemeral?.volumeClaimTemplate, `${c.name} model cache is a PVC`).toBeDefined();
    }
  });

  it('every ConfigMap key and env variable an app container gets is one of that app’s config variables', () => {
    let checked = 0;
    for (const w of workloads(docs()).filter((x) => isAppName(x.component))) {
      const app = w.component;
      if (!isAppName(app)) continue;
      for (const c of [...(w.pod.initContainers ?? []), ...w.pod.containers]) {
        const keys = new Set<string>();
        for (const from of c.envFrom ?? []) {
          expect(from.configMapRef?.name, `${w.doc.metadata.name}/${c.name} envFrom is a ConfigMap`).toBeTruthy();
          const cm = named<{ data?: Record<string, string> }>(docs(), 'ConfigMap', from.configMapRef?.name ?? '');
          for (const k of Object.keys(cm.data ?? {})) keys.add(k);
        }
        for (const e of c.env ?? []) keys.add(e.name);
        expect(unknownKeys(app, keys), `${w.doc.metadata.name}/${c.name}: keys the ${app} config does not know`).toEqual([]);
        checked += keys.size;
      }
    }
    expect(checked).toBeGreaterThan(15);
    // Every app ConfigMap feeds some container (a ConfigMap nobody reads is a typo of its own).
    const read = new Set(allContainers(docs()).flatMap(({ c }) => (c.envFrom ?? []).map((f) => f.configMapRef?.name ?? '')));
    const volumes = new Set(workloads(docs()).flatMap((w) => (w.pod.volumes ?? []).map((v) => v.configMap?.name ?? '')));
    for (const cm of ofKind(docs(), 'ConfigMap').filter((d) => d.metadata.name.startsWith('fastvlm-') && !d.metadata.name.startsWith('fastvlm-grafana'))) {
      expect(read.has(cm.metadata.name) || volumes.has(cm.metadata.name), `ConfigMap ${cm.metadata.name} is read`).toBe(true);
    }
  });

  it('the ports and addresses in the config are the ports the containers declare and their probes use', () => {
    for (const app of ['gateway', 'worker', 'scaler'] as const) {
      const w = workload(docs(), app);
      const c = w.pod.containers.find((x) => x.name === app);
      if (!c) throw new Error(`no ${app} container`);
      const env = containerEnv(docs(), c);
      const ports = new Map((c.ports ?? []).map((p) => [p.name ?? '', p.containerPort]));
      for (const [portName, variable] of Object.entries(CONFIG_PORTS[app] ?? {})) {
        expect(env[variable], `${app} ${variable}`).toBeDefined();
        expect(ports.get(portName), `${app} port ${portName} = ${variable}`).toBe(Number(env[variable]));
      }
      for (const variable of CONFIG_HOSTS[app] ?? []) expect(env[variable], `${app} ${variable}`).toBe('0.0.0.0');
      for (const probe of [c.livenessProbe, c.readinessProbe, c.startupProbe]) {
        if (!probe?.httpGet) continue;
        expect(ports.has(String(probe.httpGet.port)), `${app} probe port ${String(probe.httpGet.port)}`).toBe(true);
        expect(probe.httpGet.path).toMatch(/^\/health\/(live|ready)$/);
      }
      expect(c.livenessProbe?.httpGet?.path, `${app} liveness`).toBe('/health/live');
      expect(c.readinessProbe?.httpGet?.path, `${app} readiness`).toBe('/health/ready');
    }
  });

  it('every Service selects the pods of a workload and targets ports they declare', () => {
    for (const svc of ofKind<{ spec: { selector?: Record<string, string>; ports: { name?: string; targetPort?: string | number }[] } }>(docs(), 'Service')) {
      const w = workloads(docs()).find((x) => selects({ matchLabels: svc.spec.selector }, x.podLabels));
      expect(w, `Service ${svc.metadata.name} selects a workload`).toBeDefined();
      const declared = new Set((w?.pod.containers ?? []).flatMap((c) => (c.ports ?? []).flatMap((p) => [p.name ?? '', p.containerPort])));
      for (const p of svc.spec.ports) expect(declared.has(p.targetPort ?? ''), `Service ${svc.metadata.name} port ${p.name ?? ''}`).toBe(true);
    }
  });

  it('the gateway has a PodDisruptionBudget and a HorizontalPodAutoscaler on CPU', () => {
    const gw = workload(docs(), 'gateway');
    const pdbs = ofKind<{ spec: { selector: { matchLabels?: Record<string, string> }; maxUnavailable?: number | string; minAvailable?: number | string } }>(docs(), 'PodDisruptionBudget');
    const pdb = pdbs.find((p) => selects(p.spec.selector, gw.podLabels));
    expect(pdb, 'a PDB selects the gateway pods').toBeDefined();
    expect(pdb?.spec.maxUnavailable ?? pdb?.spec.minAvailable).toBeDefined();
    const hpa = ofKind<{ spec: { scaleTargetRef: { kind: string; name: string }; minReplicas: number; metrics: { resource?: { name: string } }[] } }>(docs(), 'HorizontalPodAutoscaler').find(
      (h) => h.spec.scaleTargetRef.kind === 'Deployment' && h.spec.scaleTargetRef.name === gw.doc.metadata.name,
    );
    expect(hpa?.spec.metrics.map((m) => m.resource?.name)).toEqual(['cpu']);
    expect(hpa?.spec.minReplicas).toBeGreaterThanOrEqual(1);
    // The autoscalers own replica counts; a count in the Deployment would be reset on every apply.
    expect(specOf<{ replicas?: number }>(gw.doc).replicas).toBeUndefined();
    expect(specOf<{ replicas?: number }>(workload(docs(), 'worker').doc).replicas).toBeUndefined();
  });

  it('the scaler runs two stateless replicas in production, with a gRPC and an HTTP port behind its Service', () => {
    const scaler = workload(docs(), 'scaler');
    const replicas = specOf<{ replicas?: number }>(scaler.doc).replicas ?? 1;
    expect(replicas).toBe(name.startsWith('gpu') ? 2 : 1);
    const svc = ofKind<{ spec: { selector: Record<string, string>; ports: { name: string; port: number }[] } }>(docs(), 'Service').find((s) => selects({ matchLabels: s.spec.selector }, scaler.podLabels));
    expect(svc?.spec.ports.map((p) => p.name).sort()).toEqual(['grpc', 'http']);
  });
});
