"""The HTTP client base every upstream client builds on (the Core API and Open API clients).

One `httpx.AsyncClient` (one connection pool) per client; build one per event loop
(`mcp_bridge.per_loop.PerLoop`), since httpx pools are loop-bound. Every attempt passes
the client's `RequestGate` first (the shared per-account rate limiter), so nothing can
reach the upstream around it, and the gate hears when the attempt is over.

Retries (RFC 9110 §9.2.2 lets a client retry automatically only requests it knows to be
idempotent; we are stricter and never repeat a write that may have reached the upstream):

- a read (GET, HEAD, OPTIONS) is retried after a timeout, a broken connection or a 5xx;
- a write (POST, PUT, PATCH, DELETE) is retried only when it provably never reached the
  upstream: the connection could not be opened (refused, connect timeout, no pooled
  connection free) or the upstream answered 429, which means "not processed" (RFC 6585
  §4), with a short Retry-After. After a read or write timeout, a connection broken after
  sending, a 5xx, or an answer that cannot be read, it is never sent again and the error
  says the change may have been applied (`UpstreamUnavailable.maybe_processed`). PUT is
  no exception: a replayed finalizing PUT is refused ("only a draft can be finalized")
  although the first one did it, and a replay can undo a change made in between.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

import anyio
import httpx

from mcp_bridge import metrics
from mcp_bridge.upstream.errors import RateLimited, UpstreamUnavailable
from mcp_bridge.upstream.gate import Budget, RequestGate

logger = logging.getLogger(__name__)

# Methods whose replay cannot change anything upstream. Every other method is a write and
# is sent again only when the first attempt provably never reached the upstream. PUT and
# DELETE are idempotent in HTTP terms, yet their replay after an unseen success misleads:
# a finalizing PUT answers "only a draft can be finalized", a DELETE answers 404.
REPLAYABLE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class UpstreamClient:
    """An HTTP client for one upstream: one connection pool, every attempt through `gate`.

    Retries happen only where a retry cannot repeat a write that may already have been
    processed (module docstring, `REPLAYABLE_METHODS`); answers of 429 and 5xx and transport failures
    become `errors.RateLimited` / `errors.UpstreamUnavailable`. Subclasses turn a
    response into their result in `parse` (the upstream's envelope and error shapes) and
    name the upstream in messages with `name`.
    """

    name = "upstream"

    def __init__(
        self,
        base_url: str,
        *,
        gate: RequestGate,
        timeout: float = 10.0,
        connect_timeout: float = 3.0,
        max_retries: int = 2,
        backoff_base: float = 0.2,
        backoff_max: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        if gate is None:
            raise TypeError("an upstream client needs a rate gate (limiter.RedisRateGate, or gate.OpenGate in tests)")
        self.gate: RequestGate = gate
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            headers={"Accept": "application/json", "User-Agent": "pelcro-mcp-gateway"},
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(
        self,
        method: str,
        path: str,
        *,
        account_id: int,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        background: bool = False,
        rate_limit: int | None = None,
        budgets: tuple[Budget, ...] = (),
    ) -> Any:
        """Make one request for `account_id` (whose limit it counts against), with retries
        where they are safe; returns `parse(response)`. `background` requests use the
        account's background share of the limit (Celery exports); `rate_limit` is the
        account's own limit per window (None: the configured default); every attempt also
        counts against `budgets` (`gate.Budget`). Raises an
        `UpstreamError`; an `UpstreamUnavailable` with `maybe_processed=True` means the write
        was sent once and its fate is unknown."""
        method = method.upper()
        is_read = self.replayable(method, path)
        query = {k: v for k, v in (params or {}).items() if v is not None}
        url = self.base_url + path
        headers = headers or {}
        attempt = 0
        while True:
            try:
                response = await self._attempt(
                    method, url, account_id, background, rate_limit, budgets, query, json, headers
                )
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                # No connection was made (or none was free): the request never left this
                # process, so any method may be sent again.
                if attempt < self.max_retries:
                    attempt += 1
                    await asyncio.sleep(self._backoff(attempt))
                    continue
                raise UpstreamUnavailable(f"{self.name} unreachable ({type(exc).__name__})") from None
            except httpx.TransportError as exc:
                # Timed out or broken after the request (or part of it) was sent: a read is
                # tried again; a write may have been applied and is never repeated.
                what = "timed out" if isinstance(exc, httpx.TimeoutException) else "connection failed"
                if is_read and attempt < self.max_retries:
                    attempt += 1
                    await asyncio.sleep(self._backoff(attempt))
                    continue
                if is_read:
                    raise UpstreamUnavailable(f"{self.name} {what} ({type(exc).__name__})") from None
                raise UpstreamUnavailable(
                    self.unsure_message(f"{what} after the request was sent"), maybe_processed=True
                ) from None
            logger.debug("%s %s %s -> %s", self.name.lower(), method, path, response.status_code)

            if response.status_code == 429 and self.is_rate_limit(response, path):
                retry_after = _retry_after(response)
                await self.gate.upstream_rate_limited(account_id, retry_after)
                # A 429 means "not processed" (RFC 6585 §4): any method may be sent again,
                # if the wait is short.
                if attempt < self.max_retries and retry_after <= self.backoff_max:
                    attempt += 1
                    await asyncio.sleep(retry_after + random.uniform(0, self.backoff_base))
                    continue
                raise RateLimited(retry_after, source="upstream")
            if response.status_code >= 500:
                # A 5xx says nothing about what the upstream did before failing.
                if is_read and attempt < self.max_retries:
                    attempt += 1
                    await asyncio.sleep(self._backoff(attempt))
                    continue
                if is_read:
                    raise UpstreamUnavailable(f"{self.name} error {response.status_code}", status=response.status_code)
                raise UpstreamUnavailable(
                    self.unsure_message(f"answered {response.status_code}"),
                    status=response.status_code,
                    maybe_processed=True,
                )
            return self.parse(response, unsure=not is_read)

    async def _attempt(
        self, method, url, account_id, background, rate_limit, budgets, query, json, headers
    ) -> httpx.Response:
        """One upstream request. It passes the gate first (every attempt is a request the
        upstream counts), and the gate hears when it is over, however it ended."""
        await self.gate.acquire(account_id, limit=rate_limit, background=background, budgets=budgets)
        started = time.perf_counter()
        status = 0
        try:
            response = await self._http.request(method, url, params=query, json=json, headers=headers)
            status = response.status_code
            return response
        finally:
            elapsed = time.perf_counter() - started
            metrics.observe_upstream(method, status, elapsed)
            # Shielded: a cancelled caller must still release its slot promptly.
            with anyio.CancelScope(shield=True):
                await self.gate.finished(account_id, elapsed)

    def replayable(self, method: str, path: str) -> bool:
        """Whether a request only reads, so it may be sent again after a timeout or a 5xx
        and its failure never says a change may have been applied: `REPLAYABLE_METHODS`; a
        subclass adds the upstream's reads that use another method (the Open API's POSTs
        that read)."""
        return method in REPLAYABLE_METHODS

    def is_rate_limit(self, response: httpx.Response, path: str) -> bool:
        """Whether a 429 is the upstream's rate limit (it slows the whole account down and
        may be retried). A subclass answers False for a 429 that means something else, such
        as the Open API's login lock-out of one customer; `parse` then gets it."""
        return True

    def parse(self, response: httpx.Response, *, unsure: bool) -> Any:
        """The result of a final (not 429, not 5xx) response; raises the matching error.
        `unsure`: the request was a write, so an answer that cannot be read must say the
        change may have been applied (`UpstreamUnavailable.maybe_processed`)."""
        raise NotImplementedError

    def read_body(self, response: httpx.Response, *, unsure: bool) -> Any:
        """The JSON body of `response`, None for a 204. A 2xx body must be Pelcro's
        `{"data": ...}` envelope (docs/CORE_API.md §3, docs/OPEN_API.md §3). An answer that
        cannot be read raises `UpstreamUnavailable`; with `unsure` (the request was a write)
        it says the change may have been applied, since a 2xx means it was made and for other
        statuses nobody can tell."""
        status = response.status_code
        if status == 204:
            return None
        try:
            body = response.json()
        except ValueError:
            raise self._unreadable(status, "with a body that is not JSON", unsure and status < 400) from None
        if status < 400 and (not isinstance(body, dict) or "data" not in body):
            raise self._unreadable(status, "without a data envelope", unsure)
        return body

    def _unreadable(self, status: int, what: str, unsure: bool) -> UpstreamUnavailable:
        if unsure:
            return UpstreamUnavailable(self.unsure_message(f"answered {status} {what}"), status, True)
        return UpstreamUnavailable(f"{self.name} answered {status} {what}", status)

    def unsure_message(self, what: str) -> str:
        """The message of a write whose fate is unknown, e.g. `unsure_message("answered 502")`."""
        return f"{self.name} {what}; the change may or may not have been applied (it was not sent again)."

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter."""
        return random.uniform(0, min(self.backoff_max, self.backoff_base * 2**attempt))


def _retry_after(response: httpx.Response) -> float:
    raw = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(raw))
    except ValueError:
        return 1.0
