// Shared helpers of the dashboard: DOM building, the API client (token, errors), status
// messages, the live /ws connection, formatting. No framework: plain DOM.

const TOKEN_KEY = 'vmcp.token';

// ---------------------------------------------------------------------------------------------
// DOM

/** h('div.card#x', {attrs}, ...children): an element. Text children are text nodes (never HTML). */
export function h(spec, attrs, ...children) {
  const m = /^([a-z0-9]+)?((?:[.#][\w-]+)*)$/i.exec(spec);
  const el = document.createElement((m && m[1]) || 'div');
  if (m && m[2]) {
    for (const part of m[2].match(/[.#][\w-]+/g)) {
      if (part[0] === '.') el.classList.add(part.slice(1));
      else el.id = part.slice(1);
    }
  }
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'value') el.value = v;
    else if (k === 'checked' || k === 'selected' || k === 'disabled' || k === 'hidden' || k === 'open') el[k] = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

/** Appends children to el like h() does: null, undefined and false are skipped, arrays flattened. */
export function add(el, ...children) {
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** An SVG element with attributes. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  append(el, children);
  return el;
}

let uid = 0;
/** A fresh id for label/input pairs. */
export const nextId = (prefix = 'f') => `${prefix}-${++uid}`;

/** A labelled field: label + control (+ hint). Returns the wrapper; the control is `.control`. */
export function field(label, control, hint) {
  if (!control.id) control.id = nextId();
  const wrap = h('div.field', h('label', { for: control.id }, label), control);
  if (hint) {
    const hid = nextId('hint');
    control.setAttribute('aria-describedby', hid);
    wrap.append(h('small.hint', { id: hid }, hint));
  }
  wrap.control = control;
  return wrap;
}

/** A checkbox with its label after it. */
export function checkbox(label, checked, attrs = {}) {
  const input = h('input', { type: 'checkbox', id: nextId(), checked, ...attrs });
  const wrap = h('div.check', input, h('label', { for: input.id }, label));
  wrap.control = input;
  return wrap;
}

export function select(options, value, attrs = {}) {
  return h('select', attrs, options.map((o) => {
    const [v, label] = Array.isArray(o) ? o : [o, o];
    return h('option', { value: v, selected: v === value }, label);
  }));
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

/** A button that runs an async action, disabled meanwhile; its errors go to the status line. */
export function button(label, action, attrs = {}) {
  const b = h('button', { type: 'button', ...attrs }, label);
  b.addEventListener('click', async () => {
    if (b.disabled) return;
    b.disabled = true;
    b.setAttribute('aria-busy', 'true');
    try {
      await action(b);
    } catch (e) {
      showError(e);
    } finally {
      b.disabled = false;
      b.removeAttribute('aria-busy');
    }
  });
  return b;
}

/** A button that asks "sure?" in place before acting (no window.confirm). */
export function dangerButton(label, confirmLabel, action) {
  let armed = false;
  let timer;
  const b = button(label, async () => {
    if (!armed) {
      armed = true;
      b.textContent = confirmLabel;
      b.classList.add('armed');
      timer = setTimeout(() => { armed = false; b.textContent = label; b.classList.remove('armed'); }, 5000);
      return;
    }
    clearTimeout(timer);
    armed = false;
    b.textContent = label;
    b.classList.remove('armed');
    await action();
  }, { class: 'danger' });
  return b;
}

// ---------------------------------------------------------------------------------------------
// Errors and status messages

export class ApiError extends Error {
  constructor(status, error, detail) {
    super(detail ? `${error}: ${detail}` : error);
    this.status = status;
    this.error = error;
    this.detail = detail || '';
  }
}

/** An error box showing the API's own words: `error` and `detail`. */
export function errorBox(e) {
  if (!(e instanceof ApiError)) return h('div.alert.error', { role: 'alert' }, h('strong.err-title', String((e && e.message) || e)));
  const err = e;
  return h('div.alert.error', { role: 'alert' },
    h('strong.err-title', err.status ? `${err.error} (${err.status})` : err.error),
    err.detail ? h('p.err-detail', err.detail) : null);
}

/** Puts an error into `where` (replacing its content), or into the global status line. */
export function showError(e, where) {
  if (!(e instanceof ApiError)) console.warn(e);
  if (where) {
    clear(where).append(errorBox(e));
    return;
  }
  const status = document.getElementById('status');
  clear(status).append(errorBox(e), h('button.link.dismiss', { type: 'button', onclick: () => clear(status) }, 'Dismiss'));
  statusAt = Date.now();
}

let statusTimer;
let statusAt = 0;

/** On a change of view: messages of the previous one go, unless they are fresh (a "deleted" before leaving). */
export function clearStaleStatus() {
  if (Date.now() - statusAt > 1000) clear(document.getElementById('status'));
}
/** A short confirmation in the polite live region. */
export function say(text) {
  const status = document.getElementById('status');
  clear(status).append(h('div.alert.ok', text));
  statusAt = Date.now();
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => clear(status), 6000);
}

// ---------------------------------------------------------------------------------------------
// Token

export const token = {
  get: () => localStorage.getItem(TOKEN_KEY) || '',
  set: (t) => { localStorage.setItem(TOKEN_KEY, t); updateSignout(); },
  clear: () => { localStorage.removeItem(TOKEN_KEY); updateSignout(); },
};

function updateSignout() {
  const b = document.getElementById('signout');
  if (b) b.hidden = !token.get();
}

let gate = null; // a promise pending while the sign-in form is shown

/** Shows the token form (once for every request that got a 401) and resolves when submitted. */
function askToken(problem) {
  if (gate) return gate;
  gate = new Promise((resolve) => {
    const section = document.getElementById('login');
    const form = document.getElementById('login-form');
    const input = document.getElementById('login-token');
    const errors = document.getElementById('login-error');
    clear(errors);
    if (problem && token.get()) errors.append(errorBox(problem));
    document.getElementById('main').hidden = true;
    section.hidden = false;
    input.value = '';
    input.focus();
    const submit = (ev) => {
      ev.preventDefault();
      const t = input.value.trim();
      if (!t) {
        clear(errors).append(errorBox(new ApiError(0, 'token required', 'enter the API token the server was started with')));
        input.focus();
        return;
      }
      form.removeEventListener('submit', submit);
      token.set(t);
      section.hidden = true;
      document.getElementById('main').hidden = false;
      gate = null;
      resolve();
    };
    form.addEventListener('submit', submit);
  });
  return gate;
}

export function signOut() {
  token.clear();
  live.stop();
  location.reload();
}

// ---------------------------------------------------------------------------------------------
// API

/** Calls the API. Resolves to the parsed JSON (or text); rejects with an ApiError in the API's words. */
export async function api(method, path, body) {
  for (;;) {
    const headers = { Accept: 'application/json' };
    const t = token.get();
    if (t) headers.Authorization = `Bearer ${t}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res;
    try {
      res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      throw new ApiError(0, 'the server did not answer', `${method} ${path}: ${e.message}`);
    }
    const text = await res.text();
    let data;
    const isJson = (res.headers.get('content-type') || '').includes('json');
    if (isJson && text) {
      try { data = JSON.parse(text); } catch { data = undefined; }
    }
    if (res.status === 401) {
      const problem = data && data.error ? new ApiError(401, data.error, data.detail) : new ApiError(401, 'unauthorized', text);
      await askToken(problem);
      continue;
    }
    if (!res.ok) {
      if (data && typeof data.error === 'string') throw new ApiError(res.status, data.error, data.detail);
      // Not the API's JSON error body (a proxy in front, say): its text, without markup.
      const plain = text.replace(/<(script|style)[\s\S]*?<\/\1>/gi, '').replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim();
      throw new ApiError(res.status, `HTTP ${res.status} ${res.statusText}`.trim(), plain.slice(0, 1000));
    }
    if (!isJson) return text;
    return data === undefined ? null : data;
  }
}

export const get = (p) => api('GET', p);
export const post = (p, b) => api('POST', p, b === undefined ? {} : b);
export const put = (p, b) => api('PUT', p, b);
export const del = (p) => api('DELETE', p);
export const enc = encodeURIComponent;

// ---------------------------------------------------------------------------------------------
// The live connection (/ws): one socket for the whole app, with listeners and a bounded buffer
// of log entries (the live view shows it; other views refresh on status changes).

export const LIVE_MAX = 500;

export const live = {
  ws: null,
  listeners: new Set(),
  buffer: [], // newest last: {kind:'log', entry} | {kind:'status', ...}
  retry: 500,
  stopped: false,
  timer: null,
  start() {
    this.stopped = false;
    if (this.ws) return;
    const q = token.get() ? `?access_token=${enc(token.get())}` : '';
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws${q}`;
    const ws = new WebSocket(url);
    this.ws = ws;
    setConn('connecting');
    ws.onopen = () => { this.retry = 500; setConn('live'); };
    ws.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      if (msg.type === 'log' && msg.entry) this.push({ kind: 'log', entry: msg.entry, at: msg.entry.timestamp });
      else if (msg.type === 'server_status') this.push({ kind: 'status', msg, at: new Date().toISOString() });
      for (const l of this.listeners) {
        try { l(msg); } catch (e) { console.warn(e); }
      }
    };
    ws.onclose = (ev) => {
      this.ws = null;
      setConn('offline', ev.reason);
      if (this.stopped) return;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.start(), this.retry);
      this.retry = Math.min(this.retry * 2, 30000);
    };
  },
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close();
  },
  push(item) {
    this.buffer.push(item);
    if (this.buffer.length > LIVE_MAX) this.buffer.splice(0, this.buffer.length - LIVE_MAX);
  },
  on(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  },
};

function setConn(state, reason) {
  const el = document.getElementById('conn');
  if (!el) return;
  el.textContent = state;
  el.className = `conn ${state}`;
  el.title = reason ? `Live connection (/ws): ${reason}` : 'Live connection (/ws)';
}

// ---------------------------------------------------------------------------------------------
// Formatting

export function fmtMs(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '–';
  if (ms === 0) return '0 ms';
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  if (ms < 10000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(1)} s`;
}

export function fmtNum(n) {
  return n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US');
}

export function fmtPct(x) {
  if (!Number.isFinite(x)) return '–';
  return `${(x * 100).toFixed(x < 0.1 && x > 0 ? 1 : 0)}%`;
}

export function fmtTime(iso, withDate) {
  if (!iso) return '–';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const time = d.toLocaleTimeString('en-GB', { hour12: false });
  if (!withDate) return time;
  return `${d.toLocaleDateString('en-CA')} ${time}`;
}

export function ago(iso) {
  if (!iso) return 'never';
  const s = (Date.now() - new Date(iso).getTime()) / 1000;
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export function json(v) {
  return JSON.stringify(v, null, 2);
}

/** A status badge: connected / connecting / disconnected / error. */
export function badge(status) {
  return h(`span.badge.st-${status || 'unknown'}`, status || 'unknown');
}

/** A copy-to-clipboard button for the text `get()` returns. */
export function copyButton(get, label = 'Copy') {
  return button(label, async (b) => {
    try {
      await navigator.clipboard.writeText(get());
      say('Copied to the clipboard');
    } catch {
      say('Could not copy: select the text and copy it by hand');
    }
    b.focus();
  }, { class: 'small' });
}

/** Parses Prometheus text for the operation metrics: per series {vmcp, server, method, status, count, sum, buckets:[[le, n]]}. */
export function parseMetrics(text) {
  const series = new Map();
  const re = /^vmcp_operation_duration_seconds_(bucket|sum|count)\{(.*)\} ([0-9.eE+-]+|NaN)$/;
  for (const line of text.split('\n')) {
    const m = re.exec(line);
    if (!m) continue;
    const labels = {};
    for (const l of m[2].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\n/g, '\n').replace(/\\(.)/g, '$1');
    const key = `${labels.vmcp}\u0000${labels.server}\u0000${labels.method}\u0000${labels.status}`;
    let s = series.get(key);
    if (!s) {
      s = { vmcp: labels.vmcp, server: labels.server, method: labels.method, status: labels.status, count: 0, sum: 0, buckets: [] };
      series.set(key, s);
    }
    const v = Number(m[3]);
    if (m[1] === 'bucket') s.buckets.push([labels.le === '+Inf' ? Infinity : Number(labels.le), v]);
    else if (m[1] === 'sum') s.sum = v;
    else s.count = v;
  }
  return [...series.values()];
}

/** Sums metric series (same bucket bounds) and estimates a quantile from the cumulative buckets. */
export function mergeSeries(list) {
  const out = { count: 0, sum: 0, errors: 0, buckets: new Map() };
  for (const s of list) {
    out.count += s.count;
    out.sum += s.sum;
    if (s.status === 'error') out.errors += s.count;
    for (const [le, n] of s.buckets) out.buckets.set(le, (out.buckets.get(le) || 0) + n);
  }
  out.quantile = (q) => {
    if (!out.count) return null;
    const bs = [...out.buckets.entries()].sort((a, b) => a[0] - b[0]);
    const rank = q * out.count;
    let prevLe = 0;
    let prevN = 0;
    for (const [le, n] of bs) {
      if (n >= rank) {
        if (le === Infinity) return prevLe * 1000; // above the last bound: at least that
        const frac = n === prevN ? 0 : (rank - prevN) / (n - prevN);
        return (prevLe + (le - prevLe) * frac) * 1000;
      }
      prevLe = le;
      prevN = n;
    }
    return prevLe * 1000;
  };
  return out;
}

/** The q-quantile (0..1) of a list of numbers (nearest rank). */
export function quantile(values, q) {
  if (!values.length) return null;
  const v = [...values].sort((a, b) => a - b);
  return v[Math.min(v.length - 1, Math.max(0, Math.ceil(q * v.length) - 1))];
}
