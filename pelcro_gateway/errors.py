"""The gateway's error pages (handler403, handler404, handler500): branded, saying why, with a
way back; JSON for API paths and clients that ask for it. A database outage, or a change to
who may connect that could not be published to the other servers (`accounts.auth_epoch`),
becomes a 503 with Retry-After on every page.

`handler500` runs inside Django's exception handling, so the exception being handled is
`sys.exc_info()`, whichever layer raised it (a view, or session saving in middleware).
The 500/503 pages render without the request's context processors: those read the session
and the user, which need the database that may be the very thing that failed.
"""

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string

from accounts.auth_epoch import RETRY_AFTER_SECONDS as REFUSED_RETRY_AFTER_SECONDS
from accounts.auth_epoch import EpochUnavailable
from pelcro_gateway.context_processors import deployment

RETRY_AFTER_SECONDS = "5"

PAGES = {
    403: ("You can't open this page", "You are signed in, but this page is not for your account."),
    404: ("Page not found", "There is nothing at this address. The link may be old or mistyped."),
    500: ("Something went wrong on our side", "The error has been logged; nothing you did caused it."),
    503: (
        "Temporarily unavailable",
        "The service is temporarily unavailable: database unreachable. Try again in a few seconds.",
    ),
}


def _wants_json(request) -> bool:
    return request.path.startswith(("/oauth/", "/ops/api/", "/.well-known/")) or "json" in request.headers.get(
        "Accept", ""
    )


def error_context(request, status: int, reason: str = "") -> dict:
    """What templates/errors/error.html shows: title, why, and where to go back to."""
    title, default_reason = PAGES[status]
    signed_in = status in (403, 404) and request.user.is_authenticated
    context = {
        "status": status,
        "title": title,
        "reason": reason or default_reason,
        "back_url": "/connections" if signed_in else ("/login" if status == 403 else ""),
        "back_label": "Back to your connected apps" if signed_in else "Sign in",
    }
    if status == 403 and request.user.is_authenticated:
        context["hint"] = (
            f"You are signed in as {request.user.get_username()}. If you need this page, ask "
            "an administrator of the gateway, or sign out and sign in with another account."
        )
    return context


def page(request, status: int, reason: str = "", *, with_request: bool = True) -> HttpResponse:
    """The branded HTML page for `status` (403, 404, 500 or 503)."""
    context = (
        error_context(request, status, reason)
        if with_request
        else {
            "status": status,
            "title": PAGES[status][0],
            "reason": reason or PAGES[status][1],
            "back_url": request.get_full_path() if request.method == "GET" else "",
            "back_label": "Try again",
            **deployment(request),
        }
    )
    html = render_to_string(f"{status}.html", context, request=request if with_request else None)
    return HttpResponse(html, status=status, content_type="text/html; charset=utf-8")


def permission_denied(request, exception=None):
    """403: the page says why (the PermissionDenied message, e.g. "The ops dashboard is for
    staff only.") and offers a way back."""
    reason = str(exception) if exception is not None and str(exception) else ""
    if _wants_json(request):
        return JsonResponse({"error": "forbidden", "error_description": reason or PAGES[403][1]}, status=403)
    return page(request, 403, reason)


def page_not_found(request, exception=None):
    if _wants_json(request):
        return JsonResponse({"error": "not_found", "error_description": PAGES[404][1]}, status=404)
    return page(request, 404)


def _unavailable(request, message: str, retry_after: str, page_reason: str = "") -> HttpResponse:
    """503 with Retry-After: JSON for API paths, else the branded page."""
    if _wants_json(request):
        response = JsonResponse({"error": "temporarily_unavailable", "error_description": message}, status=503)
    else:
        response = page(request, 503, page_reason, with_request=False)
    response["Retry-After"] = retry_after
    return response


def server_error(request):
    """503 with Retry-After while the database is unreachable or for a refused change
    (`EpochUnavailable`: nothing was changed); a 500 page otherwise.

    Never a traceback: the log has it (Django logs the exception before calling this).
    """
    error = sys.exc_info()[1]
    if isinstance(error, EpochUnavailable):
        # A change to who may connect that could not reach the other servers: refused
        # (rolled back), e.g. deactivating a user or changing a role in the admin.
        return _unavailable(request, error.message, str(REFUSED_RETRY_AFTER_SECONDS), page_reason=error.message)
    if isinstance(error, (OperationalError, InterfaceError)):
        message = "The service is temporarily unavailable (database unreachable). Try again shortly."
        return _unavailable(request, message, RETRY_AFTER_SECONDS)
    message = "Something went wrong on our side. It has been logged."
    if _wants_json(request):
        return JsonResponse({"error": "server_error", "error_description": message}, status=500)
    return page(request, 500, with_request=False)
