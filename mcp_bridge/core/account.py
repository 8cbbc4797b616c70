"""The account tool: `get_account` (Core API `GET /account`, CORE_API.md §8.1), and the
account's shape, which the gateway also reads to learn each account's rate limit and sites
(`mcp_bridge.core.account_refresh`)."""

from __future__ import annotations

from pydantic import Field

from mcp_bridge.core.calls import core_api
from mcp_bridge.core.results import object_result
from mcp_bridge.core.shapes import CoreObject
from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.registry import tool
from mcp_bridge.runtime.schemas import ToolInput


class AccountSite(CoreObject):
    """One site of the account, as `GET /account` lists it."""

    id: int = Field(ge=1, description="The site's id: what other tools take as site_id.")
    name: str
    url: str | None = None


class PelcroAccount(CoreObject):
    """`GET /account`'s `data` (CORE_API.md §8.1, [acct-get])."""

    id: int
    company: str | None = None
    country: str | None = None
    default_currency: str | None = None
    is_enterprise: bool | None = None
    taxes_enabled: bool | None = None
    api_core_rate_limit: int = Field(
        ge=1,
        description="Core API requests per minute Pelcro allows the account "
        "(all endpoints, reads and writes together).",
    )
    payment_gateway: str | None = None
    sites: list[AccountSite]


class GetAccountInput(ToolInput):
    """No arguments: the connected account."""


@tool(
    "get_account",
    title="Get the connected account",
    input=GetAccountInput,
    output=PelcroAccount,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
)
async def get_account(call: CallContext, args: GetAccountInput):
    """Get the connected Pelcro account as Pelcro describes it: company, country, default
    currency, payment gateway, whether taxes are enabled, its sites (id, name, url: the
    site_id every other tool needs) and its Core API rate limit (api_core_rate_limit,
    requests per minute). Call it first when you do not know which site to use."""
    response = await core_api(call, "GET", "/account", None, what="the account")

    def summary(account: PelcroAccount) -> str:
        sites = ", ".join(f"{s.id} ({s.name})" for s in account.sites) or "none"
        return (
            f"Account {account.company or account.id}: rate limit {account.api_core_rate_limit} requests/min; "
            f"sites: {sites}."
        )

    return object_result(response, PelcroAccount, summary)
