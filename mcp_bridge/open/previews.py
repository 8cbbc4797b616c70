"""What the Open write tools' `dry_run` previews share (issue 15 item 3, `runtime.writes.WritePreview`).

A write tool builds its request once (`open_request`) and both its handler (`send`) and its
preview (`would_send`) use it, so what a preview says would be sent is what the real call
sends (never the JWT: it is not part of the request a person reads). A preview reads the
subscriber's current state with ONE upstream request through `open.calls.open_api` (so
through the limiter and counted: the customer resource, or `/order` for totals), learns
the site's settings from the copy `open.site` keeps (no request), applies OPEN_API.md's
rules in the order the Open API applies them (`Verdict`: the first refusal stands), and
names each rule it could not settle (`not_checked`).

`Verdict`, `changes`, `preview` and the rest that does not depend on the API are
`runtime.previews` (shared with the Core server's previews), re-exported here.
"""

from __future__ import annotations

from typing import Any

from mcp_bridge.open.calls import open_api, subscriber_of
from mcp_bridge.open.client import OpenAPIResponse
from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.previews import IRREVERSIBLE, Verdict, changes, merged_metadata, preview
from mcp_bridge.runtime.writes import UpstreamRequest

__all__ = ["IRREVERSIBLE", "Verdict", "changes", "merged_metadata", "open_request", "preview", "send"]


def open_request(call: CallContext, method: str, path: str, body: dict[str, Any] | None = None) -> UpstreamRequest:
    """An Open API request as it is sent: `path` under the Open API base (OPEN_API.md §5),
    the connection's `site_id` query parameter (§1), and the JSON `body`."""
    return UpstreamRequest(method=method, path=path, query={"site_id": subscriber_of(call).site_id}, body=body)


async def send(call: CallContext, request: UpstreamRequest, *, what: str, check: str) -> OpenAPIResponse:
    """Make the write `request` (built by `open_request`) through `open_api`."""
    return await open_api(call, request.method, request.path, what=what, json=request.body, check=check)
