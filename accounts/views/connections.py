"""The signed-in person's connected apps: the active ones with Activity and Revoke, the
revoked ones below (when and by whom), and a confirmation step before revoking."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_safe

from accounts.auth_epoch import EpochUnavailable
from accounts.connections import revoke_connection
from accounts.models import Connection

# Revoked connections stay listed (most recent first) so a revoke is visible afterwards.
REVOKED_SHOWN = 20


@require_safe
@login_required
def connection_list(request):
    mine = Connection.objects.filter(user=request.user).select_related("application", "account")
    active = mine.filter(revoked_at__isnull=True).order_by("-created_at")
    revoked = [
        (connection, connection.revoked_by_display(request.user))
        for connection in mine.filter(revoked_at__isnull=False).order_by("-revoked_at")[:REVOKED_SHOWN]
    ]
    return render(request, "accounts/connections.html", {"connections": active, "revoked": revoked})


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
def connection_revoke(request, pk: int):
    """GET: "Revoke this app?" with what it stops (works without JavaScript).
    POST (the confirm form): revoke it and its tokens at once, back to the list. If the
    revoke cannot be published to every server (`accounts.auth_epoch.EpochUnavailable`)
    nothing is revoked and the list says so: "revoked" is said only once it holds everywhere."""
    connection = get_object_or_404(
        Connection.objects.select_related("application", "account"), pk=pk, user=request.user
    )
    if request.method != "POST":
        return render(request, "accounts/revoke_confirm.html", {"connection": connection})
    try:
        revoked = revoke_connection(connection, by=f"user:{request.user.get_username()}")
    except EpochUnavailable as refused:
        messages.error(request, f"{connection.application} still has access to {connection.account}. {refused.message}")
        return redirect("connections")
    if revoked:
        messages.success(request, f"Revoked: {connection.application} can no longer use {connection.account}.")
    else:
        messages.info(request, f"{connection.application} was already revoked.")
    return redirect("connections")
