"""What the Core tools' `dry_run` previews share (issue 15 item 3, `runtime.writes.WritePreview`).

A write tool builds its request once (`core_request`) and both its handler (`send`) and its
preview (`would_send`) use that one request, so what a preview says would be sent is what
the real call sends. A preview reads the object's current state with `read_state` (one GET
through `core_api`, so through the shared limiter and counted), applies the documented
rules of docs/CORE_API.md to it in the order the Core API applies them (`Verdict`: the
first refusal stands, as the upstream answers its first), and says what would change
(`changes`) and, for the person who may have to confirm, what it means (`where`, `money`,
`customer_label`, `invoice_label`). `preview` assembles the answer.

What does not depend on the Core API (`changes`, `described`, `counted`, `merged_metadata`,
`preview`, and `Verdict`, to which this module adds the Core API's 404) is
`runtime.previews`, shared with the Open server's previews; it is re-exported here so a
Core tool takes its preview helpers from one module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from mcp_bridge.core.calls import core_api
from mcp_bridge.core.client import CoreAPIResponse
from mcp_bridge.core.results import money
from mcp_bridge.core.shapes import Timestamp, expand_param, iso
from mcp_bridge.runtime import previews
from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.previews import IRREVERSIBLE, changes, counted, described, merged_metadata, preview
from mcp_bridge.runtime.results import ToolFailed
from mcp_bridge.runtime.writes import UpstreamRequest, WritePreview

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
    "missing",
    "moment",
    "money",
    "preview",
    "read_customer",
    "read_state",
    "send",
    "where",
]

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


async def read_customer(call: CallContext, site_id: int, customer_id: int, *expand: str) -> Any | None:
    """Customer `customer_id` of site `site_id` as the Core API holds them now, with the
    relations named in `expand` (CORE_API.md §6: "subscriptions", "addresses",
    "defaultSource"): one GET through `read_state`; None when the site has no such customer."""
    return await read_state(
        call, f"/customers/{customer_id}", site_id, what=f"customer {customer_id}", params=expand_param(list(expand))
    )


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


class Verdict(previews.Verdict):
    """A `runtime.previews.Verdict` that also knows the Core API's answer for an object the
    site does not have."""

    def not_found(self, what: str, site_id: int) -> None:
        """The object does not exist on the site: the real call answers 404."""
        self.refuse(f"{what[:1].upper()}{what[1:]} was not found on site {site_id}.", NOT_FOUND_RULE)


def missing(
    tool: str,
    request: UpstreamRequest,
    call: CallContext,
    site_id: int,
    what: str,
    doing: str,
    *,
    summary: str | None = None,
    irreversible: bool = False,
    verdict: Verdict | None = None,
) -> WritePreview:
    """The preview of `doing` ("void") on `what` ("invoice 12"), which does not exist on the
    site: the real call answers 404 (NOT_FOUND_RULE) and nothing changes. Its summary, after
    the account and site, is "<doing> <what>, which does not exist there." unless `summary`
    says it otherwise. `verdict`: the one so far, when rules checked before the read left
    notes (`not_checked`) that stand."""
    verdict = verdict or Verdict()
    verdict.not_found(what, site_id)
    return preview(
        tool,
        request,
        verdict,
        allowed="",
        rule=NOT_FOUND_RULE,
        changed=[],
        summary=f"On {where(call, site_id)}: {summary or f'{doing} {what}, which does not exist there.'}",
        irreversible=irreversible,
    )
