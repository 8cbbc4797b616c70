"""The subscriber's pages: sign-in (`/open/sign-in`), sign-out (`/open/sign-out`), and the
subscriber side of the authorization endpoint (`/oauth/authorize` for the Open server).

A subscriber signs in with the e-mail and password of their account with one publication
(a site whose account turned subscriber access on): first the publication, then the
e-mail and password, checked by Pelcro's Open API login (`sign_in.sign_in_from_page`).
The browser session then holds the subscriber (`accounts.subscriber_session`), apart
from any operator's Django sign-in. Every form works without JavaScript and is CSRF
protected (Django's middleware).

`/oauth/authorize` (`authorize`) sends a request for the Core server (`MCP_RESOURCE_URL`,
or no `resource`) to the operators' consent (`accounts.views.consent`), and every other one
to `SubscriberAuthorizationView`: the Open server's (`OPEN_RESOURCE_URL`: publication →
e-mail and password → consent), or one it refuses at once (an unknown resource).
DOT validates the request in both; the subscriber's view adds the sign-in and hands the
subscriber, the access level and the Pelcro JWT (encrypted) to the validator
(`accounts.oauth_validator`), which binds the grant to the Open server only.
"""

from __future__ import annotations

import copy
import time
from datetime import datetime

from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST
from django.views.generic import View
from django.views.generic.base import TemplateResponseMixin
from oauth2_provider.exceptions import OAuthToolkitError
from oauth2_provider.models import get_application_model
from oauth2_provider.views.mixins import OAuthLibMixin
from oauthlib.oauth2.rfc6749.errors import CustomOAuth2Error

from accounts import crypto
from accounts.models import Connection, Site, Subscriber
from accounts.resource import is_mcp_resource
from accounts.sign_in import client_ip
from accounts.subscriber_session import current_subscriber, forget_subscriber, remember_subscriber
from accounts.views.consent import (
    CREDENTIAL_KEYS,
    AuthorizationDecisionMixin,
    ConsentView,
    app_context,
    consent_form_action,
)
from mcp_bridge.open.forms import SignInForm, SiteForm, SubscriberConsentForm, subscriber_sites
from mcp_bridge.open.sign_in import SignInRefused, discard_sign_in, sign_in_from_page

# Where the sign-in page goes without a `next`: the subscriber's connected apps, once
# that page exists (`/open/connections`); else the page says "signed in".
DEFAULT_NEXT_URL_NAME = "open-connections"
UNKNOWN_SITE = "The publication this link named does not offer sign-in for apps here. Choose yours from the list."


def safe_next(request, value: str | None) -> str:
    """`value` if it is a path on this server (no other host, no scheme change), else ""."""
    if (
        value
        and value.startswith("/")
        and url_has_allowed_host_and_scheme(
            value, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
    ):
        return value
    return ""


def site_hint(value) -> tuple[Site | None, str]:
    """The enabled site a `site_id` hint names, and a message when it names none."""
    if value in (None, ""):
        return None, ""
    try:
        site_id = int(str(value).strip())
    except ValueError:
        return None, UNKNOWN_SITE
    site = subscriber_sites().filter(site_id=site_id).select_related("account").first()
    return site, ("" if site is not None else UNKNOWN_SITE)


@sensitive_post_parameters("password")
@require_http_methods(["GET", "HEAD", "POST"])
def sign_in(request):
    """GET/POST /open/sign-in (`?next=<path>&site_id=<id>`).

    Steps, each a POST with `step`: "site" (the publication, `site_id`), then "sign_in" (the
    publication again, `email`, `password`). A `site_id`
    hint skips the list; one naming no enabled site shows the list with a message. Success:
    the subscriber is remembered in this browser session and the browser goes to `next`
    (a path on this server) or to the connected-apps page. The Pelcro sign-in itself is not
    kept (it is logged out at Pelcro at once): apps get their own at authorization.
    Answers 200 with the form again on a refusal, 429 when locked out, 503 when Pelcro
    cannot be reached."""
    next_url = safe_next(request, request.POST.get("next") if request.method == "POST" else request.GET.get("next"))
    if request.method != "POST":
        site, message = site_hint(request.GET.get("site_id"))
        subscriber = current_subscriber(request)
        if subscriber is not None and (site is None or site.pk == subscriber.site_id) and not message:
            return _signed_in(request, next_url)
        if site is not None:
            return _page(request, "password", next_url, site=site, form=SignInForm())
        return _page(request, "site", next_url, site_form=SiteForm(sites=subscriber_sites()), message=message)
    step = request.POST.get("step")
    if step == "sign_in":
        site, message = site_hint(request.POST.get("site_id"))
        if site is None:
            return _page(request, "site", next_url, site_form=SiteForm(sites=subscriber_sites()), message=message)
        form = SignInForm(request.POST)
        if not form.is_valid():
            return _page(request, "password", next_url, site=site, form=form)
        try:
            signed_in = sign_in_from_page(
                site=site,
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password"],
                client_ip=client_ip(request),
                keep=False,
            )
        except SignInRefused as refused:
            form = SignInForm(initial={"email": form.cleaned_data["email"]})
            return _page(request, "password", next_url, site=site, form=form, refused=refused, status=refused.status)
        remember_subscriber(request, signed_in.subscriber)
        return _signed_in(request, next_url)
    if step == "site":
        form = SiteForm(request.POST, sites=subscriber_sites())
        if form.is_valid():
            site = subscriber_sites().get(site_id=form.cleaned_data["site_id"])
            return _page(request, "password", next_url, site=site, form=SignInForm())
        return _page(request, "site", next_url, site_form=form, status=400)
    return _page(request, "site", next_url, site_form=SiteForm(sites=subscriber_sites()))


@require_POST
def sign_out(request):
    """POST /open/sign-out: the subscriber is signed out of this browser (an operator
    signed in in the same browser stays signed in); then the sign-in page. Connection
    requests waiting in this browser lose their sign-in too (logged out at Pelcro): the
    page they were on would otherwise still connect the app as the subscriber who just
    signed out (Back, then Allow); they ask for a sign-in again."""
    forget_subscriber(request)
    store = request.session.get(PENDING_SESSION_KEY, {})
    for pending in store.values():
        discard_pending_sign_in(pending)
        pending.update(subscriber=None, jwt=None, jwt_expires_at=None)
    if store:
        request.session[PENDING_SESSION_KEY] = store
    return redirect(reverse("open-sign-in") + "?signed_out=1")


def _signed_in(request, next_url: str):
    if next_url:
        return redirect(next_url)
    try:
        return redirect(reverse(DEFAULT_NEXT_URL_NAME))
    except NoReverseMatch:
        return TemplateResponse(request, "open/signed_in.html", {"subscriber": current_subscriber(request)})


def _page(request, step: str, next_url: str, *, status: int = 200, **context):
    subscriber_sites_list = list(subscriber_sites())
    return TemplateResponse(
        request,
        "open/sign_in.html",
        {
            "step": step,
            "next": next_url,
            "sites": subscriber_sites_list,
            "signed_out": request.method == "GET" and request.GET.get("signed_out") == "1",
            "subscriber": current_subscriber(request),
            **context,
        },
        status=status,
    )


# --- /oauth/authorize for the Open server ----------------------------------------------------

PENDING_SESSION_KEY = "open_oauth_pending"  # apart from the operators' pending requests
EXPIRED_REQUEST = (
    "This connection request is no longer waiting for an answer (it expired, was already answered, or was "
    "opened in another browser). Start connecting again from your app."
)


def discard_pending_sign_in(pending: dict) -> None:
    """Log the Pelcro JWT a pending connection request holds (if any) out at Pelcro, best
    effort (`sign_in.discard_sign_in`); one the configured keys can no longer decrypt is
    left to expire there."""
    site = Site.objects.filter(site_id=pending.get("site_id")).first() if pending.get("jwt") else None
    if site is None:
        return
    try:
        jwt = crypto.decrypt(pending["jwt"])
    except ValueError:
        return
    discard_sign_in(site, jwt)


def authorize(request, *args, **kwargs):
    """`/oauth/authorize`: a request for the Core server (its resource, or none) goes to the
    operators' consent screen (which asks staff to sign in first); every other one to the
    subscriber's sign-in and consent, which serves the Open server's resource and answers
    any resource this server does not serve with `invalid_target` at once (RFC 8707 §2)
    instead of asking anyone to sign in for a request that cannot succeed."""
    if all(is_mcp_resource(uri) for uri in request.GET.getlist("resource")):
        return _operator_consent(request, *args, **kwargs)
    return _subscriber_authorization(request, *args, **kwargs)


@method_decorator(sensitive_post_parameters("password"), name="dispatch")
class SubscriberAuthorizationView(AuthorizationDecisionMixin, OAuthLibMixin, TemplateResponseMixin, View):
    """The Open server's authorization page, three steps at one URL (the authorize URL,
    whose query the POSTs keep but never read: every OAuth value comes from the session):

    1. "site": the publication, among `subscriber_sites()`; a `site_id` query hint skips it
       (a hint naming no such site shows the list with a message);
    2. "sign_in": e-mail and password, checked by the Open API login (refusals shown:
       wrong password, lock-out with its wait, Pelcro busy or unreachable). Success
       remembers the subscriber in the browser session (`accounts.subscriber_session`)
       and keeps the customer's JWT encrypted in the pending request;
    3. "consent": the app (name, self-registered warning, where it sends the answer), the
       publication and the subscriber, the access level ("read only", or "manage
       subscriptions and payments" if the app asked for `write`), and that the app will
       ask before money-moving or irreversible actions (the connection's
       `confirm_writes` stays on: a subscriber cannot turn it off). Allow or Cancel.

    Every step has Cancel (`access_denied` to the app) and "choose another publication".
    Each sign-in gets a JWT of its own (a connection's refresh would otherwise end
    another's), so an earlier subscriber session only fills in the e-mail address; an
    operator's sign-in plays no part. The form posts carry `pending` (the request's id in
    the session, PENDING_SECONDS, one decision: a double click or resubmission of Allow or
    Cancel gets the first one's answer, `decide_once`) and `action`.
    """

    template_name = "open/authorize.html"
    pending_session_key = PENDING_SESSION_KEY
    http_method_names = ["get", "head", "post"]

    def get(self, request, *args, **kwargs):
        try:
            scopes, credentials = self.validate_authorization_request(request)
        except OAuthToolkitError as error:
            return self.error_response(error, application=None)
        application = get_application_model().objects.get(client_id=credentials["client_id"])
        if "none" in request.GET.get("prompt", "").split():  # the subscriber signs in every time
            error = CustomOAuth2Error(
                error="login_required",
                description="The subscriber must sign in with their publication.",
                state=credentials.get("state"),
            )
            return self.error_response(
                OAuthToolkitError(error=error, redirect_uri=credentials["redirect_uri"]), application
            )
        site, message = site_hint(request.GET.get("site_id"))
        pending = {key: credentials.get(key) or "" for key in CREDENTIAL_KEYS}
        pending.update(
            scope=" ".join(scopes),
            resource=" ".join(request.GET.getlist("resource")),
            created=time.time(),
            site_id=site.site_id if site is not None else None,
        )
        self.pending_id = self._remember(pending)
        self.pending = pending
        return self._step(application, message=message)

    def post(self, request, *args, **kwargs):
        self.pending_id = request.POST.get("pending", "")
        self.pending = self._recall(self.pending_id)
        if self.pending is None:
            return self.earlier_decision(self.pending_id) or self._error_page(EXPIRED_REQUEST)
        application = get_application_model().objects.filter(client_id=self.pending["client_id"]).first()
        if application is None:
            return self._error_page("Unknown app.")
        action = request.POST.get("action")
        if action == "cancel":
            return self.decide_once(self.pending_id, lambda: self._decide(application, allow=False))
        if action == "change_site":
            self._drop_sign_in(site=True)
            return self._step(application)
        if action == "site":
            form = SiteForm(request.POST, sites=subscriber_sites())
            if not form.is_valid():
                return self._step(application, site_form=form, status=400)
            self._drop_sign_in(site=True)
            self._update(site_id=form.cleaned_data["site_id"])
            return self._step(application)
        if action == "sign_in":
            return self._sign_in(application)
        if action == "consent" and self.pending.get("subscriber"):
            form = SubscriberConsentForm(request.POST, write_requested=self._write_requested())
            if not form.is_valid():
                return self._step(application, consent_form=form, status=400)
            allow, access = form.cleaned_data["allow"], form.cleaned_data["access"]
            return self.decide_once(self.pending_id, lambda: self._decide(application, allow=allow, access=access))
        return self._step(application, status=400)

    # --- steps ---------------------------------------------------------------------------

    def _sign_in(self, application):
        site = self._site()
        if site is None:
            return self._step(application, message=UNKNOWN_SITE)
        form = SignInForm(self.request.POST)
        if not form.is_valid():
            return self._step(application, sign_in_form=form, status=200)
        try:
            signed_in = sign_in_from_page(
                site=site,
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password"],
                client_ip=client_ip(self.request),
                keep=True,
            )
        except SignInRefused as refused:
            form = SignInForm(initial={"email": form.cleaned_data["email"]})
            return self._step(application, sign_in_form=form, refused=refused, status=refused.status)
        self._drop_sign_in(site=False)  # a second sign-in in one request replaces the first
        self._update(
            subscriber=signed_in.subscriber.pk,
            jwt=crypto.encrypt(signed_in.customer.jwt),
            jwt_expires_at=signed_in.customer.expires_at.isoformat(),
        )
        remember_subscriber(self.request, signed_in.subscriber)
        return self._step(application)

    def _decide(self, application, *, allow: bool, access: str | None = None):
        pending = self.pending
        self._forget(self.pending_id)
        self.person_decided = True
        credentials = {key: pending[key] for key in CREDENTIAL_KEYS if pending.get(key)}
        credentials["resource"] = pending["resource"].split()
        request = self.request
        subscriber = self._subscriber() if allow else None
        if subscriber is not None:
            credentials.update(
                pelcro_subscriber_id=subscriber.pk,
                pelcro_access=access,
                pelcro_subscriber_jwt=(pending["jwt"], datetime.fromisoformat(pending["jwt_expires_at"])),
            )
            # DOT takes the resource owner from request.user; the subscriber is that, for
            # this call only: the browser's Django sign-in is not touched.
            request = copy.copy(self.request)
            request.user = subscriber.user
        else:
            self._discard(pending)
        try:
            uri, _headers, _body, _status = self.create_authorization_response(
                request=request, scopes=pending["scope"], credentials=credentials, allow=subscriber is not None
            )
        except OAuthToolkitError as error:
            if subscriber is not None:
                self._discard(pending)
            return self.error_response(error, application)
        return self.redirect(uri, application)

    # --- the pending request -------------------------------------------------------------

    def _update(self, **values) -> None:
        self.pending.update(values)
        store = self.request.session.get(self.pending_session_key, {})
        store[self.pending_id] = self.pending
        self.request.session[self.pending_session_key] = store

    def _drop_sign_in(self, *, site: bool) -> None:
        """Forget the pending request's sign-in (its JWT logged out at Pelcro) and, with
        `site`, its publication."""
        self._discard(self.pending)
        self._update(subscriber=None, jwt=None, jwt_expires_at=None, **({"site_id": None} if site else {}))

    def _discard(self, pending: dict) -> None:
        discard_pending_sign_in(pending)

    def _site(self) -> Site | None:
        site_id = self.pending.get("site_id")
        return subscriber_sites().filter(site_id=site_id).first() if site_id is not None else None

    def _subscriber(self) -> Subscriber | None:
        if not self.pending.get("subscriber") or not self.pending.get("jwt"):
            return None
        return (
            Subscriber.objects.select_related("site", "user")
            .filter(pk=self.pending["subscriber"], site__site_id=self.pending.get("site_id"))
            .first()
        )

    def _write_requested(self) -> bool:
        return "write" in self.pending.get("scope", "").split()

    # --- rendering -----------------------------------------------------------------------

    def _step(self, application, *, status: int = 200, message: str = "", **forms):
        site = self._site()
        subscriber = self._subscriber() if site is not None else None
        step = "consent" if subscriber is not None else "sign_in" if site is not None else "site"
        write_requested = self._write_requested()
        context = {
            **app_context(application, self.pending["redirect_uri"]),
            "step": step,
            "pending": self.pending_id,
            "message": message,
            "site": site,
            "signed_in_as": subscriber,
            "sites": list(subscriber_sites()),
            "write_requested": write_requested,
            "subscriber": current_subscriber(self.request),
            "full_path": self.request.get_full_path(),
            "refused": forms.get("refused"),
            "site_form": forms.get("site_form") or SiteForm(sites=[], initial=self._site_initial()),
            "sign_in_form": forms.get("sign_in_form") or SignInForm(initial=self._email_initial(site)),
            "consent_form": forms.get("consent_form")
            or SubscriberConsentForm(
                write_requested=write_requested,
                initial={"access": Connection.Access.READ_WRITE if write_requested else Connection.Access.READ},
            ),
        }
        response = self.render_to_response(context, status=status)
        response._csp_replace = {"form-action": consent_form_action(self.pending["redirect_uri"])}
        return response

    def _site_initial(self) -> dict:
        current = current_subscriber(self.request)
        return {"site_id": current.site.site_id} if current is not None else {}

    def _email_initial(self, site: Site | None) -> dict:
        current = current_subscriber(self.request)
        return (
            {"email": current.email} if current is not None and site is not None and current.site_id == site.pk else {}
        )

    def _error_page(self, description: str):
        return self.render_to_response({"error": {"error": "invalid_request", "description": description}}, status=400)


_subscriber_authorization = SubscriberAuthorizationView.as_view()
_operator_consent = ConsentView.as_view()
