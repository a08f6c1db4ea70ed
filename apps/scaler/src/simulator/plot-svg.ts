import type { Timeline } from './timeline';

/** What the plot's title says about the run. */
export interface PlotMeta {
  trace: string;
  strategy: string;
  scale: number;
  seed: number;
  replicaRps: number;
  startupS: number;
  /** The SLO, seconds: drawn as a dashed line on the wait panel. */
  sloS: number;
}

const WIDTH = 1400;
const HEIGHT = 900;
const LEFT = 90;
const RIGHT = 230;
const TOP = 78;
const BOTTOM = 60;
const GAP = 34;
const PANEL_H = (HEIGHT - TOP - BOTTOM - 2 * GAP) / 3;
const PLOT_W = WIDTH - LEFT - RIGHT;
const COLORS = { arrivals: '#1f77b4', pods: '#9aa5b1', ready: '#2ca02c', wait: '#d62728', slo: '#444' } as const;

/** Steps of the time axis in hours (days and weeks beyond a day), so that ticks land on whole days. */
const HOUR_STEPS = [1, 2, 3, 6, 12, 24, 48, 72, 168, 336, 672];
const MINUTE_STEPS = [1, 2, 5, 10, 15, 30, 60];

/**
 * Three stacked panels over one time axis: arrivals (requests/s, per-bucket
 * mean), replicas (ready, and every pod including starting and draining
 * ones), and the p95 queue wait of the jobs arriving in each bucket with the
 * SLO dashed. Waits spanning decades go on a log axis.
 */
export function renderPlot(tl: Timeline, meta: PlotMeta): string {
  const n = tl.arrivalsPerS.length;
  const durationS = n * tl.bucketSeconds;
  const inHours = durationS > 3 * 3_600;
  const unitS = inHours ? 3_600 : 60;
  const span = durationS / unitS;
  const xStep = pickStep(span, inHours ? HOUR_STEPS : MINUTE_STEPS, 12);
  const x = (b: number): number => LEFT + ((b * tl.bucketSeconds) / durationS) * PLOT_W;
  const xMid = (b: number): number => x(b + 0.5);
  const startText = new Date(tl.startS * 1000).toISOString().replace('T', ' ').replace(/:00\.000Z$/, ' UTC');

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="DejaVu Sans, Arial, sans-serif" font-size="13">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="28" text-anchor="middle" font-size="19" font-weight="bold">${esc(`${meta.trace} — strategy ${meta.strategy} — scale ×${fmt(meta.scale, 4)} — seed ${meta.seed}`)}</text>`,
    `<text x="${WIDTH / 2}" y="52" text-anchor="middle" fill="#555">${esc(`R = ${fmt(meta.replicaRps, 3)} requests/s per replica, start-up ${fmt(meta.startupS, 1)} s, SLO ${fmt(meta.sloS, 2)} s queue wait; one point per ${bucketText(tl.bucketSeconds)}`)}</text>`,
  );

  // Panel 1: arrivals.
  const top1 = TOP;
  const arrMax = niceMax(max(tl.arrivalsPerS));
  const y1 = linear(arrMax, top1);
  out.push(...frame(top1, ticks(arrMax).map((v) => ({ v, y: y1(v), label: fmt(v, 2) })), xStep, span, 'arrivals (requests/s)'));
  out.push(area(tl.arrivalsPerS, xMid, y1, top1 + PANEL_H, COLORS.arrivals));
  out.push(...legend(top1, [{ color: COLORS.arrivals, text: 'arrivals, mean per bucket' }]));

  // Panel 2: replicas.
  const top2 = TOP + PANEL_H + GAP;
  const podMax = niceMax(Math.max(max(tl.pods), max(tl.ready), 1));
  const y2 = linear(podMax, top2);
  out.push(...frame(top2, ticks(podMax).map((v) => ({ v, y: y2(v), label: fmt(v, 1) })), xStep, span, 'replicas (pods)'));
  out.push(area(tl.pods, xMid, y2, top2 + PANEL_H, COLORS.pods, 0.35));
  out.push(line(tl.ready, xMid, y2, COLORS.ready));
  out.push(
    ...legend(top2, [
      { color: COLORS.pods, text: 'all pods (incl. starting,' },
      { color: 'none', text: '  draining), mean' },
      { color: COLORS.ready, text: 'ready pods, mean' },
    ]),
  );

  // Panel 3: queue wait.
  const top3 = TOP + 2 * (PANEL_H + GAP);
  const waitMax = Math.max(max(tl.p95WaitS), meta.sloS);
  const useLog = waitMax > 5 * meta.sloS;
  const floor = Math.min(0.01, meta.sloS / 10);
  const y3 = useLog ? logScale(floor, waitMax, top3) : linear(niceMax(waitMax * 1.05), top3);
  const waitTicks = useLog
    ? decades(floor, waitMax).map((v) => ({ v, y: y3(v), label: v <= floor ? `≤${fmt(v, 3)}` : fmt(v, 3) }))
    : ticks(niceMax(waitMax * 1.05)).map((v) => ({ v, y: y3(v), label: fmt(v, 2) }));
  out.push(...frame(top3, waitTicks, xStep, span, useLog ? 'p95 queue wait (s, log)' : 'p95 queue wait (s)'));
  const clamped = tl.p95WaitS.map((w) => (Number.isNaN(w) ? w : Math.max(w, useLog ? floor : 0)));
  out.push(line(clamped, xMid, y3, COLORS.wait));
  out.push(
    `<line x1="${LEFT}" x2="${LEFT + PLOT_W}" y1="${r1(y3(meta.sloS))}" y2="${r1(y3(meta.sloS))}" stroke="${COLORS.slo}" stroke-width="1.5" stroke-dasharray="8 5"/>`,
  );
  out.push(
    ...legend(top3, [
      { color: COLORS.wait, text: 'p95 wait of jobs arriving' },
      { color: 'none', text: '  in each bucket' },
      { color: COLORS.slo, text: `SLO ${fmt(meta.sloS, 2)} s`, dashed: true },
    ]),
  );

  // The shared time axis, under the last panel.
  const axisY = top3 + PANEL_H;
  for (let v = 0; v <= span + 1e-9; v += xStep) {
    const px = LEFT + (v / span) * PLOT_W;
    out.push(`<line x1="${r1(px)}" x2="${r1(px)}" y1="${r1(axisY)}" y2="${r1(axisY + 6)}" stroke="#333"/>`);
    out.push(`<text x="${r1(px)}" y="${r1(axisY + 21)}" text-anchor="middle">${fmt(v, 0)}</text>`);
  }
  out.push(
    `<text x="${LEFT + PLOT_W / 2}" y="${HEIGHT - 14}" text-anchor="middle" font-size="14">${esc(`time since ${startText} (${inHours ? 'hours' : 'minutes'})`)}</text>`,
    '</svg>',
  );
  return out.join('\n') + '\n';
}

interface Tick {
  v: number;
  y: number;
  label: string;
}

/** A panel's box, horizontal grid with y labels, vertical grid at the time ticks, and its y-axis title. */
function frame(top: number, yTicks: readonly Tick[], xStep: number, span: number, title: string): string[] {
  const out: string[] = [];
  for (const t of yTicks) {
    out.push(`<line x1="${LEFT}" x2="${LEFT + PLOT_W}" y1="${r1(t.y)}" y2="${r1(t.y)}" stroke="#e3e3e3"/>`);
    out.push(`<line x1="${LEFT - 5}" x2="${LEFT}" y1="${r1(t.y)}" y2="${r1(t.y)}" stroke="#333"/>`);
    out.push(`<text x="${LEFT - 8}" y="${r1(t.y + 4)}" text-anchor="end">${esc(t.label)}</text>`);
  }
  for (let v = xStep; v < span - 1e-9; v += xStep) {
    const px = LEFT + (v / span) * PLOT_W;
    out.push(`<line x1="${r1(px)}" x2="${r1(px)}" y1="${r1(top)}" y2="${r1(top + PANEL_H)}" stroke="#efefef"/>`);
  }
  out.push(`<rect x="${LEFT}" y="${r1(top)}" width="${PLOT_W}" height="${r1(PANEL_H)}" fill="none" stroke="#333"/>`);
  const cy = top + PANEL_H / 2;
  out.push(`<text x="22" y="${r1(cy)}" text-anchor="middle" transform="rotate(-90 22 ${r1(cy)})" font-size="14">${esc(title)}</text>`);
  return out;
}

function legend(top: number, items: readonly { color: string; text: string; dashed?: boolean }[]): string[] {
  const x0 = LEFT + PLOT_W + 16;
  return items.flatMap((it, i) => {
    const y = top + 16 + i * 20;
    const mark =
      it.color === 'none'
        ? ''
        : `<line x1="${x0}" x2="${x0 + 26}" y1="${y}" y2="${y}" stroke="${it.color}" stroke-width="${it.dashed ? 1.5 : 3}"${it.dashed ? ' stroke-dasharray="8 5"' : ''}/>`;
    return [mark, `<text x="${x0 + 34}" y="${y + 4}">${esc(it.text)}</text>`].filter((s) => s !== '');
  });
}

/** A polyline, broken where values are NaN (buckets without jobs). */
function line(values: Float64Array, x: (b: number) => number, y: (v: number) => number, color: string): string {
  const parts: string[] = [];
  let run: string[] = [];
  const flush = (): void => {
    if (run.length === 1) run.push(run[0] as string);
    if (run.length > 0) parts.push(`<polyline fill="none" stroke="${color}" stroke-width="1.6" stroke-linejoin="round" stroke-linecap="round" points="${run.join(' ')}"/>`);
    run = [];
  };
  values.forEach((v, b) => {
    if (Number.isNaN(v)) flush();
    else run.push(`${r1(x(b))},${r1(y(v))}`);
  });
  flush();
  return parts.join('\n');
}

/** A line with the area under it tinted. */
function area(values: Float64Array, x: (b: number) => number, y: (v: number) => number, baseY: number, color: string, opacity = 0.18): string {
  if (values.length === 0) return '';
  const pts = Array.from(values, (v, b) => `${r1(x(b))},${r1(y(v))}`);
  const poly = `${r1(x(0))},${r1(baseY)} ${pts.join(' ')} ${r1(x(values.length - 1))},${r1(baseY)}`;
  return `<polygon fill="${color}" fill-opacity="${opacity}" stroke="none" points="${poly}"/>\n<polyline fill="none" stroke="${color}" stroke-width="1.4" stroke-linejoin="round" points="${pts.join(' ')}"/>`;
}

function linear(maxValue: number, top: number): (v: number) => number {
  return (v) => top + PANEL_H - (Math.min(v, maxValue) / maxValue) * PANEL_H;
}

/** The decade above `hi`, with room so that a peak does not run into the frame. */
const topDecade = (hi: number): number => Math.ceil(Math.log10(hi) + 0.1);

function logScale(lo: number, hi: number, top: number): (v: number) => number {
  const a = Math.log10(lo);
  const b = topDecade(hi);
  return (v) => top + PANEL_H - ((Math.log10(Math.max(lo, v)) - a) / (b - a)) * PANEL_H;
}

function decades(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = Math.round(Math.log10(lo)); e <= topDecade(hi); e++) out.push(10 ** e);
  return out;
}

function max(xs: Float64Array): number {
  let m = 0;
  for (const v of xs) if (v > m) m = v;
  return m;
}

/** The smallest 1-2-2.5-5 × 10^k at or above `v` (1 for 0). */
export function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const e = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * e >= v - 1e-12) return m * e;
  return 10 * e;
}

/** Ticks from 0 to `top` (a `niceMax`), four or five of them. */
function ticks(top: number): number[] {
  const e = 10 ** Math.floor(Math.log10(top));
  const m = top / e;
  const step = (m <= 1 ? 0.2 : m <= 2 ? 0.5 : m <= 2.5 ? 0.5 : 1) * e;
  const out: number[] = [];
  for (let v = 0; v <= top + step / 1_000; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function pickStep(span: number, steps: readonly number[], maxTicks: number): number {
  for (const s of steps) if (span / s <= maxTicks) return s;
  const last = steps[steps.length - 1] as number;
  return Math.ceil(span / maxTicks / last) * last;
}

function bucketText(s: number): string {
  if (s % 3_600 === 0) return `${s / 3_600} h`;
  if (s % 60 === 0) return `${s / 60} min`;
  return `${s} s`;
}

function fmt(v: number, digits: number): string {
  return String(Number(v.toFixed(digits)));
}

function r1(v: number): string {
  return String(Math.round(v * 10) / 10);
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
