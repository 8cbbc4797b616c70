"""Plan tools: list, get (Core API /plans, CORE_API.md §8.5)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from mcp_bridge.core.calls import core_api
from mcp_bridge.core.results import money, object_result, page_result
from mcp_bridge.core.shapes import CONTRACT, CoreMetadata, CoreObject, Timestamp, sort_field
from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.registry import tool
from mcp_bridge.runtime.schemas import ListInput, Page, SiteInput, id_field


class Plan(CoreObject):
    """A plan (a price of a product), CORE_API.md §8.5."""

    id: int
    product_id: int | None = None
    nickname: str | None = None
    description: str | None = None
    type: str | None = Field(None, description="regular or membership.")
    active: str | None = Field(None, description="active, or archived (takes no new subscribers).")
    amount: int | None = Field(None, description="Price per interval in cents (minor units).")
    currency: str | None = None
    interval: str | None = Field(None, description="day, week, month or year.")
    interval_count: int | None = Field(None, description="Bills every interval_count intervals.")
    auto_renew: bool | None = None
    available_online: bool | None = None
    trial_period_days: int | None = None
    agency_id: int | None = Field(None, description="Set when an agency manages it (not cancelable through Core).")
    metadata: CoreMetadata = None
    created_at: Timestamp | None = None

    @field_validator("active", mode="before")
    @classmethod
    def _active_as_text(cls, value: Any, info: ValidationInfo) -> Any:
        # Current payloads say "active"/"archived"; one attribute page says a boolean.
        if isinstance(value, bool) and not (info.context or {}).get(CONTRACT):
            return "active" if value else "archived"
        return value


class ListPlansInput(ListInput):
    sort: sort_field(("id", "nickname")) | None = None


class PlanIdInput(SiteInput):
    plan_id: int = id_field("plan")


@tool(
    "list_plans",
    title="List plans",
    input=ListPlansInput,
    output=Page[Plan],
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
)
async def list_plans(call: CallContext, args: ListPlansInput):
    """List a site's subscription plans (prices), a page at a time; sort by id or nickname
    (prefix - for descending). No filters exist. `amount` is in cents per billing
    interval (interval_count × interval, e.g. every 1 month); archived plans take no new
    subscribers.
    """
    response = await core_api(call, "GET", "/plans", args.site_id, what="plans", params=args.list_query())
    return page_result(response, Plan, "plan", args.site_id)


@tool(
    "get_plan",
    title="Get a plan",
    input=PlanIdInput,
    output=Plan,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
)
async def get_plan(call: CallContext, args: PlanIdInput):
    """Get one plan by id: its price (`amount` in cents), currency, billing interval
    (interval_count × interval), whether it is active or archived, and its trial."""
    response = await core_api(call, "GET", f"/plans/{args.plan_id}", args.site_id, what=f"plan {args.plan_id}")
    return object_result(
        response,
        Plan,
        lambda p: (
            f"Plan {p.id} ({p.nickname or 'no nickname'}) on site {args.site_id}: "
            f"{money(p.amount, p.currency)} every {p.interval_count or 1} {p.interval or 'interval'}, {p.active}."
        ),
    )
