import { execFileSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, relative } from 'node:path';
import * as keda from '@kubernetes-models/keda/keda.sh/v1alpha1';
import * as apps from 'kubernetes-models/apps/v1';
import * as autoscaling from 'kubernetes-models/autoscaling/v2';
import * as networking from 'kubernetes-models/networking.k8s.io/v1';
import * as policy from 'kubernetes-models/policy/v1';
import * as core from 'kubernetes-models/v1';
import type { IContainer, IPodSpec } from 'kubernetes-models/v1';
import { parseAllDocuments } from 'yaml';
import { ROOT } from '../../support/stack';

export const K8S = join(ROOT, 'deploy', 'k8s');

/** A rendered Kubernetes document: what every kind has in common. */
export interface K8sDoc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

/** The kubectl binary (kustomize is built in), or null where none is installed. */
export const KUBECTL: string | null = (() => {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/usr/local/bin']) {
    const candidate = join(dir, 'kubectl');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this folder.
    }
  }
  return null;
})();

export function parseYamlDocuments(text: string): K8sDoc[] {
  return parseAllDocuments(text).map((d) => {
    if (d.errors.length > 0) throw new Error(`YAML error: ${d.errors[0]?.message ?? ''}`);
    return d.toJS() as K8sDoc;
  });
}

/**
 * `kubectl kustomize` of an overlay, with optional components added the way a
 * user would (a kustomization of their own that lists the overlay and the components).
 */
export function render(overlay: string, components: readonly string[] = []): K8sDoc[] {
  if (!KUBECTL) throw new Error('kubectl is not installed');
  const dir = join(K8S, overlay);
  if (components.length === 0) return parseYamlDocuments(execFileSync(KUBECTL, ['kustomize', dir], { encoding: 'utf8' }));
  // Kustomize wants relative paths; a temporary kustomization sits outside the repository like a user's would.
  const tmp = mkdtempSync(join(tmpdir(), 'fastvlm-kustomize-'));
  try {
    const lines = [
      'apiVersion: kustomize.config.k8s.io/v1beta1',
      'kind: Kustomization',
      'resources:',
      `  - ${relative(tmp, dir)}`,
      'components:',
      ...components.map((c) => `  - ${relative(tmp, join(K8S, 'components', c))}`),
    ];
    writeFileSync(join(tmp, 'kustomization.yaml'), `${lines.join('\n')}\n`);
    return parseYamlDocuments(execFileSync(KUBECTL, ['kustomize', tmp], { encoding: 'utf8' }));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

type ModelClass = (new (data: unknown) => { validate(): void }) & { apiVersion: string; kind: string };

function isModelClass(v: unknown): v is ModelClass {
  if (typeof v !== 'function') return false;
  const c = v as unknown as Record<string, unknown>;
  return typeof c.apiVersion === 'string' && typeof c.kind === 'string';
}

/** Every kind of the API groups the manifests use, by `apiVersion/kind`. */
const MODELS: ReadonlyMap<string, ModelClass> = new Map(
  [core, apps, autoscaling, networking, policy, keda]
    .flatMap((m) => Object.values(m as Record<string, unknown>))
    .filter(isModelClass)
    .map((c) => [`${c.apiVersion}/${c.kind}`, c] as const),
);

/** The Prometheus Operator's kinds have no model in the packages at hand; their fields are checked by the tests that use them. */
const UNMODELLED = new Set(['monitoring.coreos.com/v1/ServiceMonitor', 'monitoring.coreos.com/v1/PrometheusRule']);

/** Validates a document against its kubernetes-models schema; returns false for the kinds that have none. */
export function validateDoc(doc: K8sDoc): boolean {
  const key = `${doc.apiVersion}/${doc.kind}`;
  const Model = MODELS.get(key);
  if (!Model) {
    if (UNMODELLED.has(key)) return false;
    throw new Error(`no kubernetes-models schema for ${key} (${doc.metadata.name}): import its module in test/deploy/support/manifests.ts`);
  }
  new Model(doc).validate();
  return true;
}

export function ofKind<T>(docs: readonly K8sDoc[], kind: string): (K8sDoc & T)[] {
  return docs.filter((d) => d.kind === kind) as (K8sDoc & T)[];
}

export function named<T>(docs: readonly K8sDoc[], kind: string, name: string): K8sDoc & T {
  const doc = docs.find((d) => d.kind === kind && d.metadata.name === name);
  if (!doc) throw new Error(`no ${kind} ${name} in the rendering`);
  return doc as K8sDoc & T;
}

/** A workload's pod template, with the containers it runs. */
export interface Workload {
  doc: K8sDoc;
  /** `app.kubernetes.io/component` of the pod template: gateway, worker, scaler, redis. */
  component: string;
  podLabels: Record<string, string>;
  pod: IPodSpec;
}

export function workloads(docs: readonly K8sDoc[]): Workload[] {
  return docs
    .filter((d) => ['Deployment', 'StatefulSet', 'DaemonSet', 'Job'].includes(d.kind))
    .map((doc) => {
      const template = (doc as unknown as { spec: { template: { metadata?: { labels?: Record<string, string> }; spec: IPodSpec } } }).spec.template;
      const podLabels = template.metadata?.labels ?? {};
      return { doc, component: podLabels['app.kubernetes.io/component'] ?? '', podLabels, pod: template.spec };
    });
}

export function workload(docs: readonly K8sDoc[], component: string): Workload {
  const w = workloads(docs).find((x) => x.component === component);
  if (!w) throw new Error(`no ${component} workload in the rendering`);
  return w;
}

export function container(w: Workload, name: string): IContainer {
  const c = [...(w.pod.initContainers ?? []), ...w.pod.containers].find((x) => x.name === name);
  if (!c) throw new Error(`no container ${name} in ${w.doc.metadata.name}`);
  return c;
}

/** The environment a container gets from its ConfigMaps (envFrom) and its own literal `env` values. */
export function containerEnv(docs: readonly K8sDoc[], c: IContainer): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of c.envFrom ?? []) {
    const name = from.configMapRef?.name;
    if (!name) continue;
    Object.assign(env, named<{ data?: Record<string, string> }>(docs, 'ConfigMap', name).data ?? {});
  }
  for (const e of c.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
  return env;
}

/** Whether a label selector (`matchLabels` and `matchExpressions`) selects these labels. */
export function selects(
  selector: { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values?: string[] }[] } | undefined,
  labels: Record<string, string>,
): boolean {
  if (!selector) return false;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = e.key in labels;
    const value = labels[e.key];
    const ok =
      e.operator === 'In'
        ? value !== undefined && (e.values ?? []).includes(value)
        : e.operator === 'NotIn'
          ? value === undefined || !(e.values ?? []).includes(value)
          : e.operator === 'Exists'
            ? has
            : e.operator === 'DoesNotExist'
              ? !has
              : false;
    if (!ok) return false;
  }
  return true;
}

/** Bytes of a Kubernetes memory quantity (`256Mi`, `1Gi`, `1G`, plain bytes). */
export function quantityBytes(q: string | number): number {
  if (typeof q === 'number') return q;
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(q);
  if (!m) throw new Error(`not a memory quantity: ${q}`);
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 }[m[2] ?? ''] ?? 1;
  return Number(m[1]) * unit;
}

/**
 * Kubernetes' `$(VAR)` expansion of a container's command and args: a defined
 * variable is replaced, an undefined reference is left as written, `$$` is a `$`.
 */
export function expandK8s(s: string, env: Record<string, string>): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (ch !== '$' || i + 1 >= s.length) {
      out += ch;
      continue;
    }
    const next = s[i + 1];
    if (next === '$') {
      out += '$';
      i += 1;
    } else if (next === '(') {
      const close = s.indexOf(')', i + 2);
      if (close < 0) {
        out += '$(';
        i += 1;
        continue;
      }
      const name = s.slice(i + 2, close);
      out += env[name] ?? `$(${name})`;
      i = close;
    } else {
      out += `$${next}`;
      i += 1;
    }
  }
  return out;
}

/** The renderings the tests check: both overlays, and each with the optional components a platform team would add. */
export const RENDERINGS = [
  { name: 'cpu-dev', overlay: 'overlays/cpu-dev', components: [] },
  { name: 'gpu', overlay: 'overlays/gpu', components: [] },
  { name: 'gpu + monitoring, model-cache-rwx, nvidia-runtime-class', overlay: 'overlays/gpu', components: ['monitoring', 'model-cache-rwx', 'nvidia-runtime-class'] },
  { name: 'cpu-dev + external-redis, monitoring', overlay: 'overlays/cpu-dev', components: ['external-redis', 'monitoring'] },
  { name: 'gpu + redis-sentinel, monitoring', overlay: 'overlays/gpu', components: ['redis-sentinel', 'monitoring'] },
] as const satisfies readonly { name: string; overlay: string; components: readonly string[] }[];

const rendered = new Map<string, K8sDoc[]>();

/** A rendering by its name in RENDERINGS, rendered once per test file. */
export function rendering(name: (typeof RENDERINGS)[number]['name']): K8sDoc[] {
  let docs = rendered.get(name);
  if (!docs) {
    const r = RENDERINGS.find((x) => x.name === name);
    if (!r) throw new Error(`no rendering ${name}`);
    docs = render(r.overlay, r.components);
    rendered.set(name, docs);
  }
  return docs;
}

/** Says once per file why the kustomize tests do not run. */
export function noteMissingKubectl(): void {
  if (!KUBECTL) console.warn('kubectl is not installed: the tests that render deploy/k8s with `kubectl kustomize` are skipped');
}

/** A document's `spec`, typed as the caller reads it. */
export function specOf<T>(doc: K8sDoc): T {
  return (doc as unknown as { spec: T }).spec;
}
