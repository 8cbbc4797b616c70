"""Rendering Core API answers as tool results: a page of objects, one object, money.

Upstream data is validated against the tool's output model (`parse`): a mismatch is an
`upstream_error` failure, never a crash. Amounts are integers in minor units with an
ISO 4217 currency code (docs/CORE_API.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from mcp_types import CallToolResult
from pydantic import BaseModel

from mcp_bridge.core.client import CoreAPIResponse
from mcp_bridge.runtime.failures import parse_answer
from mcp_bridge.runtime.results import structured_result
from mcp_bridge.runtime.schemas import Page
from mcp_bridge.runtime.values import money

M = TypeVar("M", bound=BaseModel)

__all__ = ["money", "object_result", "page_result", "parse", "structured_result"]


def parse(model: type[M], data: Any, response: CoreAPIResponse | None = None) -> M:
    """Validate Core API data as `model` (`runtime.failures.parse_answer`): a mismatch is an
    upstream error, not a crash; given the `response` of a write, it says the write was applied."""
    return parse_answer(model, data, "Core API", response)


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
    return structured_result(structured, summary)


def object_result(response: CoreAPIResponse, model: type[M], summary: str | Callable[[M], str]) -> CallToolResult:
    """A single-object response as `model`; `summary` is its text (or makes it from the object)."""
    obj = parse(model, response.data, response)
    return structured_result(obj, summary(obj) if callable(summary) else summary)
