"""Dynamic client registration (RFC 7591 / 7592), open to anyone but bounded.

DOT does the registration; before it runs we apply what DOT leaves to us: a per-IP
hourly cap, the redirect-URI policy (accounts.redirect_uris), and "authorization code
(+ refresh) only" — the only grant this server has.
"""

import json

from django.http import JsonResponse
from oauth2_provider.views import DynamicClientRegistrationManagementView, DynamicClientRegistrationView

from accounts import throttle
from accounts.cimd_fetch import MAX_CLIENT_NAME
from accounts.redirect_uris import RedirectURIError, check_redirect_uris

SUPPORTED_GRANTS = {"authorization_code", "refresh_token"}


def _error(error: str, description: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": error, "error_description": description}, status=status)


def _holds_nul(data) -> bool:
    """Whether a NUL character is in any key or string of `data` (iterative: JSON can nest
    deeper than Python's recursion limit)."""
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, str) and "\x00" in value:
            return True
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


def metadata_problem(body: bytes) -> JsonResponse | None:
    """An RFC 7591 error response if the client metadata breaks our policy, else None.
    (Malformed JSON is left to DOT, which answers it the same way.)"""
    try:
        data = json.loads(body)
    except RecursionError:  # DOT's parser would crash on it too (a 500): refuse it here
        return _error("invalid_client_metadata", "The request body is nested too deeply to be client metadata")
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    if _holds_nul(data):  # the database cannot store it (PostgreSQL: a DataError, a 500)
        return _error("invalid_client_metadata", "client metadata may not contain NUL characters")
    try:
        check_redirect_uris(data.get("redirect_uris"))
    except RedirectURIError as exc:
        return _error("invalid_redirect_uri", str(exc))
    grants = data.get("grant_types", ["authorization_code"])
    if not isinstance(grants, list) or "authorization_code" not in grants or not set(grants) <= SUPPORTED_GRANTS:
        return _error("invalid_client_metadata",
                      "grant_types must be [\"authorization_code\"] or [\"authorization_code\", \"refresh_token\"]")
    if data.get("response_types", ["code"]) != ["code"]:
        return _error("invalid_client_metadata", "response_types must be [\"code\"]")
    name = data.get("client_name", "")
    if not isinstance(name, str) or len(name) > MAX_CLIENT_NAME:
        return _error("invalid_client_metadata", f"client_name must be a string of at most {MAX_CLIENT_NAME} characters")
    return None


class RegistrationView(DynamicClientRegistrationView):
    """POST /oauth/register"""

    def post(self, request, *args, **kwargs):
        wait = throttle.registration_retry_after(request.META.get("REMOTE_ADDR", ""))
        if wait:
            response = _error("too_many_requests",
                              f"Too many client registrations from this address; retry in {wait} seconds.", 429)
            response["Retry-After"] = str(wait)
            return response
        return metadata_problem(request.body) or super().post(request, *args, **kwargs)


class RegistrationManagementView(DynamicClientRegistrationManagementView):
    """GET/PUT/DELETE /oauth/register/<client_id> (RFC 7592, with the registration token)."""

    def put(self, request, client_id, *args, **kwargs):
        return metadata_problem(request.body) or super().put(request, client_id, *args, **kwargs)
