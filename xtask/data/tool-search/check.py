#!/usr/bin/env python3
"""Validates the tool-search evaluation data: catalog.json and queries.json.

Checks that server names and tool ids ("<server>/<tool name>") are unique, every tool has a name
and an object inputSchema, every expected id of every query exists in the catalog, no query is
repeated or has an empty expectation, and the counts meet the minimums. Prints the counts and
exits 1 on any problem.

usage: python3 check.py [DIR]   (DIR defaults to this script's folder)
"""

import collections
import json
import sys
from pathlib import Path

MIN_SERVERS = 25
MIN_TOOLS = 550
MIN_QUERIES = 170
MIN_QUERY_SERVERS = 20
MAX_TOOLS_PER_SERVER = 80


def main() -> int:
    here = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    catalog = json.loads((here / "catalog.json").read_text())
    queries = json.loads((here / "queries.json").read_text())["queries"]
    errors = []

    servers = catalog["servers"]
    names = [s["server"] for s in servers]
    for name, n in collections.Counter(names).items():
        if n > 1:
            errors.append(f"server name {name!r} appears {n} times")

    ids = collections.Counter()
    for s in servers:
        if not s.get("source", "").startswith(("npm:", "pypi:")):
            errors.append(f"{s['server']}: source {s.get('source')!r} is not npm:... or pypi:...")
        if len(s["tools"]) > MAX_TOOLS_PER_SERVER:
            errors.append(f"{s['server']}: {len(s['tools'])} tools, over the cap of {MAX_TOOLS_PER_SERVER}")
        for t in s["tools"]:
            if not t.get("name"):
                errors.append(f"{s['server']}: a tool without a name")
            if not isinstance(t.get("inputSchema"), dict):
                errors.append(f"{s['server']}/{t.get('name')}: inputSchema is not an object")
            ids[f"{s['server']}/{t.get('name')}"] += 1
    for tid, n in ids.items():
        if n > 1:
            errors.append(f"tool id {tid!r} appears {n} times")

    seen = set()
    expected_servers = collections.Counter()
    expected_total = 0
    for i, q in enumerate(queries):
        text = q.get("query", "").strip()
        if not text:
            errors.append(f"query #{i} is empty")
        if text.lower() in seen:
            errors.append(f"query #{i} repeats {text!r}")
        seen.add(text.lower())
        exp = q.get("expected") or []
        if not exp:
            errors.append(f"query #{i} {text!r} expects nothing")
        if len(set(exp)) != len(exp):
            errors.append(f"query #{i} {text!r} lists an expected id twice")
        for e in exp:
            expected_total += 1
            if e not in ids:
                errors.append(f"query #{i} {text!r}: expected id {e!r} is not in the catalog")
        for srv in {e.split("/", 1)[0] for e in exp}:
            expected_servers[srv] += 1

    n_tools = sum(ids.values())
    single = sum(1 for q in queries if len(q.get("expected") or []) == 1)
    print(f"servers: {len(servers)} (min {MIN_SERVERS})")
    print(f"tools: {n_tools} (min {MIN_TOOLS}), largest server {max(len(s['tools']) for s in servers)}")
    print(f"queries: {len(queries)} (min {MIN_QUERIES}), {single} with one expected tool, "
          f"{len(queries) - single} with several; {expected_total} expected ids in all")
    print(f"servers with at least one expected tool: {len(expected_servers)} (min {MIN_QUERY_SERVERS})")
    print(f"catalog servers never expected: {sorted(set(names) - set(expected_servers)) or 'none'}")

    if len(servers) < MIN_SERVERS:
        errors.append(f"only {len(servers)} servers")
    if n_tools < MIN_TOOLS:
        errors.append(f"only {n_tools} tools")
    if len(queries) < MIN_QUERIES:
        errors.append(f"only {len(queries)} queries")
    if len(expected_servers) < MIN_QUERY_SERVERS:
        errors.append(f"queries cover only {len(expected_servers)} servers")

    for e in errors:
        print(f"ERROR: {e}")
    print("ok" if not errors else f"{len(errors)} problem(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
