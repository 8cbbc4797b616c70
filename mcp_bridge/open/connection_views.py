"""A subscriber's connected apps at `/open/connections` (issue 14): each app with its access
level, whether it asks before money actions, when it was connected and last used, and its
recent tool calls; a revoke (confirmation page, then POST) that ends the connection and its
Pelcro sign-in (`mcp_bridge.open.connections.end_connection`). The subscriber's sign-in and
sign-out pages are `mcp_bridge.open.views`.

Signed in through the subscriber session (`accounts.subscriber_session`), never Django's
login: an operator's session shows nothing here, and a subscriber only ever reaches their
own connections (any other id is a 404, as if it did not exist).
"""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_safe

from accounts.auth_epoch import EpochUnavailable
from accounts.models import Connection
from accounts.subscriber_session import subscriber_required
from mcp_bridge.models import ToolCall
from mcp_bridge.open.connections import by_subscriber, connections_of, end_connection, recent_calls

# Revoked connections stay listed (most recent first) so a revoke is visible afterwards.
REVOKED_SHOWN = 20

# What each access level lets an app do, in the subscriber's words (the consent screen's).
ACCESS_WORDS = {
    Connection.Access.READ: "Read only",
    Connection.Access.READ_WRITE: "Manage subscriptions and payments",
}

# A confirmation decision of the audit (`ToolCall.confirmation`), told to the subscriber.
CONFIRMATION_WORDS = {
    # A row of its own: the call that asked did nothing else; your answer shows on the call
    # that came back with it.
    ToolCall.Confirmation.ASKED: "Asked you to confirm (your answer shows on the next call)",
    ToolCall.Confirmation.CONFIRMED: "You confirmed it",
    ToolCall.Confirmation.DECLINED: "You declined it",
    ToolCall.Confirmation.EXPIRED: "Asked you; expired before it was used",
    ToolCall.Confirmation.WAIVED: "Not asked (asking is off for this app)",
}


def _call_row(call: ToolCall) -> dict:
    notes = []
    if call.dry_run:
        notes.append("Preview only: nothing was changed")
    if call.confirmation:
        notes.append(CONFIRMATION_WORDS.get(call.confirmation, call.get_confirmation_display()))
    if call.replayed:
        notes.append("A repeat of an earlier call: answered from it, nothing done twice")
    return {"call": call, "notes": notes}


@require_safe
@subscriber_required
def connection_list(request):
    subscriber = request.subscriber
    mine = connections_of(subscriber)
    active = list(mine.filter(revoked_at__isnull=True))
    calls = recent_calls(active)
    revoked = [
        (connection, connection.revoked_by_display(subscriber.user))
        for connection in mine.filter(revoked_at__isnull=False).order_by("-revoked_at")[:REVOKED_SHOWN]
    ]
    apps = [
        {
            "connection": connection,
            "access": ACCESS_WORDS.get(connection.access, connection.get_access_display()),
            "calls": [_call_row(call) for call in calls[connection.pk]],
        }
        for connection in active
    ]
    return render(
        request,
        "open/connections.html",
        {"subscriber": subscriber, "site": subscriber.site, "apps": apps, "revoked": revoked},
    )


@require_http_methods(["GET", "HEAD", "POST"])
@subscriber_required
def connection_revoke(request, pk: int):
    """GET: "Revoke this app?" with what it stops (works without JavaScript).
    POST (the confirm form, CSRF-checked): end it — its tokens at once, then its Pelcro
    sign-in signed out (best effort) — and back to the list. If the revoke cannot be
    published to every server (`EpochUnavailable`) nothing is revoked and the list says so."""
    subscriber = request.subscriber
    connection = get_object_or_404(
        Connection.objects.select_related("application", "account"), pk=pk, user_id=subscriber.user_id
    )
    name = connection.application.name or connection.application.client_id
    site = subscriber.site
    if request.method != "POST":
        return render(
            request,
            "open/revoke_confirm.html",
            {
                "subscriber": subscriber,
                "connection": connection,
                "name": name,
                "site": site,
                "access": ACCESS_WORDS.get(connection.access, connection.get_access_display()),
                "revoked_by": connection.revoked_by_display(subscriber.user) if connection.revoked_at else "",
            },
        )
    try:
        ended = end_connection(connection, by=by_subscriber(subscriber))
    except EpochUnavailable as refused:
        messages.error(request, f"{name} can still act for you at {site.name}. {refused.message}")
        return redirect("open-connections")
    if ended.revoked:
        messages.success(request, f"Revoked: {name} can no longer act for you at {site.name}.")
    else:
        messages.info(request, f"{name} was already revoked.")
    if ended.signed_out is False:
        messages.warning(
            request,
            f"{site.name} could not be reached to sign out the sign-in {name} used. Nothing can use it "
            "through here any more, and the gateway signs it out there as soon as the publication answers.",
        )
    return redirect("open-connections")
