"""Refund tools: list, cancel pending (Core API /refunds, CORE_API.md §8.8). Core cannot
create refunds."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from mcp_bridge.core.calls import core_api
from mcp_bridge.core.charges import Charge
from mcp_bridge.core.previews import IRREVERSIBLE, Verdict, changes, core_request, preview, send, where
from mcp_bridge.core.results import money, page_result, parse, structured_result
from mcp_bridge.core.shapes import CoreObject, IdList, Timestamp, embedded
from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.registry import tool
from mcp_bridge.runtime.schemas import ListInput, Page, SiteInput
from mcp_bridge.runtime.writes import ALWAYS, UpstreamRequest, WritePreview


class Refund(CoreObject):
    """A refund of a charge (CORE_API.md §8.8)."""

    id: int
    charge_id: int | None = None
    user_id: int | None = Field(None, description="The customer of the refunded charge (null if none).")
    amount: int | None = Field(None, description="Cents.")
    currency: str | None = None
    status: str | None = Field(None, description="to_issue (pending), issued or canceled.")
    reason: str | None = None
    charge: embedded(Charge, "the refunded charge, as get_charge returns it") | None = Field(
        None, description="The refunded charge, with include_charge."
    )
    created_at: Timestamp | None = None


class ListRefundsInput(ListInput):
    include_charge: bool = Field(False, description="Embed each refund's charge (same request).")

    def query(self) -> dict[str, Any]:
        return self.list_query() | ({"include": "charge"} if self.include_charge else {})


class CancelRefundsInput(SiteInput):
    refund_ids: IdList | None = Field(None, description="The pending (to_issue) refunds to cancel.")
    all_pending: bool = Field(
        False,
        description="true: cancel EVERY pending refund of the account's site instead (after a person's "
        "confirmation: the pending refunds their question listed).",
    )

    @model_validator(mode="after")
    def _which(self) -> CancelRefundsInput:
        if bool(self.refund_ids) == self.all_pending:
            raise ValueError("give refund_ids, or all_pending true (not both)")
        return self

    def request(self) -> UpstreamRequest:
        return cancel_request(self.site_id, "all" if self.all_pending else list(self.refund_ids or []))


def cancel_request(site_id: int, ids: list[int] | str) -> UpstreamRequest:
    """`POST /refunds/cancelled` with `refund_ids` "all" or the ids comma-separated (§8.8)."""
    body = {"refund_ids": ids if isinstance(ids, str) else ",".join(map(str, ids))}
    return core_request("POST", "/refunds/cancelled", site_id, body=body)


def confirmed_ids(call: CallContext) -> list[int] | None:
    """The refunds the person confirmed canceling when the call said all_pending: those the
    question listed as pending (its preview's request names them), or None (no yes used,
    or the question covered "all": more refunds than one page could show)."""
    body = (call.record.confirmed_request or {}).get("body") or {}
    text = body.get("refund_ids")
    if not isinstance(text, str) or text == "all" or not text:
        return None
    ids = [int(part) for part in text.split(",") if part.strip().isdigit()]
    return ids or None


class CanceledRefunds(CoreObject):
    queued: list[int] = Field(description="Refunds whose cancellation is queued (Pelcro runs it shortly).")


# The most refunds one list request returns (CORE_API.md §3): what a preview can judge.
PREVIEW_PAGE = 100
LISTED = 10  # refunds named one by one in a preview's summary
CANCEL_RULE = "CORE_API.md §8.8 (cancel pending: only to_issue refunds with a creation date; others left)"


def cancellable(refund: Refund) -> bool:
    """Whether a cancellation touches `refund`: pending (`to_issue`) with a creation date
    (CORE_API.md §8.8); others are left as they are, without an error."""
    return refund.status == "to_issue" and refund.created_at is not None


def _state(refund: Refund) -> str:
    return (refund.status or "?") if refund.created_at is not None else f"{refund.status}, no creation date"


def _described(refunds: list[Refund]) -> str:
    named = [
        f"refund {r.id} of {money(r.amount, r.currency)}" + (f" to customer {r.user_id}" if r.user_id else "")
        for r in refunds[:LISTED]
    ]
    more = f" and {len(refunds) - LISTED} more" if len(refunds) > LISTED else ""
    return ", ".join(named) + more


async def preview_cancel_refunds(call: CallContext, args: CancelRefundsInput) -> WritePreview:
    """The site's refunds are read (one list request, the first PREVIEW_PAGE in id order:
    no filter exists, §5): the named (or all) refunds that are pending and dated would be
    queued for cancellation; the Core API refuses none for its state (§8.8)."""
    request = args.request()
    response = await core_api(
        call, "GET", "/refunds", args.site_id, what="refunds", params={"page": 1, "limit": PREVIEW_PAGE}
    )
    listed = [parse(Refund, item) for item in response.data or []]
    total = int((response.meta or {}).get("total") or len(listed))
    everything = total <= len(listed)
    named = listed if args.all_pending else [r for r in listed if r.id in set(args.refund_ids or [])]
    queued = [r for r in named if cancellable(r)]
    kept = [r for r in named if not cancellable(r)]
    seen = {r.id for r in listed}
    absent = [] if args.all_pending else [i for i in args.refund_ids or [] if i not in seen]
    verdict = Verdict()
    if not everything:
        verdict.unchecked(
            f"refunds beyond the first {len(listed)} of the site's {total}"
            + (f" (among them {', '.join(map(str, absent))})" if absent else "")
            + ": if pending, they are canceled too"
        )
    allowed = f"{len(queued)} refund(s) would be queued for cancellation"
    if queued:
        allowed += f" ({', '.join(str(r.id) for r in queued)})"
    if kept:
        allowed += f"; left as they are: {', '.join(f'{r.id} ({_state(r)})' for r in kept)}"
    if absent and everything:
        allowed += f"; not refunds of this site (left alone, no error): {', '.join(map(str, absent))}"
    site = where(call, args.site_id)
    summary = (
        f"On {site}: cancel {len(queued)} pending refund(s): {_described(queued)}. That money would NOT be "
        f"returned to the customers; Pelcro runs the cancellation shortly after (queued). {IRREVERSIBLE}"
        if queued
        else f"On {site}: cancel pending refunds; none of those named is pending, so nothing would change."
    )
    shown = preview(
        "cancel_refunds",
        request,
        verdict,
        allowed=allowed + ".",
        rule=CANCEL_RULE,
        changed=changes(*((f"refund.{r.id}.status", r.status, "canceled") for r in queued)),
        summary=summary,
        irreversible=bool(queued),
    )
    if args.all_pending and everything and queued:
        # "All pending" means these refunds now: a person's yes to this summary is for them,
        # not for a refund made pending (in the dashboard) before the call runs, so the
        # call that uses the yes sends these ids (`confirmed_ids`) instead of "all".
        shown.narrowed(cancel_request(args.site_id, [r.id for r in queued]))
    return shown


@tool(
    "list_refunds",
    title="List refunds",
    input=ListRefundsInput,
    output=Page[Refund],
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
)
async def list_refunds(call: CallContext, args: ListRefundsInput):
    """List a site's refunds, a page at a time, in id order (no sorting or filtering is
    documented); include_charge embeds each refund's charge. Statuses: to_issue (pending,
    can still be canceled), issued, canceled. Amounts in cents. Refunds are created in
    Pelcro's dashboard or by the payment gateway, not through these tools.
    """
    response = await core_api(call, "GET", "/refunds", args.site_id, what="refunds", params=args.query())
    return page_result(response, Refund, "refund", args.site_id)


@tool(
    "cancel_refunds",
    title="Cancel pending refunds",
    input=CancelRefundsInput,
    output=CanceledRefunds,
    read_only=False,
    destructive=True,
    idempotent=True,
    open_world=True,
    preview=preview_cancel_refunds,
    confirm=ALWAYS,
)
async def cancel_refunds(call: CallContext, args: CancelRefundsInput):
    """Cancel pending refunds (status to_issue) so the money is NOT returned: the given
    refund_ids, or all_pending. IRREVERSIBLE: a canceled refund cannot be issued again
    through the Core API. Pelcro queues the cancellation and runs it shortly after (not at
    once); refunds already issued or canceled are left as they are. Confirm with the user
    first.
    """
    request = args.request()
    if args.all_pending and (ids := confirmed_ids(call)) is not None:
        request = cancel_request(args.site_id, ids)  # what the person said yes to, no more
    response = await send(
        call,
        request,
        what="refunds",
        check="see their status with list_refunds (canceled, or still to_issue while the cancellation is queued)",
    )
    result = parse(CanceledRefunds, response.data)
    listed = ", ".join(map(str, result.queued)) or "none"
    return structured_result(result, f"Cancellation queued on site {args.site_id} for refund(s): {listed}.")
