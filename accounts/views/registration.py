"""Dynamic client registration (RFC 7591 / 7592), open to anyone but bounded.

DOT does the registration; around it we apply what DOT leaves to us: the redirect-URI
policy (accounts.redirect_uris), "authorization code (+ refresh) only" (the only grant
this server has), reuse of an identical public registration, a per-IP hourly cap on new
ones, and honest answers (accounts.registrations).
"""

import json

from django.http import JsonResponse
from oauth2_provider.models import get_application_model
from oauth2_provider.views import DynamicClientRegistrationManagementView, DynamicClientRegistrationView

from accounts import registrations, throttle
from accounts.cimd_fetch import MAX_CLIENT_NAME
from accounts.redirect_uris import RedirectURIError, check_redirect_uris

SUPPORTED_GRANTS = {"authorization_code", "refresh_token"}
# As advertised in token_endpoint_auth_methods_supported (settings.OAUTH2_PROVIDER).
SUPPORTED_AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post")


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


def drop_null_members(request) -> None:
    """Remove the top-level members whose value is JSON `null` from the request's metadata,
    in place, before our policy or DOT reads it.

    RFC 7591 §2: every client metadata member is optional (and RFC 7592 §2.2 PUT takes the
    same members), and some clients write each member they do not set as `null`. A `null`
    member means "not given", whichever member it is (`client_name`, `grant_types`,
    `scope`, `logo_uri`, `jwks`, an extension...): the registration then gets that member's
    default, exactly as if it had been omitted; `redirect_uris: null` is as missing as no
    `redirect_uris` (the same error). A body that is not a JSON object is left unchanged
    (DOT refuses it). Django's `HttpRequest.body` is the cached `_body`, which DOT's view
    parses again: so the cleaned body replaces it there."""
    try:
        data = json.loads(request.body)
    except (ValueError, RecursionError):
        return
    if isinstance(data, dict) and any(value is None for value in data.values()):
        request._body = json.dumps({key: value for key, value in data.items() if value is not None}).encode()


def metadata_problem(body: bytes) -> JsonResponse | None:
    """An RFC 7591 error response if the client metadata breaks our policy, else None.
    (Malformed JSON is left to DOT, which answers it the same way.) Null members are
    already gone (`drop_null_members`)."""
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
        return _error(
            "invalid_client_metadata",
            'grant_types must be ["authorization_code"] or ["authorization_code", "refresh_token"]',
        )
    if data.get("response_types", ["code"]) != ["code"]:
        return _error("invalid_client_metadata", 'response_types must be ["code"]')
    if registrations.auth_method_of(data) not in SUPPORTED_AUTH_METHODS:
        return _error(
            "invalid_client_metadata", f"token_endpoint_auth_method must be one of {', '.join(SUPPORTED_AUTH_METHODS)}"
        )
    name = data.get("client_name", "")
    if not isinstance(name, str) or len(name) > MAX_CLIENT_NAME:
        return _error(
            "invalid_client_metadata", f"client_name must be a string of at most {MAX_CLIENT_NAME} characters"
        )
    return None


def _metadata(body: bytes) -> dict:
    """The request's metadata (called once metadata_problem found none; DOT answers the
    rest)."""
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _completed(response, data: dict | None = None):
    """DOT's answer with what it leaves out (accounts.registrations.complete_answer)."""
    if response.status_code not in (200, 201):
        return response
    answer = json.loads(response.content)
    application = get_application_model().objects.get(client_id=answer["client_id"])
    if data is not None:
        registrations.record(application, data)
    return JsonResponse(registrations.complete_answer(answer, application), status=response.status_code)


class RegistrationView(DynamicClientRegistrationView):
    """POST /oauth/register"""

    def post(self, request, *args, **kwargs):
        drop_null_members(request)
        problem = metadata_problem(request.body)
        if problem:
            return problem
        data = _metadata(request.body)
        shared = registrations.shared_registration(data) if data else None
        if shared is not None:
            return JsonResponse(registrations.shared_answer(shared), status=201)
        wait = throttle.registration_retry_after(request.META.get("REMOTE_ADDR", ""))
        if wait:
            response = _error(
                "too_many_requests", f"Too many client registrations from this address; retry in {wait} seconds.", 429
            )
            response["Retry-After"] = str(wait)
            return response
        return _completed(super().post(request, *args, **kwargs), data)


class RegistrationManagementView(DynamicClientRegistrationManagementView):
    """GET/PUT/DELETE /oauth/register/<client_id> (RFC 7592, with the registration token)."""

    def get(self, request, client_id, *args, **kwargs):
        return _completed(super().get(request, client_id, *args, **kwargs))

    def put(self, request, client_id, *args, **kwargs):
        drop_null_members(request)
        problem = metadata_problem(request.body)
        if problem:
            return problem
        return _completed(super().put(request, client_id, *args, **kwargs), _metadata(request.body))
