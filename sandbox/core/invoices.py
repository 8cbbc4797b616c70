"""Invoices (CORE_API.md §8.4) and their state machine.

    draft ──► open ──► past_due ──► paid | void | uncollectible (terminal)
       └──────────────────────────► void

Create: `customer_id`/`customer_old_provider_id`, `currency` (valid for the account and the
customer), `line_items` (description, unit_price, quantity; tax_name + tax_rate both or
neither) **or** `total`, `subscription_id`/`subscription_old_provider_id` (the customer's),
`period_start` ≤ `period_end`, `due_date` ≥ `period_start`, `status`, `billing_reason`.
Update: `metadata` only (merged; null removes a key). Pay offline: `reference` +
`payment_category` ("2".."6") pays the whole remaining amount; only open/past_due; refused
for an invoice of a forcefully (mode `now`) canceled subscription. Void: refused for advance
invoices and paid, void, uncollectible or partly paid ones. Uncollectible: open/past_due
only. Apply balance: open/past_due only, customer credit > 0; applies min(credit, remaining).
Invariant: `amount_remaining == amount_due − amount_paid`.
"""

from __future__ import annotations

from sandbox import clock
from sandbox.errors import BusinessRuleError, ValidationError
from sandbox.records import new_charge, new_invoice
from sandbox.store import Account, Store
from sandbox.validation import MAX_INT, MISSING, Checker, lookup, merge_metadata

STATUSES = ("draft", "open", "past_due", "paid", "void", "uncollectible")
CREATE_STATUSES = ("draft", "open", "paid", "uncollectible", "void")
BILLING_REASONS = ("manual", "subscription_create", "subscription_cycle", "subscription_update", "order_create")
PAYABLE = ("open", "past_due")
OFFLINE_CATEGORIES = ("2", "3", "4", "5", "6")  # check, wire, transfer, external, cash
MAX_LINE_ITEMS = 100
_LINE_FIELDS = {"description", "unit_price", "quantity", "tax_name", "tax_rate"}
CREATE_FIELDS = {
    "customer_id",
    "customer_old_provider_id",
    "currency",
    "line_items",
    "total",
    "subscription_id",
    "subscription_old_provider_id",
    "period_start",
    "period_end",
    "due_date",
    "status",
    "billing_reason",
}


def _line_items(check: Checker, field: str = "line_items"):
    """Validated line items (errors keyed `line_items.N.field`), or MISSING."""
    raw = check.body.get(field, MISSING)
    if raw is MISSING:
        return MISSING
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_LINE_ITEMS:
        check.add(field, f"The line items must be a list of 1 to {MAX_LINE_ITEMS} items.")
        return MISSING
    items, ok = [], True
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            check.add(f"{field}.{index}", "Each line item must be an object with description, unit_price, quantity.")
            ok = False
            continue
        line = Checker(item, _LINE_FIELDS)
        description = line.string("description")
        unit_price = line.integer("unit_price", required=True, low=0)
        quantity = line.integer("quantity", required=True, low=1, high=100_000)
        tax_name = line.string("tax_name", max_len=255)
        tax_rate = item.get("tax_rate", MISSING)
        if tax_rate is not MISSING and (
            isinstance(tax_rate, bool) or not isinstance(tax_rate, (int, float)) or not 0 <= tax_rate <= 100
        ):
            line.add("tax_rate", "The tax rate must be a percentage between 0 and 100.")
        if (tax_name in (MISSING, None)) != (tax_rate in (MISSING, None)) and "tax_rate" not in line.errors:
            line.add(
                "tax_rate" if tax_rate in (MISSING, None) else "tax_name",
                "Give both tax name and tax rate, or neither.",
            )
        for name, messages in line.errors.items():
            for message in messages:
                check.add(f"{field}.{index}.{name}", message)
        ok = ok and not line.errors
        items.append(
            {
                "description": None if description is MISSING else description,
                "unit_price": unit_price,
                "quantity": quantity,
                "tax_name": None if tax_name is MISSING else tax_name,
                "tax_rate": None if tax_rate is MISSING else tax_rate,
            }
        )
    if ok and not 1 <= sum(i["unit_price"] * i["quantity"] for i in items) <= MAX_INT:
        check.add(field, f"The line items must add up to between 1 and {MAX_INT}.")
        return MISSING
    return items if ok else MISSING


def currency_refusal(account: Account, customer: dict, currency: str) -> str | None:
    """Why `currency` is not valid for the account and customer (**chosen**: one of the
    account's currencies; and the customer's own, once it has one with a balance)."""
    if currency not in account.currencies:
        return f"The currency must be one of this account's currencies: {', '.join(sorted(account.currencies))}."
    if customer["currency"] not in (None, currency) and customer["balance"] != 0:
        return f"The currency must be the customer's currency ({customer['currency']})."
    return None


def create_invoice(store: Store, account: Account, site_id: int, body: dict) -> dict:
    check = Checker(body, CREATE_FIELDS)
    customer_ref = check.reference("customer_id", "customer_old_provider_id", required=True)
    currency = check.currency("currency", required=True)
    items = _line_items(check)
    total = check.integer("total", low=1)
    subscription_ref = check.reference("subscription_id", "subscription_old_provider_id", required=False)
    period_start = check.unix("period_start")
    period_end = check.unix("period_end")
    due_date = check.unix("due_date")
    status = check.choice("status", CREATE_STATUSES)
    billing_reason = check.choice("billing_reason", BILLING_REASONS)
    if "line_items" in body and "total" in body:
        check.add("total", "The total field is prohibited when line items is present.")
    elif "line_items" not in body and "total" not in body:
        check.add("line_items", "The line items field is required when total is not present.")
    if isinstance(period_start, int) and isinstance(period_end, int) and period_start > period_end:
        check.add("period_end", "The period end must be a date after or equal to period start.")
    if isinstance(period_start, int) and isinstance(due_date, int) and due_date < period_start:
        check.add("due_date", "The due date must be a date after or equal to period start.")
    check.done()
    customer = lookup(store, site_id, "customers", customer_ref, "customer_id", "customer_old_provider_id")
    subscription = lookup(
        store, site_id, "subscriptions", subscription_ref, "subscription_id", "subscription_old_provider_id"
    )
    errors = {}
    if subscription is not None and subscription["user_id"] != customer["id"]:
        errors["subscription_id"] = [f"Subscription {subscription['id']} does not belong to customer {customer['id']}."]
    if reason := currency_refusal(account, customer, currency):
        errors["currency"] = [reason]
    if errors:
        raise ValidationError(errors)
    if items is MISSING:
        items = [{"description": "Amount due", "unit_price": total, "quantity": 1}]
    now = clock.now_unix()
    status = "draft" if status is MISSING else status
    invoice = store.add(
        "invoices",
        new_invoice(
            store.next_id(),
            site_id,
            customer["id"],
            currency,
            items,
            now,
            status=status,
            subscription_id=subscription["id"] if subscription else None,
            billing_reason="manual" if billing_reason is MISSING else billing_reason,
            due_date=None if due_date is MISSING else due_date,
            period_start=None if period_start in (MISSING, None) else period_start,
            period_end=None if period_end in (MISSING, None) else period_end,
        ),
    )
    if status == "paid":
        invoice.update(amount_paid=invoice["amount_due"], amount_remaining=0, paid=True, paid_at=now)
    elif status == "void":
        invoice["voided_at"] = now
    elif status == "uncollectible":
        invoice["marked_uncollectible_at"] = now
    return invoice


def update_invoice(store: Store, site_id: int, invoice_id: int, body: dict) -> dict:
    """Merge metadata (the only field an update may change)."""
    check = Checker(body, {"metadata"})
    metadata = check.metadata()
    if "metadata" not in body and not check.errors:
        check.add("metadata", "The metadata field is required (an invoice update changes metadata only).")
    check.done()
    invoice = store.get("invoices", site_id, invoice_id)
    invoice["metadata"] = merge_metadata(invoice["metadata"], metadata)
    invoice["updated_at"] = clock.now_unix()
    return invoice


def payment_refusal(store: Store, invoice: dict) -> str | None:
    """Why `invoice` cannot take a payment now, or None (open/past_due ones can)."""
    if invoice["status"] == "draft":
        return f"Invoice {invoice['id']} is a draft; only open or past_due invoices can be paid."
    if invoice["status"] == "paid":
        return f"Invoice {invoice['id']} is already paid."
    if invoice["status"] not in PAYABLE:
        return f"Invoice {invoice['id']} is {invoice['status']} and cannot be paid."
    return None


def forced_cancel(store: Store, invoice: dict) -> bool:
    """True when the invoice's subscription was canceled forcefully: **chosen** (CORE_API.md
    §8.4) ended at once (mode `now`, or its customer deleted), which shows as `status`
    canceled without `cancel_at_period_end` (one that ran to its period's end keeps it)."""
    if invoice["subscription_id"] is None:
        return False
    subscription = store.by_site["subscriptions"][invoice["site_id"]].get(invoice["subscription_id"])
    return (
        subscription is not None and subscription["status"] == "canceled" and not subscription["cancel_at_period_end"]
    )


def record_payment(store: Store, invoice: dict, amount: int, now: int) -> None:
    """Apply a payment; a fully paid invoice becomes paid and revives a past-due subscription."""
    invoice["amount_paid"] += amount
    invoice["amount_remaining"] = invoice["amount_due"] - invoice["amount_paid"]
    invoice["updated_at"] = now
    if invoice["amount_remaining"] == 0:
        invoice.update(status="paid", paid=True, paid_at=now)
        if invoice["subscription_id"] is not None:
            subscription = store.by_site["subscriptions"][invoice["site_id"]].get(invoice["subscription_id"])
            if subscription is not None and subscription["status"] in ("past_due", "unpaid"):
                subscription["status"] = "active"


def pay_offline(store: Store, site_id: int, invoice_id: int, body: dict) -> dict:
    check = Checker(body, {"reference", "payment_category"})
    reference = check.string("reference", required=True, max_len=255)
    category = check.choice("payment_category", OFFLINE_CATEGORIES, required=True)
    check.done()
    invoice = store.get("invoices", site_id, invoice_id)
    if reason := payment_refusal(store, invoice):
        raise BusinessRuleError(reason)
    if forced_cancel(store, invoice):
        raise BusinessRuleError(
            f"Invoice {invoice_id} belongs to a subscription that was forcefully canceled; it cannot be paid offline."
        )
    now = clock.now_unix()
    store.add(
        "charges",
        new_charge(
            store.next_id(),
            site_id,
            invoice["customer_id"],
            invoice["amount_remaining"],
            invoice["currency"],
            now,
            invoice_id=invoice_id,
            offline=True,
            reference=reference,
            payment_category=category,
        ),
    )
    record_payment(store, invoice, invoice["amount_remaining"], now)
    return invoice


def void_invoice(store: Store, site_id: int, invoice_id: int) -> dict:
    invoice = store.get("invoices", site_id, invoice_id)
    if invoice["is_advance"]:
        raise BusinessRuleError(f"Invoice {invoice_id} is an advance invoice and cannot be voided.")
    if invoice["status"] in ("void", "paid", "uncollectible"):
        raise BusinessRuleError(f"Invoice {invoice_id} is {invoice['status']} and cannot be voided.")
    if invoice["amount_paid"] > 0:
        raise BusinessRuleError(
            f"Invoice {invoice_id} is partly paid ({invoice['amount_paid']} of {invoice['amount_due']}) and cannot be voided."
        )
    now = clock.now_unix()
    invoice.update(status="void", voided_at=now, updated_at=now)
    return invoice


def mark_uncollectible(store: Store, site_id: int, invoice_id: int) -> dict:
    invoice = store.get("invoices", site_id, invoice_id)
    if invoice["status"] not in PAYABLE:
        raise BusinessRuleError(
            f"Only an open or past_due invoice can be marked uncollectible; invoice {invoice_id} is {invoice['status']}."
        )
    now = clock.now_unix()
    invoice.update(status="uncollectible", marked_uncollectible_at=now, updated_at=now)
    return invoice


def apply_balance(store: Store, site_id: int, invoice_id: int, body: dict) -> dict:
    Checker(body, set()).done()
    invoice = store.get("invoices", site_id, invoice_id)
    if invoice["status"] not in PAYABLE:
        raise BusinessRuleError(
            f"Invoice {invoice_id} is {invoice['status']}; only open or past_due invoices take a balance."
        )
    customer = store.by_site["customers"][site_id][invoice["customer_id"]]
    if customer["balance"] <= 0:
        raise BusinessRuleError(f"Customer {customer['id']} has no credit balance to apply.")
    if customer["currency"] not in (None, invoice["currency"]):
        raise BusinessRuleError(
            f"Customer {customer['id']}'s balance is in {customer['currency']}, the invoice in {invoice['currency']}."
        )
    applied = min(customer["balance"], invoice["amount_remaining"])
    now = clock.now_unix()
    customer["balance"] -= applied
    customer["updated_at"] = now
    record_payment(store, invoice, applied, now)
    invoice["ending_balance"] = customer["balance"]
    return invoice
