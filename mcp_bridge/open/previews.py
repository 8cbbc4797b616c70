"""What the Open write tools' `dry_run` previews share (issue 15 item 3, `runtime.writes.WritePreview`).

A write tool builds its request once (`open_request`) and both its handler (`send`) and its
preview (`would_send`) use it, so what a preview says would be sent is what the real call
sends (never the JWT: it is not part of the request a person reads). A preview reads the
subscriber's current state with ONE upstream request through `open.calls.open_api` (so
through the limiter and counted: the customer resource, or `/order` for totals), learns
the site's settings from the copy `open.site` keeps (no request), applies OPEN_API.md's
rules in the order the Open API applies them (`Verdict`: the first refusal stands), and
names each rule it could not settle (`not_checked`).

(The Core tools have the same helpers in `core.previews`; `open` may not import `core`.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mcp_bridge.open.calls import open_api, subscriber_of
from mcp_bridge.open.client import OpenAPIResponse
from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.writes import Change, UpstreamRequest, WritePreview

IRREVERSIBLE = "This cannot be undone."


def open_request(call: CallContext, method: str, path: str, body: dict[str, Any] | None = None) -> UpstreamRequest:
    """An Open API request as it is sent: `path` under the Open API base (OPEN_API.md §5),
    the connection's `site_id` query parameter (§1), and the JSON `body`."""
    return UpstreamRequest(method=method, path=path, query={"site_id": subscriber_of(call).site_id}, body=body)


async def send(call: CallContext, request: UpstreamRequest, *, what: str, check: str) -> OpenAPIResponse:
    """Make the write `request` (built by `open_request`) through `open_api`."""
    return await open_api(call, request.method, request.path, what=what, json=request.body, check=check)


def changes(*triples: tuple[str, Any, Any]) -> list[Change]:
    """`Change`s of (field, before, after) triples, leaving out what would stay the same."""
    return [Change(field=name, before=before, after=after) for name, before, after in triples if before != after]


@dataclass
class Verdict:
    """The documented rules, checked one by one in the Open API's order: the first refusal
    stands (Pelcro, too, answers with the first rule broken); rules the preview cannot
    settle are noted (`not_checked`)."""

    refusal: str | None = None
    rule: str | None = None
    not_checked: list[str] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return self.refusal is None

    def refuse(self, reason: str, rule: str) -> None:
        if self.refusal is None:
            self.refusal, self.rule = reason, rule

    def unchecked(self, rule: str) -> None:
        if self.refusal is None:
            self.not_checked.append(rule)


def preview(
    tool: str,
    request: UpstreamRequest,
    verdict: Verdict,
    *,
    allowed: str,
    rule: str,
    changed: list[Change],
    summary: str,
    irreversible: bool = False,
) -> WritePreview:
    """The `dry_run` answer: `allowed` is the verdict when no rule refuses, `rule` the rules
    applied; a refused write changes nothing."""
    return WritePreview(
        tool=tool,
        would_send=request,
        allowed=verdict.allowed,
        verdict=allowed if verdict.allowed else verdict.refusal or "",
        rule=rule if verdict.allowed else verdict.rule,
        changes=changed if verdict.allowed else [],
        summary=summary,
        irreversible=irreversible,
        not_checked=verdict.not_checked,
    )
