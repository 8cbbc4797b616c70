"""The publication's public side: its configuration and the plans on offer (Open API
`GET /site`, OPEN_API.md §5.2). Always the connection's own site: there is no argument
that could name another one.

Every read of `GET /site` is kept in Redis for `OPEN_SITE_CACHE_SECONDS` (shared by the
processes), which the write tools' previews use (`cached_site`): a preview reads the
subscriber's state with its ONE upstream request, and learns the site's settings (whether
immediate cancellation is on, which plans ship or renew) from the kept copy, without a
second request. Pelcro itself serves `/site` from an edge cache about 5 minutes old
(OPEN_API.md §5.2), so the kept copy lags no more than what Pelcro documents; when there is
none, a preview names the rule it could not check (`WritePreview.not_checked`).
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from pydantic import BaseModel, Field

from mcp_bridge.open.calls import open_api, site_name, subscriber_of
from mcp_bridge.open.shapes import NoArguments, Plan, Site, result, site_from
from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.registry import tool
from mcp_bridge.runtime.values import money
from mcp_bridge.upstream.redis_clients import REDIS_DOWN_ERRORS, redis_for_loop

logger = logging.getLogger(__name__)


class PlanList(BaseModel):
    """The plans the site sells online."""

    site: str = Field(description="The publication, e.g. Acme Daily (site 14).")
    plans: list[Plan]


def _cache_key(site_id: int) -> str:
    return f"{settings.REDIS_KEY_PREFIX}open-site:{site_id}"


async def read_site(call: CallContext) -> Site:
    """The connection's site configuration (`GET /site`, public: no sign-in token sent),
    read now, and kept for the previews (module docstring)."""
    response = await open_api(call, "GET", "/site", what="the site configuration", public=True)
    site = site_from(response.data)
    seconds = int(settings.PELCRO_GATEWAY["OPEN_SITE_CACHE_SECONDS"])
    if seconds > 0:
        try:
            await redis_for_loop().execute("SET", _cache_key(site.id), site.model_dump_json(), "EX", seconds)
        except REDIS_DOWN_ERRORS as exc:  # only the previews' knowledge suffers
            logger.warning("could not keep site %s's configuration: %s", site.id, type(exc).__name__)
    return site


async def cached_site(call: CallContext) -> Site | None:
    """The connection's site configuration as last read (`read_site`) within
    `OPEN_SITE_CACHE_SECONDS`, without an upstream request; None when none is kept."""
    try:
        raw = await redis_for_loop().execute("GET", _cache_key(subscriber_of(call).site_id))
    except REDIS_DOWN_ERRORS:
        return None
    if raw is None:
        return None
    try:
        return Site.model_validate(json.loads(raw))
    except ValueError:
        return None


async def known_site(call: CallContext) -> Site:
    """The site configuration kept by `read_site`, else read now (for read tools, which
    may spend a second request to name plans)."""
    return await cached_site(call) or await read_site(call)


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
