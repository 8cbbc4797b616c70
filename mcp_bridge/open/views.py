"""The subscriber's pages: sign-in (`/open/sign-in`), sign-out (`/open/sign-out`).

A subscriber signs in with the e-mail and password of their account with one publication
(a site whose account turned subscriber access on): first the publication, then the
e-mail and password, checked by Pelcro's Open API login (`sign_in.sign_in_from_page`).
The browser session then holds the subscriber (`accounts.subscriber_session`), apart
from any operator's Django sign-in. Every form works without JavaScript and is CSRF
protected (Django's middleware).
"""

from __future__ import annotations

from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import Site
from accounts.sign_in import client_ip
from accounts.subscriber_session import current_subscriber, forget_subscriber, remember_subscriber
from mcp_bridge.open.forms import SignInForm, SiteForm, subscriber_sites
from mcp_bridge.open.sign_in import SignInRefused, sign_in_from_page

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
    signed in in the same browser stays signed in); then the sign-in page."""
    forget_subscriber(request)
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
