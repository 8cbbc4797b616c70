"""Sign-in and sign-out, and the admin's two password forms routed through the same
sign-in path (`accounts.sign_in`): /admin/login/ and /admin/password_change/."""

from urllib.parse import parse_qsl, urlencode, urlsplit

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import views as auth_views
from django.urls import reverse

from accounts.forms import LOCKED, CurrentPasswordChangeForm, LoginForm

LOCKED_STATUS = 429


def _locked(form) -> bool:
    """Whether a bound form was refused for the lock-out (sign-in or current password)."""
    if form is None or not form.is_bound:
        return False
    return form.has_error("__all__", LOCKED) or form.has_error("old_password", LOCKED)


def subscriber_authorize_url(next_url: str) -> str:
    """For a `next` that is an authorization request naming no `resource` (an app that does
    not send RFC 8707's parameter, taken for a Core client): the same request for the Open
    server (`resource=OPEN_RESOURCE_URL` added), which a subscriber follows to sign in with
    their publication instead; "" for any other `next`. The token is then bound to the
    Open server, and the app's exchange and refresh without a resource get it as is."""
    parts = urlsplit(next_url or "")
    if parts.scheme or parts.netloc or parts.path != reverse("oauth2_provider:authorize"):
        return ""
    query = parse_qsl(parts.query, keep_blank_values=True)
    if not query or any(name == "resource" for name, _value in query):
        return ""
    return f"{parts.path}?{urlencode([*query, ('resource', settings.OPEN_RESOURCE_URL)])}"


class LoginView(auth_views.LoginView):
    """GET/POST /login. Locked-out attempts answer 429 with a clear message; other
    failures re-show the form (200). Reached from an authorization request that names no
    resource, it also offers subscribers the Open server's sign-in
    (`subscriber_authorize_url`)."""

    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["subscriber_url"] = subscriber_authorize_url(self.get_redirect_url())
        return context

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if _locked(form):
            response.status_code = LOCKED_STATUS
        return response


class LogoutView(auth_views.LogoutView):
    """POST /logout (Django refuses GET, so a link or image cannot sign anyone out); the
    sign-in page it leads to says "You are signed out." """

    def post(self, request, *args, **kwargs):
        was_signed_in = request.user.is_authenticated
        response = super().post(request, *args, **kwargs)
        if was_signed_in:
            messages.success(request, "You are signed out.")
        return response


def admin_login(request, extra_context=None):
    """GET/POST /admin/login/: Django's admin page with `AdminLoginForm` (set as the admin
    site's login form in accounts/admin.py), answered 429 when locked out, as /login is."""
    response = admin.site.login(request, extra_context)
    if _locked((getattr(response, "context_data", None) or {}).get("form")):
        response.status_code = LOCKED_STATUS
    return response


class AdminPasswordChangeView(auth_views.PasswordChangeView):
    """/admin/password_change/: Django's admin page, the current password checked through
    the sign-in path (Django's own view compares it directly, uncounted)."""

    form_class = CurrentPasswordChangeForm
    template_name = "registration/password_change_form.html"  # the admin's template

    def dispatch(self, request, *args, **kwargs):
        request.current_app = admin.site.name
        return super().dispatch(request, *args, **kwargs)

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "request": self.request}

    def get_success_url(self):
        return reverse("admin:password_change_done", current_app=admin.site.name)

    def get_context_data(self, **kwargs):
        return {**admin.site.each_context(self.request), **super().get_context_data(**kwargs)}

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if _locked(form):
            response.status_code = LOCKED_STATUS
        return response


admin_password_change = admin.site.admin_view(AdminPasswordChangeView.as_view())
