"""Customers: create, update (metadata merged), soft delete (cancels live subscriptions)."""

from __future__ import annotations

from sandbox import clock
from sandbox.errors import ValidationError
from sandbox.records import new_customer
from sandbox.store import Store
from sandbox.subscriptions import cancel_now
from sandbox.validation import MISSING, Checker, merge_metadata

FIELDS = {"email", "first_name", "last_name", "display_name", "phone", "metadata", "mail_marketing", "tele_marketing"}


def _checked(body: dict, *, creating: bool) -> dict:
    check = Checker(body, FIELDS)
    values = {
        "email": check.email("email"),
        "first_name": check.string("first_name"),
        "last_name": check.string("last_name"),
        "display_name": check.string("display_name"),
        "phone": check.string("phone", max_len=40),
        "metadata": check.metadata(),
        "mail_marketing": check.boolean("mail_marketing"),
        "tele_marketing": check.boolean("tele_marketing"),
    }
    given = {name for name, value in values.items() if value not in (MISSING, None)}
    if creating and not given & {"email", "display_name"} and "email" not in check.errors:
        check.add("email", "The email field is required when display name is not present.")
    check.done()
    return {name: value for name, value in values.items() if value is not MISSING}


def _require_unique_email(store: Store, site_id: int, email: str | None, own_id: int | None = None) -> None:
    if email and any(c["email"] == email and c["id"] != own_id for c in store.live("customers", site_id)):
        raise ValidationError({"email": ["The email has already been taken."]})


def create_customer(store: Store, site_id: int, body: dict) -> dict:
    """A new customer on `site_id`; email (unique per site) or display_name is required."""
    values = _checked(body, creating=True)
    _require_unique_email(store, site_id, values.get("email"))
    metadata = {k: v for k, v in values.pop("metadata", {}).items() if v is not None}
    return store.add("customers", new_customer(store.next_id(), site_id, clock.now(), metadata=metadata, **values))


def update_customer(store: Store, site_id: int, customer_id: int, body: dict) -> dict:
    """Change the given fields; metadata keys are merged and a key set to null is removed."""
    customer = store.get("customers", site_id, customer_id)
    values = _checked(body, creating=False)
    email = values.get("email", customer["email"])
    display_name = values.get("display_name", customer["display_name"])
    if not email and not display_name:
        raise ValidationError({"email": ["The email field is required when display name is not present."]})
    if "email" in values:
        _require_unique_email(store, site_id, email, customer_id)
    if "metadata" in values:
        values["metadata"] = merge_metadata(customer["metadata"], values["metadata"])
    customer.update(values)
    customer["updated_at"] = clock.iso(clock.now())
    return customer


def delete_customer(store: Store, site_id: int, customer_id: int) -> dict:
    """Soft delete: the customer disappears from the API and its live subscriptions end now."""
    customer = store.get("customers", site_id, customer_id)
    moment = clock.now()
    for subscription in store.live("subscriptions", site_id):
        if subscription["customer_id"] == customer_id and subscription["status"] != "canceled":
            cancel_now(subscription, moment)
    customer["deleted_at"] = customer["updated_at"] = clock.iso(moment)
    return customer
