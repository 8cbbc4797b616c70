"""Recording tool calls: the record a call fills in as it runs, and its one audit row.

`CallRecord` is created when a `tools/call` arrives (or is refused at the HTTP edge),
filled in by the shared call path (site, upstream status, outcome), and saved exactly
once. The tool runtime hands it to handlers inside their `CallContext`.

`save()` builds the row when the call ends and returns once it is committed (or kept, as
below): the row is committed before the answer goes out, so an answered call always has
its row. (Answering first and writing the row just after was measured side by side and
gained nothing beyond the noise; BENCHMARKS.md.) Rows of concurrent calls are batched
into one insert, so a database that falls behind slows answers down rather than filling
memory. The writing is `mcp_bridge.audit.writer`'s. On PostgreSQL it skips the ORM: each event loop
writes over its own async connection, and rows that arrive while an insert is in flight go
together in the next one (one thread hop and one ORM save per call were about a tenth of
a tool call's CPU in the gateway). Other engines (SQLite) go through the ORM thread.

A row the database cannot take right now (unreachable) is kept in this process's backlog
and written, with the next rows, as soon as the database answers again; at shutdown
(`flush_backlog`) what is still kept is written or, failing that, logged whole at ERROR
level. The call itself already happened, so a lost connection must neither fail it nor
lose its row. A row the database refuses is logged whole; `save()` never raises for it.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import DatabaseError, InterfaceError, OperationalError
from django.utils import timezone

from accounts.principal import Principal
from mcp_bridge import metrics
from mcp_bridge.audit import writer as audit_writer
from mcp_bridge.card_data import has_card_number, mask_card_numbers
from mcp_bridge.models import ToolCall

REDACTED = "[redacted]"
# Argument names whose values are never stored, at any depth (e.g. inside metadata).
_SECRET_NAME = re.compile(r"(?i)(pass(word)?|secret|token|api[_-]?key|authorization|card|cvc|cvv|iban)")
_MAX_STRING = 500  # long values are cut: the audit log is not a data store
_MAX_ITEMS = 50
_MAX_DEPTH = 4
_MAX_ERROR = 2000
_MAX_TOOL_NAME = ToolCall._meta.get_field("tool").max_length

logger = logging.getLogger("mcp_bridge.audit")


def storable(text: str) -> str:
    """`text` as every database column takes it: caller-chosen text may hold NUL (refused
    by PostgreSQL) or lone surrogates (not UTF-8), which would lose the audit row."""
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def redact(value: Any, depth: int = 0) -> Any:
    """A JSON-safe, size-capped copy of tool arguments with secret-looking keys masked, and
    every key or value holding a payment card number (`mcp_bridge.card_data`) masked, at any
    depth: PCI DSS, a card number is never stored."""
    if depth > _MAX_DEPTH:
        return "…"
    if isinstance(value, dict):
        items = list(value.items())[:_MAX_ITEMS]
        return {
            _stored_key(str(key), index): REDACTED if _SECRET_NAME.search(str(key)) else redact(item, depth + 1)
            for index, (key, item) in enumerate(items)
        }
    if isinstance(value, (list, tuple)):
        return [redact(item, depth + 1) for item in list(value)[:_MAX_ITEMS]]
    if isinstance(value, str):
        if has_card_number(value):
            return REDACTED
        return storable(value if len(value) <= _MAX_STRING else value[:_MAX_STRING] + "…")
    if isinstance(value, int) and not isinstance(value, bool) and has_card_number(str(value)):
        return REDACTED
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # NaN and Infinity are not JSON: a JSON column refuses them
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return storable(str(value)[:_MAX_STRING])


def _stored_key(key: str, index: int) -> str:
    """An argument name as stored: a name that is itself a card number is masked (numbered,
    so two such names stay two keys)."""
    return f"{REDACTED}{index}" if has_card_number(key) else storable(key[:100])


@dataclass
class CallRecord:
    """What is known about one tool call so far; `save()` turns it into a `ToolCall` row."""

    principal: Principal
    tool: str
    arguments: Any
    started_at: datetime = field(default_factory=timezone.now)
    started: float = field(default_factory=time.perf_counter)
    site_id: int | None = None
    outcome: str = ToolCall.Outcome.OK
    upstream_status: int | None = None
    error_message: str = ""
    known_tool: bool = True  # False: metrics count it as "unknown" (names are caller-chosen)
    customer_id: int | None = None  # Open server: the Pelcro customer acted for
    dry_run: bool = False
    idempotency_key: str = ""
    replayed: bool = False  # answered from an earlier call with the same idempotency key
    confirmation: str = ""  # ToolCall.Confirmation, blank when none was needed
    # Not stored: set when the call's write was accepted upstream (2xx), to how its effect
    # can be checked (the handler's `check`); `runtime.writes` reads it (a failure after
    # that point never says the write was not made).
    write_accepted: str | None = None
    # Not stored: the upstream request the person confirmed for this call (the question's
    # preview `would_send`, `runtime.confirmation`), once their yes is used; None otherwise.
    confirmed_request: dict | None = None
    saved: bool = False

    def fail(self, message: str, outcome: str = ToolCall.Outcome.ERROR) -> str:
        """Mark the call failed (unless already marked) and return `message` for chaining."""
        if self.outcome == ToolCall.Outcome.OK:
            self.outcome = outcome
            self.error_message = message
        return message

    def row(self) -> ToolCall:
        principal = self.principal
        site_id = self.site_id
        if site_id is None and isinstance(self.arguments, dict):
            # A refused call still names the site it aimed at, when it is a plausible id.
            raw = self.arguments.get("site_id")
            if isinstance(raw, int) and not isinstance(raw, bool) and 0 < raw < 2**31:
                site_id = raw
        return ToolCall(
            created_at=self.started_at,
            user_id=principal.user_id,
            username=principal.username,
            client_id=principal.client_id,
            client_name=principal.client_name,
            account_id=principal.account_id,
            account_slug=principal.account_slug,
            connection_id=principal.connection_id,
            site_id=site_id,
            tool=storable(self.tool[:_MAX_TOOL_NAME]),
            arguments=redact(self.arguments if isinstance(self.arguments, dict) else {}),
            outcome=self.outcome,
            upstream_status=self.upstream_status,
            latency_ms=max(0, round((time.perf_counter() - self.started) * 1000)),
            error_message=storable(mask_card_numbers(self.error_message[:_MAX_ERROR])),
            customer_id=self.customer_id,
            dry_run=self.dry_run,
            idempotency_key=storable(self.idempotency_key[:100]),
            replayed=self.replayed,
            confirmation=self.confirmation,
        )

    def _take_row(self) -> ToolCall | None:
        """The row to write, counted in the metrics; None if it was taken already."""
        if self.saved:
            return None
        self.saved = True
        row = self.row()
        metrics.record_tool_call(row.tool if self.known_tool else "unknown", row.outcome, row.latency_ms / 1000)
        return row

    async def save(self) -> None:
        """Write the audit row and wait until it is written, kept or logged (once; again is
        a no-op)."""
        row = self._take_row()
        if row is not None:
            await _write(row)


async def _write(row: ToolCall) -> None:
    try:
        await audit_writer.write(row)
    except (OperationalError, InterfaceError):
        logger.warning("audit row for %s kept until the database answers again", row.tool[:100])
    except DatabaseError:
        # Refused: the writer logged the whole row. The call itself already happened, and
        # a refused row must not turn it into an error (nor a gate's answer into a 500).
        pass


def recent_calls_for_connection(connection_id: int, limit: int = 20) -> list[ToolCall]:
    """The latest tool calls made through one connection, newest first (sync; for pages)."""
    return list(ToolCall.objects.filter(connection_id=connection_id).order_by("-created_at", "-id")[:limit])


def writes_for_connection(
    connection_id: int,
    tools: Iterable[str],
    *,
    offset: int,
    limit: int,
    tool: str | None = None,
    idempotency_key: str | None = None,
    since: datetime | None = None,
) -> tuple[int, list[ToolCall]]:
    """(how many, one page newest first) of a connection's calls of the write tools `tools`
    (sync; for the `list_recent_writes` tool), optionally of one `tool`, one
    `idempotency_key`, made at or after `since`."""
    rows = ToolCall.objects.filter(connection_id=connection_id, tool__in=list(tools))
    if tool is not None:
        rows = rows.filter(tool=tool)
    if idempotency_key is not None:
        rows = rows.filter(idempotency_key=idempotency_key)
    if since is not None:
        rows = rows.filter(created_at__gte=since)
    return rows.count(), list(rows.order_by("-created_at", "-id")[offset : offset + limit])
