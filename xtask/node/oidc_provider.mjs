// A real OpenID Provider / OAuth 2.1 authorization server on loopback, for vMCP's OAuth
// end-to-end tests. It is the npm package `oidc-provider` (panva), pinned below, with a
// configuration shaped after the MCP authorization spec:
//
//   * dynamic client registration (RFC 7591), open (no initial access token); public
//     clients (`token_endpoint_auth_method: "none"`) are allowed;
//   * PKCE required for every client, S256 only;
//   * resource indicators (RFC 8707): any http(s) `resource` is a resource server whose
//     access tokens are JWTs (`typ: at+jwt`, RS256 by default) with `aud` = the resource,
//     `scope` = the granted scopes that resource server accepts; the signing keys' JWKS is at
//     the discovery's `jwks_uri`;
//   * refresh tokens always issued for the authorization_code grant, rotated on every use;
//   * client_credentials, revocation (RFC 7009), introspection (RFC 7662);
//   * RFC 9207 `iss` in every authorization response;
//   * OAuth Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document-02,
//     oidc-provider's experimental `clientIdMetadataDocument` feature): an https URL used as
//     client_id is fetched as the client's metadata; discovery says
//     `client_id_metadata_document_supported: true`;
//   * devInteractions: oidc-provider's built-in login page (any login, any password) and
//     consent page. Consent is granted automatically (loadExistingGrant) for what was asked,
//     so for `application_type: web` clients the browser step is the login form only;
//     `application_type: native` clients always get the consent page (oidc-provider rule).
//     `oidc_login.mjs` beside this file drives both pages over HTTP.
//   * discovery at /.well-known/openid-configuration and /.well-known/oauth-authorization-server
//     (oidc-provider serves both itself).
//
// Usage:  node oidc_provider.mjs --port P [--issuer URL]
//   Listens on 127.0.0.1:P; issuer defaults to http://127.0.0.1:P (plain http is fine on
//   loopback). Prints exactly one line `READY <issuer>` on stdout once listening; everything
//   else goes to stderr. Exits on SIGTERM/SIGINT. State (clients, grants, tokens) is in memory.
//
// Where oidc-provider comes from: $VMCP_TOOLS_DIR/npm-oauth (VMCP_TOOLS_DIR defaults to
// $HOME/.cache/vmcp-tools), a folder with package.json {"private":true,"type":"module"} and
// node_modules/oidc-provider@OIDC_PROVIDER_VERSION. The script resolves the package by absolute
// path from there (createRequire(<dir>/package.json).resolve + dynamic import of the file URL),
// so it works from any working directory and needs no NODE_PATH. If the package is missing or
// is another version, the script installs it there first with `npm install --save-exact`
// (set OIDC_NO_INSTALL=1 to fail instead).
//
// Environment:
//   OIDC_CLIENTS            JSON array of oidc-provider client metadata to pre-register, added
//                           to the default one: {client_id: "machine", client_secret:
//                           "machine-secret-0123456789", grant_types: ["client_credentials"],
//                           redirect_uris: [], response_types: []} (client_secret_basic or
//                           client_secret_post). A client given with client_id "machine"
//                           replaces the default.
//   OIDC_ACCESS_TOKEN_TTL   access-token lifetime in seconds (default 600), for the
//                           authorization_code, refresh_token and client_credentials grants.
//   OIDC_REFRESH_TOKEN_TTL  refresh-token lifetime in seconds (default 14 days).
//   OIDC_ACCESS_TOKEN_ALG   RS256 (default) or ES256: the JWS alg of JWT access tokens.
//   OIDC_RESOURCE_SCOPES    space-separated scopes every resource server accepts
//                           (default "mcp:tools mcp:admin files:read").
//   OIDC_ALLOWED_RESOURCES  optional space/comma-separated URL prefixes; a `resource` matching
//                           none is refused with invalid_target. Default: any http(s) URL.
//   OIDC_DEFAULT_RESOURCE   optional resource used when a request names none (else such
//                           requests get opaque tokens usable only at userinfo).
//   OIDC_DEFAULT_SCOPE      optional scope put on GET /auth requests that carry none
//                           (oidc-provider otherwise ends a scope-less request, after login,
//                           with error=access_denied "no scope was granted").
//   OIDC_AUTO_CONSENT       1 (default): grant what is asked without a consent page (web
//                           clients); 0: always show oidc-provider's consent page.
//   OIDC_CIMD               1 (default): enable Client ID Metadata Documents; 0: disable.
//   OIDC_CIMD_HTTP_LOOPBACK 1: fetch an https://127.0.0.1|localhost|[::1] client_id document
//                           over plain http at the same host:port (tests without TLS; the
//                           client_id itself must still be https). Default 0.
//   OIDC_FETCH_INSECURE_TLS 1: do not verify TLS certificates when fetching client documents
//                           (self-signed test servers). Default 0.
//                           Fetches to loopback addresses are always allowed (oidc-provider
//                           blocks special-use IPs by default; this test provider lifts that).
//   OIDC_JWKS               optional JSON {"keys": [private JWKs]} to sign with; default: a
//                           fresh RSA-2048 (RS256) and P-256 (ES256) key pair on each start.
//   OIDC_DEBUG              1: log every provider event of interest to stderr.
//   VMCP_TOOLS_DIR          see above.

import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

export const OIDC_PROVIDER_VERSION = '9.13.3';

const log = (...args) => console.error('[oidc_provider]', ...args);

function toolsDir() {
  const base = process.env.VMCP_TOOLS_DIR || path.join(os.homedir(), '.cache', 'vmcp-tools');
  return path.join(base, 'npm-oauth');
}

function installedVersion(dir) {
  try {
    const pkg = path.join(dir, 'node_modules', 'oidc-provider', 'package.json');
    return JSON.parse(fs.readFileSync(pkg, 'utf8')).version;
  } catch {
    return undefined;
  }
}

// Returns the oidc-provider module, installing the pinned version into the tools dir if needed.
export async function loadOidcProvider() {
  const dir = toolsDir();
  if (installedVersion(dir) !== OIDC_PROVIDER_VERSION) {
    if (process.env.OIDC_NO_INSTALL === '1') {
      throw new Error(`oidc-provider@${OIDC_PROVIDER_VERSION} is not installed in ${dir}`);
    }
    log(`installing oidc-provider@${OIDC_PROVIDER_VERSION} in ${dir}`);
    fs.mkdirSync(dir, { recursive: true });
    const pkgJson = path.join(dir, 'package.json');
    if (!fs.existsSync(pkgJson)) {
      fs.writeFileSync(pkgJson, '{"private":true,"type":"module"}\n');
    }
    execFileSync('npm', ['install', '--save-exact', '--no-audit', '--no-fund', '--silent',
      `oidc-provider@${OIDC_PROVIDER_VERSION}`], { cwd: dir, stdio: ['ignore', 2, 2] });
  }
  const require = createRequire(path.join(dir, 'package.json'));
  const entry = require.resolve('oidc-provider');
  return import(pathToFileURL(entry).href);
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

function envInt(name, dflt) {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number.parseInt(v, 10);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive integer`);
  return n;
}

function makeKeys() {
  if (process.env.OIDC_JWKS) {
    const jwks = JSON.parse(process.env.OIDC_JWKS);
    if (!Array.isArray(jwks.keys)) throw new Error('OIDC_JWKS must be {"keys": [...]}');
    return jwks;
  }
  // Generate as PEM, then export a separate KeyObject as JWK: on Node 20, exporting the
  // KeyObject of generateKeyPairSync() as JWK can deadlock when a GC runs during the export
  // (the key-generation job's destructor takes the lock the export holds; seen 1 start in ~5).
  const pem = { privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } };
  const jwk = (type, opts) => crypto.createPrivateKey(crypto.generateKeyPairSync(type, { ...opts, ...pem }).privateKey)
    .export({ format: 'jwk' });
  const rsa = jwk('rsa', { modulusLength: 2048 });
  const ec = jwk('ec', { namedCurve: 'P-256' });
  const kid = (jwk) => crypto.createHash('sha256')
    .update(JSON.stringify(jwk.kty === 'RSA' ? { e: jwk.e, kty: jwk.kty, n: jwk.n } : { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }))
    .digest('base64url');
  return {
    keys: [
      { ...rsa, kid: kid(rsa), use: 'sig', alg: 'RS256' },
      { ...ec, kid: kid(ec), use: 'sig', alg: 'ES256' },
    ],
  };
}

// fetch used by oidc-provider for client documents (CIMD, jwks_uri, sector_identifier_uri).
function makeFetch() {
  const httpLoopback = process.env.OIDC_CIMD_HTTP_LOOPBACK === '1';
  const insecureTls = process.env.OIDC_FETCH_INSECURE_TLS === '1';
  let insecureAgent;
  if (insecureTls) {
    // Node's bundled undici Agent, reached the same way oidc-provider reaches it.
    // eslint-disable-next-line no-unused-expressions
    Response;
    const Agent = (globalThis[Symbol.for('undici.globalDispatcher.2')]
      ?? globalThis[Symbol.for('undici.globalDispatcher.1')])?.constructor;
    if (Agent) insecureAgent = new Agent({ connect: { rejectUnauthorized: false } });
  }
  return (url, options) => {
    let target = new URL(url);
    if (LOOPBACK_HOSTS.has(target.hostname)) {
      // oidc-provider's SSRF guard would refuse loopback addresses; this is a loopback test rig.
      delete options.dispatcher;
      if (httpLoopback && target.protocol === 'https:') {
        target = new URL(target.href);
        target.protocol = 'http:';
      }
    }
    if (insecureAgent && target.protocol === 'https:') options.dispatcher = insecureAgent;
    if (process.env.OIDC_DEBUG === '1') log('fetch', target.href);
    return globalThis.fetch(target.href, options);
  };
}

export async function createProvider({ issuer }) {
  const { default: Provider, errors } = await loadOidcProvider();

  const accessTokenTTL = envInt('OIDC_ACCESS_TOKEN_TTL', 600);
  const refreshTokenTTL = envInt('OIDC_REFRESH_TOKEN_TTL', 14 * 24 * 3600);
  const accessTokenAlg = process.env.OIDC_ACCESS_TOKEN_ALG || 'RS256';
  if (!['RS256', 'ES256'].includes(accessTokenAlg)) throw new Error('OIDC_ACCESS_TOKEN_ALG must be RS256 or ES256');
  const resourceScopes = (process.env.OIDC_RESOURCE_SCOPES || 'mcp:tools mcp:admin files:read').split(/\s+/).filter(Boolean);
  const allowedResources = (process.env.OIDC_ALLOWED_RESOURCES || '').split(/[\s,]+/).filter(Boolean);
  const defaultResourceEnv = process.env.OIDC_DEFAULT_RESOURCE || undefined;
  const autoConsent = process.env.OIDC_AUTO_CONSENT !== '0';
  const cimd = process.env.OIDC_CIMD !== '0';

  const clients = [];
  const extra = process.env.OIDC_CLIENTS ? JSON.parse(process.env.OIDC_CLIENTS) : [];
  if (!Array.isArray(extra)) throw new Error('OIDC_CLIENTS must be a JSON array');
  if (!extra.some((c) => c.client_id === 'machine')) {
    clients.push({
      client_id: 'machine',
      client_secret: 'machine-secret-0123456789',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
    });
  }
  clients.push(...extra);

  function resourceAllowed(indicator) {
    const url = URL.parse(indicator);
    if (!url || !['http:', 'https:'].includes(url.protocol)) return false;
    if (allowedResources.length === 0) return true;
    return allowedResources.some((prefix) => indicator.startsWith(prefix));
  }

  const configuration = {
    clients,
    jwks: makeKeys(),
    cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
    responseTypes: ['code'],
    // Resource scopes are listed too: dynamic registration checks a client's `scope` against these.
    scopes: ['openid', 'offline_access', 'profile', 'email', ...resourceScopes],
    claims: { openid: ['sub'], profile: ['name'], email: ['email', 'email_verified'] },
    clientDefaults: {
      grant_types: ['authorization_code', 'refresh_token'],
      id_token_signed_response_alg: 'RS256',
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    async findAccount(ctx, sub) {
      return {
        accountId: sub,
        async claims() {
          return { sub, name: sub, email: `${sub}@example.test`, email_verified: true };
        },
      };
    },
    pkce: { required: () => true },
    // Refresh tokens for every authorization_code grant (not only with offline_access, which
    // oidc-provider drops unless prompt=consent), and for their rotation.
    async issueRefreshToken(ctx, client, code) {
      if (!client.grantTypeAllowed('refresh_token')) return false;
      return code.kind === 'AuthorizationCode' || code.kind === 'RefreshToken';
    },
    rotateRefreshToken: true,
    // Tokens outlive the browser session (oidc-provider's default ties them to it unless
    // offline_access was granted).
    expiresWithSession: async () => false,
    ttl: {
      AccessToken: accessTokenTTL,
      ClientCredentials: accessTokenTTL,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: refreshTokenTTL,
      Interaction: 3600,
      Session: 14 * 24 * 3600,
      Grant: 14 * 24 * 3600,
      DeviceCode: 600,
      BackchannelAuthenticationRequest: 600,
    },
    // Auto-consent: extend (or create) this session's grant with everything asked for.
    async loadExistingGrant(ctx) {
      const { oidc } = ctx;
      const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(oidc.client.clientId);
      let grant = grantId ? await oidc.provider.Grant.find(grantId) : undefined;
      if (!autoConsent) return grant;
      grant ||= new oidc.provider.Grant({ clientId: oidc.client.clientId, accountId: oidc.session.accountId });
      const opScopes = [...oidc.requestParamOIDCScopes];
      if (opScopes.length) grant.addOIDCScope(opScopes.join(' '));
      const claims = [...oidc.requestParamClaims];
      if (claims.length) grant.addOIDCClaims(claims);
      for (const [indicator, rs] of Object.entries(oidc.resourceServers)) {
        const wanted = [...oidc.requestParamScopes].filter((s) => rs.scopes.has(s));
        if (wanted.length) grant.addResourceScope(indicator, wanted.join(' '));
      }
      await grant.save();
      return grant;
    },
    features: {
      devInteractions: { enabled: true },
      registration: { enabled: true, initialAccessToken: false },
      clientCredentials: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
      userinfo: { enabled: true },
      resourceIndicators: {
        enabled: true,
        async defaultResource(ctx, client, oneOf) {
          if (oneOf) return oneOf.length === 1 ? oneOf[0] : oneOf;
          return defaultResourceEnv;
        },
        async useGrantedResource() {
          return true;
        },
        async getResourceServerInfo(ctx, resourceIndicator) {
          if (!resourceAllowed(resourceIndicator)) {
            throw new errors.InvalidTarget(`resource ${resourceIndicator} is not served by this authorization server`);
          }
          return {
            scope: resourceScopes.join(' '),
            audience: resourceIndicator,
            accessTokenTTL,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: accessTokenAlg } },
          };
        },
      },
      clientIdMetadataDocument: {
        enabled: cimd,
        ack: 'draft-02',
      },
    },
    fetch: makeFetch(),
    renderError(ctx, out) {
      ctx.type = 'json';
      ctx.body = out;
    },
  };

  const provider = new Provider(issuer, configuration);

  // scopes_supported: add the resource scopes to the discovery documents; OIDC_DEFAULT_SCOPE.
  const defaultScope = process.env.OIDC_DEFAULT_SCOPE || '';
  provider.use(async (ctx, next) => {
    if (defaultScope && ctx.method === 'GET' && ctx.path === '/auth' && !ctx.query.scope) {
      ctx.query = { ...ctx.query, scope: defaultScope };
    }
    await next();
    if (ctx.method === 'GET' && ctx.status === 200 && ctx.path.startsWith('/.well-known/')
      && ctx.body && typeof ctx.body === 'object' && Array.isArray(ctx.body.scopes_supported)) {
      ctx.body.scopes_supported = [...new Set([...ctx.body.scopes_supported, ...resourceScopes])];
    }
  });

  provider.on('server_error', (ctx, err) => log('server_error', ctx?.path, err));
  if (process.env.OIDC_DEBUG === '1') {
    for (const ev of ['authorization.error', 'grant.error', 'registration_create.error',
      'revocation.error', 'introspection.error', 'userinfo.error', 'discovery.error',
      'registration_create.success', 'grant.success', 'interaction.started', 'interaction.ended']) {
      provider.on(ev, (ctx, err) => log(ev, ctx?.method, ctx?.path, err ? `${err.name}: ${err.message} ${err.error_description ?? ''}` : ''));
    }
  } else {
    for (const ev of ['authorization.error', 'grant.error', 'registration_create.error', 'revocation.error', 'introspection.error']) {
      provider.on(ev, (ctx, err) => log(ev, ctx?.path, `${err?.error ?? err?.name}: ${err?.error_description ?? err?.message}${err?.error_detail ? ` (${err.error_detail})` : ''}`));
    }
  }
  return provider;
}

async function main() {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      issuer: { type: 'string' },
    },
  });
  if (!values.port) {
    log('usage: node oidc_provider.mjs --port P [--issuer URL]');
    process.exit(2);
  }
  const port = Number.parseInt(values.port, 10);
  const issuer = (values.issuer || `http://127.0.0.1:${port}`).replace(/\/$/, '');
  const provider = await createProvider({ issuer });
  const server = http.createServer(provider.callback());
  server.on('error', (err) => {
    log('listen error', err);
    process.exit(1);
  });
  const stop = () => {
    server.close();
    server.closeAllConnections?.();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  server.listen(port, '127.0.0.1', () => {
    process.stdout.write(`READY ${issuer}\n`);
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err) => {
    log(err);
    process.exit(1);
  });
}
