"""Subscription tools: list, get, create, cancel (Core API /subscriptions, CORE_API.md §8.3)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from mcp_bridge.core.addresses import Address
from mcp_bridge.core.calls import core_api
from mcp_bridge.core.coupons import Coupon
from mcp_bridge.core.plans import Plan
from mcp_bridge.core.results import object_result, page_result
from mcp_bridge.core.shapes import CoreMetadata, CoreObject, Timestamp, embedded, expand_param, iso, sort_field
from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.registry import tool
from mcp_bridge.runtime.schemas import ListInput, Page, SiteInput, id_field
from mcp_bridge.runtime.writes import WHEN_MODE_NOW


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


class CancelSubscriptionInput(SiteInput):
    subscription_id: int = id_field("subscription")
    mode: Literal["period_end", "now"] = Field(
        description="period_end: it stays active until the current period ends, then stops (no renewal). "
        "now: it ends at once (status canceled; the customer loses access)."
    )
    reason: str = Field(min_length=1, max_length=255, description="Why it is canceled (kept by Pelcro).")

    def body(self) -> dict[str, Any]:
        return {"mode": self.mode, "reason": self.reason}


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


@tool(
    "create_subscription",
    title="Create a subscription",
    input=CreateSubscriptionInput,
    output=Subscription,
    read_only=False,
    destructive=False,
    idempotent=False,
    open_world=True,
)
async def create_subscription(call: CallContext, args: CreateSubscriptionInput):
    """Subscribe a customer to a plan, with a quantity (required) and optionally a coupon
    code. By default the customer's saved payment method (source_id, required then) is
    charged; with collection_method send_invoice they are invoiced instead. Each call
    creates a new subscription: check the customer's subscriptions first (get_customer).
    Refused: archived plans, coupons restricted to other plans, a customer at their
    maximum number of subscriptions.
    """
    response = await core_api(
        call,
        "POST",
        "/subscriptions",
        args.site_id,
        what="the new subscription",
        json_body=args.body(),
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
)
async def cancel_subscription(call: CallContext, args: CancelSubscriptionInput):
    """Cancel a subscription, with a mode and a reason (both required).

    mode period_end: it stays active until current_period_end and then stops
    (cancel_at_period_end becomes true). mode now: it ENDS AT ONCE (status canceled,
    irreversible: the customer loses access). Refused for gift-recipient, agency-managed and
    pending-payment subscriptions. Confirm the mode with the user first.
    """
    response = await core_api(
        call,
        "DELETE",
        f"/subscriptions/{args.subscription_id}",
        args.site_id,
        what=f"subscription {args.subscription_id}",
        json_body=args.body(),
        check=f"read subscription {args.subscription_id} with get_subscription to see whether it was canceled",
    )

    def summary(s: Subscription) -> str:
        if s.status == "canceled" or args.mode == "now":
            return f"Subscription {s.id} on site {args.site_id} is canceled now ({s.status})."
        ends = iso(s.cancel_at or s.current_period_end) or "the end of the period"
        return f"Subscription {s.id} on site {args.site_id} stays {s.status} and ends on {ends}."

    return object_result(response, Subscription, summary)
