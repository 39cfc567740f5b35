// An OAuth-capable MCP client built from the official TypeScript SDK, to test a protected MCP
// endpoint end to end: the SDK itself handles the 401, the RFC 9728 protected-resource metadata,
// authorization-server discovery (RFC 8414 / OpenID), dynamic registration (RFC 7591) and the
// authorization code + PKCE flow with `resource` (RFC 8707); this script only supplies an in-memory
// `OAuthClientProvider` whose "browser" is the login driver `./oidc_login.mjs` (it logs in at the
// authorization URL and returns the final redirect URL without requesting it).
//
// usage: node oauth_client.mjs --url MCP_ENDPOINT [--sdk v1|v2] [--username alice] [--scope "mcp:tools"]
//                              [--tool whoami --args '{}'] [--token BEARER] [--npm-dir DIR] [--trace]
//
//   --sdk v1   @modelcontextprotocol/sdk 1.x (`StreamableHTTPClientTransport` + `auth()`), the default
//   --sdk v2   @modelcontextprotocol/client 2.x (same provider interface, plus RFC 9207 `iss` check)
//   --scope    the client metadata `scope`: the SDKs ask for it only when neither the 401's
//              `WWW-Authenticate: ... scope=` nor the resource metadata's `scopes_supported` names one
//   --token    skip OAuth: send `Authorization: Bearer BEARER` as a static header
//   --trace    log every HTTP request the SDK makes (method, URL, status) to stderr
//
// Prints one JSON line: {"ok":true,"sdk":...,"tools":[names],"result":<tool result>,
// "registered_client_id":...,"token_aud":...,"authorization_requests":[{scope,resource,...}]}, or
// {"ok":false,"error":...} and exits 1. The packages come from --npm-dir (the directory holding
// node_modules), NODE_PATH, or $HOME/.cache/vmcp-tools/npm-clients, as `xtask/python/tools.sh` installs them.

import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const REDIRECT_URL = 'http://127.0.0.1:9499/callback';
const TIMEOUT_MS = 60000;

const argv = process.argv.slice(2);
const arg = (name, fallback = undefined) => {
    const i = argv.indexOf(name);
    return i >= 0 && i + 1 < argv.length ? argv[i + 1] : fallback;
};
const opts = {
    url: arg('--url'),
    sdk: arg('--sdk', 'v1'),
    username: arg('--username', 'alice'),
    scope: arg('--scope'),
    tool: arg('--tool', 'whoami'),
    args: JSON.parse(arg('--args', '{}')),
    token: arg('--token'),
    trace: argv.includes('--trace'),
};

function fail(error) {
    let text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    if (error?.cause?.message) text += ` (${error.cause.message})`;
    console.log(JSON.stringify({ ok: false, sdk: opts.sdk, error: text }));
    process.exit(1);
}

function npmModules() {
    const candidates = [];
    if (arg('--npm-dir')) candidates.push(join(arg('--npm-dir'), 'node_modules'));
    for (const p of (process.env.NODE_PATH || '').split(':').filter(Boolean)) candidates.push(p, join(p, 'node_modules'));
    candidates.push(join(homedir(), '.cache/vmcp-tools/npm-clients/node_modules'));
    return candidates.find((c) => existsSync(join(c, '@modelcontextprotocol')));
}

async function loadSdk(which) {
    const modules = npmModules();
    if (!modules) throw new Error('no @modelcontextprotocol packages: pass --npm-dir DIR (with DIR/node_modules) or NODE_PATH');
    const load = (path) => import(pathToFileURL(join(modules, path)).href);
    const version = (pkg) => JSON.parse(readFileSync(join(modules, pkg, 'package.json'), 'utf8')).version;
    if (which === 'v1') {
        const [client, http] = await Promise.all([
            load('@modelcontextprotocol/sdk/dist/esm/client/index.js'),
            load('@modelcontextprotocol/sdk/dist/esm/client/streamableHttp.js'),
        ]);
        return {
            package: `@modelcontextprotocol/sdk@${version('@modelcontextprotocol/sdk')}`,
            Client: client.Client,
            Transport: http.StreamableHTTPClientTransport,
        };
    }
    if (which === 'v2') {
        const mod = await load('@modelcontextprotocol/client/dist/index.mjs');
        return {
            package: `@modelcontextprotocol/client@${version('@modelcontextprotocol/client')}`,
            Client: mod.Client,
            Transport: mod.StreamableHTTPClientTransport,
        };
    }
    throw new Error(`--sdk must be v1 or v2, not ${which}`);
}

/// An in-memory `OAuthClientProvider` (the same interface in both SDKs). Its "user agent" is the
/// login driver: `redirectToAuthorization` logs in and keeps the callback's code (and `iss`), which
/// the caller then hands to `transport.finishAuth`.
class MemoryOAuthProvider {
    constructor({ scope, username, login }) {
        this._scope = scope;
        this._username = username;
        this._login = login;
        this.callback = undefined; // {code, iss} once the login driver has come back
        this.requests = []; // what each authorization request asked for
    }
    get redirectUrl() {
        return REDIRECT_URL;
    }
    get clientMetadata() {
        return {
            client_name: 'vmcp-oauth-client (TypeScript SDK)',
            redirect_uris: [REDIRECT_URL],
            grant_types: ['authorization_code', 'refresh_token'],
            response_types: ['code'],
            token_endpoint_auth_method: 'none',
            ...(this._scope ? { scope: this._scope } : {}),
        };
    }
    state() {
        this._state = randomBytes(16).toString('base64url');
        return this._state;
    }
    clientInformation() {
        return this._client;
    }
    saveClientInformation(info) {
        this._client = info;
    }
    tokens() {
        return this._tokens;
    }
    saveTokens(tokens) {
        this._tokens = tokens;
    }
    saveCodeVerifier(verifier) {
        this._verifier = verifier;
    }
    codeVerifier() {
        if (!this._verifier) throw new Error('no PKCE code verifier saved');
        return this._verifier;
    }
    // Kept across the redirect: 2.x checks on the callback leg that the authorization server is
    // the one the code came from, and refuses when a provider saves this but cannot give it back.
    saveDiscoveryState(state) {
        this._discovery = state;
    }
    discoveryState() {
        return this._discovery;
    }
    invalidateCredentials(what) {
        if (what === 'all' || what === 'client') this._client = undefined;
        if (what === 'all' || what === 'tokens') this._tokens = undefined;
        if (what === 'all' || what === 'verifier') this._verifier = undefined;
        if (what === 'all' || what === 'discovery') this._discovery = undefined;
    }
    async redirectToAuthorization(authorizationUrl) {
        const q = new URL(authorizationUrl).searchParams;
        const back = new URL(await this._login(String(authorizationUrl), { username: this._username }));
        const p = back.searchParams;
        this.requests.push({
            scope: q.get('scope'),
            resource: q.get('resource'),
            code_challenge_method: q.get('code_challenge_method'),
            iss_in_redirect: p.has('iss'),
        });
        if (p.get('error')) throw new Error(`authorization failed: ${p.get('error')} ${p.get('error_description') ?? ''}`.trim());
        if (p.get('state') !== this._state) throw new Error(`state mismatch in the redirect: ${p.get('state')} != ${this._state}`);
        if (!p.get('code')) throw new Error(`no code in the redirect ${back.href}`);
        this.callback = { code: p.get('code'), iss: p.get('iss') ?? undefined };
    }
}

function jwtClaims(token) {
    const parts = String(token ?? '').split('.');
    if (parts.length !== 3) return undefined;
    try {
        return JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    } catch {
        return undefined;
    }
}

/// fetch, logging each request (--trace): shows which discovery URLs the SDK tries, in order.
function tracingFetch() {
    return async (url, init) => {
        const response = await fetch(url, init);
        console.error(`trace: ${init?.method ?? 'GET'} ${String(url)} -> ${response.status}`);
        return response;
    };
}

async function main() {
    if (!opts.url) throw new Error('--url is required');
    const sdk = await loadSdk(opts.sdk);
    const url = new URL(opts.url);
    const transportOptions = {};
    if (opts.trace) transportOptions.fetch = tracingFetch();
    let provider;
    if (opts.token) {
        transportOptions.requestInit = { headers: { Authorization: `Bearer ${opts.token}` } };
    } else {
        const { login } = await import(new URL('./oidc_login.mjs', import.meta.url).href);
        provider = new MemoryOAuthProvider({ scope: opts.scope, username: opts.username, login });
        transportOptions.authProvider = provider;
    }

    const connect = async () => {
        const client = new sdk.Client({ name: 'vmcp-oauth-client', version: '1.0.0' }, { capabilities: {} });
        const transport = new sdk.Transport(url, transportOptions);
        try {
            await client.connect(transport);
            return { client, transport };
        } catch (error) {
            await client.close().catch(() => {});
            error.transport = transport;
            throw error;
        }
    };

    // The SDK answers a 401 (or a 403 insufficient_scope) by running discovery + registration and
    // "redirecting" (our login driver), then fails that request with UnauthorizedError: finish with
    // the code the driver brought back and run the step again.
    let session;
    const authorized = async (step) => {
        for (let attempt = 0; ; attempt += 1) {
            try {
                return await step();
            } catch (error) {
                const callback = provider?.callback;
                if (!callback || attempt === 3) throw error;
                provider.callback = undefined;
                // 1.x takes the code only; 2.x also checks `iss` against the issuer (RFC 9207).
                await (error.transport ?? session.transport).finishAuth(callback.code, callback.iss);
            }
        }
    };
    session = await authorized(connect);
    const { client } = session;
    const tools = (await authorized(() => client.listTools())).tools.map((t) => t.name);
    const result = await authorized(() => client.callTool({ name: opts.tool, arguments: opts.args }));
    await client.close();

    const out = { ok: true, sdk: opts.sdk, package: sdk.package, tools, result };
    if (provider) {
        const claims = jwtClaims(provider.tokens()?.access_token);
        out.registered_client_id = provider.clientInformation()?.client_id ?? null;
        if (claims) {
            out.token_aud = claims.aud;
            out.token_sub = claims.sub;
            out.token_scope = claims.scope;
        }
        // Every authorization request the SDK made (more than one after a scope step-up).
        out.authorization_requests = provider.requests;
    }
    console.log(JSON.stringify(out));
}

const timer = setTimeout(() => fail(new Error(`timed out after ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
main()
    .then(() => {
        clearTimeout(timer);
        process.exit(0);
    })
    .catch(fail);
