"""The MCP endpoint as an ASGI app, for the router in `pelcro_gateway/asgi.py`.

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
from mcp_bridge.servers import WRITE_TOOLS, build_server
from mcp_bridge.upstream.redis_clients import close_redis_for_loop


def resource_metadata_url() -> str:
    """This server's RFC 9728 metadata document (the resource is the origin's root)."""
    return settings.PUBLIC_URL + "/.well-known/oauth-protected-resource"


def create_mcp_app() -> tuple[ASGIApp, Callable[[], AbstractAsyncContextManager[None]]]:
    """(the MCP ASGI app, the lifespan that runs its session manager)."""
    server = build_server()
    transport = server.streamable_http_app(
        streamable_http_path="/",
        stateless_http=True,
        json_response=True,
        # Host and Origin are checked by OriginGate from Django's settings; the SDK still
        # checks Content-Type.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    scopes = " ".join(settings.OAUTH2_PROVIDER["SCOPES"])
    metadata_url = resource_metadata_url()
    app: ASGIApp = WriteScopeGate(
        transport, write_tools=WRITE_TOOLS, resource_metadata_url=metadata_url, scopes=scopes
    )
    app = EnvelopeGate(app)
    app = PostOnlyGate(app)
    app = BearerGate(
        app,
        # The token cache trusts itself only while the database answers (orm.database_health).
        verifier=PrincipalTokenVerifier(settings.MCP_RESOURCE_URL, database=database_health),
        resource_metadata_url=metadata_url,
        scopes=scopes,
    )
    app = OriginGate(
        app,
        allowed_hosts=settings.ALLOWED_HOSTS,
        allowed_origins=[settings.PUBLIC_URL, *settings.PELCRO_GATEWAY["MCP_ALLOWED_ORIGINS"]],
    )

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        async with server.session_manager.run():
            yield
        await audit.flush_backlog()  # audit rows kept through a database outage
        await close_redis_for_loop()

    return RequestConnections(app), lifespan
