"""CORS for browser-hosted MCP clients, in front of Django and the MCP app alike.

One mechanism (Starlette's `CORSMiddleware`, at the top of the ASGI router) and one
setting (`MCP_ALLOWED_ORIGINS`, the same list the MCP Origin gate accepts besides
`PUBLIC_URL`). Preflights (`OPTIONS` with `Access-Control-Request-Method`) are answered
here, before any authentication; real answers (401s included) get
`Access-Control-Allow-Origin`, `Vary: Origin` and the exposed MCP headers.

What a browser may call, by path (Fetch standard, "CORS protocol"):

- MCP endpoints, registration (RFC 7591/7592), token and revocation (RFC 7009): only from
  the configured origins. None of them relies on cookies (bearer tokens, client
  credentials, PKCE), so credentials mode stays off: a page can never ride a signed-in
  person's session through CORS.
- Discovery documents (`/.well-known/…`, RFC 8414 / RFC 9728): from any origin. They are
  public, the same for everyone and carry no credentials; any page can already read them
  through a server of its own, so refusing them protects nothing and would only make
  browser clients fail earlier with a less clear error.
- Everything else (pages, `/oauth/authorize`, introspection, admin, ops): no CORS at all.
  Pages are navigated to, not fetched; introspection is for confidential (server-side)
  clients.

The middleware is the only source of CORS headers: any `Access-Control-*` header the app
itself sets (DOT adds `*` to its discovery views, and oauthlib an application's
`allowed_origins` to token answers) is dropped first, so no second policy leaks through.

A disallowed origin gets no `Access-Control-Allow-Origin` (its preflight is a 400 from the
middleware), and the MCP Origin gate still refuses its requests (403).
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_bridge.edge.origins import normalize_origin

# Request headers a browser-hosted MCP client sends (MCP Streamable HTTP transport,
# 2025-03-26 to 2026-07-28, plus RFC 6750's Authorization). Content-Type and Accept are
# CORS-safelisted names, but a JSON Content-Type still needs to be allowed explicitly.
ALLOWED_HEADERS = (
    "Authorization",
    "Content-Type",
    "Mcp-Session-Id",
    "MCP-Protocol-Version",
    "Mcp-Method",
    "Mcp-Name",
    "Last-Event-ID",
)
# Response headers a page's script may read besides the CORS-safelisted ones: the session
# and version of the transport, and the RFC 6750 / RFC 9728 challenge of a 401 or 403.
EXPOSED_HEADERS = ("Mcp-Session-Id", "MCP-Protocol-Version", "WWW-Authenticate")
CLIENT_METHODS = ("GET", "POST", "PUT", "DELETE")  # PUT/DELETE: RFC 7592 client management
MAX_AGE_SECONDS = 600

# The MCP endpoints ("/open" is the Open server's, see DESIGN.md) and the OAuth endpoints
# a public client calls from a page.
CLIENT_PATHS = frozenset({"/", "/open", "/oauth/token", "/oauth/revoke", "/oauth/register"})
CLIENT_PATH_PREFIXES = ("/oauth/register/",)
DISCOVERY_PREFIX = "/.well-known/"


def normalized_origins(origins: Iterable[str]) -> list[str]:
    """The well-formed ones of `origins`, normalized, without duplicates, in order."""
    return list(dict.fromkeys(o for o in (normalize_origin(x) for x in origins) if o))


def _without_app_cors_headers(app: ASGIApp) -> ASGIApp:
    """`app`, minus any `Access-Control-*` response header it sets itself."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_stripped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    (name, value)
                    for name, value in message.get("headers", ())
                    if not name.lower().startswith(b"access-control-")
                ]
            await send(message)

        await app(scope, receive, send_stripped)

    return wrapped


class GatewayCORS:
    """Routes each request through the CORS policy of its path (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, allowed_origins: Iterable[str]):
        app = _without_app_cors_headers(app)
        self.app = app
        self.allowed_origins = normalized_origins(allowed_origins)
        common = {"allow_headers": ALLOWED_HEADERS, "expose_headers": EXPOSED_HEADERS, "max_age": MAX_AGE_SECONDS}
        self.clients = CORSMiddleware(app, allow_origins=self.allowed_origins, allow_methods=CLIENT_METHODS, **common)
        self.discovery = CORSMiddleware(app, allow_origins=["*"], allow_methods=("GET",), **common)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path in CLIENT_PATHS or path.startswith(CLIENT_PATH_PREFIXES):
            await self.clients(scope, receive, send)
        elif path.startswith(DISCOVERY_PREFIX):
            await self.discovery(scope, receive, send)
        else:
            await self.app(scope, receive, send)
