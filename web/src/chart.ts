// A small bar chart in inline SVG, built element by element (no chart library: the dashboard
// must stay light on a low-power box). Two bars per bucket (mail in, mail out); each bar carries
// a <title> with its exact numbers (the browser's tooltip, read by screen readers) and its
// bucket carries the numbers as data attributes. Text is set with textContent only.
const NS = 'http://www.w3.org/2000/svg';

export interface ChartBucket {
  /** The short label under the axis (shown on every `labelEvery`th bucket). */
  label: string;
  /** The bucket's full name in a tooltip, e.g. a date and hour. */
  name: string;
  /** What identifies the bucket for tests and scripts (an ISO hour or a date). */
  key: string;
  in: number;
  out: number;
}

export interface ChartOptions {
  /** The chart's accessible name. */
  title: string;
  /** A one-line summary for screen readers (totals). */
  summary: string;
  inLabel: string;
  outLabel: string;
  labelEvery: number;
  /** How a number is written in the reader's language. */
  fmt: (n: number) => string;
}

// The drawing's own units; the SVG scales to the card's width.
const W = 480;
const H = 170;
const LEFT = 34;
const RIGHT = 4;
const TOP = 8;
const BOTTOM = 22;

function el<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** A rounded-up scale top (1, 2, 5 × 10^n) so the axis label is a round number. */
export function niceMax(n: number): number {
  if (n <= 1) return 1;
  const p = 10 ** Math.floor(Math.log10(n));
  for (const m of [1, 2, 5, 10]) if (m * p >= n) return m * p;
  return 10 * p;
}

export function barChart(buckets: ChartBucket[], o: ChartOptions): SVGSVGElement {
  const svg = el('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img' });
  const titleId = `chart-${Math.random().toString(36).slice(2, 9)}`;
  svg.setAttribute('aria-labelledby', `${titleId}-t ${titleId}-d`);
  svg.append(el('title', { id: `${titleId}-t` }, o.title), el('desc', { id: `${titleId}-d` }, o.summary));
  const top = niceMax(Math.max(0, ...buckets.map((b) => Math.max(b.in, b.out))));
  const plotH = H - TOP - BOTTOM;
  const y = (v: number) => TOP + plotH - (v / top) * plotH;
  // The axis: the scale's top and the mid line, and the base line.
  for (const v of [top, top / 2]) {
    if (v !== Math.round(v)) continue;
    svg.append(el('line', { class: 'grid', x1: LEFT, x2: W - RIGHT, y1: y(v), y2: y(v) }));
    svg.append(el('text', { x: LEFT - 4, y: y(v) + 3, 'text-anchor': 'end' }, o.fmt(v)));
  }
  svg.append(el('line', { class: 'axis', x1: LEFT, x2: W - RIGHT, y1: y(0), y2: y(0) }));
  svg.append(el('text', { x: LEFT - 4, y: y(0) + 3, 'text-anchor': 'end' }, o.fmt(0)));
  const slot = (W - LEFT - RIGHT) / Math.max(1, buckets.length);
  const bar = Math.max(1, slot * 0.4);
  buckets.forEach((b, i) => {
    const x = LEFT + i * slot + slot * 0.1;
    const g = el('g', { 'data-key': b.key, 'data-in': b.in, 'data-out': b.out });
    for (const [kind, v, label, dx] of [['in', b.in, o.inLabel, 0], ['out', b.out, o.outLabel, bar]] as const) {
      // A zero still gets a hairline, so every bucket has something to point at.
      const hgt = Math.max(v > 0 ? 1.5 : 0.5, (v / top) * plotH);
      const r = el('rect', { class: kind, x: (x + dx).toFixed(2), y: (y(0) - hgt).toFixed(2), width: bar.toFixed(2), height: hgt.toFixed(2) });
      r.append(el('title', {}, `${b.name} · ${label}: ${o.fmt(v)}`));
      g.append(r);
    }
    svg.append(g);
    if (i % o.labelEvery === 0) svg.append(el('text', { x: (x + bar).toFixed(2), y: H - 6, 'text-anchor': 'middle' }, b.label));
  });
  return svg;
}
