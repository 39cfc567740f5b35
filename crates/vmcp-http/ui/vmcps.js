// #/vmcps and #/vmcps/<id>[/tab]: vMCPs, their members, settings, tools (with customization and
// a "try it" form), resources, prompts, and how to connect a client.
import {
  add, badge, button, checkbox, clear, copyButton, dangerButton, del, enc, errorBox, field, fmtMs, get, h,
  json, live, post, put, say, select, showError, token,
} from './lib.js';
import { schemaForm } from './schemaform.js';

const TABS = [['overview', 'Overview'], ['tools', 'Tools'], ['resources', 'Resources'], ['prompts', 'Prompts'], ['connect', 'Add to your client']];

/** The body of a PUT: the vMCP as GET returned it, minus what only answers carry. */
function bodyOf(v) {
  const b = {
    name: v.name,
    description: v.description,
    mcp_servers: v.mcp_servers.map((m) => ({ server_id: m.server_id, priority: m.priority })),
    active_config: v.active_config || {},
    naming: v.naming,
    tools: v.tools || {},
    mcp_substitution: !!v.mcp_substitution,
    tool_search: v.tool_search || 'off',
  };
  if (v.secret_keys) b.secret_keys = v.secret_keys;
  return b;
}

function short(f) {
  f.classList.add('short');
  return f;
}

function mcpUrl(v, kind = 'mcp') {
  return `${location.origin}/vmcp/${enc(v.name)}/${kind}`;
}

// ---------------------------------------------------------------------------------------------
// The list

export async function list(root) {
  const errors = h('div');
  const listEl = h('div.cards');
  const createBox = h('details.card', h('summary', h('h2.inline', 'Create a vMCP')));
  const importBox = h('details.card', h('summary', h('h2.inline', 'Import a vMCP document')));
  root.append(h('div.head', h('h1', 'vMCPs')), errors, listEl);

  let vmcps;
  let servers;
  try {
    [vmcps, servers] = await Promise.all([get('/api/vmcps'), get('/api/mcp-servers')]);
  } catch (e) {
    showError(e, errors);
    return null;
  }
  const byId = new Map(servers.map((s) => [s.server_id, s]));
  root.append(createBox, importBox);
  if (!vmcps.length) {
    listEl.append(h('p.empty', 'No vMCP yet. A vMCP groups MCP servers into one MCP server that clients connect to.'));
    createBox.open = true;
  }
  for (const v of vmcps) {
    const custom = Object.keys(v.tools || {}).length;
    listEl.append(h('article.card.vmcp', { 'data-vmcp': v.name },
      h('div.card-head', h('h2', h('a', { href: `#/vmcps/${v.vmcp_id}` }, v.name))),
      v.description ? h('p', v.description) : null,
      h('ul.members', v.mcp_servers.map((m) => {
        const s = byId.get(m.server_id);
        return h('li', h('span.prio', { title: 'priority' }, m.priority), ' ', h('a', { href: `#/servers/${m.server_id}` }, m.name), ' ', badge(s && s.status));
      })),
      v.mcp_servers.length ? null : h('p.muted', 'No member servers'),
      h('p.muted', custom ? `${custom} tool customization${custom > 1 ? 's' : ''}` : 'No tool customization'),
      h('p.mono.small', mcpUrl(v)),
      h('div.actions',
        h('a.btn', { href: `#/vmcps/${v.vmcp_id}/tools` }, 'Tools'),
        h('a.btn', { href: `#/vmcps/${v.vmcp_id}/connect` }, 'Add to your client'))));
  }

  // Create
  const cerr = h('div.form-errors');
  const name = h('input', { name: 'name', required: true, maxlength: 100, autocomplete: 'off' });
  const description = h('textarea', { name: 'description', rows: 2, maxlength: 2000 });
  const rows = servers.map((s, i) => {
    const include = h('input', { type: 'checkbox', id: `m-${s.server_id}`, 'data-server': s.name });
    const prio = h('input', { type: 'number', step: 1, value: i + 1, id: `p-${s.server_id}`, 'aria-label': `Priority of ${s.name}` });
    return { s, include, prio, row: h('tr', h('td', include, ' ', h('label', { for: include.id }, s.name)), h('td', badge(s.status)), h('td', prio)) };
  });
  const submit = h('button.primary', { type: 'submit' }, 'Create');
  const form = h('form', { novalidate: true, 'aria-label': 'Create a vMCP' }, cerr,
    field('Name', name, '1 to 100 characters, no /'),
    field('Description', description),
    h('fieldset', h('legend', 'Member servers (a smaller priority number wins name collisions and comes first)'),
      servers.length
        ? h('div.table-wrap', h('table.members-table', h('thead', h('tr', h('th', 'Server'), h('th', 'Status'), h('th', 'Priority'))), h('tbody', rows.map((r) => r.row))))
        : h('p.muted', 'No server registered yet: ', h('a', { href: '#/servers' }, 'register one first'), '.')),
    h('div.actions', submit));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clear(cerr);
    const body = {
      name: name.value.trim(),
      description: description.value,
      mcp_servers: rows.filter((r) => r.include.checked).map((r) => ({ server_id: r.s.server_id, priority: Number(r.prio.value) || undefined })),
    };
    if (!body.name) {
      cerr.append(errorBox(new Error('Name: required')));
      name.focus();
      return;
    }
    submit.disabled = true;
    try {
      const v = await post('/api/vmcps', body);
      say(`${v.name} created`);
      location.hash = `#/vmcps/${v.vmcp_id}`;
    } catch (e) {
      cerr.append(errorBox(e));
    } finally {
      submit.disabled = false;
    }
  });
  createBox.append(form);

  // Import
  const ierr = h('div.form-errors');
  const doc = h('textarea.mono', { rows: 6, spellcheck: 'false' });
  const iform = h('form', { novalidate: true, 'aria-label': 'Import a vMCP' }, ierr,
    field('Document (JSON, as exported)', doc),
    h('div.actions', h('button.primary', { type: 'submit' }, 'Import')));
  iform.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clear(ierr);
    let body;
    try { body = JSON.parse(doc.value); } catch (e) { ierr.append(errorBox(new Error(`Not valid JSON: ${e.message}`))); return; }
    try {
      const v = await post('/api/vmcps/import', body);
      say(`${v.name} imported`);
      location.hash = `#/vmcps/${v.vmcp_id}`;
    } catch (e) {
      ierr.append(errorBox(e));
    }
  });
  importBox.append(iform);
  return null;
}

// ---------------------------------------------------------------------------------------------
// One vMCP

export async function detail(root, id, tab = 'overview') {
  const errors = h('div');
  const body = h('div');
  root.append(h('p.crumbs', h('a', { href: '#/vmcps' }, '← vMCPs')), errors, body);
  let v;
  let servers;
  try {
    [v, servers] = await Promise.all([get(`/api/vmcps/${enc(id)}`), get('/api/mcp-servers')]);
  } catch (e) {
    showError(e, errors);
    return null;
  }
  const panel = h('div.panel', { id: 'panel', role: 'region', 'aria-label': TABS.find((t) => t[0] === tab)[1] });
  add(body,
    h('div.head', h('h1', v.name)),
    v.description ? h('p.lead', v.description) : null,
    (v.warnings || []).length ? h('div.alert.warn', h('strong', 'Warnings'), h('ul', v.warnings.map((w) => h('li', w)))) : null,
    h('nav.tabs', { 'aria-label': `${v.name} sections` },
      TABS.map(([k, label]) => h('a', { href: `#/vmcps/${v.vmcp_id}/${k}`, 'aria-current': k === tab ? 'page' : null }, label))),
    panel);
  const views = { overview, tools, resources, prompts, connect };
  return views[tab](panel, v, servers);
}

// Overview: members, settings, export, delete ------------------------------------------------

async function overview(panel, v, servers) {
  const byId = new Map(servers.map((s) => [s.server_id, s]));
  const errors = h('div.form-errors');
  const members = v.mcp_servers.map((m) => ({ ...m }));
  const tbody = h('tbody');
  const addSel = h('select', { 'aria-label': 'Server to add' });
  const addPrio = h('input', { type: 'number', step: 1 });
  const addBtn = h('button', { type: 'button' }, 'Add');

  function drawMembers() {
    clear(tbody);
    for (const m of members) {
      const s = byId.get(m.server_id);
      const prio = h('input', { type: 'number', step: 1, value: m.priority, 'aria-label': `Priority of ${m.name}` });
      prio.addEventListener('input', () => { m.priority = Number(prio.value); });
      tbody.append(h('tr',
        h('td', h('a', { href: `#/servers/${m.server_id}` }, m.name)),
        h('td', badge(s && s.status), s && s.last_error && s.status === 'error' ? h('small.err-detail.block', s.last_error) : null),
        h('td', prio),
        h('td', h('button.small', { type: 'button', 'aria-label': `Remove ${m.name}`, onclick: () => { members.splice(members.indexOf(m), 1); drawMembers(); } }, 'Remove'))));
    }
    if (!members.length) tbody.append(h('tr', h('td', { colspan: 4 }, h('span.muted', 'No member servers'))));
    const others = servers.filter((s) => !members.some((m) => m.server_id === s.server_id));
    clear(addSel).append(...others.map((s) => h('option', { value: s.server_id }, s.name)));
    if (!others.length) addSel.append(h('option', { value: '' }, servers.length ? '(every server is a member)' : '(no server registered)'));
    addSel.disabled = !others.length;
    addBtn.disabled = !others.length;
    addPrio.value = members.reduce((a, m) => Math.max(a, m.priority || 0), 0) + 1;
  }
  addBtn.addEventListener('click', () => {
    const s = byId.get(addSel.value);
    if (!s) return;
    members.push({ server_id: s.server_id, name: s.name, priority: Number(addPrio.value) || members.length + 1 });
    drawMembers();
    addSel.focus();
  });
  drawMembers();

  const name = h('input', { value: v.name, maxlength: 100, required: true });
  const description = h('textarea', { rows: 2, maxlength: 2000 });
  description.value = v.description || '';
  const prefix = checkbox('Prefix tool and prompt names with the server name', v.naming ? v.naming.prefix !== false : true);
  const sep = select(['.', '_', '__', '-'], v.naming ? v.naming.separator : '.');
  if (v.naming && ![...sep.options].some((o) => o.value === v.naming.separator)) sep.append(h('option', { value: v.naming.separator, selected: true }, v.naming.separator));
  const subst = checkbox('Substitute @config:/@param:/@tool(..) patterns in MCP clients\' arguments (REST callers always get it)', !!v.mcp_substitution);
  const toolSearch = select(['off', 'search', 'both'], v.tool_search || 'off');
  const config = h('textarea.mono', { rows: 5, spellcheck: 'false' });
  config.value = json(v.active_config || {});
  const secretKeys = h('input', { value: (v.secret_keys || []).join(', '), spellcheck: 'false' });

  const save = button('Save', async () => {
    clear(errors);
    const b = bodyOf(v);
    b.name = name.value.trim();
    b.description = description.value;
    b.mcp_servers = members.map((m) => ({ server_id: m.server_id, priority: m.priority }));
    b.naming = { prefix: prefix.control.checked, separator: sep.value };
    b.mcp_substitution = subst.control.checked;
    b.tool_search = toolSearch.value;
    try {
      b.active_config = JSON.parse(config.value || '{}');
    } catch (e) {
      errors.append(errorBox(new Error(`active_config: not valid JSON (${e.message})`)));
      return;
    }
    b.secret_keys = secretKeys.value.split(',').map((x) => x.trim()).filter(Boolean);
    try {
      const saved = await put(`/api/vmcps/${v.vmcp_id}`, b);
      say(`${saved.name} saved`);
      window.dispatchEvent(new HashChangeEvent('hashchange'));
    } catch (e) {
      errors.append(errorBox(e));
    }
  }, { class: 'primary' });

  add(panel, 
    h('section.card', h('h2', 'Members'),
      h('div.table-wrap', h('table.members-table', h('thead', h('tr', h('th', 'Server'), h('th', 'Status'), h('th', 'Priority'), h('th', h('span.sr-only', 'Actions')))), tbody)),
      h('div.inline-form', field('Add a server', addSel), short(field('Priority', addPrio)),
        addBtn),
      h('p.hint', 'A smaller priority number comes first and wins name collisions. Changes apply when you save.')),
    h('section.card', h('h2', 'Settings'),
      h('div.grid2', field('Name', name), field('Description', description)),
      h('div.grid2', h('div', prefix, field('Separator', sep, 'Between server and tool name, e.g. github.create_issue')), h('div', subst)),
      field('Tool search', toolSearch, 'off: MCP clients get every tool; search: only search_tools and call_tool; both: the two, then every tool'),
      field('active_config (JSON object)', config, 'Read by @config:KEY and @param:NAME; secret-looking values are shown as ******** and kept when sent back'),
      field('Secret keys', secretKeys, 'Comma-separated active_config keys to treat as secret')),
    errors,
    h('div.actions.sticky', save,
      button('Export JSON', async () => {
        const doc = await get(`/api/vmcps/${v.vmcp_id}/export`);
        const a = h('a', { href: URL.createObjectURL(new Blob([json(doc)], { type: 'application/json' })), download: `${v.name}.vmcp.json` });
        document.body.append(a);
        a.click();
        a.remove();
      }),
      dangerButton('Delete vMCP', `Delete ${v.name}?`, async () => {
        await del(`/api/vmcps/${v.vmcp_id}`);
        say(`${v.name} deleted`);
        location.hash = '#/vmcps';
      })));
  return null;
}

// Tools --------------------------------------------------------------------------------------

/** Maps exposed tool names to their `server.tool` customization keys. */
async function keyResolver(v) {
  const byName = new Map();
  for (const [k, c] of Object.entries(v.tools || {})) if (c && c.name) byName.set(c.name, k);
  const naming = v.naming || { prefix: true, separator: '.' };
  const members = [...v.mcp_servers].sort((a, b) => b.name.length - a.name.length);
  let caps = null;
  if (naming.prefix === false) {
    // No prefix: which member offers a name is only known from the members' capabilities
    // (connect answers at once, with them, for connected servers).
    caps = new Map();
    await Promise.all(v.mcp_servers.map(async (m) => {
      try {
        const r = await post(`/api/mcp-servers/${m.server_id}/connect`);
        caps.set(m.server_id, new Set(r.capabilities.tools));
      } catch { /* unavailable */ }
    }));
  }
  return (exposed) => {
    if (byName.has(exposed)) return byName.get(exposed);
    if (naming.prefix !== false) {
      for (const m of members) {
        const p = m.name + naming.separator;
        if (exposed.startsWith(p)) return `${m.name}.${exposed.slice(p.length)}`;
      }
      return null;
    }
    for (const m of v.mcp_servers) if (caps.get(m.server_id)?.has(exposed)) return `${m.name}.${exposed}`;
    return null;
  };
}

function unavailableBox(list) {
  if (!list || !list.length) return null;
  return h('div.alert.warn', h('strong', 'Some member servers could not be listed'),
    h('ul', list.map((u) => h('li', h('a', { href: `#/servers/${u.server_id}` }, u.name), ` (${u.status}): `, h('span.err-detail', u.error)))));
}

function hiddenBox(list, what) {
  if (!list || !list.length) return null;
  return h('details.card', h('summary', `${list.length} ${what} shadowed by a server with better priority`),
    h('ul', list.map((x) => h('li', h('code', x.name), ` of ${x.server}, served by ${x.shadowed_by}`))));
}

/** A tool result: content blocks, structuredContent, isError. */
export function resultView(r, ms) {
  const out = h('div.result', { 'data-testid': 'tool-result', 'data-is-error': r && r.isError ? 'true' : 'false' });
  if (!r || typeof r !== 'object') {
    out.append(h('pre.code', json(r)));
    return out;
  }
  out.append(h('p.result-head', r.isError ? h('span.badge.st-error', 'isError: true') : h('span.badge.st-connected', 'ok'),
    ms !== undefined ? h('span.muted', ` answered in ${fmtMs(ms)}`) : null));
  for (const c of r.content || []) {
    if (c.type === 'text') out.append(h('pre.result-text', c.text));
    else if (c.type === 'image') out.append(h('img.result-img', { src: `data:${c.mimeType};base64,${c.data}`, alt: `image result (${c.mimeType})` }));
    else if (c.type === 'audio') out.append(h('p.muted', `audio (${c.mimeType}), ${Math.round((c.data || '').length * 0.75)} bytes`));
    else if (c.type === 'resource') {
      const res = c.resource || {};
      out.append(h('div.block', h('p.mono', `resource ${res.uri || ''} ${res.mimeType || ''}`),
        res.text !== undefined ? h('pre.result-text', res.text) : h('p.muted', `binary, ${Math.round((res.blob || '').length * 0.75)} bytes`)));
    } else if (c.type === 'resource_link') out.append(h('p.mono', `link: ${c.uri}${c.name ? ` (${c.name})` : ''}`));
    else out.append(h('pre.code', json(c)));
  }
  if (r.structuredContent !== undefined && r.structuredContent !== null) {
    out.append(h('h4', 'structuredContent'), h('pre.code', { 'data-testid': 'structured' }, json(r.structuredContent)));
  }
  out.append(h('details', h('summary', 'Raw result'), h('pre.code', json(r))));
  return out;
}

function customizeForm(v, key, current, reload) {
  const c = (v.tools || {})[key] || {};
  const errors = h('div.form-errors');
  const hidden = checkbox('Hide this tool (not listed, not callable)', !!c.hidden);
  const name = h('input', { value: c.name || '', placeholder: current, pattern: '[A-Za-z0-9_.\\-]{1,128}', spellcheck: 'false' });
  const description = h('textarea', { rows: 2, placeholder: 'Keep the server\'s description' });
  description.value = c.description || '';
  const fixed = h('textarea.mono', { rows: 3, spellcheck: 'false', placeholder: '{"repo": "@config:default_repo"}' });
  fixed.value = c.fixed && Object.keys(c.fixed).length ? json(c.fixed) : '';
  const defaults = h('textarea.mono', { rows: 3, spellcheck: 'false', placeholder: '{"limit": 20}' });
  defaults.value = c.defaults && Object.keys(c.defaults).length ? json(c.defaults) : '';

  async function write(custom) {
    const b = bodyOf(v);
    b.tools = { ...(v.tools || {}) };
    if (custom) b.tools[key] = custom;
    else delete b.tools[key];
    const saved = await put(`/api/vmcps/${v.vmcp_id}`, b);
    say(`Tool ${key} ${custom ? 'customized' : 'reset'}`);
    if ((saved.warnings || []).length) say(`Saved, with warnings: ${saved.warnings.join('; ')}`);
    await reload();
  }
  const form = h('form.customize', { novalidate: true, 'aria-label': `Customize ${key}` },
    h('p.muted', 'Key: ', h('code', key)),
    hidden,
    h('div.grid2', field('Exposed name', name, 'Empty: the default name'), field('Description', description)),
    h('div.grid2',
      field('Fixed arguments (JSON)', fixed, 'Always sent; hidden from clients'),
      field('Default arguments (JSON)', defaults, 'Sent when the caller omits them')),
    errors,
    h('div.actions', h('button.primary', { type: 'submit' }, 'Save customization'),
      v.tools && v.tools[key] ? button('Reset', () => write(null).catch((e) => clear(errors).append(errorBox(e)))) : null));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clear(errors);
    const custom = {};
    try {
      if (hidden.control.checked) custom.hidden = true;
      if (name.value.trim()) custom.name = name.value.trim();
      if (description.value.trim()) custom.description = description.value;
      for (const [k, el] of [['fixed', fixed], ['defaults', defaults]]) {
        if (!el.value.trim()) continue;
        let o;
        try { o = JSON.parse(el.value); } catch (e) { throw new Error(`${k}: not valid JSON (${e.message})`); }
        if (!o || typeof o !== 'object' || Array.isArray(o)) throw new Error(`${k}: must be a JSON object`);
        custom[k] = o;
      }
      await write(Object.keys(custom).length ? custom : null);
    } catch (e) {
      errors.append(errorBox(e));
    }
  });
  return form;
}

async function tools(panel, v) {
  const errors = h('div');
  const listEl = h('div.tools', { 'aria-busy': 'true' });
  const filter = h('input', { type: 'search', placeholder: 'Filter by name or description', autocomplete: 'off' });
  add(panel, errors, h('div.toolbar', field('Filter tools', filter), h('span.count.muted')), listEl);
  const open = new Set();

  async function reload() {
    try {
      v = await get(`/api/vmcps/${v.vmcp_id}`);
      await draw();
    } catch (e) {
      showError(e, errors);
    }
  }

  async function draw() {
    for (const d of listEl.querySelectorAll('details.tool[open]')) open.add(d.dataset.tool);
    let list;
    let keyOf;
    try {
      [list, keyOf] = await Promise.all([get(`/api/vmcps/${v.vmcp_id}/tools`), keyResolver(v)]);
    } catch (e) {
      listEl.removeAttribute('aria-busy');
      showError(e, errors);
      return;
    }
    clear(errors);
    clear(listEl).removeAttribute('aria-busy');
    listEl.append(unavailableBox(list.unavailable) || '');
    if (!list.tools.length) listEl.append(h('p.empty', v.mcp_servers.length ? 'No tools: the member servers offer none, or could not be listed.' : 'No tools: add member servers in the Overview.'));
    for (const t of list.tools) {
      const key = keyOf(t.name);
      const custom = key && v.tools && v.tools[key];
      const result = h('div.result-box', { 'aria-live': 'polite' });
      const d = h('details.tool.card', { 'data-tool': t.name, open: open.has(t.name) },
        h('summary',
          h('code.tool-name', t.name),
          t.title ? h('span.tool-title', ` ${t.title}`) : null,
          custom ? h('span.tag', 'customized') : null,
          t.annotations && t.annotations.readOnlyHint ? h('span.tag', 'read-only') : null,
          t.annotations && t.annotations.destructiveHint ? h('span.tag.danger-tag', 'destructive') : null,
          t.description ? h('span.tool-desc', t.description) : null));
      let built = false;
      const build = () => {
        if (built) return;
        built = true;
        d.append(
          h('section', h('h3', 'Try it'),
            schemaForm(t.inputSchema, async (args, params) => {
              clear(result);
              const started = performance.now();
              const body = { name: t.name, arguments: args };
              if (params) body.params = params;
              const r = await post(`/api/vmcps/${v.vmcp_id}/tools/call`, body);
              result.append(resultView(r, performance.now() - started));
            }), result),
          key ? h('details.sub', h('summary', 'Customize (hide, rename, describe, fixed and default arguments)'), customizeForm(v, key, t.name, reload))
            : h('p.muted', 'Which server offers this tool is not known here, so it cannot be customized from the dashboard.'),
          h('details.sub', h('summary', 'Definition (JSON)'), h('pre.code', json(t))));
      };
      d.addEventListener('toggle', () => { if (d.open) build(); });
      if (d.open) build();
      listEl.append(d);
    }
    const hiddenByUs = Object.entries(v.tools || {}).filter(([, c]) => c && c.hidden);
    if (hiddenByUs.length) {
      listEl.append(h('section.card', h('h2', 'Hidden by this vMCP'),
        h('ul.plain', hiddenByUs.map(([k]) => h('li', h('code', k), ' ', button('Unhide', async () => {
          const b = bodyOf(v);
          b.tools = { ...v.tools, [k]: { ...v.tools[k] } };
          delete b.tools[k].hidden;
          if (!Object.keys(b.tools[k]).length) delete b.tools[k];
          await put(`/api/vmcps/${v.vmcp_id}`, b);
          say(`${k} is listed again`);
          await reload();
        }, { class: 'small' }))))));
    }
    listEl.append(hiddenBox(list.hidden, 'tools') || '');
    applyFilter();
  }

  function applyFilter() {
    const q = filter.value.trim().toLowerCase();
    let n = 0;
    const all = listEl.querySelectorAll('details.tool');
    for (const d of all) {
      const show = !q || d.querySelector('summary').textContent.toLowerCase().includes(q);
      d.hidden = !show;
      if (show) n++;
    }
    panel.querySelector('.count').textContent = `${n} of ${all.length} tools`;
  }
  filter.addEventListener('input', applyFilter);
  await draw();
  let pending;
  const off = live.on((msg) => {
    if (msg.type === 'catalog_changed' && v.mcp_servers.some((m) => m.server_id === msg.server_id)) {
      clearTimeout(pending);
      // Redraw unless a form is being used.
      pending = setTimeout(() => { if (!listEl.contains(document.activeElement)) draw(); }, 500);
    }
  });
  return () => { off(); clearTimeout(pending); };
}

// Resources ----------------------------------------------------------------------------------

function contentsView(r) {
  const out = h('div.result', { 'data-testid': 'resource-result' });
  for (const c of r.contents || []) {
    out.append(h('p.mono', `${c.uri || ''} ${c.mimeType || ''}`),
      c.text !== undefined ? h('pre.result-text', c.text)
        : (c.mimeType || '').startsWith('image/') ? h('img.result-img', { src: `data:${c.mimeType};base64,${c.blob}`, alt: c.uri })
          : h('p.muted', `binary, ${Math.round((c.blob || '').length * 0.75)} bytes`));
  }
  return out;
}

async function resources(panel, v) {
  let list;
  try {
    list = await get(`/api/vmcps/${v.vmcp_id}/resources`);
  } catch (e) {
    showError(e, panel);
    return null;
  }
  const read = async (uri, out) => {
    clear(out);
    try {
      out.append(contentsView(await post(`/api/vmcps/${v.vmcp_id}/resources/read`, { uri })));
    } catch (e) {
      out.append(errorBox(e));
    }
  };
  add(panel, unavailableBox(list.unavailable) || '',
    h('section', h('h2', `Resources (${list.resources.length})`),
      list.resources.length ? null : h('p.muted', 'No resources.'),
      list.resources.map((r) => {
        const out = h('div', { 'aria-live': 'polite' });
        return h('details.tool.card', h('summary', h('code', r.uri), r.name ? ` ${r.name}` : '', r.mimeType ? h('span.tag', r.mimeType) : null),
          r.description ? h('p', r.description) : null,
          h('div.actions', button('Read', () => read(r.uri, out))), out);
      })),
    h('section', h('h2', `Resource templates (${list.resourceTemplates.length})`),
      list.resourceTemplates.length ? null : h('p.muted', 'No resource templates.'),
      list.resourceTemplates.map((t) => {
        const out = h('div', { 'aria-live': 'polite' });
        const uri = h('input', { value: t.uriTemplate, spellcheck: 'false' });
        const form = h('form.inline-form', { novalidate: true }, field('URI', uri, 'Fill in the {placeholders}'), h('button', { type: 'submit' }, 'Read'));
        form.addEventListener('submit', (ev) => { ev.preventDefault(); read(uri.value.trim(), out); });
        return h('details.tool.card', h('summary', h('code', t.uriTemplate), t.name ? ` ${t.name}` : ''), t.description ? h('p', t.description) : null, form, out);
      })),
    hiddenBox(list.hidden, 'resources') || '');
  return null;
}

// Prompts ------------------------------------------------------------------------------------

async function prompts(panel, v) {
  let list;
  try {
    list = await get(`/api/vmcps/${v.vmcp_id}/prompts`);
  } catch (e) {
    showError(e, panel);
    return null;
  }
  add(panel, unavailableBox(list.unavailable) || '',
    h('h2', `Prompts (${list.prompts.length})`),
    list.prompts.length ? null : h('p.muted', 'No prompts.'),
    list.prompts.map((p) => {
      const out = h('div', { 'aria-live': 'polite' });
      const schema = { type: 'object', properties: {}, required: [] };
      for (const a of p.arguments || []) {
        schema.properties[a.name] = { type: 'string', description: a.description };
        if (a.required) schema.required.push(a.name);
      }
      const form = schemaForm(schema, async (args, params) => {
        clear(out);
        const body = { name: p.name, arguments: args };
        if (params) body.params = params;
        const r = await post(`/api/vmcps/${v.vmcp_id}/prompts/get`, body);
        out.append(h('div.result', { 'data-testid': 'prompt-result' },
          r.description ? h('p', r.description) : null,
          (r.messages || []).map((m) => h('div.block', h('strong', m.role), m.content && m.content.type === 'text' ? h('pre.result-text', m.content.text) : h('pre.code', json(m.content))))));
      }, 'Get prompt');
      return h('details.tool.card', h('summary', h('code', p.name), p.description ? h('span.tool-desc', p.description) : null), form, out);
    }),
    hiddenBox(list.hidden, 'prompts') || '');
  return null;
}

// Connect ------------------------------------------------------------------------------------

function snippet(title, where, text, note) {
  return h('section.card.snippet', h('h3', title), where ? h('p.muted', where) : null,
    h('pre.code', { tabindex: 0 }, text), note ? h('p.hint', note) : null,
    h('div.actions', copyButton(() => text, `Copy ${title}`)));
}

async function connect(panel, v) {
  const url = mcpUrl(v);
  const key = v.name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'vmcp';
  const auth = token.get() ? 'Bearer YOUR_VMCP_TOKEN' : null;
  const headers = auth ? { Authorization: auth } : undefined;
  const bridgeArgs = ['bridge', url, ...(auth ? ['--header', `Authorization: ${auth}`] : [])];
  const remoteArgs = ['-y', 'mcp-remote', url, ...(auth ? ['--header', `Authorization: ${auth}`] : [])];
  const j = (o) => JSON.stringify(o, null, 2);
  add(panel, 
    h('section.card', h('h2', 'MCP endpoint'),
      h('dl.kv',
        h('dt', 'Streamable HTTP'), h('dd', h('code.url', { 'data-testid': 'mcp-url' }, url), ' ', copyButton(() => url, 'Copy URL')),
        h('dt', 'Legacy SSE'), h('dd', h('code.url', mcpUrl(v, 'sse'))),
        h('dt', 'By id'), h('dd', h('code.url', `${location.origin}/vmcp/${v.vmcp_id}/mcp`))),
      auth ? h('p.hint', 'This server asks for a token: replace YOUR_VMCP_TOKEN with one of its API tokens.') : null),
    h('div.snippets',
      snippet('Claude Desktop (vmcp bridge)', 'claude_desktop_config.json: the vmcp binary bridges stdio to the endpoint', j({ mcpServers: { [key]: { command: 'vmcp', args: bridgeArgs } } }), 'Use the full path of the vmcp binary if it is not on the PATH Claude Desktop sees.'),
      snippet('Claude Desktop (mcp-remote)', 'claude_desktop_config.json, with Node installed', j({ mcpServers: { [key]: { command: 'npx', args: remoteArgs } } })),
      snippet('Cursor', '~/.cursor/mcp.json (or .cursor/mcp.json in a project)', j({ mcpServers: { [key]: headers ? { url, headers } : { url } } })),
      snippet('VS Code', '.vscode/mcp.json', j({ servers: { [key]: headers ? { type: 'http', url, headers } : { type: 'http', url } } })),
      snippet('Claude Code', 'a shell', `claude mcp add --transport http ${key} ${url}${auth ? ` --header "Authorization: ${auth}"` : ''}`),
      snippet('Bridge (any stdio client)', 'a shell: reads MCP on stdin, writes answers on stdout', `vmcp ${bridgeArgs.map((a) => (/[\s"]/.test(a) ? JSON.stringify(a) : a)).join(' ')}`)));
  return null;
}
