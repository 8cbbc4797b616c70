"""Payment methods (OPEN_API.md §5.5), the deprecated `POST /source`, invoice payment (§5.7)
and the sandbox's card "gateway" (§6).

Gateway tokens (**chosen**, §6): a token containing `decline` → 404 `Your card was
declined.`, `expired` → 404 `Your card has expired.`, `cvc` → 404 `Your card's security code
is incorrect.`, `processing` → 404 `An error occurred while processing your card.`;
containing `3ds` → extra authentication (`setup_intent` / `payment_intent` with status
`requires_action`; a payment is then left open); any other token starting `tok_` or `pm_`
succeeds (brand from `visa`/`mastercard`/`amex`/`discover` in the token, default visa;
last4 the token's last four digits if it ends in digits, else 4242); anything else → 404
`Invalid payment token.`

A payment method IS a saved source of the Core world: the same id works as `source_id`
everywhere and Core sees it. Payment-method object: `id`, `object` (`payment_method`),
`type` (`card`), `brand`, `last4`, `exp_month`, `exp_year`, `is_default`, `deletable`
(false for the default and for one a live subscription uses), `gateway`, `created_at`.
Answers are `{"data": method}` (create: 201, plus `setup_intent` for 3-D Secure).
Delete (`DELETE /payment_methods/{id}`) refuses (400 + message) the default method and one
used by a subscription that has not ended; another customer's method → 404.

Invoice pay (`POST /invoices/{id}/pay`): `source_id` (the customer's saved method) or
`payment_gateway` + `gateway_token`; another customer's or unknown invoice → 404; an invoice
that is not open or past_due (draft, paid, void, uncollectible) → 404 with the reason
(**chosen**, §4: business refusals are 404 here); charges the full `amount_remaining` (a
card charge, shown in Core `GET /charges`) and answers the customer with a fresh token; for
3-D Secure a `payment_intent` (`requires_action`) and the invoice stays open.
"""

from __future__ import annotations

import re
import secrets

from sandbox import clock
from sandbox.core.invoices import payment_refusal, record_payment
from sandbox.errors import BusinessRuleError, NotFound
from sandbox.open.customer import answer, owned
from sandbox.open.pipeline import OpenCall
from sandbox.records import new_charge, new_source
from sandbox.store import Store
from sandbox.validation import MISSING, Checker

GATEWAYS = ("stripe", "braintree", "vantiv", "tap", "cybersource")
MAX_METHODS = 200
DECLINES = (
    ("decline", "Your card was declined."),
    ("expired", "Your card has expired."),
    ("cvc", "Your card's security code is incorrect."),
    ("processing", "An error occurred while processing your card."),
)
BRANDS = ("visa", "mastercard", "amex", "discover")
ENDED = ("canceled", "expired")
_LAST4 = re.compile(r"(\d{4})$")


def needs_action(token: str) -> bool:
    return "3ds" in token.lower()


def check_token(token: str) -> None:
    """404 for a token the sandbox gateway refuses (see the module docstring)."""
    lowered = token.lower()
    for word, message in DECLINES:
        if word in lowered:
            raise NotFound(message)
    if not lowered.startswith(("tok_", "pm_")):
        raise NotFound("Invalid payment token.")


def intent(kind: str, amount: int | None = None, currency: str | None = None, **links) -> dict:
    """A 3-D Secure intent for the front end to finish (`kind`: payment_intent or setup_intent)."""
    prefix = "pi" if kind == "payment_intent" else "seti"
    ident = f"{prefix}_sbx_{secrets.token_hex(8)}"
    body = {
        "id": ident,
        "object": kind,
        "status": "requires_action",
        "client_secret": f"{ident}_secret_{secrets.token_hex(8)}",
    }
    if amount is not None:
        body.update(amount=amount, currency=currency)
    return {**body, **links}


def save_card(store: Store, site_id: int, customer: dict, token: str, gateway: str, *, make_default: bool) -> dict:
    """A new saved source from a gateway token (token already checked); the customer's first
    one, or `make_default`, becomes the default."""
    methods = owned(store, "sources", site_id, customer["id"])
    if len(methods) >= MAX_METHODS:
        raise NotFound(f"A customer can have at most {MAX_METHODS} payment methods.")
    lowered = token.lower()
    brand = next((b for b in BRANDS if b in lowered), "visa")
    last4 = m.group(1) if (m := _LAST4.search(token)) else "4242"
    now = clock.now_unix()
    source = store.add(
        "sources",
        new_source(
            store.next_id(),
            site_id,
            customer["id"],
            now,
            brand=brand,
            last4=last4,
            exp_month=12,
            exp_year=clock.now().year + 4,
            gateway_id=token,
        ),
    )
    source["_gateway"] = gateway
    if make_default or not methods or customer["default_source_id"] is None:
        customer["default_source_id"] = source["id"]
    return source


def in_use(store: Store, site_id: int, source_id: int) -> bool:
    return any(
        s["default_source"] == source_id and s["status"] not in ENDED for s in store.live("subscriptions", site_id)
    )


def method_view(store: Store, site_id: int, customer: dict, source: dict) -> dict:
    default = customer["default_source_id"] == source["id"]
    return {
        "id": source["id"],
        "object": "payment_method",
        "type": source["type"],
        "brand": source["brand"],
        "last4": source["last4"],
        "exp_month": source["exp_month"],
        "exp_year": source["exp_year"],
        "is_default": default,
        "deletable": not default and not in_use(store, site_id, source["id"]),
        "gateway": source.get("_gateway", "stripe"),
        "created_at": source["created_at"],
    }


def own_source(store: Store, site_id: int, customer: dict, source_id) -> dict:
    """The customer's live saved source, else 404 (also for another customer's)."""
    source = store.find("sources", site_id, source_id)
    if source is None or source["user_id"] != customer["id"]:
        raise NotFound(f"Payment method {source_id} not found.")
    return source


def list_methods(call: OpenCall):
    methods = owned(call.store, "sources", call.site_id, call.customer["id"])
    return 200, {"data": [method_view(call.store, call.site_id, call.customer, s) for s in methods]}


def create_method(call: OpenCall):
    check = Checker(call.body, {"token", "is_default", "payment_gateway"})
    token = check.string("token", max_len=500)
    is_default = check.boolean("is_default")
    gateway = check.choice("payment_gateway", GATEWAYS)
    check.done()
    if token in (MISSING, None):
        raise NotFound("The token field is required: a gateway token of the new card.")
    check_token(token)
    source = save_card(
        call.store,
        call.site_id,
        call.customer,
        token,
        "stripe" if gateway is MISSING else gateway,
        make_default=is_default is True,
    )
    extra = {"setup_intent": intent("setup_intent", payment_method_id=source["id"])} if needs_action(token) else {}
    return 201, {"data": method_view(call.store, call.site_id, call.customer, source), **extra}


def update_method(call: OpenCall):
    check = Checker(
        call.body,
        {
            "is_default",
            "payment_gateway",
            "exp_month",
            "exp_year",
            "token",
            "cybersource_token",
            "paypageRegistrationId",
            "type",
            "lastFour",
        },
    )
    is_default = check.boolean("is_default")
    gateway = check.choice("payment_gateway", GATEWAYS)
    exp_month = check.integer("exp_month", low=1, high=12)
    exp_year = check.integer("exp_year", low=clock.now().year, high=clock.now().year + 50)
    for name in ("token", "cybersource_token", "paypageRegistrationId", "type", "lastFour"):
        check.string(name, max_len=500)
    if is_default is MISSING and gateway is MISSING and not check.errors:
        check.add("is_default", "The is default field is required when payment gateway is not present.")
    if gateway is not MISSING:
        for name, value in (("exp_month", exp_month), ("exp_year", exp_year)):
            if value is MISSING and name not in check.errors:
                check.add(name, f"The {name.replace('_', ' ')} field is required when payment gateway is present.")
    check.done()
    source = own_source(call.store, call.site_id, call.customer, call.path_params["id"])
    if is_default is True:
        call.customer["default_source_id"] = source["id"]
    elif is_default is False and call.customer["default_source_id"] == source["id"]:
        raise BusinessRuleError("Make another payment method the default instead of unsetting this one.")
    if gateway is not MISSING:
        source.update(exp_month=exp_month, exp_year=exp_year, _gateway=gateway)
    source["updated_at"] = clock.now_unix()
    return 200, {"data": method_view(call.store, call.site_id, call.customer, source)}


def delete_method(call: OpenCall):
    Checker(call.body, set()).done()
    source = own_source(call.store, call.site_id, call.customer, call.path_params["id"])
    view = method_view(call.store, call.site_id, call.customer, source)
    if view["is_default"]:
        raise BusinessRuleError("The default payment method cannot be deleted; make another one the default first.")
    if not view["deletable"]:
        raise BusinessRuleError("Cannot delete a payment method used by a subscription.")
    source["deleted_at"] = clock.now_unix()
    view["deletable"] = False
    return 200, {"data": view}


def create_source(call: OpenCall):
    """Deprecated `POST /source`: `token` required, optional `payment_gateway` (stripe); the
    new card becomes the default; answers the customer."""
    check = Checker(call.body, {"token", "payment_gateway", "gateway"})
    token = check.string("token", required=True, nullable=False, max_len=500)
    gateway = check.choice("payment_gateway", GATEWAYS)
    check.choice("gateway", GATEWAYS)
    check.done()
    check_token(token)
    save_card(
        call.store, call.site_id, call.customer, token, "stripe" if gateway is MISSING else gateway, make_default=True
    )
    return answer(call)


def payment_fields(check: Checker) -> dict:
    """`source_id` xor `payment_gateway` + `gateway_token` (shared by pay, subscribe, renew)."""
    v = {
        "source_id": check.integer("source_id", low=1),
        "payment_gateway": check.choice("payment_gateway", GATEWAYS),
        "gateway_token": check.string("gateway_token", max_len=500),
    }
    if v["source_id"] is not MISSING and v["gateway_token"] not in (MISSING, None):
        check.add("source_id", "Send source_id or gateway_token, not both.")
    return v


def paying_source(call: OpenCall, v: dict) -> tuple[dict | None, bool]:
    """(source, needs 3-D Secure) for validated payment fields: the customer's saved source,
    or a card saved from the gateway token (declines → 404); (None, False) when neither."""
    if v["source_id"] is not MISSING:
        return own_source(call.store, call.site_id, call.customer, v["source_id"]), False
    token = v["gateway_token"]
    if token in (MISSING, None):
        return None, False
    check_token(token)
    gateway = "stripe" if v["payment_gateway"] is MISSING else v["payment_gateway"]
    return save_card(call.store, call.site_id, call.customer, token, gateway, make_default=False), needs_action(token)


def pay_invoice(call: OpenCall):
    check = Checker(call.body, {"source_id", "payment_gateway", "gateway_token"})
    v = payment_fields(check)
    if v["source_id"] is MISSING and v["gateway_token"] in (MISSING, None) and not check.errors:
        check.add("source_id", "The source id field is required when gateway token is not present.")
    check.done()
    invoice = call.store.find("invoices", call.site_id, call.path_params["id"])
    if invoice is None or invoice["customer_id"] != call.customer["id"]:
        raise NotFound(f"Invoice {call.path_params['id']} not found.")
    if reason := payment_refusal(call.store, invoice):
        raise NotFound(reason)
    source, action = paying_source(call, v)
    amount = invoice["amount_remaining"]
    if action:
        return answer(
            call, payment_intent=intent("payment_intent", amount, invoice["currency"], invoice_id=invoice["id"])
        )
    now = clock.now_unix()
    charge = call.store.add(
        "charges",
        new_charge(
            call.store.next_id(),
            call.site_id,
            call.customer["id"],
            amount,
            invoice["currency"],
            now,
            invoice_id=invoice["id"],
        ),
    )
    charge["_source_id"] = source["id"]
    record_payment(call.store, invoice, amount, now)
    return answer(call)
