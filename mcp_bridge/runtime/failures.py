"""Upstream failures as the assistant is told them: each `upstream.errors` class maps to
one `ToolFailure.error` kind, with a message saying what happened and what to do.

`what` names the object the call was about ("customer 12") and `site_id` the site.
`parse_answer` is the failure of an answer that does not have the shape the tool expects.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from mcp_bridge.models import ToolCall
from mcp_bridge.runtime.results import ToolFailed
from mcp_bridge.runtime.schemas import ToolFailure
from mcp_bridge.upstream.errors import (
    BusinessRuleError,
    Forbidden,
    NotFound,
    RateLimited,
    RateLimiterUnavailable,
    Unauthorized,
    UpstreamError,
    UpstreamUnavailable,
    ValidationFailed,
)

NOTHING_CHANGED = "Nothing was changed; try again in a minute."


def upstream_failure(exc: UpstreamError, what: str, site_id: int, check: str | None = None) -> ToolFailed:
    """The `ToolFailed` for `exc`; `check` (for a write) says how to see whether it was applied."""
    status = exc.status or None
    if isinstance(exc, RateLimited):
        return ToolFailed(
            ToolFailure(error="rate_limited", message=exc.message, upstream_status=status, retry_after=exc.retry_after),
            ToolCall.Outcome.RATE_LIMITED,
        )
    if isinstance(exc, ValidationFailed):
        return ToolFailed(
            ToolFailure(
                error="validation_failed",
                message="The Core API refused the request: fix the fields below and try again.",
                upstream_status=status,
                fields=exc.fields,
            )
        )
    if isinstance(exc, NotFound):
        message = f"{what[:1].upper()}{what[1:]} was not found on site {site_id}."
        return ToolFailed(ToolFailure(error="not_found", message=message, upstream_status=status))
    if isinstance(exc, BusinessRuleError):
        message = f"Refused by the Core API: {exc.message}"
        return ToolFailed(ToolFailure(error="refused", message=message, upstream_status=status))
    if isinstance(exc, Forbidden):
        message = f"The account's API key may not access {what} on site {site_id}: {exc.message}"
        return ToolFailed(ToolFailure(error="forbidden", message=message, upstream_status=status))
    if isinstance(exc, Unauthorized):
        message = "The Core API rejected the account's API key; an account administrator must replace it."
        return ToolFailed(ToolFailure(error="unauthorized", message=message, upstream_status=status))
    if isinstance(exc, UpstreamUnavailable):
        if exc.maybe_processed:
            return ToolFailed(
                ToolFailure(
                    error="upstream_unavailable",
                    message=f"{exc.message} {before_retrying(check)}",
                    upstream_status=status,
                    may_have_been_applied=True,
                )
            )
        # Nothing was sent, or it only read: say so, and what to do (a bare "Core API error
        # 502" tells the assistant neither). The limiter's own message already says both.
        message = exc.message if isinstance(exc, RateLimiterUnavailable) else f"{exc.message}. {NOTHING_CHANGED}"
        return ToolFailed(ToolFailure(error="upstream_unavailable", message=message, upstream_status=status))
    return ToolFailed(ToolFailure(error="upstream_error", message=exc.message, upstream_status=status))


def before_retrying(check: str | None) -> str:
    """The advice that ends the message of a write that may have been applied."""
    return (
        f"Before trying again, {check or 'check the object it changes'}; list_recent_writes shows this "
        "connection's writes and how each ended. (A retry with the same idempotency_key answers this again; "
        "if the write was not applied, retry with a new key.)"
    )


M = TypeVar("M", bound=BaseModel)


class Answer(Protocol):
    """What `parse_answer` reads of an upstream response (the Core and Open clients' both):
    its HTTP status and, for a write made by a tool, how to check whether it was applied."""

    @property
    def status(self) -> int: ...

    @property
    def check(self) -> str | None: ...


def parse_answer(model: type[M], data: Any, api: str, response: Answer | None = None) -> M:
    """`data` answered by `api` ("Core API", "Open API") validated as `model`. A mismatch is
    an `upstream_error` failure, never a crash: given the `response` of a write (it has a
    `check`), the message says the write was most likely applied and how to check before
    trying again (`may_have_been_applied`); otherwise that the request may have succeeded."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        message = (
            f"The {api} answered with an unexpected {model.__name__.lower()} shape ({exc.error_count()} problem(s))"
        )
        if response is not None and response.check:
            raise ToolFailed(
                ToolFailure(
                    error="upstream_error",
                    may_have_been_applied=True,
                    message=f"{message}; it answered {response.status}, so the change was most likely applied. "
                    f"{before_retrying(response.check)}",
                )
            ) from None
        raise ToolFailed(
            ToolFailure(error="upstream_error", message=f"{message}; the request itself may have succeeded.")
        ) from None
