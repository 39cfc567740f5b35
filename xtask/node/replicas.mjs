// The TypeScript clients of `cargo xtask replicas`: WORKERS sessions of the official TypeScript
// SDK (1.x `@modelcontextprotocol/sdk`, a 2025-11-25 session) or client (2.x
// `@modelcontextprotocol/client` with `versionNegotiation: {mode: 'auto'}`, 2026-07-28 requests)
// call TOOL through a load balancer until CALLS calls are made or SECONDS have passed. Failures
// are counted, not fatal (a replica may be stopped under them); one JSON line comes out:
//
//   {"client", "protocol", "ok", "failed", "session_errors", "per_second", "p50_ms", "errors"}
//
// A session error is an answer saying the session is unknown: what replicas must never give.
//
// usage: node replicas.mjs --npm-dir DIR --url URL --client ts1|ts2-auto [--tool echo]
//                          [--calls 200] [--seconds 120] [--workers 2]

import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';

const argv = process.argv.slice(2);
const arg = (name, fallback) => {
    const i = argv.indexOf(name);
    return i >= 0 && i + 1 < argv.length ? argv[i + 1] : fallback;
};
const modules = join(arg('--npm-dir'), 'node_modules');
const load = (path) => import(pathToFileURL(join(modules, path)).href);
const url = new URL(arg('--url'));
const which = arg('--client', 'ts1');
const tool = arg('--tool', 'echo');
const calls = Number(arg('--calls', '200'));
const seconds = Number(arg('--seconds', '120'));
const workers = Number(arg('--workers', '2'));
const TIMEOUT_MS = 20000;

async function connect(w) {
    if (which === 'ts1') {
        const { Client } = await load('@modelcontextprotocol/sdk/dist/esm/client/index.js');
        const { StreamableHTTPClientTransport } = await load('@modelcontextprotocol/sdk/dist/esm/client/streamableHttp.js');
        const client = new Client({ name: `replicas-ts1-${w}`, version: '1' }, { capabilities: {} });
        const transport = new StreamableHTTPClientTransport(url);
        await client.connect(transport, { timeout: TIMEOUT_MS });
        return { client, protocol: () => transport.protocolVersion ?? '2025-era', call: (p) => client.callTool(p, undefined, { timeout: TIMEOUT_MS }) };
    }
    const { Client, StreamableHTTPClientTransport } = await load('@modelcontextprotocol/client/dist/index.mjs');
    const client = new Client({ name: `replicas-ts2-${w}`, version: '2' }, { capabilities: {}, versionNegotiation: { mode: 'auto' } });
    await client.connect(new StreamableHTTPClientTransport(url), { timeout: TIMEOUT_MS });
    return { client, protocol: () => client.getNegotiatedProtocolVersion(), call: (p) => client.callTool(p, { timeout: TIMEOUT_MS }) };
}

const text = (e) => String(e?.message ?? e).replace(/\s+/g, ' ').slice(0, 300);
const deadline = performance.now() + seconds * 1000;
let next = 0;
let ok = 0;
let failed = 0;
let sessionErrors = 0;
const errors = [];
const latencies = [];
let protocol = '';
const started = performance.now();

async function worker(w) {
    let session;
    try {
        session = await connect(w);
        protocol = session.protocol();
    } catch (e) {
        failed += 1;
        errors.push(`connect: ${text(e)}`);
        return;
    }
    while (next++ < calls && performance.now() < deadline) {
        const t = performance.now();
        try {
            const r = await session.call({ name: tool, arguments: { message: `w${w}` } });
            if (r.isError) throw new Error(`tool error: ${JSON.stringify(r.content)}`);
            ok += 1;
            latencies.push(performance.now() - t);
        } catch (e) {
            failed += 1;
            const m = text(e);
            if (/session not found/i.test(m)) sessionErrors += 1;
            if (errors.length < 5) errors.push(m);
        }
    }
    await session.client.close().catch(() => {});
}

await Promise.all(Array.from({ length: workers }, (_, w) => worker(w)));
latencies.sort((a, b) => a - b);
const elapsed = (performance.now() - started) / 1000;
console.log(JSON.stringify({
    client: which === 'ts1' ? 'TypeScript SDK 1.x' : 'TypeScript client 2.x (auto)',
    protocol,
    ok,
    failed,
    session_errors: sessionErrors,
    per_second: ok / elapsed,
    p50_ms: latencies.length ? latencies[Math.floor((latencies.length - 1) / 2)] : null,
    errors,
}));
process.exit(0);
