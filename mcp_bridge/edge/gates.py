"""The ASGI gates in front of the MCP transport, outermost first.

1. `OriginGate`: Host must be one of ALLOWED_HOSTS, and a browser Origin must be this
   deployment or an allowed one (DNS-rebinding and cross-site protection) → 400 / 403.
2. `BearerGate`: a valid access token for this server → else 401 with
   `WWW-Authenticate: Bearer resource_metadata=…, scope=…` (RFC 6750, RFC 9728).
3. `PostOnlyGate`: the stateless transport takes POST only → else 405.
4. `WriteScopeGate`: a read-only token calling a write tool → 403 `insufficient_scope`
   (the MCP scope challenge), with its audit row.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from functools import lru_cache

from django.db import DatabaseError
from django.http.request import split_domain_port, validate_host
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from starlette.authentication import AuthCredentials
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_bridge.edge.auth import PrincipalTokenVerifier
from mcp_bridge.edge.origins import normalize_origin
from mcp_bridge.models import ToolCall
from mcp_bridge.runtime import read_only
from mcp_bridge.runtime.context import PrincipalAccessToken
from mcp_bridge.runtime.server import call_record

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 4 * 1024 * 1024  # the SDK's own limit for a Streamable HTTP body
# JSON-RPC error code (implementation-defined server range) for a call the token's scope
# does not cover; the HTTP status (403) and WWW-Authenticate carry the OAuth error.
INSUFFICIENT_SCOPE = -32003


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


async def _send_json(send: Send, status: int, body: dict, headers: Iterable[tuple[str, str]] = ()) -> None:
    payload = json.dumps(body).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


class OriginGate:
    """Refuses requests whose Host or browser Origin this deployment does not serve."""

    def __init__(self, app: ASGIApp, *, allowed_hosts: list[str], allowed_origins: Iterable[str]):
        self.app = app
        self.allowed_hosts = allowed_hosts
        self.allowed_origins = {o for o in (normalize_origin(x) for x in allowed_origins) if o}
        # Django's parsing and matching cost ~20 µs a request for the same few Host values;
        # the bound keeps junk Host headers from growing it.
        self._host_allowed = lru_cache(maxsize=256)(self._check_host)

    def _check_host(self, host: str) -> bool:
        domain, _port = split_domain_port(host)
        return bool(domain) and validate_host(domain, self.allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self._host_allowed(_header(scope, b"host") or ""):
            await _send_json(send, 400, _jsonrpc_error(-32600, "Host header not allowed for this server"))
            return
        origin = _header(scope, b"origin")
        # No Origin: not a browser (or same-origin navigation); every MCP client is fine.
        # "null" is an opaque origin (sandboxed frame, file://): never trusted.
        if origin is not None and normalize_origin(origin) not in self.allowed_origins:
            logger.warning("refused MCP request from origin %r", origin[:200])
            await _send_json(send, 403, _jsonrpc_error(-32600, "Origin not allowed for this server"))
            return
        await self.app(scope, receive, send)


def _jsonrpc_error(code: int, message: str, request_id=None) -> dict:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


class BearerGate:
    """Requires a valid bearer token and makes its principal the request's context."""

    def __init__(self, app: ASGIApp, *, verifier: PrincipalTokenVerifier, resource_metadata_url: str, scopes: str):
        # AuthContextMiddleware puts the verified token in the SDK's context variable,
        # where `runtime.context.request_token()` (the SDK's `get_access_token()`) finds it.
        self.app = AuthContextMiddleware(app)
        self.verifier = verifier
        self.challenge = f'resource_metadata="{resource_metadata_url}", scope="{scopes}"'

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        authorization = _header(scope, b"authorization") or ""
        scheme, _, raw_token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not raw_token.strip():
            # RFC 6750 §3.1: no error code when the request carried no credentials.
            await self._refuse(send, "Bearer " + self.challenge, "unauthorized", "Authentication required")
            return
        try:
            token = await self.verifier.verify_token(raw_token.strip())
        except DatabaseError:
            logger.exception("token verification failed: database unavailable")
            await _send_json(
                send,
                503,
                {"error": "temporarily_unavailable", "error_description": "Try again shortly"},
                [("retry-after", "5")],
            )
            return
        if token is None:
            description = "The access token is invalid, expired, revoked or not issued for this server"
            challenge = f'Bearer error="invalid_token", error_description="{description}", {self.challenge}'
            await self._refuse(send, challenge, "invalid_token", description)
            return
        scope["user"] = AuthenticatedUser(token)
        scope["auth"] = AuthCredentials(token.scopes)
        await self.app(scope, receive, send)

    async def _refuse(self, send: Send, challenge: str, error: str, description: str) -> None:
        await _send_json(
            send, 401, {"error": error, "error_description": description}, [("www-authenticate", challenge)]
        )


class PostOnlyGate:
    """Answers anything but POST with 405: the transport is stateless, so there is no
    server-to-client stream to open with GET and no session to end with DELETE (a GET
    stream would otherwise stay open, holding a connection, with nothing ever sent on it)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] != "POST":
            message = "This MCP server is stateless: send JSON-RPC messages with POST"
            await _send_json(send, 405, _jsonrpc_error(-32600, message), [("allow", "POST")])
            return
        await self.app(scope, receive, send)


class WriteScopeGate:
    """Answers a read-only token's call of a write tool with 403 `insufficient_scope`.

    Only requests from read-only tokens are read here (their body is buffered and
    replayed); every other request passes straight through.
    """

    def __init__(self, app: ASGIApp, *, write_tools: frozenset[str], resource_metadata_url: str, scopes: str):
        self.app = app
        self.write_tools = write_tools
        self.resource_metadata_url = resource_metadata_url
        self.scopes = scopes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        user = scope.get("user")
        token = user.access_token if isinstance(user, AuthenticatedUser) else None
        if scope["type"] != "http" or scope["method"] != "POST" or not isinstance(token, PrincipalAccessToken):
            await self.app(scope, receive, send)
            return
        if read_only.may_call(token.principal, read_only=False):  # may call write tools too
            await self.app(scope, receive, send)
            return
        body, more = await _read_body(receive)
        if more:
            await _send_json(send, 413, _jsonrpc_error(-32600, "Request body too large"))
            return
        call = _write_tool_call(body, self.write_tools)
        if call is None:
            await self.app(scope, _replay(body, receive), send)
            return
        name, arguments, request_id = call
        message = read_only.denial_message(name)
        record = call_record(token, name, arguments)  # an Open call's row names its site and customer
        record.fail(message, ToolCall.Outcome.DENIED)
        await record.save()
        challenge = (
            f'Bearer error="insufficient_scope", scope="{self.scopes}", '
            f'resource_metadata="{self.resource_metadata_url}", '
            f'error_description="{name} needs the write scope"'
        )
        # A JSON-RPC error body, so MCP clients show the reason rather than a bare 403.
        error = _jsonrpc_error(INSUFFICIENT_SCOPE, message, request_id)
        error["error"]["data"] = {"error": "insufficient_scope", "scope": self.scopes}
        await _send_json(send, 403, error, [("www-authenticate", challenge)])


def _write_tool_call(body: bytes, write_tools: frozenset[str]) -> tuple[str, dict, object] | None:
    """(tool name, arguments, request id) if the body is a tools/call of a write tool, else None."""
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):
        return None  # the transport answers malformed JSON itself
    if not isinstance(message, dict) or message.get("method") != "tools/call":
        return None
    params = message.get("params")
    # A name of any JSON type may arrive; only a string can name a tool (a list is unhashable).
    if not isinstance(params, dict) or not isinstance(params.get("name"), str) or params["name"] not in write_tools:
        return None
    arguments = params.get("arguments")
    request_id = message.get("id")
    if not isinstance(request_id, (str, int)) or isinstance(request_id, bool):
        request_id = None
    return params["name"], arguments if isinstance(arguments, dict) else {}, request_id


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """The request body, and whether it was cut off for exceeding MAX_BODY_BYTES."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return b"", True
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), False


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
