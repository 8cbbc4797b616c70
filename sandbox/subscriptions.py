"""Subscriptions: create (with trial, coupon and a first invoice) and cancel (now or at period end)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sandbox import clock
from sandbox.errors import BusinessRuleError
from sandbox.records import new_invoice, new_subscription
from sandbox.store import Store
from sandbox.validation import MISSING, Checker

STATUSES = ("trialing", "active", "past_due", "canceled", "incomplete")


def discounted(amount: int, coupon: dict | None) -> int:
    """`amount` after the coupon's percent or fixed discount, never below zero."""
    if coupon is None:
        return amount
    if coupon["percent_off"] is not None:
        return amount - round(amount * coupon["percent_off"] / 100)
    return max(0, amount - coupon["amount_off"])


def coupon_refusal(coupon: dict, plan: dict, moment: datetime) -> str | None:
    """Why `coupon` cannot be applied to `plan` now, or None."""
    if coupon["redeem_by"] is not None and coupon["redeem_by"] < clock.iso(moment):
        return f"Coupon {coupon['code']} expired on {coupon['redeem_by']}."
    if coupon["max_redemptions"] is not None and coupon["times_redeemed"] >= coupon["max_redemptions"]:
        return f"Coupon {coupon['code']} has reached its maximum number of redemptions."
    if coupon["amount_off"] is not None and coupon["currency"] != plan["currency"]:
        return f"Coupon {coupon['code']} is in {coupon['currency']} but the plan is in {plan['currency']}."
    return None


def create_subscription(store: Store, site_id: int, body: dict) -> dict:
    """Subscribe a customer to a plan: trialing if trial days are given, else active with an open first invoice."""
    check = Checker(body, {"customer_id", "plan_id", "coupon_id", "quantity", "trial_period_days", "auto_renew"})
    customer_id = check.integer("customer_id", required=True, low=1)
    plan_id = check.integer("plan_id", required=True, low=1)
    coupon_id = check.integer("coupon_id", nullable=True, low=1)
    quantity = check.integer("quantity", low=1, high=1000)
    trial_days = check.integer("trial_period_days", low=0, high=730)
    auto_renew = check.boolean("auto_renew")
    check.done()
    customer = store.get("customers", site_id, customer_id)
    plan = store.get("plans", site_id, plan_id)
    coupon = store.get("coupons", site_id, coupon_id) if coupon_id not in (MISSING, None) else None
    moment = clock.now()
    if not plan["active"]:
        raise BusinessRuleError(f"Plan {plan_id} is not active and cannot be subscribed to.")
    if coupon is not None and (reason := coupon_refusal(coupon, plan, moment)):
        raise BusinessRuleError(reason)
    quantity = 1 if quantity is MISSING else quantity
    trial_days = 0 if trial_days is MISSING else trial_days
    trial_end = moment + timedelta(days=trial_days) if trial_days else None
    period_end = trial_end or clock.add_interval(moment, plan["interval"], plan["interval_count"])
    subscription = store.add(
        "subscriptions",
        new_subscription(
            store.next_id(), site_id, customer["id"], plan, moment,
            status="trialing" if trial_end else "active", period_start=moment, period_end=period_end,
            quantity=quantity, coupon_id=coupon["id"] if coupon else None,
            auto_renew=None if auto_renew is MISSING else auto_renew, trial_end=trial_end,
        ),
    )
    if coupon is not None:
        coupon["times_redeemed"] += 1
    amount = discounted(plan["amount"] * quantity, coupon)
    if not trial_end and amount > 0:
        store.add(
            "invoices",
            new_invoice(
                store.next_id(), site_id, customer["id"], plan["currency"],
                [{"description": f"{plan['nickname']} × {quantity}", "unit_price": amount, "quantity": 1}],
                moment, status="open", subscription_id=subscription["id"],
                billing_reason="subscription_create", due_date=moment.date().isoformat(),
            ),
        )
    return subscription


def cancel_now(subscription: dict, moment: datetime) -> None:
    """End a subscription immediately."""
    stamp = clock.iso(moment)
    subscription.update(status="canceled", canceled_at=stamp, ended_at=stamp, auto_renew=False)


def cancel_subscription(store: Store, site_id: int, subscription_id: int, body: dict) -> dict:
    """Cancel now, or (`at_period_end: true`) stop renewal and end at the period's end."""
    check = Checker(body, {"at_period_end"})
    at_period_end = check.boolean("at_period_end")
    check.done()
    subscription = store.get("subscriptions", site_id, subscription_id)
    if subscription["status"] == "canceled":
        raise BusinessRuleError(f"Subscription {subscription_id} is already canceled.")
    moment = clock.now()
    if at_period_end is True:
        if subscription["cancel_at_period_end"]:
            raise BusinessRuleError(f"Subscription {subscription_id} is already set to cancel at the end of its period.")
        subscription.update(cancel_at_period_end=True, auto_renew=False, canceled_at=clock.iso(moment))
    else:
        cancel_now(subscription, moment)
    return subscription
