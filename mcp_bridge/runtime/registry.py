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
from typing import Any, Literal

from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata
from mcp_types import CallToolResult, InputRequiredResult, ToolAnnotations
from pydantic import BaseModel, create_model

from mcp_bridge.runtime import confirmation
from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.json_schema import tool_input_schema, tool_output_schema
from mcp_bridge.runtime.results import ToolFailed
from mcp_bridge.runtime.schemas import ToolFailure, ToolInput
from mcp_bridge.runtime.writes import (
    ConfirmWhen,
    Preview,
    WriteOptions,
    WritePreview,
    preview_result,
    run_write,
    split_options,
)

# A handler: `async def handler(call: CallContext, args: <its input model>) -> CallToolResult`.
Handler = Callable[[CallContext, Any], Awaitable[CallToolResult]]

# The MCP servers tools are declared for: the Core server at `/`, the Open server at `/open`.
Server = Literal["core", "open"]


@dataclass(frozen=True)
class ToolDef:
    """One declared tool. `input_model` is what is published and validated: the handler's
    own `args_model`, plus `WriteOptions` for a write tool (`runtime.writes`)."""

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
    args_model: type[ToolInput]
    server: Server = "core"
    preview: Preview | None = None
    confirm: ConfirmWhen | None = None

    def needs_confirmation(self, args: Any) -> bool:
        """Whether a person must confirm this call (`confirm=` of the declaration)."""
        return self.confirm is not None and bool(self.confirm(args))

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
                *([] if self.read_only else [WritePreview.model_json_schema(mode="serialization")]),
            ],
            description="The result; when isError is true, a failure instead: error, message and the "
            "optional upstream_status, fields, retry_after, may_have_been_applied.",
        )

    def sdk_tool(self) -> Tool:
        """This tool as the SDK's `Tool` (validated arguments arrive as keyword arguments)."""
        spec = self
        model = self.input_model
        # What the SDK validates a successful answer against: a write tool's `dry_run`
        # answers a `WritePreview` instead of its object (both are in the output schema).
        answer = self.output_model if self.read_only else self.output_model | WritePreview

        # The SDK hands the `context` argument of `MCPServer.call_tool` to the tool as
        # `context_kwarg`; `runtime.server` passes the call's `CallContext` there.
        async def run(call: CallContext, **arguments: Any) -> CallToolResult | InputRequiredResult:
            return await run_handler(spec, call, model.model_construct(**arguments))

        return Tool(
            fn=run,
            name=self.name,
            title=self.title,
            description=self.description,
            parameters=self.input_schema(),
            fn_metadata=FuncMetadata(arg_model=model, output_model=answer, output_schema=self.output_schema()),
            is_async=True,
            context_kwarg="call",
            annotations=self.annotations,
        )


async def run_handler(spec: ToolDef, call: CallContext, args: ToolInput) -> CallToolResult | InputRequiredResult:
    """Run `spec`'s handler for `call`: the site is checked first (every Core tool but those
    of the account itself acts on one site of the caller's account); a write goes through
    `runtime.writes` (dry run, idempotency, confirmation); a `ToolFailed` becomes an
    `isError` result that marks the call's audit record."""
    record = call.record
    # Core tools of the account itself take no site_id (get_account); Open tools never do:
    # their site is the connection's (`tool()` refuses the argument), already in the record.
    site_id = getattr(args, "site_id", None)
    try:
        if site_id is not None:
            record.site_id = site_id
            call.require_site(site_id)
        if spec.read_only:
            return await spec.handler(call, args)
        options, own = split_options(spec, args)
        if options.dry_run:
            return await preview_result(spec, call, own)
        return await run_write(spec, call, own, options)
    except ToolFailed as failed:
        record.fail(failed.failure.message, failed.outcome)
        return failed.result()


# Every declared tool, per server (a name is unique within its server: both have list_plans).
REGISTRY: dict[Server, dict[str, ToolDef]] = {"core": {}, "open": {}}

# Arguments an Open tool may not take: it acts for the connection's one subscriber, whose
# site and customer come from the verified token, never from the caller (issue 14).
OPEN_FORBIDDEN_ARGUMENTS = frozenset({"site_id", "customer_id"})


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
    server: Server = "core",
    preview: Preview | None = None,
    confirm: ConfirmWhen | None = None,
) -> Callable[[Handler], Handler]:
    """Register a tool handler. Every annotation must be stated: there are no defaults.

    A write tool (`read_only=False`) also declares `preview` (its `dry_run` answer,
    `runtime.writes.Preview`) and, if it moves money or cannot be undone, `confirm`: a
    predicate on its arguments saying when a person must confirm (`writes.ALWAYS`,
    `writes.WHEN_MODE_NOW`, or any `lambda a: ...`); its description then ends with what
    needs confirmation (`confirmation.description_note`)."""

    def register(handler: Handler) -> Handler:
        tools = REGISTRY[server]
        if name in tools:
            raise ValueError(f"tool {name} is declared twice for the {server} server")
        if not handler.__doc__:
            raise ValueError(f"tool {name} needs a docstring: it is the description assistants read")
        if read_only and destructive:
            raise ValueError(f"tool {name} cannot be both read-only and destructive")
        if read_only and (preview is not None or confirm is not None):
            raise ValueError(f"tool {name} is read-only: it has nothing to preview or confirm")
        chosen = OPEN_FORBIDDEN_ARGUMENTS & set(input.model_fields) if server == "open" else set()
        if chosen:
            raise ValueError(f"Open tool {name} may not take {sorted(chosen)}: the connection decides them")
        published = input
        if not read_only:
            clash = set(input.model_fields) & set(WriteOptions.model_fields)
            if clash:
                raise ValueError(f"tool {name} declares {sorted(clash)} itself; the runtime adds them")
            published = create_model(input.__name__, __base__=(input, WriteOptions), __module__=input.__module__)
        description = inspect.cleandoc(handler.__doc__)
        if confirm is not None:
            description += "\n\n" + confirmation.description_note(confirm)
        tools[name] = ToolDef(
            name=name,
            title=title,
            description=description,
            input_model=published,
            output_model=output,
            handler=handler,
            read_only=read_only,
            destructive=destructive,
            idempotent=idempotent,
            open_world=open_world,
            args_model=input,
            server=server,
            preview=preview,
            confirm=confirm,
        )
        return handler

    return register
