"""Offline charges (CORE_API.md §8.7): money received outside Pelcro.

Body: `customer_id`/`customer_old_provider_id`, `amount` 1..2147483647, `reference` 1–255,
`currency` (any case; stored lowercase; valid for the account and customer),
`payment_category` optional string "2".."6", `invoice_id`/`invoice_old_provider_id`.
With an invoice (**chosen**: the customer's, open/past_due, same currency) the amount must
equal its `amount_remaining`, and the charge pays it; without one the amount is credited to
the customer's balance. Either way the customer's currency becomes the charge's.
"""

from __future__ import annotations

from sandbox import clock
from sandbox.core.invoices import (
    OFFLINE_CATEGORIES,
    currency_refusal,
    payment_refusal,
    record_payment,
)
from sandbox.errors import BusinessRuleError, ValidationError
from sandbox.records import new_charge
from sandbox.store import Account, Store
from sandbox.validation import MAX_INT, MISSING, Checker, lookup

FIELDS = {
    "customer_id",
    "customer_old_provider_id",
    "amount",
    "reference",
    "currency",
    "payment_category",
    "invoice_id",
    "invoice_old_provider_id",
}


def create_offline_charge(store: Store, account: Account, site_id: int, body: dict) -> dict:
    check = Checker(body, FIELDS)
    customer_ref = check.reference("customer_id", "customer_old_provider_id", required=True)
    amount = check.integer("amount", required=True, low=1, high=MAX_INT)
    reference = check.string("reference", required=True, max_len=255)
    currency = check.currency("currency", required=True)
    category = check.choice("payment_category", OFFLINE_CATEGORIES)
    invoice_ref = check.reference("invoice_id", "invoice_old_provider_id", required=False)
    check.done()
    customer = lookup(store, site_id, "customers", customer_ref, "customer_id", "customer_old_provider_id")
    invoice = lookup(store, site_id, "invoices", invoice_ref, "invoice_id", "invoice_old_provider_id")
    errors = {}
    if reason := currency_refusal(account, customer, currency):
        errors["currency"] = [reason]
    if invoice is not None:
        if invoice["customer_id"] != customer["id"]:
            errors["invoice_id"] = [f"Invoice {invoice['id']} does not belong to customer {customer['id']}."]
        elif invoice["currency"] != currency:
            errors["currency"] = [f"The currency must match the invoice's currency ({invoice['currency']})."]
    if errors:
        raise ValidationError(errors)
    if invoice is not None:
        if reason := payment_refusal(store, invoice):
            raise BusinessRuleError(reason)
        if amount != invoice["amount_remaining"]:
            raise BusinessRuleError(
                f"The amount ({amount}) must equal invoice {invoice['id']}'s remaining amount ({invoice['amount_remaining']})."
            )
    now = clock.now_unix()
    charge = store.add(
        "charges",
        new_charge(
            store.next_id(),
            site_id,
            customer["id"],
            amount,
            currency,
            now,
            invoice_id=invoice["id"] if invoice else None,
            offline=True,
            reference=reference,
            payment_category=None if category is MISSING else category,
        ),
    )
    if invoice is not None:
        record_payment(store, invoice, amount, now)
    else:
        customer["balance"] += amount
    customer["currency"] = currency
    customer["updated_at"] = now
    return charge
