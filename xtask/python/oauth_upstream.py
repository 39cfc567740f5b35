"""An upstream MCP server protected by OAuth, for vMCP's OAuth end-to-end tests.

Built with the official Python SDK (mcp==2.3.0, `MCPServer`) acting as an OAuth 2.1 resource
server per the MCP authorization spec:

  * `AuthSettings(issuer_url=..., resource_server_url=..., required_scopes=...)` plus a
    `TokenVerifier` make the SDK serve RFC 9728 protected-resource metadata at
    /.well-known/oauth-protected-resource/mcp and answer a request without a valid token with
    401 and `WWW-Authenticate: Bearer error="invalid_token", ..., resource_metadata="<that URL>"`
    (403 `insufficient_scope` when the token lacks a required scope).
  * Tokens are verified here as JWT access tokens (RFC 9068) against the issuer's JWKS (found
    through the issuer's /.well-known/oauth-authorization-server, falling back to
    /.well-known/openid-configuration): signature (RS256/ES256/PS256/EdDSA), `typ` at+jwt,
    `iss` == --issuer, `exp` (and `nbf`), `aud` == this server's resource URL.
    PyJWT comes with mcp==2.3.0 (it requires pyjwt[crypto]>=2.10.1; 2.15.1 resolved).

Usage (with the venv $HOME/.cache/vmcp-tools/venv-clients that xtask/python/tools.sh makes):

    python oauth_upstream.py --port P --issuer URL [--scopes mcp:tools] [--resource URL]

  --port      listen on 127.0.0.1:P; streamable HTTP at http://127.0.0.1:P/mcp
  --issuer    the authorization server's issuer (e.g. http://127.0.0.1:9400 from oidc_provider.mjs)
  --scopes    required scopes, space- or comma-separated (default "mcp:tools"; "" for none);
              also the metadata's scopes_supported
  --resource  this server's resource identifier (default http://127.0.0.1:P/mcp); tokens'
              `aud` must equal it

Tools: `whoami` -> JSON text {"sub", "client_id", "scope", "aud"} of the caller's token;
`rejected` -> JSON text {reason: count} of the tokens refused so far ("missing": requests
without one);
`echo` {"message": str} -> the message.
Prints exactly `READY http://127.0.0.1:P/mcp` on stdout once listening; logs go to stderr.
Exits on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import urllib.request

import anyio
import jwt
import uvicorn
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer

log = logging.getLogger("oauth_upstream")

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]


class JwtTokenVerifier:
    """Verifies RFC 9068 JWT access tokens against the issuer's JWKS."""

    def __init__(self, issuer: str, resource: str):
        self.issuer = issuer
        self.resource = resource
        self._jwks: jwt.PyJWKClient | None = None

    def _discover(self) -> jwt.PyJWKClient:
        if self._jwks is None:
            base = self.issuer.rstrip("/")
            last: Exception | None = None
            for well_known in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
                try:
                    with urllib.request.urlopen(base + well_known, timeout=5) as r:
                        meta = json.load(r)
                    if meta.get("issuer") != self.issuer:
                        raise ValueError(f"metadata issuer {meta.get('issuer')!r} is not {self.issuer!r}")
                    # An unknown kid refetches the JWKS at once (cooldown 0): test providers restart
                    # with fresh keys.
                    self._jwks = jwt.PyJWKClient(meta["jwks_uri"], lifespan=60, timeout=5, cooldown_duration=0)
                    break
                except Exception as e:  # noqa: BLE001 - try the next document
                    last = e
            if self._jwks is None:
                raise RuntimeError(f"cannot discover {self.issuer}: {last}")
        return self._jwks

    def _verify(self, token: str) -> AccessToken | None:
        try:
            header = jwt.get_unverified_header(token)
            if header.get("typ", "").lower() not in ("at+jwt", "application/at+jwt"):
                raise jwt.InvalidTokenError(f"typ {header.get('typ')!r} is not at+jwt")
            key = self._discover().get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=ALGORITHMS,
                audience=self.resource,
                issuer=self.issuer,
                options={"require": ["exp", "iss", "aud"]},
                leeway=0,
            )
        except Exception as e:  # noqa: BLE001 - any failure means "not a valid token here"
            log.warning("token rejected: %s: %s", type(e).__name__, e)
            REJECTED[type(e).__name__] = REJECTED.get(type(e).__name__, 0) + 1
            return None
        scope = claims.get("scope") or ""
        return AccessToken(
            token=token,
            client_id=str(claims.get("client_id") or claims.get("azp") or ""),
            scopes=scope.split() if isinstance(scope, str) else list(scope),
            expires_at=int(claims["exp"]),
            resource=self.resource,
            subject=claims.get("sub"),
            claims=claims,
        )

    async def verify_token(self, token: str) -> AccessToken | None:
        return await anyio.to_thread.run_sync(self._verify, token)


# The tokens refused so far, by reason (the `rejected` tool answers them).
REJECTED: dict[str, int] = {}


def build_server(issuer: str, resource: str, scopes: list[str]) -> MCPServer:
    server = MCPServer(
        "oauth-upstream",
        token_verifier=JwtTokenVerifier(issuer, resource),
        auth=AuthSettings(
            issuer_url=issuer,
            resource_server_url=resource,
            required_scopes=scopes or None,
            validate_token_resource=True,
        ),
        log_level="WARNING",
    )

    @server.tool()
    def whoami() -> str:
        """Returns the caller's access token identity: sub, client_id, scope, aud."""
        token = get_access_token()
        claims = (token.claims or {}) if token else {}
        return json.dumps(
            {
                "sub": claims.get("sub"),
                "client_id": token.client_id if token else None,
                "scope": claims.get("scope"),
                "aud": claims.get("aud"),
            }
        )

    @server.tool()
    def rejected() -> str:
        """Returns how many tokens this server refused, by reason (e.g. ExpiredSignatureError)."""
        return json.dumps(REJECTED)

    @server.tool()
    def echo(message: str) -> str:
        """Echoes the message back."""
        return message

    return server


async def serve(port: int, issuer: str, resource: str, scopes: list[str]) -> None:
    server = build_server(issuer, resource, scopes)
    inner = server.streamable_http_app(streamable_http_path="/mcp", host="127.0.0.1")

    async def app(scope, receive, send):
        # Requests to the endpoint without a token are counted as refusals too ("missing").
        if scope["type"] == "http" and scope["path"] == "/mcp":
            if not any(k.lower() == b"authorization" for k, _ in scope.get("headers", [])):
                REJECTED["missing"] = REJECTED.get("missing", 0) + 1
        await inner(scope, receive, send)

    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    userver = uvicorn.Server(config)

    async def announce() -> None:
        while not userver.started:
            if userver.should_exit:
                return
            await asyncio.sleep(0.05)
        print(f"READY http://127.0.0.1:{port}/mcp", flush=True)

    task = asyncio.create_task(announce())
    await userver.serve()  # uvicorn handles SIGTERM/SIGINT and returns
    task.cancel()
    if not userver.started:
        sys.exit(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--issuer", required=True)
    ap.add_argument("--scopes", default="mcp:tools")
    ap.add_argument("--resource")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="[oauth_upstream] %(message)s")
    scopes = [s for s in args.scopes.replace(",", " ").split() if s]
    resource = args.resource or f"http://127.0.0.1:{args.port}/mcp"
    asyncio.run(serve(args.port, args.issuer.rstrip("/"), resource, scopes))


if __name__ == "__main__":
    main()
