"""The subscriber's invoices, and paying one with a card already saved on the site
(OPEN_API.md §5.7).

The Open API has no invoice list: the invoices are in the customer resource (§3, §5.7), so
`list_my_invoices` reads that and pages nothing (there is nothing to page). Paying is
`POST /invoices/{id}/pay` with `source_id`, a payment method the subscriber saved on the
publication's site: the Open API would also take a gateway token, but money moves here only
with a saved card and card data never passes through the gateway (issue 14), so the tool
takes a payment method id and nothing else. It needs a person's confirmation (issue 15).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Literal

from pydantic import BaseModel, Field

from mcp_bridge.card_data import ADD_A_CARD
from mcp_bridge.open.calls import open_api, site_name, subscriber_of
from mcp_bridge.open.profile import read_customer
from mcp_bridge.open.shapes import Card, OpenObject, parse, result
from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.failures import before_retrying
from mcp_bridge.runtime.registry import tool
from mcp_bridge.runtime.results import ToolFailed
from mcp_bridge.runtime.schemas import ToolFailure, ToolInput, id_field
from mcp_bridge.runtime.values import Timestamp, money
from mcp_bridge.runtime.writes import ALWAYS, Change, UpstreamRequest, WritePreview

InvoiceStatus = Literal["draft", "open", "past_due", "paid", "void", "uncollectible"]
# Invoices Pelcro takes a payment for (OPEN_API.md §5.7: not paid, void or uncollectible;
# a draft is not owed yet).
PAYABLE = ("open", "past_due")
PAY_RULE = "OPEN_API.md §5.7"


# --- Shapes ------------------------------------------------------------------------------


class LineItem(OpenObject):
    description: str | None = None
    unit_price: int | None = Field(None, description="Cents.")
    quantity: int | None = None
    amount: int | None = Field(None, description="unit_price × quantity, in cents.")


class Invoice(OpenObject):
    """One of the subscriber's invoices; amounts in cents (minor units) of `currency`."""

    id: int
    number: str | None = None
    status: str = Field(
        description="draft (not owed yet), open (owed), past_due (owed, late), paid, void (canceled) or "
        "uncollectible (written off)."
    )
    currency: str | None = None
    description: str | None = None
    subscription_id: int | None = Field(None, description="The subscription it bills, if any.")
    line_items: list[LineItem] | None = None
    subtotal: int | None = Field(None, description="Cents.")
    total: int | None = Field(None, description="Cents.")
    amount_due: int | None = Field(None, description="Cents.")
    amount_paid: int | None = Field(None, description="Cents.")
    amount_remaining: int | None = Field(None, description="Cents still owed.")
    billing: str | None = Field(None, description="charge_automatically or send_invoice.")
    due_date: Timestamp | None = None
    period_start: Timestamp | None = None
    period_end: Timestamp | None = None
    created_at: Timestamp | None = None
    paid_at: Timestamp | None = None
    payment_link: str | None = Field(None, description="The publication's page to pay it (while owed).")
    hosted_invoice_url: str | None = None
    invoice_pdf: str | None = None


class Owed(BaseModel):
    currency: str
    amount: int = Field(description="Cents owed on open and past_due invoices.")
    invoices: int


class InvoiceList(BaseModel):
    """The subscriber's invoices, newest first."""

    site: str = Field(description="The publication, e.g. Acme Daily (site 14).")
    invoices: list[Invoice]
    total: int = Field(description="How many invoices are listed.")
    owed: list[Owed] = Field(description="What is owed now, per currency (open and past_due invoices).")


class InvoicePayment(BaseModel):
    """The outcome of paying an invoice."""

    paid: bool = Field(description="True when the invoice is now paid.")
    invoice: Invoice = Field(description="The invoice after the payment (amounts in cents).")
    payment_method: Card = Field(description="The saved card it was charged to.")
    next_step: str | None = Field(None, description="What the subscriber must still do, when not paid.")


# --- Inputs ------------------------------------------------------------------------------


class ListMyInvoicesInput(ToolInput):
    status_in: list[InvoiceStatus] | None = Field(
        None,
        min_length=1,
        max_length=6,
        description='Only invoices in one of these states, e.g. ["open", "past_due"] for what is owed.',
    )


class PayInvoiceInput(ToolInput):
    invoice_id: int = id_field("invoice")
    payment_method_id: int | None = Field(
        None,
        ge=1,
        le=2_147_483_647,
        description="A card already saved on the publication's site (list_my_payment_methods). "
        "Left out: the default payment method.",
    )


# --- Reading the customer resource ---------------------------------------------------------


def invoices_of(customer: dict) -> list[Invoice]:
    """The customer's invoices, newest first."""
    invoices = [parse(Invoice, item) for item in customer.get("invoices") or [] if isinstance(item, dict)]
    return sorted(invoices, key=lambda i: i.id, reverse=True)


def cards_of(customer: dict) -> list[Card]:
    return [parse(Card, item) for item in customer.get("sources") or [] if isinstance(item, dict)]


def default_card_id(customer: dict) -> int | None:
    default = customer.get("default_source")
    return default.get("id") if isinstance(default, dict) else None


def card_line(card: Card) -> str:
    return f"{card.brand or 'card'} ending {card.last4 or '????'}"


def invoice_name(invoice: Invoice) -> str:
    return f"invoice {invoice.number} (id {invoice.id})" if invoice.number else f"invoice {invoice.id}"


def owed(invoices: list[Invoice]) -> list[Owed]:
    totals: dict[str, list[int]] = defaultdict(list)
    for invoice in invoices:
        if invoice.status in PAYABLE and invoice.amount_remaining:
            totals[invoice.currency or ""].append(invoice.amount_remaining)
    return [Owed(currency=c, amount=sum(a), invoices=len(a)) for c, a in sorted(totals.items())]


# --- The rules of paying, on the current state -------------------------------------------------


class Verdict(BaseModel):
    """Whether paying is allowed on the customer resource's state, and with what."""

    allowed: bool
    reason: str
    invoice: Invoice | None = None
    card: Card | None = None


def pay_verdict(call: CallContext, customer: dict, args: PayInvoiceInput) -> Verdict:
    """The Open API's rules for `POST /invoices/{id}/pay` (OPEN_API.md §5.7), in its order:
    the invoice must be the subscriber's (another customer's or another site's is "not
    found", as an unknown id), open or past_due, and the card one the subscriber saved."""
    where = site_name(call)
    invoice = next((i for i in invoices_of(customer) if i.id == args.invoice_id), None)
    if invoice is None:
        return Verdict(allowed=False, reason=f"Invoice {args.invoice_id} not found among your invoices at {where}.")
    if invoice.status not in PAYABLE:
        state = {"draft": "a draft (not owed yet)", "paid": "already paid"}.get(invoice.status, invoice.status)
        return Verdict(
            allowed=False,
            invoice=invoice,
            reason=f"Invoice {invoice.id} is {state}: only open or past_due ones are paid.",
        )
    card_id = args.payment_method_id or default_card_id(customer)
    if card_id is None:
        return Verdict(allowed=False, invoice=invoice, reason=f"You have no default payment method. {ADD_A_CARD}")
    card = next((c for c in cards_of(customer) if c.id == card_id), None)
    if card is None:
        return Verdict(
            allowed=False, invoice=invoice, reason=f"Payment method {card_id} not found among your cards at {where}."
        )
    return Verdict(allowed=True, invoice=invoice, card=card, reason="The invoice is owed and the card is yours.")


def pay_summary(call: CallContext, args: PayInvoiceInput, verdict: Verdict) -> str:
    where = site_name(call)
    invoice, card = verdict.invoice, verdict.card
    if invoice is None or card is None:
        return f"Pay invoice {args.invoice_id} at {where}: refused. {verdict.reason}"
    return (
        f"Pay {invoice_name(invoice)} at {where}: {money(invoice.amount_remaining, invoice.currency)}, the whole "
        f"remaining amount, charged now to your {card_line(card)}. A card payment cannot be undone here "
        "(only the publication can refund it)."
    )


async def preview_pay_invoice(call: CallContext, args: PayInvoiceInput) -> WritePreview:
    customer = await read_customer(call)  # the one read: invoices and cards are in it
    verdict = pay_verdict(call, customer, args)
    invoice = verdict.invoice
    card_id = verdict.card.id if verdict.card else (args.payment_method_id or default_card_id(customer))
    changes = []
    if verdict.allowed and invoice is not None:
        changes = [
            Change(field=f"invoice {invoice.id} status", before=invoice.status, after="paid"),
            Change(field=f"invoice {invoice.id} amount_remaining", before=invoice.amount_remaining, after=0),
            Change(
                field=f"invoice {invoice.id} amount_paid",
                before=invoice.amount_paid,
                after=(invoice.amount_paid or 0) + (invoice.amount_remaining or 0),
            ),
        ]
    return WritePreview(
        tool="pay_invoice",
        would_send=UpstreamRequest(
            method="POST",
            path=f"/invoices/{args.invoice_id}/pay",
            query={"site_id": subscriber_of(call).site_id},
            body={"source_id": card_id},
        ),
        allowed=verdict.allowed,
        verdict=verdict.reason,
        rule=PAY_RULE,
        changes=changes,
        summary=pay_summary(call, args, verdict),
        irreversible=True,
        # The card's bank answers only when charged: a decline, or extra authentication
        # (3-D Secure, after which the invoice stays open), shows on the real call alone.
        not_checked=["whether the card's bank accepts the charge or asks for extra authentication"]
        if verdict.allowed
        else [],
    )


def confirmed_card(call: CallContext) -> int | None:
    """The card the person confirmed this payment with, when the arguments named none: the
    question named the default card of that moment ("charged now to your visa ending
    4242"), and a yes is for that card, not for whichever is the default when the call
    runs (another card made the default in between). None when no yes was used."""
    body = (call.record.confirmed_request or {}).get("body") or {}
    card_id = body.get("source_id")
    return card_id if isinstance(card_id, int) and not isinstance(card_id, bool) else None


# --- Tools -------------------------------------------------------------------------------


@tool(
    "list_my_invoices",
    title="List my invoices",
    input=ListMyInvoicesInput,
    output=InvoiceList,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
    server="open",
)
async def list_my_invoices(call: CallContext, args: ListMyInvoicesInput):
    """The signed-in subscriber's invoices at this publication, newest first (all of them:
    the Open API does not page them), with what is owed now per currency. Amounts in cents;
    times ISO 8601 UTC. status_in filters, e.g. ["open", "past_due"] for what is owed.

    States: draft (not owed yet), open (owed), past_due (owed, late), paid, void
    (canceled, nothing owed), uncollectible (written off). Pay an open or past_due one
    with pay_invoice.
    """
    every = invoices_of(await read_customer(call))
    shown = [i for i in every if args.status_in is None or i.status in args.status_in]
    listing = InvoiceList(site=site_name(call), invoices=shown, total=len(shown), owed=owed(every))
    due = ", ".join(f"{money(o.amount, o.currency)} on {o.invoices} invoice(s)" for o in listing.owed) or "nothing"
    return result(listing, f"{len(shown)} invoice(s) at {listing.site}; owed now: {due}.")


@tool(
    "pay_invoice",
    title="Pay one of my invoices with a saved card",
    input=PayInvoiceInput,
    output=InvoicePayment,
    read_only=False,
    destructive=False,
    idempotent=False,
    open_world=True,
    server="open",
    preview=preview_pay_invoice,
    confirm=ALWAYS,
)
async def pay_invoice(call: CallContext, args: PayInvoiceInput):
    """Pay one of the subscriber's open or past_due invoices in full (the whole remaining
    amount) with a card ALREADY SAVED on the publication's site: payment_method_id from
    list_my_payment_methods, or left out for the default card. Card numbers are never
    accepted: to use a new card, the subscriber adds it on the publication's website
    (get_site gives the address). Moves money: a person must confirm every call, and it
    cannot be undone here. dry_run: true shows the amount, card and verdict first.
    Refused: another customer's invoice (not found), drafts, paid, void and uncollectible
    invoices, a card that is not the subscriber's.
    """
    card_id = args.payment_method_id or confirmed_card(call)
    if card_id is None:
        customer = await read_customer(call)
        card_id = default_card_id(customer)
        if card_id is None:
            raise ToolFailed(ToolFailure(error="refused", message=f"You have no default payment method. {ADD_A_CARD}"))
    response = await open_api(
        call,
        "POST",
        f"/invoices/{args.invoice_id}/pay",
        what=f"invoice {args.invoice_id}",
        json={"source_id": card_id},
        check=f"list your invoices with list_my_invoices to see whether invoice {args.invoice_id} is paid",
    )
    customer = response.data if isinstance(response.data, dict) else {}
    invoice = next((i for i in invoices_of(customer) if i.id == args.invoice_id), None)
    card = next((c for c in cards_of(customer) if c.id == card_id), None)
    if invoice is None or card is None:
        # Pelcro said yes but its answer lacks them: the payment was most likely made.
        raise ToolFailed(
            ToolFailure(
                error="upstream_error",
                may_have_been_applied=True,
                message=f"The Open API accepted the payment ({response.status}) but its answer does not show "
                f"invoice {args.invoice_id} or payment method {card_id}. {before_retrying(response.check)}",
            )
        )
    paid = invoice.status == "paid"
    payment = InvoicePayment(
        paid=paid,
        invoice=invoice,
        payment_method=card,
        next_step=None
        if paid
        else "The card's bank asks for extra authentication: the subscriber finishes the payment on the "
        f"publication's payment page ({invoice.payment_link or 'see get_site for its website'}).",
    )
    where = site_name(call)
    if paid:
        total = money(invoice.total, invoice.currency)
        line = f"Paid {invoice_name(invoice)} ({total}) at {where} with your {card_line(card)}; it is now paid."
    else:
        line = f"{invoice_name(invoice).capitalize()} at {where} is not paid yet: {payment.next_step}"
    return result(payment, line)
