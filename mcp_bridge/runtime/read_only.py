"""The read-only rule, stated once: a connection without the write scope sees and calls
only tools declared `read_only=True`.

Used by the tool list (`runtime.server`), the tool call (`runtime.server`) and the HTTP
gate that answers 403 `insufficient_scope` before the SDK (`edge.gates.WriteScopeGate`).
Scopes: `read` and `write` (OAuth 2.1 scopes of this server, see docs/DESIGN.md).
"""

from __future__ import annotations

from accounts.principal import Principal


def may_call(principal: Principal, read_only: bool) -> bool:
    """Whether `principal` may call a tool whose declaration says `read_only`."""
    return read_only or principal.can_write


def denial_message(tool: str) -> str:
    """What a read-only connection is told when it calls the write tool `tool`."""
    return (
        f"insufficient_scope: {tool} changes data, and this connection is read-only. "
        "Reconnect with read and write access to use it."
    )
