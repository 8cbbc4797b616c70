"""Response headers every page carries on top of Django's own and django-csp's
(Content-Security-Policy: settings.CONTENT_SECURITY_POLICY), and the refusal of NUL
characters in request parameters."""

from django.http import HttpResponseBadRequest, JsonResponse

# Pages with personal data or sign-in forms, which no browser or proxy may keep (Back after
# signing out on a shared computer would show them): the operators' (sign-in, consent,
# connections, ops, admin) and the subscribers' (`/open/…` sign-in and connected apps), and
# a confirmation page (a call's exact arguments).
NOT_CACHED = ("/login", "/oauth/", "/connections", "/ops/", "/admin/", "/open/", "/confirm/")


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if request.path.startswith(NOT_CACHED):
            response.headers.setdefault("Cache-Control", "no-store")
        return response


# Only url-encoded forms are read here: reading a multipart body would consume the stream
# that views reading `request.body` (the OAuth server) still need.
FORM_TYPE = "application/x-www-form-urlencoded"


class RefuseNulMiddleware:
    """400 for a NUL character in the path, the query or a form field.

    No parameter of this app may hold one, and PostgreSQL cannot even look such a value up
    (a DataError, i.e. a 500, from e.g. the OAuth server's client_id or code lookups).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        form = request.content_type == FORM_TYPE and request.method == "POST"
        sources = [request.GET, request.POST] if form else [request.GET]
        if "\x00" in request.path or any(
            "\x00" in key or any("\x00" in value for value in values)
            for params in sources
            for key, values in params.lists()
        ):
            message = "Request parameters may not contain NUL characters."
            if request.path.startswith("/oauth/"):
                return JsonResponse({"error": "invalid_request", "error_description": message}, status=400)
            return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")
        return self.get_response(request)
