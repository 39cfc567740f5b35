#!/usr/bin/env bash
# The real-client matrix, end to end: the official MCP clients (TypeScript SDK 1.x, TypeScript
# client 2.x in its default and `auto` negotiation, Python SDK 2.x in `auto` and `legacy` mode)
# against a vMCP's streamable HTTP and legacy SSE endpoints, with
# @modelcontextprotocol/server-everything as the upstream over streamable HTTP and over stdio; and
# the same clients and endpoints against a vMCP with tool search on (`search/*` checks).
#
# usage: xtask/python/clients_run.sh [VMCP_BINARY]
#   VMCP_BINARY defaults to $VMCP_BIN, else $CARGO_TARGET_DIR/debug/vmcp, else target/debug/vmcp
#   (this script builds nothing). Packages go under $VMCP_TOOLS_DIR (default ~/.cache/vmcp-tools),
#   pinned in tools.sh. MATRIX_OUT (default a temporary directory) receives the logs and matrix.json.
#   MATRIX_LATENCY (default 100) is the number of sequential echo calls timed per client.
# Exits 1 when any check failed; prints one line per check and the failures at the end.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
binary="${1:-${VMCP_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/vmcp}}"
[ -x "$binary" ] || { echo "no vmcp binary at $binary (build it, or pass its path)" >&2; exit 2; }
tools="${VMCP_TOOLS_DIR:-$HOME/.cache/vmcp-tools}"
out="${MATRIX_OUT:-$(mktemp -d /tmp/vmcp-matrix.XXXXXX)}"
latency="${MATRIX_LATENCY:-100}"
mkdir -p "$out"

source "$here/tools.sh"
install_tools

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

free_port() { "$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {  # port seconds what
    local deadline=$((SECONDS + $2))
    until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
        [ $SECONDS -lt $deadline ] || { echo "$3 did not listen on port $1 within $2 s" >&2; exit 2; }
        sleep 0.1
    done
}

se_port="$(free_port)"
PORT="$se_port" "$node" "$npm_dir/node_modules/.bin/mcp-server-everything" streamableHttp > "$out/everything.log" 2>&1 &
pids+=($!)
wait_port "$se_port" 30 "mcp-server-everything"

vmcp_port="$(free_port)"
rm -f "$out/vmcp.db"
NO_COLOR=1 "$binary" --bind "127.0.0.1:$vmcp_port" --database-url "sqlite://$out/vmcp.db" > "$out/vmcp.log" 2>&1 &
pids+=($!)
wait_port "$vmcp_port" 30 "vmcp"
base="http://127.0.0.1:$vmcp_port"
direct="http://127.0.0.1:$se_port/mcp"

# Register the upstream twice (streamable HTTP and stdio) and make two single-member vMCPs over
# each, with `naming.prefix` false so that the clients see server-everything's own names: one that
# lists every tool, and one with `tool_search` "search" (only the meta-tools search_tools and
# call_tool).
"$venv/bin/python" - "$base" "$direct" "$node" "$npm_dir" > "$out/setup.json" <<'EOF'
import json, sys, urllib.request
base, direct, node, npm_dir = sys.argv[1:]
def api(method, path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method=method,
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as res:
        return json.loads(res.read())
servers = {
    "everything-http": ("streamable_http", {"url": direct}),
    "everything-stdio": ("stdio", {"command": node, "args": [f"{npm_dir}/node_modules/.bin/mcp-server-everything", "stdio"],
                                   "cwd": npm_dir}),
}
for name, (transport, config) in servers.items():
    server = api("POST", "/api/mcp-servers", {"name": name, "transport_type": transport, "config": config})
    connected = api("POST", f"/api/mcp-servers/{server['server_id']}/connect", {})
    assert connected.get("status") == "connected", connected
    vmcp = api("POST", "/api/vmcps", {"name": f"matrix-{name.split('-')[1]}", "naming": {"prefix": False},
                                      "mcp_servers": [{"server_id": server["server_id"]}]})
    search = api("POST", "/api/vmcps", {"name": f"matrix-{name.split('-')[1]}-search", "naming": {"prefix": False},
                                        "tool_search": "search", "mcp_servers": [{"server_id": server["server_id"]}]})
    assert search.get("tool_search") == "search", search
    print(json.dumps({"server": name, "server_id": server["server_id"], "vmcp_id": vmcp["vmcp_id"],
                      "search_vmcp_id": search["vmcp_id"], "tools": len(connected["capabilities"]["tools"])}))
EOF
cat "$out/setup.json" >&2

status=0
for upstream in http stdio; do
    mcp="$base/vmcp/matrix-$upstream/mcp"
    sse="$base/vmcp/matrix-$upstream/sse"
    search=(--search-http "$base/vmcp/matrix-$upstream-search/mcp" --search-sse "$base/vmcp/matrix-$upstream-search/sse")
    direct_arg=()
    [ "$upstream" = http ] && direct_arg=(--direct "$direct")
    echo "== upstream over $upstream: $mcp, $sse (tool search: ${search[1]}, ${search[3]})" >&2
    "$node" "$root/xtask/node/clients.mjs" --npm-dir "$npm_dir" --http "$mcp" --sse "$sse" "${search[@]}" "${direct_arg[@]}" \
        --bridge "$binary" --mcp-remote "$npm_dir/node_modules/mcp-remote/dist/proxy.js" \
        --label "$upstream" --latency "$latency" --json "$out/ts-$upstream.json" || status=1
    "$venv/bin/python" "$root/xtask/python/clients.py" --http "$mcp" --sse "$sse" "${search[@]}" "${direct_arg[@]}" \
        --label "$upstream" --latency "$latency" --json "$out/py-$upstream.json" || status=1
done

"$venv/bin/python" - "$out" <<'EOF'
import glob, json, math, sys
out = sys.argv[1]
parts = [json.load(open(p)) for p in sorted(glob.glob(f"{out}/[tp][sy]-*.json"))]
checks = [c for p in parts for c in p["checks"]]
summary = {"packages": {k: v for p in parts for k, v in p["packages"].items()},
           "checks": checks, "latency": [l for p in parts for l in p["latency"]],
           "passed": sum(c["status"] == "ok" for c in checks), "failed": sum(c["status"] == "FAIL" for c in checks),
           "skipped": sum(c["status"] == "skip" for c in checks)}
json.dump(summary, open(f"{out}/matrix.json", "w"), indent=2)
print(f"\npackages: {summary['packages']}")
short = lambda client: client.replace("@modelcontextprotocol/", "")
columns = list(dict.fromkeys((c["client"], c["endpoint"]) for c in checks if c["endpoint"] != "direct"))
operations = list(dict.fromkeys(c["operation"] for c in checks if c["endpoint"] != "direct"))
status = {(c["client"], c["endpoint"], c["label"], c["operation"]): c["status"] for c in checks}
width = max(map(len, operations), default=0) + 1
for label in dict.fromkeys(c["label"] for c in checks):
    print(f"\nupstream over {label}: operation x client/endpoint")
    for i, (client, endpoint) in enumerate(columns):
        print(f"  [{i}] {client} {endpoint}")
    print(f"  {'':{width}}" + "".join(f"[{i}]".ljust(6) for i in range(len(columns))))
    for op in operations:
        print(f"  {op:{width}}" + "".join(status.get((cl, ep, label, op), "-").ljust(6) for cl, ep in columns))
print("latency of tools/call echo (ms):")
for l in summary["latency"]:
    print(f"  {l['client']:28} {l['endpoint']:10} {l['label']:5} {l['target']:6} p50={l['p50_ms']!s:8} p99={l['p99_ms']!s:8} n={l['n']} c16={l.get('calls_per_s')}/s")
# The per-client latency table that `cargo xtask bench --clients` puts in docs/benchmarks.md.
direct_of = {l["client"]: l for l in summary["latency"] if l["target"] == "direct"}
rows = ["| client | path to the vMCP | upstream | direct p50 / p99 (ms) | through vMCP p50 / p99 (ms) | added p50 (ms) | c=16 direct (calls/s) | c=16 through vMCP (calls/s) | c=16 vs direct |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
for l in summary["latency"]:
    if l["target"] != "vmcp":
        continue
    d = direct_of.get(l["client"]) if l["label"] == "http" else None
    fmt = lambda x: "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:g}"
    added = fmt(round(l["p50_ms"] - d["p50_ms"], 2)) if d else "-"
    ok = lambda x: isinstance(x, (int, float)) and x == x
    ratio = f"{100 * l['calls_per_s'] / d['calls_per_s']:.0f}%" if d and ok(d.get("calls_per_s")) and ok(l.get("calls_per_s")) else "-"
    rows.append(f"| {short(l['client'])} | {l['endpoint']} | server-everything over {l['label']} | "
                f"{fmt(d['p50_ms']) + ' / ' + fmt(d['p99_ms']) if d else '-'} | {fmt(l['p50_ms'])} / {fmt(l['p99_ms'])} | {added} | "
                f"{fmt(d.get('calls_per_s')) if d else '-'} | {fmt(l.get('calls_per_s'))} | {ratio} |")
open(f"{out}/latency.md", "w").write("\n".join(rows) + "\n")
failed = [c for c in checks if c["status"] == "FAIL"]
if failed:
    print("failed checks:")
    for c in failed:
        print(f"  FAIL {c['client']} {c['endpoint']}@{c['label']} {c['operation']} {c['detail'][:300]}")
print(f"matrix: {summary['passed']} passed, {summary['failed']} failed, {summary['skipped']} skipped ({out}/matrix.json)")
EOF
exit $status
