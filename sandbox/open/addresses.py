"""Addresses through the Open API (OPEN_API.md §5.6): `POST /address`, `PUT /address/{id}`.

Fields: `type` (`shipping` default, `billing`), `first_name`, `last_name`, `line1`,
`line2`, `city`, `state`, `country`, `postal_code`, `is_default`, plus Core's `company`
and `phone`. Create needs `country` and `line1`. The Core rules (CORE_API.md §8.9) apply to
lengths, `state` (required for US/CA/AU) and `postal_code` (US/CA when the account has taxes
enabled); one default per customer and type. Update: only the customer's own address (else
404); `type` cannot change (400); `country`/`state` not while a subscription uses it (400).
Both answer the customer with a fresh token and `meta`: `{account_id, site_id, features}`
(**chosen** `features`: []).
"""

from __future__ import annotations

from sandbox.core import addresses as core_addresses
from sandbox.errors import NotFound, ValidationError
from sandbox.open.customer import answer
from sandbox.open.pipeline import OpenCall
from sandbox.validation import Checker

FIELDS = {
    "type",
    "first_name",
    "last_name",
    "line1",
    "line2",
    "city",
    "state",
    "country",
    "postal_code",
    "is_default",
    "company",
    "phone",
}
TYPES = ("shipping", "billing")


def _meta(call: OpenCall) -> dict:
    return {"account_id": call.account.id, "site_id": call.site_id, "features": []}


def create(call: OpenCall):
    check = Checker(call.body, FIELDS)
    check.choice("type", TYPES)
    check.done()
    body = {"type": "shipping", **call.body, "customer_id": call.customer["id"]}
    core_addresses.create_address(call.store, call.account, call.site_id, body)
    return answer(call, meta=_meta(call))


def update(call: OpenCall):
    check = Checker(call.body, FIELDS)
    check.done()
    address = call.store.find("addresses", call.site_id, call.path_params["id"])
    if address is None or address["user_id"] != call.customer["id"]:
        raise NotFound(f"Address {call.path_params['id']} not found.")
    if "type" in call.body and call.body["type"] != address["type"]:
        raise ValidationError(
            {"type": [f"The type cannot change (this is a {address['type']} address); create a new address instead."]}
        )
    core_addresses.update_address(call.store, call.account, call.site_id, address["id"], call.body)
    return answer(call, meta=_meta(call))
