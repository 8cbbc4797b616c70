"""Refund tools: list, cancel pending (Core API /refunds, CORE_API.md §8.8). Core cannot
create refunds."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from mcp_bridge.core.calls import core_api
from mcp_bridge.core.charges import Charge
from mcp_bridge.core.results import page_result, parse, structured_result
from mcp_bridge.core.shapes import CoreObject, IdList, Timestamp, embedded
from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.registry import tool
from mcp_bridge.runtime.schemas import ListInput, Page, SiteInput
from mcp_bridge.runtime.writes import ALWAYS


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
    all_pending: bool = Field(False, description="true: cancel EVERY pending refund of the account's site instead.")

    @model_validator(mode="after")
    def _which(self) -> CancelRefundsInput:
        if bool(self.refund_ids) == self.all_pending:
            raise ValueError("give refund_ids, or all_pending true (not both)")
        return self

    def body(self) -> dict[str, Any]:
        return {"refund_ids": "all" if self.all_pending else ",".join(map(str, self.refund_ids or []))}


class CanceledRefunds(CoreObject):
    queued: list[int] = Field(description="Refunds whose cancellation is queued (Pelcro runs it shortly).")


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
    confirm=ALWAYS,
)
async def cancel_refunds(call: CallContext, args: CancelRefundsInput):
    """Cancel pending refunds (status to_issue) so the money is NOT returned: the given
    refund_ids, or all_pending. IRREVERSIBLE: a canceled refund cannot be issued again
    through the Core API. Pelcro queues the cancellation and runs it shortly after (not at
    once); refunds already issued or canceled are left as they are. Confirm with the user
    first.
    """
    response = await core_api(
        call,
        "POST",
        "/refunds/cancelled",
        args.site_id,
        what="refunds",
        json_body=args.body(),
        check="see their status with list_refunds (canceled, or still to_issue while the cancellation is queued)",
    )
    result = parse(CanceledRefunds, response.data)
    listed = ", ".join(map(str, result.queued)) or "none"
    return structured_result(result, f"Cancellation queued on site {args.site_id} for refund(s): {listed}.")
