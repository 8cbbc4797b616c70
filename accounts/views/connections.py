"""The signed-in person's connected apps, with a Revoke button each."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.connections import revoke_connection
from accounts.models import Connection


@require_GET
@login_required
def connection_list(request):
    connections = (
        Connection.objects.filter(user=request.user, revoked_at__isnull=True)
        .select_related("application", "account")
        .order_by("-created_at")
    )
    return render(request, "accounts/connections.html", {"connections": connections})


@require_POST
@login_required
def connection_revoke(request, pk: int):
    connection = get_object_or_404(Connection, pk=pk, user=request.user)
    if revoke_connection(connection):
        messages.success(request, f"{connection.application} can no longer use {connection.account}.")
    return redirect("connections")
