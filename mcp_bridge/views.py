"""Pages of the MCP side: the landing page a browser gets at "/" (how to connect each
client), a person's view of the tool calls made through one of their connections, and the
confirmation page where a person confirms (or declines) one write call."""

import json

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_safe

from accounts.models import Connection, Site
from accounts.subscriber_session import current_subscriber
from accounts.subscriber_session import sign_in_url as subscriber_sign_in_url
from accounts.subscribers import is_subscriber
from mcp_bridge.audit import redact
from mcp_bridge.models import PendingConfirmation, ToolCall
from mcp_bridge.runtime import confirmation
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


@require_http_methods(["GET", "HEAD", "POST"])
def confirmation_page(request, pk):
    """One write call waiting for a person's yes (`runtime.confirmation`, the link of a
    `confirmation_required` answer): only the signed-in person of the call's connection
    sees it: an operator through the gateway's sign-in (`/login`), a subscriber (Open
    server) through the subscriber sign-in (`accounts.subscriber_session`), each sent there
    first when signed out. GET shows the summary and Confirm / Decline (a plain form, CSRF,
    no JavaScript) or the state it is in: confirmed (the app may now repeat the call),
    declined, used, expired, connection revoked. POST records the answer once, then 303 to
    the page. Anyone else gets 403 without the summary; an unknown id, 404."""
    row = get_object_or_404(
        PendingConfirmation.objects.select_related(
            "connection__application", "connection__account", "connection__user__subscriber__site"
        ),
        pk=pk,
        channel=PendingConfirmation.Channel.LINK,
    )
    person = _signed_in_person(request, row)
    if person is None:  # signed out (of the right kind): sign in, then back here
        owner = row.connection.user
        if is_subscriber(owner):
            return redirect(subscriber_sign_in_url(request.get_full_path(), site_id=owner.subscriber.site.site_id))
        return redirect_to_login(request.get_full_path())
    if person != row.connection.user_id:
        return render(request, "mcp_bridge/confirmation.html", {"state": "wrong_person"}, status=403)
    if request.method == "POST":
        choice = request.POST.get("answer")
        if choice not in ("confirm", "decline"):
            context = _confirmation_context(row, error="Choose Confirm or Decline.")
            return render(request, "mcp_bridge/confirmation.html", context, status=400)
        confirmation.decide(row.pk, person, confirmed=choice == "confirm")
        return HttpResponseRedirect(reverse("confirmation", args=[row.pk]), status=303)
    return render(request, "mcp_bridge/confirmation.html", _confirmation_context(row))


def _signed_in_person(request, row: PendingConfirmation) -> int | None:
    """The user id of whoever is signed in, of the kind the row's connection belongs to:
    the subscriber of the browser's subscriber session for a subscriber's connection, the
    operator signed in to the gateway otherwise; None when signed out (of that kind)."""
    if is_subscriber(row.connection.user):
        subscriber = current_subscriber(request)
        return subscriber.user_id if subscriber is not None else None
    return request.user.pk if request.user.is_authenticated and not is_subscriber(request.user) else None


def _confirmation_context(row: PendingConfirmation, error: str = "") -> dict:
    now = timezone.now()
    Status = PendingConfirmation.Status
    if row.connection.revoked_at is not None and row.used_at is None:
        state = "revoked"
    elif row.used_at is not None:
        # A call uses a yes only before it expires; a later call reports it expired instead.
        if row.status == Status.DECLINED:
            state = "declined"
        else:
            state = "used" if row.status == Status.CONFIRMED and row.used_at < row.expires_at else "expired"
    elif row.status == Status.DECLINED:
        state = "declined"
    elif row.expired(now):
        state = "expired"
    else:
        state = "confirmed" if row.status == Status.CONFIRMED else "pending"
    return {
        "state": state,
        "row": row,
        "connection": row.connection,
        "app_name": row.connection.application.name or row.connection.application.client_id,
        "arguments": json.dumps(row.arguments, indent=2, sort_keys=True) if row.arguments else "",
        "error": error,
    }
