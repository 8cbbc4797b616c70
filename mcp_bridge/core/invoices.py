"""Invoice tools: list, get, create, update (metadata), pay offline, void, mark uncollectible,
apply the customer's balance (Core API /invoices, CORE_API.md §8.4)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from mcp_bridge.core.calls import core_api
from mcp_bridge.core.results import money, object_result, page_result
from mcp_bridge.core.shapes import (
    HAS_METADATA_KEY,
    MATCH_FIELD,
    METADATA_FILTER,
    PAYMENT_CATEGORIES,
    CoreMetadata,
    CoreObject,
    FilterQuery,
    FilterText,
    IdList,
    Match,
    MetadataKey,
    PaymentCategory,
    Timestamp,
    UnixTimeInput,
    embedded,
    expand_param,
    sort_field,
)
from mcp_bridge.core.subscriptions import Subscription
from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.registry import tool
from mcp_bridge.runtime.schemas import Cents, Currency, ListInput, Metadata, Page, SiteInput, ToolInput, id_field
from mcp_bridge.runtime.writes import ALWAYS

InvoiceStatus = Literal["draft", "open", "past_due", "paid", "void", "uncollectible"]

# --- Shapes ------------------------------------------------------------------------------


class LineItem(CoreObject):
    description: str | None = None
    unit_price: int | None = Field(None, description="Cents.")
    quantity: int | None = None
    amount: int | None = Field(None, description="unit_price × quantity, in cents.")
    tax_name: str | None = None
    tax_rate: float | None = None


class Invoice(CoreObject):
    """An invoice (CORE_API.md §8.4); amounts in cents (minor units)."""

    id: int
    status: str
    customer_id: int | None = None
    subscription_id: int | embedded(Subscription, "the subscription it bills", or_id=True) | None = None
    number: str | None = None
    currency: str | None = None
    line_items: list[LineItem] | None = None
    subtotal: int | None = Field(None, description="Cents.")
    total: int | None = Field(None, description="Cents.")
    amount_due: int | None = Field(None, description="Cents.")
    amount_paid: int | None = Field(None, description="Cents.")
    amount_remaining: int | None = Field(None, description="Cents still owed.")
    ending_balance: int | None = None
    paid: bool | None = None
    billing: str | None = Field(None, description="charge_automatically or send_invoice.")
    billing_reason: str | None = None
    description: str | None = None
    auto_advance: bool | None = None
    is_imported: bool | None = None
    is_advance: bool | None = Field(None, description="An advance invoice (it cannot be voided).")
    old_provider_id: str | None = None
    hosted_invoice_url: str | None = None
    invoice_pdf: str | None = None
    payment_link: str | None = Field(None, description="Where the customer can pay it (open / past_due only).")
    metadata: CoreMetadata = None
    due_date: Timestamp | None = None
    period_start: Timestamp | None = None
    period_end: Timestamp | None = None
    created_at: Timestamp | None = None
    finalized_at: Timestamp | None = Field(None, description="When it became open.")
    paid_at: Timestamp | None = None
    voided_at: Timestamp | None = None
    marked_uncollectible_at: Timestamp | None = None
    updated_at: Timestamp | None = None


class LineItemInput(ToolInput):
    description: str = Field(min_length=1, max_length=255)
    unit_price: Cents = Field(description="Price of one unit in cents (minor units): 1999 means 19.99.")
    quantity: int = Field(ge=1, le=100_000)
    tax_name: str | None = Field(None, min_length=1, max_length=100, description="With tax_rate, or leave both out.")
    tax_rate: float | None = Field(None, ge=0, le=100, description="Percent, e.g. 13 for 13%.")

    @model_validator(mode="after")
    def _tax_pair(self) -> LineItemInput:
        if (self.tax_name is None) != (self.tax_rate is None):
            raise ValueError("give tax_name and tax_rate together, or neither")
        return self


class ListInvoicesInput(ListInput):
    sort: sort_field(("created_at", "id", "status")) | None = None
    ids: IdList | None = Field(None, description="Only invoices with these ids.")
    status_in: list[InvoiceStatus] | None = Field(
        None, min_length=1, max_length=6, description='Only invoices in one of these states, e.g. ["open", "past_due"].'
    )
    metadata: dict[MetadataKey, FilterText] | None = METADATA_FILTER
    has_metadata_key: str | None = HAS_METADATA_KEY
    match: Match = MATCH_FIELD

    def query(self) -> dict[str, Any]:
        filters = (
            FilterQuery(self.match)
            .eq("id", *(self.ids or []))
            .eq("status", *(self.status_in or []))
            .metadata(self.metadata, self.has_metadata_key)
        )
        return self.list_query() | filters.params


class InvoiceIdInput(SiteInput):
    invoice_id: int = id_field("invoice")


class GetInvoiceInput(InvoiceIdInput):
    expand: list[Literal["subscription"]] | None = Field(
        None, max_length=1, description='["subscription"] embeds the subscription it bills.'
    )


class CreateInvoiceInput(SiteInput):
    customer_id: int = id_field("customer")
    currency: Currency
    line_items: list[LineItemInput] | None = Field(
        None, min_length=1, max_length=100, description="What is billed; the total is their sum. Or give total."
    )
    total: int | None = Field(None, ge=1, le=2_147_483_647, description="Total in cents, when there are no line items.")
    status: Literal["draft", "open"] = Field(
        "draft", description="draft (default: not yet owed) or open (final and owed at once)."
    )
    subscription_id: int | None = Field(None, ge=1, description="The subscription this invoice bills, if any.")
    period_start: UnixTimeInput | None = None
    period_end: UnixTimeInput | None = None
    due_date: UnixTimeInput | None = Field(None, description="When payment is due (not before period_start).")

    @model_validator(mode="after")
    def _check(self) -> CreateInvoiceInput:
        if (self.line_items is None) == (self.total is None):
            raise ValueError("give either line_items or total (exactly one of them)")
        if self.period_start and self.period_end and self.period_start > self.period_end:
            raise ValueError("period_start must not be after period_end")
        if self.period_start and self.due_date and self.due_date < self.period_start:
            raise ValueError("due_date must not be before period_start")
        return self

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"site_id"}, exclude_none=True)


class UpdateInvoiceInput(SiteInput):
    invoice_id: int = id_field("invoice")
    metadata: Metadata

    def body(self) -> dict[str, Any]:
        return {"metadata": self.metadata}  # whole: a null value in it removes that key


class PayInvoiceOfflineInput(SiteInput):
    invoice_id: int = id_field("invoice")
    reference: str = Field(
        min_length=1, max_length=255, description="Your record of the payment, e.g. the cheque or wire number."
    )
    payment_category: PaymentCategory = Field(
        description="How it was paid: check, wire, transfer, external (another system) or cash."
    )

    def body(self) -> dict[str, Any]:
        return {"reference": self.reference, "payment_category": PAYMENT_CATEGORIES[self.payment_category]}


def _invoice_line(verb: str, site_id: int):
    def summary(invoice: Invoice) -> str:
        return (
            f"{verb} invoice {invoice.id} on site {site_id}: {invoice.status}, total "
            f"{money(invoice.total, invoice.currency)}, remaining {money(invoice.amount_remaining, invoice.currency)}."
        )

    return summary


# --- Tools -------------------------------------------------------------------------------


@tool(
    "list_invoices",
    title="List invoices",
    input=ListInvoicesInput,
    output=Page[Invoice],
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
)
async def list_invoices(call: CallContext, args: ListInvoicesInput):
    """List a site's invoices, a page at a time. Filters (Pelcro's documented ones): ids,
    status_in (one or more states), metadata ({"key": "value"}, exact) and
    has_metadata_key; match "any" ORs them. Sort by created_at, id or status (prefix - for
    descending). Amounts in cents; times ISO 8601 UTC.

    Pelcro's Core API CANNOT list one customer's invoices (no customer filter exists):
    do not page through everything to find them. A subscription's latest invoice is in
    get_subscription (expand latest_invoice); otherwise tell the user it is not possible.

    States: draft (being prepared, not owed), open (final and owed), past_due (owed,
    late), paid, void (canceled, nothing owed), uncollectible (written off; final).
    """
    response = await core_api(call, "GET", "/invoices", args.site_id, what="invoices", params=args.query())
    return page_result(response, Invoice, "invoice", args.site_id)


@tool(
    "get_invoice",
    title="Get an invoice",
    input=GetInvoiceInput,
    output=Invoice,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
)
async def get_invoice(call: CallContext, args: GetInvoiceInput):
    """Get one invoice by id: status, line items, amounts in cents (total, amount_due,
    amount_paid, amount_remaining), due date, payment_link while it is owed.

    States: draft (being prepared, not owed), open (final and owed), past_due (owed,
    late), paid, void (canceled, nothing owed), uncollectible (written off; final).
    """
    response = await core_api(
        call,
        "GET",
        f"/invoices/{args.invoice_id}",
        args.site_id,
        what=f"invoice {args.invoice_id}",
        params=expand_param(args.expand),
    )
    return object_result(response, Invoice, _invoice_line("Found", args.site_id))


@tool(
    "create_invoice",
    title="Create an invoice",
    input=CreateInvoiceInput,
    output=Invoice,
    read_only=False,
    destructive=False,
    idempotent=False,
    open_world=True,
)
async def create_invoice(call: CallContext, args: CreateInvoiceInput):
    """Create an invoice for a customer: give line_items (description, unit_price in cents,
    quantity, optional tax_name + tax_rate) or a total in cents, and the currency (e.g.
    usd). status draft (default) is not yet owed; open makes it owed at once. Times are
    Unix seconds or ISO 8601. Only its metadata can be changed afterwards. Each call
    creates a new invoice.
    """
    response = await core_api(
        call,
        "POST",
        "/invoices",
        args.site_id,
        what="the new invoice",
        json_body=args.body(),
        check="list_invoices sorted by -created_at shows the newest invoices: see whether it "
        f"is there for customer {args.customer_id}",
    )
    return object_result(response, Invoice, _invoice_line("Created", args.site_id))


@tool(
    "update_invoice",
    title="Update an invoice's metadata",
    input=UpdateInvoiceInput,
    output=Invoice,
    read_only=False,
    destructive=False,
    idempotent=True,
    open_world=True,
)
async def update_invoice(call: CallContext, args: UpdateInvoiceInput):
    """Change an invoice's metadata (merged: keys you give are set, a key set to null is
    removed, others stay). Pelcro allows nothing else to change on an invoice: amounts,
    lines and dates are fixed once it is created.
    """
    response = await core_api(
        call,
        "PUT",
        f"/invoices/{args.invoice_id}",
        args.site_id,
        what=f"invoice {args.invoice_id}",
        json_body=args.body(),
        check=f"read invoice {args.invoice_id} with get_invoice to see whether it changed",
    )
    return object_result(response, Invoice, _invoice_line("Updated", args.site_id))


@tool(
    "pay_invoice_offline",
    title="Record an offline payment",
    input=PayInvoiceOfflineInput,
    output=Invoice,
    read_only=False,
    destructive=False,
    idempotent=False,
    open_world=True,
    confirm=ALWAYS,
)
async def pay_invoice_offline(call: CallContext, args: PayInvoiceOfflineInput):
    """Mark an open or past_due invoice paid with money received outside Pelcro. It pays
    the WHOLE remaining amount; give your reference (e.g. the cheque number) and the
    payment_category (check, wire, transfer, external, cash). Refused for other states and
    for invoices of subscriptions that were forcefully canceled.
    """
    response = await core_api(
        call,
        "POST",
        f"/invoices/{args.invoice_id}/pay_offline",
        args.site_id,
        what=f"invoice {args.invoice_id}",
        json_body=args.body(),
        check=f"read invoice {args.invoice_id} with get_invoice to see whether it is paid",
    )
    return object_result(response, Invoice, _invoice_line("Paid", args.site_id))


@tool(
    "void_invoice",
    title="Void an invoice",
    input=InvoiceIdInput,
    output=Invoice,
    read_only=False,
    destructive=True,
    idempotent=True,
    open_world=True,
    confirm=ALWAYS,
)
async def void_invoice(call: CallContext, args: InvoiceIdInput):
    """Void an unpaid invoice: it is canceled and nothing is owed. IRREVERSIBLE. Refused for
    advance invoices and for invoices already void, paid, uncollectible or partly paid.
    Confirm with the user first.
    """
    response = await core_api(
        call,
        "POST",
        f"/invoices/{args.invoice_id}/void",
        args.site_id,
        what=f"invoice {args.invoice_id}",
        check=f"read invoice {args.invoice_id} with get_invoice to see whether it is void",
    )
    return object_result(response, Invoice, _invoice_line("Voided", args.site_id))


@tool(
    "mark_invoice_uncollectible",
    title="Mark an invoice uncollectible",
    input=InvoiceIdInput,
    output=Invoice,
    read_only=False,
    destructive=True,
    idempotent=True,
    open_world=True,
    confirm=ALWAYS,
)
async def mark_invoice_uncollectible(call: CallContext, args: InvoiceIdInput):
    """Write an open or past_due invoice off as bad debt (status uncollectible).
    IRREVERSIBLE and final: it can never be voided, paid or reopened afterwards. Other
    states are refused. Confirm with the user first.
    """
    response = await core_api(
        call,
        "POST",
        f"/invoices/{args.invoice_id}/uncollectible",
        args.site_id,
        what=f"invoice {args.invoice_id}",
        check=f"read invoice {args.invoice_id} with get_invoice to see whether it is uncollectible",
    )
    return object_result(response, Invoice, _invoice_line("Marked uncollectible", args.site_id))


@tool(
    "apply_invoice_balance",
    title="Pay an invoice from the customer's balance",
    input=InvoiceIdInput,
    output=Invoice,
    read_only=False,
    destructive=False,
    idempotent=False,
    open_world=True,
    confirm=ALWAYS,
)
async def apply_invoice_balance(call: CallContext, args: InvoiceIdInput):
    """Use the customer's credit balance to pay an open or past_due invoice: in full (it
    becomes paid) or, if the balance is smaller, in part (amount_remaining shrinks). The
    customer's balance drops by the amount applied. Refused when the customer has no credit
    or the invoice is paid, void or uncollectible.
    """
    response = await core_api(
        call,
        "POST",
        f"/invoices/{args.invoice_id}/apply_balance",
        args.site_id,
        what=f"invoice {args.invoice_id}",
        check=f"read invoice {args.invoice_id} with get_invoice to see whether its amount_remaining shrank",
    )
    return object_result(response, Invoice, _invoice_line("Applied the balance to", args.site_id))
