"""Django's last-resort error pages (handler500): a database outage becomes a clear 503.

`handler500` runs inside Django's exception handling, so the exception being handled is
`sys.exc_info()`, whichever layer raised it (a view, or session saving in middleware).
"""

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse

RETRY_AFTER_SECONDS = "5"


def _wants_json(request) -> bool:
    return request.path.startswith(("/oauth/", "/ops/api/", "/.well-known/")) or "json" in request.headers.get(
        "Accept", ""
    )


def server_error(request):
    """503 with Retry-After while the database is unreachable; a plain 500 otherwise.

    Never a traceback: the log has it (Django logs the exception before calling this).
    """
    if isinstance(sys.exc_info()[1], (OperationalError, InterfaceError)):
        message = "The service is temporarily unavailable (database unreachable). Try again shortly."
        if _wants_json(request):
            response = JsonResponse({"error": "temporarily_unavailable", "error_description": message}, status=503)
        else:
            response = HttpResponse(message, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = RETRY_AFTER_SECONDS
        return response
    message = "Something went wrong on our side. It has been logged."
    if _wants_json(request):
        return JsonResponse({"error": "server_error", "error_description": message}, status=500)
    return HttpResponse(message, status=500, content_type="text/plain; charset=utf-8")
