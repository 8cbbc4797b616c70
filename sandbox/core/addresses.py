"""Addresses (CORE_API.md §8.9): create, update, delete.

Create: `customer_id`/`customer_old_provider_id` (a live customer), `type`
(`shipping`|`billing`|`account_primary`), `line1` ≤255, `country` ISO-2 (stored upper
case), `state` ≤255 required for US/CA/AU, `postal_code` ≤45 required for US/CA when the
account has taxes enabled (**chosen** stand-in for AvaTax validation), the optional text
fields ≤255, `phone`, `old_provider_id` ≤191 unique per account, `is_default` (one default
per customer and type: setting it clears the others), `is_default_updated` (also moves the
customer's active subscriptions to this address; refused when taxes are enabled).
Update: same fields except the customer (**chosen**: cannot change); `country` and `state`
cannot change while a subscription uses the address. Delete: 204; **chosen** refused (400)
while a live subscription that has not ended uses the address.
"""

from __future__ import annotations

import re

from sandbox import clock
from sandbox.errors import BusinessRuleError, ValidationError
from sandbox.records import ADDRESS_TEXT_FIELDS, new_address
from sandbox.store import Account, Store
from sandbox.validation import MISSING, Checker, lookup

TYPES = ("shipping", "billing", "account_primary")
STATE_REQUIRED = ("US", "CA", "AU")
POSTAL_REQUIRED_WITH_TAX = ("US", "CA")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
FIELDS = {
    "customer_id",
    "customer_old_provider_id",
    "type",
    "line1",
    "country",
    "is_default",
    "is_default_updated",
    *ADDRESS_TEXT_FIELDS,
}
_LIMITS = {"postal_code": 45, "old_provider_id": 191}


def _checked(body: dict, *, creating: bool) -> tuple[dict, Checker]:
    check = Checker(body, FIELDS)
    v: dict = {}
    if creating:
        v["customer"] = check.reference("customer_id", "customer_old_provider_id", required=True)
    else:
        for name in ("customer_id", "customer_old_provider_id"):
            if name in body:
                check.errors[name] = [f"The {name.replace('_', ' ')} cannot be changed; create a new address instead."]
    v["type"] = check.choice("type", TYPES, required=creating)
    v["line1"] = check.string("line1", required=creating, nullable=False)
    country = check.string("country", required=creating, nullable=False)
    if isinstance(country, str) and not _COUNTRY.match(country):
        check.add("country", "The country must be a two-letter ISO 3166-1 code.")
        country = MISSING
    v["country"] = country.upper() if isinstance(country, str) else country
    for name in ADDRESS_TEXT_FIELDS:
        v[name] = check.string(name, max_len=_LIMITS.get(name, 255))
    v["is_default"] = check.boolean("is_default")
    v["is_default_updated"] = check.boolean("is_default_updated")
    return v, check


def _rules(store: Store, account: Account, site_id: int, v: dict, check: Checker, current: dict | None) -> None:
    def final(name):
        return v[name] if v[name] is not MISSING else (current or {}).get(name)

    country, state, postal = final("country"), final("state"), final("postal_code")
    if country in STATE_REQUIRED and not state:
        check.add("state", f"The state field is required when country is {country}.")
    if account.taxes_enabled and country in POSTAL_REQUIRED_WITH_TAX and not postal:
        check.add("postal_code", f"The postal code field is required when country is {country} (tax validation).")
    if v["is_default_updated"] is True and account.taxes_enabled:
        check.add("is_default_updated", "The is default updated field is not allowed when taxes are enabled.")
    old = v["old_provider_id"]
    if isinstance(old, str):
        for other_site in account.sites:
            if any(
                a["old_provider_id"] == old and (current is None or a["id"] != current["id"])
                for a in store.live("addresses", other_site)
            ):
                check.add("old_provider_id", "The old provider id has already been taken.")
                break
    if current is not None and _in_use(store, site_id, current["id"], ended_too=True):
        for name in ("country", "state"):
            if v[name] is not MISSING and v[name] != current[name]:
                check.add(name, f"The {name} cannot change while a subscription uses this address.")


def _in_use(store: Store, site_id: int, address_id: int, *, ended_too: bool) -> bool:
    return any(
        s["address"] == address_id and (ended_too or s["status"] not in ("canceled", "expired"))
        for s in store.live("subscriptions", site_id)
    )


def _apply_defaults(store: Store, site_id: int, address: dict, v: dict) -> None:
    if address["is_default"]:
        for other in store.live("addresses", site_id):
            if other is not address and other["user_id"] == address["user_id"] and other["type"] == address["type"]:
                other["is_default"] = False
    if v["is_default_updated"] is True:
        for subscription in store.live("subscriptions", site_id):
            if subscription["user_id"] == address["user_id"] and subscription["status"] not in ("canceled", "expired"):
                subscription["address"] = address["id"]


def create_address(store: Store, account: Account, site_id: int, body: dict) -> dict:
    v, check = _checked(body, creating=True)
    _rules(store, account, site_id, v, check, None)
    check.done()
    customer = lookup(store, site_id, "customers", v["customer"], "customer_id", "customer_old_provider_id")
    fields = {k: val for k, val in v.items() if val is not MISSING and k not in ("customer", "is_default_updated")}
    address = store.add("addresses", new_address(store.next_id(), site_id, customer["id"], clock.now_unix(), **fields))
    _apply_defaults(store, site_id, address, v)
    return address


def update_address(store: Store, account: Account, site_id: int, address_id: int, body: dict) -> dict:
    address = store.get("addresses", site_id, address_id)
    v, check = _checked(body, creating=False)
    _rules(store, account, site_id, v, check, address)
    check.done()
    for name, value in v.items():
        if value is MISSING or name == "is_default_updated":
            continue
        if value is None and name in ("type", "line1", "country", "is_default"):
            raise ValidationError({name: [f"The {name.replace('_', ' ')} field may not be null."]})
        address[name] = value
    address["updated_at"] = clock.now_unix()
    _apply_defaults(store, site_id, address, v)
    return address


def delete_address(store: Store, site_id: int, address_id: int) -> None:
    address = store.get("addresses", site_id, address_id)
    if _in_use(store, site_id, address_id, ended_too=False):
        raise BusinessRuleError("Cannot delete address already associated to a subscription")
    address["deleted_at"] = clock.now_unix()
