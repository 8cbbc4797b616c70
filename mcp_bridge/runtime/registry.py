"""Declaring tools: one `@tool(...)` per handler, with all four annotations mandatory.

A handler's docstring is its description (what an assistant reads to act correctly).
`ToolDef.sdk_tool()` turns a declaration into the SDK's `Tool` objects: the input model is
the argument model the SDK validates against, and the output schema admits either the
typed result or a `ToolFailure` (some clients validate `structuredContent` even on
`isError` results, so a failure must match the published schema too). Both schemas are
published self-contained and compact (`runtime.json_schema`).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata
from mcp_types import CallToolResult, ToolAnnotations
from pydantic import BaseModel

from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.json_schema import tool_input_schema, tool_output_schema
from mcp_bridge.runtime.results import ToolFailed
from mcp_bridge.runtime.schemas import ToolFailure, ToolInput

# A handler: `async def handler(call: CallContext, args: <its input model>) -> CallToolResult`.
Handler = Callable[[CallContext, Any], Awaitable[CallToolResult]]


@dataclass(frozen=True)
class ToolDef:
    name: str
    title: str
    description: str
    input_model: type[ToolInput]
    output_model: type[BaseModel]
    handler: Handler
    read_only: bool
    destructive: bool
    idempotent: bool
    open_world: bool

    @property
    def annotations(self) -> ToolAnnotations:
        return ToolAnnotations(
            title=self.title,
            read_only_hint=self.read_only,
            destructive_hint=self.destructive,
            idempotent_hint=self.idempotent,
            open_world_hint=self.open_world,
        )

    def input_schema(self) -> dict[str, Any]:
        """The published `inputSchema`: self-contained, optional arguments plain."""
        return tool_input_schema(self.input_model.model_json_schema(by_alias=True))

    def output_schema(self) -> dict[str, Any]:
        """The published `outputSchema`: one object admitting the typed result or a
        `ToolFailure` (the `structuredContent` of an `isError` result)."""
        return tool_output_schema(
            [
                self.output_model.model_json_schema(mode="serialization"),
                ToolFailure.model_json_schema(mode="serialization"),
            ],
            description="The result; when isError is true, a failure instead: error, message and the "
            "optional upstream_status, fields, retry_after, may_have_been_applied.",
        )

    def sdk_tool(self) -> Tool:
        """This tool as the SDK's `Tool` (validated arguments arrive as keyword arguments)."""
        model = self.input_model
        handler = self.handler

        # The SDK hands the `context` argument of `MCPServer.call_tool` to the tool as
        # `context_kwarg`; `runtime.server` passes the call's `CallContext` there.
        async def run(call: CallContext, **arguments: Any) -> CallToolResult:
            return await run_handler(handler, call, model.model_construct(**arguments))

        return Tool(
            fn=run,
            name=self.name,
            title=self.title,
            description=self.description,
            parameters=self.input_schema(),
            fn_metadata=FuncMetadata(
                arg_model=model, output_model=self.output_model, output_schema=self.output_schema()
            ),
            is_async=True,
            context_kwarg="call",
            annotations=self.annotations,
        )


async def run_handler(handler: Handler, call: CallContext, args: ToolInput) -> CallToolResult:
    """Run a tool handler for `call`: the site is checked first (every tool but those of the
    account itself acts on one site of the caller's account), and a `ToolFailed` becomes
    an `isError` result that marks the call's audit record."""
    record = call.record
    site_id = getattr(args, "site_id", None)  # tools of the account itself take none (get_account)
    record.site_id = site_id
    try:
        if site_id is not None:
            call.require_site(site_id)
        return await handler(call, args)
    except ToolFailed as failed:
        record.fail(failed.failure.message, failed.outcome)
        return failed.result()


REGISTRY: dict[str, ToolDef] = {}


def tool(
    name: str,
    *,
    title: str,
    input: type[ToolInput],
    output: type[BaseModel],
    read_only: bool,
    destructive: bool,
    idempotent: bool,
    open_world: bool,
) -> Callable[[Handler], Handler]:
    """Register a tool handler. Every annotation must be stated: there are no defaults."""

    def register(handler: Handler) -> Handler:
        if name in REGISTRY:
            raise ValueError(f"tool {name} is declared twice")
        if not handler.__doc__:
            raise ValueError(f"tool {name} needs a docstring: it is the description assistants read")
        if read_only and destructive:
            raise ValueError(f"tool {name} cannot be both read-only and destructive")
        REGISTRY[name] = ToolDef(
            name=name,
            title=title,
            description=inspect.cleandoc(handler.__doc__),
            input_model=input,
            output_model=output,
            handler=handler,
            read_only=read_only,
            destructive=destructive,
            idempotent=idempotent,
            open_world=open_world,
        )
        return handler

    return register
