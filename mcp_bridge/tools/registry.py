"""Declaring tools: one `@tool(...)` per handler, with all four annotations mandatory.

A handler's docstring is its description (what an assistant reads to act correctly).
`sdk_tools()` turns the declarations into the SDK's `Tool` objects: the input model is
the argument schema the SDK validates against, and the output schema admits either the
typed result or a `ToolFailure` (some clients validate `structuredContent` even on
`isError` results, so a failure must match the published schema too).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata
from mcp_types import CallToolResult, ToolAnnotations
from pydantic import BaseModel, TypeAdapter

from mcp_bridge.calls import run_handler
from mcp_bridge.tools.schemas import SiteInput, ToolFailure

Handler = Callable[[Any], Awaitable[CallToolResult]]


@dataclass(frozen=True)
class ToolDef:
    name: str
    title: str
    description: str
    input_model: type[SiteInput]
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

    def output_schema(self) -> dict[str, Any]:
        schema = TypeAdapter(self.output_model | ToolFailure).json_schema(ref_template="#/$defs/{model}")
        # MCP wants an object at the root; both arms are objects.
        return {"type": "object", **schema}

    def sdk_tool(self) -> Tool:
        """This tool as the SDK's `Tool` (validated arguments arrive as keyword arguments)."""
        model = self.input_model
        handler = self.handler

        async def run(**arguments: Any) -> CallToolResult:
            return await run_handler(handler, model.model_construct(**arguments))

        return Tool(
            fn=run,
            name=self.name,
            title=self.title,
            description=self.description,
            parameters=model.model_json_schema(by_alias=True),
            fn_metadata=FuncMetadata(arg_model=model, output_model=self.output_model, output_schema=self.output_schema()),
            is_async=True,
            annotations=self.annotations,
        )


REGISTRY: dict[str, ToolDef] = {}


def tool(
    name: str,
    *,
    title: str,
    input: type[SiteInput],
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
