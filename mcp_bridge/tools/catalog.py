"""Every tool the gateway serves: importing the resource modules registers them."""

from mcp_bridge.tools import charges, coupons, customers, exports, invoices, plans, subscriptions  # noqa: F401
from mcp_bridge.tools.registry import REGISTRY, ToolDef

TOOLS: dict[str, ToolDef] = dict(REGISTRY)
WRITE_TOOLS = frozenset(name for name, spec in TOOLS.items() if not spec.read_only)
