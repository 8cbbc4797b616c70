"""The ops pages (staff only): the live dashboard and one account's page.

Pages render once with the current numbers; `ops/static/ops/dashboard.js` then polls
the JSON API (`ops.api`) every two seconds and redraws them.
"""

from functools import wraps

from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from accounts.models import Account
from mcp_bridge.upstream.errors import RateLimiterUnavailable
from ops import state

STAFF_ONLY = (
    "The ops dashboard is for the gateway's staff only: it shows every account's traffic, "
    "so your account needs the staff flag (set in the admin)."
)


def staff_required(view):
    """Django's `staff_member_required` (anonymous → the sign-in page), except that a
    signed-in person who is not staff gets the branded 403 saying why, not a second
    sign-in form."""
    checked = staff_member_required(view, login_url="login")

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if request.user.is_authenticated and not request.user.is_staff:
            raise PermissionDenied(STAFF_ONLY)
        return checked(request, *args, **kwargs)

    return wrapped


@require_GET
@staff_required
def dashboard(request):
    try:
        data, unavailable = state.overview(), False
    except RateLimiterUnavailable:
        data, unavailable = {"accounts": [], "limit": None}, True
    return render(
        request,
        "ops/dashboard.html",
        {"data": data, "redis_down": unavailable, "subscriber_sites": state.subscriber_connections_by_site()},
    )


@require_GET
@staff_required
def account_page(request, account_id: int):
    account = get_object_or_404(Account, pk=account_id)
    try:
        data, unavailable = state.account_detail(account), False
    except RateLimiterUnavailable:
        data, unavailable = None, True
    return render(request, "ops/account.html", {"account": account, "data": data, "redis_down": unavailable})
