"""Charge tools: list, get, create offline (Core API /charges)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from mcp_bridge.core.calls import core_api
from mcp_bridge.core.results import money, object_result, page_result
from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.registry import tool
from mcp_bridge.runtime.schemas import Currency, ListInput, Page, SiteInput, Timestamp, UpstreamObject, id_field


class Charge(UpstreamObject):
    id: int
    customer_id: int | None = None
    invoice_id: int | None = None
    amount: int = Field(description="Cents (minor units).")
    amount_refunded: int | None = Field(None, description="Cents.")
    currency: str | None = None
    status: str = Field(description="succeeded, failed or pending.")
    paid: bool | None = None
    refunded: bool | None = None
    offline: bool | None = Field(None, description="True for payments recorded by hand (cheque, wire, cash...).")
    reference: str | None = None
    payment_category: str | int | None = Field(
        None, description="Offline payments: 2 check, 3 wire, 4 bank transfer, 5 external system, 6 cash."
    )
    failure_message: str | None = None
    created_at: Timestamp = None


class ListChargesInput(ListInput):
    """Charges have no documented sort or filter (CORE_API.md §8.7): id order only."""


class ChargeIdInput(SiteInput):
    charge_id: int = id_field("charge")


class CreateOfflineChargeInput(SiteInput):
    customer_id: int = id_field("customer")
    amount: int = Field(ge=1, le=2_147_483_647, description="Amount received, in cents (minor units).")
    currency: Currency
    reference: str = Field(min_length=1, max_length=255, description="Your record of it, e.g. the cheque number.")
    payment_category: Literal[2, 3, 4, 5, 6] = Field(
        description="How it was paid: 2 check, 3 wire, 4 bank transfer, 5 external system, 6 cash."
    )
    invoice_id: int | None = Field(None, ge=1, description="Invoice this payment pays; leave out to credit the balance.")

    def body(self) -> dict[str, Any]:
        body = self.model_dump(exclude={"site_id"}, exclude_none=True)
        body["payment_category"] = str(self.payment_category)  # the Core API's enum is a string
        return body


@tool(
    "list_charges", title="List charges", input=ListChargesInput, output=Page[Charge],
    read_only=True, destructive=False, idempotent=True, open_world=True,
)
async def list_charges(call: CallContext, args: ListChargesInput):
    """List a site's charges (payments), a page at a time, in id order (the Core API has no
    sort or filter on charges, so one customer's charges cannot be listed). Amounts are in
    cents; `offline` marks payments recorded by hand.
    """
    response = await core_api(call, "GET", "/charges", args.site_id, what="charges", params=args.list_query())
    return page_result(response, Charge, "charge", args.site_id)


@tool(
    "get_charge", title="Get a charge", input=ChargeIdInput, output=Charge,
    read_only=True, destructive=False, idempotent=True, open_world=True,
)
async def get_charge(call: CallContext, args: ChargeIdInput):
    """Get one charge (payment) by id: amount and amount_refunded in cents, currency,
    status (succeeded, failed, pending), the invoice it paid, and for offline payments the
    reference and payment_category."""
    response = await core_api(call, "GET", f"/charges/{args.charge_id}", args.site_id, what=f"charge {args.charge_id}")
    return object_result(
        response, Charge,
        lambda c: f"Charge {c.id} on site {args.site_id}: {money(c.amount, c.currency)}, {c.status}.",
    )


@tool(
    "create_offline_charge", title="Record an offline charge", input=CreateOfflineChargeInput, output=Charge,
    read_only=False, destructive=False, idempotent=False, open_world=True,
)
async def create_offline_charge(call: CallContext, args: CreateOfflineChargeInput):
    """Record money a customer paid outside Pelcro (cheque, wire, bank transfer, external
    system, cash) as a paid, succeeded, offline charge. With invoice_id it pays that
    invoice and amount must equal its amount_remaining; without, the amount is credited to
    the customer's balance. `amount` is in
    cents. Each call records a new payment, so do not repeat a call that succeeded.
    """
    response = await core_api(
        call, "POST", "/charges", args.site_id, what="the new charge", json_body=args.body(),
        check="look for it among the newest charges (the last page of list_charges) to see whether it was recorded",
    )
    return object_result(
        response, Charge,
        lambda c: f"Recorded offline charge {c.id} on site {args.site_id}: {money(c.amount, c.currency)}"
        + (f" paying invoice {c.invoice_id}." if c.invoice_id else " credited to the customer's balance."),
    )
