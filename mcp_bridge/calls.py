"""The one path every tool call takes to the Core API, and how results are rendered.

Handlers stay thin: parse (the SDK has validated the arguments), call `core_api(...)`,
render with `page_result` / `object_result`. `core_api` checks that the site belongs to
the caller's account (from the verified token's credentials: no query), makes the request
with the account's own API key (the caller's token never travels upstream), and turns
every upstream failure into a `ToolFailed` that becomes an `isError` result. The running
call's audit record is filled in on the way.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel, ValidationError

from mcp_bridge import audit
from mcp_bridge.auth import current_credentials
from mcp_bridge.core_api import (
    BusinessRuleError,
    CoreAPIError,
    CoreAPIResponse,
    Forbidden,
    NotFound,
    RateLimited,
    Unauthorized,
    UpstreamUnavailable,
    ValidationFailed,
    get_client,
)
from mcp_bridge.models import ToolCall
from mcp_bridge.tools.schemas import Page, ToolFailure

M = TypeVar("M", bound=BaseModel)


class ToolFailed(Exception):
    """A call that cannot succeed; carries what the assistant is told."""

    def __init__(self, failure: ToolFailure, outcome: str = ToolCall.Outcome.ERROR):
        super().__init__(failure.message)
        self.failure = failure
        self.outcome = outcome

    def result(self) -> CallToolResult:
        return failure_result(self.failure)


def failure_result(failure: ToolFailure) -> CallToolResult:
    text = failure.message
    if failure.fields:
        text += "\n" + "\n".join(f"- {name}: {' '.join(msgs)}" for name, msgs in failure.fields.items())
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=failure.model_dump(mode="json", exclude_none=True),
        is_error=True,
    )


async def run_handler(handler: Callable[[Any], Awaitable[CallToolResult]], args: Any) -> CallToolResult:
    """Run a tool handler; a `ToolFailed` becomes an `isError` result and marks the record."""
    record = audit.current_record()
    record.site_id = args.site_id
    try:
        return await handler(args)
    except ToolFailed as failed:
        record.fail(failed.failure.message, failed.outcome)
        return failed.result()


# --- The Core API call ---------------------------------------------------------------------


async def core_api(
    method: str,
    path: str,
    site_id: int,
    *,
    what: str,
    params: dict[str, Any] | None = None,
    json_body: dict[str, Any] | None = None,
    check: str | None = None,
) -> CoreAPIResponse:
    """Make one Core API request for the calling account; `what` names the object for errors.

    A write (any method but GET) must say in `check` how the assistant can see whether it
    was applied, as a phrase that follows "Before trying again, " (e.g. "read invoice 7 with
    get_invoice to see whether it was finalized"): a write is never repeated automatically
    once it may have reached the upstream, and the tool error then carries
    `may_have_been_applied: true` with this advice.
    """
    if method != "GET" and not check:
        raise ValueError(f"{method} {path}: a write must say how to check whether it was applied")
    credentials = current_credentials()
    principal = credentials.principal
    record = audit.current_record()
    if site_id not in credentials.sites:
        # One answer for "no such site" and "another account's site": nothing leaks.
        raise ToolFailed(
            ToolFailure(
                error="unknown_site",
                message=f"Site {site_id} is not a site of the connected account ({principal.account_slug}). "
                f"Its sites are: {credentials.site_list()}.",
            )
        )
    api_key = credentials.api_key
    if api_key is None:
        message = "The account has no usable Core API key; an account administrator must set it."
        raise ToolFailed(ToolFailure(error="unauthorized", message=message))
    try:
        response = await get_client().request(
            method, path, account_id=principal.account_id, api_key=api_key, site_id=site_id,
            params=params, json=json_body,
        )
    except CoreAPIError as exc:
        record.upstream_status = exc.status or None
        raise _failure(exc, what, site_id, check) from None
    record.upstream_status = response.status
    return response if check is None else replace(response, check=check)


def _failure(exc: CoreAPIError, what: str, site_id: int, check: str | None) -> ToolFailed:
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
            return ToolFailed(ToolFailure(
                error="upstream_unavailable", message=f"{exc.message} {_before_retrying(check)}",
                upstream_status=status, may_have_been_applied=True,
            ))
        return ToolFailed(ToolFailure(error="upstream_unavailable", message=exc.message, upstream_status=status))
    return ToolFailed(ToolFailure(error="upstream_error", message=exc.message, upstream_status=status))


def _before_retrying(check: str | None) -> str:
    return f"Before trying again, {check or 'check the object it changes'}."


# --- Rendering -------------------------------------------------------------------------------

# ISO 4217 currencies without a minor unit: their amounts are already whole units.
ZERO_DECIMAL = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split())


def money(minor_units: int | None, currency: str | None) -> str:
    """An amount in minor units as people read it, e.g. 1999 usd -> "19.99 USD"."""
    if minor_units is None:
        return "?"
    code = (currency or "").lower()
    amount = f"{minor_units:,}" if code in ZERO_DECIMAL else f"{minor_units / 100:,.2f}"
    return f"{amount} {code.upper()}".strip()


def _result(structured: BaseModel, summary: str) -> CallToolResult:
    data = structured.model_dump(mode="json")
    # The JSON text block is for clients that predate structuredContent (2025-03-26).
    return CallToolResult(
        content=[
            TextContent(type="text", text=summary),
            TextContent(type="text", text=json.dumps(data, separators=(",", ":"), ensure_ascii=False)),
        ],
        structured_content=data,
    )


def parse(model: type[M], data: Any, response: CoreAPIResponse | None = None) -> M:
    """Validate upstream data as `model`; a mismatch is an upstream error, not a crash. Given
    the `response` of a write (it has a `check`), the error says the write was applied."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        message = (f"The Core API answered with an unexpected {model.__name__.lower()} shape "
                   f"({exc.error_count()} problem(s))")
        if response is not None and response.check:
            raise ToolFailed(ToolFailure(
                error="upstream_error", may_have_been_applied=True,
                message=f"{message}; it answered {response.status}, so the change was most likely applied. "
                f"{_before_retrying(response.check)}",
            )) from None
        raise ToolFailed(
            ToolFailure(error="upstream_error", message=f"{message}; the request itself may have succeeded.")
        ) from None


def page_result(response: CoreAPIResponse, model: type[M], noun: str, site_id: int) -> CallToolResult:
    """A list response as a `Page` of `model`, with a one-line summary."""
    meta = response.meta or {}
    items = [parse(model, item) for item in (response.data or [])]
    page = int(meta.get("current_page") or 1)
    last_page = max(1, int(meta.get("last_page") or 1))
    total = int(meta.get("total") if meta.get("total") is not None else len(items))
    per_page = int(meta.get("per_page") or len(items) or 1)
    structured = Page[model](
        items=items, page=page, per_page=per_page, total=total, last_page=last_page, has_more=page < last_page
    )
    plural = noun if total == 1 else noun + "s"
    summary = f"{total} {plural} on site {site_id}; page {page} of {last_page} shows {len(items)}."
    if page < last_page:
        summary += f" More on page {page + 1}."
    return _result(structured, summary)


def object_result(
    response: CoreAPIResponse, model: type[M], summary: str | Callable[[M], str]
) -> CallToolResult:
    """A single-object response as `model`; `summary` is its text (or makes it from the object)."""
    obj = parse(model, response.data, response)
    return _result(obj, summary(obj) if callable(summary) else summary)


def structured_result(structured: BaseModel, summary: str) -> CallToolResult:
    """A result the handler built itself."""
    return _result(structured, summary)
