"""The subscriber's subscriptions (Open API, OPEN_API.md §5.4): list them, price a new one
(`/order`), subscribe with a card already saved on the site, cancel (three modes) and
reactivate. Always the signed-in customer's own: a subscription id of anyone else is
refused exactly as an unknown one (the Open API answers both with the same 404, and the
previews, which look in the subscriber's own list, say the same).

Money moves only with a payment method already saved on the site (its id, from
`list_my_payment_methods`): no tool takes card numbers; a new card is added on the
publication's website.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from mcp_bridge.card_data import ADD_A_CARD
from mcp_bridge.open.calls import open_api, site_name, subscriber_of
from mcp_bridge.open.previews import IRREVERSIBLE, Verdict, changes, open_request, preview, send
from mcp_bridge.open.profile import read_customer
from mcp_bridge.open.shapes import (
    NoArguments,
    OrderPreview,
    Plan,
    Site,
    Subscription,
    parse,
    result,
    subscription_from,
    subscription_line,
)
from mcp_bridge.open.site import cached_site, known_site
from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.registry import tool
from mcp_bridge.runtime.results import ToolFailed
from mcp_bridge.runtime.schemas import ToolFailure, ToolInput, id_field
from mcp_bridge.runtime.values import iso, money
from mcp_bridge.runtime.writes import ALWAYS, WHEN_MODE_NOW, UpstreamRequest, WritePreview

ENDED = ("canceled", "expired")
CANCEL_MODES = ("now", "current_period_end", "last_period_end")


# --- Inputs --------------------------------------------------------------------------------


class SubscriptionIdInput(ToolInput):
    subscription_id: int = id_field("subscription (from list_my_subscriptions)")


class CancelInput(SubscriptionIdInput):
    mode: Literal["now", "current_period_end", "last_period_end"] = Field(
        "last_period_end",
        description="last_period_end (default): it ends when its last scheduled period ends; current_period_end: "
        "when the period now running ends (the same unless a plan change is scheduled); now: at once, "
        "only where the publication allows it (get_site: immediate_cancel_enabled), and irreversible.",
    )
    reason: str | None = Field(None, min_length=1, max_length=255, description="Why, in the subscriber's words.")

    def body(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class OrderInput(ToolInput):
    plan_id: int = id_field("plan (from list_plans)")
    coupon_code: str | None = Field(None, min_length=1, max_length=191, description="A coupon code, if any.")
    address_id: int | None = Field(
        None, ge=1, le=2_147_483_647, description="Your shipping address (list_my_addresses); printed plans need one."
    )

    def order_body(self) -> dict[str, Any]:
        return self.model_dump(include={"plan_id", "coupon_code", "address_id"}, exclude_none=True)

    def named(self) -> str:
        """What a refusal is about, e.g. "plan 1006, address 12": Pelcro's /order and create
        refuse the plan, the coupon or the address alike (404)."""
        parts = [f"plan {self.plan_id}"]
        if self.address_id is not None:
            parts.append(f"address {self.address_id}")
        if self.coupon_code is not None:
            parts.append(f"coupon {self.coupon_code}")
        return ", ".join(parts)


class SubscribeInput(OrderInput):
    payment_method_id: int | None = Field(
        None,
        ge=1,
        le=2_147_483_647,
        description="A card ALREADY SAVED on the site (list_my_payment_methods); required unless the plan is "
        "free. Card numbers are never accepted: a new card is added on the publication's website.",
    )

    def body(self) -> dict[str, Any]:
        body = self.order_body()
        if self.payment_method_id is not None:
            body["source_id"] = self.payment_method_id
        return body


# --- Outputs -------------------------------------------------------------------------------


class SubscriptionList(BaseModel):
    site: str = Field(description="The publication, e.g. Acme Daily (site 14).")
    subscriptions: list[Subscription]


class SubscribeResult(BaseModel):
    subscription: Subscription
    payment_pending: bool = Field(
        description="True: the bank asks the subscriber to confirm the payment on the publication's website; "
        "nothing is paid until they do."
    )


# --- Helpers -------------------------------------------------------------------------------


def _subscriptions(customer: dict[str, Any]) -> list[dict[str, Any]]:
    found = customer.get("subscriptions")
    return [s for s in found if isinstance(s, dict)] if isinstance(found, list) else []


def _own(customer: dict[str, Any], subscription_id: int) -> dict[str, Any] | None:
    return next((s for s in _subscriptions(customer) if s.get("id") == subscription_id), None)


def _plan(site: Site | None, plan_id: Any) -> Plan | None:
    return next((p for p in site.plans if p.id == plan_id), None) if site is not None else None


def _label(subscription: dict[str, Any], site: Site | None) -> str:
    """ "Digital Monthly (subscription 12, 9.99 USD every month)"."""
    plan = _plan(site, subscription.get("plan"))
    if plan is None:
        return f"subscription {subscription['id']} (plan {subscription.get('plan')})"
    return f"{plan.nickname} (subscription {subscription['id']}, {money(plan.amount, plan.currency)} every {plan.interval})"


def _moment(value: Any) -> str | None:
    return iso(datetime.fromtimestamp(value, UTC)) if isinstance(value, int) and not isinstance(value, bool) else None


def _not_found(subscription_id: int) -> str:
    return f"Subscription {subscription_id} not found."  # the Open API's own words (sandbox, OPEN_API.md §5.4)


NOT_FOUND_RULE = "OPEN_API.md §5.4: a missing subscription, or another customer's, is 404 not found"
CANCEL_RULES = "OPEN_API.md §5.4 (cancel: modes, immediate cancel only where enabled, not twice)"
REACTIVATE_RULES = "OPEN_API.md §5.4 (reactivate: a pending end-of-period cancellation, in its grace period)"


# --- Reads ---------------------------------------------------------------------------------


@tool(
    "list_my_subscriptions",
    title="List my subscriptions",
    input=NoArguments,
    output=SubscriptionList,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
    server="open",
)
async def list_my_subscriptions(call: CallContext, args: NoArguments):
    """The signed-in subscriber's subscriptions at this publication, ended ones included:
    plan name and price (cents), status, when the period ends or renews, whether it is set
    to cancel at the period's end (cancel_at), gift flags, and the saved card it is
    charged to (payment_method_id). Times are ISO 8601 UTC."""
    customer = await read_customer(call)
    site = await known_site(call)
    items = [subscription_from(s, site) for s in _subscriptions(customer)]
    where = site_name(call)
    lines = "\n".join("- " + subscription_line(s) for s in items)
    summary = f"{len(items)} subscription{'' if len(items) == 1 else 's'} at {where}" + (
        f":\n{lines}" if items else "."
    )
    return result(SubscriptionList(site=where, subscriptions=items), summary)


async def _order(call: CallContext, args: OrderInput) -> OrderPreview:
    response = await open_api(call, "POST", "/order", what=args.named(), json=args.order_body())
    data = response.data if isinstance(response.data, dict) else {}
    plan = _plan(await cached_site(call), args.plan_id)
    named = {"plan": plan.nickname, "trial_period_days": plan.trial_period_days} if plan else {}
    return parse(OrderPreview, {**data, **named})


def _order_line(order: OrderPreview) -> str:
    cur = order.currency
    name = order.plan or f"plan {order.plan_id}"
    parts = [f"subtotal {money(order.subtotal, cur)}"]
    if order.discount:
        parts.append(f"discount {money(order.discount, cur)}")
    if order.proration:
        parts.append(f"credit for the replaced subscription {money(order.proration, cur)}")
    if order.tax:
        parts.append(f"tax {money(order.tax, cur)}")
    if order.balance_applied:
        parts.append(f"your credit used {money(order.balance_applied, cur)}")
    return f"{name}: total {money(order.total, cur)} ({', '.join(parts)})"


@tool(
    "preview_subscription",
    title="Price a subscription",
    input=OrderInput,
    output=OrderPreview,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
    server="open",
)
async def preview_subscription(call: CallContext, args: OrderInput):
    """What subscribing to a plan would cost now, without subscribing: subtotal, coupon
    discount, taxes (from the shipping address, or the default one), the subscriber's
    credit used, and the total, in cents. A bad plan, coupon or address is refused."""
    order = await _order(call, args)
    return result(order, f"{_order_line(order)} at {site_name(call)}. Nothing was created.")


# --- subscribe -----------------------------------------------------------------------------


def _subscribe_request(call: CallContext, args: SubscribeInput) -> UpstreamRequest:
    return open_request(call, "POST", "/subscription", args.body())


async def _subscribe_preview(call: CallContext, args: SubscribeInput) -> WritePreview:
    """One read (`/order`, which also refuses a bad plan, coupon or address as create
    does); the plan's shipping and trial from the kept site configuration."""
    request = _subscribe_request(call, args)
    verdict = Verdict()
    order: OrderPreview | None = None
    try:
        order = await _order(call, args)
    except ToolFailed as failed:
        if failed.failure.error not in ("refused", "validation_failed"):
            raise
        verdict.refuse(failed.failure.message, "OPEN_API.md §5.4: an invalid plan, coupon or address → 404")
    site = await cached_site(call)
    plan = _plan(site, args.plan_id)
    if plan is None:
        verdict.unchecked("whether the plan ships (then address_id is required): list_plans shows it")
    elif plan.ships and args.address_id is None:
        verdict.refuse(
            "The address id field is required: this plan ships (give address_id, see list_my_addresses).",
            "OPEN_API.md §5.4: address_id is required when the product ships",
        )
    verdict.unchecked("at most 25 live subscriptions per customer, and a plan in the currency of your credit balance")
    due = (order.subtotal or 0) - (order.discount or 0) if order is not None else 0
    if due > 0 and args.payment_method_id is None:
        verdict.refuse(f"This plan costs money: {ADD_A_CARD}", "OPEN_API.md §5.4: a paid plan needs a payment method")
    if args.payment_method_id is not None:
        verdict.unchecked(
            f"that payment method {args.payment_method_id} is a card saved for you (list_my_payment_methods)"
        )
    where = site_name(call)
    customer = subscriber_of(call).customer_id
    name = (order.plan if order else None) or f"plan {args.plan_id}"
    cur = order.currency if order else None
    trial = order.trial_period_days if order else None
    card = f"saved card {args.payment_method_id}" if args.payment_method_id else "no card"
    if order is None:
        effect = "Nothing would be created."
        charged = None
    elif trial:
        charged = 0
        effect = (
            f"A {trial}-day free trial starts: nothing is charged now; then {money(order.subtotal, cur)} per period "
            f"(before tax) is charged to {card} until canceled."
        )
    else:
        charged = order.total
        effect = f"{money(order.total, cur)} is charged now to {card} ({_order_line(order)}); it renews until canceled."
    if order is None:
        undo = ""
    elif charged:
        undo = f" {IRREVERSIBLE} Canceling later (cancel_my_subscription) stops the renewals; a refund is the publication's."
    else:
        undo = " It can be canceled later (cancel_my_subscription)."
    summary = (
        f"Subscribe customer {customer} at {where} to {name}"
        + (f" with coupon {args.coupon_code}" if args.coupon_code else "")
        + f". {effect}{undo}"
    )
    changed = changes(("subscriptions", None, f"a new {name} subscription"), ("charged_now", None, money(charged, cur)))
    return preview(
        "subscribe",
        request,
        verdict,
        allowed=f"Subscribing to {name} is allowed"
        + (f"; {money(charged, cur)} would be charged now." if order else "."),
        rule="OPEN_API.md §5.4 (create: plan, coupon, address, payment method)",
        changed=changed,
        summary=summary,
        irreversible=bool(charged),
    )


@tool(
    "subscribe",
    title="Subscribe to a plan",
    input=SubscribeInput,
    output=SubscribeResult,
    read_only=False,
    destructive=False,
    idempotent=False,
    open_world=True,
    server="open",
    preview=_subscribe_preview,
    confirm=ALWAYS,
)
async def subscribe(call: CallContext, args: SubscribeInput):
    """Subscribe the signed-in subscriber to a plan (list_plans), paid with a card ALREADY
    SAVED on the site: payment_method_id from list_my_payment_methods (free plans need
    none). Card numbers are never accepted; a new card is added on the publication's
    website (get_site gives its address). Optional coupon_code; printed plans need
    address_id. MOVES MONEY: the first period is charged at once (unless the plan has a free
    trial), and a person confirms first. Use preview_subscription (or dry_run) for the
    exact total. Each call creates a new subscription.
    """
    try:
        response = await send(
            call,
            _subscribe_request(call, args),
            what=args.named(),
            check="list your subscriptions with list_my_subscriptions to see whether the new one is there",
        )
    except ToolFailed as failed:
        if failed.failure.fields and "source_id" in failed.failure.fields:
            raise ToolFailed(
                ToolFailure(error="validation_failed", message=f"This plan costs money. {ADD_A_CARD}")
            ) from None
        raise
    customer = response.data if isinstance(response.data, dict) else {}
    made = [s for s in _subscriptions(customer) if s.get("plan") == args.plan_id and isinstance(s.get("id"), int)]
    if not made:
        raise ToolFailed(
            ToolFailure(
                error="upstream_error",
                may_have_been_applied=True,
                message="The Open API accepted the subscription but its answer does not show it. Before trying "
                "again, list your subscriptions with list_my_subscriptions.",
            )
        )
    subscription = subscription_from(max(made, key=lambda s: s["id"]), await cached_site(call))
    pending = subscription.status == "incomplete"
    structured = SubscribeResult(subscription=subscription, payment_pending=pending)
    line = f"Subscribed at {site_name(call)}: {subscription_line(subscription)}."
    if pending:
        line += " The bank asks the subscriber to confirm the payment on the publication's website."
    return result(structured, line)


# --- cancel --------------------------------------------------------------------------------


def _cancel_request(call: CallContext, args: CancelInput) -> UpstreamRequest:
    return open_request(call, "POST", "/subscription/cancel", args.body())


async def _cancel_preview(call: CallContext, args: CancelInput) -> WritePreview:
    """One read (the customer resource: the subscriber's own subscriptions); the site's
    immediate-cancel setting and the plan's agency from the kept site configuration. The
    rules in the Open API's order (OPEN_API.md §5.4, the sandbox's chosen refusals)."""
    request = _cancel_request(call, args)
    customer = await read_customer(call)
    site = await cached_site(call)
    subscription = _own(customer, args.subscription_id)
    verdict = Verdict()
    where = site_name(call)
    if subscription is None:
        verdict.refuse(_not_found(args.subscription_id), NOT_FOUND_RULE)
        return preview(
            "cancel_my_subscription",
            request,
            verdict,
            allowed="",
            rule=CANCEL_RULES,
            changed=[],
            summary=f"Cancel subscription {args.subscription_id} at {where}: you have no such subscription.",
        )
    status = subscription.get("status")
    plan = _plan(site, subscription.get("plan"))
    sid = args.subscription_id
    if status in ENDED:
        verdict.refuse(f"Subscription {sid} is already {status}.", "OPEN_API.md §5.4: an ended subscription")
    if subscription.get("is_gift_recipient"):
        verdict.refuse(
            f"Subscription {sid} was received as a gift; a gift recipient's subscription cannot be canceled.",
            "OPEN_API.md §5.4: a gift recipient's subscription",
        )
    if plan is None:
        verdict.unchecked("whether an agency manages its plan (then it cannot be canceled here)")
    elif plan.agency_id is not None:
        verdict.refuse(
            f"Subscription {sid} is managed by an agency and cannot be canceled here.",
            "OPEN_API.md §5.4: an agency-managed subscription",
        )
    if status == "incomplete":
        verdict.refuse(
            f"Subscription {sid} is pending payment and cannot be canceled.", "OPEN_API.md §5.4: pending payment"
        )
    if args.mode == "now":
        if site is None or site.immediate_cancel_enabled is None:
            verdict.unchecked("whether the publication allows immediate cancellation (get_site shows it)")
        elif not site.immediate_cancel_enabled:
            verdict.refuse(
                "Immediate cancellation is not enabled for this site; cancel at the end of the period.",
                "OPEN_API.md §5.4: mode now only where the account allows immediate cancellation",
            )
    elif subscription.get("cancel_at_period_end"):
        verdict.refuse(
            f"Subscription {sid} is already set to cancel at the end of its period.",
            "OPEN_API.md §5.4: already set to cancel",
        )
    label = _label(subscription, site)
    end = _moment(subscription.get("current_period_end"))
    now = iso(datetime.now(UTC))
    if args.mode == "now":
        changed = changes(
            ("status", status, "canceled"),
            ("ended_at", _moment(subscription.get("ended_at")), now),
            ("auto_renew", subscription.get("auto_renew"), False),
        )
        effect = (
            "It ends AT ONCE: access stops now, and Pelcro refunds or credits the unused part as the plan and "
            "the publication's settings say. " + IRREVERSIBLE
        )
    else:
        changed = changes(
            ("cancel_at_period_end", subscription.get("cancel_at_period_end"), True),
            ("cancel_at", _moment(subscription.get("cancel_at")), end),
            ("auto_renew", subscription.get("auto_renew"), False),
            ("renews_at", _moment(subscription.get("renews_at")), None),
        )
        effect = (
            f"It keeps running until {end or 'the end of its period'} and then ends; it will not renew. Nothing "
            "is refunded. It can be undone until then with reactivate_my_subscription."
        )
    reason = f' Reason given: "{args.reason}".' if args.reason else ""
    summary = (
        f"Cancel {label} for customer {subscriber_of(call).customer_id} at {where} ({args.mode}): {effect}{reason}"
    )
    return preview(
        "cancel_my_subscription",
        request,
        verdict,
        allowed=f"Subscription {sid} can be canceled ({args.mode}).",
        rule=CANCEL_RULES,
        changed=changed,
        summary=summary,
        irreversible=args.mode == "now",
    )


@tool(
    "cancel_my_subscription",
    title="Cancel my subscription",
    input=CancelInput,
    output=Subscription,
    read_only=False,
    destructive=True,
    idempotent=False,
    open_world=True,
    server="open",
    preview=_cancel_preview,
    confirm=WHEN_MODE_NOW,
)
async def cancel_my_subscription(call: CallContext, args: CancelInput):
    """Cancel one of the signed-in subscriber's subscriptions (list_my_subscriptions), with
    a mode and an optional reason. last_period_end (default) or current_period_end: it
    keeps running until then and does not renew; this can be undone with
    reactivate_my_subscription until it ends. now: it ends at once (refund or credit per the
    publication's settings), only where the publication allows it; IRREVERSIBLE, and a
    person confirms first. Refused for ended, gift-received, pending-payment or
    agency-managed subscriptions, and (except with mode now) for one already set to
    cancel.
    """
    response = await send(
        call,
        _cancel_request(call, args),
        what=f"subscription {args.subscription_id}",
        check=f"read subscription {args.subscription_id} with list_my_subscriptions to see whether it is canceled",
    )
    return await _one_subscription(call, response.data, args.subscription_id, "Canceled")


async def _one_subscription(call: CallContext, customer: Any, subscription_id: int, verb: str):
    found = _own(customer if isinstance(customer, dict) else {}, subscription_id)
    if found is None:
        raise ToolFailed(
            ToolFailure(
                error="upstream_error",
                may_have_been_applied=True,
                message=f"The Open API accepted the change but its answer does not show subscription "
                f"{subscription_id}. Before trying again, read it with list_my_subscriptions.",
            )
        )
    subscription = subscription_from(found, await cached_site(call))
    return result(subscription, f"{verb} at {site_name(call)}: {subscription_line(subscription)}.")


# --- reactivate ----------------------------------------------------------------------------


def _reactivate_request(call: CallContext, args: SubscriptionIdInput) -> UpstreamRequest:
    return open_request(call, "POST", "/subscription/reactivate", {"subscription_id": args.subscription_id})


async def _reactivate_preview(call: CallContext, args: SubscriptionIdInput) -> WritePreview:
    """One read (the customer resource); the plan's auto-renewal from the kept site
    configuration. The rules in the Open API's order (OPEN_API.md §5.4)."""
    request = _reactivate_request(call, args)
    customer = await read_customer(call)
    site = await cached_site(call)
    subscription = _own(customer, args.subscription_id)
    verdict = Verdict()
    where = site_name(call)
    sid = args.subscription_id
    if subscription is None:
        verdict.refuse(_not_found(sid), NOT_FOUND_RULE)
        return preview(
            "reactivate_my_subscription",
            request,
            verdict,
            allowed="",
            rule=REACTIVATE_RULES,
            changed=[],
            summary=f"Reactivate subscription {sid} at {where}: you have no such subscription.",
        )
    if subscription.get("is_gift_recipient") or subscription.get("is_gift_donor"):
        verdict.refuse(f"Subscription {sid} is a gift and cannot be reactivated.", "OPEN_API.md §5.4: never for gifts")
    if subscription.get("status") in ENDED or not subscription.get("cancel_at_period_end"):
        verdict.refuse(
            f"Subscription {sid} is not waiting to be canceled; there is nothing to reactivate.",
            "OPEN_API.md §5.4: only a pending end-of-period cancellation",
        )
    cancel_at = subscription.get("cancel_at")
    if isinstance(cancel_at, int) and cancel_at <= datetime.now(UTC).timestamp():
        verdict.refuse(f"Subscription {sid} is no longer in its grace period.", "OPEN_API.md §5.4: grace period")
    plan = _plan(site, subscription.get("plan"))
    if plan is None:
        verdict.unchecked("that its plan renews automatically (only those can be reactivated)")
    elif not plan.auto_renew:
        verdict.refuse(
            f"Subscription {sid} is not on an auto-renewing plan.", "OPEN_API.md §5.4: auto-renewing plans only"
        )
    end = _moment(subscription.get("current_period_end"))
    changed = changes(
        ("cancel_at_period_end", subscription.get("cancel_at_period_end"), False),
        ("cancel_at", _moment(cancel_at), None),
        ("auto_renew", subscription.get("auto_renew"), True),
        ("renews_at", _moment(subscription.get("renews_at")), end),
    )
    summary = (
        f"Reactivate {_label(subscription, site)} for customer {subscriber_of(call).customer_id} at {where}: the "
        f"pending cancellation is withdrawn and it renews again on {end or 'its period end'}, charged as before. "
        "It can be canceled again later."
    )
    return preview(
        "reactivate_my_subscription",
        request,
        verdict,
        allowed=f"Subscription {sid} can be reactivated.",
        rule=REACTIVATE_RULES,
        changed=changed,
        summary=summary,
    )


@tool(
    "reactivate_my_subscription",
    title="Reactivate my subscription",
    input=SubscriptionIdInput,
    output=Subscription,
    read_only=False,
    destructive=False,
    idempotent=False,
    open_world=True,
    server="open",
    preview=_reactivate_preview,
)
async def reactivate_my_subscription(call: CallContext, args: SubscriptionIdInput):
    """Undo a pending end-of-period cancellation of one of the signed-in subscriber's
    subscriptions: it renews again as before. Only while it is still running (before
    cancel_at), on a plan that renews automatically, and never for gifts. A subscription
    canceled with mode now cannot be reactivated (subscribe again instead).
    """
    response = await send(
        call,
        _reactivate_request(call, args),
        what=f"subscription {args.subscription_id}",
        check=f"read subscription {args.subscription_id} with list_my_subscriptions to see whether it renews again",
    )
    return await _one_subscription(call, response.data, args.subscription_id, "Reactivated")
