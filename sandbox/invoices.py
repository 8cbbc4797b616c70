"""Invoices and their state machine (CORE_API.md).

    draft ──► open ──► paid | void | uncollectible        (draft ──► void too)

A draft's due_date and line_items may change; an open invoice's may not. Paying takes
the whole remaining amount (or, through an offline charge, part of it). Void is refused
once anything was paid. `amount_remaining == amount_due - amount_paid` always holds.
"""

from __future__ import annotations

from datetime import datetime

from sandbox import clock
from sandbox.errors import BusinessRuleError, ValidationError
from sandbox.records import new_charge, new_invoice, set_line_items
from sandbox.store import Store
from sandbox.validation import MAX_INT, MISSING, Checker, merge_metadata

STATUSES = ("draft", "open", "paid", "void", "uncollectible")
OFFLINE_CATEGORIES = (2, 3, 4, 5, 6)  # check, wire, transfer, external, cash
MAX_LINE_ITEMS = 100
_LINE_FIELDS = {"description", "unit_price", "quantity"}


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
        description = line.string("description", required=True)
        unit_price = line.integer("unit_price", required=True, low=0)
        quantity = line.integer("quantity", low=1, high=10_000)
        for name, messages in line.errors.items():
            for message in messages:
                check.add(f"{field}.{index}.{name}", message)
        ok = ok and not line.errors
        items.append({"description": description, "unit_price": unit_price, "quantity": 1 if quantity is MISSING else quantity})
    if ok and not 1 <= sum(i["unit_price"] * i["quantity"] for i in items) <= MAX_INT:
        check.add(field, f"The line items must add up to between 1 and {MAX_INT}.")
        return MISSING
    return items if ok else MISSING


def create_invoice(store: Store, site_id: int, body: dict) -> dict:
    """A manual invoice for a customer, from line_items or a single total; draft unless status is open."""
    check = Checker(body, {"customer_id", "currency", "line_items", "total", "due_date", "status", "subscription_id", "metadata"})
    customer_id = check.integer("customer_id", required=True, low=1)
    currency = check.currency("currency", required=True)
    items = _line_items(check)
    total = check.integer("total", low=1)
    due_date = check.date("due_date")
    status = check.choice("status", ("draft", "open"))
    subscription_id = check.integer("subscription_id", nullable=True, low=1)
    metadata = check.metadata()
    if "line_items" in body and "total" in body:
        check.add("total", "The total field is prohibited when line items is present.")
    elif "line_items" not in body and "total" not in body:
        check.add("line_items", "The line items field is required when total is not present.")
    check.done()
    customer = store.get("customers", site_id, customer_id)
    if subscription_id not in (MISSING, None):
        subscription = store.get("subscriptions", site_id, subscription_id)
        if subscription["customer_id"] != customer["id"]:
            raise ValidationError({"subscription_id": [f"Subscription {subscription_id} does not belong to customer {customer_id}."]})
    else:
        subscription_id = None
    if items is MISSING:
        items = [{"description": "Amount due", "unit_price": total, "quantity": 1}]
    return store.add(
        "invoices",
        new_invoice(
            store.next_id(), site_id, customer["id"], currency, items, clock.now(),
            status="draft" if status is MISSING else status, subscription_id=subscription_id,
            due_date=None if due_date is MISSING else due_date,
            metadata={k: v for k, v in ({} if metadata is MISSING else metadata).items() if v is not None},
        ),
    )


def update_invoice(store: Store, site_id: int, invoice_id: int, body: dict) -> dict:
    """Merge metadata; while draft also change due_date and line_items, or finalize (status open)."""
    check = Checker(body, {"metadata", "due_date", "line_items", "status"})
    metadata = check.metadata()
    due_date = check.date("due_date")
    items = _line_items(check)
    status = check.choice("status", ("open",))
    check.done()
    invoice = store.get("invoices", site_id, invoice_id)
    if invoice["status"] != "draft":
        if "due_date" in body or "line_items" in body:
            raise BusinessRuleError(
                f"Invoice {invoice_id} is {invoice['status']}; due_date and line_items can only change while it is a draft."
            )
        if status is not MISSING:
            raise BusinessRuleError(f"Only a draft invoice can be finalized; invoice {invoice_id} is {invoice['status']}.")
    moment = clock.now()
    if metadata is not MISSING:
        invoice["metadata"] = merge_metadata(invoice["metadata"], metadata)
    if due_date is not MISSING:
        invoice["due_date"] = due_date
    if items is not MISSING:
        set_line_items(invoice, items)
    if status == "open":
        invoice["status"] = "open"
        invoice["finalized_at"] = clock.iso(moment)
    invoice["updated_at"] = clock.iso(moment)
    return invoice


def payment_refusal(invoice: dict) -> str | None:
    """Why `invoice` cannot take a payment now, or None (only an open invoice can)."""
    if invoice["status"] == "open":
        return None
    if invoice["status"] == "draft":
        return f"Invoice {invoice['id']} is a draft; finalize it (status open) before paying it."
    if invoice["status"] == "paid":
        return f"Invoice {invoice['id']} is already paid."
    return f"Invoice {invoice['id']} is {invoice['status']} and cannot be paid."


def record_payment(store: Store, invoice: dict, amount: int, moment: datetime) -> None:
    """Apply a payment; a fully paid invoice becomes paid and revives a past-due subscription."""
    invoice["amount_paid"] += amount
    invoice["amount_remaining"] = invoice["amount_due"] - invoice["amount_paid"]
    invoice["updated_at"] = clock.iso(moment)
    if invoice["amount_remaining"] == 0:
        invoice["status"] = "paid"
        invoice["paid_at"] = clock.iso(moment)
        if invoice["subscription_id"] is not None:
            subscription = store.by_site["subscriptions"][invoice["site_id"]].get(invoice["subscription_id"])
            if subscription is not None and subscription["status"] in ("past_due", "incomplete"):
                subscription["status"] = "active"


def pay_offline(store: Store, site_id: int, invoice_id: int, body: dict) -> dict:
    """Pay the whole remaining amount with an offline charge (reference + category 2..6)."""
    check = Checker(body, {"reference", "category"})
    reference = check.string("reference", required=True)
    category = check.integer("category", required=True, low=OFFLINE_CATEGORIES[0], high=OFFLINE_CATEGORIES[-1])
    check.done()
    invoice = store.get("invoices", site_id, invoice_id)
    if reason := payment_refusal(invoice):
        raise BusinessRuleError(reason)
    moment = clock.now()
    store.add(
        "charges",
        new_charge(
            store.next_id(), site_id, invoice["customer_id"], invoice["amount_remaining"], invoice["currency"], moment,
            invoice_id=invoice_id, offline=True, reference=reference, payment_category=category,
        ),
    )
    record_payment(store, invoice, invoice["amount_remaining"], moment)
    return invoice


def void_invoice(store: Store, site_id: int, invoice_id: int) -> dict:
    """Void a draft or an unpaid open invoice (irreversible)."""
    invoice = store.get("invoices", site_id, invoice_id)
    if invoice["status"] in ("void", "paid", "uncollectible"):
        raise BusinessRuleError(f"Invoice {invoice_id} is {invoice['status']} and cannot be voided.")
    if invoice["amount_paid"] > 0:
        raise BusinessRuleError(
            f"Invoice {invoice_id} is partly paid ({invoice['amount_paid']} of {invoice['amount_due']}) and cannot be voided."
        )
    stamp = clock.iso(clock.now())
    invoice.update(status="void", voided_at=stamp, updated_at=stamp)
    return invoice


def mark_uncollectible(store: Store, site_id: int, invoice_id: int) -> dict:
    """Write off an open invoice."""
    invoice = store.get("invoices", site_id, invoice_id)
    if invoice["status"] != "open":
        raise BusinessRuleError(
            f"Only an open invoice can be marked uncollectible; invoice {invoice_id} is {invoice['status']}."
        )
    stamp = clock.iso(clock.now())
    invoice.update(status="uncollectible", marked_uncollectible_at=stamp, updated_at=stamp)
    return invoice
