"""`list_recent_writes`, on both servers: this connection's recent write calls, from the
audit table (README "Safe writes"), so a model or a person can see whether a write whose
outcome was unknown (`may_have_been_applied`) happened before trying again.

The same tool is declared for the Core server (`/`) and the Open server (`/open`); each
lists the calls of its own server's write tools made through the caller's connection
(`principal.connection_id`), never another connection's. Read-only: a read-only
connection may call it (it shows the writes it was refused, if any).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from mcp_bridge.audit import writes_for_connection
from mcp_bridge.models import ToolCall
from mcp_bridge.orm import run_db
from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.registry import REGISTRY, Server, tool
from mcp_bridge.runtime.results import ToolFailed, structured_result
from mcp_bridge.runtime.schemas import Page, ToolFailure, ToolInput
from mcp_bridge.runtime.writes import IDEMPOTENCY_KEY_PATTERN


class ListRecentWritesInput(ToolInput):
    tool: str | None = Field(
        None, min_length=1, max_length=100, description="Only this write tool's calls, e.g. create_offline_charge."
    )
    idempotency_key: str | None = Field(
        None, pattern=IDEMPOTENCY_KEY_PATTERN, description="Only the calls made with this idempotency_key."
    )
    since: datetime | None = Field(
        None, description="Only calls made at or after this time, ISO 8601 (e.g. 2026-05-01T09:30:00Z; no zone: UTC)."
    )
    page: int = Field(1, ge=1, le=1_000_000, description="Page number, starting at 1.")
    per_page: int = Field(10, ge=1, le=100, description="Items per page, 1 to 100.")


class RecentWrite(BaseModel):
    """One write call through this connection, as the audit row has it."""

    at: str = Field(description="When the call arrived, ISO 8601 UTC.")
    tool: str
    site_id: int | None
    arguments: dict[str, Any] = Field(description="As sent, with secrets redacted and long values cut.")
    outcome: Literal["ok", "error", "denied", "rate_limited"]
    message: str | None = Field(description="What went wrong, when it did.")
    upstream_status: int | None = Field(
        description="The upstream's HTTP status; null when none answered (nothing sent, a timeout, a replay)."
    )
    idempotency_key: str | None
    replayed: bool = Field(description="Answered with an earlier call's outcome (same key): nothing was sent.")
    dry_run: bool = Field(description="A preview: nothing was written.")
    confirmation: Literal["asked", "confirmed", "declined", "expired", "waived", "refused"] | None = Field(
        description="A person's confirmation, when the call needed one (refused: the app sent back an "
        "altered or used one; waived: turned off for this connection)."
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _item(row: ToolCall) -> RecentWrite:
    return RecentWrite(
        at=_iso(row.created_at),
        tool=row.tool,
        site_id=row.site_id,
        arguments=row.arguments if isinstance(row.arguments, dict) else {},
        outcome=row.outcome,
        message=row.error_message or None,
        upstream_status=row.upstream_status,
        idempotency_key=row.idempotency_key or None,
        replayed=row.replayed,
        dry_run=row.dry_run,
        confirmation=row.confirmation or None,
    )


# The person's decision as the text line says it: a call that only asked, or whose answer
# was no, wrote nothing, whatever its outcome (an asking round's is "ok": it answered).
CONFIRMATION_MARKS = {
    "asked": "asked a person, nothing written",
    "confirmed": "confirmed by the person",
    "declined": "declined by the person, nothing written",
    "expired": "confirmation expired, nothing written",
    "refused": "confirmation refused, nothing written",
    "waived": "not asked (turned off)",
}


def _line(item: RecentWrite) -> str:
    status = f" {item.upstream_status}" if item.upstream_status else ""
    confirmation = CONFIRMATION_MARKS.get(item.confirmation or "", item.confirmation or "")
    marks = "".join(
        f", {mark}"
        for mark, on in (("replayed", item.replayed), ("dry run", item.dry_run), (confirmation, bool(confirmation)))
        if on
    ) + (f", key {item.idempotency_key}" if item.idempotency_key else "")
    return f"- {item.at} {item.tool}: {item.outcome}{status}{marks}"


async def recent_writes(call: CallContext, args: ListRecentWritesInput, server: Server):
    """The page of this connection's calls of `server`'s write tools that `args` asks for."""
    writes = sorted(name for name, spec in REGISTRY[server].items() if not spec.read_only)
    if args.tool is not None and args.tool not in writes:
        message = (
            f"{args.tool!r} is not a write tool of this server; its write tools are: {', '.join(writes) or 'none'}."
        )
        raise ToolFailed(
            ToolFailure(error="invalid_arguments", message=message, fields={"tool": ["is not a write tool"]})
        )
    since = args.since
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    total, rows = await run_db(
        writes_for_connection,
        call.principal.connection_id,
        writes,
        offset=(args.page - 1) * args.per_page,
        limit=args.per_page,
        tool=args.tool,
        idempotency_key=args.idempotency_key,
        since=since,
    )
    items = [_item(row) for row in rows]
    last_page = max(1, math.ceil(total / args.per_page))
    page = Page[RecentWrite](
        items=items,
        page=args.page,
        per_page=args.per_page,
        total=total,
        last_page=last_page,
        has_more=args.page < last_page,
    )
    summary = (
        f"{total} write call{'' if total == 1 else 's'} through this connection; "
        f"page {args.page} of {last_page} shows {len(items)}, newest first."
    )
    if args.page < last_page:
        summary += f" More on page {args.page + 1}."
    return structured_result(page, "\n".join([summary, *map(_line, items)]))


DECLARATION: dict[str, Any] = {
    "title": "List this connection's recent writes",
    "input": ListRecentWritesInput,
    "output": Page[RecentWrite],
    "read_only": True,
    "destructive": False,
    "idempotent": True,
    "open_world": False,  # the gateway's own audit log; nothing is asked upstream
}


@tool("list_recent_writes", server="core", **DECLARATION)
async def list_recent_writes(call: CallContext, args: ListRecentWritesInput):
    """This connection's recent write calls, newest first: tool, arguments, outcome (ok, error,
    denied, rate_limited) with its message, upstream HTTP status, when (ISO 8601 UTC),
    idempotency_key, whether it was a replay (same key: the earlier outcome, nothing sent) or
    a dry run, and the person's confirmation. Use it before retrying a write whose answer
    said may_have_been_applied, or that you never got an answer for: if it is listed with
    outcome ok, it was done. Filter by tool, idempotency_key or since; page with page and
    per_page (has_more). Only this connection's calls of this server's write tools are listed.
    """
    return await recent_writes(call, args, "core")


async def list_recent_writes_open(call: CallContext, args: ListRecentWritesInput):
    return await recent_writes(call, args, "open")


list_recent_writes_open.__doc__ = list_recent_writes.__doc__
tool("list_recent_writes", server="open", **DECLARATION)(list_recent_writes_open)
