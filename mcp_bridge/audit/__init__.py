"""One audit row per tool call (`mcp_bridge.models.ToolCall`).

Public API:
- `CallRecord(principal, tool, arguments)`: what a call fills in as it runs (`site_id`,
  `upstream_status`, `fail(message, outcome)`); `await record.save()` writes its one row
  and returns once it is committed (or kept through an outage).
- `redact(value)`: arguments as stored (secrets replaced by `REDACTED`, long values cut).
- `flush_backlog()` / `backlog_size()`: rows kept through a database outage.
- `recent_calls_for_connection(connection_id, limit)`: for the connections page.
- `writes_for_connection(connection_id, tools, ...)`: for the `list_recent_writes` tool.
"""

from mcp_bridge.audit.records import REDACTED, CallRecord, recent_calls_for_connection, redact, writes_for_connection
from mcp_bridge.audit.writer import backlog_size, flush_backlog

__all__ = [
    "REDACTED",
    "CallRecord",
    "backlog_size",
    "flush_backlog",
    "recent_calls_for_connection",
    "redact",
    "writes_for_connection",
]
