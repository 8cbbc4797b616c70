"""Customers (CORE_API.md §8.2): create, update (metadata merged, null removes a key),
delete (204; soft-deletes the customer's subscriptions, payment sources and addresses and
cancels its active subscriptions at once).

Create needs one of `email`, `old_provider_id`, `display_name`. `email` is unique per site
(**chosen**) and passes a DNS check unless `skip_email_dns_validations` (**chosen**: the
sandbox's "DNS" fails exactly the domains under `.invalid`). `display_name` ≤100, `phone`
keeps 5–20 digits, `old_provider_id` unique per account, `password_type` needs `password`,
`import_payment_methods` needs `payment_gateway_id` (`cus_…`, create only; **chosen**: it
saves one card source with that gateway id). `organization` must be an organization of the
site (null detaches); `default_source_id` (update only) a source of this customer.
Accounts on the TAP gateway need `email`, `first_name`, `last_name`, `phone` on create and
may not blank them on update.
"""

from __future__ import annotations

from sandbox import clock
from sandbox.core.subscriptions import end_now
from sandbox.errors import ValidationError
from sandbox.records import new_customer, new_source, set_names
from sandbox.store import Account, Store
from sandbox.validation import MISSING, Checker, merge_metadata

COMMON = {
    "email",
    "skip_email_dns_validations",
    "first_name",
    "last_name",
    "display_name",
    "phone",
    "mail_marketing",
    "tele_marketing",
    "email_hardbounce",
    "metadata",
    "old_provider_id",
    "password",
    "password_type",
    "organization",
}
CREATE_ONLY = {"import_payment_methods", "payment_gateway_id"}
UPDATE_ONLY = {"default_source_id"}
TAP_REQUIRED = ("email", "first_name", "last_name", "phone")


def _checked(body: dict, *, creating: bool) -> tuple[dict, Checker]:
    check = Checker(body, COMMON | (CREATE_ONLY if creating else UPDATE_ONLY))
    values = {
        "email": check.email("email"),
        "first_name": check.string("first_name"),
        "last_name": check.string("last_name"),
        "display_name": check.string("display_name", max_len=100),
        "phone": check.phone(),
        "metadata": check.metadata(),
        "mail_marketing": check.boolean("mail_marketing"),
        "tele_marketing": check.boolean("tele_marketing"),
        "email_hardbounce": check.boolean("email_hardbounce"),
        "old_provider_id": check.string("old_provider_id", max_len=191),
        "organization": check.integer("organization", nullable=True, low=1),
    }
    skip_dns = check.boolean("skip_email_dns_validations")
    password = check.string("password", max_len=255)
    password_type = check.string("password_type", max_len=50)
    if password_type not in (MISSING, None) and password in (MISSING, None):
        check.add("password_type", "The password type field requires password.")
    if isinstance(values["email"], str) and skip_dns is not True and values["email"].endswith(".invalid"):
        check.add(
            "email",
            "The email domain has no mail server (DNS check); send skip_email_dns_validations: true to skip the check.",
        )
    if creating:
        importing = check.boolean("import_payment_methods")
        gateway_id = check.string("payment_gateway_id", max_len=255)
        if importing is True and gateway_id in (MISSING, None):
            check.add(
                "payment_gateway_id", "The payment gateway id field is required when import payment methods is true."
            )
        elif isinstance(gateway_id, str) and not gateway_id.startswith("cus_"):
            check.add("payment_gateway_id", "The payment gateway id must be a gateway customer id (cus_…).")
        values["_import"] = gateway_id if importing is True and isinstance(gateway_id, str) else MISSING
        identity = {
            name for name in ("email", "old_provider_id", "display_name") if values[name] not in (MISSING, None)
        }
        if not identity and not {"email", "old_provider_id", "display_name"} & set(check.errors):
            check.add("email", "The email field is required when none of old provider id / display name are present.")
    else:
        values["default_source_id"] = check.integer("default_source_id", low=1)
    values["_password"] = password
    return values, check


def _tap_rules(account: Account, values: dict, check: Checker, customer: dict | None) -> None:
    if account.payment_gateway != "tap":
        return
    for name in TAP_REQUIRED:
        value = values.get(name, MISSING)
        if customer is None and value in (MISSING, None):
            check.add(name, f"The {name.replace('_', ' ')} field is required for accounts using the TAP gateway.")
        elif customer is not None and name in values and value is None:
            check.add(name, f"The {name.replace('_', ' ')} cannot be blanked on an account using the TAP gateway.")


def _uniqueness(store: Store, site_id: int, values: dict, own_id: int | None) -> None:
    errors = {}
    email = values.get("email")
    if isinstance(email, str) and any(
        c["email"] == email and c["id"] != own_id for c in store.live("customers", site_id)
    ):
        errors["email"] = ["The email has already been taken."]
    old = values.get("old_provider_id")
    if isinstance(old, str):
        account = store.account_of(site_id)
        for other_site in account.sites:
            if any(c["old_provider_id"] == old and c["id"] != own_id for c in store.live("customers", other_site)):
                errors["old_provider_id"] = ["The old provider id has already been taken."]
                break
    org = values.get("organization")
    if isinstance(org, int) and store.find("organizations", site_id, org) is None:
        errors["organization"] = [f"Organization {org} is not an organization of this site."]
    if errors:
        raise ValidationError(errors)


def create_customer(store: Store, account: Account, site_id: int, body: dict) -> dict:
    values, check = _checked(body, creating=True)
    _tap_rules(account, values, check, None)
    check.done()
    _uniqueness(store, site_id, values, None)
    password = values.pop("_password")
    gateway_id = values.pop("_import")
    fields = {k: v for k, v in values.items() if v is not MISSING}
    fields["metadata"] = {k: v for k, v in (fields.get("metadata") or {}).items() if v is not None}
    now = clock.now_unix()
    customer = store.add(
        "customers", new_customer(store.next_id(), site_id, now, has_password=password not in (MISSING, None), **fields)
    )
    if gateway_id is not MISSING:
        source = store.add(
            "sources",
            new_source(
                store.next_id(),
                site_id,
                customer["id"],
                now,
                brand="visa",
                last4="4242",
                exp_month=12,
                exp_year=2030,
                gateway_id=gateway_id,
            ),
        )
        customer.update(default_source_id=source["id"], is_imported=True)
    return customer


def update_customer(store: Store, account: Account, site_id: int, customer_id: int, body: dict) -> dict:
    customer = store.get("customers", site_id, customer_id)
    values, check = _checked(body, creating=False)
    _tap_rules(account, values, check, customer)
    check.done()
    _uniqueness(store, site_id, values, customer_id)
    identity = ("email", "display_name", "old_provider_id")
    if all((customer[n] if values[n] is MISSING else values[n]) is None for n in identity):
        raise ValidationError(
            {"email": ["The email field is required when none of old provider id / display name are present."]}
        )
    source_id = values.pop("default_source_id")
    if source_id is not MISSING:
        source = store.find("sources", site_id, source_id)
        if source is None or source["user_id"] != customer_id:
            raise ValidationError(
                {"default_source_id": [f"Source {source_id} is not a payment source of customer {customer_id}."]}
            )
        customer["default_source_id"] = source_id
    password = values.pop("_password")
    now = clock.now_unix()
    if password not in (MISSING, None):
        customer.update(has_password=True, password_last_updated_at=now)
    for name, value in values.items():
        if value is MISSING:
            continue
        customer[name] = merge_metadata(customer["metadata"], value) if name == "metadata" else value
    set_names(customer)
    customer["updated_at"] = now
    return customer


def delete_customer(store: Store, site_id: int, customer_id: int) -> None:
    """Soft delete: active subscriptions end now, then the customer, its subscriptions,
    payment sources and addresses are soft-deleted (gone from the API; irreversible)."""
    customer = store.get("customers", site_id, customer_id)
    now = clock.now_unix()
    for subscription in store.live("subscriptions", site_id):
        if subscription["user_id"] == customer_id:
            if subscription["status"] not in ("canceled", "expired"):
                end_now(subscription, now, reason="Customer deleted", by_type="admin")
            subscription["deleted_at"] = now
    for kind in ("sources", "addresses"):
        for obj in store.live(kind, site_id):
            if obj["user_id"] == customer_id:
                obj["deleted_at"] = now
    customer["deleted_at"] = customer["updated_at"] = now
