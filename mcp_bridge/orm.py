"""Running Django ORM work from the async MCP path.

The MCP app is served outside Django's request cycle, so nothing opens and closes DB
connections for it. `run_db` does what Django does around a request: drop connections
that are broken or past `CONN_MAX_AGE` before and after the work.
"""

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections

P = ParamSpec("P")
R = TypeVar("R")


def _with_fresh_connection(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    close_old_connections()
    try:
        return fn(*args, **kwargs)
    finally:
        close_old_connections()


async def run_db(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run a synchronous ORM function in Django's sync thread and return its result."""
    return await sync_to_async(_with_fresh_connection)(fn, *args, **kwargs)
