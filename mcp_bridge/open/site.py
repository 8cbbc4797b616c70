"""The publication's public side: its configuration and the plans on offer (Open API
`GET /site`, OPEN_API.md §5.2). Always the connection's own site: there is no argument
that could name another one."""

from __future__ import annotations

from pydantic import BaseModel, Field

from mcp_bridge.open.calls import open_api, site_name
from mcp_bridge.open.shapes import NoArguments, Plan, Site, result, site_from
from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.registry import tool
from mcp_bridge.runtime.values import money


class PlanList(BaseModel):
    """The plans the site sells online."""

    site: str = Field(description="The publication, e.g. Acme Daily (site 14).")
    plans: list[Plan]


async def read_site(call: CallContext) -> Site:
    """The connection's site configuration (`GET /site`, public: no sign-in token sent)."""
    response = await open_api(call, "GET", "/site", what="the site configuration", public=True)
    return site_from(response.data)


def plan_line(plan: Plan) -> str:
    every = plan.interval if (plan.interval_count or 1) == 1 else f"{plan.interval_count} {plan.interval}s"
    trial = f", {plan.trial_period_days}-day free trial" if plan.trial_period_days else ""
    ships = ", printed (needs a shipping address)" if plan.ships else ""
    return f"- {plan.nickname} (plan {plan.id}): {money(plan.amount, plan.currency)} every {every}{trial}{ships}"


@tool(
    "get_site",
    title="Get the publication's configuration",
    input=NoArguments,
    output=Site,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
    server="open",
)
async def get_site(call: CallContext, args: NoArguments):
    """The publication this connection signed in to: name, website (where cards are added),
    default currency, whether immediate cancellation is allowed, its newsletters, and the
    plans on offer (amounts in cents)."""
    site = await read_site(call)
    return result(site, f"{site_name(call)}: {site.link or 'no website given'}, {len(site.plans)} plans on offer.")


@tool(
    "list_plans",
    title="List the plans on offer",
    input=NoArguments,
    output=PlanList,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
    server="open",
)
async def list_plans(call: CallContext, args: NoArguments):
    """The plans the publication sells online: name, price in cents with its currency and
    billing interval, free trial days, and whether it is printed (ships: subscribing needs
    a shipping address). Use preview_subscription for the exact total before subscribing."""
    site = await read_site(call)
    where = site_name(call)
    lines = "\n".join(plan_line(plan) for plan in site.plans)
    return result(PlanList(site=where, plans=site.plans), f"{len(site.plans)} plans on offer at {where}:\n{lines}")
