// #/stats: operations over time, error rate, latency, by server and vMCP, top clients and
// methods, with the filters /api/stats takes (dates, vMCP, client, method).
//
// /api/stats answers figures over the operations that match its filters and a page of them.
// Series over time are the figures of one request per interval (exact); counts by method and
// client are the figures of one request per method or client (exact); percentiles by server and
// vMCP come from the latest operations (up to 500), since the API has no percentile.
import { button, clear, errorBox, field, fmtMs, fmtNum, fmtPct, fmtTime, get, h, live, quantile, select } from './lib.js';
import { hBars, timeBars, timeLine } from './charts.js';

const MIN = 60e3;
const RANGES = [
  // key, label, bucket size (ms), buckets
  ['15m', 'Last 15 minutes', MIN, 15],
  ['1h', 'Last hour', 5 * MIN, 12],
  ['6h', 'Last 6 hours', 15 * MIN, 24],
  ['24h', 'Last 24 hours', 60 * MIN, 24],
  ['7d', 'Last 7 days', 360 * MIN, 28],
  ['30d', 'Last 30 days', 1440 * MIN, 30],
  ['custom', 'Custom…', 0, 24],
];
const METHODS = ['tools/call', 'tools/list', 'tools/search', 'resources/read', 'resources/list', 'resources/templates/list', 'resources/subscribe', 'resources/unsubscribe', 'prompts/get', 'prompts/list', 'completion/complete'];
const SAMPLE_PAGES = 5;

// Kept across visits of the view.
const state = { range: '1h', vmcp_id: '', client_id: '', method: '', from: '', to: '' };

function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '' && v !== undefined && v !== null) u.set(k, v);
  return u.toString();
}

const stats = (params) => get(`/api/stats?${qs(params)}`);

function period() {
  const r = RANGES.find((x) => x[0] === state.range);
  if (state.range === 'custom') {
    const from = state.from ? new Date(state.from) : new Date(Date.now() - 24 * 60 * MIN);
    const to = state.to ? new Date(state.to) : new Date();
    const n = r[3];
    const step = Math.max(1000, Math.ceil((to - from) / n));
    return { start: from.getTime(), step, n };
  }
  const step = r[2];
  const end = Math.ceil(Date.now() / step) * step;
  return { start: end - step * r[3], step, n: r[3] };
}

function fmtTfor(step) {
  return (t, full) => {
    const d = new Date(t);
    const hm = d.toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit', hour12: false });
    const md = d.toLocaleDateString('en-CA').slice(5);
    if (full) return `${d.toLocaleDateString('en-CA')} ${hm}`;
    if (step < 1440 * MIN) return step >= 360 * MIN ? `${md} ${hm}` : hm;
    return md;
  };
}

export async function view(root) {
  const errors = h('div');
  const out = h('div.stats-body', { 'aria-live': 'polite', 'aria-busy': 'true' });

  // Filters
  const range = select(RANGES.map((r) => [r[0], r[1]]), state.range, { name: 'range' });
  const from = h('input', { type: 'datetime-local', value: state.from, name: 'from' });
  const to = h('input', { type: 'datetime-local', value: state.to, name: 'to' });
  const customBox = h('div.inline-form', field('From', from), field('To', to));
  const vmcpSel = h('select', { name: 'vmcp' }, h('option', { value: '' }, 'All vMCPs'));
  const client = h('input', { name: 'client', value: state.client_id, list: 'clients-list', autocomplete: 'off', placeholder: 'any' });
  const clients = h('datalist#clients-list');
  const method = select([['', 'All methods'], ...METHODS], state.method, { name: 'method' });
  const syncCustom = () => { customBox.hidden = range.value !== 'custom'; };
  range.addEventListener('change', syncCustom);
  syncCustom();
  const form = h('form.filters.card', { novalidate: true, 'aria-label': 'Filters' },
    h('div.filter-row', field('Period', range), customBox, field('vMCP', vmcpSel), field('Client', client), field('Method', method), clients),
    h('div.actions', h('button.primary', { type: 'submit' }, 'Apply'), button('Reset', () => {
      Object.assign(state, { range: '1h', vmcp_id: '', client_id: '', method: '', from: '', to: '' });
      range.value = '1h'; vmcpSel.value = ''; client.value = ''; method.value = ''; from.value = ''; to.value = '';
      syncCustom();
      return load();
    })));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    Object.assign(state, { range: range.value, vmcp_id: vmcpSel.value, client_id: client.value.trim(), method: method.value, from: from.value, to: to.value });
    load();
  });
  root.append(h('div.head', h('h1', 'Stats'), button('Refresh', () => load())), form, errors, out);

  let names = { vmcp: new Map(), server: new Map() };
  try {
    const [vs, ss] = await Promise.all([get('/api/vmcps'), get('/api/mcp-servers')]);
    names = { vmcp: new Map(vs.map((v) => [v.vmcp_id, v.name])), server: new Map(ss.map((x) => [x.server_id, x.name])) };
    vmcpSel.append(...vs.map((v) => h('option', { value: v.vmcp_id, selected: v.vmcp_id === state.vmcp_id }, v.name)));
  } catch (e) {
    errors.append(errorBox(e));
  }

  // One load at a time; filters applied meanwhile load again when it ends.
  let loading = null;
  let again = false;
  async function load() {
    if (loading) {
      again = true;
      return loading;
    }
    loading = (async () => {
      do {
        again = false;
        await doLoad();
      } while (again);
    })().finally(() => { loading = null; });
    return loading;
  }

  async function doLoad() {
    out.setAttribute('aria-busy', 'true');
    const w = period();
    const base = { vmcp_id: state.vmcp_id, client_id: state.client_id, method: state.method };
    const start = new Date(w.start).toISOString();
    const end = new Date(w.start + w.step * w.n).toISOString();
    const ranged = { ...base, start_date: start, end_date: end };
    let first;
    let buckets;
    try {
      [first, buckets] = await Promise.all([
        stats({ ...ranged, page_size: 100 }),
        Promise.all(Array.from({ length: w.n }, (_, i) => {
          const t0 = w.start + i * w.step;
          return stats({ ...base, start_date: new Date(t0).toISOString(), end_date: new Date(t0 + w.step).toISOString(), page_size: 1 })
            .then((r) => ({ t0, t1: t0 + w.step, total: r.stats.total_logs, failed: r.stats.failed, avg: r.stats.avg_duration_ms }));
        })),
      ]);
    } catch (e) {
      clear(errors).append(errorBox(e));
      out.removeAttribute('aria-busy');
      return;
    }
    clear(errors);
    // The latest operations, for percentiles and to find clients.
    const pages = Math.min(SAMPLE_PAGES, first.pagination.total_pages);
    const more = await Promise.all(Array.from({ length: Math.max(0, pages - 1) }, (_, i) => stats({ ...ranged, page_size: 100, page: i + 2 }).then((r) => r.logs).catch(() => [])));
    const sample = first.logs.concat(...more);

    // Exact counts by method and by client (one filtered request each).
    const methodNames = state.method ? [state.method] : [...new Set([...METHODS, ...sample.map((l) => l.method)])];
    const clientCount = new Map();
    for (const l of sample) clientCount.set(l.client_id, (clientCount.get(l.client_id) || 0) + 1);
    const clientNames = state.client_id ? [state.client_id] : [...clientCount.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8).map((x) => x[0]);
    const [byMethod, byClient] = await Promise.all([
      Promise.all(methodNames.map((m) => stats({ ...ranged, method: m, page_size: 1 }).then((r) => ({ label: m, ...r.stats })).catch(() => null))),
      Promise.all(clientNames.map((c) => stats({ ...ranged, client_id: c, page_size: 1 }).then((r) => ({ label: c, ...r.stats })).catch(() => null))),
    ]);
    clear(clients).append(...[...clientCount.keys()].map((c) => h('option', { value: c })));

    const st = first.stats;
    const fmtT = fmtTfor(w.step);
    const pct = (vals) => [quantile(vals, 0.5), quantile(vals, 0.95), quantile(vals, 0.99)];
    const groupBy = (key, nameOf) => {
      const g = new Map();
      for (const l of sample) {
        const k = l[key];
        if (!k) continue;
        if (!g.has(k)) g.set(k, []);
        g.get(k).push(l.duration_ms);
      }
      return [...g.entries()].sort((a, b) => b[1].length - a[1].length).slice(0, 10)
        .map(([k, vals]) => ({ label: `${nameOf(k)} (${vals.length})`, values: pct(vals) }));
    };
    const pSeries = [['c-p50', 'p50'], ['c-p95', 'p95'], ['c-p99', 'p99']];
    const fmtMsN = (v) => (v === null ? '–' : fmtMs(v));
    const rows = (list) => list.filter((x) => x && x.total_logs).sort((a, b) => b.total_logs - a.total_logs)
      .map((x) => ({ label: x.label, values: [x.total_logs - x.failed, x.failed] }));
    const okErr = [['c-ok', 'ok'], ['c-err', 'failed']];
    const rangeLabel = `${fmtTime(start, true)} to ${fmtTime(end, true)}`;

    clear(out).append(
      h('p.muted', `${rangeLabel}${state.vmcp_id ? ` · vMCP ${names.vmcp.get(state.vmcp_id) || state.vmcp_id}` : ''}${state.client_id ? ` · client ${state.client_id}` : ''}${state.method ? ` · ${state.method}` : ''}`),
      h('div.figures-grid',
        figure('Operations', fmtNum(st.total_logs), 'stat-total'),
        figure('Tool calls', fmtNum(st.total_tool_calls), 'stat-tool-calls'),
        figure('Failed', `${fmtNum(st.failed)} (${fmtPct(st.total_logs ? st.failed / st.total_logs : NaN)})`, 'stat-failed', st.failed ? 'bad' : ''),
        figure('Mean latency', fmtMs(st.total_logs ? st.avg_duration_ms : null), 'stat-latency'),
        figure('Clients', fmtNum(st.active_clients), 'stat-clients'),
        figure('vMCPs', fmtNum(st.total_vmcps), 'stat-vmcps'),
        st.dropped_logs ? figure('Dropped log rows', fmtNum(st.dropped_logs), 'stat-dropped', 'bad') : null),
      h('div.charts',
        h('div.wide', timeBars('Operations over time', buckets.map((b) => ({ t0: b.t0, t1: b.t1, ok: b.total - b.failed, failed: b.failed })), fmtT)),
        timeLine('Error rate', buckets.map((b) => ({ t0: b.t0, value: b.total ? b.failed / b.total : null })), fmtT, (v) => fmtPct(v), 'c-err', 'chart-errors'),
        timeLine('Mean latency', buckets.map((b) => ({ t0: b.t0, value: b.total ? b.avg : null })), fmtT, (v) => fmtMs(v), 'c-line', 'chart-latency'),
        hBars('Latency by server', groupBy('mcp_server_id', (id) => names.server.get(id) || id), pSeries, fmtMsN, 'chart-latency-server'),
        hBars('Latency by vMCP', groupBy('vmcp_id', (id) => names.vmcp.get(id) || id), pSeries, fmtMsN, 'chart-latency-vmcp'),
        hBars('Methods', rows(byMethod), okErr, (v) => fmtNum(v), 'chart-methods'),
        hBars('Top clients', rows(byClient), okErr, (v) => fmtNum(v), 'chart-clients')),
      h('p.hint', `Percentiles by server and vMCP: the latest ${sample.length} of ${fmtNum(st.total_logs)} operations (the number in brackets). Counts by method and client: all operations of the period.`),
      recent(first.logs.slice(0, 20), names));
    out.removeAttribute('aria-busy');
  }

  await load();
  let pending;
  const off = live.on((msg) => {
    if (msg.type !== 'log' || state.range === 'custom') return;
    clearTimeout(pending);
    // New operations: refresh, at most every few seconds, unless the filters are being edited.
    pending = setTimeout(() => { if (!form.contains(document.activeElement)) load(); }, 3000);
  });
  return () => { off(); clearTimeout(pending); };
}

function figure(label, value, testid, cls = '') {
  return h(`div.figure${cls ? `.${cls}` : ''}`, { 'data-testid': testid }, h('span.figure-label', label), h('span.figure-value', value));
}

function recent(logs, names) {
  if (!logs.length) return h('p.empty', 'No operations in this period.');
  return h('section.card', h('h2', 'Latest operations'),
    h('div.table-wrap', h('table.data.ops',
      h('thead', h('tr', ['Time', 'vMCP', 'Method', 'Target', 'Client', 'Duration', 'Result'].map((x) => h('th', { scope: 'col' }, x)))),
      h('tbody', logs.map((l) => h(`tr${l.success ? '' : '.failed'}`,
        h('td', fmtTime(l.timestamp)), h('td', names.vmcp.get(l.vmcp_id) || l.vmcp_id || '–'), h('td', l.method),
        h('td.mono', l.target || ''), h('td', l.client_id), h('td.num', fmtMs(l.duration_ms)),
        h('td', l.success ? 'ok' : h('span.err-detail', l.error || 'failed'))))))));
}
