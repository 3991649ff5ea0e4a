import type { BenchReport, Tally } from './report.js';
import type { Distribution } from './stats.js';
import { escapeXml as esc, timeChart, type Point } from './svg-chart.js';

const css = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2430;margin:24px auto;max-width:1200px;padding:0 16px;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde2ea;padding-bottom:4px}
h3{font-size:15px;margin:22px 0 6px}section{margin-top:40px}
.sub{color:#5b6575;margin:0 0 16px}
.cards{display:grid;grid-template-columns:repeat(6,1fr);gap:10px}
.card{border:1px solid #dde2ea;border-radius:6px;padding:8px 10px}.card b{display:block;font-size:20px}.card span{color:#5b6575;font-size:12px}
.card.bad b{color:#b42318}.card.ok b{color:#067647}
table{border-collapse:collapse;margin:6px 0;font-variant-numeric:tabular-nums}
th,td{padding:4px 10px;border-bottom:1px solid #eceff4;text-align:right}th{background:#f6f8fa;font-weight:600}
td:first-child,th:first-child{text-align:left}
.notes li{color:#9a3412}
svg{display:block;margin:10px 0;max-width:100%;height:auto}
svg text{font:12px system-ui,sans-serif;fill:#384250}
svg .ct{font-size:14px;font-weight:600;fill:#1d2430}svg .yl{text-anchor:end}svg .xl{text-anchor:middle}svg .end{text-anchor:end;fill:#7a8494}
svg .grid{stroke:#eceff4}svg .axis{stroke:#9aa4b2}svg .shade{fill:#f79009;opacity:.13}svg .sl{fill:#b54708;font-size:11px}
svg .empty{text-anchor:middle;fill:#7a8494}svg .lg{fill:#384250}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;font-size:13px}dt{color:#5b6575}dd{margin:0;font-family:ui-monospace,monospace}
.defs{color:#5b6575;font-size:13px}
`;

export const n = (v: number | null | undefined, places = 1): string => (v === null || v === undefined ? '–' : `${+v.toFixed(places)}`);
const pct = (v: number | null): string => (v === null ? 'unknown' : `${(v * 100).toFixed(1)}%`);

function card(label: string, value: string, tone = ''): string {
  return `<div class="card ${tone}"><b>${esc(value)}</b><span>${esc(label)}</span></div>`;
}

function distRow(name: string, d: Distribution): string {
  return `<tr><td>${esc(name)}</td><td>${d.count}</td><td>${n(d.mean)}</td><td>${n(d.p50)}</td><td>${n(d.p90)}</td><td>${n(d.p99)}</td><td>${n(d.max)}</td></tr>`;
}

function tallyRow(name: string, t: Tally, windows: string): string {
  const l = t.latency_ms;
  return (
    `<tr><td>${esc(name)}</td><td>${esc(windows)}</td><td>${t.sent}</td><td>${t.accepted}</td><td>${t.rejected}</td><td>${t.errored}</td>` +
    `<td>${t.completed}</td><td>${t.failed}</td><td>${t.lost}</td><td>${n(l.p50)}</td><td>${n(l.p90)}</td><td>${n(l.p99)}</td><td>${n(l.max)}</td></tr>`
  );
}

/** Known points of a per-second series, held to `end` so a step line covers the last second. */
function stepTo(points: readonly Point[], end: number): Point[] {
  const known = points.filter((p) => p[1] !== null);
  const last = known[known.length - 1];
  return last === undefined ? [] : [...known, [end, last[1]]];
}

/** A self-contained page: inline CSS (and the SVG in `body`), no script, nothing fetched. */
export function htmlPage(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(title)}</title><style>${css}</style></head>
<body>
<h1>${esc(title)}</h1>
${body}
</body></html>
`;
}

/** The report as one self-contained HTML page. */
export function renderHtml(r: BenchReport): string {
  return htmlPage(`Spillway bench: ${r.model}, ${r.profile} profile`, `${renderRun(r, 'h2')}\n${definitions(r)}`);
}

/** What the terms of a run's figures mean; once a page, however many runs it shows. */
export function definitions(r: BenchReport): string {
  return `<p class="defs">Lost: accepted (200/202) but with no final result ${esc(String(r.settings['drain_timeout'] ?? ''))} s after the arrival window ended.
${r.drain === null ? '' : `drain s: from the spike's end to the first sample whose queue_depth is at or below the largest queue_depth sampled before the spike (${n(r.drain.baseline, 0)}).`}
Worker slot-seconds: Σ over samples of the slots (Σ concurrency of ready workers) × the interval. See docs/bench.md.</p>`;
}

/** One run's figures, from its subtitle to its settings, with headings `h` (h3 inside a tenant's section). */
export function renderRun(r: BenchReport, h: 'h2' | 'h3'): string {
  const samples = r.samples;
  const tl = r.timeline;
  const xMax = Math.max(tl.length, r.duration_s);
  const shade = r.spike === null ? [] : [r.spike];
  const mid = (pick: (s: BenchReport['timeline'][number]) => number | null): Point[] => tl.map((s) => [s.t + 0.5, pick(s)]);
  const at = (pick: (s: BenchReport['timeline'][number]) => number | null): Point[] => tl.map((s) => [s.t, pick(s)]);
  const chart = (title: string, series: Parameters<typeof timeChart>[0]['series'], extra: Partial<Parameters<typeof timeChart>[0]> = {}) =>
    timeChart({ title, x_max: xMax, series, shade, shade_label: 'spike', ...extra });
  const hasExpected = tl.some((s) => s.expected_arrivals !== null);
  const hasErrors = r.errored > 0;
  const charts = [
    chart('Arrivals per second (by scheduled time)', [
      { name: 'arrivals', color: '#2e90fa', kind: 'bars', points: at((s) => s.arrivals) },
      ...(hasExpected
        ? [{ name: 'profile rate', color: '#1d2430', dashed: true, kind: 'step' as const, points: stepTo(at((s) => s.expected_arrivals), r.duration_s) }]
        : []),
      { name: 'rejected', color: '#d92d20', points: mid((s) => s.rejections) },
      ...(hasErrors ? [{ name: 'errors', color: '#7a2e0e', dashed: true, points: mid((s) => s.errors) }] : []),
    ]),
    chart('Completions per second (final result known)', [
      { name: 'arrivals', color: '#98a2b3', dashed: true, points: mid((s) => s.arrivals) },
      { name: 'completions', color: '#079455', points: mid((s) => s.completions) },
    ]),
    chart('Backlog: queue_depth (server, sampled) and requests in flight (client)', [
      { name: 'queue_depth', color: '#7f56d9', points: samples.map((s) => [s.t_s, s.queue_depth] as const) },
      { name: 'in flight', color: '#f79009', dashed: true, points: tl.map((s) => [s.t + 1, s.in_flight] as const) },
    ]),
    chart('Latency of requests completed each second, ms (scheduled send → result known)', [
      { name: 'p50', color: '#2e90fa', points: mid((s) => s.latency_p50_ms) },
      { name: 'p99', color: '#d92d20', points: mid((s) => s.latency_p99_ms) },
    ]),
    chart(
      'Worker utilisation (busy slot-time ÷ slot-time)',
      [{ name: 'utilisation', color: '#079455', points: mid((s) => s.utilization) }],
      { y_max: 1, y_format: (y) => `${Math.round(y * 100)}%`, empty_text: 'unknown: the workers do not report busy_ms' },
    ),
    chart('Worker slots (Σ concurrency of ready workers, sampled)', [
      { name: 'slots', color: '#344054', kind: 'step', points: samples.map((s) => [s.t_s, s.slots] as const) },
    ], { height: 170 }),
  ];

  const lost = r.lost > 0;
  const cards = [
    card('sent', String(r.sent)),
    card('accepted', String(r.accepted)),
    card('rejected (429/503)', String(r.rejected), r.rejected > 0 ? 'bad' : ''),
    card('errored', String(r.errored), r.errored > 0 ? 'bad' : ''),
    card('completed', String(r.completed), r.completed === r.accepted ? 'ok' : ''),
    card('lost', String(r.lost), lost ? 'bad' : 'ok'),
    card('latency p50 ms', n(r.latency_ms.p50)),
    card('latency p99 ms', n(r.latency_ms.p99)),
    card('backlog peak', n(r.backlog_peak, 0)),
    card('drain s', r.spike === null ? 'no spike' : r.drain_s === null ? 'never' : n(r.drain_s, 2), r.spike !== null && r.drain_s === null ? 'bad' : ''),
    card('worker slot-seconds', n(r.worker_seconds, 1)),
    card('workers busy', pct(r.worker_busy_fraction)),
  ];
  const phaseRows = Object.entries(r.phases).map(([name, p]) =>
    tallyRow(name, p, p.windows.length <= 3 ? p.windows.map((w) => `${n(w.from_s)}–${n(w.to_s)} s`).join(', ') : `${p.windows.length} windows`),
  );
  const errorRows = Object.entries(r.errors).map(([code, count]) => `<tr><td>${esc(code)}</td><td>${count}</td></tr>`);
  const settings = Object.entries(r.settings).map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v === null ? '–' : String(v))}</dd>`);
  const heading = (text: string) => `<${h}>${esc(text)}</${h}>`;
  return `<p class="sub">${esc(r.target)} · started ${esc(r.started_at)} · ${n(r.duration_s)} s of arrivals, ${n(r.elapsed_s)} s with the drain · send lag p99 ${n(r.send_lag_ms.p99, 2)} ms${r.reconciles ? '' : ' · <b>the counts do not reconcile</b>'}</p>
<div class="cards">${cards.join('')}</div>
${r.notes.length > 0 ? `<ul class="notes">${r.notes.map((x) => `<li>${esc(x)}</li>`).join('')}</ul>` : ''}
${heading('Durations (ms)')}
<table><tr><th></th><th>count</th><th>mean</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr>
${distRow('latency (scheduled send → result known)', r.latency_ms)}
${distRow('queue_ms (server: accepted → started)', r.queue_ms)}
${distRow('inference_ms (server: in the model)', r.inference_ms)}
${distRow('send lag (actual − scheduled send)', r.send_lag_ms)}
</table>
${heading('Phases (by scheduled send time)')}
<table><tr><th>phase</th><th>window</th><th>sent</th><th>accepted</th><th>rejected</th><th>errored</th><th>completed</th><th>failed</th><th>lost</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>max ms</th></tr>
${phaseRows.join('\n')}
${tallyRow('total', r, `0–${n(r.duration_s)} s`)}
</table>
${errorRows.length > 0 ? `${heading('Errors')}<table><tr><th>status or failure</th><th>requests</th></tr>${errorRows.join('')}</table>` : ''}
${heading('Over time')}
${charts.join('\n')}
${heading('Settings')}
<dl>${settings.join('')}</dl>`;
}
