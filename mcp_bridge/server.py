"""The MCP server: the SDK's `MCPServer`, scoped to the caller's principal and audited.

- `tools/list` shows a read-only connection only the read tools.
- `tools/call` leaves exactly one audit row whatever happens (unknown tool, refused
  arguments, denial, upstream failure, crash); refused arguments come back as an `isError`
  result naming each bad argument, and a crash as an `internal_error` result.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import anyio
from django.conf import settings
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, CallToolResult, InputRequiredResult
from mcp_types import Tool as MCPTool
from pydantic import ValidationError

from mcp_bridge import audit
from mcp_bridge.auth import current_principal
from mcp_bridge.calls import failure_result
from mcp_bridge.models import ToolCall
from mcp_bridge.tools.catalog import TOOLS
from mcp_bridge.tools.exports import register_export_resource
from mcp_bridge.tools.registry import ToolDef
from mcp_bridge.tools.schemas import ToolFailure

logger = logging.getLogger(__name__)

INSTRUCTIONS = """\
These tools work on ONE Pelcro account: the one the user picked when connecting.
Every tool needs site_id, one of that account's sites (ask the user if unsure; a wrong
site_id answers with the list of the account's sites). Money is in integer cents (minor
units) with a lowercase currency code. List tools return one page: check has_more and
ask for page + 1 to see more. Voiding or writing off invoices and deleting customers are
irreversible: confirm with the user before calling them."""


class GatewayMCPServer(MCPServer):
    """`MCPServer` serving `specs`, with the tool list and tool calls scoped to the
    request's principal."""

    def __init__(self, specs: Mapping[str, ToolDef], **kwargs: Any):
        super().__init__(tools=[spec.sdk_tool() for spec in specs.values()], **kwargs)
        self.specs = dict(specs)

    async def list_tools(self) -> list[MCPTool]:
        tools = await super().list_tools()
        if current_principal().can_write:
            return tools
        return [t for t in tools if self.specs[t.name].read_only]

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Any = None
    ) -> CallToolResult | InputRequiredResult:
        record, token = audit.start(current_principal(), name, arguments)
        try:
            return await self._call(record, name, arguments, context)
        except anyio.get_cancelled_exc_class():
            record.fail("cancelled: the client went away before the call finished")
            raise
        except BaseException as exc:
            record.fail(f"internal error ({type(exc).__name__})")
            raise
        finally:
            audit.finish(token)
            # Shielded: a client that hangs up mid-call still leaves its audit row.
            with anyio.CancelScope(shield=True):
                await record.save_for_answer()

    async def _call(
        self, record: audit.CallRecord, name: str, arguments: dict[str, Any], context: Any
    ) -> CallToolResult | InputRequiredResult:
        spec = self.specs.get(name)
        if spec is None:
            record.known_tool = False
            shown = name if len(name) <= 100 else name[:100] + "…"
            message = f"Unknown tool: {shown!r}. Call tools/list to see the tools this connection can use."
            raise MCPError(code=INVALID_PARAMS, message=record.fail(message))
        if not spec.read_only and not record.principal.can_write:
            message = (
                f"insufficient_scope: {name} changes data, and this connection is read-only. "
                "Reconnect with read and write access to use it."
            )
            record.fail(message, ToolCall.Outcome.DENIED)
            return failure_result(ToolFailure(error="insufficient_scope", message=message))
        try:
            return await super().call_tool(name, arguments, context)
        except UnexpectedToolError:
            # A bug, not the caller's fault: logged with its traceback, answered in the
            # same shape as every other failure, with nothing of the crash in it.
            logger.exception("tool %s crashed", name)
            failure = ToolFailure(
                error="internal_error",
                message=f"{name} failed inside the gateway (the failure is logged). Try again later.",
            )
            record.fail(failure.message)
            return failure_result(failure)
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):
                failure = invalid_arguments(spec, exc.__cause__)
                record.fail(failure.message)
                return failure_result(failure)
            record.fail(str(exc))
            raise


def invalid_arguments(spec: ToolDef, error: ValidationError) -> ToolFailure:
    """A failure naming each bad argument and what is wrong with it (no values echoed)."""
    fields: dict[str, list[str]] = {}
    for item in error.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in item["loc"]) or "arguments"
        if item["type"] == "extra_forbidden":
            text = "is not an argument of this tool"
        elif item["type"] == "missing":
            text = "is required"
        else:
            text = item["msg"].removeprefix("Value error, ")
        fields.setdefault(where, []).append(text)
    problems = "; ".join(f"{where}: {' '.join(texts)}" for where, texts in fields.items())
    allowed = ", ".join(spec.input_model.model_fields)
    return ToolFailure(
        error="invalid_arguments",
        message=f"Invalid arguments for {spec.name}: {problems}. This tool takes: {allowed}.",
        fields=fields,
    )


def build_server() -> GatewayMCPServer:
    """The MCP server with every tool (and the export files resource) registered."""
    server = GatewayMCPServer(
        TOOLS,
        name="pelcro",
        title="Pelcro",
        description="Pelcro Core API tools for one Pelcro account",
        instructions=INSTRUCTIONS,
        website_url=settings.PUBLIC_URL + "/",
        version=settings.VERSION,
        log_level=settings.LOG_LEVEL if settings.LOG_LEVEL in ("DEBUG", "INFO", "WARNING", "ERROR") else "INFO",
    )
    register_export_resource(server)
    return server
