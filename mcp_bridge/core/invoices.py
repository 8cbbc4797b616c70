"""Invoice tools: list, get, create, update (metadata), pay offline, void, mark uncollectible,
apply the customer's balance (Core API /invoices, CORE_API.md §8.4)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from mcp_bridge.core.calls import core_api
from mcp_bridge.core.customers import Customer
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
from mcp_bridge.runtime.values import iso
from mcp_bridge.runtime.writes import ALWAYS, UpstreamRequest, WritePreview

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

    def request(self) -> UpstreamRequest:
        body = self.model_dump(mode="json", exclude={"site_id"}, exclude_none=True)
        return core_request("POST", "/invoices", self.site_id, body=body)


class UpdateInvoiceInput(SiteInput):
    invoice_id: int = id_field("invoice")
    metadata: Metadata

    def request(self) -> UpstreamRequest:
        # The metadata whole: a null value in it removes that key.
        return core_request("PUT", f"/invoices/{self.invoice_id}", self.site_id, body={"metadata": self.metadata})


class PayInvoiceOfflineInput(SiteInput):
    invoice_id: int = id_field("invoice")
    reference: str = Field(
        min_length=1, max_length=255, description="Your record of the payment, e.g. the cheque or wire number."
    )
    payment_category: PaymentCategory = Field(
        description="How it was paid: check, wire, transfer, external (another system) or cash."
    )

    def request(self) -> UpstreamRequest:
        body = {"reference": self.reference, "payment_category": PAYMENT_CATEGORIES[self.payment_category]}
        return core_request("POST", f"/invoices/{self.invoice_id}/pay_offline", self.site_id, body=body)


def action_request(args: InvoiceIdInput, action: Literal["void", "uncollectible", "apply_balance"]) -> UpstreamRequest:
    """`POST /invoices/{id}/<action>` (no body) of void, mark uncollectible, apply balance."""
    return core_request("POST", f"/invoices/{args.invoice_id}/{action}", args.site_id)


def _invoice_line(verb: str, site_id: int):
    def summary(invoice: Invoice) -> str:
        return (
            f"{verb} invoice {invoice.id} on site {site_id}: {invoice.status}, total "
            f"{money(invoice.total, invoice.currency)}, remaining {money(invoice.amount_remaining, invoice.currency)}."
        )

    return summary


# --- Previews (dry_run): CORE_API.md §8.4's rules on the invoice's current state --------

PAYABLE = ("open", "past_due")
MAX_TOTAL = 2_147_483_647
PAYABLE_RULE = "CORE_API.md §8.4, §8.7: only open or past_due invoices can be paid (**chosen**)"
CREATE_RULE = "CORE_API.md §8.4 (create invoice)"
UPDATE_RULE = "CORE_API.md §8.4 (update invoice: metadata only, merged)"
PAY_OFFLINE_RULE = "CORE_API.md §8.4 (pay offline)"
VOID_RULE = "CORE_API.md §8.4 (void)"
UNCOLLECTIBLE_RULE = "CORE_API.md §8.4 (uncollectible)"
APPLY_BALANCE_RULE = "CORE_API.md §8.4 (apply balance)"


def payment_refusal(invoice: Invoice) -> str | None:
    """Why `invoice` cannot take a payment (offline, by an offline charge, from the balance),
    or None: only open and past_due invoices can be paid (`PAYABLE_RULE`)."""
    if invoice.status in PAYABLE:
        return None
    state = "already paid" if invoice.status == "paid" else invoice.status
    return f"{the_invoice(invoice)} is {state}; only open or past_due invoices can be paid."


def the_invoice(invoice: Invoice) -> str:
    """ "Invoice SBX-000123 (id 123)": an invoice opening a verdict."""
    label = invoice_label(invoice.id, invoice.number)
    return label[:1].upper() + label[1:]


def check_currency(verdict: Verdict, customer: Customer, currency: str, rule: str) -> None:
    """CORE_API.md §8.4, §8.7: the currency must be valid for the customer and the account.
    **chosen** (the sandbox): a customer holding a balance takes only that balance's
    currency. The account's currencies are not in the customer read, so that part is
    checked only when the customer already holds `currency` (it was accepted then)."""
    if customer.currency not in (None, currency) and (customer.balance or 0) != 0:
        verdict.refuse(
            f"The currency must be customer {customer.id}'s own ({customer.currency.upper()}): they hold a "
            f"balance of {money(customer.balance, customer.currency)}.",
            f"{rule}: the currency must be valid for the customer",
        )
    elif customer.currency != currency:
        verdict.unchecked(f"whether {currency.upper()} is one of the account's currencies")


def forcefully_canceled(subscription: dict[str, Any] | None) -> bool:
    """Whether the subscription an invoice bills was canceled forcefully, which refuses its
    offline payment (CORE_API.md §8.4 [inv-pay-old]): **chosen** ended at once (`mode=now`),
    i.e. `status=canceled` without `cancel_at_period_end` (§8.3)."""
    return (
        isinstance(subscription, dict)
        and subscription.get("status") == "canceled"
        and not subscription.get("cancel_at_period_end")
    )


async def _current_invoice(call: CallContext, site_id: int, invoice_id: int, **params: str) -> dict | None:
    """The invoice as the Core API holds it now (one GET), or None if it does not exist."""
    return await read_state(call, f"/invoices/{invoice_id}", site_id, what=f"invoice {invoice_id}", params=params)


def _of(invoice: Invoice) -> str:
    """An invoice with its customer and what it still owes, for a summary."""
    return (
        f"{invoice_label(invoice.id, invoice.number)} of customer {invoice.customer_id} "
        f"({money(invoice.amount_remaining, invoice.currency)} owed, {invoice.status})"
    )


async def preview_create_invoice(call: CallContext, args: CreateInvoiceInput) -> WritePreview:
    """Reads the customer (with their subscriptions when one is named): they must exist, own
    the subscription and take the currency; the lines must add up to 1..2147483647 cents."""
    request = args.request()
    what = f"customer {args.customer_id}"
    expand = ["subscriptions"] if args.subscription_id else []
    data = await read_customer(call, args.site_id, args.customer_id, *expand)
    if data is None:
        return missing("create_invoice", request, call, args.site_id, what, "create an invoice for")
    customer = parse(Customer, data)
    lines = args.line_items or []
    subtotal = sum(line.unit_price * line.quantity for line in lines) if lines else args.total or 0
    taxed = any(line.tax_rate for line in lines)
    verdict = Verdict()
    if not 1 <= subtotal <= MAX_TOTAL:
        verdict.refuse(
            f"The line items add up to {money(subtotal, args.currency)}; they must add up to 1 to {MAX_TOTAL} cents.",
            f"{CREATE_RULE}: line items or a total of at least 1 cent",
        )
    if args.subscription_id and args.subscription_id not in {s.id for s in customer.subscriptions or []}:
        verdict.refuse(
            f"Subscription {args.subscription_id} is not a subscription of customer {customer.id}.",
            f"{CREATE_RULE}: the subscription is the customer's",
        )
    check_currency(verdict, customer, args.currency, CREATE_RULE)
    owed = "owed at once" if args.status == "open" else "not owed until it is finalized"
    if args.due_date is not None:
        owed += f", due {iso(args.due_date)}"
    amount = money(subtotal, args.currency) + (" plus tax" if taxed else "")
    article = "an" if args.status == "open" else "a"
    return preview(
        "create_invoice",
        request,
        verdict,
        allowed=f"Customer {customer.id} exists"
        + (f", owns subscription {args.subscription_id}" if args.subscription_id else "")
        + f" and may be invoiced in {args.currency.upper()}.",
        rule=CREATE_RULE,
        changed=changes(
            ("invoice.status", None, args.status),
            ("invoice.customer_id", None, customer.id),
            ("invoice.currency", None, args.currency),
            ("invoice.subtotal", None, subtotal),
            *([] if taxed else [("invoice.total", None, subtotal), ("invoice.amount_remaining", None, subtotal)]),
            *(
                (f"invoice.{name}", None, iso(moment))
                for name, moment in (
                    ("period_start", args.period_start),
                    ("period_end", args.period_end),
                    ("due_date", args.due_date),
                )
                if moment is not None
            ),
        ),
        summary=f"On {where(call, args.site_id)}: create {article} {args.status} invoice of {amount} for "
        f"{customer_label(data, customer.id)}, {owed}.",
    )


async def preview_update_invoice(call: CallContext, args: UpdateInvoiceInput) -> WritePreview:
    """Reads the invoice: any invoice's metadata may change (merged, a null removes a key)."""
    request = args.request()
    data = await _current_invoice(call, args.site_id, args.invoice_id)
    if data is None:
        what = f"invoice {args.invoice_id}"
        return missing("update_invoice", request, call, args.site_id, what, "change the metadata of")
    invoice = parse(Invoice, data)
    current = invoice.metadata or {}
    changed = changes(*((f"invoice.metadata.{key}", current.get(key), value) for key, value in args.metadata.items()))
    removed = sum(1 for change in changed if change.after is None)
    effect = f"{len(changed) - removed} key(s) set, {removed} removed" if changed else "nothing changes (same values)"
    return preview(
        "update_invoice",
        request,
        Verdict(),
        allowed=f"The metadata of any invoice can be changed; {invoice_label(invoice.id, invoice.number)} is "
        f"{invoice.status}.",
        rule=UPDATE_RULE,
        changed=changed,
        summary=f"On {where(call, args.site_id)}: change the metadata of {_of(invoice)}: {effect}.",
    )


async def preview_pay_invoice_offline(call: CallContext, args: PayInvoiceOfflineInput) -> WritePreview:
    """Reads the invoice with the subscription it bills (one GET, expand): it must be open
    or past_due, and not bill a forcefully canceled subscription."""
    request = args.request()
    data = await _current_invoice(call, args.site_id, args.invoice_id, expand="subscription")
    if data is None:
        what = f"invoice {args.invoice_id}"
        return missing("pay_invoice_offline", request, call, args.site_id, what, "pay")
    invoice = parse(Invoice, data)
    verdict = Verdict()
    if refusal := payment_refusal(invoice):
        verdict.refuse(refusal, PAYABLE_RULE)
    if forcefully_canceled(data.get("subscription")):
        verdict.refuse(
            f"{the_invoice(invoice)} bills subscription {invoice.subscription_id}, which was canceled forcefully "
            "(at once); an invoice of a forcefully canceled subscription cannot be paid offline.",
            f"{PAY_OFFLINE_RULE}: refused for an invoice of a forcefully canceled subscription",
        )
    remaining = invoice.amount_remaining or 0
    return preview(
        "pay_invoice_offline",
        request,
        verdict,
        allowed=f"{the_invoice(invoice)} is {invoice.status} and its subscription (if any) was not canceled "
        "forcefully: an offline payment pays its whole remaining amount.",
        rule=PAY_OFFLINE_RULE,
        changed=changes(
            ("invoice.status", invoice.status, "paid"),
            ("invoice.paid", invoice.paid, True),
            ("invoice.amount_paid", invoice.amount_paid, invoice.amount_due),
            ("invoice.amount_remaining", remaining, 0),
            ("charge.amount", None, remaining),
        ),
        summary=f"On {where(call, args.site_id)}: record an offline {args.payment_category} payment (reference "
        f"{args.reference!r}) of {money(remaining, invoice.currency)}, the whole remaining amount of {_of(invoice)}; "
        f"the invoice becomes paid. {IRREVERSIBLE}",
        irreversible=True,
    )


async def preview_void_invoice(call: CallContext, args: InvoiceIdInput) -> WritePreview:
    """Reads the invoice: refused for advance invoices and void, paid, uncollectible or
    partly paid ones."""
    request = action_request(args, "void")
    data = await _current_invoice(call, args.site_id, args.invoice_id)
    if data is None:
        return missing("void_invoice", request, call, args.site_id, f"invoice {args.invoice_id}", "void")
    invoice = parse(Invoice, data)
    label = invoice_label(invoice.id, invoice.number)
    verdict = Verdict()
    if invoice.is_advance:
        verdict.refuse(
            f"{the_invoice(invoice)} is an advance invoice; advance invoices cannot be voided.",
            f"{VOID_RULE}: advance invoices cannot be voided",
        )
    if invoice.status in ("void", "paid", "uncollectible"):
        verdict.refuse(
            f"{the_invoice(invoice)} is {invoice.status}; a void, paid or uncollectible invoice cannot be voided.",
            f"{VOID_RULE}: void, paid or uncollectible invoices cannot be voided",
        )
    if (invoice.amount_paid or 0) > 0:
        verdict.refuse(
            f"{the_invoice(invoice)} is partly paid ({money(invoice.amount_paid, invoice.currency)} of "
            f"{money(invoice.amount_due, invoice.currency)}); a partly paid invoice cannot be voided.",
            f"{VOID_RULE}: a partly paid invoice cannot be voided",
        )
    return preview(
        "void_invoice",
        request,
        verdict,
        allowed=f"{label[:1].upper()}{label[1:]} is {invoice.status}, unpaid and not an advance invoice: it can be "
        "voided.",
        rule=VOID_RULE,
        changed=changes(("invoice.status", invoice.status, "void")),
        summary=f"On {where(call, args.site_id)}: void {_of(invoice)}; nothing would be owed. {IRREVERSIBLE}",
        irreversible=True,
    )


async def preview_mark_invoice_uncollectible(call: CallContext, args: InvoiceIdInput) -> WritePreview:
    """Reads the invoice: only open or past_due ones can be written off."""
    request = action_request(args, "uncollectible")
    data = await _current_invoice(call, args.site_id, args.invoice_id)
    if data is None:
        what = f"invoice {args.invoice_id}"
        return missing("mark_invoice_uncollectible", request, call, args.site_id, what, "write off")
    invoice = parse(Invoice, data)
    verdict = Verdict()
    if invoice.status not in PAYABLE:
        verdict.refuse(
            f"{the_invoice(invoice)} is {invoice.status}; only open or past_due invoices can be marked uncollectible.",
            f"{UNCOLLECTIBLE_RULE}: only open or past_due invoices can be marked uncollectible",
        )
    return preview(
        "mark_invoice_uncollectible",
        request,
        verdict,
        allowed=f"{the_invoice(invoice)} is {invoice.status}: an open or past_due invoice can be written off.",
        rule=UNCOLLECTIBLE_RULE,
        changed=changes(("invoice.status", invoice.status, "uncollectible")),
        summary=f"On {where(call, args.site_id)}: write {_of(invoice)} off as bad debt; it becomes uncollectible, "
        f"for good (never paid, voided or reopened). {IRREVERSIBLE}",
        irreversible=True,
    )


async def preview_apply_invoice_balance(call: CallContext, args: InvoiceIdInput) -> WritePreview:
    """Reads the invoice, then (only if it is open or past_due) its customer: they must
    hold a credit balance in the invoice's currency. Two requests: no one Core API request
    gives an invoice with its customer's balance, and without it there is nothing to say."""
    request = action_request(args, "apply_balance")
    data = await _current_invoice(call, args.site_id, args.invoice_id)
    if data is None:
        what = f"invoice {args.invoice_id}"
        return missing("apply_invoice_balance", request, call, args.site_id, what, "pay")
    invoice = parse(Invoice, data)
    remaining = invoice.amount_remaining or 0
    verdict = Verdict()
    customer: dict | None = None
    balance, currency = 0, invoice.currency
    if invoice.status not in PAYABLE:
        verdict.refuse(
            f"{the_invoice(invoice)} is {invoice.status}; only open or past_due invoices take a balance.",
            f"{APPLY_BALANCE_RULE}: only open or past_due invoices take a balance",
        )
    else:
        what = f"customer {invoice.customer_id}"
        customer = await read_customer(call, args.site_id, invoice.customer_id)
        if customer is None:
            verdict.not_found(what, args.site_id)
        else:
            balance = customer.get("balance") or 0
            currency = customer.get("currency") or invoice.currency
            if balance <= 0:
                verdict.refuse(
                    f"Customer {invoice.customer_id} has no credit balance to apply ({money(balance, currency)}); "
                    "only a credit balance can pay an invoice.",
                    f"{APPLY_BALANCE_RULE}: refused when the customer has no credit balance",
                )
            elif currency != invoice.currency:
                verdict.refuse(
                    f"Customer {invoice.customer_id}'s balance is in {currency.upper()}, invoice {invoice.id} in "
                    f"{(invoice.currency or '?').upper()}.",
                    f"{APPLY_BALANCE_RULE}: the balance pays invoices in its own currency (**chosen**)",
                )
    applied = min(balance, remaining) if verdict.allowed else 0
    left = remaining - applied
    outcome = "paid in full" if left == 0 else f"paid in part, {money(left, invoice.currency)} still owed"
    return preview(
        "apply_invoice_balance",
        request,
        verdict,
        allowed=f"{the_invoice(invoice)} is {invoice.status} and customer {invoice.customer_id} holds "
        f"{money(balance, currency)} of credit in its currency.",
        rule=APPLY_BALANCE_RULE,
        changed=changes(
            ("customer.balance", balance, balance - applied),
            ("invoice.amount_paid", invoice.amount_paid, (invoice.amount_paid or 0) + applied),
            ("invoice.amount_remaining", remaining, left),
            ("invoice.status", invoice.status, "paid" if left == 0 else invoice.status),
            ("invoice.paid", invoice.paid, True if left == 0 else invoice.paid),
        ),
        summary=f"On {where(call, args.site_id)}: pay {_of(invoice)} from the credit balance of "
        f"{customer_label(customer, invoice.customer_id)}"
        + (
            f": {money(applied, invoice.currency)} applied, the invoice {outcome}, the balance down from "
            f"{money(balance, currency)} to {money(balance - applied, currency)}."
            if verdict.allowed
            else "."
        )
        + f" {IRREVERSIBLE}",
        irreversible=True,
    )


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
    preview=preview_create_invoice,
)
async def create_invoice(call: CallContext, args: CreateInvoiceInput):
    """Create an invoice for a customer: give line_items (description, unit_price in cents,
    quantity, optional tax_name + tax_rate) or a total in cents, and the currency (e.g.
    usd). status draft (default) is not yet owed; open makes it owed at once. Times are
    Unix seconds or ISO 8601. Only its metadata can be changed afterwards. Each call
    creates a new invoice.
    """
    response = await send(
        call,
        args.request(),
        what="the new invoice",
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
    preview=preview_update_invoice,
)
async def update_invoice(call: CallContext, args: UpdateInvoiceInput):
    """Change an invoice's metadata (merged: keys you give are set, a key set to null is
    removed, others stay). Pelcro allows nothing else to change on an invoice: amounts,
    lines and dates are fixed once it is created.
    """
    response = await send(
        call,
        args.request(),
        what=f"invoice {args.invoice_id}",
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
    preview=preview_pay_invoice_offline,
    confirm=ALWAYS,
)
async def pay_invoice_offline(call: CallContext, args: PayInvoiceOfflineInput):
    """Mark an open or past_due invoice paid with money received outside Pelcro. It pays
    the WHOLE remaining amount; give your reference (e.g. the cheque number) and the
    payment_category (check, wire, transfer, external, cash). Refused for other states and
    for invoices of subscriptions that were forcefully canceled.
    """
    response = await send(
        call,
        args.request(),
        what=f"invoice {args.invoice_id}",
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
    preview=preview_void_invoice,
    confirm=ALWAYS,
)
async def void_invoice(call: CallContext, args: InvoiceIdInput):
    """Void an unpaid invoice: it is canceled and nothing is owed. IRREVERSIBLE. Refused for
    advance invoices and for invoices already void, paid, uncollectible or partly paid.
    Confirm with the user first.
    """
    response = await send(
        call,
        action_request(args, "void"),
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
    preview=preview_mark_invoice_uncollectible,
    confirm=ALWAYS,
)
async def mark_invoice_uncollectible(call: CallContext, args: InvoiceIdInput):
    """Write an open or past_due invoice off as bad debt (status uncollectible).
    IRREVERSIBLE and final: it can never be voided, paid or reopened afterwards. Other
    states are refused. Confirm with the user first.
    """
    response = await send(
        call,
        action_request(args, "uncollectible"),
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
    preview=preview_apply_invoice_balance,
    confirm=ALWAYS,
)
async def apply_invoice_balance(call: CallContext, args: InvoiceIdInput):
    """Use the customer's credit balance to pay an open or past_due invoice: in full (it
    becomes paid) or, if the balance is smaller, in part (amount_remaining shrinks). The
    customer's balance drops by the amount applied. Refused when the customer has no credit
    or the invoice is paid, void or uncollectible.
    """
    response = await send(
        call,
        action_request(args, "apply_balance"),
        what=f"invoice {args.invoice_id}",
        check=f"read invoice {args.invoice_id} with get_invoice to see whether its amount_remaining shrank",
    )
    return object_result(response, Invoice, _invoice_line("Applied the balance to", args.site_id))
