"""The authorization endpoint's consent screen: which app, which account, what access.

A thin layer over DOT's AuthorizationView: DOT (and oauthlib) validate the request;
this view adds the account picker and the access level, passes both to the validator
through the authorization credentials, and never skips the screen (the account must be
chosen every time).

- **The request stays on the server.** The validated request (client, redirect URI,
  PKCE challenge, scope, resource, state) is kept in the session under a random id; the
  form carries only that id, and the POST takes every OAuth value from the session, so
  editing the page (a hidden field) cannot change what is authorized. An id is good for
  one decision within PENDING_SECONDS.
- **Error redirects (RFC 9700 §4.11.2).** An error found before the person has seen the
  consent screen (a bad request, `prompt=none`, a signed-out visitor with `prompt=none`)
  is sent back to the app only when the redirect URI is trusted: a client registered by
  an administrator, or a redirect URI on the person's own device (loopback http, a native
  app's scheme). A self-registered client's https redirect URI would otherwise make this
  server an open redirector to any site that registered itself, so those errors are shown
  here as an error page. Once the person has seen the screen (Cancel, or a refusal after
  the form was sent), the answer goes to the app: the screen showed where it goes.
- **One decision, one answer.** A decision (Allow or Cancel) on a pending request is made
  once (`decide_once`): a double click (the same form posted twice at once, which the
  session alone cannot see: both requests read it before either saves) or a resubmission
  within DECISION_SECONDS gets the same redirect again, never a second authorization code.

Both rules live in `AuthorizationDecisionMixin`, which the subscribers' consent screen
(`mcp_bridge.open.views`, the Open server's sign-in) shares with this one, each with its
own session store of pending requests.
"""

import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import redis
from csp.constants import SELF
from django.conf import settings
from django.http import HttpResponse
from oauth2_provider.exceptions import OAuthToolkitError
from oauth2_provider.http import OAuth2ResponseRedirect
from oauth2_provider.models import get_application_model
from oauth2_provider.oauth2_backends import _add_iss_to_redirect
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.views import AuthorizationView
from oauth2_provider.views.mixins import OAuthLibMixin
from oauthlib.oauth2.rfc6749.errors import CustomOAuth2Error

from accounts import access as access_policy
from accounts import crypto
from accounts.forms import ConsentForm
from accounts.models import Membership
from accounts.redirect_uris import LOOPBACK_HOSTS, describe_redirect
from accounts.redis_client import redis_client

log = logging.getLogger(__name__)

SELF_REGISTERED = {"dcr", "cimd"}
SESSION_KEY = "oauth_pending"
PENDING_SECONDS = 15 * 60
MAX_PENDING = 10  # per session: several tabs may be connecting at once
# How long a decision's answer is kept for a repeat of the same form: long enough for a
# double click's second post, short enough that a later Back-and-submit finds the request
# gone (a client given its spent code again might exchange it, and a replayed code revokes
# the tokens issued from it). How long a repeat waits for the answer of the decision in
# progress, and how long that claim lives (longer than any decision takes).
DECISION_SECONDS = 10
DECISION_WAIT_SECONDS = 15
DECISION_CLAIM_SECONDS = 60
_DECIDING = b"deciding"
CREDENTIAL_KEYS = ("client_id", "redirect_uri", "response_type", "state", "code_challenge", "code_challenge_method")


def consent_form_action(redirect_uri: str) -> list[str]:
    """The consent page's CSP `form-action` sources (CSP Level 3 §6.3.1): this server, the
    origin of the client's redirect URI, and the native app schemes this server accepts
    (OAUTH_NATIVE_REDIRECT_SCHEMES), e.g. `["'self'", "http://127.0.0.1:47123", "cursor:", …]`.

    It replaces the global policy's form-action (settings.CONTENT_SECURITY_POLICY) for this
    response only, through django-csp's per-response replacement (the attribute its
    `csp_replace` decorator sets; the decorator takes a fixed policy, this one depends on the
    request). Chromium applies form-action to every hop of the navigation that follows the
    form POST, so a callback that forwards the browser to its desktop app (claude.ai's https
    callback → claude://…) needs that scheme listed too, or the tab stays on this page
    (issue 13, item 4).
    """
    target = _form_action_target(redirect_uri)
    native = [f"{scheme}:" for scheme in settings.OAUTH_NATIVE_REDIRECT_SCHEMES]
    return [SELF, *([target] if target else []), *native]


def _form_action_target(redirect_uri: str) -> str:
    parts = urlsplit(redirect_uri or "")
    if parts.scheme in ("http", "https"):
        if parts.hostname and ":" in parts.hostname:  # IPv6 literal: no CSP host-source form
            return f"{parts.scheme}:"
        return f"{parts.scheme}://{parts.netloc}"
    return f"{parts.scheme}:" if parts.scheme else ""


def app_context(application, redirect_uri: str) -> dict:
    """What a consent screen says about the app: its (self-chosen) name, whether it
    registered itself (and who published its metadata document), and where the answer
    goes, in words."""
    return {
        "application": application,
        "client_name": application.name or urlsplit(application.client_id).hostname or "An unnamed app",
        "self_registered": application.registration_source in SELF_REGISTERED,
        "metadata_host": urlsplit(application.client_id).hostname
        if application.registration_source == "cimd"
        else None,
        "redirect_description": describe_redirect(redirect_uri),
        "redirect_uri": redirect_uri,
    }


def trusted_redirect(application, redirect_uri: str) -> bool:
    """Whether an error may be redirected to `redirect_uri` before the person decided
    (see the module docstring)."""
    if application is not None and application.registration_source not in SELF_REGISTERED:
        return True
    parts = urlsplit(redirect_uri or "")
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return True
    return parts.scheme not in ("http", "https", "")


class AuthorizationDecisionMixin:
    """The authorization response rules both consent screens share (module docstring):
    error redirects only to trusted URIs before the person decided, `iss` on every
    redirect (RFC 9207), and the validated request kept in the session under
    `pending_session_key` (at most MAX_PENDING, each for PENDING_SECONDS, one decision
    each). For a view that is also an `OAuthLibMixin` and a `TemplateResponseMixin`."""

    pending_session_key = SESSION_KEY
    person_decided = False

    def error_response(self, error, application, **kwargs):
        """DOT's answer to an OAuth error: a redirect to the app (subject to `redirect`'s
        rule) or the error page."""
        redirect, error_response = OAuthLibMixin.error_response(self, error, **kwargs)
        if redirect:
            return self.redirect(error_response["url"], application)
        return self.render_to_response(error_response, status=error_response["error"].status_code)

    def redirect(self, redirect_to, application):
        query = parse_qs(urlsplit(redirect_to).query)
        if "error" in query and not self.person_decided and not trusted_redirect(application, redirect_to):
            # RFC 9700 §4.11.2: no automatic redirect to an untrusted URI.
            return self.render_to_response(
                {
                    "error": {
                        "error": query["error"][0],
                        "description": query.get("error_description", [""])[0],
                    }
                },
                status=400,
            )
        # RFC 9207: `iss` on every authorization response, errors included (DOT adds it
        # to successful ones only).
        issuer = oauth2_settings.oauth2_authorization_server_issuer(self.request)
        allowed_schemes = (
            application.get_allowed_schemes()
            if application is not None
            else oauth2_settings.ALLOWED_REDIRECT_URI_SCHEMES
        )
        return OAuth2ResponseRedirect(_add_iss_to_redirect(redirect_to, issuer), allowed_schemes)

    # --- the pending request (server side) -------------------------------------------------

    def _remember(self, pending: dict) -> str:
        store = {
            k: v
            for k, v in self.request.session.get(self.pending_session_key, {}).items()
            if time.time() - v.get("created", 0) < PENDING_SECONDS
        }
        pending_id = secrets.token_urlsafe(16)
        store[pending_id] = pending
        newest = sorted(store.items(), key=lambda item: item[1]["created"])[-MAX_PENDING:]
        self.request.session[self.pending_session_key] = dict(newest)
        return pending_id

    def _recall(self, pending_id: str) -> dict | None:
        pending = self.request.session.get(self.pending_session_key, {}).get(pending_id)
        if pending is None or time.time() - pending.get("created", 0) >= PENDING_SECONDS:
            return None
        return pending

    def _forget(self, pending_id: str) -> None:
        store = self.request.session.get(self.pending_session_key, {})
        store.pop(pending_id, None)
        self.request.session[self.pending_session_key] = store

    # --- one decision per pending request ------------------------------------------------------

    def decide_once(self, pending_id: str, decide: Callable[[], HttpResponse]) -> HttpResponse:
        """`decide()` (the person's Allow or Cancel on pending request `pending_id`) unless
        this request is a repeat of a decision made or being made (`earlier_decision`).

        The claim is one Redis `SET NX` per browser session and pending id; the decision's
        redirect is kept (encrypted: it carries the authorization code) for DECISION_SECONDS.
        Redis unreachable: the decision is made without the claim (a double click could
        then make two), as sign-in works without Redis too."""
        key = self._decision_key(pending_id)
        try:
            claimed = redis_client().set(key, _DECIDING, nx=True, ex=DECISION_CLAIM_SECONDS)
        except redis.RedisError as exc:
            log.warning("consent decision claim unavailable (%s); deciding without it", type(exc).__name__)
            return decide()
        if not claimed:
            return self._decision_of(key) or self._decision_pending()
        response = decide()
        location = response.get("Location") if 300 <= response.status_code < 400 else None
        try:
            if location:
                redis_client().set(key, crypto.encrypt(location), ex=DECISION_SECONDS)
            else:  # an error page: a repeat finds the request gone, as it is
                redis_client().delete(key)
        except redis.RedisError as exc:
            log.warning("consent decision not kept for repeats (%s)", type(exc).__name__)
        return response

    def earlier_decision(self, pending_id: str) -> HttpResponse | None:
        """The redirect already answered to pending request `pending_id` in this browser
        session (a resubmission after the decision), or None."""
        if not pending_id or not self.request.session.session_key:
            return None
        return self._decision_of(self._decision_key(pending_id))

    def _decision_key(self, pending_id: str) -> str:
        # The session key binds it to this browser: another one knowing the pending id
        # (never shown outside the page) finds nothing.
        digest = hashlib.sha256(f"{self.request.session.session_key}:{pending_id}".encode()).hexdigest()
        return f"{settings.REDIS_KEY_PREFIX}oauth-decision:{digest}"

    def _decision_of(self, key: str) -> HttpResponse | None:
        """The kept redirect under `key`, waiting up to DECISION_WAIT_SECONDS for a decision
        in progress; None if there is none."""
        deadline = time.monotonic() + DECISION_WAIT_SECONDS
        while True:
            try:
                value = redis_client().get(key)
            except redis.RedisError:
                return None
            if value != _DECIDING:
                break
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)
        if value is None:
            return None
        location = crypto.decrypt(value.decode())
        return OAuth2ResponseRedirect(location, [urlsplit(location).scheme])

    def _decision_pending(self) -> HttpResponse:
        return self.render_to_response(
            {
                "error": {
                    "error": "temporarily_unavailable",
                    "description": "Your answer to this connection request is still being recorded. Go back to "
                    "your app; if it did not connect, start connecting again from there.",
                }
            },
            status=409,
        )


class ConsentView(AuthorizationDecisionMixin, AuthorizationView):
    template_name = "accounts/consent.html"
    form_class = ConsentForm

    def dispatch(self, request, *args, **kwargs):
        self.person_decided = False
        self.pending = None
        return super().dispatch(request, *args, **kwargs)

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["user"] = self.request.user
        kwargs["scope"] = (self.pending or {}).get("scope", "")
        return kwargs

    def get(self, request, *args, **kwargs):
        try:
            scopes, credentials = self.validate_authorization_request(request)
        except OAuthToolkitError as error:
            return self.error_response(error, application=None)
        application = get_application_model().objects.get(client_id=credentials["client_id"])
        prompt = set(request.GET.get("prompt", "").split())
        if "none" in prompt:  # this server always asks: the account must be chosen
            error = CustomOAuth2Error(
                error="consent_required", description="The account must be chosen.", state=credentials.get("state")
            )
            return self.error_response(
                OAuthToolkitError(error=error, redirect_uri=credentials["redirect_uri"]), application
            )
        if "login" in prompt:
            return self.handle_prompt_login()
        self.pending = {key: credentials.get(key) or "" for key in CREDENTIAL_KEYS}
        self.pending["scope"] = " ".join(scopes)
        # RFC 8707: repeatable; as the query carried it (canonicalised by the validator).
        self.pending["resource"] = " ".join(request.GET.getlist("resource"))
        self.pending["created"] = time.time()
        pending_id = self._remember(self.pending)
        self.oauth2_data = {"scopes": scopes, **{k: self.pending[k] for k in CREDENTIAL_KEYS}}
        form = self.get_form()
        form.initial["pending"] = pending_id
        return self._render(form, application)

    def get_initial(self):
        initial = super().get_initial()
        memberships = self._memberships()
        if len(memberships) == 1:
            initial["account"] = memberships[0].account_id
        write = "write" in (initial.get("scope") or "").split()
        allowed = set().union(*(access_policy.allowed_access(m.role) for m in memberships)) if memberships else set()
        initial["access"] = (
            access_policy.READ_WRITE if write and access_policy.READ_WRITE in allowed else access_policy.READ
        )
        return initial

    def post(self, request, *args, **kwargs):
        pending_id = request.POST.get("pending", "")
        self.pending = self._recall(pending_id)
        if self.pending is None:
            earlier = self.earlier_decision(pending_id)
            if earlier is not None:
                return earlier
            return self.render_to_response(
                {
                    "error": {
                        "error": "invalid_request",
                        "description": "This connection request is no longer waiting for an answer (it expired, was "
                        "already answered, or was opened in another browser). Start connecting again "
                        "from your app.",
                    }
                },
                status=400,
            )
        application = get_application_model().objects.filter(client_id=self.pending["client_id"]).first()
        if application is None:
            return self.render_to_response(
                {"error": {"error": "invalid_request", "description": "Unknown app."}}, status=400
            )
        form = self.get_form()
        if not form.is_valid():
            return self._render(form, application, status=400)
        return self.decide_once(pending_id, lambda: self.form_valid(form, application))

    def form_valid(self, form, application):
        data = form.cleaned_data
        pending = self.pending
        self._forget(data["pending"])
        self.person_decided = True
        credentials = {key: pending[key] for key in CREDENTIAL_KEYS if pending.get(key)}
        if pending.get("resource"):
            credentials["resource"] = pending["resource"].split()
        if data.get("allow"):
            credentials["pelcro_account_id"] = data["account"].pk
            credentials["pelcro_access"] = data["access"]
            credentials["pelcro_confirm_writes"] = data["confirm_writes"]
        try:
            uri, _headers, _body, _status = self.create_authorization_response(
                request=self.request, scopes=pending["scope"], credentials=credentials, allow=bool(data.get("allow"))
            )
        except OAuthToolkitError as error:
            return self.error_response(error, application)
        return self.redirect(uri, application)

    # --- rendering ---------------------------------------------------------------------

    def _memberships(self) -> list[Membership]:
        if not hasattr(self, "_membership_cache"):
            self._membership_cache = list(
                Membership.objects.filter(user=self.request.user)
                .select_related("account")
                .prefetch_related("account__sites")
                .order_by("account__name")
            )
        return self._membership_cache

    def _render(self, form, application, status=None):
        memberships = self._memberships()
        redirect_uri = self.pending["redirect_uri"]
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
            **app_context(application, redirect_uri),
            "choices": choices,
            "confirm_writes": form["confirm_writes"].value() not in (False, "0"),
            "write_requested": write_requested,
            "any_can_write": write_requested and any(c["can_write"] for c in choices),
            "user_display": self.request.user.email or self.request.user.get_username(),
            "full_path": self.request.get_full_path(),
        }
        if status is None:
            status = 200 if memberships else 403
        response = self.render_to_response(context, status=status)
        response._csp_replace = {"form-action": consent_form_action(redirect_uri)}
        return response
