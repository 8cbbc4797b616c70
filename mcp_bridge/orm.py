"""Running Django ORM work from the async MCP path.

The MCP app is served outside Django's request cycle, so nothing opens and closes DB
connections for it. `RequestConnections` does for each MCP HTTP request what Django does
around a request: connections that are broken or past `CONN_MAX_AGE` are closed before and
after it, and the DB work inside (token check, site check, audit row) reuses one
connection. Outside such a request (Celery, tests), `run_db` does the same around each call.
"""

import contextvars
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import anyio
from asgiref.sync import sync_to_async
from django.db import close_old_connections
from starlette.types import ASGIApp, Receive, Scope, Send

P = ParamSpec("P")
R = TypeVar("R")

_in_request = contextvars.ContextVar("mcp_db_request", default=False)


def _with_fresh_connection(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    close_old_connections()
    try:
        return fn(*args, **kwargs)
    finally:
        close_old_connections()


async def run_db(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run a synchronous ORM function in Django's sync thread and return its result."""
    if _in_request.get():
        return await sync_to_async(fn)(*args, **kwargs)
    return await sync_to_async(_with_fresh_connection)(fn, *args, **kwargs)


class RequestConnections:
    """ASGI middleware: one DB connection lifecycle per HTTP request, as in Django."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await sync_to_async(close_old_connections)()
        token = _in_request.set(True)
        try:
            await self.app(scope, receive, send)
        finally:
            _in_request.reset(token)
            with anyio.CancelScope(shield=True):
                await sync_to_async(close_old_connections)()
