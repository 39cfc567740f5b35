"""The real-client matrix, Python half: drives a vMCP's MCP endpoints with the Python SDK client
(`mcp` 2.x, pinned in clients_run.sh) in its default mode (`auto`: `server/discover`, falling back
to `initialize`) and in `mode="legacy"`, over streamable HTTP and legacy SSE. One line per check:

    ok|FAIL|skip CLIENT ENDPOINT OPERATION DETAIL

usage: clients.py --http URL --sse URL [--direct URL] [--json PATH] [--prefix PREFIX]
                  [--search-http URL --search-sse URL]
                  [--latency N] [--modes auto,legacy] [--label L]

The upstream is @modelcontextprotocol/server-everything; tool and prompt names are its own with
PREFIX in front (empty when the vMCP has `naming.prefix` false). --search-http/--search-sse are the
endpoints of a vMCP over the same upstream with `tool_search` "search": every mode and endpoint
also runs the `search/*` checks there (only the meta-tools search_tools and call_tool are listed).
Exits 1 when any check failed. Every call runs under a deadline: a hang is a FAIL.
"""

import argparse
import asyncio
import json
import math
import re
import statistics
import sys
import time
import warnings
from importlib.metadata import version as dist_version

import anyio
import mcp_types as types
from mcp.client.client import Client
from mcp.client.sse import sse_client

warnings.simplefilter("ignore")

CALL_TIMEOUT = 15.0

p = argparse.ArgumentParser()
p.add_argument("--http")
p.add_argument("--sse")
p.add_argument("--direct")
p.add_argument("--search-http")
p.add_argument("--search-sse")
p.add_argument("--json")
p.add_argument("--prefix", default="")
p.add_argument("--label", default="")
p.add_argument("--latency", type=int, default=100)
p.add_argument("--modes", default="auto,legacy")
args = p.parse_args()

MCP_VERSION = dist_version("mcp")
results = []
latencies = []


def tool(name):
    return args.prefix + name


def one_line(s, limit=400):
    s = " ".join(str(s).split())
    return s if len(s) <= limit else s[:limit] + "..."


def err_text(e):
    parts = [type(e).__name__]
    code = getattr(getattr(e, "error", None), "code", None)
    if code is not None:
        parts.append(f"code={code}")
    parts.append(str(e) or repr(e))
    data = getattr(getattr(e, "error", None), "data", None)
    if data is not None:
        parts.append(f"data={json.dumps(data, default=str)}")
    if isinstance(e, BaseExceptionGroup):
        parts.append("; ".join(err_text(x) for x in e.exceptions))
    return one_line(" ".join(parts))


def record(client, endpoint, operation, status, detail, ms=None):
    where = endpoint + (f"@{args.label}" if args.label else "")
    print(f"{status} {client} {where} {operation} {one_line(detail)}", flush=True)
    results.append({"client": client, "endpoint": endpoint, "label": args.label, "operation": operation,
                    "status": status, "detail": one_line(detail, 2000), "ms": ms})


class Skip(Exception):
    pass


async def check(client, endpoint, operation, fn, timeout=CALL_TIMEOUT + 2):
    started = time.perf_counter()
    try:
        with anyio.fail_after(timeout):
            detail = await fn()
        record(client, endpoint, operation, "ok", detail, (time.perf_counter() - started) * 1000)
        return True
    except Skip as e:
        record(client, endpoint, operation, "skip", str(e), (time.perf_counter() - started) * 1000)
        return None
    except TimeoutError:
        record(client, endpoint, operation, "FAIL", f"timed out after {timeout} s",
               (time.perf_counter() - started) * 1000)
        return False
    except Exception as e:  # noqa: BLE001 - every failure is a line in the table
        record(client, endpoint, operation, "FAIL", err_text(e), (time.perf_counter() - started) * 1000)
        return False


def expect(cond, msg):
    if not cond:
        raise AssertionError(msg)


def texts(result):
    return "\n".join(c.text for c in result.content if getattr(c, "type", None) == "text")


def dump(result, limit=300):
    try:
        return one_line(json.dumps(result.model_dump(mode="json", by_alias=True, exclude_none=True)), limit)
    except Exception:  # noqa: BLE001
        return one_line(repr(result), limit)


def make_client(name, mode, endpoint, url, updates):
    root = types.Root(uri=f"file:///matrix/{name}", name=f"matrix-root-{name}")

    async def sampling(ctx, params):
        return types.CreateMessageResult(role="assistant", model="matrix-model", stop_reason="endTurn",
                                         content=types.TextContent(type="text", text=f"sampled-by-{name}"))

    async def elicitation(ctx, params):
        return types.ElicitResult(action="accept", content={"name": f"elicited-by-{name}"})

    async def roots(ctx):
        return types.ListRootsResult(roots=[root])

    async def on_message(message):
        if isinstance(message, types.ResourceUpdatedNotification):
            updates.append(str(message.params.uri))

    server = sse_client(url) if endpoint == "sse" else url
    client = Client(server, mode=mode, read_timeout_seconds=CALL_TIMEOUT, sampling_callback=sampling,
                    elicitation_callback=elicitation, list_roots_callback=roots, message_handler=on_message,
                    client_info=types.Implementation(name=f"matrix-{name}", version=MCP_VERSION))
    return client, root


def modern(client):
    return client.protocol_version in ("2026-07-28",)


async def removed_in_modern(client, coro_fn):
    """ping, logging/setLevel and resources/subscribe are gone from 2026-07-28: a refusal there is a skip."""
    try:
        return await coro_fn()
    except Exception as e:  # noqa: BLE001
        if modern(client):
            raise Skip(f"removed in {client.protocol_version}: {err_text(e)}") from e
        raise


def percentile(values, pct):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, math.ceil(pct / 100 * len(values)) - 1)]


CONCURRENCY = 16


async def measure(client, name, endpoint, target, echo):
    if not args.latency:
        return
    times, errors, first_error = [], 0, None
    for i in range(args.latency):
        t0 = time.perf_counter()
        try:
            with anyio.fail_after(CALL_TIMEOUT + 1):
                r = await client.call_tool(echo, {"message": f"m{i}"})
            if texts(r) != f"Echo: m{i}":
                raise AssertionError(f"unexpected answer {dump(r, 200)}")
            times.append((time.perf_counter() - t0) * 1000)
        except Exception as e:  # noqa: BLE001
            errors += 1
            first_error = first_error or err_text(e)
            if errors >= 3:
                break
    # Throughput: the same number of calls again, CONCURRENCY at a time on the one session.
    throughput = float("nan")
    if not errors:
        pending = iter(range(args.latency))

        async def worker():
            for i in pending:
                with anyio.fail_after(CALL_TIMEOUT + 1):
                    r = await client.call_tool(echo, {"message": f"c{i}"})
                if texts(r) != f"Echo: c{i}":
                    raise AssertionError(f"unexpected answer {dump(r, 200)}")

        t0 = time.perf_counter()
        try:
            async with anyio.create_task_group() as tg:
                for _ in range(CONCURRENCY):
                    tg.start_soon(worker)
            throughput = round(args.latency / (time.perf_counter() - t0), 1)
        except Exception as e:  # noqa: BLE001
            errors += 1
            first_error = first_error or f"at concurrency {CONCURRENCY}: {err_text(e)}"
    entry = {"client": name, "endpoint": endpoint, "label": args.label, "target": target, "n": len(times),
             "errors": errors, "p50_ms": round(percentile(times, 50), 2), "p99_ms": round(percentile(times, 99), 2),
             "mean_ms": round(statistics.fmean(times), 2) if times else float("nan"),
             "concurrency": CONCURRENCY, "calls_per_s": throughput}
    latencies.append(entry)
    detail = (f"{target}: {entry['n']} calls p50={entry['p50_ms']}ms p99={entry['p99_ms']}ms "
              f"mean={entry['mean_ms']}ms, {throughput} calls/s at concurrency {CONCURRENCY}") + (
                  f" errors={errors} first: {first_error}" if errors else "")
    record(name, endpoint, f"latency-{target}", "FAIL" if errors else "ok", detail)


async def operations(C, E, c, root, updates):
    tool_names = []

    async def list_tools():
        nonlocal tool_names
        cursor, pages = None, 0
        while True:
            r = await c.list_tools(cursor=cursor, cache_mode="bypass")
            pages += 1
            tool_names += [t.name for t in r.tools]
            cursor = r.next_cursor
            if not cursor or pages >= 100:
                break
        missing = [n for n in map(tool, ["echo", "get-structured-content", "get-tiny-image",
                                         "trigger-long-running-operation"]) if n not in tool_names]
        expect(not missing, f"missing {missing} in {tool_names}")
        return f"{len(tool_names)} tools, pages={pages}"
    await check(C, E, "tools/list", list_tools)

    async def echo():
        r = await c.call_tool(tool("echo"), {"message": "hello matrix"})
        expect(texts(r) == "Echo: hello matrix" and not r.is_error, f"answer {dump(r)}")
        return texts(r)
    await check(C, E, "tools/call-echo", echo)

    async def structured():
        r = await c.call_tool(tool("get-structured-content"), {"location": "Chicago"})
        expect((r.structured_content or {}).get("temperature") == 36, f"structuredContent in {dump(r)}")
        return f"structuredContent={json.dumps(r.structured_content)}"
    await check(C, E, "tools/call-structured", structured)

    async def error_call(name, arguments):
        try:
            r = await c.call_tool(name, arguments)
        except Exception as e:  # noqa: BLE001
            code = getattr(getattr(e, "error", None), "code", None)
            expect(isinstance(code, int), f"not a JSON-RPC error: {err_text(e)}")
            return f"JSON-RPC error: {err_text(e)}"
        expect(r.is_error is True, f"no error: {dump(r)}")
        return f"isError: {one_line(texts(r), 160)}"
    await check(C, E, "tools/call-unknown-tool", lambda: error_call(tool("no-such-tool"), {}))
    await check(C, E, "tools/call-bad-args", lambda: error_call(tool("get-sum"), {"a": "not a number", "b": 2}))

    async def image():
        r = await c.call_tool(tool("get-tiny-image"), {})
        imgs = [x for x in r.content if getattr(x, "type", None) == "image"]
        expect(imgs and imgs[0].mime_type == "image/png" and len(imgs[0].data) > 100, f"no image/png in {dump(r)}")
        return f"image/png {len(imgs[0].data)} base64 chars"
    await check(C, E, "tools/call-image", image)

    static = {}

    async def list_resources():
        r = await c.list_resources(cache_mode="bypass")
        t = await c.list_resource_templates(cache_mode="bypass")
        uris = [str(x.uri) for x in r.resources]
        static["uri"] = next((u for u in uris if u.startswith("demo://resource/static/")), None)
        expect(static["uri"], f"no demo://resource/static/ resource in {uris}")
        templates = [x.uri_template for x in t.resource_templates]
        expect(any("demo://resource/dynamic/text/" in u for u in templates), f"no dynamic text template in {templates}")
        return f"{len(uris)} resources, {len(templates)} templates"
    await check(C, E, "resources/list", list_resources)

    async def read_static():
        uri = static.get("uri")
        expect(uri, "no static resource listed")
        r = await c.read_resource(uri, cache_mode="bypass")
        x = r.contents[0]
        body = getattr(x, "text", None) or getattr(x, "blob", None)
        expect(str(x.uri) == uri and body, f"contents {dump(r)}")
        return f"{uri}: {x.mime_type} {len(body)} chars"
    await check(C, E, "resources/read-static", read_static)

    async def read_template():
        uri = "demo://resource/dynamic/text/7"
        r = await c.read_resource(uri, cache_mode="bypass")
        x = r.contents[0]
        expect(str(x.uri) == uri and getattr(x, "text", None), f"contents {dump(r)}")
        return one_line(x.text, 100)
    await check(C, E, "resources/read-template", read_template)

    async def list_prompts():
        r = await c.list_prompts(cache_mode="bypass")
        names = [x.name for x in r.prompts]
        expect(tool("simple-prompt") in names and tool("completable-prompt") in names, f"prompts {names}")
        return f"{len(names)} prompts"
    await check(C, E, "prompts/list", list_prompts)

    async def get_prompt():
        r = await c.get_prompt(tool("completable-prompt"), {"department": "Engineering", "name": "Alice"})
        text = getattr(r.messages[0].content, "text", None) if r.messages else None
        expect(text == "Please promote Alice to the head of the Engineering team.", f"messages {dump(r)}")
        return text
    await check(C, E, "prompts/get", get_prompt)

    async def complete():
        r = await c.complete(types.PromptReference(type="ref/prompt", name=tool("completable-prompt")),
                             {"name": "department", "value": "Eng"})
        expect(r.completion.values == ["Engineering"], f"completion {dump(r)}")
        return f"values={r.completion.values}"
    await check(C, E, "completion/complete", complete)

    async def progress():
        seen = []

        async def on_progress(value, total, message):
            seen.append(value)
        r = await c.call_tool(tool("trigger-long-running-operation"), {"duration": 1, "steps": 3},
                              progress_callback=on_progress)
        expect(texts(r).startswith("Long running operation completed"), f"answer {dump(r)}")
        for _ in range(20):  # the last notification may be dispatched just after the result
            if len(seen) >= 3:
                break
            await anyio.sleep(0.025)
        # Direct to server-everything over legacy SSE the last one arrives after the result (and is
        # dropped by the client): at least one must arrive, the count is in the detail.
        expect(len(seen) >= 1, f"no progress notification arrived (result {dump(r, 200)})")
        return f"{len(seen)}/3 progress notifications {seen}"
    await check(C, E, "progress", progress)

    async def cancel():
        t0 = time.perf_counter()
        with anyio.move_on_after(0.4) as scope:
            await c.call_tool(tool("trigger-long-running-operation"), {"duration": 8, "steps": 8})
        expect(scope.cancelled_caught, "the call completed before it could be cancelled")
        took = (time.perf_counter() - t0) * 1000
        r = await c.call_tool(tool("echo"), {"message": "after cancel"})
        expect(texts(r) == "Echo: after cancel", f"next call answered {dump(r, 200)}")
        return f"cancelled after {took:.0f} ms; next call ok"
    await check(C, E, "cancel", cancel)

    async def server_request(op, name, arguments, marker, why):
        expect(name in tool_names, f"{name} not listed (upstream registers it only when its client declared {why})")
        r = await c.call_tool(name, arguments)
        t = texts(r)
        expect(not r.is_error and marker in t, f"answer {one_line(t or dump(r), 300)}")
        return f"{op}: the handler's answer came back"
    await check(C, E, "sampling", lambda: server_request(
        "sampling", tool("trigger-sampling-request"), {"prompt": "say hi", "maxTokens": 10}, f"sampled-by-{C}", "sampling"))
    await check(C, E, "elicitation", lambda: server_request(
        "elicitation", tool("trigger-elicitation-request"), {}, f"elicited-by-{C}", "elicitation"))
    async def roots():
        name, mine = tool("get-roots-list"), str(root.uri)
        expect(name in tool_names, f"{name} not listed (upstream registers it only when its client declared roots)")
        r = await c.call_tool(name, {})
        t = texts(r)
        others = [u for u in re.findall(r"file:///matrix/\S+", t) if u != mine]
        expect(not r.is_error and mine in t,
               f"the answer names another client's root {', '.join(others)}, not {mine}" if others
               else f"the answer does not name {mine}: {one_line(t or dump(r), 300)}")
        return f"names {mine}"
    await check(C, E, "roots", roots)

    async def set_level():
        await removed_in_modern(c, lambda: c.set_logging_level("debug"))
        return "accepted"
    await check(C, E, "logging/setLevel", set_level)

    async def ping():
        await removed_in_modern(c, lambda: c.send_ping())
        return "pong"
    await check(C, E, "ping", ping)

    async def subscribe():
        uri = "demo://resource/dynamic/text/3"
        await removed_in_modern(c, lambda: c.subscribe_resource(uri))

        async def toggle():
            return texts(await c.call_tool(tool("toggle-subscriber-updates"), {}))
        state = await toggle()
        if state.startswith("Stopped"):
            await toggle()
        deadline = time.perf_counter() + 6
        while uri not in updates and time.perf_counter() < deadline:
            await anyio.sleep(0.05)
        await toggle()
        await c.unsubscribe_resource(uri)
        expect(uri in updates, f"subscribed, but no notifications/resources/updated for {uri} within 6 s (got {updates})")
        return "subscribed; notifications/resources/updated arrived; unsubscribed"
    await check(C, E, "resources/subscribe", subscribe, timeout=30)

    await measure(c, C, E, "vmcp", tool("echo"))


async def outcome(coro):
    """A call's outcome as one line that two calls can be compared by: the JSON-RPC error or the result."""
    try:
        r = await coro
    except Exception as e:  # noqa: BLE001
        code = getattr(getattr(e, "error", None), "code", None)
        return {"code": code, "line": f"code={code} {e}", "text": err_text(e)}
    return {"code": None, "result": r, "line": f"result isError={r.is_error is True}: {one_line(texts(r), 300)}"}


SEARCH_QUERY = "echo a message back"


async def search_operations(C, E, c):
    """The tool-search section: the same client and endpoint, on a vMCP with `tool_search` "search"."""
    async def list_tools():
        r = await c.list_tools(cache_mode="bypass")
        names = [t.name for t in r.tools]
        expect(names == ["search_tools", "call_tool"] and not r.next_cursor,
               f"listed {names} (next_cursor={r.next_cursor}), not exactly ['search_tools', 'call_tool']")
        return ", ".join(names)
    await check(C, E, "search/tools-list", list_tools)

    found_echo = {}

    async def search():
        r = await c.call_tool("search_tools", {"query": SEARCH_QUERY})
        sc = r.structured_content
        expect(not r.is_error and isinstance(sc, dict) and isinstance(sc.get("tools"), list)
               and isinstance(sc.get("of"), int), f"answer {dump(r)}")
        found = [t.get("name") for t in sc["tools"]]
        expect(tool("echo") in found[:3], f"{tool('echo')} not among the first 3 of {found}")
        at = found.index(tool("echo"))
        echo = sc["tools"][at]
        expect("message" in ((echo.get("inputSchema") or {}).get("properties") or {}),
               f"no message property in the inputSchema of {one_line(json.dumps(echo), 300)}")
        expect(len(found) <= 5 and sc["of"] >= len(found), f"{len(found)} tools of {sc['of']} (default limit 5)")
        first = r.content[0] if r.content else None
        try:
            text = json.loads(first.text)
        except Exception:  # noqa: BLE001
            text = None
        expect(text == sc, f"the first text content is not the structuredContent: {one_line(getattr(first, 'text', first), 200)}")
        found_echo["name"] = echo["name"]
        return f'"{SEARCH_QUERY}": {echo["name"]} #{at + 1} of {found}, of={sc["of"]}'
    await check(C, E, "search/search_tools", search)

    async def call_echo():
        name = found_echo.get("name", tool("echo"))
        r = await c.call_tool("call_tool", {"name": name, "arguments": {"message": "hi"}})
        expect(texts(r) == "Echo: hi" and not r.is_error, f"answer {dump(r)}")
        return f"{name}: {texts(r)}"
    await check(C, E, "search/call_tool-echo", call_echo)

    async def call_structured():
        name = tool("get-structured-content")
        r = await c.call_tool("call_tool", {"name": name, "arguments": {"location": "Chicago"}})
        expect((r.structured_content or {}).get("temperature") == 36 and not r.is_error, f"structuredContent in {dump(r)}")
        return f"{name}: structuredContent={json.dumps(r.structured_content)}"
    await check(C, E, "search/call_tool-structured", call_structured)

    # Bad arguments of search_tools: a JSON-RPC error -32602 (invalid params).
    async def refused(what, arguments):
        o = await outcome(c.call_tool("search_tools", arguments))
        expect(o["code"] == -32602, f"{what}: not a -32602 (invalid params) error: {o['line']}")
        return f"{what}: {o['text']}"

    async def bad_limit():
        return "; ".join([await refused("limit 0", {"query": SEARCH_QUERY, "limit": 0}),
                          await refused("limit 10000", {"query": SEARCH_QUERY, "limit": 10000})])
    await check(C, E, "search/search_tools-bad-limit", bad_limit)

    async def no_query():
        return "; ".join([await refused("no query", {}), await refused("empty query", {"query": ""})])
    await check(C, E, "search/search_tools-no-query", no_query)

    async def unknown():
        name = tool("no-such-tool")
        via = await outcome(c.call_tool("call_tool", {"name": name, "arguments": {}}))
        expect(isinstance(via["code"], int) or getattr(via.get("result"), "is_error", None) is True,
               f"no error: {via['line']}")
        directly = await outcome(c.call_tool(name, {}))
        expect(via["line"] == directly["line"], f"call_tool answered {via['line']}; a direct call {directly['line']}")
        return f"as a direct call: {via.get('text') or via['line']}"
    await check(C, E, "search/call_tool-unknown-tool", unknown)


def describe(client):
    caps = client.server_capabilities.model_dump(exclude_none=True)
    info = client.server_info
    return (f"protocol={client.protocol_version} server={info.name if info else None}/"
            f"{info.version if info else None} caps={','.join(caps)}")


async def session(name, endpoint, client, body, budget, section=""):
    """Connects (a check of its own), runs body inside the session, closes. The whole session runs
    under one deadline too: the client's task group cannot be entered inside a check's own scope.
    section prefixes the operations it records (`search/` for the tool-search section)."""
    started = time.perf_counter()
    connected = False
    try:
        with anyio.fail_after(budget):
            async with client:
                connected = True
                record(name, endpoint, f"{section}connect", "ok", describe(client), (time.perf_counter() - started) * 1000)
                await body()
    except BaseException as e:  # noqa: BLE001 - every failure is a line in the table
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        what = f"timed out after {budget} s" if isinstance(e, TimeoutError) else err_text(e)
        if not connected:
            record(name, endpoint, f"{section}connect", "FAIL", what, (time.perf_counter() - started) * 1000)
        else:
            record(name, endpoint, f"{section}session", "FAIL", f"the session broke: {what}")


async def run_client(mode, endpoint, url):
    name = f"py-mcp@{MCP_VERSION}/{mode}"
    updates = []
    client, root = make_client(name, mode, endpoint, url, updates)
    await session(name, endpoint, client, lambda: operations(name, endpoint, client, root, updates), budget=150)


async def run_search(mode, endpoint, url):
    name = f"py-mcp@{MCP_VERSION}/{mode}"
    client, _ = make_client(name, mode, endpoint, url, [])
    await session(name, endpoint, client, lambda: search_operations(name, endpoint, client), budget=60,
                  section="search/")


async def direct_latency(mode):
    name = f"py-mcp@{MCP_VERSION}/{mode}"
    client, _ = make_client(name, mode, "http", args.direct, [])
    await session(name, "direct", client, lambda: measure(client, name, "direct", "direct", "echo"), budget=60)


async def main():
    endpoints = {"http": args.http, "sse": args.sse}
    search_endpoints = {"http": args.search_http, "sse": args.search_sse}
    for mode in args.modes.split(","):
        for endpoint, url in endpoints.items():
            if url:
                await run_client(mode, endpoint, url)
            if url and search_endpoints[endpoint]:
                await run_search(mode, endpoint, search_endpoints[endpoint])
        if args.direct and args.latency:
            await direct_latency(mode)
    failed = [r for r in results if r["status"] == "FAIL"]
    summary = {
        "language": "python", "label": args.label, "python": sys.version.split()[0],
        "packages": {"mcp": MCP_VERSION, "mcp-types": dist_version("mcp-types")},
        "endpoints": endpoints, "search_endpoints": search_endpoints, "direct": args.direct, "checks": results, "latency": latencies,
        "passed": sum(r["status"] == "ok" for r in results), "failed": len(failed),
        "skipped": sum(r["status"] == "skip" for r in results),
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)
            f.write("\n")
    print(f"python clients: {summary['passed']} passed, {summary['failed']} failed, {summary['skipped']} skipped")
    return 1 if failed else 0


sys.exit(asyncio.run(main()))
