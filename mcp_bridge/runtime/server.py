"""The MCP server class both servers use: the SDK's `MCPServer`, scoped to the caller's
principal and audited.

- `tools/list` shows a read-only connection only the read tools (`runtime.read_only`).
- `tools/call` reads the verified token once, builds the call's `CallContext` (principal,
  credentials, audit record) and hands it to the tool.
- `tools/call` on the Open server refuses card data in any argument before anything else
  (`mcp_bridge.card_data`): a subscriber adds cards on the publication's website.
- `tools/call` leaves exactly one audit row whatever happens (unknown tool, refused
  arguments, denial, upstream failure, crash); refused arguments come back as an `isError`
  result naming each bad argument, and a crash as an `internal_error` result.
- Protocol rules of `runtime.protocol`: `initialize` negotiates only versions this gateway
  serves; no `prompts` capability is advertised (there are no prompts, so `prompts/list`
  and `prompts/get` are -32601 Method not found, like every other method not served);
  a missing resource is the not-found code of the request's protocol version.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import anyio
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError, UnexpectedToolError
from mcp.server.request_state import RequestStateBoundary
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, CallToolResult, InputRequiredResult
from mcp_types import Tool as MCPTool
from pydantic import ValidationError

from mcp_bridge.audit import CallRecord
from mcp_bridge.card_data import CARD_DATA_REFUSED, carries_card_data
from mcp_bridge.models import ToolCall
from mcp_bridge.runtime import confirmation, protocol, read_only
from mcp_bridge.runtime.context import CallContext, PrincipalAccessToken, request_token
from mcp_bridge.runtime.failures import before_retrying
from mcp_bridge.runtime.registry import ToolDef
from mcp_bridge.runtime.results import failure_result
from mcp_bridge.runtime.schemas import ToolFailure

logger = logging.getLogger(__name__)


class GatewayMCPServer(MCPServer):
    """`MCPServer` serving `specs`, with the tool list and tool calls scoped to the
    request's principal."""

    def __init__(self, specs: Mapping[str, ToolDef], **kwargs: Any):
        kwargs.setdefault("request_state_security", confirmation.request_state_security())
        super().__init__(tools=[spec.sdk_tool() for spec in specs.values()], **kwargs)
        self.specs = dict(specs)
        # A request state the SDK's boundary refuses never reaches `call_tool`: audit it there.
        middleware = self._lowlevel_server.middleware
        for index, item in enumerate(middleware):
            if isinstance(item, RequestStateBoundary):
                middleware[index] = AuditedStateBoundary(item)
        self.middleware.append(negotiate_served_version)
        self.middleware.append(name_invalid_params)
        # MCPServer always registers the prompt methods, so it always advertises `prompts`
        # (capabilities follow the registered handlers). This server has no prompts:
        # without the handlers the capability is not advertised and both methods are
        # -32601, in every protocol version.
        for method in ("prompts/list", "prompts/get"):
            self._lowlevel_server._request_handlers.pop(method, None)

    async def read_resource(self, uri: Any, context: Context | None = None) -> Any:
        try:
            return await super().read_resource(uri, context)
        except ResourceNotFoundError as exc:
            version = context.protocol_version if context is not None else None
            raise MCPError(
                code=protocol.resource_not_found_code(version), message=str(exc), data={"uri": str(uri)}
            ) from None

    async def list_tools(self) -> list[MCPTool]:
        tools = await super().list_tools()
        principal = request_token().principal
        return [t for t in tools if read_only.may_call(principal, self.specs[t.name].read_only)]

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Any = None
    ) -> CallToolResult | InputRequiredResult:
        token = request_token()  # the one read of the SDK's auth context for this call
        record = call_record(token, name, arguments)
        try:
            if token.credentials is None:
                raise RuntimeError("the verified token carries no credentials")
            call = CallContext(
                principal=token.principal, credentials=token.credentials, record=record, exchange=context
            )
            return await self._call(call, name, arguments)
        except anyio.get_cancelled_exc_class():
            record.fail("cancelled: the client went away before the call finished")
            raise
        except BaseException as exc:
            record.fail(f"internal error ({type(exc).__name__})")
            raise
        finally:
            # Shielded: a client that hangs up mid-call still leaves its audit row.
            with anyio.CancelScope(shield=True):
                await record.save()

    async def _call(
        self, call: CallContext, name: str, arguments: dict[str, Any]
    ) -> CallToolResult | InputRequiredResult:
        record = call.record
        spec = self.specs.get(name)
        if spec is None:
            record.known_tool = False
            shown = name if len(name) <= 100 else name[:100] + "…"
            message = f"Unknown tool: {shown!r}. Call tools/list to see the tools this connection can use."
            raise MCPError(code=INVALID_PARAMS, message=record.fail(message))
        if not read_only.may_call(call.principal, spec.read_only):
            message = read_only.denial_message(name)
            record.fail(message, ToolCall.Outcome.DENIED)
            return failure_result(ToolFailure(error="insufficient_scope", message=message))
        if spec.server == "open" and carries_card_data(arguments):
            # Before validation, so no tool's own message or echo comes first (issue 14).
            message = f"Invalid arguments for {name}: {CARD_DATA_REFUSED}."
            record.fail(message)
            return failure_result(ToolFailure(error="invalid_arguments", message=message))
        try:
            # The SDK passes this argument to the tool as its `call` (ToolDef.sdk_tool).
            return await super().call_tool(name, arguments, call)  # type: ignore[arg-type]
        except UnexpectedToolError:
            # A bug, not the caller's fault: logged with its traceback, answered in the
            # same shape as every other failure, with nothing of the crash in it.
            logger.exception("tool %s crashed", name)
            failure = crash_failure(spec, record)
            record.fail(failure.message)
            return failure_result(failure)
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):
                failure = invalid_arguments(spec, exc.__cause__)
                record.fail(failure.message)
                return failure_result(failure)
            record.fail(str(exc))
            raise


def crash_failure(spec: ToolDef, record: CallRecord) -> ToolFailure:
    """The `internal_error` of a tool that crashed. A write (not a dry run) may have crashed
    after its request was sent (e.g. rendering the answer), so it says the write may have
    been applied and how to check, never "try again" (a blind retry could write twice;
    README "Safe writes"). With an idempotency key the repeat answers `outcome_unknown`."""
    if spec.read_only or record.dry_run:
        return ToolFailure(
            error="internal_error",
            message=f"{spec.name} failed inside the gateway (the failure is logged). Try again later.",
        )
    return ToolFailure(
        error="internal_error",
        message=f"{spec.name} failed inside the gateway (the failure is logged), possibly after the write was "
        f"sent: it may have been applied. {before_retrying(None)}",
        may_have_been_applied=True,
    )


def call_record(token: PrincipalAccessToken, name: str, arguments: Any) -> CallRecord:
    """The audit record of one `tools/call` by `token`'s principal. An Open server call's
    record names the connection's one site and customer from the start, so every row
    (refused ones too, e.g. a request state refused before any tool runs) says whom the
    call acted for: no argument can change them."""
    record = CallRecord(principal=token.principal, tool=name, arguments=arguments)
    subscriber = token.credentials.subscriber if token.credentials is not None else None
    if subscriber is not None:
        record.site_id, record.customer_id = subscriber.site_id, subscriber.customer_id
    return record


class AuditedStateBoundary:
    """The SDK's `RequestStateBoundary` (which verifies the sealed `requestState` of a
    `tools/call` retry before any handler runs), plus what the gateway owes every tool
    call: a refused state (forged, altered, sealed for another connection, server, tool or
    arguments, or past the seal's life) leaves its audit row, `confirmation=refused`, and
    the -32602 error says what was wrong and what to do (the SDK's says only "Invalid or
    expired requestState")."""

    def __init__(self, boundary: RequestStateBoundary):
        self.boundary = boundary

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        reached = False

        async def handler(inner: ServerRequestContext[Any, Any]) -> HandlerResult:
            nonlocal reached
            reached = True
            return await call_next(inner)

        try:
            return await self.boundary(ctx, handler)
        except MCPError:
            if reached or ctx.method != "tools/call":
                raise
        # Refused before any handler ran: the SDK logged why (never on the wire).
        error = confirmation.invalid_state_error(
            "it is not one this gateway sealed for this very call (altered or forged, sealed for another "
            f"connection, tool or arguments, or older than {confirmation.confirmation_seconds() // 60 + 60} minutes)."
        )
        params = ctx.params or {}
        arguments = params.get("arguments")
        record = call_record(
            request_token(), str(params.get("name", "")), arguments if isinstance(arguments, dict) else {}
        )
        record.confirmation = ToolCall.Confirmation.REFUSED
        record.fail(error.error.message)
        with anyio.CancelScope(shield=True):
            await record.save()
        raise error


async def negotiate_served_version(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    """SDK middleware: an `initialize` result names a version this gateway serves
    (`protocol.negotiated_version`); the SDK would also agree to 2024-11-05."""
    result = await call_next(ctx)
    if ctx.method == "initialize" and isinstance(result, dict):
        requested = (ctx.params or {}).get("protocolVersion")
        result["protocolVersion"] = protocol.negotiated_version(requested)
    return result


async def name_invalid_params(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    """SDK middleware: params the SDK's method model refuses (tools/call without a `name`,
    `arguments` that is not an object, resources/read without a `uri`, …) are answered
    -32602 naming each bad field and what is wrong, in both protocol eras. The SDK would
    answer a bare "Invalid request parameters" with empty data, which tells the client
    author nothing (JSON-RPC 2.0 §5.1: -32602 Invalid params). No value is echoed."""
    try:
        return await call_next(ctx)
    except ValidationError as exc:
        problems = []
        for item in exc.errors(include_url=False, include_input=False):
            where = ".".join(str(part) for part in item["loc"])
            where = where if where.startswith("params") else f"params.{where}".rstrip(".")
            text = "is required" if item["type"] == "missing" else item["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {text}")
        problems = list(dict.fromkeys(problems))[:5]
        raise MCPError(
            code=INVALID_PARAMS,
            message=f"Invalid params for {ctx.method}: {'; '.join(problems)}. See the MCP schema of {ctx.method}.",
            data={"errors": problems},
        ) from None


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
    problems = "; ".join(f"{where}: {' '.join(texts)}" for where, texts in fields.items()).rstrip(".")
    allowed = ", ".join(spec.input_model.model_fields)
    takes = f"This tool takes: {allowed}." if allowed else f"{spec.name} takes no arguments: call it with {{}}."
    return ToolFailure(
        error="invalid_arguments",
        message=f"Invalid arguments for {spec.name}: {problems}. {takes}",
        fields=fields,
    )
