"""Charge tools: list, get, create offline (Core API /charges, CORE_API.md §8.7)."""

from __future__ import annotations

from pydantic import Field

from mcp_bridge.core.calls import core_api
from mcp_bridge.core.customers import Customer
from mcp_bridge.core.invoices import PAYABLE_RULE, Invoice, check_currency, payment_refusal, the_invoice
from mcp_bridge.core.previews import (
    IRREVERSIBLE,
    Verdict,
    changes,
    core_request,
    customer_label,
    invoice_label,
    missing,
    preview,
    read_customer,
    read_state,
    send,
    where,
)
from mcp_bridge.core.results import money, object_result, page_result, parse
from mcp_bridge.core.shapes import PAYMENT_CATEGORIES, CoreMetadata, CoreObject, PaymentCategory, Timestamp
from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.registry import tool
from mcp_bridge.runtime.schemas import Currency, ListInput, Page, SiteInput, id_field
from mcp_bridge.runtime.writes import ALWAYS, UpstreamRequest, WritePreview


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

    def request(self) -> UpstreamRequest:
        body = self.model_dump(exclude={"site_id", "payment_category"}, exclude_none=True)
        if self.payment_category:
            body["payment_category"] = PAYMENT_CATEGORIES[self.payment_category]
        return core_request("POST", "/charges", self.site_id, body=body)


def _check_offline_charge(args: CreateOfflineChargeInput) -> str:
    if args.invoice_id:
        return f"read invoice {args.invoice_id} with get_invoice to see whether it is paid"
    return f"read customer {args.customer_id} with get_customer to see whether their balance grew by {args.amount}"


CHARGE_RULE = "CORE_API.md §8.7 (create offline charge)"


async def preview_create_offline_charge(call: CallContext, args: CreateOfflineChargeInput) -> WritePreview:
    """Reads what the charge pays (one GET): with `invoice_id`, the invoice (the customer's,
    in this currency, open or past_due, and `amount` equal to its amount_remaining); without,
    the customer (they exist and take the currency). What that read cannot show is named
    in `not_checked`."""
    request = args.request()
    amount = money(args.amount, args.currency)
    how = f"offline {args.payment_category} payment" if args.payment_category else "offline payment"
    paid = f"record an {how} (reference {args.reference!r}) of {amount}"
    site = where(call, args.site_id)
    if args.invoice_id is None:
        what = f"customer {args.customer_id}"
        data = await read_customer(call, args.site_id, args.customer_id)
        if data is None:
            return missing("create_offline_charge", request, call, args.site_id, what, paid + " from")
        customer = parse(Customer, data)
        verdict = Verdict()
        check_currency(verdict, customer, args.currency, CHARGE_RULE)
        balance = customer.balance or 0
        return preview(
            "create_offline_charge",
            request,
            verdict,
            allowed=f"Customer {customer.id} exists and may be credited in {args.currency.upper()}.",
            rule=CHARGE_RULE,
            changed=changes(
                ("charge.amount", None, args.amount),
                ("customer.balance", balance, balance + args.amount),
                ("customer.currency", customer.currency, args.currency),
            ),
            summary=f"On {site}: {paid} from {customer_label(data, customer.id)}, credited to their balance "
            f"({money(balance, customer.currency or args.currency)} now). {IRREVERSIBLE}",
            irreversible=True,
        )
    what = f"invoice {args.invoice_id}"
    data = await read_state(call, f"/invoices/{args.invoice_id}", args.site_id, what=what)
    if data is None:
        return missing("create_offline_charge", request, call, args.site_id, what, paid + " paying")
    invoice = parse(Invoice, data)
    verdict = Verdict()
    if invoice.customer_id != args.customer_id:
        verdict.refuse(
            f"{the_invoice(invoice)} belongs to customer {invoice.customer_id}, not to customer {args.customer_id}; "
            "a charge pays only its own customer's invoice.",
            f"{CHARGE_RULE}: the invoice is the customer's",
        )
    if invoice.currency != args.currency:
        verdict.refuse(
            f"The currency must be the invoice's ({(invoice.currency or '?').upper()}), not {args.currency.upper()}.",
            f"{CHARGE_RULE}: the charge is in the invoice's currency",
        )
    if refusal := payment_refusal(invoice):
        verdict.refuse(refusal, PAYABLE_RULE)
    if args.amount != invoice.amount_remaining:
        verdict.refuse(
            f"The amount ({amount}) must equal {invoice_label(invoice.id, invoice.number)}'s remaining amount "
            f"({money(invoice.amount_remaining, invoice.currency)}).",
            f"{CHARGE_RULE}: paying an invoice, the amount equals its amount_remaining",
        )
    verdict.unchecked(
        f"that customer {args.customer_id} was not deleted and holds no balance in another currency (only the "
        "invoice was read)"
    )
    return preview(
        "create_offline_charge",
        request,
        verdict,
        allowed=f"{the_invoice(invoice)} of customer {args.customer_id} is {invoice.status} and {amount} is exactly "
        "what it still owes (paying an invoice, the amount must equal its amount_remaining).",
        rule=CHARGE_RULE,
        changed=changes(
            ("charge.amount", None, args.amount),
            ("invoice.status", invoice.status, "paid"),
            ("invoice.paid", invoice.paid, True),
            ("invoice.amount_paid", invoice.amount_paid, invoice.amount_due),
            ("invoice.amount_remaining", invoice.amount_remaining, 0),
        ),
        summary=f"On {site}: {paid} from {customer_label(None, args.customer_id)}, paying "
        f"{invoice_label(invoice.id, invoice.number)} in full. {IRREVERSIBLE}",
        irreversible=True,
    )


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
    preview=preview_create_offline_charge,
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
    response = await send(
        call,
        args.request(),
        what="the new charge",
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
