import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ROOT } from '../support/stack';
import { K8S, KUBECTL, named, noteMissingKubectl, ofKind, rendering, selects, workload, type K8sDoc } from './support/manifests';

noteMissingKubectl();

const OBSERVABILITY = join(ROOT, 'deploy', 'observability');
const MONITORING = join(K8S, 'components', 'monitoring');

interface ServiceMonitorSpec {
  selector: { matchLabels?: Record<string, string> };
  endpoints: { port: string; path: string }[];
}

describe('deploy/k8s/components/monitoring keeps deploy/observability’s rules and dashboard', () => {
  it('the PrometheusRule’s groups are the alert rules of deploy/observability/prometheus/alerts.yml', () => {
    const rule = parse(readFileSync(join(MONITORING, 'prometheus-rule.yaml'), 'utf8')) as { spec: { groups: unknown } };
    const alerts = parse(readFileSync(join(OBSERVABILITY, 'prometheus', 'alerts.yml'), 'utf8')) as { groups: unknown };
    expect(rule.spec.groups, 'copy the groups of alerts.yml into prometheus-rule.yaml').toEqual(alerts.groups);
  });

  it('the dashboard ConfigMap’s file is deploy/observability/grafana/fastvlm-dashboard.json', () => {
    const copy = readFileSync(join(MONITORING, 'fastvlm-dashboard.json'), 'utf8');
    expect(copy, 'copy deploy/observability/grafana/fastvlm-dashboard.json into the component').toBe(readFileSync(join(OBSERVABILITY, 'grafana', 'fastvlm-dashboard.json'), 'utf8'));
  });
});

describe.skipIf(!KUBECTL)('deploy/k8s with components/monitoring', () => {
  const docs = (): K8sDoc[] => rendering('gpu + monitoring, model-cache-rwx, nvidia-runtime-class');

  it('a ServiceMonitor scrapes /metrics of the gateway, the workers and the scaler through a port their Service names', () => {
    const monitors = ofKind<{ spec: ServiceMonitorSpec }>(docs(), 'ServiceMonitor');
    const services = ofKind<{ spec: { selector: Record<string, string>; ports: { name: string }[] }; metadata: { labels?: Record<string, string> } }>(docs(), 'Service');
    const covered = new Set<string>();
    for (const m of monitors) {
      const svc = services.filter((s) => selects(m.spec.selector, s.metadata.labels ?? {}));
      expect(svc, `ServiceMonitor ${m.metadata.name} selects one Service`).toHaveLength(1);
      for (const e of m.spec.endpoints) {
        expect(e.path).toBe('/metrics');
        expect(svc[0]?.spec.ports.map((p) => p.name)).toContain(e.port);
      }
      for (const app of ['gateway', 'worker', 'scaler']) if (svc[0] && selects({ matchLabels: svc[0].spec.selector }, workload(docs(), app).podLabels)) covered.add(app);
    }
    expect([...covered].sort()).toEqual(['gateway', 'scaler', 'worker']);
  });

  it('renders the PrometheusRule and the Grafana dashboard ConfigMap for the dashboard sidecar', () => {
    const rule = named<{ spec: { groups: { rules: unknown[] }[] } }>(docs(), 'PrometheusRule', 'fastvlm');
    expect(rule.spec.groups.flatMap((g) => g.rules).length).toBeGreaterThan(3);
    const dashboard = named<{ data: Record<string, string> }>(docs(), 'ConfigMap', 'fastvlm-grafana-dashboard');
    expect(dashboard.metadata.labels?.grafana_dashboard).toBe('1');
    expect((JSON.parse(dashboard.data['fastvlm-dashboard.json'] ?? '{}') as { uid?: string }).uid).toBe('fastvlm-serving');
  });
});
