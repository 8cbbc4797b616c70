"""What a tool call answers: typed results and failures, as the SDK's `CallToolResult`.

A handler returns `structured_result(...)` (or a builder of `core.results` over it) or
raises `ToolFailed(ToolFailure(...))`, which the registry turns into an `isError` result
whose `structuredContent` matches the tool's published output schema (`ToolFailure` is
one arm of it) and marks the call's audit record.
"""

from __future__ import annotations

import json

from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel

from mcp_bridge.models import ToolCall
from mcp_bridge.runtime.schemas import ToolFailure


class ToolFailed(Exception):
    """A call that cannot succeed; carries what the assistant is told."""

    def __init__(self, failure: ToolFailure, outcome: str = ToolCall.Outcome.ERROR):
        super().__init__(failure.message)
        self.failure = failure
        self.outcome = outcome

    def result(self) -> CallToolResult:
        return failure_result(self.failure)


def failure_result(failure: ToolFailure) -> CallToolResult:
    """`failure` as an `isError` result: its message (and each bad field) as text."""
    text = failure.message
    if failure.fields:
        text += "\n" + "\n".join(f"- {name}: {' '.join(msgs)}" for name, msgs in failure.fields.items())
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=failure.model_dump(mode="json", exclude_none=True),
        is_error=True,
    )


def structured_result(structured: BaseModel, summary: str) -> CallToolResult:
    """`structured` as the result, with `summary` as its first text block."""
    data = structured.model_dump(mode="json")
    # The JSON text block is for clients that predate structuredContent (2025-03-26).
    return CallToolResult(
        content=[
            TextContent(type="text", text=summary),
            TextContent(type="text", text=json.dumps(data, separators=(",", ":"), ensure_ascii=False)),
        ],
        structured_content=data,
    )
