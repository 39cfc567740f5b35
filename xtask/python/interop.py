"""Drives a running vMCP against MCP servers nobody here wrote (`cargo xtask interop`).

Registers @modelcontextprotocol/server-everything over stdio (through npx), legacy SSE and
streamable HTTP, and a Python SDK server over stdio; connects each, checks the capabilities and
real tool results through a vMCP, then checks that no upstream process outlives a disconnect or
the gateway's SIGTERM (npx grandchildren included).
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

p = argparse.ArgumentParser()
p.add_argument("--base", required=True)
p.add_argument("--vmcp-pid", type=int, required=True)
p.add_argument("--npm-dir", required=True)
p.add_argument("--python", required=True)
p.add_argument("--py-server", required=True)
p.add_argument("--sse-url", required=True)
p.add_argument("--http-url", required=True)
p.add_argument("--node", required=True)
p.add_argument("--inspector", required=True)
p.add_argument("--py-client", required=True)
args = p.parse_args()

failures = []


def check(cond, what):
    print(("  ok    " if cond else "  FAIL  ") + what, flush=True)
    if not cond:
        failures.append(what)


def api(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(args.base + path, data=data, method=method)
    if data is not None:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=120) as res:
            return res.status, json.loads(res.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def descendants(pid):
    """All live descendants of pid, as {pid: command line}."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            fields = stat[stat.rindex(")") + 2:].split()
            state, ppid = fields[0], int(fields[1])
            if state == "Z":
                continue
            children.setdefault(ppid, []).append(int(entry))
        except (OSError, ValueError):
            continue
    out, todo = {}, [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            try:
                with open(f"/proc/{child}/cmdline", "rb") as f:
                    out[child] = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                out[child] = "?"
            todo.append(child)
    return out


def alive(pids):
    live = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            if stat[stat.rindex(")") + 2] != "Z":
                live[pid] = stat
        except OSError:
            pass
    return live


def wait_gone(pids, seconds=10):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if not alive(pids):
            return {}
        time.sleep(0.1)
    return alive(pids)


servers = {
    "everything-stdio": ("stdio", {"command": "npx", "args": ["--no-install", "mcp-server-everything", "stdio"],
                                    "cwd": args.npm_dir}),
    "everything-sse": ("sse", {"url": args.sse_url}),
    "everything-http": ("streamable_http", {"url": args.http_url}),
    "python-sdk": ("stdio", {"command": args.python, "args": [args.py_server]}),
}
ids = {}
print("registering and connecting", flush=True)
for name, (transport, config) in servers.items():
    status, body = api("POST", "/api/mcp-servers", {"name": name, "transport_type": transport, "config": config})
    check(status == 201, f"{name}: registered ({status})")
    ids[name] = body["server_id"]
    started = time.time()
    status, body = api("POST", f"/api/mcp-servers/{ids[name]}/connect", {})
    took = time.time() - started
    check(status == 200 and body.get("status") == "connected", f"{name}: connected in {took:.1f} s ({status} {body.get('detail', '')})")
    if status != 200:
        continue
    tools = body["capabilities"]["tools"]
    if name.startswith("everything"):
        check({"echo", "get-sum", "get-tiny-image"} <= set(tools), f"{name}: tools include echo, get-sum, get-tiny-image ({len(tools)} tools)")
        check(len(body["capabilities"]["resources"]) > 0, f"{name}: lists resources")
        check(len(body["capabilities"]["prompts"]) > 0, f"{name}: lists prompts")
    else:
        check(tools == ["multiply"], f"{name}: tools are [multiply] ({tools})")
        check(body["capabilities"]["resources"] == ["py://motto"], f"{name}: resources are [py://motto]")
        check(body["capabilities"]["prompts"] == ["haiku"], f"{name}: prompts are [haiku]")
    status, server = api("GET", f"/api/mcp-servers/{ids[name]}")
    check(server.get("protocol_version") is not None, f"{name}: negotiated {server.get('protocol_version')}, server_info {server.get('server_info')}")

print("one vMCP over all four", flush=True)
status, body = api("POST", "/api/vmcps", {"name": "interop", "mcp_servers": [{"server_id": i} for i in ids.values()]})
check(status == 201, f"vMCP created ({status})")
vmcp = body["vmcp_id"]
status, body = api("GET", f"/api/vmcps/{vmcp}/tools")
names = [t["name"] for t in body.get("tools", [])]
check(status == 200 and body.get("unavailable") == [], f"tools listed: {len(names)}, unavailable {body.get('unavailable')}")
for prefix in ["everything-stdio", "everything-sse", "everything-http"]:
    check(f"{prefix}.echo" in names, f"{prefix}.echo is listed")
    status, result = api("POST", f"/api/vmcps/{vmcp}/tools/call", {"name": f"{prefix}.echo", "arguments": {"message": "hello"}})
    check(status == 200 and result.get("content") == [{"type": "text", "text": "Echo: hello"}], f"{prefix}.echo answers 'Echo: hello' ({status} {result})")
    status, result = api("POST", f"/api/vmcps/{vmcp}/tools/call", {"name": f"{prefix}.get-sum", "arguments": {"a": 2, "b": 3}})
    text = (result.get("content") or [{}])[0].get("text", "")
    check(status == 200 and "5" in text, f"{prefix}.get-sum gives {text!r}")
    status, result = api("POST", f"/api/vmcps/{vmcp}/tools/call", {"name": f"{prefix}.get-tiny-image", "arguments": {}})
    types = [c.get("type") for c in result.get("content", [])]
    check(status == 200 and "image" in types, f"{prefix}.get-tiny-image passes an image through ({types})")
status, result = api("POST", f"/api/vmcps/{vmcp}/tools/call", {"name": "python-sdk.multiply", "arguments": {"a": 6, "b": 7}})
check(status == 200 and result.get("structuredContent") == {"result": 42}, f"python-sdk.multiply gives {result.get('structuredContent')}")
status, result = api("POST", f"/api/vmcps/{vmcp}/tools/call", {"name": "python-sdk.multiply", "arguments": {"a": "x"}})
check(status in (200, 400) and (status == 400 or result.get("isError") is True), f"python-sdk.multiply with bad arguments is an error ({status})")
status, result = api("POST", f"/api/vmcps/{vmcp}/resources/read", {"uri": "py://motto"})
check(status == 200 and result["contents"][0].get("text") == "interop works", f"py://motto reads 'interop works' ({status})")
status, result = api("POST", f"/api/vmcps/{vmcp}/prompts/get", {"name": "python-sdk.haiku", "arguments": {"topic": "rust"}})
check(status == 200 and "haiku about rust" in json.dumps(result), f"python-sdk.haiku renders ({status})")
status, body = api("GET", f"/api/vmcps/{vmcp}/resources")
check(status == 200 and len(body["resources"]) > 1, f"resources listed: {len(body.get('resources', []))}, templates {len(body.get('resourceTemplates', []))}")
status, body = api("GET", f"/api/vmcps/{vmcp}/prompts")
check(status == 200 and "python-sdk.haiku" in [p["name"] for p in body["prompts"]], f"prompts listed: {len(body.get('prompts', []))}")

print("MCP clients nobody here wrote, through the vMCP's own MCP endpoints", flush=True)
for transport, path in [("http", "mcp"), ("sse", "sse")]:
    url = f"{args.base}/vmcp/interop/{path}"
    extra = ["--transport", "sse"] if transport == "sse" else []
    out = subprocess.run([args.node, args.inspector, "--cli", url, *extra, "--method", "tools/list"],
                         capture_output=True, text=True, timeout=120)
    try:
        listed = [t["name"] for t in json.loads(out.stdout)["tools"]]
    except (ValueError, KeyError):
        listed = []
    check(out.returncode == 0 and "python-sdk.multiply" in listed and "everything-http.echo" in listed,
          f"MCP Inspector CLI lists {len(listed)} tools over {transport} ({out.stderr.strip()[:200]})")
    out = subprocess.run([args.node, args.inspector, "--cli", url, *extra, "--method", "tools/call",
                          "--tool-name", "everything-sse.echo", "--tool-arg", "message=inspected"],
                         capture_output=True, text=True, timeout=120)
    check(out.returncode == 0 and "Echo: inspected" in out.stdout,
          f"MCP Inspector CLI calls everything-sse.echo over {transport}")
    out = subprocess.run([args.python, args.py_client, transport, url, "python-sdk.multiply", '{"a": 3, "b": 4}'],
                         capture_output=True, text=True, timeout=120)
    try:
        answer = json.loads(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        answer = {}
    check(out.returncode == 0 and answer.get("result", {}).get("structuredContent") == {"result": 12}
          and len(answer.get("tools", [])) == len(names),
          f"Python SDK client lists {len(answer.get('tools', []))} tools and calls python-sdk.multiply over {transport} ({out.stderr.strip()[-200:]})")

print("no process outlives a disconnect or the gateway", flush=True)
tree = descendants(args.vmcp_pid)
npx_tree = {pid: cmd for pid, cmd in tree.items() if "everything" in cmd}
check(len(npx_tree) >= 2, f"the npx server runs as {len(npx_tree)} processes: {sorted(npx_tree.values())}")
status, _ = api("POST", f"/api/mcp-servers/{ids['everything-stdio']}/disconnect", {})
left = wait_gone(npx_tree)
check(status == 200 and not left, f"disconnecting everything-stdio ends all {len(npx_tree)} of its processes (left: {left})")
status, body = api("POST", f"/api/mcp-servers/{ids['everything-stdio']}/connect", {})
check(status == 200, "everything-stdio reconnects")
tree = descendants(args.vmcp_pid)
check(len(tree) >= 3, f"before SIGTERM the gateway has {len(tree)} upstream processes")
os.kill(args.vmcp_pid, signal.SIGTERM)
deadline = time.time() + 20
while time.time() < deadline and alive([args.vmcp_pid]):
    time.sleep(0.1)
check(not alive([args.vmcp_pid]), "the gateway exits on SIGTERM")
left = wait_gone(tree)
check(not left, f"no upstream process is left after the gateway's shutdown (left: {left})")

if failures:
    print(f"\n{len(failures)} interop check(s) failed", flush=True)
    sys.exit(1)
print("\nall interop checks passed", flush=True)
