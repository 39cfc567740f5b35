// The "browser step" of an OAuth authorization-code flow against oidc_provider.mjs
// (oidc-provider's devInteractions pages), driven over HTTP with Node's built-in fetch: no
// browser, no dependencies.
//
//   import { login } from './oidc_login.mjs';
//   const url = await login(authorizationUrl, { username: 'alice', password: 'x', deny: false });
//
//   node oidc_login.mjs <authorization_url> [username]      # prints the final URL on stdout
//   (env OIDC_LOGIN_DENY=1 denies instead; exit code 1 on failure, message on stderr)
//
// It GETs the authorization URL with a cookie jar and manual redirects, fills the login form
// (any login / any password is accepted by devInteractions), confirms the consent form if one
// is shown, and follows redirects while they stay on the provider's origin. The first redirect
// that leaves the provider's origin is the client's redirect_uri carrying code, state and iss
// (or error, error_description, state, iss); it is returned WITHOUT being requested.
// With deny: true it presses the pages' abort link instead ("[ Cancel ]" on the login page;
// on the consent page too), which yields error=access_denied.
// A provider error page (HTTP 4xx/5xx, e.g. an invalid redirect_uri or client) throws.

import { pathToFileURL } from 'node:url';

const MAX_STEPS = 20;

class CookieJar {
  constructor() { this.cookies = new Map(); }

  store(response) {
    const list = response.headers.getSetCookie?.() ?? [];
    for (const line of list) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq < 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => {
        const [k, v] = a.split('=').map((s) => s?.trim().toLowerCase());
        return (k === 'max-age' && Number(v) <= 0) || (k === 'expires' && Date.parse(v) < Date.now());
      });
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  header() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

function decodeEntities(s) {
  return s.replace(/&(#x?[0-9a-f]+|amp|lt|gt|quot|apos|#39);/gi, (m, e) => {
    const lower = e.toLowerCase();
    if (lower === 'amp') return '&';
    if (lower === 'lt') return '<';
    if (lower === 'gt') return '>';
    if (lower === 'quot') return '"';
    if (lower === 'apos' || lower === '#39') return "'";
    if (lower.startsWith('#x')) return String.fromCodePoint(parseInt(lower.slice(2), 16));
    if (lower.startsWith('#')) return String.fromCodePoint(parseInt(lower.slice(1), 10));
    return m;
  });
}

function attr(tag, name) {
  const m = tag.match(new RegExp(`\\s${name}\\s*=\\s*("([^"]*)"|'([^']*)'|([^\\s>]+))`, 'i'));
  if (!m) return undefined;
  return decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
}

// The first POST form of the page with its inputs, or undefined.
function parseForm(html) {
  const forms = html.match(/<form\b[^>]*>[\s\S]*?<\/form>/gi) ?? [];
  for (const form of forms) {
    const open = form.match(/<form\b[^>]*>/i)[0];
    if ((attr(open, 'method') ?? 'get').toLowerCase() !== 'post') continue;
    const inputs = {};
    for (const input of form.match(/<input\b[^>]*>/gi) ?? []) {
      const name = attr(input, 'name');
      if (name) inputs[name] = attr(input, 'value') ?? '';
    }
    return { action: attr(open, 'action'), inputs };
  }
  return undefined;
}

function abortLink(html) {
  for (const a of html.match(/<a\b[^>]*>/gi) ?? []) {
    const href = attr(a, 'href');
    if (href && /\/abort(\?|$)/.test(href)) return href;
  }
  return undefined;
}

export async function login(authorizationUrl, { username = 'alice', password = 'x', deny = false } = {}) {
  const origin = new URL(authorizationUrl).origin;
  const jar = new CookieJar();
  let request = { url: authorizationUrl, method: 'GET', body: undefined };

  for (let step = 0; step < MAX_STEPS; step += 1) {
    const headers = { accept: 'text/html,application/json;q=0.9', cookie: jar.header() };
    if (request.body) headers['content-type'] = 'application/x-www-form-urlencoded';
    const response = await fetch(request.url, {
      method: request.method, headers, body: request.body, redirect: 'manual',
    });
    jar.store(response);

    if (response.status >= 300 && response.status < 400) {
      const location = response.headers.get('location');
      if (!location) throw new Error(`redirect without Location from ${request.url}`);
      const next = new URL(location, request.url);
      await response.body?.cancel();
      if (next.origin !== origin) return next.href;
      request = { url: next.href, method: 'GET', body: undefined };
      continue;
    }

    const text = await response.text();
    if (response.status !== 200) {
      throw new Error(`provider answered ${response.status} at ${request.url}: ${text.slice(0, 500)}`);
    }

    // response_mode=form_post: an auto-submitting form to the client; hand back its target.
    const form = parseForm(text);
    if (!form) throw new Error(`no form on the page at ${request.url}: ${text.slice(0, 500)}`);
    const action = new URL(form.action ?? request.url, request.url);
    if (action.origin !== origin) {
      const out = new URL(action.href);
      for (const [k, v] of Object.entries(form.inputs)) out.searchParams.set(k, v);
      return out.href;
    }

    const prompt = form.inputs.prompt;
    if (deny) {
      const abort = abortLink(text);
      if (!abort) throw new Error(`no abort link on the ${prompt} page at ${request.url}`);
      request = { url: new URL(abort, request.url).href, method: 'GET', body: undefined };
      continue;
    }
    const fields = { ...form.inputs };
    if (prompt === 'login' || 'login' in fields) {
      fields.login = username;
      fields.password = password;
    } else if (prompt !== 'consent') {
      throw new Error(`unexpected interaction page (prompt=${prompt}) at ${request.url}`);
    }
    request = { url: action.href, method: 'POST', body: new URLSearchParams(fields).toString() };
  }
  throw new Error(`more than ${MAX_STEPS} steps without leaving ${origin}`);
}

const isMain = process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  const [url, username] = process.argv.slice(2);
  if (!url) {
    console.error('usage: node oidc_login.mjs <authorization_url> [username]');
    process.exit(2);
  }
  login(url, { username: username || 'alice', deny: process.env.OIDC_LOGIN_DENY === '1' })
    .then((final) => process.stdout.write(`${final}\n`))
    .catch((err) => {
      console.error(err.message);
      process.exit(1);
    });
}
