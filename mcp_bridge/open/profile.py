"""The subscriber's own profile (Open API `POST /customer` to read, `PUT /customer` to
change, OPEN_API.md §5.3): always the signed-in customer's, never anyone else's."""

from __future__ import annotations

from mcp_bridge.open.calls import open_api, site_name
from mcp_bridge.open.shapes import NoArguments, Profile, profile_from, result
from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.registry import tool


async def read_customer(call: CallContext) -> dict:
    """The customer resource of the signed-in subscriber (profile, subscriptions, addresses,
    payment methods, invoices: OPEN_API.md §3), one upstream read."""
    response = await open_api(call, "POST", "/customer", what="your profile")
    return response.data if isinstance(response.data, dict) else {}


@tool(
    "get_my_profile",
    title="Get my profile",
    input=NoArguments,
    output=Profile,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
    server="open",
)
async def get_my_profile(call: CallContext, args: NoArguments):
    """The signed-in subscriber's own profile at this publication: name, e-mail (and whether
    it is confirmed), username, phone, language, metadata, credit balance in cents, and the
    default payment method (card brand and last 4 digits only)."""
    profile = profile_from(await read_customer(call))
    name = " ".join(part for part in (profile.first_name, profile.last_name) if part) or profile.email
    return result(profile, f"{name} (customer {profile.id}) at {site_name(call)}.")
