"""Offline charges: paid, succeeded, offline; they pay an invoice or credit the customer's balance."""

from __future__ import annotations

from sandbox import clock
from sandbox.errors import BusinessRuleError, ValidationError
from sandbox.invoices import OFFLINE_CATEGORIES, payment_refusal, record_payment
from sandbox.records import new_charge
from sandbox.store import Store
from sandbox.validation import MISSING, Checker


def create_offline_charge(store: Store, site_id: int, body: dict) -> dict:
    """Record money received outside Pelcro.

    With `invoice_id` it pays that open invoice (all or part of its remaining amount; the
    currency must match); without, the amount is added to the customer's balance (credit).
    """
    check = Checker(body, {"customer_id", "amount", "currency", "reference", "payment_category", "invoice_id"})
    customer_id = check.integer("customer_id", required=True, low=1)
    amount = check.integer("amount", required=True, low=1)
    currency = check.currency("currency", required=True)
    reference = check.string("reference", required=True, max_len=255)
    category = check.integer("payment_category", required=True, low=OFFLINE_CATEGORIES[0], high=OFFLINE_CATEGORIES[-1])
    invoice_id = check.integer("invoice_id", nullable=True, low=1)
    check.done()
    customer = store.get("customers", site_id, customer_id)
    invoice = store.get("invoices", site_id, invoice_id) if invoice_id not in (MISSING, None) else None
    if invoice is not None:
        errors = {}
        if invoice["customer_id"] != customer_id:
            errors["invoice_id"] = [f"Invoice {invoice['id']} does not belong to customer {customer_id}."]
        if invoice["currency"] != currency:
            errors["currency"] = [f"The currency must match the invoice's currency ({invoice['currency']})."]
        if errors:
            raise ValidationError(errors)
        if reason := payment_refusal(invoice):
            raise BusinessRuleError(reason)
        if amount > invoice["amount_remaining"]:
            raise BusinessRuleError(
                f"The amount ({amount}) is more than invoice {invoice['id']}'s remaining amount ({invoice['amount_remaining']})."
            )
    moment = clock.now()
    charge = store.add(
        "charges",
        new_charge(
            store.next_id(), site_id, customer_id, amount, currency, moment,
            invoice_id=invoice["id"] if invoice else None, offline=True, reference=reference, payment_category=category,
        ),
    )
    if invoice is not None:
        record_payment(store, invoice, amount, moment)
    else:
        customer["balance"] += amount
        customer["updated_at"] = clock.iso(moment)
    return charge
