// The dashboard's entry point: hash routing, lazy loading of views, the live connection.
import { clear, clearStaleStatus, errorBox, get, h, live, signOut, token } from './lib.js';

// #/path -> [module, view name, params]
const ROUTES = [
  [/^#\/servers\/?$/, 'servers.js', 'list'],
  [/^#\/servers\/([^/]+)$/, 'servers.js', 'detail'],
  [/^#\/vmcps\/?$/, 'vmcps.js', 'list'],
  [/^#\/vmcps\/([^/]+)(?:\/(overview|tools|resources|prompts|connect))?$/, 'vmcps.js', 'detail'],
  [/^#\/stats\/?$/, 'stats.js', 'view'],
  [/^#\/live\/?$/, 'live.js', 'view'],
];

let cleanup = null;
let generation = 0;
let lastHash = '';

async function route() {
  const hash = location.hash || '#/servers';
  let match = null;
  for (const [re, mod, view] of ROUTES) {
    const m = re.exec(hash);
    if (m) {
      match = { mod, view, params: m.slice(1).map((p) => (p === undefined ? p : decodeURIComponent(p))) };
      break;
    }
  }
  if (!match) {
    location.replace('#/servers');
    return;
  }
  const section = match.mod.replace('.js', '');
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (cleanup) {
    try { cleanup(); } catch (e) { console.warn(e); }
    cleanup = null;
  }
  const gen = ++generation;
  const main = document.getElementById('main');
  const sameView = lastHash && lastHash.split('/').slice(0, 3).join('/') === hash.split('/').slice(0, 3).join('/');
  lastHash = hash;
  clearStaleStatus();
  if (!sameView) window.scrollTo(0, 0);
  const root = h('div.view');
  try {
    const mod = await import(`./${match.mod}`);
    if (gen !== generation) return;
    clear(main).append(root);
    cleanup = (await mod[match.view](root, ...match.params)) || null;
  } catch (e) {
    if (gen !== generation) return;
    clear(main).append(errorBox(e));
  }
  if (gen === generation && document.activeElement && document.activeElement.matches('nav a')) {
    // Moving between views with the keyboard: continue from the new view's heading.
    const h1 = main.querySelector('h1');
    if (h1) { h1.tabIndex = -1; h1.focus({ preventScroll: true }); }
  }
}

async function start() {
  document.getElementById('signout').hidden = !token.get();
  document.getElementById('signout').addEventListener('click', signOut);
  window.addEventListener('hashchange', route);
  // One authenticated request first: it asks for the token if the server needs one, so that
  // the live socket is opened with a token that works.
  try {
    await get('/api/vmcps');
  } catch {
    // The view shows the error.
  }
  live.start();
  route();
}

start();
