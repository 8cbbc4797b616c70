"""Subscriptions (CORE_API.md §8.3): create and cancel (`DELETE /subscriptions/{id}`).

Create: `user_id` (or `customer_old_provider_id`), `plan_id` (or `plan_old_provider_id`),
`quantity` required 1–100000, `collection_method` `charge_automatically` (default; then
`source_id`/`source_old_provider_id` is required and must be the customer's) or
`send_invoice`, `coupon_code`, `address_id` (the customer's), `auto_renew`, `campaign_key`,
`trial_period_days` xor `current_period_end` (future), `next_invoice_date` (needs and equals
`current_period_end`), `start_date` (future → `billing_behavior` required), `metadata`
(array of objects), `domains` (membership plans only), `shipments_remaining`,
`shipments_undeliverable`, gift donor fields. Refused (400): archived plan, coupon of other
plans / expired / used up / other currency, customer at its maximum of
`MAX_SUBSCRIPTIONS_PER_CUSTOMER` (**chosen**) live subscriptions.
**chosen effects:** with a trial → `trialing`, nothing billed; else `active` and a first
invoice (`latest_invoice`): `charge_automatically` pays it at once with the source,
`send_invoice` leaves it open, due in 30 days; a future `start_date` with
`bill_on_start_date` bills nothing yet.

Cancel: `mode` required `period_end`|`now`, `reason` ≤255. Refused (400) for gift-recipient,
agency-managed (**chosen**: plan with an `agency_id`) and pending-payment (**chosen**:
status `incomplete`) subscriptions, already canceled/expired ones, and `period_end` when it
is already set to cancel at period end. `period_end` → `cancel_at_period_end=true`,
`cancel_at=current_period_end`, `canceled_at=now`, status unchanged; `now` → `canceled`,
`canceled_at=ended_at=now` (a "forceful" cancel: its unpaid invoices refuse `pay_offline`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sandbox import clock
from sandbox.errors import BusinessRuleError, ValidationError
from sandbox.records import new_charge, new_invoice, new_subscription
from sandbox.store import Store
from sandbox.validation import MISSING, Checker, lookup

MAX_SUBSCRIPTIONS_PER_CUSTOMER = 25
MAX_QUANTITY = 100_000
STATUSES = ("trialing", "active", "past_due", "unpaid", "incomplete", "canceled", "expired", "extended")
ENDED = ("canceled", "expired")
_CAMPAIGN_KEY = re.compile(r"^[A-Za-z0-9_-]{3,191}$")
CREATE_FIELDS = {
    "user_id",
    "customer_old_provider_id",
    "plan_id",
    "plan_old_provider_id",
    "quantity",
    "collection_method",
    "source_id",
    "source_old_provider_id",
    "coupon_code",
    "address_id",
    "auto_renew",
    "campaign_key",
    "trial_period_days",
    "current_period_end",
    "next_invoice_date",
    "start_date",
    "billing_behavior",
    "metadata",
    "domains",
    "shipments_remaining",
    "shipments_undeliverable",
    "is_gift_donor",
    "gift_recipient_email",
    "gift_recipient_first_name",
    "gift_recipient_last_name",
    "gift_donor_old_provider_id",
    "gift_donor_subscription_id",
}


def discounted(amount: int, coupon: dict | None) -> int:
    """`amount` after the coupon's percent or fixed discount, never below zero."""
    if coupon is None:
        return amount
    if coupon["percent_off"] is not None:
        return amount - round(amount * coupon["percent_off"] / 100)
    return max(0, amount - coupon["amount_off"])


def coupon_refusal(coupon: dict, plan: dict, now: int) -> str | None:
    """Why `coupon` cannot be applied to `plan` now, or None."""
    if coupon["plans"] and plan["id"] not in coupon["plans"]:
        return f"Coupon {coupon['code']} is restricted to other plans."
    if coupon["redeem_by"] is not None and coupon["redeem_by"] < now:
        return f"Coupon {coupon['code']} could only be redeemed until {coupon['redeem_by']} (Unix time)."
    if coupon["max_redemptions"] is not None and coupon["times_redeemed"] >= coupon["max_redemptions"]:
        return f"Coupon {coupon['code']} has reached its maximum number of redemptions."
    if coupon["amount_off"] is not None and coupon["currency"] != plan["currency"]:
        return f"Coupon {coupon['code']} is in {coupon['currency']} but the plan is in {plan['currency']}."
    return None


def _check_create(body: dict) -> tuple[dict, Checker]:
    check = Checker(body, CREATE_FIELDS)
    v = {
        "customer": check.reference("user_id", "customer_old_provider_id", required=True),
        "plan": check.reference("plan_id", "plan_old_provider_id", required=True),
        "quantity": check.integer("quantity", required=True, low=1, high=MAX_QUANTITY),
        "collection_method": check.choice("collection_method", ("charge_automatically", "send_invoice")),
        "source": check.reference("source_id", "source_old_provider_id", required=False),
        "coupon_code": check.string("coupon_code", max_len=191),
        "address_id": check.integer("address_id", nullable=True, low=1),
        "auto_renew": check.boolean("auto_renew"),
        "campaign_key": check.string("campaign_key", max_len=191),
        "trial_period_days": check.integer("trial_period_days", low=0, high=730),
        "current_period_end": check.unix("current_period_end"),
        "next_invoice_date": check.unix("next_invoice_date"),
        "start_date": check.unix("start_date"),
        "billing_behavior": check.choice("billing_behavior", ("bill_immediately", "bill_on_start_date")),
        "shipments_remaining": check.integer("shipments_remaining", nullable=True, low=0),
        "shipments_undeliverable": check.boolean("shipments_undeliverable"),
        "is_gift_donor": check.boolean("is_gift_donor"),
        "gift_recipient_email": check.email("gift_recipient_email"),
        "gift_recipient_first_name": check.string("gift_recipient_first_name"),
        "gift_recipient_last_name": check.string("gift_recipient_last_name"),
        "gift_donor_old_provider_id": check.string("gift_donor_old_provider_id", max_len=191),
        "gift_donor_subscription_id": check.integer("gift_donor_subscription_id", low=1),
    }
    now = clock.now_unix()
    method = "charge_automatically" if v["collection_method"] is MISSING else v["collection_method"]
    v["collection_method"] = method
    if (
        method == "charge_automatically"
        and all(x in (MISSING, None) for x in v["source"])
        and "source_id" not in check.errors
    ):
        check.add("source_id", "The source id field is required when collection method is charge_automatically.")
    if isinstance(v["campaign_key"], str) and not _CAMPAIGN_KEY.match(v["campaign_key"]):
        check.add("campaign_key", "The campaign key must be 3 to 191 letters, digits, - or _.")
    if v["trial_period_days"] not in (MISSING, None) and v["current_period_end"] not in (MISSING, None):
        check.add("trial_period_days", "The trial period days field is prohibited when current period end is present.")
    if isinstance(v["current_period_end"], int) and v["current_period_end"] <= now:
        check.add("current_period_end", "The current period end must be in the future.")
    if v["next_invoice_date"] not in (MISSING, None) and v["next_invoice_date"] != v["current_period_end"]:
        check.add("next_invoice_date", "The next invoice date requires current period end, with the same value.")
    if isinstance(v["start_date"], int) and v["start_date"] > now and v["billing_behavior"] is MISSING:
        check.add(
            "billing_behavior",
            "The billing behavior field is required when start date is in the future "
            "(bill_immediately or bill_on_start_date).",
        )
    metadata = body.get("metadata", MISSING)
    if metadata is not MISSING and (not isinstance(metadata, list) or not all(isinstance(m, dict) for m in metadata)):
        check.add("metadata", "The metadata must be an array of objects.")
    v["metadata"] = metadata if isinstance(metadata, list) else []
    domains = body.get("domains", MISSING)
    if domains is not MISSING and (not isinstance(domains, list) or not all(isinstance(d, str) for d in domains)):
        check.add("domains", "The domains must be an array of strings.")
    v["domains"] = domains
    gift_donor_link = (
        v["gift_donor_old_provider_id"] not in (MISSING, None) or v["gift_donor_subscription_id"] is not MISSING
    )
    if v["is_gift_donor"] is True and gift_donor_link:
        check.add(
            "is_gift_donor",
            "The is gift donor field is prohibited with gift donor old provider id or gift donor subscription id.",
        )
    if v["is_gift_donor"] is True and v["gift_recipient_email"] in (MISSING, None):
        check.add("gift_recipient_email", "The gift recipient email field is required when is gift donor is true.")
    return v, check


def create_subscription(store: Store, site_id: int, body: dict) -> dict:
    v, check = _check_create(body)
    check.done()
    customer = lookup(store, site_id, "customers", v["customer"], "user_id", "customer_old_provider_id")
    plan = lookup(store, site_id, "plans", v["plan"], "plan_id", "plan_old_provider_id")
    source = lookup(store, site_id, "sources", v["source"], "source_id", "source_old_provider_id")
    errors = {}
    if source is not None and source["user_id"] != customer["id"]:
        errors["source_id"] = [f"Source {source['id']} is not a payment source of customer {customer['id']}."]
    address = None
    if v["address_id"] not in (MISSING, None):
        address = store.find("addresses", site_id, v["address_id"])
        if address is None or address["user_id"] != customer["id"]:
            errors["address_id"] = [f"Address {v['address_id']} is not an address of customer {customer['id']}."]
    coupon = None
    if isinstance(v["coupon_code"], str):
        code = v["coupon_code"].casefold()
        coupon = next((c for c in store.live("coupons", site_id) if c["code"].casefold() == code), None)
        if coupon is None:
            errors["coupon_code"] = ["The selected coupon code is invalid."]
    if v["domains"] is not MISSING and plan["type"] != "membership":
        errors["domains"] = ["The domains field is only allowed for membership plans."]
    if (
        v["gift_donor_subscription_id"] not in (MISSING, None)
        and store.find("subscriptions", site_id, v["gift_donor_subscription_id"]) is None
    ):
        errors["gift_donor_subscription_id"] = ["The selected gift donor subscription id is invalid."]
    if errors:
        raise ValidationError(errors)
    now = clock.now_unix()
    if plan["active"] != "active":
        raise BusinessRuleError(f"Plan {plan['id']} is archived and cannot be subscribed to.")
    if coupon is not None and (reason := coupon_refusal(coupon, plan, now)):
        raise BusinessRuleError(reason)
    live = [
        s for s in store.live("subscriptions", site_id) if s["user_id"] == customer["id"] and s["status"] not in ENDED
    ]
    if len(live) >= MAX_SUBSCRIPTIONS_PER_CUSTOMER:
        raise BusinessRuleError(
            f"Customer {customer['id']} already has the maximum of {MAX_SUBSCRIPTIONS_PER_CUSTOMER} subscriptions."
        )
    return start_subscription(store, site_id, customer, plan, coupon, source, address, v, now)


def start_subscription(
    store: Store, site_id: int, customer: dict, plan: dict, coupon, source, address, v: dict, now: int
) -> dict:
    """Store a checked new subscription and bill it (also used by the Open API's subscribe)."""
    start = v["start_date"] if isinstance(v["start_date"], int) else now
    trial_days = v["trial_period_days"] if isinstance(v["trial_period_days"], int) else 0
    start_moment = datetime.fromtimestamp(start, UTC)
    trial_end = clock.unix(start_moment + timedelta(days=trial_days)) if trial_days else None
    if trial_end:
        period_end = trial_end
    elif isinstance(v["current_period_end"], int):
        period_end = v["current_period_end"]
    else:
        period_end = clock.unix(clock.add_interval(start_moment, plan["interval"], plan["interval_count"]))
    method = v["collection_method"]
    subscription = store.add(
        "subscriptions",
        new_subscription(
            store.next_id(),
            site_id,
            customer["id"],
            plan,
            now,
            status="trialing" if trial_end else "active",
            period_start=start,
            period_end=period_end,
            quantity=v["quantity"],
            coupon_id=coupon["id"] if coupon else None,
            address_id=address["id"] if address else None,
            source_id=source["id"] if source else None,
            billing=method,
            auto_renew=None if v["auto_renew"] is MISSING else v["auto_renew"],
            trial_end=trial_end,
            metadata=v["metadata"],
        ),
    )
    if isinstance(v["shipments_remaining"], int):
        subscription["shipments_remaining"] = v["shipments_remaining"]
    if v["is_gift_donor"] is True:
        subscription.update(is_gift_donor=True, gift_code=f"GIFT{subscription['id']:08d}")
    if coupon is not None:
        coupon["times_redeemed"] += 1
    amount = discounted(plan["amount"] * v["quantity"], coupon)
    later = isinstance(v["start_date"], int) and v["start_date"] > now and v["billing_behavior"] == "bill_on_start_date"
    if trial_end or later or amount == 0:
        return subscription
    due = now if method == "charge_automatically" else clock.unix(datetime.fromtimestamp(now, UTC) + timedelta(days=30))
    invoice = store.add(
        "invoices",
        new_invoice(
            store.next_id(),
            site_id,
            customer["id"],
            plan["currency"],
            [{"description": f"{plan['nickname']} × {v['quantity']}", "unit_price": amount, "quantity": 1}],
            now,
            status="open",
            subscription_id=subscription["id"],
            billing_reason="subscription_create",
            billing=method,
            due_date=due,
            period_start=start,
            period_end=period_end,
        ),
    )
    subscription["latest_invoice"] = invoice["id"]
    if method == "charge_automatically":
        store.add(
            "charges",
            new_charge(
                store.next_id(), site_id, customer["id"], amount, plan["currency"], now, invoice_id=invoice["id"]
            ),
        )
        invoice.update(amount_paid=amount, amount_remaining=0, status="paid", paid=True, paid_at=now)
    return subscription


def end_now(subscription: dict, now: int, *, reason: str | None, by_type: str) -> None:
    """End a subscription immediately (a "forceful" cancel: no longer one that ends at its
    period's end, which is how its invoices tell, CORE_API.md §8.4)."""
    subscription.update(
        status="canceled",
        cancel_at_period_end=False,
        canceled_at=now,
        ended_at=now,
        auto_renew=False,
        renews_at=None,
        cancel_reason=reason,
        canceled_by_type=by_type,
    )


def cancel_refusal(store: Store, site_id: int, subscription: dict) -> str | None:
    """Why `subscription` cannot be canceled at all, or None (shared with the Open API)."""
    subscription_id = subscription["id"]
    plan = store.by_site["plans"][site_id].get(subscription["plan"])
    if subscription["status"] in ENDED:
        return f"Subscription {subscription_id} is already {subscription['status']}."
    if subscription["is_gift_recipient"]:
        return (
            f"Subscription {subscription_id} was received as a gift; a gift recipient's subscription "
            "cannot be canceled."
        )
    if plan is not None and plan["agency_id"] is not None:
        return f"Subscription {subscription_id} is managed by an agency and cannot be canceled here."
    if subscription["status"] == "incomplete":
        return f"Subscription {subscription_id} is pending payment and cannot be canceled."
    return None


def cancel_subscription(store: Store, site_id: int, subscription_id: int, body: dict) -> dict:
    check = Checker(body, {"mode", "reason"})
    mode = check.choice("mode", ("period_end", "now"), required=True)
    reason = check.string("reason", max_len=255)
    check.done()
    subscription = store.get("subscriptions", site_id, subscription_id)
    if refusal := cancel_refusal(store, site_id, subscription):
        raise BusinessRuleError(refusal)
    now = clock.now_unix()
    reason = None if reason is MISSING else reason
    if mode == "period_end":
        if subscription["cancel_at_period_end"]:
            raise BusinessRuleError(
                f"Subscription {subscription_id} is already set to cancel at the end of its period."
            )
        subscription.update(
            cancel_at_period_end=True,
            cancel_at=subscription["current_period_end"],
            canceled_at=now,
            auto_renew=False,
            renews_at=None,
            cancel_reason=reason,
            canceled_by_type="api",
        )
    else:
        end_now(subscription, now, reason=reason, by_type="api")
    return subscription
