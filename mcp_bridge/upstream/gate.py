"""The gate every upstream request passes first: the shared per-account rate limiter.

`RequestGate` is what an upstream client asks before each request (`limiter.RedisRateGate`
in production); `OpenGate` lets everything through, for tests of a client alone. A client
cannot be built without a gate (`http.UpstreamClient`). A request may also count against
`Budget`s inside its account's limit (the Open API's per-site and per-subscriber ones).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Budget:
    """A share of an account's limit for one group of its requests: at most `cap` of them
    per window (the account's window), on top of the account's own limit. `name` keys it
    within the account (e.g. "open-site:14"); `label` names it in a refusal ("this
    subscriber")."""

    name: str
    cap: int
    label: str


class RequestGate(Protocol):
    """What the client asks before every upstream request (the shared rate limiter)."""

    async def acquire(
        self, account_id: int, *, limit: int | None = None, background: bool = False, budgets: Sequence[Budget] = ()
    ) -> None:
        """Return when one request may start now; raise RateLimited if it may not. `limit`
        is the account's own requests per window (None: the configured default); the
        request must also fit every one of `budgets`."""

    async def finished(self, account_id: int, seconds: float) -> None:
        """The request granted by the last `acquire` in this task is over (answered or failed)."""

    async def upstream_rate_limited(self, account_id: int, retry_after: float) -> None:
        """The upstream answered 429 anyway: pause every process for this account."""


class OpenGate:
    """A gate that lets everything through (tests of a client alone)."""

    async def acquire(
        self, account_id: int, *, limit: int | None = None, background: bool = False, budgets: Sequence[Budget] = ()
    ) -> None:
        return None

    async def finished(self, account_id: int, seconds: float) -> None:
        return None

    async def upstream_rate_limited(self, account_id: int, retry_after: float) -> None:
        return None
