"""The ASGI entry point: a small router in front of Django and the MCP app.

- MCP traffic at "/" (the Core server) and "/open" (the Open server) goes to that MCP app;
  a browser's `GET` there (Accept: text/html) goes to Django (the landing page at "/").
- Everything else goes to Django.
- CORS (`pelcro_gateway.cors`) wraps both, so preflights are answered before the MCP
  app's authentication and every answer a browser-hosted client reads carries its grant.
- Lifespan is handled here because Django's ASGI handler has none, and a Starlette app
  mounted inside another app never gets its lifespan run. The MCP session manager (and
  anything else that needs start-up/shut-down) is entered here.
"""

import contextlib
import importlib.util
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pelcro_gateway.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_app = get_asgi_application()

from django.conf import settings  # noqa: E402

from pelcro_gateway.checks import run_startup_checks  # noqa: E402
from pelcro_gateway.cors import GatewayCORS  # noqa: E402


def _wants_html(scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"accept":
            return b"text/html" in value
    return False


class GatewayRouter:
    def __init__(self, django, mcp=None, lifespan=None):
        self.django = django
        self.mcp = mcp or {}  # {exact path: MCP ASGI app}
        self.lifespan = lifespan  # an async context manager factory, or None

    def _mcp_for(self, scope):
        """(the MCP app, the scope it gets) for this request, or None (Django's).

        `/open/` is the Open server as `/open` is: a client configured with the trailing
        slash (copied from a page, typed) would otherwise get Django's 404 instead of the
        401 that starts its sign-in. Its resource is the same: `accounts.resource` takes
        `…/open/` as `…/open` (RFC 8707 names a resource by URI; RFC 3986 §6.2.3 leaves a
        trailing slash to the scheme, and the MCP SDKs compare paths without it)."""
        path = scope["path"]
        app = self.mcp.get(path)
        if app is None and len(path) > 1 and path.endswith("/"):
            canonical = path[:-1]
            if (app := self.mcp.get(canonical)) is not None:
                scope = {**scope, "path": canonical, "raw_path": canonical.encode()}
            else:
                app = None
        if app is None or (scope["method"] in ("GET", "HEAD") and _wants_html(scope)):
            return None
        return app, scope

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http" and (routed := self._mcp_for(scope)) is not None:
            app, scope = routed
            await app(scope, receive, send)
        else:
            await self.django(scope, receive, send)

    async def _lifespan(self, receive, send):
        message = await receive()
        assert message["type"] == "lifespan.startup"
        stack = contextlib.AsyncExitStack()
        try:
            run_startup_checks()
            if self.lifespan is not None:
                await stack.enter_async_context(self.lifespan())
        except BaseException as exc:
            await stack.aclose()
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            return
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        assert message["type"] == "lifespan.shutdown"
        await stack.aclose()
        await send({"type": "lifespan.shutdown.complete"})


def build_application() -> GatewayRouter:
    """Wire Django and (once installed) the MCP app into one ASGI application."""
    if importlib.util.find_spec("mcp_bridge.asgi") is None:  # arrives with the MCP issue
        return GatewayRouter(django_app)
    from mcp_bridge.asgi import create_mcp_apps

    mcp_apps, lifespan = create_mcp_apps()
    return GatewayRouter(django_app, mcp=mcp_apps, lifespan=lifespan)


application = GatewayCORS(
    build_application(), allowed_origins=[settings.PUBLIC_URL, *settings.PELCRO_GATEWAY["MCP_ALLOWED_ORIGINS"]]
)
