import type { ConsoleJob, ConsoleOverview } from '../overview-types';
import { ApiError, apiKey, getJson } from './api';
import { renderAutoscaler } from './autoscaler';
import { drawChart } from './chart';
import { byId, setText } from './dom';
import { clock, delta, duration, quantile, rate } from './format';

const POLL_MS = 2_000;
/** Samples kept for the charts: four minutes at one every two seconds. */
const HISTORY = 120;
const QUEUE_STATES = ['wait', 'prioritized', 'active', 'delayed', 'failed', 'completed'] as const;

interface Sample {
  t: number;
  completions: number;
  completedJobs: number;
  latencyCounts: number[];
  boundaries: number[];
}

/** One point per poll: rates and latency percentiles over the interval since the previous poll. */
interface Point {
  t: number;
  requestsPerS: number;
  jobsPerS: number;
  p50: number | null;
  p95: number | null;
}

/**
 * The cluster view: polls the gateway's console overview while it is shown,
 * and draws queue, autoscaler, workers, throughput, latency and the tenant's jobs.
 */
export class ClusterView {
  private timer: number | null = null;
  private previous: Sample | null = null;
  private readonly points: Point[] = [];
  private active = false;

  show(): void {
    this.active = true;
    if (this.timer === null) void this.poll();
  }

  hide(): void {
    this.active = false;
    if (this.timer !== null) window.clearTimeout(this.timer);
    this.timer = null;
  }

  /** The key changed: the history belongs to the old one. */
  reset(): void {
    this.previous = null;
    this.points.length = 0;
    if (this.active) {
      this.hide();
      this.show();
    }
  }

  private async poll(): Promise<void> {
    this.timer = null;
    if (!this.active) return;
    if (!apiKey.get()) {
      setText('cluster-status', 'Enter an API key to see the cluster.');
    } else {
      try {
        this.render(await getJson<ConsoleOverview>('/v1/console/overview'));
      } catch (e) {
        setText('cluster-status', e instanceof ApiError ? `Could not read the cluster: ${e.message}` : 'The gateway does not answer.');
      }
    }
    if (this.active) this.timer = window.setTimeout(() => void this.poll(), POLL_MS);
  }

  private render(o: ConsoleOverview): void {
    setText('model-name', o.model);
    setText('cluster-status', `Updated ${clock(o.time)} · ${o.workers.length} worker${o.workers.length === 1 ? '' : 's'} ready`);
    this.renderQueue(o);
    renderAutoscaler(o.autoscaler);
    this.renderWorkers(o);
    this.renderJobs(o.jobs);
    this.record(o);
    this.renderCharts();
  }

  private renderQueue(o: ConsoleOverview): void {
    const cards = byId('queue-cards', HTMLDListElement);
    const items: [string, string][] = QUEUE_STATES.map((s) => [s, String(o.queue.counts[s] ?? 0)]);
    items.push(['oldest wait', duration(o.queue.oldest_wait_seconds * 1000)]);
    cards.replaceChildren(
      ...items.map(([k, v]) => {
        const div = document.createElement('div');
        div.dataset.state = k;
        const dt = document.createElement('dt');
        dt.textContent = k;
        const dd = document.createElement('dd');
        dd.textContent = v;
        div.append(dt, dd);
        return div;
      }),
    );
  }

  private renderWorkers(o: ConsoleOverview): void {
    const rows = o.workers.map((w) => row([w.id, w.model, w.dtype, w.device, duration(o.time - w.started_at)]));
    if (rows.length === 0) rows.push(row(['No worker is ready.', '', '', '', '']));
    byId('workers', HTMLTableElement).tBodies[0]?.replaceChildren(...rows);
  }

  private renderJobs(jobs: ConsoleJob[]): void {
    const rows = jobs.map((j) => {
      const tr = row([j.id, '', clock(j.created_at), duration(j.queue_ms), duration(j.latency_ms), j.completion_tokens === null ? '–' : String(j.completion_tokens)]);
      tr.dataset.jobId = j.id;
      const status = document.createElement('span');
      status.className = `status ${j.status}`;
      status.textContent = j.error_code ? `${j.status} (${j.error_code})` : j.status;
      tr.cells[1]?.replaceChildren(status);
      return tr;
    });
    if (rows.length === 0) rows.push(row(['No jobs yet.', '', '', '', '', '']));
    byId('jobs', HTMLTableElement).tBodies[0]?.replaceChildren(...rows);
  }

  private record(o: ConsoleOverview): void {
    const now: Sample = {
      t: o.time,
      completions: o.gateway.completions,
      completedJobs: o.queue.counts.completed ?? 0,
      latencyCounts: o.gateway.latency.counts,
      boundaries: o.gateway.latency.boundaries,
    };
    const before = this.previous;
    this.previous = now;
    if (!before || now.t <= before.t) return;
    const seconds = (now.t - before.t) / 1000;
    const d = delta(now.latencyCounts, before.latencyCounts);
    this.points.push({
      t: now.t,
      requestsPerS: Math.max(0, now.completions - before.completions) / seconds,
      // Completed jobs are trimmed by age; a shrinking count is not negative throughput.
      jobsPerS: Math.max(0, now.completedJobs - before.completedJobs) / seconds,
      p50: quantile(0.5, now.boundaries, d),
      p95: quantile(0.95, now.boundaries, d),
    });
    if (this.points.length > HISTORY) this.points.shift();
  }

  private renderCharts(): void {
    const last = this.points.at(-1);
    if (!last) {
      setText('chart-throughput-text', 'Collecting…');
      setText('chart-latency-text', 'Collecting…');
      return;
    }
    drawChart(
      byId('chart-throughput', SVGSVGElement),
      [
        { cls: 's1', points: this.points.map((p) => [p.t, p.jobsPerS]) },
        { cls: 's2', points: this.points.map((p) => [p.t, p.requestsPerS]) },
      ],
      (v) => rate(v),
    );
    legend('chart-throughput-text', [`jobs completed/s (cluster): ${rate(last.jobsPerS)}`, `chat completions/s (this gateway): ${rate(last.requestsPerS)}`]);
    drawChart(
      byId('chart-latency', SVGSVGElement),
      [
        { cls: 's1', points: this.points.map((p) => [p.t, p.p50]) },
        { cls: 's2', points: this.points.map((p) => [p.t, p.p95]) },
      ],
      (v) => (v >= 1 ? `${v.toFixed(1)}s` : `${Math.round(v * 1000)}ms`),
    );
    const fmt = (v: number | null): string => (v === null ? 'no requests' : duration(v * 1000));
    legend('chart-latency-text', [`p50: ${fmt(last.p50)}`, `p95: ${fmt(last.p95)}`]);
  }
}

function row(cells: string[]): HTMLTableRowElement {
  const tr = document.createElement('tr');
  for (const c of cells) {
    const td = document.createElement('td');
    td.textContent = c;
    tr.append(td);
  }
  return tr;
}

/** The charts' text equivalent, keyed by line style. */
function legend(id: string, items: [string, string]): void {
  const p = byId(id, HTMLParagraphElement);
  const spans = items.map((text, i) => {
    const s = document.createElement('span');
    s.className = `k${i + 1}`;
    s.textContent = `${i === 0 ? '━' : '╍'} `;
    const t = document.createElement('span');
    t.textContent = `${text}${i === 0 ? ' · ' : ''}`;
    return [s, t];
  });
  p.replaceChildren(...spans.flat());
}
