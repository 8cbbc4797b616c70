"""What the Core tools' `dry_run` previews share (issue 15 item 3, `runtime.writes.WritePreview`).

A write tool builds its request once (`core_request`) and both its handler (`send`) and its
preview (`would_send`) use that one request, so what a preview says would be sent is what
the real call sends. A preview reads the object's current state with `read_state` (one GET
through `core_api`, so through the shared limiter and counted), applies the documented
rules of docs/CORE_API.md to it in the order the Core API applies them (`Verdict`: the
first refusal stands, as the upstream answers its first), and says what would change
(`changes`) and, for the person who may have to confirm, what it means (`where`, `money`,
`customer_label`, `invoice_label`). `preview` assembles the answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from mcp_bridge.core.calls import core_api
from mcp_bridge.core.client import CoreAPIResponse
from mcp_bridge.core.results import money
from mcp_bridge.core.shapes import Timestamp, iso
from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.results import ToolFailed
from mcp_bridge.runtime.writes import Change, UpstreamRequest, WritePreview

__all__ = [
    "IRREVERSIBLE",
    "NOT_FOUND_RULE",
    "Verdict",
    "changes",
    "counted",
    "core_request",
    "customer_label",
    "described",
    "invoice_label",
    "merged_metadata",
    "moment",
    "money",
    "preview",
    "read_state",
    "send",
    "where",
]

IRREVERSIBLE = "This cannot be undone."
NOT_FOUND_RULE = "CORE_API.md §7: 404, the object is missing or not reachable with this key"


def core_request(
    method: str, path: str, site_id: int, *, params: dict[str, Any] | None = None, body: dict[str, Any] | None = None
) -> UpstreamRequest:
    """A Core API request as it is sent: `path` under the Core API base (CORE_API.md §8), the
    `site_id` query parameter every site request carries (§1), and the JSON `body`."""
    return UpstreamRequest(method=method, path=path, query={"site_id": site_id, **(params or {})}, body=body)


async def send(call: CallContext, request: UpstreamRequest, *, what: str, check: str) -> CoreAPIResponse:
    """Make the write `request` (built by `core_request`) through `core_api`; `what` and
    `check` as there."""
    params = dict(request.query or {})
    site_id = params.pop("site_id")
    return await core_api(
        call,
        request.method,
        request.path,
        site_id,
        what=what,
        params=params or None,
        json_body=request.body,
        check=check,
    )


async def read_state(
    call: CallContext, path: str, site_id: int, *, what: str, params: dict[str, Any] | None = None
) -> Any | None:
    """The `data` of one `GET path` (the object a preview judges), or None when the Core API
    answers 404 (the object does not exist on that site: the real call would be refused
    the same way). Other failures (rate limit, upstream down, …) fail the preview."""
    try:
        response = await core_api(call, "GET", path, site_id, what=what, params=params)
    except ToolFailed as failed:
        if failed.failure.error == "not_found":
            return None
        raise
    return response.data


def changes(*triples: tuple[str, Any, Any]) -> list[Change]:
    """`Change`s of (field, before, after) triples, leaving out the fields whose value would
    stay the same. A field names its object: "invoice.status", "customer.balance"."""
    return [Change(field=field, before=before, after=after) for field, before, after in triples if before != after]


def _shown(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return repr(value) if isinstance(value, str) else str(value)


def described(changed: list[Change], prefix: str = "") -> str:
    """Changes as a person reads them, e.g. "city 'Leeds' → 'York'; mail_marketing no → yes"
    (`prefix`, e.g. "customer.", left out of the field names)."""
    return "; ".join(f"{c.field.removeprefix(prefix)} {_shown(c.before)} → {_shown(c.after)}" for c in changed)


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """ "1 address", "2 addresses"."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def merged_metadata(before: Mapping[str, Any] | None, patch: Mapping[str, Any]) -> dict[str, Any]:
    """Metadata after a Core update merges `patch` into it: keys set, a key given null
    removed, other keys kept (CORE_API.md §8.2)."""
    merged = dict(before or {})
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


_TIME: TypeAdapter[Any] = TypeAdapter(Timestamp | None)


def moment(value: Any) -> str | None:
    """A Core time (Unix seconds) as tools show times, ISO 8601 UTC; None stays None."""
    try:
        return iso(_TIME.validate_python(value))
    except ValidationError:
        return str(value)


def where(call: CallContext, site_id: int) -> str:
    """The account and site a write acts on, as a person reads it, e.g. "site 14 (Acme
    Daily) of account acme"."""
    name = call.credentials.sites.get(site_id)
    site = f"site {site_id} ({name})" if name else f"site {site_id}"
    return f"{site} of account {call.principal.account_slug}"


def customer_label(customer: Mapping[str, Any] | None, customer_id: int | None = None) -> str:
    """A customer as a person recognises them: "customer 12 (Jane Doe, jane@example.com)";
    just the id when the preview did not read them."""
    if customer is None:
        return f"customer {customer_id}" if customer_id is not None else "an unknown customer"
    full = " ".join(p for p in (customer.get("first_name"), customer.get("last_name")) if p)
    name = customer.get("display_name") or customer.get("name") or full
    known = ", ".join(p for p in (name, customer.get("email")) if p)
    return f"customer {customer.get('id', customer_id)}" + (f" ({known})" if known else "")


def invoice_label(invoice_id: int, number: str | None) -> str:
    """An invoice as a person finds it: its number and its id."""
    return f"invoice {number} (id {invoice_id})" if number else f"invoice {invoice_id}"


@dataclass
class Verdict:
    """What the documented rules say about a write, as its preview checks them one by one
    in the Core API's own order: the first refusal stands (the upstream, too, answers with
    the first rule it breaks); rules the preview's one read cannot settle are noted."""

    refusal: str | None = None
    rule: str | None = None
    not_checked: list[str] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return self.refusal is None

    def refuse(self, reason: str, rule: str) -> None:
        """The write breaks `rule` (e.g. "CORE_API.md §8.3: ..."); `reason` says how, as the
        Core API would."""
        if self.refusal is None:
            self.refusal, self.rule = reason, rule

    def not_found(self, what: str, site_id: int) -> None:
        """The object does not exist on the site: the real call answers 404."""
        self.refuse(f"{what[:1].upper()}{what[1:]} was not found on site {site_id}.", NOT_FOUND_RULE)

    def unchecked(self, rule: str) -> None:
        """A documented rule this preview could not check (the real call may break it)."""
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
    """The `dry_run` answer of `tool`: `allowed` is the verdict when no rule refuses and
    `rule` the rules that were applied; a refused write changes nothing."""
    return WritePreview(
        tool=tool,
        would_send=request,
        allowed=verdict.allowed,
        verdict=allowed if verdict.allowed else verdict.refusal,
        rule=rule if verdict.allowed else verdict.rule,
        changes=changed if verdict.allowed else [],
        summary=summary,
        irreversible=irreversible,
        not_checked=verdict.not_checked,
    )
