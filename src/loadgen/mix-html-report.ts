import { definitions, htmlPage, n, renderRun } from './html-report.js';
import type { MixReport } from './mix-report.js';
import { escapeXml as esc } from './svg-chart.js';

const anchor = (name: string) => `tenant-${name}`;

/** The tenants side by side: what each sent, what became of it, and how long it waited. */
function comparison(r: MixReport): string {
  const rows = Object.entries(r.tenants).map(
    ([name, t]) =>
      `<tr><td><a href="#${esc(anchor(name))}">${esc(name)}</a></td><td>${esc(t.profile)}</td><td>${t.sent}</td><td>${t.rejected}</td><td>${t.errored}</td>` +
      `<td>${t.completed}</td><td>${t.lost}</td><td>${n(t.latency_ms.p50)}</td><td>${n(t.latency_ms.p99)}</td><td>${n(t.queue_ms.p99)}</td></tr>`,
  );
  return `<table><tr><th>tenant</th><th>profile</th><th>sent</th><th>rejected</th><th>errored</th><th>completed</th><th>lost</th><th>latency p50 ms</th><th>latency p99 ms</th><th>queue wait p99 ms</th></tr>
${rows.join('\n')}
</table>`;
}

/** A --mix run as one self-contained page: the tenants compared, then each tenant's own report. */
export function renderMixHtml(r: MixReport): string {
  const tenants = Object.entries(r.tenants);
  const sections = tenants.map(
    ([name, t]) => `<section id="${esc(anchor(name))}">\n<h2>Tenant ${esc(name)}: ${esc(t.profile)} profile</h2>\n${renderRun(t, 'h3')}\n</section>`,
  );
  // The definitions explain drain s only from a report that had a spike.
  const defined = tenants.find(([, t]) => t.drain !== null)?.[1] ?? tenants[0]?.[1];
  const body = `<p class="sub">${esc(r.target)} · started ${esc(r.started_at)} · ${esc(r.mix)} · ${n(r.duration_s)} s of arrivals, ${n(r.elapsed_s)} s with the drain${r.reconciles ? '' : ' · <b>the counts do not reconcile</b>'}</p>
<h2>Tenants</h2>
${comparison(r)}
<p class="defs">Latency: scheduled send → result known, completed requests. Queue wait: the server's queue_ms (accepted → started).
The backlog, drain and worker figures in each tenant's section are the model's, so the same for every tenant.</p>
${sections.join('\n')}
${defined === undefined ? '' : definitions(defined)}`;
  return htmlPage(`Spillway bench: ${r.model}, ${tenants.length} tenants`, body);
}
