"""The landing page a browser gets at "/": how to connect each MCP client to this deployment."""

import json

from django.conf import settings
from django.shortcuts import render
from django.views.decorators.http import require_safe

from mcp_bridge.tools.catalog import TOOLS


def client_configs(url: str) -> dict[str, str]:
    """The configuration snippets each client needs, with this deployment's URL in them."""

    def as_json(value: dict) -> str:
        return json.dumps(value, indent=2)

    return {
        "claude_code": f"claude mcp add --transport http pelcro {url}",
        "cursor": as_json({"mcpServers": {"pelcro": {"url": url}}}),
        "vscode": as_json({"servers": {"pelcro": {"type": "http", "url": url}}}),
        "windsurf": as_json({"mcpServers": {"pelcro": {"serverUrl": url}}}),
        "multi_account": f"claude mcp add --transport http pelcro-acme {url}\n"
        f"claude mcp add --transport http pelcro-globex {url}",
    }


def tool_groups() -> list[tuple[str, list]]:
    """The tools grouped by Core API resource, in declaration order."""
    groups: dict[str, list] = {}
    for spec in TOOLS.values():
        resource = spec.handler.__module__.rsplit(".", 1)[-1].capitalize()
        groups.setdefault(resource, []).append(spec)
    return list(groups.items())


@require_safe
def landing(request):
    url = settings.MCP_RESOURCE_URL
    return render(
        request,
        "landing.html",
        {"mcp_url": url, "configs": client_configs(url), "tool_groups": tool_groups()},
    )
