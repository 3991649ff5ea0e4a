// The Spillway dashboard (docs/dashboard.md): polls GET /v1/dashboard about once a second, keeps
// the last few minutes of each model's figures, and draws them with uPlot. Plain script, no
// build step. Everything it shows is held in window.spillwayDashboard, so a test (or a curious
// operator in the console) reads the same numbers the charts draw.
'use strict';

(() => {
  const pollMs = 1000;
  /** Points kept per series: five minutes at one a second. */
  const keep = 300;
  const keyName = 'spillway.dashboard.key';

  const state = {
    /** The last snapshot the gateway sent. */
    last: null,
    /** Snapshots received, and polls that failed. */
    polls: 0,
    failures: 0,
    /** Per model: t (unix seconds) and one array per figure, the same length. */
    series: {},
  };
  window.spillwayDashboard = state;

  const $ = (id) => document.getElementById(id);
  const sections = new Map();

  /** The figures kept per model, and how each is read from the model's part of a snapshot. */
  const figures = {
    backlog: (m) => m.backlog,
    in_flight: (m) => m.in_flight,
    arrival_rate_per_s: (m) => m.arrival_rate_per_s,
    completion_rate_per_s: (m) => m.completion_rate_per_s,
    queue_p50_ms: (m) => m.latency.queue_ms.p50,
    queue_p99_ms: (m) => m.latency.queue_ms.p99,
    inference_p50_ms: (m) => m.latency.inference_ms.p50,
    inference_p99_ms: (m) => m.latency.inference_ms.p99,
    utilisation: (m) => m.workers.utilisation,
  };

  const charts = [
    { title: 'Queue', series: [['backlog', 'backlog', '#1f77b4'], ['in_flight', 'in flight', '#ff7f0e']] },
    { title: 'Per second', series: [['arrival_rate_per_s', 'arrivals/s', '#2ca02c'], ['completion_rate_per_s', 'completions/s', '#9467bd']] },
    // Waiting and working apart: a queue wait of seconds would flatten an inference of milliseconds.
    { title: 'Queue wait (ms)', series: [['queue_p50_ms', 'p50', '#8c564b'], ['queue_p99_ms', 'p99', '#e377c2']] },
    { title: 'Inference (ms)', series: [['inference_p50_ms', 'p50', '#17becf'], ['inference_p99_ms', 'p99', '#bcbd22']] },
  ];

  function el(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    for (const child of children) node.append(child);
    return node;
  }

  const number = (v, digits = 0) => (v === null || v === undefined ? '–' : Number(v).toFixed(digits));
  const percent = (v) => (v === null || v === undefined ? '–' : `${Math.round(v * 100)}%`);

  /** The figures shown as numbers, each in an element with data-figure, for people and tests. */
  function shown(m) {
    const l = m.latency;
    return [
      ['backlog', 'backlog', number(m.backlog)],
      ['in_flight', 'in flight', number(m.in_flight)],
      ['oldest_age_s', 'oldest waiting (s)', number(m.oldest_age_s, 1)],
      ['arrival_rate_per_s', 'arrivals/s', number(m.arrival_rate_per_s, 1)],
      ['completion_rate_per_s', 'completions/s', number(m.completion_rate_per_s, 1)],
      ['completed', 'completed', number(m.completed)],
      ['queue_ms', 'queue wait p50 / p99', `${number(l.queue_ms.p50)} / ${number(l.queue_ms.p99)} ms`],
      ['inference_ms', 'inference p50 / p99', `${number(l.inference_ms.p50)} / ${number(l.inference_ms.p99)} ms`],
      ['workers_seen', 'workers', number(m.workers.seen)],
      ['slots', 'slots', number(m.workers.slots)],
      ['utilisation', 'utilisation', percent(m.workers.utilisation)],
      ['dead_letters', 'dead letters', number(m.dead_letters.total)],
    ];
  }

  function section(model) {
    let s = sections.get(model);
    if (s !== undefined) return s;
    const node = el('section', { class: 'model', 'data-model': model }, el('h2', {}, model));
    const numbers = el('div', { class: 'figures' });
    const chartRow = el('div', { class: 'charts' });
    const lists = el('div', { class: 'lists' });
    node.append(numbers, chartRow, lists);
    $('models').append(node);
    const plots = charts.map((c) => {
      const holder = el('div', { class: 'chart', 'data-chart': c.title });
      chartRow.append(holder);
      const options = {
        title: c.title,
        width: Math.max(280, holder.clientWidth || 280),
        height: 180,
        series: [{}, ...c.series.map(([, label, stroke]) => ({ label, stroke, width: 1.5, spanGaps: false }))],
        axes: [{}, { size: 50 }],
        scales: { y: { range: (_u, min, max) => [0, Math.max(1, max)] } },
      };
      return { plot: new uPlot(options, [[], ...c.series.map(() => [])], holder), keys: c.series.map(([key]) => key), holder };
    });
    s = { numbers, plots, lists };
    sections.set(model, s);
    return s;
  }

  function record(model, at) {
    let h = state.series[model.model];
    if (h === undefined) {
      h = { t: [] };
      for (const key of Object.keys(figures)) h[key] = [];
      state.series[model.model] = h;
    }
    h.t.push(at);
    for (const [key, read] of Object.entries(figures)) h[key].push(read(model));
    if (h.t.length > keep) for (const values of Object.values(h)) values.splice(0, values.length - keep);
    return h;
  }

  function linkList(title, items, describe) {
    if (items.length === 0) return el('p', { class: 'none' }, `${title}: none`);
    return el(
      'div',
      {},
      el('h3', {}, title),
      el(
        'ul',
        {},
        ...items.map((item) => {
          // The gateway builds these; anything else is not followed.
          const href = item.href.startsWith('/v1/predictions/') ? item.href : '#';
          return el('li', {}, el('a', { href, 'data-id': item.id }, item.id), ` ${describe(item)}`);
        }),
      ),
    );
  }

  function workersTable(list) {
    if (list.length === 0) return el('p', { class: 'none' }, 'Workers: none seen');
    const head = el('tr', {}, ...['worker', 'host', 'state', 'slots', 'in flight', 'last seen'].map((h) => el('th', {}, h)));
    const rows = list.map((w) =>
      el(
        'tr',
        { 'data-worker': w.worker },
        el('td', {}, w.worker),
        el('td', {}, `${w.host} (pid ${w.pid})`),
        el('td', {}, w.draining ? 'draining' : w.state),
        el('td', {}, number(w.concurrency)),
        el('td', {}, number(w.in_flight)),
        el('td', {}, new Date(w.last_seen).toLocaleTimeString()),
      ),
    );
    return el('div', {}, el('h3', {}, 'Workers seen'), el('table', {}, head, ...rows));
  }

  function draw(snapshot) {
    const at = Date.parse(snapshot.at) / 1000;
    for (const m of snapshot.models) {
      const s = section(m.model);
      const h = record(m, at);
      s.numbers.replaceChildren(
        ...shown(m).map(([key, label, value]) => el('div', {}, el('span', { class: 'label' }, label), el('span', { class: 'value', 'data-figure': key }, value))),
      );
      for (const p of s.plots) p.plot.setData([h.t, ...p.keys.map((key) => h[key])]);
      s.lists.replaceChildren(
        workersTable(m.workers.list),
        linkList('Dead letters', m.dead_letters.recent, (l) => `${l.code ?? ''} ${l.failed_at ?? ''}`),
        linkList('Recent failures', m.failures, (f) => `${f.status} ${f.code ?? ''} ${f.message ?? ''}`),
      );
    }
    $('callback-dead-letters').textContent = String(snapshot.callback_dead_letters);
    $('counting-since').textContent = new Date(snapshot.counting_since).toLocaleString();
    $('updated').textContent = `updated ${new Date(snapshot.at).toLocaleTimeString()}`;
  }

  function setStatus(kind, text) {
    $('status').dataset.state = kind;
    $('status').textContent = text;
  }

  /** Waits for a key: polling resumes when one is given. */
  function askForKey(problem) {
    setStatus('auth', problem.status === 403 ? 'this key lacks the admin scope' : 'an API key is needed');
    $('auth-error').textContent = problem.detail ?? problem.title ?? '';
    $('auth').hidden = false;
  }

  async function poll() {
    const key = sessionStorage.getItem(keyName);
    let response;
    try {
      response = await fetch('/v1/dashboard', { headers: key === null ? {} : { authorization: `Bearer ${key}` }, cache: 'no-store' });
    } catch (error) {
      state.failures++;
      setStatus('error', `gateway unreachable (${error.message})`);
      return setTimeout(poll, pollMs);
    }
    const body = await response.json().catch(() => ({}));
    if (response.status === 401 || response.status === 403) {
      state.failures++;
      return askForKey({ status: response.status, ...body });
    }
    if (!response.ok) {
      state.failures++;
      setStatus('error', `${response.status} ${body.code ?? ''}`);
      return setTimeout(poll, pollMs);
    }
    state.last = body;
    state.polls++;
    setStatus('live', 'live');
    draw(body);
    setTimeout(poll, pollMs);
  }

  $('auth').addEventListener('submit', (event) => {
    event.preventDefault();
    sessionStorage.setItem(keyName, $('key').value.trim());
    $('key').value = '';
    $('auth').hidden = true;
    setStatus('connecting', 'connecting…');
    void poll();
  });

  window.addEventListener('resize', () => {
    for (const s of sections.values()) for (const p of s.plots) p.plot.setSize({ width: Math.max(280, p.holder.clientWidth), height: 180 });
  });

  void poll();
})();
