// The real-client matrix, TypeScript half: drives a vMCP's MCP endpoints with the official
// TypeScript SDK clients (1.x `@modelcontextprotocol/sdk`, and the 2.x `@modelcontextprotocol/client`
// in its default negotiation and in `versionNegotiation: {mode: 'auto'}`), one line per check:
//
//   ok|FAIL|skip CLIENT ENDPOINT OPERATION DETAIL
//
// The packages come from an npm directory (the one that holds `node_modules`), given with
// --npm-dir or found through NODE_PATH (a `node_modules` directory), as `cargo xtask interop` does;
// this directory has no package.json of its own. The pinned versions are in clients_run.sh.
//
// usage: node clients.mjs --npm-dir DIR --http URL --sse URL [--direct URL] [--json PATH]
//                         [--search-http URL --search-sse URL]
//                         [--bridge VMCP_BINARY] [--mcp-remote PATH_TO_MCP_REMOTE_PROXY_JS]
//                         [--prefix PREFIX] [--latency N] [--clients ts1,ts2,ts2-auto] [--label L]
//
// The upstream is @modelcontextprotocol/server-everything: the tool names are its own
// (`echo`, `get-structured-content`, ...), with PREFIX in front (empty when the vMCP has
// `naming.prefix` false). --search-http/--search-sse are the endpoints of a vMCP over the same
// upstream with `tool_search` "search": every client and endpoint also runs the `search/*` checks
// there (only the meta-tools search_tools and call_tool are listed). Exits 1 when any check
// failed. Every call has a timeout: a hang is a FAIL.

import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';

const argv = process.argv.slice(2);
function arg(name, fallback = undefined) {
    const i = argv.indexOf(name);
    return i >= 0 && i + 1 < argv.length ? argv[i + 1] : fallback;
}

const CALL_TIMEOUT_MS = 15000;
/// Calls in flight at once for the throughput figure.
const CONCURRENCY = 16;

function npmModules() {
    const candidates = [];
    const dir = arg('--npm-dir');
    if (dir) candidates.push(join(dir, 'node_modules'));
    for (const p of (process.env.NODE_PATH || '').split(':').filter(Boolean)) {
        candidates.push(p, join(p, 'node_modules'));
    }
    for (const c of candidates) {
        if (existsSync(join(c, '@modelcontextprotocol'))) return c;
    }
    console.error('no @modelcontextprotocol packages: pass --npm-dir DIR (with DIR/node_modules) or NODE_PATH');
    process.exit(2);
}

const modules = npmModules();
const load = (path) => import(pathToFileURL(join(modules, path)).href);
const version = async (pkg) =>
    JSON.parse(await (await import('node:fs/promises')).readFile(join(modules, pkg, 'package.json'), 'utf8'))
        .version;

const sdk1 = {
    client: await load('@modelcontextprotocol/sdk/dist/esm/client/index.js'),
    http: await load('@modelcontextprotocol/sdk/dist/esm/client/streamableHttp.js'),
    sse: await load('@modelcontextprotocol/sdk/dist/esm/client/sse.js'),
    stdio: await load('@modelcontextprotocol/sdk/dist/esm/client/stdio.js'),
    types: await load('@modelcontextprotocol/sdk/dist/esm/types.js'),
    version: await version('@modelcontextprotocol/sdk'),
};
const sdk2 = {
    mod: await load('@modelcontextprotocol/client/dist/index.mjs'),
    version: await version('@modelcontextprotocol/client'),
};

const endpoints = { http: arg('--http'), sse: arg('--sse') };
// The same endpoints of a vMCP with `tool_search` "search" over the same upstream.
const searchEndpoints = { http: arg('--search-http'), sse: arg('--search-sse') };
// Stdio paths to a streamable HTTP endpoint (given as url to connect), driven by the 1.x stdio
// client: `vmcp bridge URL` (what a desktop client launches) and mcp-remote (a proxy many clients use).
const stdioPaths = {};
if (arg('--bridge') && endpoints.http) {
    stdioPaths.bridge = (url) => ({ command: arg('--bridge'), args: ['bridge', url] });
}
if (arg('--mcp-remote') && endpoints.http) {
    stdioPaths['mcp-remote'] = (url) => ({ command: process.execPath, args: [arg('--mcp-remote'), url, '--transport', 'http-only'] });
}
const direct = arg('--direct');
const jsonPath = arg('--json');
const prefix = arg('--prefix', '');
const label = arg('--label', '');
const latencyN = Number(arg('--latency', '100'));
const wanted = arg('--clients', 'ts1,ts2,ts2-auto').split(',');
const tool = (name) => prefix + name;

const results = [];
const latencies = [];

function oneLine(s, max = 400) {
    s = String(s ?? '').replace(/\s+/g, ' ').trim();
    return s.length > max ? s.slice(0, max) + '...' : s;
}

function errText(e) {
    if (e === undefined || e === null) return String(e);
    const parts = [];
    if (e.name && e.name !== 'Error') parts.push(e.name);
    if (e.code !== undefined) parts.push(`code=${e.code}`);
    parts.push(e.message ?? String(e));
    if (e.data !== undefined) parts.push(`data=${JSON.stringify(e.data)}`);
    if (e.cause) parts.push(`cause: ${e.cause.message ?? e.cause}`);
    return oneLine(parts.join(' '));
}

function record(client, endpoint, operation, status, detail, ms) {
    const line = `${status} ${client} ${endpoint}${label ? '@' + label : ''} ${operation} ${oneLine(detail)}`;
    console.log(line);
    results.push({ client, endpoint, label, operation, status, detail: oneLine(detail, 2000), ms });
}

/** Rejects after ms: every await on the network goes through this, so a hang is a failure. */
function withTimeout(promise, ms, what) {
    let timer;
    const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms (${what})`)), ms);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

class Skip extends Error {}

/** Runs one check: fn returns the detail (a string) or throws (FAIL) or throws Skip. */
async function check(client, endpoint, operation, fn, ms = CALL_TIMEOUT_MS + 2000) {
    const started = performance.now();
    try {
        const detail = await withTimeout(Promise.resolve().then(fn), ms, operation);
        record(client, endpoint, operation, 'ok', detail, performance.now() - started);
        return true;
    } catch (e) {
        if (e instanceof Skip) {
            record(client, endpoint, operation, 'skip', e.message, performance.now() - started);
            return null;
        }
        record(client, endpoint, operation, 'FAIL', errText(e), performance.now() - started);
        return false;
    }
}

function expect(cond, msg) {
    if (!cond) throw new Error(msg);
}

const texts = (result) => (result?.content || []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');

// ---------------------------------------------------------------------------------------------
// One adapter per client kind: the same operations over the two SDK generations' APIs.

function handlers(name) {
    return {
        root: { uri: `file:///matrix/${name}`, name: `matrix-root-${name}` },
        sampling: async (req) => ({
            model: 'matrix-model',
            role: 'assistant',
            content: { type: 'text', text: `sampled-by-${name}` },
            stopReason: 'endTurn',
        }),
        elicitation: async (req) => ({ action: 'accept', content: { name: `elicited-by-${name}` } }),
    };
}

const CAPABILITIES = { sampling: {}, elicitation: { form: {} }, roots: { listChanged: true } };

function makeSdk1(name) {
    const { Client } = sdk1.client;
    const t = sdk1.types;
    return {
        name,
        async connect(endpoint, url) {
            const h = handlers(name);
            const client = new Client({ name: `matrix-${name}`, version: sdk1.version }, { capabilities: CAPABILITIES });
            client.setRequestHandler(t.CreateMessageRequestSchema, h.sampling);
            client.setRequestHandler(t.ElicitRequestSchema, h.elicitation);
            client.setRequestHandler(t.ListRootsRequestSchema, async () => ({ roots: [h.root] }));
            const updates = [];
            client.setNotificationHandler(t.ResourceUpdatedNotificationSchema, (n) => updates.push(n.params.uri));
            const transport = stdioPaths[endpoint]
                ? new sdk1.stdio.StdioClientTransport({ ...stdioPaths[endpoint](url), stderr: 'ignore' })
                : endpoint === 'sse'
                  ? new sdk1.sse.SSEClientTransport(new URL(url))
                  : new sdk1.http.StreamableHTTPClientTransport(new URL(url));
            // 1.x keeps the negotiated version to itself: read it off the initialize answer.
            let protocolSeen;
            const onmessage = () => transport.onmessage;
            const started = transport.start.bind(transport);
            transport.start = async () => {
                const inner = onmessage();
                transport.onmessage = (m, extra) => {
                    if (m?.result?.protocolVersion && !protocolSeen) protocolSeen = m.result.protocolVersion;
                    inner?.(m, extra);
                };
                return started();
            };
            await client.connect(transport, { timeout: CALL_TIMEOUT_MS });
            const opts = (extra = {}) => ({ timeout: CALL_TIMEOUT_MS, ...extra });
            return {
                root: h.root,
                updates,
                era: 'legacy',
                protocol: () => protocolSeen ?? '?',
                server: () => client.getServerVersion(),
                capabilities: () => client.getServerCapabilities(),
                async listTools() {
                    const all = [];
                    let cursor;
                    for (let page = 0; page < 100; page++) {
                        const r = await client.listTools(cursor ? { cursor } : undefined, opts());
                        all.push(...r.tools);
                        cursor = r.nextCursor;
                        if (!cursor) return { tools: all, pages: page + 1 };
                    }
                    throw new Error('more than 100 pages of tools');
                },
                callTool: (params, extra) => client.callTool(params, undefined, opts(extra)),
                listResources: () => client.listResources(undefined, opts()),
                listResourceTemplates: () => client.listResourceTemplates(undefined, opts()),
                readResource: (uri) => client.readResource({ uri }, opts()),
                listPrompts: () => client.listPrompts(undefined, opts()),
                getPrompt: (p) => client.getPrompt(p, opts()),
                complete: (p) => client.complete(p, opts()),
                setLoggingLevel: (l) => client.setLoggingLevel(l, opts()),
                ping: () => client.ping(opts()),
                subscribe: (uri) => client.subscribeResource({ uri }, opts()),
                unsubscribe: (uri) => client.unsubscribeResource({ uri }, opts()),
                async close() {
                    if (transport.terminateSession) await transport.terminateSession().catch(() => {});
                    await client.close();
                },
            };
        },
    };
}

function makeSdk2(name, negotiation) {
    const { Client, StreamableHTTPClientTransport, SSEClientTransport, SdkError } = sdk2.mod;
    return {
        name,
        async connect(endpoint, url) {
            const h = handlers(name);
            const options = { capabilities: CAPABILITIES };
            if (negotiation) options.versionNegotiation = negotiation;
            const client = new Client({ name: `matrix-${name}`, version: sdk2.version }, options);
            client.setRequestHandler('sampling/createMessage', h.sampling);
            client.setRequestHandler('elicitation/create', h.elicitation);
            client.setRequestHandler('roots/list', async () => ({ roots: [h.root] }));
            const updates = [];
            client.setNotificationHandler('notifications/resources/updated', (n) => updates.push(n.params.uri));
            const transport = endpoint === 'sse' ? new SSEClientTransport(new URL(url)) : new StreamableHTTPClientTransport(new URL(url));
            await client.connect(transport, { timeout: CALL_TIMEOUT_MS });
            const opts = (extra = {}) => ({ timeout: CALL_TIMEOUT_MS, ...extra });
            const era = client.getProtocolEra?.() ?? 'legacy';
            // A method the negotiated era does not have, refused by the client itself: not a vMCP failure.
            const eraGuard = async (p) => {
                try {
                    return await p;
                } catch (e) {
                    // ping, logging/setLevel and resources/subscribe are gone from 2026-07-28.
                    if (era === 'modern' || (e instanceof SdkError && e.code === 'METHOD_NOT_SUPPORTED_BY_PROTOCOL_VERSION')) {
                        throw new Skip(`removed in ${client.getNegotiatedProtocolVersion()}: ${errText(e)}`);
                    }
                    throw e;
                }
            };
            return {
                root: h.root,
                updates,
                era,
                protocol: () => client.getNegotiatedProtocolVersion(),
                server: () => client.getServerVersion(),
                capabilities: () => client.getServerCapabilities(),
                async listTools() {
                    // Page by page with explicit cursors (the no-cursor call aggregates by itself).
                    const first = await client.listTools(undefined, opts({ cacheMode: 'bypass' }));
                    return { tools: first.tools, pages: 'aggregated' };
                },
                callTool: (params, extra) => client.callTool(params, opts(extra)),
                listResources: () => client.listResources(undefined, opts({ cacheMode: 'bypass' })),
                listResourceTemplates: () => client.listResourceTemplates(undefined, opts({ cacheMode: 'bypass' })),
                readResource: (uri) => client.readResource({ uri }, opts({ cacheMode: 'bypass' })),
                listPrompts: () => client.listPrompts(undefined, opts({ cacheMode: 'bypass' })),
                getPrompt: (p) => client.getPrompt(p, opts()),
                complete: (p) => client.complete(p, opts()),
                setLoggingLevel: (l) => eraGuard(client.setLoggingLevel(l, opts())),
                ping: () => eraGuard(client.ping(opts())),
                subscribe: (uri) => eraGuard(client.subscribeResource({ uri }, opts())),
                unsubscribe: (uri) => eraGuard(client.unsubscribeResource({ uri }, opts())),
                async close() {
                    if (transport.terminateSession) await transport.terminateSession().catch(() => {});
                    await client.close();
                },
            };
        },
    };
}

const kinds = {
    ts1: () => makeSdk1(`ts-sdk@${sdk1.version}`),
    ts2: () => makeSdk2(`ts-client@${sdk2.version}`, undefined),
    'ts2-auto': () => makeSdk2(`ts-client@${sdk2.version}/auto`, { mode: 'auto' }),
};

// ---------------------------------------------------------------------------------------------

function percentile(sorted, p) {
    if (!sorted.length) return NaN;
    return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function measure(session, clientName, endpoint, target, echoName) {
    if (!latencyN) return;
    const times = [];
    let errors = 0;
    let firstError;
    for (let i = 0; i < latencyN; i++) {
        const t0 = performance.now();
        try {
            const r = await withTimeout(session.callTool({ name: echoName, arguments: { message: `m${i}` } }), CALL_TIMEOUT_MS + 1000, 'echo');
            if (texts(r) !== `Echo: m${i}`) throw new Error(`unexpected answer ${JSON.stringify(r).slice(0, 200)}`);
            times.push(performance.now() - t0);
        } catch (e) {
            errors++;
            firstError ??= errText(e);
            if (errors >= 3) break;
        }
    }
    times.sort((a, b) => a - b);
    // Throughput: the same number of calls again, CONCURRENCY at a time on the one session.
    let throughput = NaN;
    if (!errors) {
        let next = 0;
        const t0 = performance.now();
        const worker = async () => {
            while (next < latencyN) {
                const i = next++;
                const r = await withTimeout(session.callTool({ name: echoName, arguments: { message: `c${i}` } }), CALL_TIMEOUT_MS + 1000, 'echo');
                if (texts(r) !== `Echo: c${i}`) throw new Error(`unexpected answer ${JSON.stringify(r).slice(0, 200)}`);
            }
        };
        try {
            await Promise.all(Array.from({ length: CONCURRENCY }, worker));
            throughput = +((latencyN * 1000) / (performance.now() - t0)).toFixed(1);
        } catch (e) {
            errors++;
            firstError ??= `at concurrency ${CONCURRENCY}: ${errText(e)}`;
        }
    }
    const entry = {
        client: clientName,
        endpoint,
        label,
        target,
        n: times.length,
        errors,
        p50_ms: +percentile(times, 50).toFixed(2),
        p99_ms: +percentile(times, 99).toFixed(2),
        mean_ms: times.length ? +(times.reduce((a, b) => a + b, 0) / times.length).toFixed(2) : NaN,
        concurrency: CONCURRENCY,
        calls_per_s: throughput,
    };
    latencies.push(entry);
    const detail = `${target}: ${entry.n} calls p50=${entry.p50_ms}ms p99=${entry.p99_ms}ms mean=${entry.mean_ms}ms, ${throughput} calls/s at concurrency ${CONCURRENCY}` + (errors ? ` errors=${errors} first: ${firstError}` : '');
    record(clientName, endpoint, `latency-${target}`, errors ? 'FAIL' : 'ok', detail);
}

async function runClient(kind, endpoint, url) {
    const c = kind();
    const C = c.name;
    let s;
    const ok = await check(C, endpoint, 'connect', async () => {
        s = await c.connect(endpoint, url);
        const caps = s.capabilities() || {};
        return `era=${s.era} protocol=${s.protocol()} server=${JSON.stringify(s.server())} caps=${Object.keys(caps).join(',')}`;
    });
    if (!ok) return;
    try {
        await operations(C, endpoint, s);
    } finally {
        await withTimeout(s.close(), 5000, 'close').catch((e) => console.error(`${C} ${endpoint}: close: ${errText(e)}`));
    }
}

async function operations(C, E, s) {
    let toolNames = [];
    await check(C, E, 'tools/list', async () => {
        const { tools, pages } = await s.listTools();
        toolNames = tools.map((t) => t.name);
        const need = ['echo', 'get-structured-content', 'get-tiny-image', 'trigger-long-running-operation'].map(tool);
        const missing = need.filter((n) => !toolNames.includes(n));
        expect(!missing.length, `missing ${missing.join(', ')} in ${toolNames.join(', ')}`);
        return `${tools.length} tools, pages=${pages}`;
    });
    await check(C, E, 'tools/call-echo', async () => {
        const r = await s.callTool({ name: tool('echo'), arguments: { message: 'hello matrix' } });
        expect(texts(r) === 'Echo: hello matrix' && !r.isError, `answer ${JSON.stringify(r)}`);
        return texts(r);
    });
    await check(C, E, 'tools/call-structured', async () => {
        const r = await s.callTool({ name: tool('get-structured-content'), arguments: { location: 'Chicago' } });
        expect(r.structuredContent?.temperature === 36, `structuredContent ${JSON.stringify(r.structuredContent)} in ${JSON.stringify(r).slice(0, 300)}`);
        return `structuredContent=${JSON.stringify(r.structuredContent)}`;
    });
    await check(C, E, 'tools/call-unknown-tool', async () => {
        try {
            const r = await s.callTool({ name: tool('no-such-tool'), arguments: {} });
            expect(r.isError === true, `no error: ${JSON.stringify(r)}`);
            return `isError: ${texts(r)}`;
        } catch (e) {
            if (e.message?.startsWith('no error')) throw e;
            expect(typeof e.code === 'number' || /-32\d\d\d/.test(e.message), `not a JSON-RPC error: ${errText(e)}`);
            return `JSON-RPC error: ${errText(e)}`;
        }
    });
    await check(C, E, 'tools/call-bad-args', async () => {
        try {
            const r = await s.callTool({ name: tool('get-sum'), arguments: { a: 'not a number', b: 2 } });
            expect(r.isError === true, `no error: ${JSON.stringify(r)}`);
            return `isError: ${oneLine(texts(r), 120)}`;
        } catch (e) {
            if (e.message?.startsWith('no error')) throw e;
            expect(typeof e.code === 'number' || /-32\d\d\d/.test(e.message), `not a JSON-RPC error: ${errText(e)}`);
            return `JSON-RPC error: ${errText(e)}`;
        }
    });
    await check(C, E, 'tools/call-image', async () => {
        const r = await s.callTool({ name: tool('get-tiny-image'), arguments: {} });
        const img = (r.content || []).find((c) => c.type === 'image');
        expect(img && img.mimeType === 'image/png' && img.data?.length > 100, `no image/png in ${JSON.stringify(r).slice(0, 300)}`);
        return `image/png ${img.data.length} base64 chars`;
    });
    let staticUri;
    await check(C, E, 'resources/list', async () => {
        const r = await s.listResources();
        const t = await s.listResourceTemplates();
        staticUri = r.resources.find((x) => x.uri.startsWith('demo://resource/static/'))?.uri;
        expect(staticUri, `no demo://resource/static/ resource in ${r.resources.map((x) => x.uri).join(', ')}`);
        const templ = t.resourceTemplates.map((x) => x.uriTemplate);
        expect(templ.some((u) => u.includes('demo://resource/dynamic/text/')), `no dynamic text template in ${templ.join(', ')}`);
        return `${r.resources.length} resources, ${templ.length} templates`;
    });
    await check(C, E, 'resources/read-static', async () => {
        expect(staticUri, 'no static resource listed');
        const r = await s.readResource(staticUri);
        const c = r.contents?.[0];
        expect(c && c.uri === staticUri && (c.text?.length > 0 || c.blob?.length > 0), `contents ${JSON.stringify(r).slice(0, 300)}`);
        return `${staticUri}: ${c.mimeType} ${(c.text ?? c.blob).length} chars`;
    });
    await check(C, E, 'resources/read-template', async () => {
        const uri = 'demo://resource/dynamic/text/7';
        const r = await s.readResource(uri);
        const c = r.contents?.[0];
        expect(c && c.uri === uri && c.text, `contents ${JSON.stringify(r).slice(0, 300)}`);
        return oneLine(c.text, 100);
    });
    await check(C, E, 'prompts/list', async () => {
        const r = await s.listPrompts();
        const names = r.prompts.map((p) => p.name);
        expect(names.includes(tool('simple-prompt')) && names.includes(tool('completable-prompt')), `prompts ${names.join(', ')}`);
        return `${names.length} prompts`;
    });
    await check(C, E, 'prompts/get', async () => {
        const r = await s.getPrompt({ name: tool('completable-prompt'), arguments: { department: 'Engineering', name: 'Alice' } });
        const text = r.messages?.[0]?.content?.text;
        expect(text === 'Please promote Alice to the head of the Engineering team.', `messages ${JSON.stringify(r).slice(0, 300)}`);
        return text;
    });
    await check(C, E, 'completion/complete', async () => {
        const caps = s.capabilities() || {};
        const r = await s.complete({
            ref: { type: 'ref/prompt', name: tool('completable-prompt') },
            argument: { name: 'department', value: 'Eng' },
        });
        expect(JSON.stringify(r.completion?.values) === '["Engineering"]', `completion ${JSON.stringify(r)} (server caps.completions=${JSON.stringify(caps.completions)})`);
        return `values=${JSON.stringify(r.completion.values)}`;
    });
    await check(C, E, 'progress', async () => {
        const seen = [];
        const r = await s.callTool(
            { name: tool('trigger-long-running-operation'), arguments: { duration: 1, steps: 3 } },
            { onprogress: (p) => seen.push(p.progress) },
        );
        expect(texts(r).startsWith('Long running operation completed'), `answer ${JSON.stringify(r).slice(0, 300)}`);
        // The last notification may be dispatched just after the result resolves the call.
        for (let i = 0; i < 20 && seen.length < 3; i++) await new Promise((res) => setTimeout(res, 25));
        // Direct to server-everything over legacy SSE the last one arrives after the result (and is
        // dropped by the client): at least one must arrive, the count is in the detail.
        expect(seen.length >= 1, `no progress notification arrived (result ${JSON.stringify(r).slice(0, 200)})`);
        return `${seen.length}/3 progress notifications ${JSON.stringify(seen)}`;
    });
    await check(C, E, 'cancel', async () => {
        const ac = new AbortController();
        const t0 = performance.now();
        const call = s.callTool({ name: tool('trigger-long-running-operation'), arguments: { duration: 8, steps: 8 } }, { signal: ac.signal });
        setTimeout(() => ac.abort(new Error('matrix abort')), 400);
        let aborted;
        try {
            await withTimeout(call, 5000, 'aborted call');
            throw new Error('the aborted call completed');
        } catch (e) {
            if (e.message === 'the aborted call completed' || e.message?.startsWith('timed out')) throw e;
            aborted = `${errText(e)} after ${(performance.now() - t0).toFixed(0)} ms`;
        }
        const r = await s.callTool({ name: tool('echo'), arguments: { message: 'after cancel' } });
        expect(texts(r) === 'Echo: after cancel', `next call answered ${JSON.stringify(r).slice(0, 200)}`);
        return `aborted: ${aborted}; next call ok`;
    });
    await check(C, E, 'sampling', async () => {
        const name = tool('trigger-sampling-request');
        expect(toolNames.includes(name), `${name} not listed (upstream registers it only when its client declared sampling)`);
        const r = await s.callTool({ name, arguments: { prompt: 'say hi', maxTokens: 10 } });
        const t = texts(r);
        expect(!r.isError && t.includes(`sampled-by-${C}`), `answer ${oneLine(t || JSON.stringify(r), 300)}`);
        return 'the handler answer came back';
    });
    await check(C, E, 'elicitation', async () => {
        const name = tool('trigger-elicitation-request');
        expect(toolNames.includes(name), `${name} not listed (upstream registers it only when its client declared elicitation)`);
        const r = await s.callTool({ name, arguments: {} });
        const t = texts(r);
        expect(!r.isError && t.includes(`elicited-by-${C}`), `answer ${oneLine(t || JSON.stringify(r), 300)}`);
        return 'the handler answer came back';
    });
    await check(C, E, 'roots', async () => {
        const name = tool('get-roots-list');
        expect(toolNames.includes(name), `${name} not listed (upstream registers it only when its client declared roots)`);
        const r = await s.callTool({ name, arguments: {} });
        const t = texts(r);
        const other = (t.match(/file:\/\/\/matrix\/\S+/g) || []).filter((u) => u !== s.root.uri);
        expect(
            !r.isError && t.includes(s.root.uri),
            other.length
                ? `the answer names another client's root ${other.join(', ')}, not ${s.root.uri}`
                : `the answer does not name ${s.root.uri}: ${oneLine(t || JSON.stringify(r), 300)}`,
        );
        return `names ${s.root.uri}`;
    });
    await check(C, E, 'logging/setLevel', async () => {
        await s.setLoggingLevel('debug');
        return 'accepted';
    });
    await check(C, E, 'ping', async () => {
        await s.ping();
        return 'pong';
    });
    await check(C, E, 'resources/subscribe', async () => {
        const uri = 'demo://resource/dynamic/text/3';
        await s.subscribe(uri);
        // server-everything sends an update for the subscribed URIs of its session when the
        // simulated updates are switched on (and then every 5 s): switch on, wait, switch off.
        const toggle = async () => texts(await s.callTool({ name: tool('toggle-subscriber-updates'), arguments: {} }));
        let state = await toggle();
        if (state.startsWith('Stopped')) state = await toggle();
        const deadline = performance.now() + 6000;
        while (!s.updates.includes(uri) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        await toggle();
        await s.unsubscribe(uri);
        expect(s.updates.includes(uri), `subscribed, but no notifications/resources/updated for ${uri} within 6 s (got ${JSON.stringify(s.updates)})`);
        return 'subscribed; notifications/resources/updated arrived; unsubscribed';
    }, 30000);
    await measure(s, C, E, 'vmcp', tool('echo'));
}

/** A call's outcome as one line that two calls can be compared by: the JSON-RPC error or the result. */
async function outcome(promise) {
    try {
        const r = await promise;
        return { code: undefined, result: r, line: `result isError=${r?.isError === true}: ${oneLine(texts(r), 300)}` };
    } catch (e) {
        return { code: e?.code, line: `code=${e?.code} ${e?.message}`, text: errText(e) };
    }
}

/** JSON with object keys sorted: two values compare equal whatever their key order. */
const canonical = (v) =>
    JSON.stringify(v, (_, x) =>
        x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : 1))) : x,
    );

const SEARCH_QUERY = 'echo a message back';

/** The tool-search section: the same client and endpoint, on a vMCP with `tool_search` "search". */
async function searchOperations(C, E, s) {
    await check(C, E, 'search/tools-list', async () => {
        const { tools } = await s.listTools();
        const names = tools.map((t) => t.name);
        expect(JSON.stringify(names) === '["search_tools","call_tool"]', `listed ${JSON.stringify(names)}, not exactly ["search_tools","call_tool"]`);
        return names.join(', ');
    });
    let echoName;
    await check(C, E, 'search/search_tools', async () => {
        const r = await s.callTool({ name: 'search_tools', arguments: { query: SEARCH_QUERY } });
        const sc = r.structuredContent;
        expect(!r.isError && Array.isArray(sc?.tools) && Number.isInteger(sc?.of), `answer ${JSON.stringify(r).slice(0, 300)}`);
        const found = sc.tools.map((t) => t.name);
        const at = found.indexOf(tool('echo'));
        expect(at >= 0 && at < 3, `${tool('echo')} not among the first 3 of [${found.join(', ')}]`);
        const echo = sc.tools[at];
        expect(echo.inputSchema?.properties?.message, `no message property in the inputSchema of ${JSON.stringify(echo).slice(0, 300)}`);
        expect(sc.tools.length <= 5 && sc.of >= sc.tools.length, `${sc.tools.length} tools of ${sc.of} (default limit 5)`);
        let text;
        try {
            text = JSON.parse(r.content?.[0]?.text);
        } catch {}
        expect(canonical(text) === canonical(sc), `the first text content is not the structuredContent: ${oneLine(r.content?.[0]?.text, 200)}`);
        echoName = echo.name;
        return `"${SEARCH_QUERY}": ${echo.name} #${at + 1} of [${found.join(', ')}], of=${sc.of}`;
    });
    await check(C, E, 'search/call_tool-echo', async () => {
        const name = echoName ?? tool('echo');
        const r = await s.callTool({ name: 'call_tool', arguments: { name, arguments: { message: 'hi' } } });
        expect(texts(r) === 'Echo: hi' && !r.isError, `answer ${JSON.stringify(r).slice(0, 300)}`);
        return `${name}: ${texts(r)}`;
    });
    await check(C, E, 'search/call_tool-structured', async () => {
        const name = tool('get-structured-content');
        const r = await s.callTool({ name: 'call_tool', arguments: { name, arguments: { location: 'Chicago' } } });
        expect(r.structuredContent?.temperature === 36 && !r.isError, `structuredContent in ${JSON.stringify(r).slice(0, 300)}`);
        return `${name}: structuredContent=${JSON.stringify(r.structuredContent)}`;
    });
    // Bad arguments of search_tools: a JSON-RPC error -32602 (invalid params).
    const refused = async (what, args) => {
        const o = await outcome(s.callTool({ name: 'search_tools', arguments: args }));
        expect(o.code === -32602, `${what}: not a -32602 (invalid params) error: ${o.line}`);
        return `${what}: ${o.text}`;
    };
    await check(C, E, 'search/search_tools-bad-limit', async () =>
        [await refused('limit 0', { query: SEARCH_QUERY, limit: 0 }), await refused('limit 10000', { query: SEARCH_QUERY, limit: 10000 })].join('; '),
    );
    await check(C, E, 'search/search_tools-no-query', async () =>
        [await refused('no query', {}), await refused('empty query', { query: '' })].join('; '),
    );
    await check(C, E, 'search/call_tool-unknown-tool', async () => {
        const name = tool('no-such-tool');
        const via = await outcome(s.callTool({ name: 'call_tool', arguments: { name, arguments: {} } }));
        expect(typeof via.code === 'number' || via.result?.isError === true, `no error: ${via.line}`);
        const directly = await outcome(s.callTool({ name, arguments: {} }));
        expect(via.line === directly.line, `call_tool answered ${via.line}; a direct call ${directly.line}`);
        return `as a direct call: ${via.text ?? via.line}`;
    });
}

async function runSearch(kind, endpoint, url) {
    const c = kind();
    const C = c.name;
    let s;
    const ok = await check(C, endpoint, 'search/connect', async () => {
        s = await c.connect(endpoint, url);
        return `era=${s.era} protocol=${s.protocol()} server=${JSON.stringify(s.server())}`;
    });
    if (!ok) return;
    try {
        await searchOperations(C, endpoint, s);
    } finally {
        await withTimeout(s.close(), 5000, 'close').catch((e) => console.error(`${C} ${endpoint}: close: ${errText(e)}`));
    }
}

async function directLatency(kind) {
    const c = kind();
    let s;
    const ok = await check(c.name, 'direct', 'connect', async () => {
        s = await c.connect('http', direct);
        return `era=${s.era} protocol=${s.protocol()}`;
    });
    if (!ok) return;
    try {
        await measure(s, c.name, 'direct', 'direct', 'echo');
    } finally {
        await withTimeout(s.close(), 5000, 'close').catch(() => {});
    }
}

for (const k of wanted) {
    if (!kinds[k]) {
        console.error(`unknown client ${k}; known: ${Object.keys(kinds).join(', ')}`);
        process.exit(2);
    }
    for (const [endpoint, url] of Object.entries(endpoints)) {
        if (url) await runClient(kinds[k], endpoint, url);
        if (url && searchEndpoints[endpoint]) await runSearch(kinds[k], endpoint, searchEndpoints[endpoint]);
    }
    if (k === 'ts1') {
        for (const endpoint of Object.keys(stdioPaths)) {
            await runClient(kinds[k], endpoint, endpoints.http);
            if (searchEndpoints.http) await runSearch(kinds[k], endpoint, searchEndpoints.http);
        }
    }
    if (direct && latencyN) await directLatency(kinds[k]);
}

const failed = results.filter((r) => r.status === 'FAIL');
const summary = {
    language: 'typescript',
    label,
    node: process.version,
    packages: { '@modelcontextprotocol/sdk': sdk1.version, '@modelcontextprotocol/client': sdk2.version },
    endpoints,
    direct: direct ?? null,
    checks: results,
    latency: latencies,
    passed: results.filter((r) => r.status === 'ok').length,
    failed: failed.length,
    skipped: results.filter((r) => r.status === 'skip').length,
};
if (jsonPath) writeFileSync(jsonPath, JSON.stringify(summary, null, 2) + '\n');
console.log(`typescript clients: ${summary.passed} passed, ${summary.failed} failed, ${summary.skipped} skipped`);
process.exit(failed.length ? 1 : 0);
