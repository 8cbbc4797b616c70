"""The sandbox's Starlette app: the Core API under /api/v1/core (`sandbox/core/`), the Open
API under /api/v1/sdk (`sandbox/open/`), the admin API under /_sandbox, all over one shared
data world (`Sandbox`, `sandbox/store.py`).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse

from sandbox import admin
from sandbox.config import StartupConfig
from sandbox.core import routes as core
from sandbox.open import routes as open_api
from sandbox.runtime import Sandbox


async def _json_404(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"error": {"status": 404, "message": "Not found."}}, 404)


async def _json_405(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"error": {"status": 405, "message": "Method not allowed."}}, 405)


def create_app(config: StartupConfig) -> Starlette:
    """The sandbox app, seeded from `config`."""
    routes = [*core.ROUTES, *open_api.ROUTES, *admin.ROUTES, core.CATCH_ALL, open_api.CATCH_ALL]
    app = Starlette(routes=routes, exception_handlers={404: _json_404, 405: _json_405})
    app.state.sandbox = Sandbox(config)
    return app
