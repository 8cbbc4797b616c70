"""Async client for the Pelcro Core API (see ../shared/CORE_API.md).

One `httpx.AsyncClient` (one connection pool) per event loop per process. Every request
goes through a `RequestGate` first (the shared per-account rate limiter), so nothing can
reach the upstream around it. Upstream answers become typed errors.

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
import math
import random
import time
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import httpx
from django.conf import settings

from mcp_bridge import metrics
from mcp_bridge.per_loop import PerLoop

logger = logging.getLogger(__name__)

# Methods whose replay cannot change anything upstream. Every other method is a write and
# is sent again only when the first attempt provably never reached the upstream. PUT and
# DELETE are idempotent in HTTP terms, yet their replay after an unseen success misleads:
# a finalizing PUT answers "only a draft can be finalized", a DELETE answers 404.
REPLAYABLE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


# --- Errors ------------------------------------------------------------------------------


class CoreAPIError(Exception):
    """Base of every Core API failure. `status` is the upstream HTTP status (0 if none)."""

    status: int = 0

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.__dict__.setdefault("_init", ((message,), {"status": status}))

    def __reduce__(self):
        # Keyword-only arguments do not survive default exception pickling; Celery
        # ships these errors between processes.
        args, kwargs = self._init
        return (_rebuild_error, (type(self), args, kwargs))


def _rebuild_error(cls, args, kwargs):
    return cls(*args, **kwargs)


class ValidationFailed(CoreAPIError):
    """400/422 with field-by-field messages: `fields = {"email": ["is required"]}`."""

    status = 400

    def __init__(self, fields: dict[str, list[str]], *, status: int = 400):
        self.fields = fields
        self.__dict__.setdefault("_init", ((fields,), {"status": status}))
        summary = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in fields.items())
        super().__init__(f"Validation failed: {summary}", status=status)


class BusinessRuleError(CoreAPIError):
    """400 for a request that is well-formed but not allowed now (e.g. voiding a paid invoice)."""

    status = 400


class Unauthorized(CoreAPIError):
    status = 401


class Forbidden(CoreAPIError):
    status = 403


class NotFound(CoreAPIError):
    status = 404


class RateLimited(CoreAPIError):
    """No request was sent (gateway limiter) or the upstream refused it unprocessed (429)."""

    status = 429

    def __init__(self, retry_after: float, *, source: str = "gateway"):
        self.__dict__.setdefault("_init", ((retry_after,), {"source": source}))
        self.retry_after = max(1, math.ceil(retry_after))
        self.source = source
        super().__init__(f"rate limit for this account reached, retry in {self.retry_after} s")


class UpstreamUnavailable(CoreAPIError):
    """The Core API could not be reached or failed (5xx, timeout, connection error).

    `maybe_processed` is True when a write was sent and its fate is unknown: it is not
    retried automatically, and the caller must check before trying again.
    """

    def __init__(self, message: str, *, status: int = 0, maybe_processed: bool = False):
        self.__dict__.setdefault("_init", ((message,), {"status": status, "maybe_processed": maybe_processed}))
        super().__init__(message, status=status)
        self.maybe_processed = maybe_processed


# --- The rate-limiter hook ---------------------------------------------------------------


class RequestGate(Protocol):
    """What the client asks before every upstream request (the shared rate limiter)."""

    async def acquire(self, account_id: int, *, background: bool = False) -> None:
        """Return when one request may start now; raise RateLimited if it may not."""

    async def finished(self, account_id: int, seconds: float) -> None:
        """The request granted by the last `acquire` in this task is over (answered or failed)."""

    async def upstream_rate_limited(self, account_id: int, retry_after: float) -> None:
        """The upstream answered 429 anyway: pause every process for this account."""


class OpenGate:
    """A gate that lets everything through (tests of the client alone, the sandbox CLI)."""

    async def acquire(self, account_id: int, *, background: bool = False) -> None:
        return None

    async def finished(self, account_id: int, seconds: float) -> None:
        return None

    async def upstream_rate_limited(self, account_id: int, retry_after: float) -> None:
        return None


# --- The client ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CoreAPIResponse:
    status: int
    data: Any
    meta: dict[str, Any] | None = None
    links: dict[str, Any] | None = None
    # For the answer to a write made by a tool: how to see whether it was applied (set by
    # `mcp_bridge.calls.core_api`), so an unreadable answer can say what to look at.
    check: str | None = None


class CoreAPIClient:
    def __init__(
        self,
        base_url: str,
        *,
        gate: RequestGate | None = None,
        timeout: float = 10.0,
        connect_timeout: float = 3.0,
        max_retries: int = 2,
        backoff_base: float = 0.2,
        backoff_max: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.gate: RequestGate = gate or OpenGate()
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

    async def request(
        self,
        method: str,
        path: str,
        *,
        account_id: int,
        api_key: str,
        site_id: int,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        background: bool = False,
    ) -> CoreAPIResponse:
        """Make one Core API call for `account_id`, with retries where they are safe (see
        the module docstring). Raises a `CoreAPIError`; an `UpstreamUnavailable` with
        `maybe_processed=True` means the write was sent once and its fate is unknown."""
        method = method.upper()
        is_read = method in REPLAYABLE_METHODS
        query = {"site_id": site_id, **{k: v for k, v in (params or {}).items() if v is not None}}
        headers = {"Authorization": f"Bearer {api_key}"}
        url = self.base_url + path
        attempt = 0
        while True:
            try:
                response = await self._attempt(method, url, account_id, background, query, json, headers)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                # No connection was made (or none was free): the request never left this
                # process, so any method may be sent again.
                if attempt < self.max_retries:
                    attempt += 1
                    await asyncio.sleep(self._backoff(attempt))
                    continue
                raise UpstreamUnavailable(f"Core API unreachable ({type(exc).__name__})") from None
            except httpx.TransportError as exc:
                # Timed out or broken after the request (or part of it) was sent: a read is
                # tried again; a write may have been applied and is never repeated.
                what = "timed out" if isinstance(exc, httpx.TimeoutException) else "connection failed"
                if is_read and attempt < self.max_retries:
                    attempt += 1
                    await asyncio.sleep(self._backoff(attempt))
                    continue
                if is_read:
                    raise UpstreamUnavailable(f"Core API {what} ({type(exc).__name__})") from None
                raise UpstreamUnavailable(_unsure_message(f"{what} after the request was sent"),
                                          maybe_processed=True) from None
            logger.debug("core api %s %s -> %s", method, path, response.status_code)

            if response.status_code == 429:
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
                    raise UpstreamUnavailable(f"Core API error {response.status_code}", status=response.status_code)
                raise UpstreamUnavailable(
                    _unsure_message(f"answered {response.status_code}"), status=response.status_code,
                    maybe_processed=True,
                )
            return _parse(response, unsure=not is_read)

    async def _attempt(self, method, url, account_id, background, query, json, headers) -> httpx.Response:
        """One upstream request. It passes the gate first (every attempt is a request the
        upstream counts), and the gate hears when it is over, however it ended."""
        await self.gate.acquire(account_id, background=background)
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

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter."""
        return random.uniform(0, min(self.backoff_max, self.backoff_base * 2**attempt))


def _unsure_message(what: str) -> str:
    return (
        f"Core API {what}; the change may or may not have been applied (it was not sent again)."
    )


def _retry_after(response: httpx.Response) -> float:
    raw = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(raw))
    except ValueError:
        return 1.0


def _json(response: httpx.Response, unsure: bool) -> Any:
    try:
        return response.json()
    except ValueError:
        raise _unreadable(response, "with a body that is not JSON", unsure) from None


def _unreadable(response: httpx.Response, what: str, unsure: bool) -> UpstreamUnavailable:
    """An answer the client cannot read. For a write answered 2xx the change was made; for
    any other write nobody can tell: either way the caller must look before retrying."""
    status = response.status_code
    if unsure:
        return UpstreamUnavailable(_unsure_message(f"answered {status} {what}"), status=status, maybe_processed=True)
    return UpstreamUnavailable(f"Core API answered {status} {what}", status=status)


def _error_message(body: Any, default: str) -> str:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
        if isinstance(body.get("message"), str):
            return body["message"]
    return default


def _parse(response: httpx.Response, *, unsure: bool) -> CoreAPIResponse:
    """The answer as data or a typed error. `unsure`: the request was a write, so an answer
    that cannot be read must say the change may have been applied."""
    status = response.status_code
    if status == 204:
        return CoreAPIResponse(status=status, data=None)
    body = _json(response, unsure and status < 400)
    if status < 400:
        if not isinstance(body, dict) or "data" not in body:
            raise _unreadable(response, "without a data envelope", unsure)
        return CoreAPIResponse(status=status, data=body["data"], meta=body.get("meta"), links=body.get("links"))
    if status in (400, 422) and isinstance(body, dict) and isinstance(body.get("errors"), dict):
        fields = {
            str(name): [str(m) for m in (msgs if isinstance(msgs, list) else [msgs])]
            for name, msgs in body["errors"].items()
        }
        raise ValidationFailed(fields, status=status)
    if status in (400, 409, 422):
        raise BusinessRuleError(_error_message(body, "The Core API refused the request"), status=status)
    if status == 401:
        raise Unauthorized("The Core API rejected this account's API key", status=401)
    if status == 403:
        raise Forbidden(_error_message(body, "This account's API key may not access that site or object"))
    if status == 404:
        raise NotFound(_error_message(body, "Not found"))
    raise CoreAPIError(_error_message(body, f"Core API answered {status}"), status=status)


# --- One client per event loop --------------------------------------------------------------


def default_gate() -> RequestGate:
    """The gate every production request passes: the shared Redis limiter."""
    from mcp_bridge.ratelimit import RedisRateGate  # ratelimit imports this module

    return RedisRateGate()


def build_client(gate: RequestGate | None = None) -> CoreAPIClient:
    conf = settings.PELCRO_GATEWAY
    return CoreAPIClient(
        conf["CORE_API_BASE_URL"],
        gate=gate or default_gate(),
        timeout=conf["CORE_API_TIMEOUT"],
        connect_timeout=conf["CORE_API_CONNECT_TIMEOUT"],
        max_retries=conf["CORE_API_MAX_RETRIES"],
        backoff_base=conf["CORE_API_BACKOFF_BASE"],
        backoff_max=conf["CORE_API_BACKOFF_MAX"],
    )


_clients: PerLoop[CoreAPIClient] = PerLoop(build_client)


def get_client() -> CoreAPIClient:
    """This process's client for the running event loop (httpx pools are loop-bound)."""
    return _clients.get()
