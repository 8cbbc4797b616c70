"""Invoice tools: list, get, create, update, pay offline, void, mark uncollectible (/invoices)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any, Literal

from pydantic import Field, model_validator

from mcp_bridge.core.calls import core_api
from mcp_bridge.core.results import money, object_result, page_result
from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.registry import tool
from mcp_bridge.runtime.schemas import (
    Cents,
    Currency,
    ListInput,
    Metadata,
    Page,
    SiteInput,
    Timestamp,
    ToolInput,
    UpstreamObject,
    eq_filter,
    id_field,
)

InvoiceStatus = Literal["draft", "open", "past_due", "paid", "void", "uncollectible"]

# --- Shapes ------------------------------------------------------------------------------


class LineItem(UpstreamObject):
    description: str | None = None
    unit_price: int | None = Field(None, description="Cents.")
    quantity: int | None = None
    amount: int | None = Field(None, description="unit_price × quantity, in cents.")


class Invoice(UpstreamObject):
    id: int
    customer_id: int | None = None
    subscription_id: int | None = None
    status: str
    currency: str | None = None
    line_items: list[LineItem] | None = None
    total: int | None = Field(None, description="Cents.")
    amount_due: int | None = Field(None, description="Cents.")
    amount_paid: int | None = Field(None, description="Cents.")
    amount_remaining: int | None = Field(None, description="Cents still owed.")
    due_date: Timestamp = None
    billing_reason: str | None = None
    metadata: dict[str, Any] | None = None
    created_at: Timestamp = None
    updated_at: Timestamp = None
    finalized_at: Timestamp = Field(None, description="When it became open.")
    paid_at: Timestamp = None
    voided_at: Timestamp = None
    marked_uncollectible_at: Timestamp = None


class LineItemInput(ToolInput):
    description: str = Field(min_length=1, max_length=255)
    unit_price: Cents = Field(description="Price of one unit in cents (minor units): 1999 means 19.99.")
    quantity: int = Field(1, ge=1, le=10_000)


class ListInvoicesInput(ListInput):
    sort: Literal["id", "-id", "status", "-status", "created_at", "-created_at"] | None = Field(
        None, description="Sort field; prefix with - for descending. Default: id."
    )
    status: InvoiceStatus | None = Field(None, description="Only invoices in this state.")


class InvoiceIdInput(SiteInput):
    invoice_id: int = id_field("invoice")


class CreateInvoiceInput(SiteInput):
    customer_id: int = id_field("customer")
    currency: Currency
    line_items: list[LineItemInput] | None = Field(
        None, min_length=1, max_length=100, description="What is billed; the total is their sum. Or give total."
    )
    total: int | None = Field(None, ge=1, le=2_147_483_647, description="Total in cents, when there are no line items.")
    due_date: date | None = Field(None, description="Date payment is due (YYYY-MM-DD, UTC).")
    status: Literal["draft", "open"] = Field(
        "draft", description="draft (not yet owed; the default) or open (final and owed at once)."
    )
    subscription_id: int | None = Field(None, ge=1, description="The subscription this invoice bills, if any.")

    @model_validator(mode="after")
    def _lines_or_total(self) -> CreateInvoiceInput:
        if (self.line_items is None) == (self.total is None):
            raise ValueError("give either line_items or total (exactly one of them)")
        return self

    def body(self) -> dict[str, Any]:
        body = self.model_dump(mode="json", exclude={"site_id", "due_date"}, exclude_none=True)
        if self.due_date is not None:  # the Core API takes Unix seconds
            body["due_date"] = int(datetime.combine(self.due_date, time(), tzinfo=UTC).timestamp())
        return body


class UpdateInvoiceInput(SiteInput):
    invoice_id: int = id_field("invoice")
    metadata: Metadata = Field(description="Merged into the invoice's metadata (the only thing an update changes).")

    def body(self) -> dict[str, Any]:
        return {"metadata": self.metadata}  # kept whole: a null value in it removes that key


class PayInvoiceOfflineInput(SiteInput):
    invoice_id: int = id_field("invoice")
    reference: str = Field(
        min_length=1, max_length=255, description="Your record of the payment, e.g. the cheque or wire number."
    )
    category: Literal[2, 3, 4, 5, 6] = Field(
        description="How it was paid: 2 check, 3 wire, 4 bank transfer, 5 external system, 6 cash."
    )

    def body(self) -> dict[str, Any]:
        return {"reference": self.reference, "payment_category": str(self.category)}


def _invoice_line(verb: str, site_id: int):
    def summary(invoice: Invoice) -> str:
        return (
            f"{verb} invoice {invoice.id} on site {site_id}: {invoice.status}, total "
            f"{money(invoice.total, invoice.currency)}, remaining {money(invoice.amount_remaining, invoice.currency)}."
        )

    return summary


# --- Tools -------------------------------------------------------------------------------

@tool(
    "list_invoices", title="List invoices", input=ListInvoicesInput, output=Page[Invoice],
    read_only=True, destructive=False, idempotent=True, open_world=True,
)
async def list_invoices(call: CallContext, args: ListInvoicesInput):
    """List a site's invoices, a page at a time; filter by status, sort by id, status or
    created_at (prefix - for descending). Amounts are in cents. The Core API cannot list
    one customer's invoices.

    States: draft (being prepared, editable, not owed), open (final and owed), paid, void
    (canceled, nothing owed), uncollectible (written off as bad debt).
    """
    query = args.list_query() | eq_filter(status=args.status)
    response = await core_api(call, "GET", "/invoices", args.site_id, what="invoices", params=query)
    return page_result(response, Invoice, "invoice", args.site_id)


@tool(
    "get_invoice", title="Get an invoice", input=InvoiceIdInput, output=Invoice,
    read_only=True, destructive=False, idempotent=True, open_world=True,
)
async def get_invoice(call: CallContext, args: InvoiceIdInput):
    """Get one invoice by id: status, line items and amounts in cents (total, amount_due,
    amount_paid, amount_remaining).

    States: draft (editable, not owed), open (final and owed), paid, void (canceled,
    nothing owed), uncollectible (written off as bad debt).
    """
    response = await core_api(call, "GET", f"/invoices/{args.invoice_id}", args.site_id, what=f"invoice {args.invoice_id}")
    return object_result(response, Invoice, _invoice_line("Found", args.site_id))


@tool(
    "create_invoice", title="Create an invoice", input=CreateInvoiceInput, output=Invoice,
    read_only=False, destructive=False, idempotent=False, open_world=True,
)
async def create_invoice(call: CallContext, args: CreateInvoiceInput):
    """Create an invoice for a customer. Give line_items (description, unit_price in cents,
    quantity) or a total in cents, and the currency (e.g. usd).

    status draft (default) keeps it not yet owed; status open finalizes it so the customer
    owes it at once. Amounts cannot be edited later. Each call creates a new invoice.
    """
    response = await core_api(
        call, "POST", "/invoices", args.site_id, what="the new invoice", json_body=args.body(),
        check="look for it with list_invoices (sort -created_at) to see whether it was created",
    )
    return object_result(response, Invoice, _invoice_line("Created", args.site_id))


@tool(
    "update_invoice", title="Update an invoice", input=UpdateInvoiceInput, output=Invoice,
    read_only=False, destructive=False, idempotent=True, open_world=True,
)
async def update_invoice(call: CallContext, args: UpdateInvoiceInput):
    """Update an invoice's metadata (merged: a key set to null is removed). The Core API
    changes nothing else on an existing invoice.
    """
    response = await core_api(
        call, "PUT", f"/invoices/{args.invoice_id}", args.site_id, what=f"invoice {args.invoice_id}", json_body=args.body(),
        check=f"read invoice {args.invoice_id} with get_invoice to see whether it changed",
    )
    return object_result(response, Invoice, _invoice_line("Updated", args.site_id))


@tool(
    "pay_invoice_offline", title="Record an offline payment", input=PayInvoiceOfflineInput, output=Invoice,
    read_only=False, destructive=False, idempotent=False, open_world=True,
)
async def pay_invoice_offline(call: CallContext, args: PayInvoiceOfflineInput):
    """Mark an open invoice paid with money received outside Pelcro (cheque, wire, bank
    transfer, external system, cash). It pays the WHOLE remaining amount and records an
    offline charge; give your reference (e.g. the cheque number). Only open or past_due
    invoices can be paid; draft, paid, void and uncollectible ones are refused.
    """
    response = await core_api(
        call, "POST", f"/invoices/{args.invoice_id}/pay_offline", args.site_id, what=f"invoice {args.invoice_id}",
        json_body=args.body(), check=f"read invoice {args.invoice_id} with get_invoice to see whether it is paid",
    )
    return object_result(response, Invoice, _invoice_line("Paid", args.site_id))


@tool(
    "void_invoice", title="Void an invoice", input=InvoiceIdInput, output=Invoice,
    read_only=False, destructive=True, idempotent=True, open_world=True,
)
async def void_invoice(call: CallContext, args: InvoiceIdInput):
    """Void an invoice: it is canceled and nothing is owed. IRREVERSIBLE: a void invoice
    cannot be reopened or paid. Allowed for draft and open invoices with nothing paid yet;
    refused if the invoice is already void, paid, uncollectible or partly paid. Confirm
    with the user first.
    """
    response = await core_api(
        call, "POST", f"/invoices/{args.invoice_id}/void", args.site_id, what=f"invoice {args.invoice_id}",
        check=f"read invoice {args.invoice_id} with get_invoice to see whether it is void",
    )
    return object_result(response, Invoice, _invoice_line("Voided", args.site_id))


@tool(
    "mark_invoice_uncollectible", title="Mark an invoice uncollectible", input=InvoiceIdInput, output=Invoice,
    read_only=False, destructive=True, idempotent=True, open_world=True,
)
async def mark_invoice_uncollectible(call: CallContext, args: InvoiceIdInput):
    """Write an open or past_due invoice off as bad debt (status uncollectible); any other
    state is refused. This is meant to be final: treat it as
    irreversible and confirm with the user first.
    """
    response = await core_api(
        call, "POST", f"/invoices/{args.invoice_id}/uncollectible", args.site_id, what=f"invoice {args.invoice_id}",
        check=f"read invoice {args.invoice_id} with get_invoice to see whether it is uncollectible",
    )
    return object_result(response, Invoice, _invoice_line("Marked uncollectible", args.site_id))
