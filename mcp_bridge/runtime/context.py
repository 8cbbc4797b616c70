"""`CallContext`: what a tool handler knows about the call it is serving.

The server builds one per `tools/call` from the verified token (read once from the SDK's
auth context with `request_token()`, in `runtime.server`) and passes it to the handler
as its first argument: handlers never read context variables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from pydantic import ConfigDict, Field

from accounts.principal import Credentials, Principal
from mcp_bridge.audit import CallRecord
from mcp_bridge.runtime.results import ToolFailed
from mcp_bridge.runtime.schemas import ToolFailure


class PrincipalAccessToken(AccessToken):
    """The SDK's access-token info plus the principal it stands for."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    principal: Principal
    credentials: Credentials | None = Field(default=None, repr=False)


def request_token() -> PrincipalAccessToken:
    """The verified token of the MCP request being served, from the SDK's auth context
    (set by `edge.gates.BearerGate`). The one place that context is read: the server's
    tool list and tool call, and the export resource. Raises if there is none."""
    token = get_access_token()
    if not isinstance(token, PrincipalAccessToken):
        raise RuntimeError("no verified principal for this request")
    return token


@dataclass(frozen=True)
class CallContext:
    """One tool call: who calls (`principal`), with which account credentials (its sites
    and Core API key, `credentials`), and the audit row being filled in (`record`).

    `exchange` is the SDK's view of the request (its `mcpserver.Context`: the negotiated
    protocol version, the client's declared capabilities, and on a retry of the 2026-07-28
    multi round-trip pattern the `input_responses` and the verified `request_state`); only
    the confirmation step reads it (`runtime.confirmation`). None outside an MCP request."""

    principal: Principal
    credentials: Credentials
    record: CallRecord
    exchange: Any = None

    def require_site(self, site_id: int) -> None:
        """Raise `ToolFailed(unknown_site)` unless `site_id` is a site of the caller's account.

        One answer for "no such site" and "another account's site": nothing leaks. The
        registry checks every tool's `site_id` with it before the handler runs."""
        if site_id not in self.credentials.sites:
            raise ToolFailed(
                ToolFailure(
                    error="unknown_site",
                    message=f"Site {site_id} is not a site of the connected account "
                    f"({self.principal.account_slug}). Its sites are: {self.credentials.site_list()}.",
                )
            )
