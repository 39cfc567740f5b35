// #/servers and #/servers/<id>: registered MCP servers, their status, logs, figures; register,
// edit, connect, disconnect, delete.
import {
  add, ago, badge, button, checkbox, clear, dangerButton, del, enc, errorBox, field, fmtMs, fmtNum, fmtTime,
  get, h, json, live, mergeSeries, parseMetrics, post, put, say, select, showError,
} from './lib.js';

const NAME_RE = /^[A-Za-z0-9_-]{1,64}$/;

async function metricsByServer() {
  try {
    const text = await get('/metrics');
    const by = new Map();
    for (const s of parseMetrics(text)) {
      if (!s.server) continue;
      if (!by.has(s.server)) by.set(s.server, []);
      by.get(s.server).push(s);
    }
    return new Map([...by].map(([k, v]) => [k, mergeSeries(v)]));
  } catch {
    return new Map();
  }
}

function figures(m) {
  if (!m || !m.count) return h('p.figures.muted', { 'data-testid': 'server-figures' }, 'No calls to this server since the gateway started.');
  return h('p.figures', { 'data-testid': 'server-figures' },
    h('span', h('b', fmtNum(m.count)), ' calls'),
    h('span', h('b', fmtNum(m.errors)), ' failed'),
    h('span', 'mean ', h('b', fmtMs((m.sum / m.count) * 1000))),
    h('span', 'p50 ≈ ', h('b', fmtMs(m.quantile(0.5)))),
    h('span', 'p95 ≈ ', h('b', fmtMs(m.quantile(0.95)))),
    h('small.muted', ' (since start, from /metrics)'));
}

function target(s) {
  const c = s.config || {};
  if (s.transport_type === 'stdio') return [c.command, ...(c.args || [])].join(' ');
  return c.url || '';
}

function connectButtons(s, after) {
  const out = [];
  if (s.status !== 'connected') {
    out.push(button(s.status === 'error' ? 'Reconnect' : 'Connect', async () => {
      let problem = null;
      try {
        await post(`/api/mcp-servers/${s.server_id}/connect`);
        say(`${s.name} connected`);
      } catch (e) {
        problem = e;
      }
      await after(problem);
    }));
  }
  if (s.status !== 'disconnected') {
    out.push(button('Disconnect', async () => {
      await post(`/api/mcp-servers/${s.server_id}/disconnect`);
      say(`${s.name} disconnected`);
      await after();
    }));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The list

export async function list(root) {
  const errors = h('div');
  const listEl = h('div.cards', { 'aria-live': 'polite', 'aria-busy': 'true' });
  const formBox = h('details.card.register', h('summary', h('h2.inline', 'Register a server')));
  root.append(
    h('div.head', h('h1', 'MCP servers'), button('Refresh', () => refresh())),
    errors, listEl);

  let servers = [];
  async function refresh(problem) {
    try {
      // No /metrics here: it grows with every vMCP x server x method, and this is the first view.
      servers = await get('/api/mcp-servers');
      clear(errors);
      if (problem) errors.append(errorBox(problem));
      // Keep the keyboard focus on the same control of the same server across the redraw.
      const active = listEl.contains(document.activeElement) ? document.activeElement : null;
      const focusServer = active && active.closest('[data-server]')?.dataset.server;
      const focusText = active && active.textContent;
      clear(listEl);
      listEl.removeAttribute('aria-busy');
      if (!servers.length) {
        listEl.append(h('p.empty', 'No MCP server is registered yet. Register one below: a local command (stdio) or a URL.'));
        formBox.open = true;
      }
      for (const s of servers) listEl.append(card(s));
      if (focusServer) {
        const c = [...listEl.querySelectorAll('[data-server]')].find((x) => x.dataset.server === focusServer);
        const target = c && ([...c.querySelectorAll('button, a')].find((b) => b.textContent === focusText) || c.querySelector('a'));
        if (target) target.focus();
      }
    } catch (e) {
      showError(e, errors);
    }
  }

  function card(s) {
    return h('article.card.server', { 'data-server': s.name, 'data-status': s.status },
      h('div.card-head',
        h('h2', h('a', { href: `#/servers/${s.server_id}` }, s.name)),
        badge(s.status),
        h('span.tag', s.transport_type)),
      s.description ? h('p', s.description) : null,
      h('p.mono.target', target(s)),
      s.status === 'auth_required' && /^https?:\/\//.test(s.authorization_url || '')
        ? h('div.alert.sign-in', 'This server asks for a sign-in: ',
          h('a.btn', { href: s.authorization_url, target: '_blank', rel: 'noopener noreferrer' }, 'Sign in'),
          ' then come back (the page refreshes by itself).')
        : null,
      s.last_error && s.status !== 'connected' && s.status !== 'auth_required'
        ? h('div.alert.error.last-error', h('strong', 'Last error: '), h('span.err-detail', s.last_error)) : null,
      h('p.muted', s.status === 'connected' && s.server_info
        ? `${s.server_info.name} ${s.server_info.version} · protocol ${s.protocol_version || '?'} · connected ${ago(s.last_connected)}`
        : `last connected: ${ago(s.last_connected)}`),
      h('div.actions',
        connectButtons(s, (e) => refresh(e)),
        h('a.btn', { href: `#/servers/${s.server_id}` }, 'Details, calls & log'),
        dangerButton('Delete', `Delete ${s.name}?`, async () => {
          await del(`/api/mcp-servers/${s.server_id}`);
          say(`${s.name} deleted`);
          await refresh();
        })));
  }

  formBox.append(serverForm(null, async (created, problem) => {
    await refresh(problem);
    if (!problem) say(`${created.name} registered`);
  }));

  await refresh();
  // The form comes once the list is known (it opens by itself when there is no server yet).
  root.append(formBox);
  let pending;
  const off = live.on((msg) => {
    if (msg.type !== 'server_status' && msg.type !== 'catalog_changed') return;
    clearTimeout(pending);
    pending = setTimeout(() => refresh(), 250);
  });
  return () => { off(); clearTimeout(pending); };
}

// ---------------------------------------------------------------------------------------------
// Register / edit form

function linesToArgs(text) {
  return text.split('\n').map((l) => l.trim()).filter((l) => l.length);
}

function pairs(text, sep, what) {
  const out = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const i = line.indexOf(sep);
    if (i <= 0) throw new Error(`${what}: "${line}" is not ${sep === '=' ? 'NAME=value' : 'Name: value'}`);
    out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return out;
}

/** The form that registers (existing = null) or edits a server; `done(server, problem)` after. */
export function serverForm(existing, done) {
  const c = existing ? existing.config || {} : {};
  const errors = h('div.form-errors');
  const name = h('input', { name: 'name', required: true, pattern: '[A-Za-z0-9_\\-]{1,64}', maxlength: 64, value: existing ? existing.name : '', autocomplete: 'off', spellcheck: 'false' });
  const description = h('input', { name: 'description', maxlength: 2000, value: existing ? existing.description : '' });
  const transport = select([['stdio', 'stdio (a local command)'], ['streamable_http', 'streamable HTTP (URL)'], ['sse', 'legacy SSE (URL)']],
    existing ? existing.transport_type : 'stdio', { name: 'transport' });
  const command = h('input', { name: 'command', value: c.command || '', autocomplete: 'off', spellcheck: 'false' });
  const args = h('textarea', { name: 'args', rows: 3, spellcheck: 'false' });
  args.value = (c.args || []).join('\n');
  const env = h('textarea', { name: 'env', rows: 2, spellcheck: 'false' });
  env.value = Object.entries(c.env || {}).map(([k, v]) => `${k}=${v}`).join('\n');
  const cwd = h('input', { name: 'cwd', value: c.cwd || '', spellcheck: 'false' });
  const url = h('input', { name: 'url', type: 'url', value: c.url || '', placeholder: 'http://127.0.0.1:3000/mcp', spellcheck: 'false' });
  const headers = h('textarea', { name: 'headers', rows: 2, spellcheck: 'false' });
  headers.value = Object.entries(c.headers || {}).map(([k, v]) => `${k}: ${v}`).join('\n');
  const timeout = h('input', { name: 'timeout', type: 'number', min: 0.001, max: 86400, step: 'any', value: c.timeout_seconds ?? '' });
  const connect = checkbox(existing ? 'Reconnect now if connected (the server applies it itself)' : 'Connect after registering', !existing);
  if (existing) connect.hidden = true;

  const stdioBox = h('div.grid2',
    field('Command', command, 'The program to start, e.g. npx or /usr/local/bin/server'),
    field('Arguments', args, 'One argument per line'),
    field('Environment', env, 'NAME=value per line, added to the gateway\'s environment'),
    field('Working directory', cwd, 'Optional'));
  const httpBox = h('div.grid2',
    field('URL', url, 'http:// or https://'),
    field('Headers', headers, 'Name: value per line, e.g. Authorization: Bearer …'));
  const sync = () => {
    const stdio = transport.value === 'stdio';
    stdioBox.hidden = !stdio;
    httpBox.hidden = stdio;
  };
  transport.addEventListener('change', sync);
  sync();

  const submit = h('button.primary', { type: 'submit' }, existing ? 'Save' : 'Register');
  const form = h('form.server-form', { novalidate: true, 'aria-label': existing ? `Edit ${existing.name}` : 'Register a server' },
    errors,
    h('div.grid2',
      field('Name', name, 'Letters, digits, - and _ (tools are exposed as name.tool)'),
      field('Description', description),
      field('Transport', transport),
      field('Timeout (seconds)', timeout, 'Optional; default 60')),
    stdioBox, httpBox, connect,
    h('div.actions', submit));

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clear(errors);
    let body;
    try {
      if (!NAME_RE.test(name.value.trim())) throw new Error('Name: 1 to 64 letters, digits, - or _');
      const config = {};
      if (transport.value === 'stdio') {
        if (!command.value.trim()) throw new Error('Command: required for stdio');
        config.command = command.value.trim();
        const a = linesToArgs(args.value);
        if (a.length) config.args = a;
        const e = pairs(env.value, '=', 'Environment');
        if (Object.keys(e).length) config.env = e;
        if (cwd.value.trim()) config.cwd = cwd.value.trim();
      } else {
        if (!url.value.trim()) throw new Error('URL: required');
        config.url = url.value.trim();
        const hd = pairs(headers.value, ':', 'Headers');
        if (Object.keys(hd).length) config.headers = hd;
      }
      if (timeout.value !== '') config.timeout_seconds = Number(timeout.value);
      for (const k of ['protocol', 'max_concurrent_calls', 'secret_keys']) if (c[k] !== undefined && existing) config[k] = c[k];
      body = { name: name.value.trim(), description: description.value, transport_type: transport.value, config };
    } catch (e) {
      errors.append(errorBox(e));
      return;
    }
    submit.disabled = true;
    try {
      const saved = existing
        ? await put(`/api/mcp-servers/${existing.server_id}`, body)
        : await post('/api/mcp-servers', body);
      let problem = null;
      if (!existing && connect.control.checked) {
        try {
          await post(`/api/mcp-servers/${saved.server_id}/connect`);
        } catch (e) {
          problem = e;
        }
      }
      if (!existing) form.reset();
      sync();
      await done(saved, problem);
    } catch (e) {
      errors.append(errorBox(e));
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

// ---------------------------------------------------------------------------------------------
// One server

export async function detail(root, id) {
  const errors = h('div');
  const body = h('div');
  root.append(h('p.crumbs', h('a', { href: '#/servers' }, '← Servers')), errors, body);
  let logTimer;

  async function render(problem) {
    let s;
    let vmcps;
    let metrics;
    try {
      [s, vmcps, metrics] = await Promise.all([
        get(`/api/mcp-servers/${enc(id)}`), get('/api/vmcps'), metricsByServer()]);
    } catch (e) {
      showError(e, errors);
      return;
    }
    clear(errors);
    if (problem) errors.append(errorBox(problem));
    const usedBy = vmcps.filter((v) => v.mcp_servers.some((m) => m.server_id === s.server_id));
    const caps = h('div', h('p.muted', s.status === 'connected' ? 'Loading…' : 'Connect the server to see what it offers.'));
    const logBox = h('pre.log', { tabindex: 0, 'aria-label': `${s.name} stderr log` }, 'Loading…');
    const focusText = body.contains(document.activeElement) ? document.activeElement.textContent : null;
    add(clear(body),
      h('div.head', h('h1', s.name, ' ', badge(s.status)),
        h('div.actions', connectButtons(s, (e) => render(e)),
          dangerButton('Delete', `Delete ${s.name}?`, async () => {
            await del(`/api/mcp-servers/${s.server_id}`);
            say(`${s.name} deleted`);
            location.hash = '#/servers';
          }))),
      s.last_error && s.status !== 'connected'
        ? h('div.alert.error.last-error', { role: 'alert' }, h('strong', 'Last error: '), h('span.err-detail', s.last_error)) : null,
      h('div.grid2',
        h('section.card', h('h2', 'Definition'),
          h('dl.kv',
            h('dt', 'Id'), h('dd.mono', s.server_id),
            h('dt', 'Description'), h('dd', s.description || '–'),
            h('dt', 'Transport'), h('dd', s.transport_type),
            h('dt', s.transport_type === 'stdio' ? 'Command' : 'URL'), h('dd.mono', target(s)),
            h('dt', 'Protocol'), h('dd', s.protocol_version || '–'),
            h('dt', 'Server info'), h('dd', s.server_info ? `${s.server_info.name} ${s.server_info.version}` : '–'),
            h('dt', 'Last connected'), h('dd', s.last_connected ? `${fmtTime(s.last_connected, true)} (${ago(s.last_connected)})` : 'never'),
            h('dt', 'Used by'), h('dd', usedBy.length ? usedBy.map((v, i) => [i ? ', ' : '', h('a', { href: `#/vmcps/${v.vmcp_id}` }, v.name)]) : 'no vMCP')),
          h('details', h('summary', 'Config (JSON)'), h('pre.code', json(s.config)))),
        h('section.card', h('h2', 'Calls'), figures(metrics.get(s.server_id)), h('h2', 'Capabilities'), caps)),
      h('section.card', h('div.head', h('h2', 'Log (stderr, last 500 lines)'), button('Refresh log', () => loadLog())), logBox),
      h('details.card.edit', h('summary', h('h2.inline', 'Edit')), serverForm(s, async (saved) => {
        say(`${saved.name} saved`);
        await render();
      })));

    async function loadLog() {
      try {
        const logs = await get(`/api/mcp-servers/${s.server_id}/logs`);
        logBox.textContent = logs.lines.length
          ? logs.lines.map((l) => `${fmtTime(l.at)}  ${l.text}`).join('\n')
          : '(nothing yet: the server has written nothing on stderr)';
        logBox.scrollTop = logBox.scrollHeight;
      } catch (e) {
        clear(logBox).append(errorBox(e));
      }
    }
    if (focusText !== null) {
      const again = [...body.querySelectorAll('button, a')].find((b) => b.textContent === focusText) || body.querySelector('h1');
      if (again) { if (again.matches('h1')) again.tabIndex = -1; again.focus(); }
    }
    loadLog();
    if (s.status === 'connected') {
      // Connecting a connected server answers at once with its capabilities (no other read exists).
      post(`/api/mcp-servers/${s.server_id}/connect`).then((r) => {
        const c = r.capabilities;
        const group = (title, items) => h('div', h('h3', `${title} (${items.length})`),
          items.length ? h('ul.chips', items.map((i) => h('li.mono', i))) : h('p.muted', 'none'));
        clear(caps).append(group('Tools', c.tools), group('Resources', c.resources),
          group('Resource templates', c.resource_templates), group('Prompts', c.prompts));
      }).catch((e) => clear(caps).append(errorBox(e)));
    }
  }

  await render();
  let pending;
  const off = live.on((msg) => {
    if ((msg.type === 'server_status' || msg.type === 'catalog_changed') && msg.server_id === id) {
      clearTimeout(pending);
      // Not while the definition is being edited: the form would be lost.
      pending = setTimeout(() => { if (!body.querySelector('details.edit[open]')) render(); }, 250);
    }
  });
  return () => { off(); clearTimeout(pending); clearTimeout(logTimer); };
}
