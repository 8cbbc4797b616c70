"""The authorization endpoint's consent screen: which app, which account, what access.

A thin layer over DOT's AuthorizationView: DOT (and oauthlib) validate the request;
this view adds the account picker and the access level, passes both to the validator
through the authorization credentials, and never skips the screen (the account must be
chosen every time).
"""

from urllib.parse import urlsplit

from oauth2_provider.exceptions import OAuthToolkitError
from oauth2_provider.models import get_application_model
from oauth2_provider.oauth2_backends import _add_iss_to_redirect
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.views import AuthorizationView
from oauthlib.oauth2.rfc6749.errors import CustomOAuth2Error

from accounts import access as access_policy
from accounts.forms import ConsentForm
from accounts.models import Membership
from accounts.redirect_uris import describe_redirect

# The global policy (pelcro_gateway.middleware) with form-action narrowed to this page
# and the one place the form may send the browser: the client's redirect URI. Browsers
# apply form-action to the redirect that follows a form POST.
CONSENT_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
    "frame-ancestors 'none'; form-action 'self' {target}; base-uri 'none'; object-src 'none'"
)
SELF_REGISTERED = {"dcr", "cimd"}


def _form_action_target(redirect_uri: str) -> str:
    parts = urlsplit(redirect_uri or "")
    if parts.scheme in ("http", "https"):
        if parts.hostname and ":" in parts.hostname:  # IPv6 literal: no CSP host-source form
            return f"{parts.scheme}:"
        return f"{parts.scheme}://{parts.netloc}"
    return f"{parts.scheme}:" if parts.scheme else ""


class ConsentView(AuthorizationView):
    template_name = "accounts/consent.html"
    form_class = ConsentForm

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["user"] = self.request.user
        return kwargs

    def get(self, request, *args, **kwargs):
        try:
            scopes, credentials = self.validate_authorization_request(request)
        except OAuthToolkitError as error:
            return self.error_response(error, application=None)
        application = get_application_model().objects.get(client_id=credentials["client_id"])
        prompt = set(request.GET.get("prompt", "").split())
        if "none" in prompt:  # this server always asks: the account must be chosen
            error = CustomOAuth2Error(error="consent_required", description="The account must be chosen.",
                                      state=credentials.get("state"))
            return self.error_response(OAuthToolkitError(error=error, redirect_uri=credentials["redirect_uri"]),
                                       application)
        if "login" in prompt:
            return self.handle_prompt_login()
        self.oauth2_data = {
            "scopes": scopes,
            "client_id": credentials["client_id"],
            "redirect_uri": credentials["redirect_uri"],
            "response_type": credentials["response_type"],
            "state": credentials.get("state"),
            "code_challenge": credentials.get("code_challenge"),
            "code_challenge_method": credentials.get("code_challenge_method"),
            "resource": " ".join(request.GET.getlist("resource")) or None,
        }
        return self._render(self.get_form(), application)

    def get_initial(self):
        initial = super().get_initial()
        memberships = self._memberships()
        if len(memberships) == 1:
            initial["account"] = memberships[0].account_id
        write = "write" in (initial.get("scope") or "").split()
        allowed = set().union(*(access_policy.allowed_access(m.role) for m in memberships)) if memberships else set()
        initial["access"] = access_policy.READ_WRITE if write and access_policy.READ_WRITE in allowed \
            else access_policy.READ
        return initial

    def post(self, request, *args, **kwargs):
        form = self.get_form()
        application = get_application_model().objects.filter(client_id=form.data.get("client_id", "")).first()
        if application is None:
            return self.render_to_response(
                {"error": {"error": "invalid_request", "description": "Unknown app."}}, status=400
            )
        if not form.is_valid():
            return self._render(form, application, status=400)
        return self.form_valid(form, application)

    def form_valid(self, form, application):
        data = form.cleaned_data
        # The hidden redirect_uri comes back from the browser: never redirect (even with a
        # denial) anywhere the app did not register. DOT trusts the posted value on deny.
        if not application.redirect_uri_allowed(data.get("redirect_uri") or ""):
            return self.render_to_response(
                {"error": {"error": "invalid_request", "description": "That redirect URI is not registered for this app."}},
                status=400,
            )
        credentials = {
            key: data.get(key)
            for key in ("client_id", "redirect_uri", "response_type", "state", "code_challenge",
                        "code_challenge_method")
            if data.get(key)
        }
        if data.get("resource"):
            credentials["resource"] = data["resource"].split()
        if data.get("allow"):
            credentials["pelcro_account_id"] = data["account"].pk
            credentials["pelcro_access"] = data["access"]
        try:
            uri, _headers, _body, _status = self.create_authorization_response(
                request=self.request, scopes=data.get("scope"), credentials=credentials, allow=bool(data.get("allow"))
            )
        except OAuthToolkitError as error:
            return self.error_response(error, application)
        return self.redirect(uri, application)

    def redirect(self, redirect_to, application):
        # RFC 9207: `iss` on every authorization response, errors included (DOT adds it
        # to successful ones only).
        issuer = oauth2_settings.oauth2_authorization_server_issuer(self.request)
        return super().redirect(_add_iss_to_redirect(redirect_to, issuer), application)

    # --- rendering ---------------------------------------------------------------------

    def _memberships(self) -> list[Membership]:
        if not hasattr(self, "_membership_cache"):
            self._membership_cache = list(
                Membership.objects.filter(user=self.request.user).select_related("account")
                .prefetch_related("account__sites").order_by("account__name")
            )
        return self._membership_cache

    def _render(self, form, application, status=None):
        memberships = self._memberships()
        redirect_uri = form["redirect_uri"].value() or ""
        write_requested = form.write_requested()
        choices = [
            {
                "membership": m,
                "account": m.account,
                "can_write": access_policy.READ_WRITE in access_policy.allowed_access(m.role),
                "sites": [site.name for site in m.account.sites.all()],
            }
            for m in memberships
        ]
        context = {
            "form": form,
            "application": application,
            "client_name": application.name or urlsplit(application.client_id).hostname or "An unnamed app",
            "self_registered": application.registration_source in SELF_REGISTERED,
            "metadata_host": urlsplit(application.client_id).hostname
            if application.registration_source == "cimd" else None,
            "redirect_description": describe_redirect(redirect_uri),
            "redirect_uri": redirect_uri,
            "choices": choices,
            "write_requested": write_requested,
            "any_can_write": write_requested and any(c["can_write"] for c in choices),
            "user_display": self.request.user.email or self.request.user.get_username(),
            "full_path": self.request.get_full_path(),
        }
        if status is None:
            status = 200 if memberships else 403
        response = self.render_to_response(context, status=status)
        response["Content-Security-Policy"] = CONSENT_CSP.format(target=_form_action_target(redirect_uri))
        return response

