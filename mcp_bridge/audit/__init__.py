"""One audit row per tool call (`mcp_bridge.models.ToolCall`).

Public API:
- `CallRecord(principal, tool, arguments)`: what a call fills in as it runs (`site_id`,
  `upstream_status`, `fail(message, outcome)`); `await record.save()` or
  `await record.save_for_answer()` writes its one row.
- `redact(value)`: arguments as stored (secrets replaced by `REDACTED`, long values cut).
- `drain()`: wait for rows on their way (ASGI lifespan at shutdown, tests).
- `flush_backlog()` / `backlog_size()`: rows kept through a database outage.
- `recent_calls_for_connection(connection_id, limit)`: for the connections page.
"""

from mcp_bridge.audit.records import REDACTED, CallRecord, drain, recent_calls_for_connection, redact
from mcp_bridge.audit.writer import backlog_size, flush_backlog

__all__ = ["REDACTED", "CallRecord", "backlog_size", "drain", "flush_backlog", "recent_calls_for_connection", "redact"]
