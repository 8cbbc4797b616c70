"""Charge tools: list, get, create offline (Core API /charges, CORE_API.md §8.7)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from mcp_bridge.core.calls import core_api
from mcp_bridge.core.results import money, object_result, page_result
from mcp_bridge.core.shapes import PAYMENT_CATEGORIES, CoreMetadata, CoreObject, PaymentCategory, Timestamp
from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.registry import tool
from mcp_bridge.runtime.schemas import Currency, ListInput, Page, SiteInput, id_field
from mcp_bridge.runtime.writes import ALWAYS


class Charge(CoreObject):
    """A charge (a payment), CORE_API.md §8.7; amounts in cents."""

    id: int
    amount: int = Field(description="Cents (minor units).")
    status: str = Field(description="succeeded, failed or pending.")
    invoice_id: int | None = None
    customer_id: int | None = None
    currency: str | None = None
    amount_refunded: int | None = Field(None, description="Cents.")
    description: str | None = None
    paid: bool | None = None
    refunded: bool | None = None
    offline: bool | None = Field(None, description="True for payments recorded by hand (cheque, wire, cash...).")
    reference: str | None = None
    payment_category: str | None = Field(
        None, description='Offline payments: "2" check, "3" wire, "4" transfer, "5" external, "6" cash.'
    )
    statement_descriptor: str | None = None
    offline_entered_by: int | None = None
    metadata: CoreMetadata = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None
    deleted_at: Timestamp | None = None


class ChargeIdInput(SiteInput):
    charge_id: int = id_field("charge")


class CreateOfflineChargeInput(SiteInput):
    customer_id: int = id_field("customer")
    amount: int = Field(ge=1, le=2_147_483_647, description="Amount received, in cents (minor units).")
    currency: Currency
    reference: str = Field(min_length=1, max_length=255, description="Your record of it, e.g. the cheque number.")
    payment_category: PaymentCategory | None = Field(
        None, description="How it was paid: check, wire, transfer, external (another system) or cash."
    )
    invoice_id: int | None = Field(
        None,
        ge=1,
        description="An open or past_due invoice this payment pays; amount must then equal its "
        "amount_remaining. Leave out to credit the customer's balance.",
    )

    def body(self) -> dict[str, Any]:
        body = self.model_dump(exclude={"site_id", "payment_category"}, exclude_none=True)
        if self.payment_category:
            body["payment_category"] = PAYMENT_CATEGORIES[self.payment_category]
        return body


def _check_offline_charge(args: CreateOfflineChargeInput) -> str:
    if args.invoice_id:
        return f"read invoice {args.invoice_id} with get_invoice to see whether it is paid"
    return f"read customer {args.customer_id} with get_customer to see whether their balance grew by {args.amount}"


@tool(
    "list_charges",
    title="List charges",
    input=ListInput,
    output=Page[Charge],
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
)
async def list_charges(call: CallContext, args: ListInput):
    """List a site's charges (payments), a page at a time, in id order. Pelcro documents no
    sorting or filtering for charges, so this tool CANNOT find one customer's charges:
    do not page through everything for that; tell the user it is not possible through
    the Core API (an invoice's payment shows on the invoice). Amounts in cents; `offline`
    marks payments recorded by hand; times ISO 8601 UTC.
    """
    response = await core_api(call, "GET", "/charges", args.site_id, what="charges", params=args.list_query())
    return page_result(response, Charge, "charge", args.site_id)


@tool(
    "get_charge",
    title="Get a charge",
    input=ChargeIdInput,
    output=Charge,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
)
async def get_charge(call: CallContext, args: ChargeIdInput):
    """Get one charge (payment) by id: amount and amount_refunded in cents, status
    (succeeded, failed, pending), the invoice it paid, and for offline payments the
    reference and payment_category."""
    response = await core_api(call, "GET", f"/charges/{args.charge_id}", args.site_id, what=f"charge {args.charge_id}")
    return object_result(
        response,
        Charge,
        lambda c: f"Charge {c.id} on site {args.site_id}: {money(c.amount, c.currency)}, {c.status}.",
    )


@tool(
    "create_offline_charge",
    title="Record an offline charge",
    input=CreateOfflineChargeInput,
    output=Charge,
    read_only=False,
    destructive=False,
    idempotent=False,
    open_world=True,
    confirm=ALWAYS,
)
async def create_offline_charge(call: CallContext, args: CreateOfflineChargeInput):
    """Record money a customer paid outside Pelcro (cheque, wire, transfer, another system,
    cash) as a paid offline charge, with your reference. With invoice_id it pays that open
    or past_due invoice (amount must equal its amount_remaining); without, the amount is
    credited to the customer's balance (apply_invoice_balance can use it later). The
    customer's currency becomes the charge's. `amount` is in cents. Each call records a new
    payment: do not repeat a call that succeeded.
    """
    response = await core_api(
        call,
        "POST",
        "/charges",
        args.site_id,
        what="the new charge",
        json_body=args.body(),
        check=_check_offline_charge(args),
    )
    return object_result(
        response,
        Charge,
        lambda c: (
            f"Recorded offline charge {c.id} on site {args.site_id}: {money(c.amount, c.currency)}"
            + (f" paying invoice {c.invoice_id}." if c.invoice_id else " credited to the customer's balance.")
        ),
    )
