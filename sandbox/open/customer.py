"""The customer resource (OPEN_API.md §3, §5.3): what protected writes answer, `POST /customer`
(get) and `PUT /customer` (partial update).

**chosen** resource: the Core customer fields (CORE_API.md §8.2) with `default_source` the
saved source object (or null), plus `subscriptions`, `addresses`, `sources`, `invoices`
(the customer's live objects in their Core shapes, id order) and `gift_recipients`
(`{subscription_id, email, first_name, last_name, start_date, message}` of gifts this
customer gave), and `auth_token` = `token` (the fresh token). Answers are
`{"data": resource}`; address writes add `"meta": {account_id, site_id, features}`.

Update accepts the register profile fields except `password` and `security_token`
(`email`, `username`, `display_name`, `first_name`, `last_name`, `phone`, `salutation`,
`title`, `organization` (free text, shown as `organization_name`: Core's `organization` is
an organization id), `old_provider_id`, `metadata`, `language`); only the fields sent
change; `metadata` is merged (a null value removes a key); a new `email` sets
`email_confirm` false and, when the site's `email_verify_enabled`, puts a verification mail
in the outbox. `email` and `username` stay unique per account (400).
"""

from __future__ import annotations

from sandbox import clock
from sandbox.core.present import present
from sandbox.errors import ValidationError
from sandbox.open.pipeline import OpenCall
from sandbox.records import set_names
from sandbox.store import Store
from sandbox.validation import MISSING, Checker, merge_metadata

PROFILE_FIELDS = (
    "username",
    "display_name",
    "first_name",
    "last_name",
    "phone",
    "salutation",
    "title",
    "organization",
    "old_provider_id",
    "metadata",
    "language",
)
LANGUAGES = ("en", "fr", "it", "ko", "es", "de")


def owned(store: Store, kind: str, site_id: int, customer_id: int) -> list[dict]:
    key = "customer_id" if kind == "invoices" else "user_id"
    return [obj for obj in store.live(kind, site_id) if obj[key] == customer_id]


def resource(store: Store, site_id: int, customer: dict, token: str | None) -> dict:
    """The customer resource; `token` None (logout) leaves `auth_token`/`token` null."""
    view = present("customers", customer)
    source = store.find("sources", site_id, customer["default_source_id"]) if customer["default_source_id"] else None
    view["default_source"] = present("sources", source) if source else None
    view["language"] = customer.get("_language", "en")
    view["organization_name"] = customer.get("_organization_name")
    for kind in ("subscriptions", "addresses", "sources", "invoices"):
        view[kind] = [present(kind, obj) for obj in owned(store, kind, site_id, customer["id"])]
    view["gift_recipients"] = [
        {"subscription_id": s["id"], **s["_gift_recipient"]}
        for s in owned(store, "subscriptions", site_id, customer["id"])
        if s.get("_gift_recipient")
    ]
    view["auth_token"] = view["token"] = token
    return view


def answer(call: OpenCall, customer: dict | None = None, **extra) -> tuple[int, dict]:
    """200 `{"data": customer resource with a fresh token, **extra}`."""
    customer = customer if customer is not None else call.customer
    return 200, {"data": resource(call.store, call.site_id, customer, call.new_token(customer["id"])), **extra}


def language(check: Checker):
    """`language` (ISO 639-1, OPEN_API.md §1): one of LANGUAGES, any other code falls back to `en`."""
    value = check.string("language", max_len=10)
    if isinstance(value, str):
        return value.lower() if value.lower() in LANGUAGES else "en"
    return value


def check_profile(check: Checker) -> dict:
    """The optional profile fields shared by register and update (None/MISSING when absent)."""
    values = {
        "username": check.string("username", max_len=191),
        "display_name": check.string("display_name", max_len=100),
        "first_name": check.string("first_name"),
        "last_name": check.string("last_name"),
        "phone": check.phone(),
        "salutation": check.string("salutation", max_len=50),
        "title": check.string("title", max_len=100),
        "organization": check.string("organization"),
        "old_provider_id": check.string("old_provider_id", max_len=191),
        "metadata": check.metadata(),
        "language": language(check),
    }
    username = values["username"]
    if isinstance(username, str) and not all(ch.isalnum() or ch in "-_" for ch in username):
        check.add("username", "The username may only contain letters, digits, dashes and underscores.")
        values["username"] = MISSING
    return values


def taken(store: Store, site_id: int, field: str, value: str, own_id: int | None) -> bool:
    """True when another live customer of the site's account has `field` == `value` (case-insensitive)."""
    value = value.casefold()
    account = store.account_of(site_id)
    return any(
        isinstance(c.get(field), str) and c[field].casefold() == value and c["id"] != own_id
        for other_site in account.sites
        for c in store.live("customers", other_site)
    )


def unique_or_400(store: Store, site_id: int, values: dict, own_id: int | None) -> None:
    errors = {}
    for field in ("email", "username"):
        if isinstance(values.get(field), str) and taken(store, site_id, field, values[field], own_id):
            errors[field] = [f"The {field} has already been taken."]
    if errors:
        raise ValidationError(errors)


def apply_profile(customer: dict, values: dict) -> None:
    for name, value in values.items():
        if value is MISSING:
            continue
        if name == "language":
            customer["_language"] = value
        elif name == "metadata":
            customer["metadata"] = merge_metadata(customer["metadata"], value)
        elif name == "organization":
            customer["_organization_name"] = value  # free text here; Core's `organization` is an id
        else:
            customer[name] = value
    set_names(customer)


def get_customer(call: OpenCall):
    Checker(call.body, {"language"}).done()
    return answer(call)


def update_customer(call: OpenCall):
    check = Checker(call.body, {"email", *PROFILE_FIELDS})
    values = {"email": check.email("email"), **check_profile(check)}
    check.done()
    customer = call.customer
    unique_or_400(call.store, call.site_id, values, customer["id"])
    if values["email"] is None:
        raise ValidationError({"email": ["The email cannot be removed."]})
    new_email = isinstance(values["email"], str) and values["email"] != customer["email"]
    apply_profile(customer, values)
    if new_email:
        customer["email_confirm"] = False
        if call.site.open.email_verify_enabled:
            call.store.open.outbox.append(
                {
                    "type": "email_verification",
                    "site_id": call.site_id,
                    "to": customer["email"],
                    "customer_id": customer["id"],
                    "sent_at": clock.now_unix(),
                }
            )
    customer["updated_at"] = clock.now_unix()
    return answer(call)
