"""Sign-in and sign-out."""

from django.contrib import messages
from django.contrib.auth import views as auth_views

from accounts.forms import LOCKED, LoginForm


class LoginView(auth_views.LoginView):
    """GET/POST /login. Locked-out attempts answer 429 with a clear message; other
    failures re-show the form (200)."""

    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.has_error("__all__", LOCKED):
            response.status_code = 429
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
