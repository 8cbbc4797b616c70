"""The MCP endpoints as ASGI apps, for the router in `pelcro_gateway/asgi.py`: the Core
server at `/` and the Open server at `/open`, each accepting only its own tokens.

Stateless Streamable HTTP with JSON responses: no session lives in a process, so any
replica answers any request. The SDK serves 2026-07-28 (one self-contained POST) and the
2025 handshake versions (2025-03-26, 2025-06-18, 2025-11-25) from the same app. In front
of it sit the gates (`mcp_bridge.edge`): Host/Origin, bearer token, POST only, the JSON-RPC
envelope (versions, batches), write scope.
"""

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from django.conf import settings
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp

from mcp_bridge import audit
from mcp_bridge.edge.auth import PrincipalTokenVerifier
from mcp_bridge.edge.gates import BearerGate, OriginGate, PostOnlyGate, WriteScopeGate
from mcp_bridge.edge.jsonrpc import EnvelopeGate
from mcp_bridge.orm import RequestConnections, database_health
from mcp_bridge.runtime.server import GatewayMCPServer
from mcp_bridge.servers import OPEN_PATH, OPEN_WRITE_TOOLS, WRITE_TOOLS, build_open_server, build_server
from mcp_bridge.upstream.redis_clients import close_redis_for_loop


def resource_metadata_url() -> str:
    """The Core server's RFC 9728 metadata document (the resource is the origin's root)."""
    return settings.PUBLIC_URL + "/.well-known/oauth-protected-resource"


def open_resource_metadata_url() -> str:
    """The Open server's RFC 9728 metadata document: the path form (RFC 9728 §3.1), the
    well-known prefix inserted before the resource's path `/open`."""
    return settings.PUBLIC_URL + "/.well-known/oauth-protected-resource/open"


def _gated(
    server: GatewayMCPServer, *, path: str, resource: str, metadata_url: str, write_tools: frozenset[str]
) -> ASGIApp:
    """`server`'s stateless Streamable HTTP transport at `path` behind the edge gates, which
    accept only tokens bound to `resource` (RFC 8707) and point a 401 to `metadata_url`."""
    transport = server.streamable_http_app(
        streamable_http_path=path,
        stateless_http=True,
        json_response=True,
        # Host and Origin are checked by OriginGate from Django's settings; the SDK still
        # checks Content-Type.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    scopes = " ".join(settings.OAUTH2_PROVIDER["SCOPES"])
    app: ASGIApp = WriteScopeGate(transport, write_tools=write_tools, resource_metadata_url=metadata_url, scopes=scopes)
    app = EnvelopeGate(app)
    app = PostOnlyGate(app)
    app = BearerGate(
        app,
        # The token cache trusts itself only while the database answers (orm.database_health).
        verifier=PrincipalTokenVerifier(resource, database=database_health),
        resource_metadata_url=metadata_url,
        scopes=scopes,
    )
    return OriginGate(
        app,
        allowed_hosts=settings.ALLOWED_HOSTS,
        allowed_origins=[settings.PUBLIC_URL, *settings.PELCRO_GATEWAY["MCP_ALLOWED_ORIGINS"]],
    )


def create_mcp_apps() -> tuple[dict[str, ASGIApp], Callable[[], AbstractAsyncContextManager[None]]]:
    """({path: MCP ASGI app} for the Core server at `/` and the Open server at `/open`,
    the lifespan that runs their session managers)."""
    core = build_server()
    open_server = build_open_server()
    apps = {
        "/": _gated(
            core,
            path="/",
            resource=settings.MCP_RESOURCE_URL,
            metadata_url=resource_metadata_url(),
            write_tools=WRITE_TOOLS,
        ),
        OPEN_PATH: _gated(
            open_server,
            path=OPEN_PATH,
            resource=settings.OPEN_RESOURCE_URL,
            metadata_url=open_resource_metadata_url(),
            write_tools=OPEN_WRITE_TOOLS,
        ),
    }

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        async with core.session_manager.run(), open_server.session_manager.run():
            yield
        await audit.flush_backlog()  # audit rows kept through a database outage
        await close_redis_for_loop()

    return {path: RequestConnections(app) for path, app in apps.items()}, lifespan
