"""Coupon tools: list, get (Core API /coupons, CORE_API.md §8.6)."""

from __future__ import annotations

from pydantic import Field

from mcp_bridge.core.calls import core_api
from mcp_bridge.core.results import object_result, page_result
from mcp_bridge.core.shapes import CoreMetadata, CoreObject, Timestamp
from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.registry import tool
from mcp_bridge.runtime.schemas import ListInput, Page, SiteInput, id_field


class Coupon(CoreObject):
    """A coupon (CORE_API.md §8.6): percent_off or amount_off (cents, in `currency`)."""

    id: int
    name: str | None = None
    code: str | None = None
    percent_off: float | None = Field(None, description="Percentage discount, if a percentage coupon.")
    amount_off: int | None = Field(None, description="Fixed discount in cents, if a fixed-amount coupon.")
    currency: str | None = Field(None, description="Currency of amount_off.")
    duration: str | None = Field(None, description="once (first invoice only) or forever.")
    redeem_by: Timestamp | None = Field(None, description="Last moment it can be redeemed.")
    max_redemptions: int | None = None
    times_redeemed: int | None = None
    plans: list[int] | None = Field(None, description="Plans it is restricted to (empty or null: any plan).")
    metadata: CoreMetadata = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None


class CouponIdInput(SiteInput):
    coupon_id: int = id_field("coupon")


@tool(
    "list_coupons",
    title="List coupons",
    input=ListInput,
    output=Page[Coupon],
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
)
async def list_coupons(call: CallContext, args: ListInput):
    """List a site's coupons, a page at a time, in id order (Pelcro documents no sorting or
    filtering for coupons). A coupon takes percent_off or amount_off (cents, in its
    currency), once (first invoice) or forever; it cannot be redeemed after redeem_by, once
    times_redeemed reaches max_redemptions, or for plans outside `plans` when that is set.
    """
    response = await core_api(call, "GET", "/coupons", args.site_id, what="coupons", params=args.list_query())
    return page_result(response, Coupon, "coupon", args.site_id)


@tool(
    "get_coupon",
    title="Get a coupon",
    input=CouponIdInput,
    output=Coupon,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
)
async def get_coupon(call: CallContext, args: CouponIdInput):
    """Get one coupon by id: its code (what create_subscription takes as coupon_code), its
    discount (percent_off, or amount_off in cents), duration, redemption limits and the
    plans it is restricted to."""
    response = await core_api(call, "GET", f"/coupons/{args.coupon_id}", args.site_id, what=f"coupon {args.coupon_id}")
    return object_result(
        response, Coupon, lambda c: f"Coupon {c.id} ({c.code or c.name or 'no code'}) on site {args.site_id}."
    )
