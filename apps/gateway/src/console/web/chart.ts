/** A small SVG line chart: no library, so the console works offline. */

export interface Series {
  /** CSS class of the line (`s1`, `s2`). */
  cls: string;
  points: readonly [number, number | null][];
}

const SVG = 'http://www.w3.org/2000/svg';
const W = 320;
const H = 140;
const PAD = { left: 34, right: 6, top: 8, bottom: 16 };

function el<K extends keyof SVGElementTagNameMap>(name: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

/** Redraws `svg` with the series over a shared time axis; gaps (null) break the line. */
export function drawChart(svg: SVGSVGElement, series: readonly Series[], format: (v: number) => string): void {
  svg.replaceChildren();
  const all = series.flatMap((s) => s.points);
  const xs = all.map(([t]) => t);
  const ys = all.map(([, v]) => v).filter((v): v is number => v !== null);
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs);
  const yMax = Math.max(...ys, 0) * 1.15 || 1;
  const x = (t: number): number => PAD.left + (x1 > x0 ? ((t - x0) / (x1 - x0)) * (W - PAD.left - PAD.right) : 0);
  const y = (v: number): number => H - PAD.bottom - (v / yMax) * (H - PAD.top - PAD.bottom);
  svg.append(
    el('line', { class: 'axis', x1: PAD.left, y1: H - PAD.bottom, x2: W - PAD.right, y2: H - PAD.bottom }),
    el('line', { class: 'axis', x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: H - PAD.bottom }),
  );
  for (const v of [0, yMax / 2, yMax]) {
    const label = el('text', { class: 'grid-label', x: PAD.left - 4, y: y(v) + 3, 'text-anchor': 'end' });
    label.textContent = format(v);
    svg.append(label);
  }
  for (const s of series) {
    let run: [number, number][] = [];
    const flush = (): void => {
      if (run.length > 1) svg.append(el('polyline', { class: s.cls, points: run.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(' ') }));
      // A lone point (the first interval, or between gaps) still shows.
      else if (run[0]) svg.append(el('circle', { class: s.cls, cx: run[0][0].toFixed(1), cy: run[0][1].toFixed(1), r: 2 }));
      run = [];
    };
    for (const [t, v] of s.points) {
      if (v === null) flush();
      else run.push([x(t), y(v)]);
    }
    flush();
  }
}
