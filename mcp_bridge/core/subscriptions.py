"""Subscription tools: list, get, create, cancel (Core API /subscriptions)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mcp_bridge.core.calls import core_api
from mcp_bridge.core.results import object_result, page_result
from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.registry import tool
from mcp_bridge.runtime.schemas import ListInput, Page, SiteInput, UpstreamObject, eq_filter, id_field

SubscriptionStatus = Literal["trialing", "active", "past_due", "canceled", "incomplete"]


class Subscription(UpstreamObject):
    id: int
    customer_id: int | None = None
    plan_id: int | None = None
    coupon_id: int | None = None
    status: str
    quantity: int | None = None
    auto_renew: bool | None = None
    current_period_start: str | None = None
    current_period_end: str | None = None
    cancel_at_period_end: bool | None = None
    canceled_at: str | None = Field(None, description="When cancellation was requested.")
    ended_at: str | None = Field(None, description="When it actually ended.")
    trial_start: str | None = None
    trial_end: str | None = None
    created_at: str | None = None


class ListSubscriptionsInput(ListInput):
    sort: Literal["id", "-id", "status", "-status", "created_at", "-created_at"] | None = Field(
        None, description="Sort field; prefix with - for descending. Default: id."
    )
    status: SubscriptionStatus | None = Field(None, description="Only subscriptions in this state.")
    customer_id: int | None = Field(None, ge=1, description="Only this customer's subscriptions.")


class SubscriptionIdInput(SiteInput):
    subscription_id: int = id_field("subscription")


@tool(
    "list_subscriptions", title="List subscriptions", input=ListSubscriptionsInput, output=Page[Subscription],
    read_only=True, destructive=False, idempotent=True, open_world=True,
)
async def list_subscriptions(call: CallContext, args: ListSubscriptionsInput):
    """List a site's subscriptions, a page at a time; filter by status or customer_id, sort
    by id, status or created_at (prefix - for descending).

    States: trialing (in a free trial, not yet billed), active (paid and current), past_due
    (a renewal payment failed; still retrying), canceled (ended, no further billing),
    incomplete (the first payment has not succeeded).
    """
    query = args.list_query() | eq_filter(status=args.status, customer_id=args.customer_id)
    response = await core_api(call, "GET", "/subscriptions", args.site_id, what="subscriptions", params=query)
    return page_result(response, Subscription, "subscription", args.site_id)


@tool(
    "get_subscription", title="Get a subscription", input=SubscriptionIdInput, output=Subscription,
    read_only=True, destructive=False, idempotent=True, open_world=True,
)
async def get_subscription(call: CallContext, args: SubscriptionIdInput):
    """Get one subscription by id: its customer, plan, coupon, status, quantity and
    current billing period. `cancel_at_period_end` true means it ends when the period ends.

    States: trialing (in a free trial, not yet billed), active (paid and current), past_due
    (a renewal payment failed; still retrying), canceled (ended, no further billing),
    incomplete (the first payment has not succeeded).
    """
    response = await core_api(
        call, "GET", f"/subscriptions/{args.subscription_id}", args.site_id, what=f"subscription {args.subscription_id}"
    )
    return object_result(
        response, Subscription, lambda s: f"Subscription {s.id} on site {args.site_id} is {s.status}."
    )


class CreateSubscriptionInput(SiteInput):
    customer_id: int = id_field("customer")
    plan_id: int = id_field("plan")
    coupon_id: int | None = Field(None, ge=1, description="A coupon to apply (see list_coupons).")
    quantity: int = Field(1, ge=1, le=1000, description="Number of units (seats, copies) billed.")
    trial_period_days: int = Field(0, ge=0, le=730, description="Free trial length in days; 0 bills at once.")
    auto_renew: bool | None = Field(None, description="Renew at period end; default: the plan's setting.")

    def body(self) -> dict:
        return self.model_dump(exclude={"site_id"}, exclude_none=True)


class CancelSubscriptionInput(SiteInput):
    subscription_id: int = id_field("subscription")
    at_period_end: bool = Field(
        False,
        description="true: keep it until the current period ends, then stop (no renewal). "
        "false (default): end it now.",
    )


@tool(
    "create_subscription", title="Create a subscription", input=CreateSubscriptionInput, output=Subscription,
    read_only=False, destructive=False, idempotent=False, open_world=True,
)
async def create_subscription(call: CallContext, args: CreateSubscriptionInput):
    """Subscribe a customer to an active plan (optionally with a coupon and a quantity).

    With trial_period_days > 0 it starts trialing and nothing is billed until the trial
    ends. Otherwise it starts active and an OPEN invoice for the first period (plan amount
    × quantity, less the coupon, in cents) is created and owed at once. Each call creates
    a new subscription, so check list_subscriptions (customer_id) first. Inactive plans and
    expired or used-up coupons are refused.
    """
    response = await core_api(
        call, "POST", "/subscriptions", args.site_id, what="the new subscription", json_body=args.body(),
        check=f"look for it with list_subscriptions (customer_id {args.customer_id}) to see whether it was created",
    )
    return object_result(
        response, Subscription,
        lambda s: f"Created subscription {s.id} on site {args.site_id} ({s.status}) for customer {s.customer_id}.",
    )


@tool(
    "cancel_subscription", title="Cancel a subscription", input=CancelSubscriptionInput, output=Subscription,
    read_only=False, destructive=True, idempotent=True, open_world=True,
)
async def cancel_subscription(call: CallContext, args: CancelSubscriptionInput):
    """Cancel a subscription. By default it ENDS NOW (status canceled, irreversible: the
    customer loses access and it cannot be resumed). With at_period_end true it stays
    active until current_period_end and then stops (cancel_at_period_end becomes true).
    Refused if it is already canceled. Confirm with the user first.
    """
    body = {"at_period_end": True} if args.at_period_end else {}
    response = await core_api(
        call, "POST", f"/subscriptions/{args.subscription_id}/cancel", args.site_id,
        what=f"subscription {args.subscription_id}", json_body=body,
        check=f"read subscription {args.subscription_id} with get_subscription to see whether it was canceled",
    )
    return object_result(
        response, Subscription,
        lambda s: f"Subscription {s.id} on site {args.site_id} "
        + (f"will end on {s.current_period_end}." if s.cancel_at_period_end and s.status != "canceled" else "is canceled now."),
    )
