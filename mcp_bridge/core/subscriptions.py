"""Subscription tools: list, get, create, cancel (Core API /subscriptions)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mcp_bridge.core.calls import core_api
from mcp_bridge.core.results import object_result, page_result
from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.registry import tool
from mcp_bridge.runtime.schemas import ListInput, Page, SiteInput, Timestamp, UpstreamObject, id_field


class Subscription(UpstreamObject):
    id: int
    user_id: int | None = Field(None, description="The customer's id.")
    plan: int | None = Field(None, description="The plan's id.")
    coupon: int | None = Field(None, description="The coupon's id, if any.")
    latest_invoice: int | None = Field(None, description="The id of the latest invoice, if any.")
    status: str
    quantity: int | None = None
    auto_renew: bool | None = None
    current_period_start: Timestamp = None
    current_period_end: Timestamp = None
    cancel_at_period_end: bool | None = None
    canceled_at: Timestamp = Field(None, description="When cancellation was requested.")
    ended_at: Timestamp = Field(None, description="When it actually ended.")
    trial_start: Timestamp = None
    trial_end: Timestamp = None
    created: Timestamp = None


class ListSubscriptionsInput(ListInput):
    sort: Literal["status", "-status"] | None = Field(
        None, description="Sort by status; prefix with - for descending. Default: id."
    )


class SubscriptionIdInput(SiteInput):
    subscription_id: int = id_field("subscription")


@tool(
    "list_subscriptions", title="List subscriptions", input=ListSubscriptionsInput, output=Page[Subscription],
    read_only=True, destructive=False, idempotent=True, open_world=True,
)
async def list_subscriptions(call: CallContext, args: ListSubscriptionsInput):
    """List a site's subscriptions, a page at a time, sorted by id or by status (prefix - for
    descending). The Core API has no filters on subscriptions.

    States: trialing (in a free trial, not yet billed), active (paid and current), past_due
    (a renewal payment failed; still retrying), canceled (ended, no further billing),
    incomplete (the first payment has not succeeded).
    """
    response = await core_api(call, "GET", "/subscriptions", args.site_id, what="subscriptions",
                              params=args.list_query())
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
    coupon_code: str | None = Field(
        None, min_length=1, max_length=191, description="A coupon code to apply (see list_coupons)."
    )
    quantity: int = Field(1, ge=1, le=100_000, description="Number of units (seats, copies) billed.")
    source_id: int | None = Field(
        None, ge=1, description="The customer's saved payment source to charge; without it the first invoice "
        "is sent to the customer (collection_method send_invoice)."
    )
    trial_period_days: int = Field(0, ge=0, le=730, description="Free trial length in days; 0 bills at once.")
    auto_renew: bool | None = Field(None, description="Renew at period end; default: the plan's setting.")

    def body(self) -> dict:
        """The Core API request (CORE_API.md §8.3): `user_id`, `plan_id`, `quantity`, ..."""
        body = {"user_id": self.customer_id, "plan_id": self.plan_id, "quantity": self.quantity,
                "collection_method": "charge_automatically" if self.source_id else "send_invoice"}
        optional = {"coupon_code": self.coupon_code, "source_id": self.source_id, "auto_renew": self.auto_renew,
                    "trial_period_days": self.trial_period_days or None}
        return body | {k: v for k, v in optional.items() if v is not None}


class CancelSubscriptionInput(SiteInput):
    subscription_id: int = id_field("subscription")
    at_period_end: bool = Field(
        False,
        description="true: keep it until the current period ends, then stop (no renewal). "
        "false (default): end it now.",
    )
    reason: str | None = Field(None, max_length=255, description="Why it is canceled (kept on the subscription).")


@tool(
    "create_subscription", title="Create a subscription", input=CreateSubscriptionInput, output=Subscription,
    read_only=False, destructive=False, idempotent=False, open_world=True,
)
async def create_subscription(call: CallContext, args: CreateSubscriptionInput):
    """Subscribe a customer to an active plan (optionally with a coupon code and a quantity).

    With trial_period_days > 0 it starts trialing and nothing is billed until the trial
    ends. Otherwise it starts active with a first invoice (plan amount × quantity, less the
    coupon, in cents): charged at once to source_id when given, else OPEN and owed. Each
    call creates a new subscription. Archived plans and expired, used-up or other plans'
    coupons are refused.
    """
    response = await core_api(
        call, "POST", "/subscriptions", args.site_id, what="the new subscription", json_body=args.body(),
        check="look for it among the newest subscriptions (the last page of list_subscriptions) to see whether "
        "it was created",
    )
    return object_result(
        response, Subscription,
        lambda s: f"Created subscription {s.id} on site {args.site_id} ({s.status}) for customer {s.user_id}.",
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
    body = {"mode": "period_end" if args.at_period_end else "now"}
    if args.reason:
        body["reason"] = args.reason
    response = await core_api(
        call, "DELETE", f"/subscriptions/{args.subscription_id}", args.site_id,
        what=f"subscription {args.subscription_id}", json_body=body,
        check=f"read subscription {args.subscription_id} with get_subscription to see whether it was canceled",
    )
    return object_result(
        response, Subscription,
        lambda s: f"Subscription {s.id} on site {args.site_id} "
        + (f"will end on {s.current_period_end}." if s.cancel_at_period_end and s.status != "canceled" else "is canceled now."),
    )
