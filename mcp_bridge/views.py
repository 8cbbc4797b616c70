"""Pages of the MCP side: the landing page a browser gets at "/" (how to connect each
client), and a person's view of the tool calls made through one of their connections."""

import json

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_safe

from accounts.models import Connection, Site
from mcp_bridge.audit import redact
from mcp_bridge.models import ToolCall
from mcp_bridge.servers import OPEN_TOOLS, TOOLS

ACTIVITY_PAGE_SIZE = 50


# The names the two servers are installed under in every client (Pelcro's own naming:
# `pelcro-api-core` for the publisher's staff, `pelcro-api-open` for a subscriber).
CORE_SERVER_NAME = "pelcro-api-core"
OPEN_SERVER_NAME = "pelcro-api-open"


def client_configs(url: str, name: str = CORE_SERVER_NAME) -> dict[str, str]:
    """The configuration snippets each client needs for the server `name` at `url`
    (this deployment's URL), e.g. {"claude_code": "claude mcp add …", "cursor": "{…}"}."""

    def as_json(value: dict) -> str:
        return json.dumps(value, indent=2)

    return {
        "name": name,
        "url": url,
        "claude_code": f"claude mcp add --transport http {name} {url}",
        "cursor": as_json({"mcpServers": {name: {"url": url}}}),
        "vscode": as_json({"servers": {name: {"type": "http", "url": url}}}),
        "vscode_cli": "code --add-mcp " + json.dumps({"name": name, "type": "http", "url": url}, separators=(",", ":")),
        "windsurf": as_json({"mcpServers": {name: {"serverUrl": url}}}),
        "multi_account": f"claude mcp add --transport http {name}-acme {url}\n"
        f"claude mcp add --transport http {name}-globex {url}",
    }


def tool_groups(tools: dict | None = None) -> list[tuple[str, list]]:
    """The tools of a server (the Core server's by default) grouped by the module that
    declares them (one per Pelcro resource), in declaration order."""
    groups: dict[str, list] = {}
    for spec in (TOOLS if tools is None else tools).values():
        resource = spec.handler.__module__.rsplit(".", 1)[-1].replace("_", " ").capitalize()
        groups.setdefault(resource, []).append(spec)
    return list(groups.items())


@require_safe
def landing(request):
    url = settings.MCP_RESOURCE_URL
    open_url = settings.OPEN_RESOURCE_URL
    return render(
        request,
        "landing.html",
        {
            "mcp_url": url,
            "open_url": open_url,
            "servers": [client_configs(url, CORE_SERVER_NAME), client_configs(open_url, OPEN_SERVER_NAME)],
            "configs": client_configs(url),
            "tool_groups": tool_groups(),
            "open_tool_groups": tool_groups(OPEN_TOOLS),
        },
    )


@require_safe
@login_required
def connection_activity(request, pk: int):
    """The tool calls through one of the signed-in person's own connections, newest first,
    ACTIVITY_PAGE_SIZE a page (`?page=N`; out-of-range pages show the last one), each with
    its site's name and its arguments as the audit stored them, redacted again with today's
    rules (`mcp_bridge.audit.redact`) in case a row predates one."""
    connection = get_object_or_404(
        Connection.objects.select_related("application", "account"), pk=pk, user=request.user
    )
    calls = ToolCall.objects.filter(connection=connection).order_by("-created_at", "-id")
    page = Paginator(calls, ACTIVITY_PAGE_SIZE).get_page(request.GET.get("page"))
    sites = dict(Site.objects.filter(site_id__in={c.site_id for c in page if c.site_id}).values_list("site_id", "name"))
    rows = [
        {
            "call": call,
            "site_name": sites.get(call.site_id, ""),
            "arguments": json.dumps(redact(call.arguments), indent=2, sort_keys=True) if call.arguments else "",
        }
        for call in page
    ]
    return render(
        request, "mcp_bridge/connection_activity.html", {"connection": connection, "page": page, "rows": rows}
    )
