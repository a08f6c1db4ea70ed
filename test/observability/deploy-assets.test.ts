import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { METRICS, type MetricDef } from '@fastvlm/observability';
import { ROOT } from '../support/stack';

const DIR = join(ROOT, 'deploy', 'observability');

/** Series names the apps expose: the catalogue (proven against real scrapes in metrics.e2e), histograms with their suffixes. */
const EXPORTED = new Set<string>(
  Object.values(METRICS).flatMap((m: MetricDef) => (m.type === 'histogram' ? ['_bucket', '_sum', '_count'].map((s) => m.name + s) : [m.name])),
);

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan']);

/** Metric names a PromQL expression selects (function names, label names and keywords left out). */
function metricsIn(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\$\w+/g, ' ')
    // Numbers and durations (offset 5m).
    .replace(/\b\d+(?:\.\d+)?(?:ms|[smhdwy])?\b/g, ' ');
  const names: string[] = [];
  for (const m of bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const word = m[0];
    const after = bare.slice((m.index ?? 0) + word.length);
    if (/^\s*\(/.test(after) || KEYWORDS.has(word.toLowerCase()) || /^[0-9]/.test(word)) continue;
    names.push(word);
  }
  return names;
}

interface Panel {
  type: string;
  title: string;
  targets?: { expr: string }[];
  panels?: Panel[];
}

function dashboard(): { title: string; uid: string; panels: Panel[] } {
  return JSON.parse(readFileSync(join(DIR, 'grafana', 'fastvlm-dashboard.json'), 'utf8')) as { title: string; uid: string; panels: Panel[] };
}

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  severity?: string;
  summary?: string;
}

/** Alerting rules read from the rule file: each `- alert:` item with its expr (inline or a `|` block), for, severity and summary. */
function alertRules(): Rule[] {
  const lines = readFileSync(join(DIR, 'prometheus', 'alerts.yml'), 'utf8').split('\n');
  const rules: Rule[] = [];
  for (let i = 0; i < lines.length; i++) {
    const start = /^(\s*)- alert: (\S+)\s*$/.exec(lines[i] ?? '');
    if (!start) continue;
    const indent = (start[1] ?? '').length;
    const rule: Rule = { alert: start[2] ?? '', expr: '' };
    for (i = i + 1; i < lines.length; i++) {
      const line = lines[i] ?? '';
      if (line.trim() && line.search(/\S/) <= indent) break;
      const field = /^\s*(expr|for|severity|summary):\s*(.*)$/.exec(line);
      if (!field) continue;
      const [, key, rest = ''] = field;
      if (key === 'expr' && rest.trim() === '|') {
        const own = line.search(/\S/);
        const block: string[] = [];
        while (i + 1 < lines.length && ((lines[i + 1] ?? '').trim() === '' || (lines[i + 1] ?? '').search(/\S/) > own)) block.push(lines[++i] ?? '');
        rule.expr = block.join('\n').trim();
      } else if (key === 'expr') rule.expr = rest.trim();
      else if (key === 'for') rule.for = rest.trim();
      else if (key === 'severity') rule.severity = rest.trim();
      else if (key === 'summary') rule.summary = rest.trim();
    }
    i -= 1;
    rules.push(rule);
  }
  return rules;
}

describe('deploy/observability', () => {
  it('reads metric names out of PromQL, leaving functions, labels and keywords aside', () => {
    expect(metricsIn('histogram_quantile(0.95, sum by (le, route) (rate(fastvlm_request_duration_seconds_bucket{route=~"/v1/.*"}[$__rate_interval])))')).toEqual([
      'fastvlm_request_duration_seconds_bucket',
    ]);
    expect(metricsIn('sum(rate(a_total[5m])) / (sum(rate(b_total[5m])) + sum(rate(c_total[5m]))) > 0.05')).toEqual(['a_total', 'b_total', 'c_total']);
    expect(metricsIn('max by (model) (up) == 0 and on (model) foo offset 5m')).toEqual(['up', 'foo']);
  });

  it('the Grafana dashboard charts what operators need, from metrics the apps export', () => {
    const d = dashboard();
    expect(d.uid).toBe('fastvlm-serving');
    const panels = d.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.type !== 'row');
    const titles = panels.map((p) => p.title.toLowerCase()).join(' | ');
    for (const topic of ['throughput', 'latency percentiles', 'time to first token', 'queue depth', 'queue wait', 'batch size', 'cache hit rate', 'rejections', 'workers']) {
      expect(titles, topic).toContain(topic);
    }
    const used = new Set<string>();
    for (const p of panels) {
      expect(p.targets?.length ?? 0, p.title).toBeGreaterThan(0);
      for (const t of p.targets ?? []) for (const name of metricsIn(t.expr)) used.add(name);
    }
    for (const name of used) expect(EXPORTED.has(name), `dashboard uses ${name}`).toBe(true);
    expect(used.size).toBeGreaterThan(12);
  });

  it('the alert rules cover queue wait, errors, ready workers and model loads, with metrics the apps export', () => {
    const rules = alertRules();
    const names = rules.map((r) => r.alert);
    for (const required of ['FastVLMQueueWaitAboveSLO', 'FastVLMHighErrorRate', 'FastVLMNoReadyWorkers', 'FastVLMModelLoadFailures']) expect(names).toContain(required);
    for (const r of rules) {
      expect(r.expr, r.alert).not.toBe('');
      expect(r.severity, r.alert).toMatch(/^(critical|warning|info)$/);
      expect(r.summary, r.alert).toBeTruthy();
      const used = metricsIn(r.expr);
      expect(used.length, r.alert).toBeGreaterThan(0);
      for (const name of used) expect(EXPORTED.has(name), `${r.alert} uses ${name}`).toBe(true);
    }
  });
});
