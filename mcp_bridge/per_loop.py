"""One object per running event loop.

Sockets, asyncio connections and httpx pools belong to the event loop they were made in,
and a process runs several loops over its life (the server's, each Celery task's
`asyncio.run`, each test's). The Core API client, the limiter's Redis client and the audit
writer are therefore kept per loop, and forgotten with it.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerLoop(Generic[T]):
    """`get()` returns the running loop's object, made by `factory()` on first use."""

    def __init__(self, factory: Callable[[], T]):
        self._factory = factory
        self._objects: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = weakref.WeakKeyDictionary()

    def get(self) -> T:
        loop = asyncio.get_running_loop()
        obj = self._objects.get(loop)
        if obj is None:
            obj = self._objects[loop] = self._factory()
        return obj

    def pop(self) -> T | None:
        """Forget the running loop's object (None if it had none); closing it is the caller's."""
        return self._objects.pop(asyncio.get_running_loop(), None)
