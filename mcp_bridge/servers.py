"""The MCP servers this process serves, assembled from their packages' tools.

The Core server (at `/`): the Core API tools (`core/`) and the export tools and files
resource (`exports/`). The Open server (at `/open`): the Open tools (`open/`, declared
with `server="open"`), acting for one signed-in subscriber. Both serve `list_recent_writes`
(`runtime.recent_writes`: the connection's own write calls, README "Safe writes").
"""

from __future__ import annotations

from django.conf import settings

from mcp_bridge import exports
from mcp_bridge.core import account, addresses, charges, coupons, customers, invoices, plans, refunds, subscriptions
from mcp_bridge.open import addresses as open_addresses
from mcp_bridge.open import invoices as open_invoices
from mcp_bridge.open import newsletters as open_newsletters
from mcp_bridge.open import payment_methods as open_payment_methods
from mcp_bridge.open import profile as open_profile
from mcp_bridge.open import site as open_site
from mcp_bridge.open import subscriptions as open_subscriptions
from mcp_bridge.runtime import recent_writes
from mcp_bridge.runtime.registry import REGISTRY, ToolDef
from mcp_bridge.runtime.server import GatewayMCPServer

# Importing a tool module registers its tools; the Core server serves these modules' tools.
CORE_TOOL_MODULES = (
    account,
    addresses,
    charges,
    coupons,
    customers,
    invoices,
    plans,
    refunds,
    subscriptions,
    exports.tools,
    recent_writes,
)
_CORE_MODULE_NAMES = {module.__name__ for module in CORE_TOOL_MODULES}

TOOLS: dict[str, ToolDef] = {
    name: spec for name, spec in REGISTRY["core"].items() if spec.handler.__module__ in _CORE_MODULE_NAMES
}
WRITE_TOOLS = frozenset(name for name, spec in TOOLS.items() if not spec.read_only)

INSTRUCTIONS = """\
These tools work on ONE Pelcro account: the one the user picked when connecting.
Every tool but get_account and list_recent_writes needs site_id, one of that account's sites
(get_account lists them; a wrong site_id answers with the list too). Times are ISO 8601 UTC. Money is in integer cents (minor
units) with a lowercase currency code. List tools return one page: check has_more and
ask for page + 1 to see more; filter with the documented filters instead of paging
through everything (some questions, like one customer's invoices, the Core API cannot
answer: say so). Voiding or writing off invoices, canceling subscriptions and refunds,
and deleting customers or addresses are irreversible: confirm with the user first.
Give each new write an idempotency_key and reuse that key when you retry it; if a write's
outcome is unknown (may_have_been_applied), list_recent_writes shows what happened."""


def build_server() -> GatewayMCPServer:
    """The MCP server with every tool (and the export files resource) registered."""
    server = GatewayMCPServer(
        TOOLS,
        name="pelcro",
        title="Pelcro",
        description="Pelcro Core API tools for one Pelcro account",
        instructions=INSTRUCTIONS,
        website_url=settings.PUBLIC_URL + "/",
        version=settings.VERSION,
        log_level=settings.LOG_LEVEL if settings.LOG_LEVEL in ("DEBUG", "INFO", "WARNING", "ERROR") else "INFO",
        # No `subscriptions/listen` (2026-07-28): the tool list and the resources never
        # change while a client is connected, and a stateless JSON-response endpoint has no
        # stream to deliver notifications on; so `listChanged` is honestly false.
        subscriptions=False,
    )
    exports.register_export_resource(server)
    return server


# --- The Open server --------------------------------------------------------------------------

OPEN_PATH = "/open"
# Importing a tool module registers its tools; the Open server serves these modules' tools.
OPEN_TOOL_MODULES = (
    open_profile,
    open_site,
    open_subscriptions,
    open_invoices,
    open_payment_methods,
    open_addresses,
    open_newsletters,
    recent_writes,
)
_OPEN_MODULE_NAMES = {module.__name__ for module in OPEN_TOOL_MODULES}

OPEN_TOOLS: dict[str, ToolDef] = {
    name: spec for name, spec in REGISTRY["open"].items() if spec.handler.__module__ in _OPEN_MODULE_NAMES
}
OPEN_WRITE_TOOLS = frozenset(name for name, spec in OPEN_TOOLS.items() if not spec.read_only)

OPEN_INSTRUCTIONS = """\
These tools act for ONE signed-in subscriber of ONE Pelcro site (publication): their own
profile, subscriptions, invoices, payment methods and addresses, never anyone else's. The
site and the subscriber are fixed by the sign-in: no tool takes a site or customer id.
Times are ISO 8601 UTC. Money is in integer cents (minor units) with a lowercase currency
code. Payments use a card already saved on the publication's site: never ask for card
numbers (the tools accept none); to add a card, the subscriber uses the publication's
website (get_site gives its address). Every write tool takes dry_run: true to show what
would happen first. If a tool says the sign-in ended, the subscriber must reconnect."""


def build_open_server() -> GatewayMCPServer:
    """The Open MCP server (`/open`) with the Open tools."""
    return GatewayMCPServer(
        OPEN_TOOLS,
        name="pelcro-open",
        title="Pelcro (subscriber)",
        description="Pelcro Open API tools for one signed-in subscriber of one site",
        instructions=OPEN_INSTRUCTIONS,
        website_url=settings.PUBLIC_URL + "/",
        version=settings.VERSION,
        log_level=settings.LOG_LEVEL if settings.LOG_LEVEL in ("DEBUG", "INFO", "WARNING", "ERROR") else "INFO",
        subscriptions=False,  # as the Core server: nothing changes while a client is connected
    )
