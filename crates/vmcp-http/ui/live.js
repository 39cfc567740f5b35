// #/live: the operation log as it happens (/ws), filterable, with pause and a bounded buffer.
import { LIVE_MAX, checkbox, clear, field, fmtMs, fmtTime, get, h, json, live } from './lib.js';

const METHODS = ['tools/call', 'tools/list', 'tools/search', 'resources/read', 'resources/list', 'resources/templates/list', 'resources/subscribe', 'resources/unsubscribe', 'prompts/get', 'prompts/list', 'completion/complete'];
const state = { text: '', vmcp: '', method: '', errors: false, paused: false };

export async function view(root) {
  const names = { vmcp: new Map(), server: new Map() };
  const text = h('input', { type: 'search', value: state.text, placeholder: 'tool, client, error…', autocomplete: 'off' });
  const vmcp = h('select', h('option', { value: '' }, 'All vMCPs'));
  const method = h('select', h('option', { value: '' }, 'All methods'), METHODS.map((m) => h('option', { value: m, selected: m === state.method }, m)));
  const errorsOnly = checkbox('Errors only', state.errors);
  const pause = h('button', { type: 'button', 'aria-pressed': String(state.paused) });
  const clearBtn = h('button', { type: 'button' }, 'Clear');
  const count = h('p.muted.count', { role: 'status' });
  const logEl = h('ol.live-log', { role: 'log', 'aria-live': 'polite', 'aria-relevant': 'additions', 'aria-label': 'Operation log' });
  let missed = 0;

  root.append(
    h('div.head', h('h1', 'Live'), h('div.actions', pause, clearBtn)),
    h('form.filters.card', { novalidate: true, 'aria-label': 'Filters', onsubmit: (e) => e.preventDefault() },
      h('div.filter-row', field('Search', text), field('vMCP', vmcp), field('Method', method), errorsOnly)),
    count, logEl);

  try {
    const [vs, ss] = await Promise.all([get('/api/vmcps'), get('/api/mcp-servers')]);
    for (const v of vs) names.vmcp.set(v.vmcp_id, v.name);
    for (const s of ss) names.server.set(s.server_id, s.name);
    vmcp.append(...vs.map((v) => h('option', { value: v.vmcp_id, selected: v.vmcp_id === state.vmcp }, v.name)));
  } catch {
    // Names stay ids.
  }

  function matches(item) {
    if (item.kind === 'status') {
      if (state.vmcp || state.method) return false;
      if (state.errors && item.msg.status !== 'error') return false;
      const t = `${names.server.get(item.msg.server_id) || item.msg.server_id} ${item.msg.status} ${item.msg.last_error || ''}`.toLowerCase();
      return !state.text || t.includes(state.text.toLowerCase());
    }
    const e = item.entry;
    if (state.vmcp && e.vmcp_id !== state.vmcp) return false;
    if (state.method && e.method !== state.method) return false;
    if (state.errors && e.success && !(e.result && e.result.isError)) return false;
    if (!state.text) return true;
    const hay = [e.method, e.target, e.client_id, e.error, names.vmcp.get(e.vmcp_id), names.server.get(e.mcp_server_id), e.vmcp_id, e.log_id,
      e.arguments ? JSON.stringify(e.arguments) : ''].join(' ').toLowerCase();
    return hay.includes(state.text.toLowerCase());
  }

  function row(item) {
    if (item.kind === 'status') {
      const m = item.msg;
      return h(`li.entry.status-line${m.status === 'error' ? '.failed' : ''}`,
        h('span.time', fmtTime(item.at)), h('span.badge', { class: `badge st-${m.status}` }, m.status),
        h('span', `server ${names.server.get(m.server_id) || m.server_id}`), m.status === 'error' && m.last_error ? h('span.err-detail', m.last_error) : null);
    }
    const e = item.entry;
    const toolErr = e.result && e.result.isError;
    const cls = !e.success ? '.failed' : toolErr ? '.tool-error' : '';
    return h(`li.entry${cls}`, { 'data-log': e.log_id, 'data-method': e.method },
      h('details',
        h('summary',
          h('span.time', fmtTime(e.timestamp)),
          h(`span.badge.${e.success ? (toolErr ? 'st-connecting' : 'st-connected') : 'st-error'}`, e.success ? (toolErr ? 'isError' : 'ok') : 'failed'),
          h('span.method', e.method),
          e.target ? h('code.target', e.target) : null,
          h('span.muted', names.vmcp.get(e.vmcp_id) || e.vmcp_id || ''),
          h('span.muted', e.client_id),
          h('span.dur', fmtMs(e.duration_ms)),
          e.error ? h('span.err-detail.block', e.error) : null),
        h('div.entry-body',
          e.parent_log_id ? h('p.muted', `nested call of ${e.parent_log_id}`) : null,
          h('p.muted', `${e.log_id} · ${e.source} · server ${names.server.get(e.mcp_server_id) || e.mcp_server_id || '–'}`),
          e.arguments ? [h('h4', 'Arguments'), h('pre.code', json(e.arguments))] : null,
          e.result !== null && e.result !== undefined ? [h('h4', `Result${e.result_truncated ? ' (truncated)' : ''}`), h('pre.code', json(e.result))] : null)));
  }

  function redraw() {
    clear(logEl);
    const items = live.buffer.filter(matches).reverse();
    logEl.append(...items.map(row));
    if (!items.length) logEl.append(h('li.empty', live.buffer.length ? 'Nothing matches the filters.' : 'Waiting for operations… Call a tool of a vMCP and it appears here.'));
    updateCount();
  }

  function updateCount() {
    const shown = logEl.querySelectorAll('li.entry').length;
    count.textContent = `${shown} shown, ${live.buffer.length} kept (the last ${LIVE_MAX})${state.paused ? ` · paused${missed ? `, ${missed} new` : ''}` : ''}`;
    pause.textContent = state.paused ? `Resume${missed ? ` (${missed} new)` : ''}` : 'Pause';
    pause.setAttribute('aria-pressed', String(state.paused));
  }

  const onFilter = () => {
    state.text = text.value.trim();
    state.vmcp = vmcp.value;
    state.method = method.value;
    state.errors = errorsOnly.control.checked;
    redraw();
  };
  text.addEventListener('input', onFilter);
  vmcp.addEventListener('change', onFilter);
  method.addEventListener('change', onFilter);
  errorsOnly.control.addEventListener('change', onFilter);
  pause.addEventListener('click', () => {
    state.paused = !state.paused;
    if (!state.paused) {
      missed = 0;
      redraw();
    } else {
      updateCount();
    }
  });
  clearBtn.addEventListener('click', () => {
    live.buffer.length = 0;
    missed = 0;
    redraw();
  });

  redraw();
  const off = live.on((msg) => {
    if (msg.type !== 'log' && msg.type !== 'server_status') return;
    const item = live.buffer[live.buffer.length - 1];
    if (!item || !matches(item)) { updateCount(); return; }
    if (state.paused) {
      missed++;
      updateCount();
      return;
    }
    const empty = logEl.querySelector('li.empty');
    if (empty) empty.remove();
    logEl.prepend(row(item));
    while (logEl.children.length > LIVE_MAX) logEl.lastElementChild.remove();
    updateCount();
  });
  return off;
}
