"""Attacks on the subscriber sign-in, consent and connections pages (issue 14 item 3) that
found something, each kept as the test that failed before its fix. Real gateway, real sandbox
(Open API login over HTTP), the HTML forms driven like a browser.

- A person's decision on a connection request (Allow or Cancel) is made once: a double
  click (two POSTs of the same form at once) or a resubmission gets the same answer, never
  a second authorization code carrying the same Pelcro JWT (two connections sharing one
  JWT: a refresh by one blacklists the other's, and a clean-up of the unused code's copy
  would sign the live one out). Both consent screens share the rule.
- An app that names no resource is taken for a Core client and sent to the staff sign-in,
  which now offers subscribers the same request for the Open server.
- An authorization request naming a resource this server does not serve (the wrong host,
  a path in another case, a query) is answered `invalid_target` at once, like every other
  bad request, instead of sending a subscriber to the staff sign-in page.
- Signing out (the page header's Sign out) at the consent step ends the sign-in the waiting
  request holds: Back and Allow afterwards no longer connect the app as the subscriber.
- The same app connected again reuses its connection with the new sign-in's JWT; the JWT
  it replaced, held by nothing, is signed out by the sweep instead of staying valid at
  Pelcro for its lifetime.
- The subscriber's pages (sign-in, connected apps, revoke) and confirmation pages are sent
  with `Cache-Control: no-store`, as the operators' pages were.
- A subscriber record deleted (in the admin, or with its site when Pelcro's `GET /account`
  stops listing the site) left its user record holding the subscriber's username, so the
  customer could never sign in again ("This account cannot be connected here"); in the
  admin, their connections, tokens and Pelcro JWT also stayed live. Now the next sign-in
  takes that user record up again, and the admin deletes a subscriber (or their user record,
  or their site) only once nothing of theirs is live.
"""

from __future__ import annotations

import html
import re
import threading
import time
from contextlib import closing
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from oauth2_provider.models import get_grant_model

from accounts.models import AuthorizationConsent, Connection, ConsentCredential, Site, Subscriber
from accounts.views.consent import DECISION_SECONDS
from devtools.oauth_client import (
    DEFAULT_REDIRECT_URI,
    authorize_url,
    consent_form,
    exchange_code,
    obtain_open_tokens,
    open_url,
    parse_forms,
    pkce_pair,
    redirect_params,
    register_client,
    signed_in,
    subscriber_step,
)
from tests.support.mcp import PASSWORDS
from tests.support.sandbox import READER, SUBSCRIBERS

pytestmark = pytest.mark.sqlite


def browser(gateway_url: str) -> httpx.Client:
    return httpx.Client(base_url=gateway_url, timeout=30, follow_redirects=False)


def mcp_status(url: str, token: str) -> int:
    """The status of an MCP initialize at `url` with bearer `token`."""
    return httpx.post(
        url,
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        },
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": "2025-06-18",
        },
        timeout=30,
    ).status_code


def csrf_of(page: httpx.Response) -> dict:
    """The CSRF token of a page's form."""
    return {"csrfmiddlewaretoken": re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)}


def to_consent(session: httpx.Client, env, client_id: str, subscriber: dict = READER, **params):
    """The subscriber's consent page (publication hinted, then e-mail and password) and the
    PKCE verifier."""
    verifier, challenge = pkce_pair()
    page = session.get(
        authorize_url(
            env.gateway.url,
            client_id,
            challenge,
            resource=open_url(env.gateway.url),
            site_id=str(subscriber["site_id"]),
            **params,
        )
    )
    step, form = subscriber_step(page)
    assert step == "sign_in", step
    page = session.post(
        form["action"], data={**form["hidden"], "email": subscriber["email"], "password": subscriber["password"]}
    )
    assert subscriber_step(page)[0] == "consent", page.text[:500]
    return page, verifier


def post_at_once(session: httpx.Client, action: str, data: dict, times: int = 3) -> list[httpx.Response]:
    """`times` POSTs of the same form from the same browser, all sent at once (a double click)."""
    answers: list[httpx.Response] = []
    start = threading.Barrier(times)

    def send():
        start.wait()
        answers.append(session.post(action, data=data))

    threads = [threading.Thread(target=send) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


# --- one decision per connection request --------------------------------------------------------


def test_a_double_click_on_allow_issues_one_code(mcp_env):
    client = register_client(mcp_env.gateway.url)
    with browser(mcp_env.gateway.url) as session:
        consent, verifier = to_consent(session, mcp_env, client["client_id"], state="dbl")
        _step, form = subscriber_step(consent)
        answers = post_at_once(session, form["action"], {**form["hidden"], "access": "read", "allow": "true"})
        # A resubmission a moment later (the browser's Back, then Allow again) too.
        answers.append(session.post(form["action"], data={**form["hidden"], "access": "read", "allow": "true"}))
    assert [answer.status_code for answer in answers] == [302] * 4
    codes = {redirect_params(answer)["code"] for answer in answers}
    assert len(codes) == 1, "every answer carries the one code the decision made"
    assert {redirect_params(answer)["state"] for answer in answers} == {"dbl"}
    assert get_grant_model().objects.filter(application__client_id=client["client_id"]).count() == 1
    assert ConsentCredential.objects.filter(consent__application__client_id=client["client_id"]).count() == 1
    tokens = exchange_code(
        mcp_env.gateway.url, client["client_id"], codes.pop(), verifier, resource=open_url(mcp_env.gateway.url)
    )
    assert tokens.status_code == 200, tokens.text


def test_a_later_resubmission_finds_the_request_answered(mcp_env):
    """Past the double-click window the spent code is not handed out again (a client might
    exchange it a second time, and a replayed code revokes the tokens issued from it)."""
    client = register_client(mcp_env.gateway.url)
    with browser(mcp_env.gateway.url) as session:
        consent, _verifier = to_consent(session, mcp_env, client["client_id"])
        _step, form = subscriber_step(consent)
        first = session.post(form["action"], data={**form["hidden"], "access": "read", "allow": "true"})
        assert "code" in redirect_params(first)
        time.sleep(DECISION_SECONDS + 1)
        later = session.post(form["action"], data={**form["hidden"], "access": "read", "allow": "true"})
    assert later.status_code == 400 and "no longer waiting" in later.text
    assert redirect_params(first)["code"] not in later.text


def test_allow_and_cancel_at_once_make_one_decision(mcp_env, fresh_sbx):
    client = register_client(mcp_env.gateway.url)
    with browser(mcp_env.gateway.url) as session:
        consent, _verifier = to_consent(session, mcp_env, client["client_id"])
        _step, form = subscriber_step(consent)
        since = fresh_sbx.last_seq()
        answers: list[httpx.Response] = []
        start = threading.Barrier(2)

        def send(fields):
            start.wait()
            answers.append(session.post(form["action"], data={**form["hidden"], **fields}))

        threads = [
            threading.Thread(target=send, args=({"access": "read", "allow": "true"},)),
            threading.Thread(target=send, args=({"allow": ""},)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    outcomes = {tuple(sorted(redirect_params(answer))) for answer in answers}
    assert len(outcomes) == 1, f"both answers are the one decision's: {outcomes}"
    logged_out = [e for e in fresh_sbx.log(since, api="open") if e["path"] == "/api/v1/sdk/auth/logout"]
    if "code" in redirect_params(answers[0]):
        # Allowed: the sign-in the code carries was not logged out by a Cancel racing it.
        assert logged_out == []
        assert ConsentCredential.objects.filter(consent__application__client_id=client["client_id"]).count() == 1
    else:
        assert redirect_params(answers[0])["error"] == "access_denied" and len(logged_out) == 1
        assert not AuthorizationConsent.objects.filter(application__client_id=client["client_id"]).exists()


def test_the_operator_consent_makes_one_decision_too(mcp_env):
    client = register_client(mcp_env.gateway.url)
    with closing(signed_in(mcp_env.gateway.url, "demo", PASSWORDS["demo"])) as operator:
        _verifier, challenge = pkce_pair()
        page = operator.get(authorize_url(mcp_env.gateway.url, client["client_id"], challenge))
        form = consent_form(page.text)
        account = next(r for r in form["radios"]["account"] if r["data-slug"] == "acme")["value"]
        fields = {**form["hidden"], "account": account, "access": "read", "allow": "true"}
        answers = post_at_once(operator, form["action"], fields)
    assert [answer.status_code for answer in answers] == [302] * 3
    assert len({redirect_params(answer)["code"] for answer in answers}) == 1
    assert get_grant_model().objects.filter(application__client_id=client["client_id"]).count() == 1


def test_another_browser_never_gets_the_decision(mcp_env):
    client = register_client(mcp_env.gateway.url)
    with browser(mcp_env.gateway.url) as session:
        consent, _verifier = to_consent(session, mcp_env, client["client_id"])
        _step, form = subscriber_step(consent)
        decided = session.post(form["action"], data={**form["hidden"], "access": "read", "allow": "true"})
    assert "code" in redirect_params(decided)
    with browser(mcp_env.gateway.url) as stranger:
        stranger.get("/open/sign-in")
        foreign = stranger.post(
            form["action"],
            data={
                "csrfmiddlewaretoken": stranger.cookies["csrftoken"],
                "pending": form["hidden"]["pending"],
                "action": "consent",
                "access": "read",
                "allow": "true",
            },
        )
    assert foreign.status_code == 400 and "no longer waiting" in foreign.text
    assert redirect_params(decided)["code"] not in foreign.text


# --- a resource this server does not serve -------------------------------------------------------


@pytest.mark.parametrize(
    "resource",
    [
        "http://localhost:{port}/open",  # PUBLIC_URL says 127.0.0.1: another origin
        "{base}/OPEN",  # paths are case-sensitive
        "{base}/open?site_id=14",  # a resource indicator has no query (RFC 8707 §2)
        "{base}/open/sign-in",
    ],
)
def test_an_unknown_resource_is_invalid_target_not_the_staff_sign_in(mcp_env, resource):
    base = mcp_env.gateway.url
    resource = resource.format(base=base, port=base.rsplit(":", 1)[1])
    client = register_client(base)
    with browser(base) as session:
        _verifier, challenge = pkce_pair()
        answer = session.get(authorize_url(base, client["client_id"], challenge, resource=resource, state="r-1"))
    assert answer.status_code == 302 and answer.headers["location"].startswith(DEFAULT_REDIRECT_URI), answer.headers
    params = redirect_params(answer)
    assert params["error"] == "invalid_target" and params["state"] == "r-1" and params["iss"] == base
    assert (
        repr(resource) in params["error_description"]
        and f"{base}/open (the subscriber server)" in params["error_description"]
    )


def test_an_unknown_resource_from_a_self_registered_https_app_is_an_error_page(mcp_env):
    base = mcp_env.gateway.url
    client = register_client(base, redirect_uris=["https://app.example.com/cb"])
    with browser(base) as session:
        _verifier, challenge = pkce_pair()
        url = authorize_url(
            base,
            client["client_id"],
            challenge,
            redirect_uri="https://app.example.com/cb",
            resource="https://x.example/open",
        )
        page = session.get(url)
    assert page.status_code == 400 and "invalid_target" in page.text and "https://x.example/open" in page.text
    assert "app.example.com" not in page.headers.get("location", "")


def test_the_core_server_still_asks_staff_to_sign_in(mcp_env):
    """Only requests for the Core server (or naming none) go to the operators' screen."""
    base = mcp_env.gateway.url
    client = register_client(base)
    with browser(base) as session:
        _verifier, challenge = pkce_pair()
        for resource in (base + "/", base, None):
            url = authorize_url(base, client["client_id"], challenge, resource=resource)
            answer = session.get(url)
            assert answer.status_code == 302 and answer.headers["location"].startswith("/login?next="), resource
        both = session.get(
            authorize_url(base, client["client_id"], challenge, resource=base + "/")
            + "&"
            + urlencode({"resource": "https://x.example/"})
        )
    assert redirect_params(both)["error"] == "invalid_target"


# --- the admin ---------------------------------------------------------------------------------------


def test_a_subscriber_with_live_access_cannot_be_deleted_in_the_admin(mcp_env):
    """Deleting a subscriber (or what cascades to one: their user record, their site) while a
    connection of theirs is active or holds their Pelcro JWT is refused: it left the user
    record behind holding the subscriber's username (the customer could never sign in again)
    and the JWT valid at Pelcro. A connection holding a JWT cannot be deleted either."""
    tokens = obtain_open_tokens(mcp_env.gateway.url, READER["site_id"], READER["email"], READER["password"], "read")
    subscriber = Subscriber.objects.get(site__site_id=READER["site_id"], email=READER["email"])
    connection = Connection.objects.get(application__client_id=tokens["client_id"])
    site = subscriber.site
    with closing(signed_in(mcp_env.gateway.url, "demo", PASSWORDS["demo"])) as staff:
        assert staff.get(f"/admin/accounts/subscriber/{subscriber.pk}/delete/").status_code == 403
        listing = staff.get("/admin/accounts/subscriber/")
        selected = {**csrf_of(listing), "action": "delete_selected", "_selected_action": [str(subscriber.pk)]}
        bulk = staff.post("/admin/accounts/subscriber/", data=selected)
        assert bulk.status_code == 200 and "Cannot delete" in bulk.text
        assert staff.post("/admin/accounts/subscriber/", data={**selected, "post": "yes"}).status_code == 403
        for cascading in (f"/admin/auth/user/{subscriber.user_id}/delete/", f"/admin/accounts/site/{site.pk}/delete/"):
            page = staff.get(cascading)
            assert page.status_code == 200 and "Cannot delete" in page.text, cascading
            lacking = re.search(r'<ul id="deleted-objects">(.*?)</ul>', page.text, re.S).group(1)
            assert "subscriber" in lacking, cascading
            assert staff.post(cascading, data={**csrf_of(page), "post": "yes"}).status_code == 403, cascading
        assert staff.get(f"/admin/accounts/connection/{connection.pk}/delete/").status_code == 403
    assert Subscriber.objects.filter(pk=subscriber.pk).exists() and Connection.objects.filter(pk=connection.pk).exists()
    assert mcp_status(mcp_env.gateway.url + "/open", tokens["access_token"]) == 200


def test_a_site_that_leaves_and_comes_back_lets_its_subscribers_sign_in_again(mcp_env):
    """Pelcro's `GET /account` no longer listing a site deletes it, and its subscriber
    records with it (`accounts.upstream_account`); their user records stay (the connections
    and audit rows point at them). When the site is listed again, its subscribers sign in
    again as before instead of "This account cannot be connected here" forever."""
    first = obtain_open_tokens(mcp_env.gateway.url, READER["site_id"], READER["email"], READER["password"], "read")
    before = Subscriber.objects.get(site__site_id=READER["site_id"], email=READER["email"])
    site = before.site
    fields = {"site_id": site.site_id, "account": site.account, "name": site.name, "url": site.url}
    site.delete()  # as an account refresh does
    assert not Subscriber.objects.filter(pk=before.pk).exists()
    assert get_user_model().objects.filter(pk=before.user_id).exists()
    Site.objects.create(**fields, source=Site.Source.UPSTREAM, subscriber_access_enabled=True)
    again = obtain_open_tokens(mcp_env.gateway.url, READER["site_id"], READER["email"], READER["password"], "read")
    assert mcp_status(mcp_env.gateway.url + "/open", again["access_token"]) == 200
    after = Subscriber.objects.get(site__site_id=READER["site_id"], email=READER["email"])
    assert after.user_id == before.user_id and after.customer_id == before.customer_id
    # The connection the site's removal ended stays ended.
    assert mcp_status(mcp_env.gateway.url + "/open", first["access_token"]) == 401


def test_a_subscriber_can_be_deleted_once_nothing_of_theirs_is_live_and_can_sign_in_again(mcp_env):
    tokens = obtain_open_tokens(mcp_env.gateway.url, READER["site_id"], READER["email"], READER["password"], "read")
    subscriber = Subscriber.objects.get(site__site_id=READER["site_id"], email=READER["email"])
    connection = Connection.objects.get(application__client_id=tokens["client_id"])
    with closing(signed_in(mcp_env.gateway.url, "demo", PASSWORDS["demo"])) as staff:
        listing = staff.get("/admin/mcp_bridge/subscriberconnection/")
        revoked = staff.post(
            "/admin/mcp_bridge/subscriberconnection/",
            data={**csrf_of(listing), "action": "revoke", "_selected_action": [str(connection.pk)]},
        )
        assert revoked.status_code == 302
        page = staff.get(f"/admin/accounts/subscriber/{subscriber.pk}/delete/")
        assert page.status_code == 200
        deleted = staff.post(
            f"/admin/accounts/subscriber/{subscriber.pk}/delete/", data={**csrf_of(page), "post": "yes"}
        )
        assert deleted.status_code == 302
    assert not Subscriber.objects.filter(pk=subscriber.pk).exists()
    # The user record left behind (with the old connection and its audit rows) is taken up
    # again by the customer's next sign-in instead of blocking it.
    again = obtain_open_tokens(mcp_env.gateway.url, READER["site_id"], READER["email"], READER["password"], "read")
    assert mcp_status(mcp_env.gateway.url + "/open", again["access_token"]) == 200
    assert Subscriber.objects.get(site__site_id=READER["site_id"], email=READER["email"]).user_id == subscriber.user_id
    assert mcp_status(mcp_env.gateway.url + "/open", tokens["access_token"]) == 401  # revoked stays revoked


@pytest.fixture
def redis_down_gateway(faults, own_redis, django_db_blocker):
    """A gateway on a private redis-server that is then stopped."""
    from tests.support.faults import start_fault_gateway

    with django_db_blocker.unblock():
        server = start_fault_gateway(faults.sandbox.server, REDIS_URL=own_redis.url)
    own_redis.stop()
    yield server
    server.stop()


def test_with_redis_down_a_decision_is_still_made(redis_down_gateway):
    """The one-decision claim is best effort: without Redis the consent still answers."""
    base = redis_down_gateway.url
    client = register_client(base)
    with closing(signed_in(base, "demo", PASSWORDS["demo"])) as operator:
        _verifier, challenge = pkce_pair()
        page = operator.get(authorize_url(base, client["client_id"], challenge, state="down"))
        form = consent_form(page.text)
        account = next(r for r in form["radios"]["account"] if r["data-slug"] == "acme")["value"]
        answer = operator.post(
            form["action"], data={**form["hidden"], "account": account, "access": "read", "allow": "true"}
        )
    params = redirect_params(answer)
    assert "code" in params and params["state"] == "down"


# --- an app that names no resource ------------------------------------------------------------


def test_a_subscriber_whose_app_names_no_resource_can_still_sign_in(mcp_env):
    """An app that sends no `resource` (RFC 8707 is optional for OAuth clients) is taken
    for a Core client and lands on the staff sign-in; that page offers subscribers the way
    on: the same request for the Open server, whose token then works at /open."""
    base = mcp_env.gateway.url
    client = register_client(base)
    with browser(base) as session:
        verifier, challenge = pkce_pair()
        bounced = session.get(authorize_url(base, client["client_id"], challenge, resource=None, state="nr-1"))
        assert bounced.status_code == 302 and bounced.headers["location"].startswith("/login?next=")
        login = session.get(bounced.headers["location"])
        links = re.findall(r'<a [^>]*href="([^"]+)"[^>]*>\s*Sign in with your publication', login.text)
        assert len(links) == 1, login.text
        onward = html.unescape(links[0])
        query = parse_qs(urlsplit(onward).query)
        assert urlsplit(onward).path == "/oauth/authorize" and query["resource"] == [open_url(base)]
        assert query["state"] == ["nr-1"] and query["code_challenge"] == [challenge]
        page = session.get(onward)
        assert subscriber_step(page)[0] == "site"
        _step, form = subscriber_step(page)
        page = session.post(form["action"], data={**form["hidden"], "site_id": str(READER["site_id"])})
        _step, form = subscriber_step(page)
        page = session.post(
            form["action"], data={**form["hidden"], "email": READER["email"], "password": READER["password"]}
        )
        _step, form = subscriber_step(page)
        params = redirect_params(
            session.post(form["action"], data={**form["hidden"], "access": "read", "allow": "true"})
        )
    assert params["state"] == "nr-1"
    # The app exchanges the code as it asked for it: without a resource.
    tokens = exchange_code(base, client["client_id"], params["code"], verifier, resource=None)
    assert tokens.status_code == 200, tokens.text
    token = tokens.json()["access_token"]
    assert mcp_status(base + "/open", token) == 200 and mcp_status(base + "/", token) == 401


def test_the_staff_sign_in_offers_no_subscriber_way_where_none_applies(mcp_env):
    base = mcp_env.gateway.url
    client = register_client(base)
    with browser(base) as session:
        _verifier, challenge = pkce_pair()
        for next_url in (
            "/connections",
            authorize_url(base, client["client_id"], challenge),  # asks for the Core server by name
            "https://evil.example/oauth/authorize?client_id=x",
        ):
            page = session.get("/login", params={"next": next_url})
            assert page.status_code == 200 and "Sign in with your publication" not in page.text, next_url


# --- signing out in the middle of a connection request ---------------------------------------


def test_signing_out_ends_the_sign_in_a_waiting_request_holds(mcp_env, fresh_sbx):
    """A subscriber who signs out (the page header's Sign out) while a connection request
    waits at the consent step: Back and Allow afterwards (someone else at the same
    computer) must not connect the app as them. The request's sign-in goes (logged out at
    Pelcro); the request itself stays, asking for a sign-in again."""
    client = register_client(mcp_env.gateway.url)
    with browser(mcp_env.gateway.url) as session:
        consent, _verifier = to_consent(session, mcp_env, client["client_id"], state="so-1")
        _step, form = subscriber_step(consent)
        since = fresh_sbx.last_seq()
        out = session.post("/open/sign-out", data={"csrfmiddlewaretoken": session.cookies["csrftoken"]})
        assert out.status_code == 302
        assert [e["path"] for e in fresh_sbx.log(since, api="open")] == ["/api/v1/sdk/auth/logout"]
        # Back, then Allow on the page as it was.
        again = session.post(form["action"], data={**form["hidden"], "access": "read", "allow": "true"})
        assert "location" not in again.headers, again.headers.get("location")
        assert subscriber_step(again)[0] == "sign_in" and READER["email"] not in again.text
    assert not AuthorizationConsent.objects.filter(application__client_id=client["client_id"]).exists()
    assert not get_grant_model().objects.filter(application__client_id=client["client_id"]).exists()


# --- probes that found nothing, kept as regression tests ------------------------------------------


def test_a_site_id_posted_at_the_sign_in_or_consent_step_changes_nothing(mcp_env):
    """The publication is the pending request's (chosen at the site step, server side): a
    `site_id` added to the e-mail/password or the consent form is ignored."""
    weekly = next(s for s in SUBSCRIBERS if s["site_id"] == 15)
    client = register_client(mcp_env.gateway.url)
    with browser(mcp_env.gateway.url) as session:
        _verifier, challenge = pkce_pair()
        url = authorize_url(
            mcp_env.gateway.url, client["client_id"], challenge, resource=open_url(mcp_env.gateway.url), site_id="14"
        )
        page = session.get(url)
        _step, form = subscriber_step(page)
        # Site 15's subscriber, with site_id=15 slipped into the sign-in form of site 14.
        refused = session.post(
            form["action"],
            data={**form["hidden"], "site_id": "15", "email": weekly["email"], "password": weekly["password"]},
        )
        assert subscriber_step(refused)[0] == "sign_in" and "do not match" in refused.text
        consent, verifier = to_consent(session, mcp_env, client["client_id"])
        _step, form = subscriber_step(consent)
        answer = session.post(
            form["action"], data={**form["hidden"], "site_id": "15", "access": "read", "allow": "true"}
        )
        params = redirect_params(answer)
    tokens = exchange_code(
        mcp_env.gateway.url, client["client_id"], params["code"], verifier, resource=open_url(mcp_env.gateway.url)
    )
    assert tokens.status_code == 200, tokens.text
    connection = Connection.objects.get(application__client_id=client["client_id"])
    assert connection.user.subscriber.site.site_id == READER["site_id"]


# --- the same app connected again -------------------------------------------------------------------


def test_connecting_the_same_app_again_signs_the_replaced_jwt_out(mcp_env, fresh_sbx, settings):
    """The same app authorized again with the same access reuses its connection (no pile of
    rows) and takes the new sign-in's JWT; the JWT it replaces, which nothing holds any
    more, is signed out at Pelcro by the sweep instead of staying valid there (60 days)."""
    from accounts import crypto
    from accounts.models import SubscriberCredential
    from devtools.oauth_client import subscriber_authorize
    from mcp_bridge.open import tasks

    settings.PELCRO_GATEWAY = {**settings.PELCRO_GATEWAY, "OPEN_API_BASE_URL": mcp_env.sandbox.url + "/api/v1/sdk"}
    base = mcp_env.gateway.url
    client = register_client(base, client_name="Connected twice")
    tokens, jwts = [], []
    for _ in range(2):
        with browser(base) as session:
            result = subscriber_authorize(
                session, base, client["client_id"], READER["site_id"], READER["email"], READER["password"], "read"
            )
        answer = exchange_code(base, client["client_id"], result["code"], result["verifier"], resource=open_url(base))
        assert answer.status_code == 200, answer.text
        tokens.append(answer.json()["access_token"])
        connection = Connection.objects.get(application__client_id=client["client_id"])  # one, reused
        jwts.append(SubscriberCredential.objects.get(connection=connection).get_jwt())
    first, second = jwts
    assert first != second

    def pelcro(jwt: str) -> int:
        return httpx.post(
            f"{mcp_env.sandbox.url}/api/v1/sdk/customer",
            params={"site_id": READER["site_id"]},
            headers={"Authorization": f"Bearer {jwt}"},
            timeout=10,
        ).status_code

    # Once the second code can no longer be redeemed, the sweep signs the replaced JWT out.
    ConsentCredential.objects.filter(consent__application__client_id=client["client_id"]).update(
        created_at=timezone.now() - timedelta(minutes=3)
    )
    assert tasks.sweep_sign_ins() == {"ended": 0, "signed_out": 1}
    assert pelcro(first) == 403 and pelcro(second) == 200
    assert crypto.decrypt(SubscriberCredential.objects.get(connection=connection).jwt_encrypted) == second
    assert [mcp_status(base + "/open", token) for token in tokens] == [200, 200]


# --- browser caches -------------------------------------------------------------------------------


def test_subscriber_pages_are_never_cached(mcp_env):
    """Like the operators' pages: the subscriber's connected apps (with their recent calls)
    and sign-in forms must not be kept by the browser (Back after signing out on a shared
    computer would show them), nor a confirmation page with a call's arguments."""
    tokens = obtain_open_tokens(mcp_env.gateway.url, READER["site_id"], READER["email"], READER["password"], "read")
    connection = Connection.objects.get(application__client_id=tokens["client_id"])
    with browser(mcp_env.gateway.url) as session:
        page = session.get("/open/sign-in", params={"site_id": READER["site_id"], "next": "/open/connections"})
        pages = {"sign-in": page}
        form = next(f for f in parse_forms(page.text) if f["action"] == "/open/sign-in")
        pages["signed in"] = session.post(
            "/open/sign-in", data={**form["hidden"], "email": READER["email"], "password": READER["password"]}
        )
        pages["connections"] = session.get("/open/connections")
        pages["revoke"] = session.get(f"/open/connections/{connection.pk}/revoke")
        pages["confirmation"] = session.get("/confirm/00000000-0000-4000-8000-000000000000")
    assert [response.status_code for response in pages.values()] == [200, 302, 200, 200, 404]
    assert READER["email"] in pages["connections"].text
    for name, response in pages.items():
        assert "no-store" in response.headers.get("cache-control", ""), name
