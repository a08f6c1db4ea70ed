import type { WorkerProcess } from '../support/stack';

/** One sample of a Prometheus text scrape. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format (the subset the apps write: no escapes beyond \" and \\ in label values). */
export function parseProm(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] ?? ''] = (l[2] ?? '').replace(/\\(.)/g, '$1');
    out.push({ name: m[1] ?? '', labels, value: m[3] === '+Inf' ? Infinity : Number(m[3]) });
  }
  return out;
}

/** Sum of the samples named `name` whose labels include `labels`; undefined when there is none. */
export function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const hits = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return hits.length === 0 ? undefined : hits.reduce((a, s) => a + s.value, 0);
}

/** `value`, with a missing series read as 0 (counters before their first increment). */
export const count = (samples: Sample[], name: string, labels: Record<string, string> = {}): number => value(samples, name, labels) ?? 0;

export async function scrape(baseUrl: string): Promise<Sample[]> {
  const res = await fetch(`${baseUrl}/metrics`);
  if (res.status !== 200) throw new Error(`GET ${baseUrl}/metrics answered ${res.status}`);
  if (!res.headers.get('content-type')?.startsWith('text/plain; version=0.0.4')) throw new Error('not the Prometheus text format');
  return parseProm(await res.text());
}

/** Metric names a scrape declares (# TYPE lines), histograms without their suffixes. */
export async function declaredMetrics(baseUrl: string): Promise<Set<string>> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  return new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1] ?? ''));
}

/** The worker's own HTTP server, as its start-up log line gives it. */
export function workerHttpUrl(w: WorkerProcess): string {
  for (const line of w.output().split('\n')) {
    if (!line.includes('"worker http listening"')) continue;
    const url = (JSON.parse(line) as { url?: string }).url;
    if (url) return url;
  }
  throw new Error(`the worker logged no HTTP address:\n${w.output()}`);
}
