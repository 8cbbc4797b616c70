"""Subscriptions through the Open API (OPEN_API.md §5.4): create, `/order` price preview,
cancel, reactivate, renew. The customer is always the token's; a `subscription_id`,
`source_id` or `address_id` of anyone else is "not found".

Create (`POST /subscription`): `plan_id` required (an offered plan of the site, else 404
`Invalid plan provided.`); payment by `source_id` (a saved method of the customer, else
404) or `payment_gateway` + `gateway_token` (see payments.py: declines → 404, `3ds` →
`payment_intent`/`setup_intent`), or `pay_via_send_invoice` (only on plans that allow it,
else 404), or nothing for a free plan; paid plans without any → 400. `quantity` 1–100000
(default 1), `coupon_code` (unknown, expired, used up, other plans or currency → 404),
`campaign_key`, `address_id` (the customer's; required (400) when the plan ships, see
site.py), `metadata` (array of objects), gift fields (`gift_recipient_email` makes the
caller the donor; recorded in `gift_recipients`), `ip_addresses`/`domains` (string arrays;
`domains` only on membership plans → else 404). **chosen effects** (Core's): the plan's
`trial_period_days` starts a trial (nothing billed); else a first invoice paid at once
with the card, or left open (`pay_via_send_invoice`, due in 30 days). With a `3ds` token
the subscription is `incomplete`, its first invoice open, and the answer carries
`payment_intent` (or `setup_intent` during a trial). Answers the customer with a fresh token.

Price preview (`POST /order`): `plan_id` required, `coupon_code`, `address_id`,
`subscription_id` (int|null: the customer's subscription being changed; credits the unused
part of its current period). Answers `{"error": false, "data": {plan_id, currency,
subtotal, discount, proration, taxes: [{name, rate, amount}], tax, balance_applied,
total}}` in cents (**chosen**; `proration` is a sandbox addition, 0 without
`subscription_id`). Taxes apply when the account has `taxes_enabled`: one line at the rate
of the address's country (`TAX_RATES`, the given address, else the customer's default
shipping address, else the site's country); `balance_applied` is the customer's credit in
the plan's currency, up to the amount due. Bad plan, coupon, address or subscription → 404.

Cancel (`POST /subscription/cancel`): `subscription_id` required; `mode` `now` |
`current_period_end` | `last_period_end` (default); `reason` ≤255. `now` only when the
site's `immediate_cancel_enabled` (else 404); it ends the subscription at once (Core's
forceful cancel). The other two set `cancel_at_period_end` with `cancel_at` =
`current_period_end` (no schedules in the sandbox, so both ends coincide). Refused (404 +
message): unknown or another customer's subscription, one already ended or already set
to cancel, a gift recipient's, an agency-managed one, one pending payment.

Reactivate (`POST /subscription/reactivate`): `subscription_id` required; undoes a pending
end-of-period cancellation while in its grace period (now before `cancel_at`), only for an
auto-renewing plan and never for a gift (received or given). Else 404 + message.

Renew (`POST /subscription/renew`): `plan_id`, `subscription_id` required; optional
`source_id` or gateway token (default: the customer's default method), `coupon_code`,
`address_id` (required when the plan ships), `language`. **chosen effect:** the
subscription moves to `plan_id` and gains one more billing period after its current one,
billed now (an invoice paid with the card). Every refusal → 400 + message (§5.4): unknown or
another customer's subscription, an ended one, a gift recipient's, bad plan/coupon, no
payment method, a declined card.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sandbox import clock
from sandbox.core.subscriptions import (
    ENDED,
    MAX_SUBSCRIPTIONS_PER_CUSTOMER,
    cancel_refusal,
    coupon_refusal,
    discounted,
    end_now,
    start_subscription,
)
from sandbox.errors import APIError, BusinessRuleError, NotFound, ValidationError
from sandbox.open.customer import answer, language, owned
from sandbox.open.payments import intent, paying_source, payment_fields
from sandbox.open.pipeline import OpenCall
from sandbox.open.site import find_plan, ships
from sandbox.records import new_charge, new_invoice
from sandbox.validation import MISSING, Checker

CANCEL_MODES = ("now", "current_period_end", "last_period_end")
TAX_RATES = {
    "US": ("Sales tax", 8.0),
    "CA": ("GST", 5.0),
    "GB": ("VAT", 20.0),
    "DE": ("VAT", 19.0),
    "AU": ("GST", 10.0),
    "FR": ("TVA", 20.0),
}
CREATE_FIELDS = {
    "plan_id",
    "source_id",
    "payment_gateway",
    "gateway_token",
    "pay_via_send_invoice",
    "quantity",
    "coupon_code",
    "campaign_key",
    "address_id",
    "metadata",
    "gift_recipient_email",
    "gift_recipient_first_name",
    "gift_recipient_last_name",
    "gift_start_date",
    "gift_message",
    "ip_addresses",
    "domains",
    "language",
}


def own_subscription(call: OpenCall, subscription_id, error=NotFound) -> dict:
    subscription = call.store.find("subscriptions", call.site_id, subscription_id)
    if subscription is None or subscription["user_id"] != call.customer["id"]:
        raise error(f"Subscription {subscription_id} not found.")
    return subscription


def own_address(call: OpenCall, address_id, error=NotFound) -> dict | None:
    if address_id in (MISSING, None):
        return None
    address = call.store.find("addresses", call.site_id, address_id)
    if address is None or address["user_id"] != call.customer["id"]:
        raise error(f"Address {address_id} not found.")
    return address


def find_coupon(call: OpenCall, code, plan: dict, error=NotFound) -> dict | None:
    if code in (MISSING, None):
        return None
    coupon = next(
        (c for c in call.store.live("coupons", call.site_id) if c["code"].casefold() == code.casefold()), None
    )
    if coupon is None:
        raise error("Invalid coupon code.")
    if reason := coupon_refusal(coupon, plan, clock.now_unix()):
        raise error(reason)
    return coupon


def _string_list(check: Checker, body: dict, field: str):
    value = body.get(field, MISSING)
    if value is not MISSING and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
        check.add(field, f"The {field.replace('_', ' ')} must be an array of strings.")
        return MISSING
    return value


def create(call: OpenCall):
    body = call.body
    check = Checker(body, CREATE_FIELDS)
    plan_id = check.integer("plan_id", required=True, low=1)
    pay = payment_fields(check)
    by_invoice = check.boolean("pay_via_send_invoice")
    quantity = check.integer("quantity", low=1, high=100_000)
    coupon_code = check.string("coupon_code", max_len=191)
    check.string("campaign_key", max_len=191)
    address_id = check.integer("address_id", nullable=True, low=1)
    gift_email = check.email("gift_recipient_email")
    gift = {
        "email": gift_email,
        "first_name": check.string("gift_recipient_first_name"),
        "last_name": check.string("gift_recipient_last_name"),
        "start_date": check.date("gift_start_date"),
        "message": check.string("gift_message", max_len=1000),
    }
    metadata = body.get("metadata", MISSING)
    if metadata is not MISSING and (not isinstance(metadata, list) or not all(isinstance(m, dict) for m in metadata)):
        check.add("metadata", "The metadata must be an array of objects.")
    _string_list(check, body, "ip_addresses")
    domains = _string_list(check, body, "domains")
    language(check)
    check.done()
    plan = find_plan(call.store, call.site_id, plan_id)
    quantity = 1 if quantity is MISSING else quantity
    coupon = find_coupon(call, coupon_code, plan)
    address = own_address(call, address_id)
    if domains not in (MISSING, None) and plan["type"] != "membership":
        raise NotFound("The domains field is only allowed for membership plans.")
    if ships(plan) and address is None:
        raise ValidationError({"address_id": ["The address id field is required: this plan ships."]})
    customer = call.customer
    if customer["currency"] not in (None, plan["currency"]) and customer["balance"] != 0:
        raise NotFound(f"The plan is in {plan['currency']} but your account uses {customer['currency']}.")
    if by_invoice is True and not plan["allow_send_invoice"]:
        raise NotFound("This plan cannot be paid by invoice.")
    live = [s for s in owned(call.store, "subscriptions", call.site_id, customer["id"]) if s["status"] not in ENDED]
    if len(live) >= MAX_SUBSCRIPTIONS_PER_CUSTOMER:
        raise NotFound(f"You already have the maximum of {MAX_SUBSCRIPTIONS_PER_CUSTOMER} subscriptions.")
    amount = discounted(plan["amount"] * quantity, coupon)
    paying = pay["source_id"] is not MISSING or pay["gateway_token"] not in (MISSING, None)
    if amount > 0 and not paying and by_invoice is not True:
        raise ValidationError(
            {
                "source_id": [
                    "A payment is required: send source_id, or payment_gateway and "
                    "gateway_token, or pay_via_send_invoice."
                ]
            }
        )
    source, action = paying_source(call, pay) if paying else (None, False)
    method = "send_invoice" if by_invoice is True or action else "charge_automatically"
    now = clock.now_unix()
    v = {
        "start_date": MISSING,
        "trial_period_days": plan["trial_period_days"] or MISSING,
        "current_period_end": MISSING,
        "collection_method": method,
        "quantity": quantity,
        "auto_renew": MISSING,
        "metadata": metadata if isinstance(metadata, list) else [],
        "shipments_remaining": MISSING,
        "is_gift_donor": gift_email not in (MISSING, None),
        "billing_behavior": MISSING,
    }
    subscription = start_subscription(call.store, call.site_id, customer, plan, coupon, source, address, v, now)
    if v["is_gift_donor"]:
        subscription["_gift_recipient"] = {k: (None if val is MISSING else val) for k, val in gift.items()}
    if not action:
        return answer(call)
    # 3-D Secure: nothing is paid until the front end finishes the intent.
    subscription.update(
        billing="charge_automatically",
        status="incomplete" if not subscription["trial_end"] else subscription["status"],
        days_until_due=None,
        default_source=source["id"],
    )
    invoice = (
        call.store.find("invoices", call.site_id, subscription["latest_invoice"])
        if subscription["latest_invoice"]
        else None
    )
    if invoice is None:
        return answer(call, setup_intent=intent("setup_intent", subscription_id=subscription["id"]))
    invoice.update(billing="charge_automatically", due_date=now)
    return answer(
        call,
        payment_intent=intent(
            "payment_intent",
            invoice["amount_remaining"],
            invoice["currency"],
            invoice_id=invoice["id"],
            subscription_id=subscription["id"],
        ),
    )


def _tax_country(call: OpenCall, address: dict | None) -> str:
    if address is not None:
        return address["country"]
    default = next(
        (
            a
            for a in owned(call.store, "addresses", call.site_id, call.customer["id"])
            if a["type"] == "shipping" and a["is_default"]
        ),
        None,
    )
    return default["country"] if default else call.site.country_code


def order(call: OpenCall):
    check = Checker(call.body, {"plan_id", "coupon_code", "address_id", "subscription_id", "quantity", "language"})
    plan_id = check.integer("plan_id", required=True, low=1)
    coupon_code = check.string("coupon_code", max_len=191)
    address_id = check.integer("address_id", nullable=True, low=1)
    subscription_id = check.integer("subscription_id", nullable=True, low=1)
    quantity = check.integer("quantity", low=1, high=100_000)
    check.done()
    plan = find_plan(call.store, call.site_id, plan_id)
    coupon = find_coupon(call, coupon_code, plan)
    address = own_address(call, address_id)
    subtotal = plan["amount"] * (1 if quantity is MISSING else quantity)
    discount = subtotal - discounted(subtotal, coupon)
    proration = 0
    if subscription_id not in (MISSING, None):
        current = own_subscription(call, subscription_id)
        proration = _unused_credit(call, current, subtotal - discount)
    taxable = subtotal - discount - proration
    taxes = []
    if call.account.taxes_enabled:
        name, rate = TAX_RATES.get(_tax_country(call, address), ("Tax", 0.0))
        taxes.append({"name": name, "rate": rate, "amount": round(taxable * rate / 100)})
    tax = sum(t["amount"] for t in taxes)
    due = taxable + tax
    customer = call.customer
    credit = customer["balance"] if customer["currency"] in (None, plan["currency"]) else 0
    balance_applied = max(0, min(credit, due))
    return 200, {
        "error": False,
        "data": {
            "plan_id": plan["id"],
            "currency": plan["currency"],
            "subtotal": subtotal,
            "discount": discount,
            "proration": proration,
            "taxes": taxes,
            "tax": tax,
            "balance_applied": balance_applied,
            "total": due - balance_applied,
        },
    }


def _unused_credit(call: OpenCall, subscription: dict, cap: int) -> int:
    """The unused share of `subscription`'s current period at its plan's price (never above `cap`)."""
    if subscription["status"] in ENDED:
        return 0
    plan = call.store.by_site["plans"][call.site_id].get(subscription["plan"])
    start, end, now = subscription["current_period_start"], subscription["current_period_end"], clock.now_unix()
    if plan is None or end <= now or end <= start:
        return 0
    paid = plan["amount"] * subscription["quantity"]
    return max(0, min(cap, round(paid * (end - now) / (end - start))))


def cancel(call: OpenCall):
    check = Checker(call.body, {"subscription_id", "mode", "reason"})
    subscription_id = check.integer("subscription_id", required=True, low=1)
    mode = check.choice("mode", CANCEL_MODES)
    reason = check.string("reason", max_len=255)
    check.done()
    mode = "last_period_end" if mode is MISSING else mode
    reason = None if reason is MISSING else reason
    subscription = own_subscription(call, subscription_id)
    if refusal := cancel_refusal(call.store, call.site_id, subscription):
        raise NotFound(refusal)
    now = clock.now_unix()
    if mode == "now":
        if not call.site.open.immediate_cancel_enabled:
            raise NotFound("Immediate cancellation is not enabled for this site; cancel at the end of the period.")
        end_now(subscription, now, reason=reason, by_type="customer")
    else:
        if subscription["cancel_at_period_end"]:
            raise NotFound(f"Subscription {subscription_id} is already set to cancel at the end of its period.")
        subscription.update(
            cancel_at_period_end=True,
            cancel_at=subscription["current_period_end"],
            canceled_at=now,
            auto_renew=False,
            renews_at=None,
            cancel_reason=reason,
            canceled_by_type="customer",
        )
    return answer(call)


def reactivate(call: OpenCall):
    check = Checker(call.body, {"subscription_id"})
    subscription_id = check.integer("subscription_id", required=True, low=1)
    check.done()
    subscription = own_subscription(call, subscription_id)
    plan = call.store.by_site["plans"][call.site_id].get(subscription["plan"])
    if subscription["is_gift_recipient"] or subscription["is_gift_donor"]:
        raise NotFound(f"Subscription {subscription_id} is a gift and cannot be reactivated.")
    if subscription["status"] in ENDED or not subscription["cancel_at_period_end"]:
        raise NotFound(f"Subscription {subscription_id} is not waiting to be canceled; there is nothing to reactivate.")
    if subscription["cancel_at"] is not None and subscription["cancel_at"] <= clock.now_unix():
        raise NotFound(f"Subscription {subscription_id} is no longer in its grace period.")
    if plan is None or not plan["auto_renew"]:
        raise NotFound(f"Subscription {subscription_id} is not on an auto-renewing plan.")
    subscription.update(
        cancel_at_period_end=False,
        cancel_at=None,
        canceled_at=None,
        auto_renew=True,
        renews_at=subscription["current_period_end"],
        cancel_reason=None,
        canceled_by_type=None,
    )
    return answer(call)


def renew(call: OpenCall):
    check = Checker(
        call.body,
        {
            "plan_id",
            "subscription_id",
            "source_id",
            "payment_gateway",
            "gateway_token",
            "coupon_code",
            "language",
            "address_id",
        },
    )
    plan_id = check.integer("plan_id", required=True, low=1)
    subscription_id = check.integer("subscription_id", required=True, low=1)
    pay = payment_fields(check)
    coupon_code = check.string("coupon_code", max_len=191)
    address_id = check.integer("address_id", nullable=True, low=1)
    language(check)
    check.done()
    subscription = own_subscription(call, subscription_id, BusinessRuleError)
    try:
        plan = find_plan(call.store, call.site_id, plan_id)
    except NotFound as exc:
        raise BusinessRuleError(exc.message) from None
    coupon = find_coupon(call, coupon_code, plan, BusinessRuleError)
    address = own_address(call, address_id, BusinessRuleError)
    if subscription["status"] in ENDED:
        raise BusinessRuleError(f"Subscription {subscription_id} has ended; subscribe again instead.")
    if subscription["is_gift_recipient"]:
        raise BusinessRuleError(f"Subscription {subscription_id} was received as a gift; the donor renews it.")
    if ships(plan) and address is None and subscription["address"] is None:
        raise BusinessRuleError("The address id field is required: this plan ships.")
    try:
        source, action = paying_source(call, pay)
    except APIError as exc:
        raise BusinessRuleError(exc.message) from None
    if source is None:
        default = call.customer["default_source_id"]
        source = call.store.find("sources", call.site_id, default) if default else None
    if source is None:
        raise BusinessRuleError("No payment method: send source_id or a gateway token, or save a card first.")
    if action:
        raise BusinessRuleError("This card needs extra authentication; renew with a saved payment method.")
    now = clock.now_unix()
    begin = max(subscription["current_period_end"], now)
    end = clock.unix(clock.add_interval(datetime.fromtimestamp(begin, UTC), plan["interval"], plan["interval_count"]))
    amount = discounted(plan["amount"] * subscription["quantity"], coupon)
    invoice = call.store.add(
        "invoices",
        new_invoice(
            call.store.next_id(),
            call.site_id,
            call.customer["id"],
            plan["currency"],
            [
                {
                    "description": f"{plan['nickname']} × {subscription['quantity']} (renewal)",
                    "unit_price": amount,
                    "quantity": 1,
                }
            ],
            now,
            status="open",
            subscription_id=subscription["id"],
            billing_reason="subscription_cycle",
            due_date=now,
            period_start=begin,
            period_end=end,
        ),
    )
    if amount > 0:
        call.store.add(
            "charges",
            new_charge(
                call.store.next_id(),
                call.site_id,
                call.customer["id"],
                amount,
                plan["currency"],
                now,
                invoice_id=invoice["id"],
            ),
        )
    invoice.update(amount_paid=amount, amount_remaining=0, status="paid", paid=True, paid_at=now)
    if coupon is not None:
        coupon["times_redeemed"] += 1
    subscription.update(
        plan=plan["id"],
        current_period_end=end,
        expires_at=end,
        latest_invoice=invoice["id"],
        renews_at=end if subscription["auto_renew"] else None,
        default_source=source["id"],
        address=address["id"] if address else subscription["address"],
    )
    if subscription["cancel_at_period_end"]:
        subscription["cancel_at"] = end
    return answer(call)
