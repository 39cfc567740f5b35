"""`cargo xtask replicas`: three vMCP replicas on one Postgres database behind HAProxy and nginx, driven by
the clients people use, and measured (docs/deployment.md, docs/benchmarks.md).

What it checks (exit 1 on any failure), with server-everything as the upstream:
  0. the balancer over three replicas is deploy/haproxy.cfg as shipped (addresses changed), nginx
     runs deploy/nginx.conf as shipped; through each: `/ws`, a same-origin browser request, and a
     call with 2 MiB of arguments.
  1. spread: the Python SDK (legacy session and auto/2026-07-28), the TypeScript SDK 1.x (legacy
     session), the TypeScript client 2.x (auto) and the rmcp client make hundreds of calls through
     a round-robin balancer with no stickiness; zero failures and zero session errors, and every
     replica served calls; the legacy SSE transport through the balancer's source-hashed backend;
     a Python SDK session held on r0 hears r0's upstream fetch roots at most a few times (none of
     these clients declares roots, so their turns are no roots changes).
  2. config: a vMCP changed through one replica: a session held through the balancer hears
     `tools/list_changed`, and lists through the balancer show the change (time to each).
  3. stop: under load from every client, one replica gets SIGTERM and is started again: clients go
     on through the others, no session error, every call a client saw succeed has its log row.
     Then one replica gets SIGKILL: the same, and the rows a killed process had not yet written
     are counted (reported, not a failure).
  4. throughput: the rmcp client through the balancer over 1, 2 and 3 replicas, one replica
     direct, and the upstream direct.
  5. sessions: 10,000 idle legacy sessions on one replica (memory in use, then released), and
     stateless 2026-07-28 requests (nothing held).
  6. nginx: the same replicas behind nginx with deploy/nginx.conf as shipped (only its addresses
     changed to this machine's): every client, the legacy SSE transport, and `/ws` (the upgrade,
     the first message, and a tool call's log entry heard through it).
Writes a Markdown section between `<!-- replicas:begin -->` and `<!-- replicas:end -->` in
--report, and everything as JSON in --out.
"""

import argparse
import atexit
import asyncio
import base64
import faulthandler
import json
import os
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

import httpx2 as httpx
import mcp_types as types
from mcp.client.client import Client
from mcp.client.sse import sse_client

p = argparse.ArgumentParser()
p.add_argument("--vmcp", required=True)
p.add_argument("--bench", required=True, help="the vmcp-bench binary (the rmcp client)")
p.add_argument("--node", required=True)
p.add_argument("--npm-dir", required=True)
p.add_argument("--postgres", required=True, help="an admin URL; a scratch database is made on it")
p.add_argument("--out", required=True)
p.add_argument("--report", default="")
p.add_argument("--sessions", type=int, default=10000)
p.add_argument("--quick", action="store_true")
args = p.parse_args()

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
KEY = "replicas-test-session-key-" + os.urandom(12).hex()
TOOL = "everything.echo"
failures = []
figures = {}
procs = []


def log(msg):
    print(f"replicas: {msg}", file=sys.stderr, flush=True)


def check(ok, what):
    print(f"{'ok  ' if ok else 'FAIL'} {what}", flush=True)
    if not ok:
        failures.append(what)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_http(url, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:  # noqa: BLE001
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {seconds} s")


def start(cmd, name, env=None):
    out = open(os.path.join(args.out, f"{name}.log"), "ab")
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    procs.append(proc)
    return proc


def stop_all():
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


atexit.register(stop_all)


async def bounded(proc, seconds):
    """A driver's output; one that has not ended within `seconds` is killed (what it printed is
    kept, its stderr says so): a request nobody answers is a failure, never a hung run."""
    try:
        out, err = await asyncio.wait_for(proc.communicate(), seconds)
    except asyncio.TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        err += f"\nkilled: not done within {seconds} s".encode()
    for line in err.decode(errors="replace").splitlines():
        if line.startswith(("drive:", "killed:")):
            print(f"info {line}", flush=True)
    return out, err


def watchdog(minutes):
    """The whole run is bounded too: past `minutes` every thread's stack is printed, the parts
    are stopped, and the run fails (CI has a time limit; a silent hang would use all of it)."""
    def fire():
        print(f"FAIL replicas: not done within {minutes} min; where each thread was:", flush=True)
        faulthandler.dump_traceback(all_threads=True)
        for name in ("r0", "r1", "r2", "haproxy", "nginx"):
            path = os.path.join(args.out, f"{name}.log")
            if os.path.exists(path):
                tail = open(path, "rb").read()[-2000:].decode(errors="replace")
                print(f"--- the end of {path}\n{tail}", flush=True)
        stop_all()
        os._exit(1)
    timer = threading.Timer(minutes * 60, fire)
    timer.daemon = True
    timer.start()


watchdog(25 if args.quick else 75)


def cpu_seconds(pids):
    """User and system CPU time of these processes, in seconds."""
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return total


def postgres_pids():
    out = subprocess.run(["pgrep", "-x", "postgres"], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# --- the parts --------------------------------------------------------------------------------

os.makedirs(args.out, exist_ok=True)
db_name = "vmcp_replicas_test"
admin = args.postgres
subprocess.run(["psql", admin, "-qc", f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"], check=True,
               stderr=subprocess.DEVNULL)
subprocess.run(["psql", admin, "-qc", f"CREATE DATABASE {db_name}"], check=True)
db_url = admin.rsplit("/", 1)[0] + "/" + db_name

se_port = free_port()
everything = start([args.node, os.path.join(args.npm_dir, "node_modules/.bin/mcp-server-everything"), "streamableHttp"],
      "everything", {"PORT": str(se_port)})
ports = [free_port() for _ in range(3)]
replicas = [None, None, None]


def start_replica(i):
    replicas[i] = start([args.vmcp, "--bind", f"127.0.0.1:{ports[i]}", "--database-url", db_url,
                         "--replica-id", f"r{i}", "--log", "warn", "--session-hold", "5s"],
                        f"r{i}", {"VMCP_SESSION_KEY": KEY, "NO_COLOR": "1"})
    wait_http(f"http://127.0.0.1:{ports[i]}/health")


for i in range(3):
    start_replica(i)
deadline = time.time() + 60
while True:
    try:
        socket.create_connection(("127.0.0.1", se_port), 1).close()
        break
    except OSError:
        if time.time() > deadline:
            raise SystemExit("server-everything did not listen")
        time.sleep(0.1)

lb = {n: free_port() for n in (1, 2, 3)}
haproxy_cfg = os.path.join(args.out, "haproxy.cfg")
servers = lambda n: "\n".join(  # noqa: E731
    f"    server r{i} 127.0.0.1:{ports[i]} check inter 250ms fall 2 rise 1" for i in range(n))
with open(haproxy_cfg, "w") as f:
    f.write(f"""# Written by `cargo xtask replicas`: balancers over 1 and 2 replicas, for the throughput figures.
global
    maxconn 4000
defaults
    mode http
    timeout connect 2s
    timeout client 1h
    timeout server 1h
    option httpchk GET /health
    retry-on conn-failure empty-response
    retries 2
    option redispatch
""")
    for n in (1, 2):
        f.write(f"""
frontend lb{n}
    bind 127.0.0.1:{lb[n]}
    acl legacy_sse path_end /sse /message
    use_backend sticky{n} if legacy_sse
    default_backend round{n}
backend round{n}
    balance roundrobin
{servers(n)}
backend sticky{n}
    balance source
{servers(n)}
""")
# The balancer over all three is deploy/haproxy.cfg as shipped: only the replicas' addresses and
# its port are this machine's.
shipped_haproxy = open(os.path.join(ROOT, "deploy/haproxy.cfg")).read()
for i in range(3):
    shipped_haproxy = shipped_haproxy.replace(f"vmcp-{i}.internal:8000", f"127.0.0.1:{ports[i]}")
shipped_haproxy = shipped_haproxy.replace("bind :8000", f"bind 127.0.0.1:{lb[3]}")
assert ".internal" not in shipped_haproxy and f":{lb[3]}" in shipped_haproxy, "deploy/haproxy.cfg changed shape"
haproxy_shipped_cfg = os.path.join(args.out, "haproxy-shipped.cfg")
with open(haproxy_shipped_cfg, "w") as f:
    f.write(shipped_haproxy)
haproxy = start(["haproxy", "-db", "-f", haproxy_cfg, "-f", haproxy_shipped_cfg], "haproxy")
for n in (1, 2, 3):
    wait_http(f"http://127.0.0.1:{lb[n]}/health")

# nginx runs the shipped configuration: only the replicas' addresses and its port are this
# machine's (a rule that works only in a copy would prove nothing about the file users take).
nginx_port = free_port()
site = open(os.path.join(ROOT, "deploy/nginx.conf")).read()
for i in range(3):
    site = site.replace(f"vmcp-{i}.internal:8000", f"127.0.0.1:{ports[i]}")
site = site.replace("listen 8000;", f"listen 127.0.0.1:{nginx_port};")
assert ".internal" not in site and f":{nginx_port};" in site, "deploy/nginx.conf changed shape"
with open(os.path.join(args.out, "nginx-site.conf"), "w") as f:
    f.write(site)
nginx_conf = os.path.join(args.out, "nginx.conf")
with open(nginx_conf, "w") as f:
    temp = "".join(f"    {kind}_temp_path {args.out}/nginx-{kind};\n" for kind in
                   ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    f.write(f"""# Written by `cargo xtask replicas`: the shipped site (nginx-site.conf) in a minimal main file.
daemon off;
user root;
worker_processes 1;
pid {args.out}/nginx.pid;
error_log {args.out}/nginx-error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
{temp}    include {args.out}/nginx-site.conf;
}}
""")
nginx = start(["nginx", "-c", nginx_conf, "-p", args.out], "nginx")
wait_http(f"http://127.0.0.1:{nginx_port}/health")
NGINX = f"http://127.0.0.1:{nginx_port}"
LB = f"http://127.0.0.1:{lb[3]}"
R = [f"http://127.0.0.1:{port}" for port in ports]

api = httpx.Client(timeout=30)
r = api.post(f"{LB}/api/mcp-servers", json={"name": "everything", "transport_type": "streamable_http",
                                            "config": {"url": f"http://127.0.0.1:{se_port}/mcp"}})
assert r.status_code == 201, r.text
server_id = r.json()["server_id"]
r = api.post(f"{LB}/api/vmcps", json={"name": "team", "mcp_servers": [{"server_id": server_id}]})
assert r.status_code == 201, r.text
vmcp_id = r.json()["vmcp_id"]
MCP = f"{LB}/vmcp/team/mcp"
SSE = f"{LB}/vmcp/team/sse"
time.sleep(0.3)


def tools_calls_per_replica():
    out = []
    for base in R:
        try:
            text = api.get(f"{base}/metrics").text
        except Exception:  # noqa: BLE001
            out.append(None)
            continue
        n = 0
        for line in text.splitlines():
            if line.startswith("vmcp_operations_total{") and 'method="tools/call"' in line:
                n += float(line.rsplit(" ", 1)[1])
        out.append(int(n))
    return out


# --- the clients ------------------------------------------------------------------------------

async def python_client(mode, calls, seconds, workers=2, endpoint="http", base=None):
    """Python SDK sessions calling echo; failures counted (a replica may stop under them)."""
    mcp_url = f"{base}/vmcp/team/mcp" if base else MCP
    sse_url = f"{base}/vmcp/team/sse" if base else SSE
    ok, failed, session_errors, errors, lat = 0, 0, 0, [], []
    counter = {"n": 0}
    reconnects = {"n": 0}
    deadline = time.monotonic() + seconds
    protocol = ""

    async def one(w):
        nonlocal ok, failed, session_errors, protocol
        # A client object the SDK ended (a connection reset ends the Python SDK's session task
        # group) is replaced, as an agent would: counted in `reconnects`.
        for attempt in range(4):
            if counter["n"] >= calls or time.monotonic() >= deadline:
                return
            if attempt:
                reconnects["n"] += 1
            server = sse_client(sse_url) if endpoint == "sse" else mcp_url
            client = Client(server, mode=mode, read_timeout_seconds=20,
                            client_info=types.Implementation(name=f"replicas-py-{mode}-{w}", version="2"))
            try:
                async with client:
                    protocol = client.protocol_version
                    while counter["n"] < calls and time.monotonic() < deadline:
                        counter["n"] += 1
                        t = time.perf_counter()
                        try:
                            r = await client.call_tool(TOOL, {"message": f"w{w}"})
                            if r.is_error:
                                raise RuntimeError(f"tool error {r.content}")
                            ok += 1
                            lat.append((time.perf_counter() - t) * 1000)
                        except Exception as e:  # noqa: BLE001
                            failed += 1
                            text = f"{type(e).__name__}: {e}"
                            if re.search(r"session not found", text, re.I):
                                session_errors += 1
                            if len(errors) < 5:
                                errors.append(text[:300])
            except BaseException as e:  # noqa: BLE001
                failed += 1
                errors.append(f"session: {type(e).__name__}: {str(e)[:300]}")
                continue
            return

    started = time.perf_counter()
    await asyncio.gather(*(one(w) for w in range(workers)))
    elapsed = time.perf_counter() - started
    name = f"Python SDK 2.x ({mode}{', legacy SSE' if endpoint == 'sse' else ''})"
    return {"client": name, "protocol": protocol, "ok": ok, "failed": failed, "session_errors": session_errors,
            "reconnects": reconnects["n"], "per_second": ok / elapsed,
            "p50_ms": statistics.median(lat) if lat else None, "errors": errors}


async def node_client(which, calls, seconds, workers=2, url=None):
    proc = await asyncio.create_subprocess_exec(
        args.node, os.path.join(ROOT, "xtask/node/replicas.mjs"), "--npm-dir", args.npm_dir, "--url", url or MCP,
        "--client", which, "--tool", TOOL, "--calls", str(calls), "--seconds", str(seconds),
        "--workers", str(workers), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await bounded(proc, seconds + 90)
    try:
        return json.loads(out.decode().strip().splitlines()[-1])
    except Exception:  # noqa: BLE001
        return {"client": which, "ok": 0, "failed": 1, "session_errors": 0,
                "errors": [f"driver: {err.decode()[-500:]}"]}


async def rmcp_client(url, calls, seconds, workers=2, tool=TOOL):
    proc = await asyncio.create_subprocess_exec(
        args.bench, "--drive", url, "--drive-tool", tool, "--drive-calls", str(calls),
        "--drive-seconds", str(seconds), "--drive-workers", str(workers),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await bounded(proc, seconds + 90)
    try:
        r = json.loads(out.decode().strip().splitlines()[-1])
    except (IndexError, ValueError):
        r = {"ok": 0, "failed": 1, "session_errors": 0, "per_second": 0, "p50_ms": 0, "p99_ms": 0,
             "errors": [f"driver: {err.decode()[-500:]}"]}
    r["client"] = "rmcp (Rust SDK)"
    return r


async def roots_listener(base, done):
    """A Python SDK session held on one replica until `done`, counting the upstream's log lines it
    hears that say the upstream fetched its client's roots (server-everything logs "Roots
    updated" each time; vMCP passes an upstream's log lines on to every session it holds)."""
    heard = 0

    async def on_log(params):
        nonlocal heard
        if "Roots updated" in str(params.data):
            heard += 1
    async with Client(f"{base}/vmcp/team/mcp", mode="legacy", logging_callback=on_log,
                      client_info=types.Implementation(name="replicas-roots-listener", version="1")):
        await done.wait()
        await asyncio.sleep(0.5)
    return heard


def every_client(calls, seconds, base=None):
    mcp_url = f"{base}/vmcp/team/mcp" if base else MCP
    return [python_client("legacy", calls, seconds, base=base), python_client("auto", calls, seconds, base=base),
            node_client("ts1", calls, seconds, url=mcp_url), node_client("ts2-auto", calls, seconds, url=mcp_url),
            rmcp_client(mcp_url, calls, seconds)]


async def ws_connect(base, path):
    """A WebSocket opened by hand (RFC 6455): the status line of the answer, and the streams."""
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    return head.split(b"\r\n", 1)[0].decode(), reader, writer


async def ws_text(reader):
    """The next text message (the server's frames are not masked; pings are let be)."""
    while True:
        b0, b1 = await reader.readexactly(2)
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(await reader.readexactly(2), "big")
        elif n == 127:
            n = int.from_bytes(await reader.readexactly(8), "big")
        payload = await reader.readexactly(n)
        if b0 & 0x0F == 1:
            return payload.decode()
        if b0 & 0x0F == 8:
            raise ConnectionError("the server closed the WebSocket")


async def browser_paths(base, name, clients=None):
    """What a browser and big calls need of a proxy: `/ws` (its upgrade, its first message, a tool
    call's log entry heard through it), a same-origin request, and 2 MiB of arguments. `clients`,
    awaited between, makes the calls heard."""
    status, reader, writer = await ws_connect(base, f"/ws?vmcp_id={vmcp_id}&method=tools/call")
    hello = None
    if " 101 " in status + " ":
        hello = json.loads(await asyncio.wait_for(ws_text(reader), 10))
    check(hello is not None and hello.get("type") == "hello", f"{name}: /ws upgraded ({status}), first message {hello}")
    # The dashboard's own requests: a browser sends its page's origin, the proxy's host and port.
    r = api.post(f"{base}/api/vmcps", headers={"Origin": base}, json={"name": f"dashboard-made-{name}"})
    check(r.status_code == 201, f"{name}: a same-origin browser request is served ({r.status_code} {r.text[:120]})")
    if r.status_code == 201:
        api.delete(f"{base}/api/vmcps/{r.json()['vmcp_id']}")
    result = await clients if clients else None
    # A call whose arguments are larger than nginx takes by default (1 MiB), within vMCP's 4 MiB.
    big = "x" * (2 * 1024 * 1024)
    try:
        async with Client(f"{base}/vmcp/team/mcp", mode="auto", read_timeout_seconds=30,
                          client_info=types.Implementation(name=f"replicas-{name}-big", version="1")) as c:
            r = await c.call_tool(TOOL, {"message": big})
            echoed = "" if r.is_error else "".join(getattr(x, "text", "") for x in r.content)
            big_ok, big_what = big in echoed, f"{len(echoed)} characters back"
    except Exception as e:  # noqa: BLE001
        big_ok, big_what = False, f"{type(e).__name__}: {str(e)[:200]}"
    check(big_ok, f"{name}: a call with 2 MiB of arguments ({big_what})")
    logged = None
    if hello is not None:
        try:
            while logged is None:
                m = json.loads(await asyncio.wait_for(ws_text(reader), 10))
                if m.get("type") == "log" and m["entry"].get("method") == "tools/call":
                    logged = m["entry"]
        except (asyncio.TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
    check(logged is not None and logged.get("vmcp_id") == vmcp_id,
          f"{name}: /ws heard a tool call's log entry ({(logged or {}).get('method')})")
    writer.close()
    return status, result


async def through_nginx(calls):
    """The replicas behind nginx with deploy/nginx.conf: every client, legacy SSE, and what a
    browser needs."""
    before = tools_calls_per_replica()

    async def clients():
        return await asyncio.gather(*every_client(calls, 60, base=NGINX),
                                    python_client("legacy", 40, 60, 1, "sse", base=NGINX))

    status, results = await browser_paths(NGINX, "nginx", clients())
    spread = [a - b for a, b in zip(tools_calls_per_replica(), before)]
    for r in results:
        check(r["failed"] == 0 and r["session_errors"] == 0 and r["ok"] > 0,
              f"nginx: {r['client']} ({r.get('protocol')}): {r['ok']} ok, {r['failed']} failed {r['errors'][:2]}")
    check(all(n > 0 for n in spread), f"nginx: every replica served calls {spread}")
    figures["nginx"] = {"results": results, "per_replica": spread, "ws": status}


def table(results):
    rows = ["| client | protocol | calls ok | failed | session errors | new client objects |",
            "|---|---|---:|---:|---:|---:|"]
    for r in results:
        rows.append(f"| {r['client']} | {r.get('protocol') or ''} | {r['ok']} | {r['failed']} | {r['session_errors']} "
                    f"| {r.get('reconnects', 0)} |")
    return "\n".join(rows)


def stats_since(since):
    r = api.get(f"{R[0]}/api/stats", params={"vmcp_id": vmcp_id, "method": "tools/call", "start_date": since})
    s = r.json()["stats"]
    return s["total_logs"], s["total_logs"] - s["failed"]


def utc_now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))


async def main():
    calls = 150 if args.quick else 300

    # 1. Spread: every client through the round-robin balancer.
    log("1. every client through the balancer")
    before = tools_calls_per_replica()
    done = asyncio.Event()
    listener = asyncio.create_task(roots_listener(R[0], done))
    await asyncio.sleep(1)
    results = await asyncio.gather(*every_client(calls, 120), python_client("legacy", 60, 60, 1, "sse"))
    done.set()
    heard = await listener
    after = tools_calls_per_replica()
    spread = [a - b for a, b in zip(after, before)]
    for r in results:
        check(r["failed"] == 0 and r["session_errors"] == 0 and r["ok"] > 0,
              f"spread: {r['client']} ({r.get('protocol')}): {r['ok']} ok, {r['failed']} failed {r['errors'][:2]}")
    check(all(n > 0 for n in spread), f"spread: every replica served calls {spread}")
    # None of these clients declares roots: their turns are no roots changes, so r0's upstream
    # fetches roots about once for its connection, not once per turn between sessions (hundreds
    # of times here, each line sent to every session, when it was).
    check(heard <= 5, f"spread: a session on r0 heard r0's upstream fetch roots {heard} times while it served "
                      f"{tools_calls_per_replica()[0] - before[0]} calls of clients without roots")
    figures["spread"] = {"results": results, "per_replica": spread}

    # What a browser needs, through HAProxy (deploy/haproxy.cfg as shipped).
    await browser_paths(LB, "HAProxy", python_client("auto", 20, 30, 1))

    # 6. The same replicas behind nginx, with the shipped configuration.
    log("6. every client and /ws through nginx (deploy/nginx.conf)")
    await through_nginx(60 if args.quick else 150)

    # 2. Config: a change through r0 reaches a session held through the balancer.
    log("2. a change through one replica, seen through the others")
    heard = asyncio.Event()
    heard_at = {}

    async def on_message(message):
        if isinstance(message, types.ToolListChangedNotification) and "t" not in heard_at:
            heard_at["t"] = time.perf_counter()
            heard.set()

    client = Client(MCP, mode="legacy", read_timeout_seconds=20, message_handler=on_message,
                    client_info=types.Implementation(name="replicas-watcher", version="1"))
    async with client:
        await client.list_tools()
        await asyncio.sleep(0.5)
        changed = time.perf_counter()
        r = api.put(f"{R[0]}/api/vmcps/{vmcp_id}", json={
            "name": "team", "mcp_servers": [{"server_id": server_id}],
            "tools": {"everything.get-sum": {"name": "sum-of-two"}}})
        check(r.status_code == 200, f"config: PUT through r0 {r.status_code}")
        try:
            await asyncio.wait_for(heard.wait(), 10)
            notified_ms = (heard_at["t"] - changed) * 1000
        except asyncio.TimeoutError:
            notified_ms = None
        check(notified_ms is not None and notified_ms < 1000,
              f"config: tools/list_changed through the balancer after {notified_ms} ms")
        seen_everywhere = None
        deadline = time.perf_counter() + 10
        while time.perf_counter() < deadline:
            lists = [api.get(f"{base}/api/vmcps/{vmcp_id}/tools").json() for base in R]
            names = [{t["name"] for t in (lst if isinstance(lst, list) else lst.get("tools", []))} for lst in lists]
            if all("sum-of-two" in n for n in names):
                seen_everywhere = (time.perf_counter() - changed) * 1000
                break
            await asyncio.sleep(0.01)
        check(seen_everywhere is not None and seen_everywhere < 1000,
              f"config: every replica lists the change after {seen_everywhere} ms")
        listed = {t.name for t in (await client.list_tools()).tools}
        check("sum-of-two" in listed, "config: the session's own tools/list shows the change")
    figures["config"] = {"notified_ms": notified_ms, "all_replicas_list_ms": seen_everywhere}

    # 3. Stop a replica under load, and start it again.
    for how, sig in (("SIGTERM", signal.SIGTERM), ("SIGKILL", signal.SIGKILL)):
        log(f"3. {how} to r1 under load")
        since = utc_now()
        await asyncio.sleep(1.2)

        async def stop_and_restart():
            await asyncio.sleep(3)
            replicas[1].send_signal(sig)
            await asyncio.get_running_loop().run_in_executor(None, replicas[1].wait)
            await asyncio.sleep(2)
            await asyncio.get_running_loop().run_in_executor(None, start_replica, 1)

        seconds = 10
        results = await asyncio.gather(*every_client(100000, seconds), stop_and_restart())
        results = results[:-1]
        await asyncio.sleep(2.5)
        total_rows, ok_rows = stats_since(since)
        client_ok = sum(r["ok"] for r in results)
        for r in results:
            check(r["session_errors"] == 0 and r["ok"] > 0,
                  f"{how}: {r['client']}: {r['ok']} ok, {r['failed']} failed, {r['session_errors']} session errors "
                  f"{r['errors'][:2]}")
        lost = max(0, client_ok - ok_rows)
        if how == "SIGTERM":
            check(lost == 0, f"{how}: every call a client saw succeed is logged ({client_ok} ok, {ok_rows} rows ok)")
        else:
            print(f"info {how}: {client_ok} calls ok at the clients, {ok_rows} logged ok: {lost} rows the killed "
                  f"process had queued", flush=True)
        failed = sum(r["failed"] for r in results)
        figures[how] = {"results": results, "client_ok": client_ok, "client_failed": failed,
                        "rows": total_rows, "rows_ok": ok_rows, "lost": lost}
        wait_http(f"{R[1]}/health")
        time.sleep(1)

    # 4. Throughput.
    log("4. throughput")
    n = 2000 if args.quick else 6000
    through = {}
    for label, url in ([("upstream direct (no vMCP)", f"http://127.0.0.1:{se_port}/mcp"),
                        ("1 replica, direct", f"{R[0]}/vmcp/team/mcp")]
                       + [(f"{k} replica{'s' if k > 1 else ''} behind HAProxy", f"http://127.0.0.1:{lb[k]}/vmcp/team/mcp")
                          for k in (1, 2, 3)]):
        tool = "echo" if "upstream" in label else TOOL
        groups = {"vMCP": [p.pid for p in replicas], "HAProxy": [haproxy.pid], "upstream": [everything.pid],
                  "Postgres": postgres_pids()}
        cpu0 = {k: cpu_seconds(v) for k, v in groups.items()}
        child0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        r = await rmcp_client(url, n, 120, workers=16, tool=tool)
        child1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        calls_done = max(1, r["ok"] + r["failed"])
        cpu = {k: (cpu_seconds(v) - cpu0[k]) * 1000 / calls_done for k, v in groups.items()}
        cpu["client"] = ((child1.ru_utime + child1.ru_stime) - (child0.ru_utime + child0.ru_stime)) * 1000 / calls_done
        r["cpu_ms_per_call"] = cpu
        through[label] = r
        check(r["failed"] == 0, f"throughput: {label}: {r['per_second']:.0f} calls/s, p50 {r['p50_ms']:.2f} ms, "
                                f"{r['failed']} failed {r.get('errors', [])[:2]}")
    figures["throughput"] = through

    # 5. Sessions: 10,000 idle legacy sessions on r2, then released; stateless requests hold none.
    log(f"5. {args.sessions} idle sessions on one replica")
    target = f"{R[2]}/vmcp/team/mcp"
    pid = replicas[2].pid
    time.sleep(6)
    rss0 = rss_kib(pid)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=30, limits=limits) as h:
        sem = asyncio.Semaphore(64)
        hdr = {"accept": "application/json, text/event-stream"}

        async def open_one(i):
            async with sem:
                r = await h.post(target, headers=hdr, json={
                    "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                        "protocolVersion": "2025-11-25", "capabilities": {},
                        "clientInfo": {"name": f"idle-{i}", "version": "1"}}})
                sid = r.headers["mcp-session-id"]
                await h.post(target, headers={**hdr, "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25"},
                             json={"jsonrpc": "2.0", "method": "notifications/initialized"})
                return sid

        t = time.perf_counter()
        sids = await asyncio.gather(*(open_one(i) for i in range(args.sessions)))
        opened_s = time.perf_counter() - t
        health = api.get(f"{R[2]}/health").json()
        rss_open = rss_kib(pid)
        check(health["mcp_sessions"] >= args.sessions,
              f"sessions: /health counts {health['mcp_sessions']} open, {health['mcp_sessions_in_memory']} in memory")
        in_memory_at_open = health["mcp_sessions_in_memory"]
        deadline = time.time() + 60
        while api.get(f"{R[2]}/health").json()["mcp_sessions_in_memory"] > 0 and time.time() < deadline:
            time.sleep(0.5)
        # The allocator gives freed memory back after its decay time (10 s).
        time.sleep(12)
        rss_idle = rss_kib(pid)
        # A sample of them still works, resumed from their ids.
        resumed = 0
        for sid in sids[:: max(1, len(sids) // 50)]:
            r = await h.post(target, headers={**hdr, "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25"},
                             json={"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                   "params": {"name": TOOL, "arguments": {"message": "back"}}})
            resumed += r.status_code == 200 and "back" in r.text
        check(resumed == len(sids[:: max(1, len(sids) // 50)]), f"sessions: {resumed} idle sessions resumed")
        # Stateless 2026-07-28 requests.
        rss_before_stateless = rss_kib(pid)
        open_before = api.get(f"{R[2]}/health").json()["mcp_sessions"]
        meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientInfo": {"name": "stateless", "version": "1"},
                "io.modelcontextprotocol/clientCapabilities": {}}

        async def stateless(i):
            async with sem:
                r = await h.post(target, headers={**hdr, "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call",
                                                  "mcp-name": TOOL},
                                 json={"jsonrpc": "2.0", "id": i, "method": "tools/call",
                                       "params": {"name": TOOL, "arguments": {"message": "s"}, "_meta": meta}})
                return r.status_code == 200

        stateless_ok = sum(await asyncio.gather(*(stateless(i) for i in range(2000))))
        health2 = api.get(f"{R[2]}/health").json()
        check(stateless_ok == 2000 and health2["mcp_sessions"] == open_before,
              f"sessions: 2,000 stateless 2026-07-28 calls ({stateless_ok} ok) hold no session "
              f"({open_before} open before, {health2['mcp_sessions']} after)")
    total_idle_mib = rss_idle / 1024
    check(total_idle_mib < 200, f"sessions: {args.sessions} idle sessions, the process uses {total_idle_mib:.0f} MiB")
    figures["sessions"] = {"count": args.sessions, "opened_s": opened_s, "rss_start_kib": rss0,
                           "rss_open_kib": rss_open, "rss_idle_kib": rss_idle,
                           "rss_after_stateless_kib": rss_kib(pid), "rss_before_stateless_kib": rss_before_stateless,
                           "in_memory_at_open": in_memory_at_open,
                           "per_session_in_memory_kib": (rss_open - rss_idle) / max(1, in_memory_at_open),
                           "per_session_idle_kib": (rss_idle - rss0) / args.sessions}


def report():
    s = figures.get("sessions", {})
    t = figures.get("throughput", {})
    lines = ["<!-- replicas:begin -->", "## Replicas behind a load balancer (`cargo xtask replicas`)", "",
             f"Three replicas of the release build on one Postgres {os.environ.get('PG_VERSION', '')}database behind "
             "HAProxy with [`deploy/haproxy.cfg`](../deploy/haproxy.cfg) as shipped (round robin, no stickiness), "
             "this 2-core machine, server-everything over streamable HTTP "
             "as the upstream of every replica. Every client below, at once, through the balancer:", "",
             table(figures["spread"]["results"]), "",
             f"Calls served per replica: {figures['spread']['per_replica']}.", ""]
    ng = figures.get("nginx")
    if ng:
        lines += [f"Through nginx with [`deploy/nginx.conf`](../deploy/nginx.conf) as shipped (round robin; "
                  f"source hashing for legacy SSE), every client again, and `/ws` ({ng['ws']}) hearing the calls' log "
                  f"entries. Calls served per replica: {ng['per_replica']}.", "", table(ng["results"]), ""]
    c = figures.get("config", {})
    lines += [f"A vMCP changed through one replica: a session held through the balancer got `tools/list_changed` "
              f"after {c.get('notified_ms') or 0:.0f} ms; every replica listed the change after "
              f"{c.get('all_replicas_list_ms') or 0:.0f} ms.", ""]
    for how in ("SIGTERM", "SIGKILL"):
        f = figures.get(how)
        if not f:
            continue
        lines += [f"One replica stopped with {how} under load from every client (10 s, restarted after 2 s): "
                  f"{f['client_ok']} calls ok, {f['client_failed']} failed (those in flight on the stopped replica, "
                  f"or refused by the balancer before its health check noticed), 0 session errors; "
                  f"{f['rows_ok']} successful calls logged" +
                  (", none lost." if f["lost"] == 0 else f", {f['lost']} rows lost with the killed process's queue."), "",
                  table(f["results"]), ""]
    if t:
        lines += ["Throughput (the rmcp client, 16 sessions, closed loop, server-everything's `echo`), and where "
                  "the CPU goes: milliseconds of CPU per call in each process (two cores in all):", "",
                  "| path | calls/s | p50 ms | p99 ms | client | HAProxy | vMCP | upstream | Postgres |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for label, r in t.items():
            c = r.get("cpu_ms_per_call", {})
            lines.append(f"| {label} | {r['per_second']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                         + " | ".join(f"{c.get(k, 0):.2f}" for k in ("client", "HAProxy", "vMCP", "upstream", "Postgres"))
                         + " |")
        lines += ["", "Every process shares the same two cores, so a call costs the sum of its row: more replicas "
                  "add no cores here, only a hop through HAProxy and more sessions to the upstream; through vMCP "
                  "a call also costs the log (the Postgres column). On separate "
                  "machines the vMCP column is what each replica adds, and replicas add up until the upstream or "
                  "Postgres (the log) is the bottleneck: see docs/deployment.md.", ""]
    if s:
        lines += [f"Sessions: {s['count']:,} legacy sessions opened on one replica in {s['opened_s']:.1f} s: "
                  f"{s['rss_start_kib'] / 1024:.0f} MiB before, {s['rss_open_kib'] / 1024:.0f} MiB at the end of the "
                  f"opening ({s['in_memory_at_open']:,} still in memory; the memory of those released meanwhile not "
                  f"yet returned to the system), {s['rss_idle_kib'] / 1024:.0f} MiB once all were "
                  f"released after `--session-hold` ({s['per_session_idle_kib']:.2f} KiB each: their state is in their "
                  f"ids); a sample resumed on their next request. 2,000 stateless 2026-07-28 calls held no session "
                  f"({s['rss_before_stateless_kib'] / 1024:.0f} → {s['rss_after_stateless_kib'] / 1024:.0f} MiB).", ""]
    lines.append("<!-- replicas:end -->")
    return "\n".join(lines)


try:
    asyncio.run(main())
finally:
    with open(os.path.join(args.out, "replicas.json"), "w") as f:
        json.dump(figures, f, indent=1, default=str)
    stop_all()
    subprocess.run(["psql", admin, "-qc", f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"], stderr=subprocess.DEVNULL)

if args.report and "spread" in figures:
    section = report()
    old = open(args.report).read() if os.path.exists(args.report) else ""
    b, e = old.find("<!-- replicas:begin -->"), old.find("<!-- replicas:end -->")
    new = (old[:b] + section + old[e + len("<!-- replicas:end -->"):]) if 0 <= b < e else old.rstrip() + "\n\n" + section + "\n"
    with open(args.report, "w") as f:
        f.write(new)
print(f"\n{len(failures)} failed" + "".join(f"\n  FAIL {x}" for x in failures), flush=True)
sys.exit(1 if failures else 0)
