"""The ops pages (staff only): the live dashboard and one account's page.

Pages render once with the current numbers; `ops/static/ops/dashboard.js` then polls
the JSON API (`ops.api`) every two seconds and redraws them.
"""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from accounts.models import Account
from mcp_bridge.ratelimit import RateLimiterUnavailable
from ops import state


def staff_required(view):
    """Anonymous → the login page; signed in but not staff → 403."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.is_staff:
            raise PermissionDenied("The ops dashboard is for staff only.")
        return view(request, *args, **kwargs)

    return wrapped


@require_GET
@staff_required
def dashboard(request):
    try:
        data, unavailable = state.overview(), False
    except RateLimiterUnavailable:
        data, unavailable = {"accounts": [], "limit": None}, True
    return render(request, "ops/dashboard.html", {"data": data, "redis_down": unavailable})


@require_GET
@staff_required
def account_page(request, account_id: int):
    account = get_object_or_404(Account, pk=account_id)
    try:
        data, unavailable = state.account_detail(account), False
    except RateLimiterUnavailable:
        data, unavailable = None, True
    return render(request, "ops/account.html", {"account": account, "data": data, "redis_down": unavailable})
