"""The subscriber's browser sign-in (issue 14 item 3): the sign-in page at /open/sign-in (site
pick, e-mail + password checked by the sandbox's Open API login, `?next=`), the session entry
(`accounts.subscriber_session`) apart from the operators' Django sign-in, sign-out, expiry.
Real HTTP against the test gateway and sandbox."""

from __future__ import annotations

import os
import time

import httpx
import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory

from accounts import subscriber_session
from accounts.models import Site, Subscriber
from accounts.subscriber_session import current_subscriber, forget_subscriber, remember_subscriber
from accounts.subscribers import subscriber_for
from devtools.oauth_client import parse_forms, signed_in
from tests.support.mcp import PASSWORDS
from tests.support.oauth import _clear_redis_prefix
from tests.support.sandbox import READER, SECOND
from tests.support.servers import start_gateway

SIGN_IN = "/open/sign-in"


def browser(env) -> httpx.Client:
    return httpx.Client(base_url=env.gateway.url, timeout=20, follow_redirects=False)


def form_of(page: httpx.Response, action: str = SIGN_IN) -> dict:
    return next(f for f in parse_forms(page.text) if (f["action"] or "").startswith(action))


def post_form(session: httpx.Client, page: httpx.Response, **fields) -> httpx.Response:
    form = form_of(page)
    return session.post(form["action"], data={**form["hidden"], **fields})


def sign_in_page(session: httpx.Client, subscriber=READER, password: str | None = None, next_url: str = "/somewhere"):
    """Drive /open/sign-in: pick the site, then e-mail + password; the last answer."""
    page = session.get(SIGN_IN, params={"next": next_url})
    assert page.status_code == 200
    page = post_form(session, page, step="site", site_id=str(subscriber["site_id"]))
    assert page.status_code == 200 and "Sign in to" in page.text
    return post_form(session, page, email=subscriber["email"], password=password or subscriber["password"])


def test_site_pick_then_password_then_back_to_next(mcp_env, fresh_sbx):
    with browser(mcp_env) as session:
        page = session.get(SIGN_IN, params={"next": "/open/connections"})
        assert page.status_code == 200
        assert "Acme Daily" in page.text and "Globex Times" in page.text  # the demo sites have access on
        wrong = sign_in_page(session, password="Not-The-Password-1!", next_url="/open/connections")
        assert wrong.status_code == 200
        assert "do not match an account of this publication" in wrong.text
        assert "Not-The-Password-1!" not in wrong.text
        assert READER["email"] in wrong.text  # kept in the field, the password is not
        since = fresh_sbx.last_seq()
        right = post_form(session, wrong, email=READER["email"], password=READER["password"])
        assert right.status_code == 302 and right.headers["location"] == "/open/connections"
        # Signed in: the page now sends the browser on at once.
        again = session.get(SIGN_IN, params={"next": "/open/connections"})
        assert again.status_code == 302 and again.headers["location"] == "/open/connections"
        # The Pelcro sign-in this page made is not kept: it was logged out at Pelcro at once.
        paths = [entry["path"] for entry in fresh_sbx.log(since, api="open")]
        assert paths == ["/api/v1/sdk/auth/login", "/api/v1/sdk/auth/logout"], paths
    subscriber = Subscriber.objects.get(site__site_id=READER["site_id"], email=READER["email"])
    assert not subscriber.user.has_usable_password()


def test_the_subscriber_session_is_not_an_operator_sign_in(mcp_env):
    with browser(mcp_env) as session:
        assert sign_in_page(session).status_code == 302
        # Operator pages do not accept it: the operator sign-in is asked for.
        for path in ("/connections", "/ops/", "/admin/"):
            page = session.get(path)
            assert page.status_code == 302 and "login" in page.headers["location"], (path, page.status_code)
        # Signing out of the subscriber session leaves the page's sign-in form.
        assert session.get(SIGN_IN, params={"next": "/x"}).status_code == 302
        out = session.post("/open/sign-out", data={"csrfmiddlewaretoken": session.cookies["csrftoken"]})
        assert out.status_code == 302
        page = session.get(out.headers["location"])
        assert page.status_code == 200 and "You are signed out" in page.text


def test_an_operator_sign_in_is_not_a_subscriber_session(mcp_env):
    operator = signed_in(mcp_env.gateway.url, "demo", PASSWORDS["demo"])
    try:
        page = operator.get(SIGN_IN, params={"next": "/somewhere"})
        assert page.status_code == 200 and "Your publication" in page.text  # asked to sign in
        # Both at once in one browser: the subscriber sign-in leaves the operator signed in,
        # and signing the subscriber out leaves the operator too.
        page = post_form(operator, page, step="site", site_id=str(READER["site_id"]))
        done = post_form(operator, page, email=READER["email"], password=READER["password"])
        assert done.status_code == 302
        assert operator.get("/connections").status_code == 200
        operator.post("/open/sign-out", data={"csrfmiddlewaretoken": operator.cookies["csrftoken"]})
        assert operator.get("/connections").status_code == 200
        assert operator.get(SIGN_IN, params={"next": "/somewhere"}).status_code == 200
    finally:
        operator.close()


def test_site_hint_preselects_and_a_bad_hint_says_so(mcp_env):
    with browser(mcp_env) as session:
        page = session.get(SIGN_IN, params={"site_id": str(SECOND["site_id"])})
        assert page.status_code == 200 and "Sign in to Acme Daily" in page.text
        Site.objects.filter(site_id=27).update(subscriber_access_enabled=False)
        for hint in ("27", "999999", "abc"):
            page = session.get(SIGN_IN, params={"site_id": hint})
            assert page.status_code == 200
            assert "does not offer sign-in for apps here" in page.text and "Your publication" in page.text
            assert "Other Gazette" not in page.text  # switched off: not offered


def test_next_must_be_a_path_here(mcp_env):
    with browser(mcp_env) as session:
        for bad in ("https://evil.example/x", "//evil.example/x", "javascript:alert(1)"):
            done = sign_in_page(session, next_url=bad)
            assert done.status_code in (200, 302)
            assert "evil" not in done.headers.get("location", "") and "javascript" not in done.headers.get(
                "location", ""
            )
            session.post("/open/sign-out", data={"csrfmiddlewaretoken": session.cookies["csrftoken"]})


def test_forms_are_csrf_protected(mcp_env):
    with browser(mcp_env) as session:
        session.get(SIGN_IN)
        refused = session.post(
            SIGN_IN,
            data={"step": "sign_in", "site_id": str(READER["site_id"]), "email": READER["email"], "password": "x"},
        )
        assert refused.status_code == 403
        assert session.post("/open/sign-out").status_code == 403


@pytest.fixture(scope="module")
def _per_ip_gateway(django_db_setup, django_db_blocker, unlimited_sandbox):
    prefix = os.environ["REDIS_KEY_PREFIX"] + "subscriber-ip:"
    with django_db_blocker.unblock():
        server = start_gateway(unlimited_sandbox, REDIS_KEY_PREFIX=prefix, LOGIN_MAX_FAILURES_PER_IP="5")
    server.redis_prefix = prefix
    yield server
    server.stop()
    _clear_redis_prefix(prefix)


def test_the_gateway_counts_failed_sign_ins_per_ip(_per_ip_gateway, demo_users, fresh_sbx):
    """A client IP with LOGIN_MAX_FAILURES_PER_IP failures (5 on this gateway) is refused
    before Pelcro sees the password, whichever subscriber it tries next."""
    _clear_redis_prefix(_per_ip_gateway.redis_prefix)
    with httpx.Client(base_url=_per_ip_gateway.url, timeout=20, follow_redirects=False) as session:
        for attempt in range(5):
            page = sign_in_page(session, password=f"Wrong-{attempt}-Pass!")
            assert page.status_code == 200 and "do not match" in page.text
        since = fresh_sbx.last_seq()
        locked = sign_in_page(session, subscriber=SECOND)
        assert locked.status_code == 429 and "Too many failed sign-ins from your network" in locked.text
        assert fresh_sbx.log(since, api="open") == []


# --- the session entry (accounts.subscriber_session) -----------------------------------------


@pytest.fixture
def request_with_session(db):
    request = RequestFactory().get("/")
    request.session = SessionStore()
    return request


def _fresh(request):
    request.__dict__.pop("_pelcro_subscriber", None)
    return current_subscriber(request)


def test_the_entry_expires_and_follows_the_sites_switch(request_with_session, demo_users):
    request = request_with_session
    site = Site.objects.get(site_id=14)
    subscriber = subscriber_for(site, 4242, "someone@example.com")
    assert _fresh(request) is None
    remember_subscriber(request, subscriber)
    assert _fresh(request) == subscriber
    assert "_auth_user_id" not in request.session  # no Django sign-in
    Site.objects.filter(pk=site.pk).update(subscriber_access_enabled=False)
    assert _fresh(request) is None and subscriber_session.SESSION_KEY not in request.session
    Site.objects.filter(pk=site.pk).update(subscriber_access_enabled=True)
    remember_subscriber(request, subscriber)
    request.session[subscriber_session.SESSION_KEY]["at"] = int(time.time()) - subscriber_session.MAX_AGE_SECONDS
    assert _fresh(request) is None
    remember_subscriber(request, subscriber)
    forget_subscriber(request)
    assert _fresh(request) is None
    remember_subscriber(request, subscriber)
    subscriber.user.is_active = False
    subscriber.user.save()
    assert _fresh(request) is None


def test_subscriber_required_sends_to_the_sign_in_page(request_with_session, demo_users):
    seen = []

    @subscriber_session.subscriber_required
    def page(request):
        seen.append(request.subscriber)
        return "ok"

    request = RequestFactory().get("/open/connections?x=1")
    request.session = SessionStore()
    answer = page(request)
    assert answer.status_code == 302
    assert answer.headers["location"] == "/open/sign-in?next=%2Fopen%2Fconnections%3Fx%3D1"
    subscriber = subscriber_for(Site.objects.get(site_id=14), 4243, "x@example.com")
    remember_subscriber(request, subscriber)
    assert page(request) == "ok" and seen == [subscriber]
