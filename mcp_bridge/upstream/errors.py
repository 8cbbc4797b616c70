"""Every failure of an upstream request, the gateway's own limiter's included.

The HTTP clients (`upstream.http`) raise these; the tool runtime turns them into
`isError` results (`runtime.failures`); Celery tasks retry on `RateLimited` and
`RateLimiterUnavailable`. `status` is the upstream HTTP status (0 if there was none).

Each error keeps its constructor's arguments, positionally and in order, in `args`, so
it pickles (Celery ships errors between processes) with no protocol of its own.
"""

from __future__ import annotations

import math
from typing import Any


class UpstreamError(Exception):
    """Base of every upstream failure. `status` is the upstream HTTP status (0 if none)."""

    status: int = 0

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message, status)
        self.message = message
        if status is not None:
            self.status = status

    def __str__(self) -> str:
        return self.message


class ValidationFailed(UpstreamError):
    """400/422 with field-by-field messages: `fields = {"email": ["is required"]}`."""

    status = 400

    def __init__(self, fields: dict[str, list[str]], status: int = 400):
        summary = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in fields.items())
        super().__init__(f"Validation failed: {summary}", status)
        self.fields = fields
        self.args = (fields, status)


class BusinessRuleError(UpstreamError):
    """400 for a request that is well-formed but not allowed now (e.g. voiding a paid invoice)."""

    status = 400


class Unauthorized(UpstreamError):
    status = 401


class Forbidden(UpstreamError):
    status = 403


class NotFound(UpstreamError):
    status = 404


class RateLimited(UpstreamError):
    """No request was sent (gateway limiter) or the upstream refused it unprocessed (429).

    `retry_after` is in whole seconds (at least 1); `source` is "gateway" or "upstream";
    `scope` names the budget that refused (e.g. "this subscriber (20 per 60 s)"), None for
    the account's own limit. `status` is 429 only when the upstream answered 429; a refusal
    by the gateway's own limiter has no upstream status (0), so the audit and the tool's
    answer never show a 429 the upstream did not send.
    """

    def __init__(self, retry_after: float, source: str = "gateway", scope: str | None = None):
        self.retry_after = max(1, math.ceil(retry_after))
        self.source = source
        self.scope = scope
        super().__init__(
            f"rate limit for {scope or 'this account'} reached, retry in {self.retry_after} s",
            429 if source == "upstream" else 0,
        )
        self.args = (retry_after, source, scope)


class UpstreamUnavailable(UpstreamError):
    """The upstream could not be reached or failed (5xx, timeout, connection error).

    `maybe_processed` is True when a write was sent and its fate is unknown: it is not
    retried automatically, and the caller must check before trying again.
    """

    def __init__(self, message: str, status: int = 0, maybe_processed: bool = False):
        super().__init__(message, status)
        self.maybe_processed = maybe_processed
        self.args = (message, status, maybe_processed)


class RateLimiterUnavailable(UpstreamUnavailable):
    """Redis could not be asked, so no upstream request was sent (fail closed)."""

    status = 503

    def __init__(self) -> None:
        super().__init__("rate limiter unavailable (Redis down); no request was sent", 503)
        self.args = ()


def error_message(body: Any, default: str) -> str:
    """The message of an upstream error body: `error.message` (the documented
    `{"error": {"status", "message"}}` shape), else a top-level `message`, else `default`."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
        if isinstance(body.get("message"), str):
            return body["message"]
    return default
