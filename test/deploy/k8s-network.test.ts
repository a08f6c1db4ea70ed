import { describe, expect, it } from 'vitest';
import { KUBECTL, RENDERINGS, noteMissingKubectl, ofKind, rendering, selects, workload, type K8sDoc } from './support/manifests';
import { allows, type Endpoint } from './support/network-policy';

noteMissingKubectl();

const NS = 'fastvlm';
const pod = (docs: readonly K8sDoc[], component: string): Endpoint => ({ namespace: NS, labels: workload(docs, component).podLabels });
/** A pod of some other app in the same namespace. */
const stranger: Endpoint = { namespace: NS, labels: { app: 'something-else' } };
const inNamespace = (namespace: string): Endpoint => ({ namespace, labels: { app: 'any' } });
const kubeDns: Endpoint = { namespace: 'kube-system', labels: { 'k8s-app': 'kube-dns' } };
/** An address of the Hugging Face hub's CDN (any public address: the policy allows by port). */
const internet: Endpoint = { ip: '18.160.10.1' };

describe.skipIf(!KUBECTL).each(RENDERINGS.map((r) => r.name))('deploy/k8s NetworkPolicies, rendering %s', (name) => {
  const docs = (): K8sDoc[] => rendering(name);
  const hasRedis = (): boolean => ofKind(docs(), 'StatefulSet').some((s) => s.metadata.name === 'redis');

  it('every pod of the namespace is isolated for ingress by default', () => {
    const deny = ofKind<{ spec: { podSelector: object; policyTypes: string[]; ingress?: unknown[] } }>(docs(), 'NetworkPolicy').find(
      (p) => Object.keys(p.spec.podSelector).length === 0 && p.spec.policyTypes.includes('Ingress') && (p.spec.ingress ?? []).length === 0,
    );
    expect(deny).toBeDefined();
  });

  it('only the gateway, the workers and the scaler reach Redis', () => {
    if (!hasRedis()) return;
    const redis = pod(docs(), 'redis');
    for (const app of ['gateway', 'worker', 'scaler']) expect(allows(docs(), pod(docs(), app), redis, 6379), `${app} → redis`).toBe(true);
    expect(allows(docs(), stranger, redis, 6379), 'another pod of the namespace → redis').toBe(false);
    expect(allows(docs(), inNamespace('default'), redis, 6379), 'a pod of another namespace → redis').toBe(false);
  });

  it('only the KEDA operator’s namespace reaches the scaler’s gRPC port', () => {
    const scaler = pod(docs(), 'scaler');
    expect(allows(docs(), inNamespace('keda'), scaler, 9090)).toBe(true);
    expect(allows(docs(), inNamespace('default'), scaler, 9090)).toBe(false);
    expect(allows(docs(), pod(docs(), 'gateway'), scaler, 9090)).toBe(false);
    expect(allows(docs(), stranger, scaler, 9090)).toBe(false);
    // KEDA reaches gRPC only, not the health and metrics port.
    expect(allows(docs(), inNamespace('keda'), scaler, 9466)).toBe(false);
  });

  it('only the ingress controller’s namespace reaches the gateway’s API', () => {
    const gateway = pod(docs(), 'gateway');
    expect(allows(docs(), inNamespace('ingress-nginx'), gateway, 8080)).toBe(true);
    expect(allows(docs(), inNamespace('default'), gateway, 8080)).toBe(false);
    expect(allows(docs(), stranger, gateway, 8080)).toBe(false);
  });

  it('workers reach only Redis, DNS and HTTPS (the Hugging Face hub), and nothing reaches them but Prometheus', () => {
    const worker = pod(docs(), 'worker');
    if (hasRedis()) expect(allows(docs(), worker, pod(docs(), 'redis'), 6379)).toBe(true);
    else expect(allows(docs(), worker, { ip: '10.20.30.40' }, 6379), 'worker → external Redis').toBe(true);
    expect(allows(docs(), worker, kubeDns, 53, 'UDP')).toBe(true);
    expect(allows(docs(), worker, kubeDns, 53, 'TCP')).toBe(true);
    expect(allows(docs(), worker, internet, 443)).toBe(true);
    expect(allows(docs(), worker, internet, 80), 'plain HTTP out').toBe(false);
    expect(allows(docs(), worker, internet, 22), 'SSH out').toBe(false);
    expect(allows(docs(), worker, pod(docs(), 'gateway'), 8080), 'worker → gateway').toBe(false);
    expect(allows(docs(), worker, { namespace: 'kube-system', labels: { app: 'other' } }, 53, 'UDP'), 'DNS to a pod that is not kube-dns').toBe(false);
    expect(allows(docs(), pod(docs(), 'gateway'), worker, 9464), 'gateway → worker').toBe(false);
    const monitored = ofKind(docs(), 'ServiceMonitor').length > 0;
    expect(allows(docs(), inNamespace('monitoring'), worker, 9464), 'Prometheus → worker metrics').toBe(monitored);
  });

  it('with the monitoring component, Prometheus reaches each app’s metrics port, and nothing else more', () => {
    if (ofKind(docs(), 'ServiceMonitor').length === 0) return;
    const prometheus = inNamespace('monitoring');
    expect(allows(docs(), prometheus, pod(docs(), 'gateway'), 8080)).toBe(true);
    expect(allows(docs(), prometheus, pod(docs(), 'worker'), 9464)).toBe(true);
    expect(allows(docs(), prometheus, pod(docs(), 'scaler'), 9466)).toBe(true);
    expect(allows(docs(), prometheus, pod(docs(), 'scaler'), 9090)).toBe(false);
    if (hasRedis()) expect(allows(docs(), prometheus, pod(docs(), 'redis'), 6379)).toBe(false);
  });

  it('every NetworkPolicy selects pods that exist', () => {
    const labels = ['gateway', 'worker', 'scaler', ...(hasRedis() ? ['redis'] : [])].map((c) => workload(docs(), c).podLabels);
    for (const p of ofKind<{ spec: { podSelector: Parameters<typeof selects>[0] } }>(docs(), 'NetworkPolicy')) {
      expect(
        labels.some((l) => selects(p.spec.podSelector, l)),
        p.metadata.name,
      ).toBe(true);
    }
  });
});

describe('the NetworkPolicy reading the tests rely on', () => {
  const policy = (spec: object): K8sDoc => ({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'p', namespace: 'a' }, spec });
  const web: Endpoint = { namespace: 'a', labels: { role: 'web' } };
  const db: Endpoint = { namespace: 'a', labels: { role: 'db' } };

  it('leaves pods that no policy selects open, and opens a selected pod only to the peers and ports of its rules', () => {
    expect(allows([], web, db, 5432)).toBe(true);
    const docs = [policy({ podSelector: { matchLabels: { role: 'db' } }, policyTypes: ['Ingress'], ingress: [{ from: [{ podSelector: { matchLabels: { role: 'web' } } }], ports: [{ port: 5432 }] }] })];
    expect(allows(docs, web, db, 5432)).toBe(true);
    expect(allows(docs, web, db, 5433)).toBe(false);
    expect(allows(docs, { namespace: 'b', labels: { role: 'web' } }, db, 5432)).toBe(false);
    expect(allows(docs, db, web, 80)).toBe(true);
  });

  it('reads egress rules, ipBlocks with exceptions and UDP ports', () => {
    const docs = [
      policy({ podSelector: { matchLabels: { role: 'web' } }, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '0.0.0.0/0', except: ['10.0.0.0/8'] } }], ports: [{ protocol: 'UDP', port: 53 }] }] }),
    ];
    expect(allows(docs, web, { ip: '8.8.8.8' }, 53, 'UDP')).toBe(true);
    expect(allows(docs, web, { ip: '8.8.8.8' }, 53, 'TCP')).toBe(false);
    expect(allows(docs, web, { ip: '10.1.2.3' }, 53, 'UDP')).toBe(false);
  });
});
