"""The "client" the MCP conformance suite's authorization scenarios check, which is vMCP itself:
given the scenario's server URL, this registers it in a running vMCP (VMCP_BASE) with
`config.auth`, connects it, plays the browser (follows the authorization URL's redirects, which
the suite's authorization server answers at once, to vMCP's callback), waits until vMCP is
connected, lists and calls the tools through a vMCP, and removes what it made.

usage: oauth_conformance_client.py SERVER_URL
env:   VMCP_BASE (required), MCP_CONFORMANCE_SCENARIO, MCP_CONFORMANCE_CONTEXT (client_id and
       client_secret for the scenarios with a pre-registered client)
Exits 0 when vMCP connected with a token and called through; 1 otherwise (the reason on stderr).
"""

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


opener = urllib.request.build_opener(NoRedirect)


def call(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"content-type": "application/json"})
    try:
        with opener.open(req, timeout=60) as r:
            text = r.read().decode()
            return r.status, dict(r.headers), text
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def fail(why):
    print(f"vMCP conformance client: {why}", file=sys.stderr)
    sys.exit(1)


def main():
    server_url = sys.argv[-1]
    base = os.environ["VMCP_BASE"]
    scenario = os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    context = json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}")
    auth = {"type": "oauth"}
    if context.get("client_id"):
        auth["client_id"] = context["client_id"]
    if context.get("client_secret"):
        auth["client_secret"] = context["client_secret"]
    if "client-credentials" in scenario:
        auth["grant"] = "client_credentials"
    name = "conf-" + uuid.uuid4().hex[:8]
    status, _, text = call("POST", f"{base}/api/mcp-servers", {
        "name": name, "transport_type": "streamable_http",
        "config": {"url": server_url, "auth": auth, "timeout_seconds": 20}})
    if status != 201:
        fail(f"registering the server: {status} {text}")
    sid = json.loads(text)["server_id"]
    try:
        status, _, text = call("POST", f"{base}/api/mcp-servers/{sid}/connect")
        answer = json.loads(text)
        if answer.get("status") == "auth_required":
            url = answer["authorization_url"]
            for _ in range(10):
                if url.startswith(f"{base}/api/oauth/callback"):
                    break
                status, headers, text = call("GET", url)
                location = headers.get("Location") or headers.get("location")
                if status not in (301, 302, 303, 307, 308) or not location:
                    fail(f"the authorization server answered {status} at {url}: {text[:300]}")
                url = urllib.parse.urljoin(url, location)
            status, _, text = call("GET", url)
            if status != 200:
                fail(f"the callback answered {status}: {text}")
        elif status != 200:
            fail(f"connect answered {status}: {text}")
        deadline = time.time() + 30
        server = {}
        while time.time() < deadline:
            _, _, text = call("GET", f"{base}/api/mcp-servers/{sid}")
            server = json.loads(text)
            if server.get("status") == "connected":
                break
            time.sleep(0.2)
        if server.get("status") != "connected":
            fail(f"vMCP did not connect: {server.get('status')}: {server.get('last_error')}")
        vmcp = name + "-v"
        status, _, text = call("POST", f"{base}/api/vmcps",
                               {"name": vmcp, "mcp_servers": [{"server_id": sid}],
                                "naming": {"prefix": False}})
        if status != 201:
            fail(f"creating the vMCP: {status} {text}")
        try:
            status, _, text = call("GET", f"{base}/api/vmcps/{vmcp}/tools")
            if status != 200:
                fail(f"listing tools: {status} {text}")
            tools = json.loads(text).get("tools", [])
            for tool in tools[:1]:
                call("POST", f"{base}/api/vmcps/{vmcp}/tools/call",
                     {"name": tool["name"], "arguments": {}})
        finally:
            call("DELETE", f"{base}/api/vmcps/{vmcp}")
    finally:
        call("DELETE", f"{base}/api/mcp-servers/{sid}")


if __name__ == "__main__":
    main()
