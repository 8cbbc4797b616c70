"""Subscription tools: list, get, create, cancel (Core API /subscriptions, CORE_API.md §8.3)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from mcp_bridge.core.addresses import Address
from mcp_bridge.core.calls import core_api
from mcp_bridge.core.coupons import Coupon
from mcp_bridge.core.plans import Plan
from mcp_bridge.core.previews import (
    IRREVERSIBLE,
    Verdict,
    changes,
    core_request,
    customer_label,
    missing,
    moment,
    money,
    preview,
    read_customer,
    read_state,
    send,
    where,
)
from mcp_bridge.core.results import object_result, page_result
from mcp_bridge.core.shapes import CoreMetadata, CoreObject, Timestamp, embedded, expand_param, iso, sort_field
from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.registry import tool
from mcp_bridge.runtime.schemas import ListInput, Page, SiteInput, id_field
from mcp_bridge.runtime.writes import WHEN_MODE_NOW, UpstreamRequest, WritePreview


class Subscription(CoreObject):
    """A subscription (CORE_API.md §8.3). Links are ids unless expanded: `plan`, `coupon`,
    `address`, `default_source`, `latest_invoice`; the customer is `user_id`."""

    id: int
    user_id: int | None = Field(None, description="The customer's id.")
    status: str
    plan: int | embedded(Plan, "the plan, as get_plan returns it", or_id=True) | None = None
    coupon: int | embedded(Coupon, "the coupon, as get_coupon returns it", or_id=True) | None = None
    address: int | embedded(Address, "the address, as get_address returns it", or_id=True) | None = None
    default_source: int | dict[str, Any] | None = None
    latest_invoice: int | dict[str, Any] | None = None
    quantity: int | None = None
    billing: str | None = Field(None, description="charge_automatically or send_invoice.")
    auto_renew: bool | None = None
    address_required: bool | None = None
    cancel_at_period_end: bool | None = Field(None, description="True: it ends at current_period_end.")
    cancel_reason: str | None = None
    canceled_by: Any = None
    canceled_by_type: Any = None
    days_until_due: int | None = None
    is_gift_donor: bool | None = None
    is_gift_recipient: bool | None = None
    shipments_remaining: int | None = None
    old_provider_id: str | None = None
    metadata: CoreMetadata = None
    created: Timestamp | None = None
    current_period_start: Timestamp | None = None
    current_period_end: Timestamp | None = None
    trial_start: Timestamp | None = None
    trial_end: Timestamp | None = None
    cancel_at: Timestamp | None = None
    canceled_at: Timestamp | None = Field(None, description="When cancellation was requested.")
    ended_at: Timestamp | None = Field(None, description="When it actually ended.")
    expires_at: Timestamp | None = None
    renews_at: Timestamp | None = None


SubscriptionExpand = Literal["plan", "coupon", "address", "default_source", "latest_invoice"]


class ListSubscriptionsInput(ListInput):
    sort: sort_field(("status",)) | None = None


class GetSubscriptionInput(SiteInput):
    subscription_id: int = id_field("subscription")
    expand: list[SubscriptionExpand] | None = Field(
        None,
        max_length=5,
        description="Linked objects to embed in the same request: plan, coupon, address, "
        "default_source, latest_invoice.",
    )


class CreateSubscriptionInput(SiteInput):
    customer_id: int = id_field("customer")
    plan_id: int = id_field("plan")
    quantity: int = Field(ge=1, le=100_000, description="Units (seats, copies) billed, 1 to 100000.")
    collection_method: Literal["charge_automatically", "send_invoice"] = Field(
        "charge_automatically",
        description="charge_automatically (default): the saved payment method source_id is charged. "
        "send_invoice: the customer is sent invoices to pay.",
    )
    source_id: int | None = Field(
        None, ge=1, description="The customer's saved payment method to charge; required with charge_automatically."
    )
    coupon_code: str | None = Field(
        None,
        min_length=1,
        max_length=191,
        pattern=r"^[A-Za-z0-9]+$",
        description="A coupon's code (see list_coupons), e.g. SPRING20.",
    )
    address_id: int | None = Field(
        None, ge=1, description="The customer's address (for tax, or when the product needs a shipping address)."
    )
    auto_renew: bool | None = Field(None, description="Renew at period end; default: the plan's setting.")
    trial_period_days: int | None = Field(None, ge=1, le=730, description="Free trial length in days.")

    @model_validator(mode="after")
    def _source_when_charged(self) -> CreateSubscriptionInput:
        if self.collection_method == "charge_automatically" and self.source_id is None:
            raise ValueError(
                "collection_method charge_automatically (the default) needs source_id, the customer's "
                "saved payment method; or use collection_method send_invoice"
            )
        return self

    def body(self) -> dict[str, Any]:
        body = self.model_dump(exclude={"site_id", "customer_id"}, exclude_none=True)
        return {"user_id": self.customer_id, **body}  # Pelcro names the customer user_id

    def request(self) -> UpstreamRequest:
        return core_request("POST", "/subscriptions", self.site_id, body=self.body())


class CancelSubscriptionInput(SiteInput):
    subscription_id: int = id_field("subscription")
    mode: Literal["period_end", "now"] = Field(
        description="period_end: it stays active until the current period ends, then stops (no renewal). "
        "now: it ends at once (status canceled; the customer loses access)."
    )
    reason: str = Field(min_length=1, max_length=255, description="Why it is canceled (kept by Pelcro).")

    def body(self) -> dict[str, Any]:
        return {"mode": self.mode, "reason": self.reason}

    def request(self) -> UpstreamRequest:
        return core_request("DELETE", f"/subscriptions/{self.subscription_id}", self.site_id, body=self.body())


# --- Previews (dry_run) --------------------------------------------------------------------

ENDED = ("canceled", "expired")
# CORE_API.md §8.3: "Refused: customer at its maximum number of subscriptions"; the number
# is not documented, the contract's chosen one (the sandbox's) is 25 that have not ended.
MAX_SUBSCRIPTIONS_PER_CUSTOMER = 25
CANCEL_RULE = "CORE_API.md §8.3 (cancel)"
CREATE_RULE = "CORE_API.md §8.3 (create)"
# Create fields → the subscription object's names for them (CORE_API.md §8.3).
OBJECT_FIELDS = {
    "plan_id": "plan",
    "collection_method": "billing",
    "source_id": "default_source",
    "address_id": "address",
}


def _price(plan: dict[str, Any] | None, quantity: int | None) -> str:
    """A plan's price for `quantity`, e.g. "USD 19.98 every month (9.99 × 2)"."""
    if not plan or plan.get("amount") is None:
        return "price unknown"
    count = plan.get("interval_count") or 1
    interval = plan.get("interval") or "period"
    every = f"every {interval}" if count == 1 else f"every {count} {interval}s"
    units = quantity or 1
    total = money(plan["amount"] * units, plan.get("currency"))
    each = f" ({money(plan['amount'], plan.get('currency'))} × {units})" if units > 1 else ""
    return f"{total} {every}{each}"


async def preview_create_subscription(call: CallContext, args: CreateSubscriptionInput) -> WritePreview:
    """Reads the customer with their subscriptions, addresses and default payment method
    (one request, expand). The plan and the coupon are other objects: not read."""
    request = args.request()
    what = f"customer {args.customer_id}"
    customer = await read_customer(call, args.site_id, args.customer_id, "subscriptions", "addresses", "defaultSource")
    if customer is None:
        return missing(
            "create_subscription",
            request,
            call,
            args.site_id,
            what,
            "subscribe",
            summary=f"subscribe {what} to plan {args.plan_id}; the customer does not exist there.",
        )
    verdict = Verdict()
    verdict.unchecked(
        f"whether plan {args.plan_id} exists and is active (an archived plan takes no new subscribers); its price"
    )
    default_source = customer.get("default_source_id")
    if args.source_id is not None and args.source_id != default_source:
        verdict.unchecked(
            f"whether payment method {args.source_id} is one of the customer's (only their default, "
            f"{default_source or 'none'}, was read)"
        )
    addresses = customer.get("addresses")
    if (
        args.address_id is not None
        and addresses is not None
        and args.address_id not in {a.get("id") for a in addresses}
    ):
        verdict.refuse(
            f"Address {args.address_id} is not an address of customer {args.customer_id}.",
            "CORE_API.md §8.3: address_id is an address of the customer",
        )
    if args.coupon_code:
        verdict.unchecked(
            f"whether coupon {args.coupon_code} exists and applies (not restricted to other plans, not expired, "
            "not used up, in the plan's currency)"
        )
    live = [s for s in customer.get("subscriptions") or [] if s.get("status") not in ENDED]
    if len(live) >= MAX_SUBSCRIPTIONS_PER_CUSTOMER:
        verdict.refuse(
            f"Customer {args.customer_id} already has the maximum of {MAX_SUBSCRIPTIONS_PER_CUSTOMER} subscriptions.",
            "CORE_API.md §8.3: refused for a customer at its maximum number of subscriptions",
        )
    status = "trialing" if args.trial_period_days else "active"
    body = request.body or {}
    changed = changes(
        ("subscription.status", None, status),
        *((f"subscription.{OBJECT_FIELDS.get(name, name)}", None, value) for name, value in body.items()),
        ("customer.subscriptions_not_ended", len(live), len(live) + 1),
    )
    if args.collection_method == "charge_automatically":
        source = customer.get("default_source") if args.source_id == default_source else None
        card = (
            f"{source.get('brand') or 'card'} ending {source.get('last4')}"
            if source and source.get("last4")
            else f"payment method {args.source_id}"
        )
        when = f"after the {args.trial_period_days}-day free trial" if args.trial_period_days else "the first at once"
        billing = f"Each period's price is charged to {card}, {when}."
    else:
        billing = "The customer is sent an invoice to pay for each period" + (
            f", after a {args.trial_period_days}-day free trial." if args.trial_period_days else "."
        )
    coupon = f" with coupon {args.coupon_code}" if args.coupon_code else ""
    return preview(
        "create_subscription",
        request,
        verdict,
        allowed="No rule checked on the customer refuses this subscription.",
        rule=CREATE_RULE,
        changed=changed,
        summary=f"On {where(call, args.site_id)}: subscribe {customer_label(customer, args.customer_id)} to plan "
        f"{args.plan_id} × {args.quantity}{coupon} (status {status}). {billing} The plan's price is not read by "
        f"this preview (get_plan {args.plan_id} shows it). Each call creates another subscription.",
    )


def _cancel_refusal(subscription: dict[str, Any], mode: str, verdict: Verdict) -> None:
    """CORE_API.md §8.3's cancel rules, in the Core API's order."""
    number, status, plan = subscription["id"], subscription.get("status"), subscription.get("plan")
    if status in ENDED:
        verdict.refuse(
            f"Subscription {number} is already {status}.", f"{CANCEL_RULE}: an ended subscription cannot be canceled"
        )
    if subscription.get("is_gift_recipient"):
        verdict.refuse(
            f"Subscription {number} was received as a gift; a gift recipient's subscription cannot be canceled.",
            f"{CANCEL_RULE}: refused for gift-recipient subscriptions",
        )
    if isinstance(plan, dict):
        if plan.get("agency_id") is not None:
            verdict.refuse(
                f"Subscription {number} is managed by an agency and cannot be canceled here.",
                f"{CANCEL_RULE}: refused for agency-managed subscriptions",
            )
    else:
        verdict.unchecked("whether its plan is agency-managed (the plan could not be read)")
    if status == "incomplete":
        verdict.refuse(
            f"Subscription {number} is pending payment and cannot be canceled.",
            f"{CANCEL_RULE}: refused for pending-payment (incomplete) subscriptions",
        )
    if mode == "period_end" and subscription.get("cancel_at_period_end"):
        verdict.refuse(
            f"Subscription {number} is already set to cancel at the end of its period.",
            f"{CANCEL_RULE}: mode period_end once is enough",
        )


async def preview_cancel_subscription(call: CallContext, args: CancelSubscriptionInput) -> WritePreview:
    """Reads the subscription with its plan (one request, expand): its status, gift and
    agency flags, whether it is already set to end, and its price."""
    what = f"subscription {args.subscription_id}"
    subscription = await read_state(
        call, f"/subscriptions/{args.subscription_id}", args.site_id, what=what, params=expand_param(["plan"])
    )
    if subscription is None:
        return missing(
            "cancel_subscription",
            args.request(),
            call,
            args.site_id,
            what,
            "cancel",
            summary=f"cancel {what} (mode {args.mode}), which does not exist there.",
            irreversible=args.mode == "now",
        )
    verdict = Verdict()
    _cancel_refusal(subscription, args.mode, verdict)
    get = subscription.get
    period_end = get("current_period_end")
    if args.mode == "now":
        changed = changes(
            ("subscription.status", get("status"), "canceled"),
            ("subscription.canceled_at", moment(get("canceled_at")) if get("canceled_at") else None, "now"),
            ("subscription.ended_at", None, "now"),
            ("subscription.cancel_reason", get("cancel_reason"), args.reason),
        )
        effect = f"Mode now: it ENDS AT ONCE (status canceled) and the customer loses access now. {IRREVERSIBLE}"
    else:
        ends = moment(period_end) if period_end else "the end of the current period"
        changed = changes(
            ("subscription.cancel_at_period_end", bool(get("cancel_at_period_end")), True),
            ("subscription.cancel_at", moment(get("cancel_at")) if get("cancel_at") else None, ends),
            ("subscription.canceled_at", moment(get("canceled_at")) if get("canceled_at") else None, "now"),
            ("subscription.cancel_reason", get("cancel_reason"), args.reason),
        )
        effect = (
            f"Mode period_end: it stays {get('status')} until {ends}, then ends without renewing; nothing is refunded."
        )
    plan = get("plan") if isinstance(get("plan"), dict) else {}
    name = f"plan {plan.get('nickname')} ({plan.get('id')})" if plan.get("nickname") else f"plan {plan.get('id')}"
    state = f"now {get('status')}, current period ends {moment(period_end) if period_end else 'unknown'}"
    return preview(
        "cancel_subscription",
        args.request(),
        verdict,
        allowed=f"No documented rule refuses canceling subscription {args.subscription_id} with mode {args.mode}.",
        rule=CANCEL_RULE,
        changed=changed,
        summary=f"On {where(call, args.site_id)}: cancel subscription {args.subscription_id} of "
        f"{customer_label(None, get('user_id'))}: {name}, {_price(plan, get('quantity'))}; {state}. "
        f"Reason: {args.reason!r}. {effect}",
        irreversible=args.mode == "now",
    )


def _line(subscription: Subscription, site_id: int, verb: str = "Subscription") -> str:
    return (
        f"{verb} {subscription.id} on site {site_id}: {subscription.status}, customer {subscription.user_id}, "
        f"current period ends {iso(subscription.current_period_end) or 'unknown'}."
    )


@tool(
    "list_subscriptions",
    title="List subscriptions",
    input=ListSubscriptionsInput,
    output=Page[Subscription],
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
)
async def list_subscriptions(call: CallContext, args: ListSubscriptionsInput):
    """List a site's subscriptions, a page at a time; sort by status (prefix - for
    descending), default by id. Pelcro documents no filters for subscriptions: for ONE
    customer's subscriptions use get_customer (it embeds them). Times are ISO 8601 UTC.

    States: trialing (free trial, not yet billed), active (paid and current), past_due (a
    renewal payment failed; still retrying), unpaid, incomplete (the first payment has not
    succeeded), canceled (ended), expired, extended.
    """
    response = await core_api(
        call, "GET", "/subscriptions", args.site_id, what="subscriptions", params=args.list_query()
    )
    return page_result(response, Subscription, "subscription", args.site_id)


@tool(
    "get_subscription",
    title="Get a subscription",
    input=GetSubscriptionInput,
    output=Subscription,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
)
async def get_subscription(call: CallContext, args: GetSubscriptionInput):
    """Get one subscription by id: its customer (user_id), plan, coupon, status, quantity
    and billing period; expand embeds the plan, coupon, address, payment method or latest
    invoice in the same request. cancel_at_period_end true means it ends when the period
    ends. Times are ISO 8601 UTC.

    States: trialing (free trial, not yet billed), active (paid and current), past_due (a
    renewal payment failed; still retrying), unpaid, incomplete (the first payment has not
    succeeded), canceled (ended), expired, extended.
    """
    response = await core_api(
        call,
        "GET",
        f"/subscriptions/{args.subscription_id}",
        args.site_id,
        what=f"subscription {args.subscription_id}",
        params=expand_param(args.expand),
    )
    return object_result(response, Subscription, lambda s: _line(s, args.site_id))


def CHARGES_A_CARD(args: Any) -> bool:
    """`confirm=` of create_subscription: it moves money when it charges the customer's saved
    card (collection_method charge_automatically, the default), like the Open server's
    `subscribe`; billed by invoice (send_invoice) nothing is charged by this call."""
    return getattr(args, "collection_method", None) != "send_invoice"


CHARGES_A_CARD.when = 'unless collection_method is "send_invoice"'  # type: ignore[attr-defined]


@tool(
    "create_subscription",
    title="Create a subscription",
    input=CreateSubscriptionInput,
    output=Subscription,
    read_only=False,
    destructive=False,
    idempotent=False,
    open_world=True,
    preview=preview_create_subscription,
    confirm=CHARGES_A_CARD,
)
async def create_subscription(call: CallContext, args: CreateSubscriptionInput):
    """Subscribe a customer to a plan, with a quantity (required) and optionally a coupon
    code. By default the customer's saved payment method (source_id, required then) is
    charged (MOVES MONEY: a person confirms first); with collection_method send_invoice they
    are invoiced instead. Each call
    creates a new subscription: check the customer's subscriptions first (get_customer).
    Refused: archived plans, coupons restricted to other plans, a customer at their
    maximum number of subscriptions.
    """
    response = await send(
        call,
        args.request(),
        what="the new subscription",
        check=f"read customer {args.customer_id} with get_customer (it embeds their subscriptions) to see whether "
        "it was created",
    )
    return object_result(response, Subscription, lambda s: _line(s, args.site_id, "Created subscription"))


@tool(
    "cancel_subscription",
    title="Cancel a subscription",
    input=CancelSubscriptionInput,
    output=Subscription,
    read_only=False,
    destructive=True,
    idempotent=True,
    open_world=True,
    confirm=WHEN_MODE_NOW,
    preview=preview_cancel_subscription,
)
async def cancel_subscription(call: CallContext, args: CancelSubscriptionInput):
    """Cancel a subscription, with a mode and a reason (both required).

    mode period_end: it stays active until current_period_end and then stops
    (cancel_at_period_end becomes true). mode now: it ENDS AT ONCE (status canceled,
    irreversible: the customer loses access). Refused for gift-recipient, agency-managed and
    pending-payment subscriptions. Confirm the mode with the user first.
    """
    response = await send(
        call,
        args.request(),
        what=f"subscription {args.subscription_id}",
        check=f"read subscription {args.subscription_id} with get_subscription to see whether it was canceled",
    )

    def summary(s: Subscription) -> str:
        if s.status == "canceled" or args.mode == "now":
            return f"Subscription {s.id} on site {args.site_id} is canceled now ({s.status})."
        ends = iso(s.cancel_at or s.current_period_end) or "the end of the period"
        return f"Subscription {s.id} on site {args.site_id} stays {s.status} and ends on {ends}."

    return object_result(response, Subscription, summary)
