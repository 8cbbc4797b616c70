"""Running Django ORM work from the async MCP path.

The MCP app is served outside Django's request cycle, so nothing opens and closes DB
connections for it. All its ORM work runs in asgiref's one sync thread (`sync_to_async`,
thread-sensitive, outside any Django request), so that thread can keep its connection open
across requests: opening a PostgreSQL connection per request costs more than the rest of
the request's database work. `RequestConnections` marks an MCP request; the first ORM call
of a request first drops a connection that is broken, idle too long to trust, or older
than `KEEP_SECONDS` (SQLite: any, so each request sees the database file as it is now).
Outside such a request (Celery, tests), `run_db` opens and closes around each call.

`database_health` (a `DatabaseHealth`) says whether the last database call of this process
found the database unreachable; `run_db` and the audit writer report into it. It is handed
to the token cache (`mcp_bridge.edge.credential_cache`), which then stops trusting itself
and asks the database again, so an outage turns into clear 503s.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import InterfaceError, OperationalError, close_old_connections, connections
from starlette.types import ASGIApp, Receive, Scope, Send

P = ParamSpec("P")
R = TypeVar("R")

KEEP_SECONDS = 300.0  # a kept connection is replaced after this long (as CONN_MAX_AGE would)
IDLE_CHECK_SECONDS = 5.0  # a connection idle this long is pinged before it is used again


class _RequestState:
    __slots__ = ("recycled",)

    def __init__(self) -> None:
        self.recycled = False


_request: contextvars.ContextVar[_RequestState | None] = contextvars.ContextVar("mcp_db_request", default=None)


class DatabaseHealth:
    """What the last database call found: `suspect` is True after it found the database
    unreachable (connection refused, dropped, pool exhausted), False after one succeeded."""

    __slots__ = ("suspect",)

    def __init__(self) -> None:
        self.suspect = False

    def note(self, reachable: bool) -> None:
        """Record what a database call found."""
        self.suspect = not reachable


# This process's: `run_db` and the audit writer's own connection report into it.
database_health = DatabaseHealth()


def _kept_connections() -> None:
    """Before a request's first query: keep a healthy connection, drop any other."""
    now = time.monotonic()
    for conn in connections.all(initialized_only=True):
        if conn.connection is None or conn.vendor == "sqlite":
            continue
        state = conn.__dict__.setdefault("_mcp_kept", {"raw": None, "used": now})
        if state["raw"] is not conn.connection:
            # Opened since the last look: Django set it to close at once (CONN_MAX_AGE=0).
            state["raw"] = conn.connection
            conn.close_at = now + KEEP_SECONDS
        elif now - state["used"] > IDLE_CHECK_SECONDS and not conn.errors_occurred:
            conn.errors_occurred = True  # makes close_old_connections ping it first
        state["used"] = now
    close_old_connections()


def _first_in_request(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    _kept_connections()
    return fn(*args, **kwargs)


def _with_fresh_connection(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    close_old_connections()
    try:
        return fn(*args, **kwargs)
    finally:
        close_old_connections()


async def run_db(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run a synchronous ORM function in Django's sync thread and return its result."""
    state = _request.get()
    try:
        if state is None:
            result = await sync_to_async(_with_fresh_connection)(fn, *args, **kwargs)
        elif not state.recycled:
            state.recycled = True
            result = await sync_to_async(_first_in_request)(fn, *args, **kwargs)
        else:
            result = await sync_to_async(fn)(*args, **kwargs)
    except (OperationalError, InterfaceError):  # unreachable, dropped, pool exhausted
        database_health.note(False)
        raise
    database_health.note(True)
    return result


class RequestConnections:
    """ASGI middleware: marks an MCP request, so its ORM calls reuse the kept connection."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = _request.set(_RequestState())
        try:
            await self.app(scope, receive, send)
        finally:
            _request.reset(token)
