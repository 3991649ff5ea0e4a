import type { TimeWindow } from './profiles.js';

export type Point = readonly [x: number, y: number | null];

export interface Series {
  readonly name: string;
  readonly color: string;
  readonly points: readonly Point[];
  /** bars: one bar per point, one x unit wide (per-second counts). */
  readonly kind?: 'line' | 'bars' | 'step';
  readonly dashed?: boolean;
}

export interface ChartSpec {
  readonly title: string;
  readonly x_max: number;
  readonly series: readonly Series[];
  /** Windows of x to shade, e.g. the spike. */
  readonly shade?: readonly TimeWindow[];
  readonly shade_label?: string;
  /** Fixed top of the y axis (e.g. 1 for a fraction); otherwise fitted to the data. */
  readonly y_max?: number;
  readonly y_format?: (y: number) => string;
  /** Shown in the plot when no series has a value. */
  readonly empty_text?: string;
  readonly width?: number;
  readonly height?: number;
}

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);
}

/** 1, 2 or 5 × 10^k: the tick step that gives about `count` ticks up to `max`. */
export function niceStep(max: number, count: number): number {
  if (!(max > 0)) return 1;
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const m = raw / power;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * power;
}

const fmt = (v: number) => (Math.abs(v) >= 1000 ? `${+(v / 1000).toFixed(1)}k` : `${+v.toFixed(2)}`);

/** A time-series chart as inline SVG, drawn by hand so the report needs no script or network. */
export function timeChart(spec: ChartSpec): string {
  const W = spec.width ?? 1160;
  const H = spec.height ?? 250;
  const m = { left: 64, right: 16, top: 34, bottom: 40 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const xMax = Math.max(spec.x_max, 1);
  let dataMax = 0;
  let any = false;
  for (const s of spec.series) {
    for (const [, y] of s.points) {
      if (y === null || !Number.isFinite(y)) continue;
      any = true;
      dataMax = Math.max(dataMax, y);
    }
  }
  const yStep = niceStep(spec.y_max ?? (dataMax > 0 ? dataMax : 1), 5);
  const yTop = spec.y_max ?? Math.max(yStep, Math.ceil((dataMax * 1.05) / yStep) * yStep);
  const X = (x: number) => m.left + (Math.min(Math.max(x, 0), xMax) / xMax) * pw;
  const Y = (y: number) => m.top + ph - (Math.min(Math.max(y, 0), yTop) / yTop) * ph;
  const yFormat = spec.y_format ?? fmt;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escapeXml(spec.title)}">`);
  parts.push(`<text x="${m.left}" y="20" class="ct">${escapeXml(spec.title)}</text>`);
  for (const w of spec.shade ?? []) {
    const x0 = X(w.from_s);
    const x1 = X(w.to_s);
    parts.push(`<rect x="${x0.toFixed(1)}" y="${m.top}" width="${Math.max(1, x1 - x0).toFixed(1)}" height="${ph}" class="shade"/>`);
    if (spec.shade_label !== undefined) parts.push(`<text x="${(x0 + 2).toFixed(1)}" y="${m.top - 4}" class="sl">${escapeXml(spec.shade_label)}</text>`);
  }
  for (let y = 0; y <= yTop + yStep / 1e6; y += yStep) {
    parts.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${Y(y).toFixed(1)}" y2="${Y(y).toFixed(1)}" class="grid"/>`);
    parts.push(`<text x="${m.left - 6}" y="${(Y(y) + 4).toFixed(1)}" class="yl">${escapeXml(yFormat(y))}</text>`);
  }
  const xStep = niceStep(xMax, 12);
  for (let x = 0; x <= xMax + xStep / 1e6; x += xStep) {
    parts.push(`<line x1="${X(x).toFixed(1)}" x2="${X(x).toFixed(1)}" y1="${m.top + ph}" y2="${m.top + ph + 4}" class="axis"/>`);
    parts.push(`<text x="${X(x).toFixed(1)}" y="${m.top + ph + 17}" class="xl">${fmt(x)}</text>`);
  }
  parts.push(`<text x="${m.left + pw}" y="${H - 4}" class="xl end">seconds since start</text>`);
  parts.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${m.top + ph}" y2="${m.top + ph}" class="axis"/>`);
  parts.push(`<line x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${m.top + ph}" class="axis"/>`);
  for (const s of spec.series) parts.push(drawSeries(s, X, Y, pw / xMax));
  if (!any) parts.push(`<text x="${m.left + pw / 2}" y="${m.top + ph / 2}" class="empty">${escapeXml(spec.empty_text ?? 'no data')}</text>`);
  // Legend, right-aligned on the title row.
  let lx = W - m.right;
  for (const s of [...spec.series].reverse()) {
    const label = escapeXml(s.name);
    const w = 22 + s.name.length * 6.6;
    lx -= w + 12;
    parts.push(`<rect x="${lx.toFixed(1)}" y="11" width="14" height="${s.kind === 'bars' ? 10 : 3}" fill="${s.color}"${s.kind === 'bars' ? ' opacity="0.55"' : ''}/>`);
    parts.push(`<text x="${(lx + 19).toFixed(1)}" y="20" class="lg">${label}</text>`);
  }
  parts.push('</svg>');
  return parts.join('');
}

function drawSeries(s: Series, X: (x: number) => number, Y: (y: number) => number, unitWidth: number): string {
  if (s.kind === 'bars') {
    const w = Math.max(1, unitWidth - 1);
    const bars = s.points
      .filter((p): p is readonly [number, number] => p[1] !== null && p[1] > 0)
      .map(([x, y]) => `<rect x="${X(x).toFixed(1)}" y="${Y(y).toFixed(1)}" width="${w.toFixed(1)}" height="${(Y(0) - Y(y)).toFixed(1)}"/>`)
      .join('');
    return `<g fill="${s.color}" opacity="0.55">${bars}</g>`;
  }
  // A null breaks the line: unknown is not zero.
  let d = '';
  let pen = false;
  let lastY = 0;
  for (const [x, y] of s.points) {
    if (y === null || !Number.isFinite(y)) {
      pen = false;
      continue;
    }
    if (s.kind === 'step' && pen) d += `L${X(x).toFixed(1)},${Y(lastY).toFixed(1)}`;
    d += `${pen ? 'L' : 'M'}${X(x).toFixed(1)},${Y(y).toFixed(1)}`;
    pen = true;
    lastY = y;
  }
  const dash = s.dashed === true ? ' stroke-dasharray="5 4"' : '';
  return `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.8" stroke-linejoin="round"${dash}/>`;
}
