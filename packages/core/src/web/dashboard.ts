/**
 * The live dashboard served at `/`: one self-contained HTML page (no external scripts, styles or
 * fonts, so it works on an air-gapped host) that polls `/stats` every second, and `/health`,
 * `/agents` and `/tables` with it. Events per second are computed in the page from the change in
 * `events.total` between polls, so the chart shows the last seconds rather than the monitor's
 * 10-second average.
 */
export function dashboardHtml(appId: string): string {
  // JSON in a <script> must not be able to close the tag.
  const id = JSON.stringify(appId).replace(/</g, '\\u003c')
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(appId)} · Mephisto</title>
<style>
  :root { color-scheme: light dark; --fg: #1d2330; --muted: #6b7385; --bg: #f6f7f9; --card: #fff; --line: #e3e6ec; --accent: #7c3aed; --bad: #c62828; --ok: #2e7d32; }
  @media (prefers-color-scheme: dark) { :root { --fg: #e6e8ee; --muted: #98a0b3; --bg: #14161c; --card: #1c1f27; --line: #2b303b; --accent: #a78bfa; } }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; background: var(--bg); color: var(--fg); }
  header { display: flex; gap: 12px; align-items: baseline; padding: 14px 20px; border-bottom: 1px solid var(--line); background: var(--card); }
  header h1 { margin: 0; font-size: 18px; }
  .pill { padding: 2px 8px; border-radius: 999px; font-size: 12px; background: var(--line); }
  .pill.ok { background: var(--ok); color: #fff; } .pill.bad { background: var(--bad); color: #fff; }
  main { padding: 16px 20px; display: grid; gap: 16px; }
  .cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 12px; }
  .card, section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px; }
  .card .label { color: var(--muted); font-size: 12px; } .card .value { font-size: 22px; font-variant-numeric: tabular-nums; }
  section h2 { margin: 0 0 8px; font-size: 14px; }
  table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
  th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); }
  th { color: var(--muted); font-weight: 500; } td.n, th.n { text-align: right; }
  canvas { width: 100%; height: 180px; display: block; }
  .lag { color: var(--bad); font-weight: 600; }
  footer { color: var(--muted); font-size: 12px; padding: 0 20px 16px; }
  #error { color: var(--bad); }
</style>
</head>
<body>
<header>
  <h1 id="app"></h1>
  <span id="state" class="pill">connecting</span>
  <span id="error"></span>
</header>
<main>
  <div class="cards">
    <div class="card"><div class="label">events/s (last second)</div><div class="value" id="events-rate">0</div></div>
    <div class="card"><div class="label">events</div><div class="value" id="events-total">0</div></div>
    <div class="card"><div class="label">active events</div><div class="value" id="events-active">0</div></div>
    <div class="card"><div class="label">messages in</div><div class="value" id="messages-in">0</div></div>
    <div class="card"><div class="label">messages out</div><div class="value" id="messages-out">0</div></div>
    <div class="card"><div class="label">total lag</div><div class="value" id="lag-total">0</div></div>
    <div class="card"><div class="label">commits</div><div class="value" id="commits">0</div></div>
    <div class="card"><div class="label">dead letters</div><div class="value" id="dlq">0</div></div>
  </div>
  <section><h2>Events per second</h2><canvas id="chart" width="900" height="180"></canvas></section>
  <section><h2>Partitions</h2>
    <table id="partitions"><thead><tr><th>topic</th><th class="n">partition</th><th class="n">read</th><th class="n">committed</th><th class="n">end</th><th class="n">lag</th></tr></thead><tbody></tbody></table>
  </section>
  <section><h2>Agents</h2>
    <table id="agents"><thead><tr><th>agent</th><th>source</th><th class="n">events</th><th class="n">active</th><th class="n">queued</th><th class="n">p50 ms</th><th class="n">p99 ms</th></tr></thead><tbody></tbody></table>
  </section>
  <section><h2>Tables</h2>
    <table id="tables"><thead><tr><th>table</th><th>owned partitions</th><th class="n">gets</th><th class="n">sets</th><th class="n">deletes</th><th>recovery</th></tr></thead><tbody></tbody></table>
  </section>
</main>
<footer>Polling <code>/stats</code> every second · JSON: <a href="stats">/stats</a> <a href="health">/health</a> <a href="agents">/agents</a> <a href="topics">/topics</a> <a href="tables">/tables</a></footer>
<script>
(() => {
  const APP = ${id};
  const $ = (s) => document.querySelector(s);
  $('#app').textContent = APP;
  const fmt = (n) => typeof n === 'number' ? (Number.isInteger(n) ? n.toLocaleString('en-US') : n.toFixed(2)) : String(n);
  const cell = (v, cls) => { const td = document.createElement('td'); td.textContent = v; if (cls) td.className = cls; return td; };
  const fill = (sel, rows) => {
    const body = $(sel + ' tbody');
    body.replaceChildren(...rows.map((cells) => { const tr = document.createElement('tr'); tr.append(...cells); return tr; }));
  };
  const history = [];
  let prev;
  const draw = () => {
    const c = $('#chart');
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth || 900, h = c.clientHeight || 180;
    c.width = w * dpr; c.height = h * dpr;
    const g = c.getContext('2d');
    g.scale(dpr, dpr);
    g.clearRect(0, 0, w, h);
    const style = getComputedStyle(document.documentElement);
    const max = Math.max(1, ...history);
    g.strokeStyle = style.getPropertyValue('--line'); g.fillStyle = style.getPropertyValue('--muted');
    g.font = '11px system-ui'; g.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const y = 8 + (h - 24) * i / 4;
      g.beginPath(); g.moveTo(40, y); g.lineTo(w, y); g.stroke();
      g.fillText(fmt(Math.round(max * (4 - i) / 4)), 2, y + 4);
    }
    g.fillText('last ' + history.length + ' s', w - 60, h - 4);
    if (history.length < 2) return;
    g.strokeStyle = style.getPropertyValue('--accent'); g.lineWidth = 2;
    g.beginPath();
    history.forEach((v, i) => {
      // Right-aligned: the newest second is at the right edge, older ones scroll left.
      const x = w - (w - 40) * (history.length - 1 - i) / (120 - 1);
      const y = 8 + (h - 24) * (1 - v / max);
      i ? g.lineTo(x, y) : g.moveTo(x, y);
    });
    g.stroke();
  };
  const get = async (path) => { const r = await fetch(path, { cache: 'no-store' }); return { status: r.status, body: await r.json() }; };
  let polls = 0;
  const poll = async () => {
    try {
      const [stats, health, agents, tables] = await Promise.all([get('stats'), get('health'), get('agents'), get('tables')]);
      const s = stats.body;
      const now = performance.now();
      if (prev) history.push(Math.max(0, (s.events.total - prev.total) * 1000 / (now - prev.at)));
      if (history.length > 120) history.shift();
      prev = { total: s.events.total, at: now };
      const st = $('#state');
      st.textContent = health.body.status; st.className = 'pill ' + (health.status === 200 ? 'ok' : 'bad');
      $('#events-rate').textContent = fmt(Math.round(history[history.length - 1] || 0));
      $('#events-total').textContent = fmt(s.events.total);
      $('#events-active').textContent = fmt(s.events.active);
      $('#messages-in').textContent = fmt(s.messages.receivedTotal);
      $('#messages-out').textContent = fmt(s.messages.sentTotal);
      $('#lag-total').textContent = fmt(s.partitions.reduce((a, p) => a + p.lag, 0));
      $('#commits').textContent = fmt(s.commits.total);
      $('#dlq').textContent = fmt(s.dlq.total);
      fill('#partitions', s.partitions.map((p) => [cell(p.topic), cell(fmt(p.partition), 'n'), cell(fmt(p.read), 'n'), cell(fmt(p.committed), 'n'), cell(fmt(p.end), 'n'), cell(fmt(p.lag), p.lag > 0 ? 'n lag' : 'n')]));
      fill('#agents', agents.body.map((a) => { const e = a.events || { total: 0, active: 0, runtime: { p50: 0, p99: 0 } }; return [cell(a.name), cell(a.source), cell(fmt(e.total), 'n'), cell(fmt(e.active), 'n'), cell(fmt(a.queued), 'n'), cell(fmt(e.runtime.p50), 'n'), cell(fmt(e.runtime.p99), 'n')]; }));
      const recovery = s.recovery.partitions;
      fill('#tables', tables.body.map((t) => {
        const rec = recovery.filter((r) => r.table === t.name);
        const done = rec.reduce((a, r) => a + r.done, 0), total = rec.reduce((a, r) => a + r.total, 0);
        return [cell(t.name), cell(t.owned.join(', ')), cell(fmt(t.stats.gets), 'n'), cell(fmt(t.stats.sets), 'n'), cell(fmt(t.stats.deletes), 'n'), cell(total ? fmt(done) + ' / ' + fmt(total) : '-')];
      }));
      $('#error').textContent = '';
      draw();
      document.body.dataset.polls = String(++polls);
    } catch (err) {
      $('#error').textContent = 'cannot reach the worker: ' + err.message;
      $('#state').textContent = 'unreachable'; $('#state').className = 'pill bad';
    }
  };
  poll();
  setInterval(poll, 1000);
})();
</script>
</body>
</html>
`
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}
