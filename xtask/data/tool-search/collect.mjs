// Collects the tool-search catalog (catalog.json) from real, public MCP servers.
//
// For each server listed in servers.json this script
//   1. installs the exact package version into a work directory (npm: its own `npm install
//      --prefix`; PyPI: its own virtualenv), unless it is there already;
//   2. starts the server over stdio with the official TypeScript SDK client
//      (`Client` + `StdioClientTransport`), with the dummy env vars / args that servers.json gives
//      (no real credentials: only servers that can list their tools without a service are used);
//   3. sends initialize + tools/list, following nextCursor, and records every tool's name,
//      description and inputSchema exactly as the server returned them;
//   4. stops the child (and anything it spawned) and moves on. Each server has a timeout.
//
// The catalog keeps the servers in servers.json order, and at most `cap` tools per server (the first
// ones in the server's own listing order; default 80) so that no one server dominates.
//
// Prerequisites: node >= 20, npm, python3 with venv, reach to the npm registry and PyPI, and the SDK
// (which brings zod, also used here) in the work directory:
//   npm i --prefix "$WORK" @modelcontextprotocol/sdk@1.32.2
//
// usage: node collect.mjs [--work DIR] [--servers FILE] [--out FILE] [--only a,b,c]
//                         [--no-install] [--timeout SECONDS] [--jobs N]
//   --work       scratch directory for installs and per-server run dirs (default /tmp/toolcat)
//   --servers    the server list (default servers.json beside this script)
//   --out        where the catalog goes (default catalog.json beside this script)
//   --only       collect these servers only; the other servers' entries already in --out are kept
//   --no-install do not install anything (fail a server whose package is missing)
//   --timeout    per-server timeout for start + initialize + tools/list (default 60)
//   --jobs       installs run in parallel (default 3); servers are always started one at a time
//
// servers.json: {"servers": [{
//   "server":  "github",                                     // short unique name, used in tool ids
//   "source":  "npm:@modelcontextprotocol/server-github@2025.4.8" | "pypi:mcp-server-git==2026.10.19",
//   "bin":     "mcp-server-github",                          // executable in node_modules/.bin or the venv's bin
//   "args":    ["..."],                                      // optional
//   "env":     {"GITHUB_PERSONAL_ACCESS_TOKEN": "dummy"},    // optional, dummy values only
//   "cap":     80,                                           // optional, max tools kept
//   "with":    ["mcp==1.6.0"],                               // optional, installed alongside (pins)
//   "python":  "python3.12",                                 // optional, interpreter for the venv
//   "skip":    "why"                                         // optional: listed but not collected
// }]}
// In args and env values, {run} stands for the server's own scratch directory (also its HOME/cwd).

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const arg = (name, fallback) => {
    const i = argv.indexOf(name);
    return i >= 0 && i + 1 < argv.length ? argv[i + 1] : fallback;
};
const WORK = resolve(arg('--work', '/tmp/toolcat'));
const SERVERS = resolve(arg('--servers', join(HERE, 'servers.json')));
const OUT = resolve(arg('--out', join(HERE, 'catalog.json')));
const ONLY = arg('--only') ? new Set(arg('--only').split(',')) : null;
const INSTALL = !argv.includes('--no-install');
const TIMEOUT_MS = Number(arg('--timeout', '60')) * 1000;
const JOBS = Number(arg('--jobs', '3'));
const DEFAULT_CAP = 80;

// The SDK is loaded from the work directory, so this folder needs no package.json/node_modules.
const sdk = (p) => pathToFileURL(join(WORK, 'node_modules/@modelcontextprotocol/sdk/dist/esm', p)).href;
const { Client } = await import(sdk('client/index.js'));
const { StdioClientTransport } = await import(sdk('client/stdio.js'));
// tools/list is sent with a permissive result schema rather than `client.listTools()`: the SDK's own
// schema rejects some real servers' listings (e.g. an inputSchema without `"type": "object"`), and
// parsing through it could reshape what the server sent. The catalog keeps the raw JSON.
const { z } = await import(pathToFileURL(join(WORK, 'node_modules/zod/index.js')).href);
const LooseListToolsResult = z.looseObject({ tools: z.array(z.any()), nextCursor: z.string().optional() });

/** Splits "npm:@scope/name@1.2.3" / "pypi:name==1.2.3" into kind and installable spec. */
function parseSource(source) {
    const m = /^(npm|pypi):(.+)$/.exec(source);
    if (!m) throw new Error(`bad source ${source}`);
    return { kind: m[1], spec: m[2] };
}

const installDir = (s) => join(WORK, parseSource(s.source).kind === 'npm' ? 'npm' : 'py', s.server);
const runDir = (s) => join(WORK, 'run', s.server);

function binPath(s) {
    const { kind } = parseSource(s.source);
    return kind === 'npm'
        ? join(installDir(s), 'node_modules', '.bin', s.bin)
        : join(installDir(s), 'bin', s.bin);
}

/** Runs a command asynchronously, resolving with its exit code (output to a log file). */
function run(cmd, args, opts, log) {
    return new Promise((res) => {
        const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        child.stdout.on('data', (d) => (out += d));
        child.stderr.on('data', (d) => (out += d));
        child.on('close', (code) => {
            writeFileSync(log, out);
            res(code);
        });
        child.on('error', (e) => {
            writeFileSync(log, String(e));
            res(1);
        });
    });
}

/** Installs one server's package into its own directory. Returns true on success. */
async function install(s) {
    if (existsSync(binPath(s))) return true;
    const { kind, spec } = parseSource(s.source);
    const dir = installDir(s);
    mkdirSync(dir, { recursive: true });
    const log = join(WORK, 'logs', `install-${s.server}.log`);
    // Packages that fetch a browser in a postinstall step must not (nothing outside the
    // registries is reachable, and listing tools never needs the browser).
    const env = { ...process.env, PUPPETEER_SKIP_DOWNLOAD: '1', PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: '1' };
    let code;
    if (kind === 'npm') {
        if (!existsSync(join(dir, 'package.json'))) writeFileSync(join(dir, 'package.json'), '{"private":true}\n');
        const flags = ['--no-audit', '--no-fund'];
        code = await run('npm', ['install', '--prefix', dir, ...flags, spec, ...(s.with || [])], { env }, log);
    } else {
        code = await run(s.python || 'python3', ['-m', 'venv', dir], { env }, log);
        if (code === 0) {
            code = await run(join(dir, 'bin', 'pip'), ['install', '-q', spec, ...(s.with || [])], { env }, log);
        }
    }
    const ok = code === 0 && existsSync(binPath(s));
    console.error(`${ok ? 'installed' : 'INSTALL FAILED'} ${s.server} (${s.source})${ok ? '' : `, see ${log}`}`);
    return ok;
}

/** Every live descendant of a pid (from /proc), so nothing a server spawned outlives it. */
function descendants(pid) {
    const children = new Map();
    for (const d of readdirSync('/proc')) {
        if (!/^\d+$/.test(d)) continue;
        try {
            const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
            const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
            if (!children.has(ppid)) children.set(ppid, []);
            children.get(ppid).push(Number(d));
        } catch {
            // the process is gone
        }
    }
    const out = [];
    const walk = (p) => (children.get(p) || []).forEach((c) => (out.push(c), walk(c)));
    walk(pid);
    return out;
}

const subst = (v, s) => v.replaceAll('{run}', runDir(s));

/** Starts one server, lists its tools, stops it. Returns the tools (uncapped). */
async function listTools(s) {
    const dir = runDir(s);
    mkdirSync(dir, { recursive: true });
    const env = {
        HOME: dir,
        // No telemetry, no update checks: nothing here should leave the machine.
        DO_NOT_TRACK: '1',
        NO_UPDATE_NOTIFIER: '1',
        // Fixed str hashing, so a Python server that builds text from a set (mcp-atlassian's
        // `fields` defaults) lists the same bytes on every run.
        PYTHONHASHSEED: '0',
        ...Object.fromEntries(Object.entries(s.env || {}).map(([k, v]) => [k, subst(v, s)])),
    };
    // npm bins are node scripts: run them with this node (one of them ships without a shebang).
    const npm = parseSource(s.source).kind === 'npm';
    const args = (s.args || []).map((a) => subst(a, s));
    const transport = new StdioClientTransport({
        command: npm ? process.execPath : binPath(s),
        args: npm ? [realpathSync(binPath(s)), ...args] : args,
        env,
        cwd: dir,
        stderr: 'pipe',
    });
    let stderr = '';
    transport.stderr?.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
    const client = new Client({ name: 'vmcp-tool-search-collector', version: '1.0.0' });
    let timer;
    const timeout = new Promise((_, rej) => {
        timer = setTimeout(() => rej(new Error(`timeout after ${TIMEOUT_MS / 1000}s`)), TIMEOUT_MS);
    });
    let pids = [];
    try {
        const work = (async () => {
            await client.connect(transport, { timeout: TIMEOUT_MS });
            const tools = [];
            let cursor;
            do {
                const page = await client.request(
                    { method: 'tools/list', params: cursor ? { cursor } : {} },
                    LooseListToolsResult,
                    { timeout: TIMEOUT_MS },
                );
                tools.push(...page.tools);
                cursor = page.nextCursor;
            } while (cursor);
            return tools;
        })();
        return await Promise.race([work, timeout]);
    } catch (e) {
        e.message += `\n--- stderr (tail) ---\n${stderr}`;
        throw e;
    } finally {
        clearTimeout(timer);
        if (transport.pid) pids = descendants(transport.pid);
        await client.close().catch(() => {});
        for (const p of pids) {
            try {
                process.kill(p, 'SIGKILL');
            } catch {
                // already gone
            }
        }
        writeFileSync(join(WORK, 'logs', `run-${s.server}.log`), stderr);
    }
}

// ---------------------------------------------------------------------------------------------

mkdirSync(join(WORK, 'logs'), { recursive: true });
const servers = JSON.parse(readFileSync(SERVERS, 'utf8')).servers;
const names = new Set();
for (const s of servers) {
    if (names.has(s.server)) throw new Error(`duplicate server name ${s.server}`);
    names.add(s.server);
}
const todo = servers.filter((s) => !s.skip && (!ONLY || ONLY.has(s.server)));

// Installs, a few at a time.
const installed = new Set();
if (INSTALL) {
    const queue = [...todo];
    await Promise.all(
        Array.from({ length: JOBS }, async () => {
            for (let s; (s = queue.shift()); ) if (await install(s)) installed.add(s.server);
        }),
    );
} else {
    for (const s of todo) if (existsSync(binPath(s))) installed.add(s.server);
}

// Keep the entries of servers not collected this time (with --only), in servers.json order.
const previous = new Map();
if (ONLY && existsSync(OUT)) {
    for (const e of JSON.parse(readFileSync(OUT, 'utf8')).servers) previous.set(e.server, e);
}

const collected = new Map();
const failed = [];
for (const s of todo) {
    if (!installed.has(s.server)) {
        failed.push(`${s.server}: not installed`);
        continue;
    }
    const t0 = Date.now();
    try {
        const tools = await listTools(s);
        const cap = s.cap ?? DEFAULT_CAP;
        const kept = tools.slice(0, cap).map((t) => ({
            name: t.name,
            description: t.description,
            inputSchema: t.inputSchema,
        }));
        collected.set(s.server, { server: s.server, source: s.source, tools: kept });
        const capped = tools.length > cap ? ` (capped from ${tools.length})` : '';
        console.error(`ok   ${s.server}: ${kept.length} tools${capped} in ${Date.now() - t0} ms`);
    } catch (e) {
        failed.push(`${s.server}: ${e.message.split('\n')[0]}`);
        console.error(`FAIL ${s.server}: ${e.message}`);
    }
}

const entries = servers
    .map((s) => collected.get(s.server) || previous.get(s.server))
    .filter((e) => e && e.tools.length > 0);
const catalog = { collected: new Date().toISOString().slice(0, 10), servers: entries };
writeFileSync(OUT, JSON.stringify(catalog, null, 2) + '\n');
const total = entries.reduce((n, e) => n + e.tools.length, 0);
console.error(`wrote ${OUT}: ${entries.length} servers, ${total} tools`);
if (failed.length) console.error(`failed:\n  ${failed.join('\n  ')}`);
