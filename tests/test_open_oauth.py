"""Subscriber sign-in through the OAuth server for the Open server at /open (issue 14 item 3).

`/oauth/authorize` with `resource=PUBLIC_URL/open` runs the subscriber's flow: publication,
e-mail and password (the sandbox's Open API login), consent; the code exchange creates the
subscriber's connection holding the Pelcro JWT. Real HTTP against the test gateway and the
sandbox, the HTML forms driven like a browser (no JavaScript needed).
"""

from __future__ import annotations

import base64
import re
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from oauth2_provider.models import get_access_token_model

from accounts.models import AuthorizationConsent, Connection, ConsentCredential, Site, Subscriber, SubscriberCredential
from accounts.tokens import checksum
from devtools.oauth_client import (
    DEFAULT_REDIRECT_URI,
    authorize,
    authorize_url,
    exchange_code,
    obtain_open_tokens,
    open_url,
    parse_forms,
    pkce_pair,
    redirect_params,
    refresh,
    register_client,
    signed_in,
    subscriber_step,
)
from tests.support.mcp import PASSWORDS
from tests.support.sandbox import READER, SECOND, SUBSCRIBERS

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
TOOLS_LIST = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": "2025-06-18",
}
WEEKLY = next(s for s in SUBSCRIBERS if s["site_id"] == 15)


def mcp_post(url: str, token: str | None, body: dict) -> httpx.Response:
    headers = dict(HEADERS)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(url, json=body, headers=headers, timeout=30)


def browser(gateway_url: str) -> httpx.Client:
    return httpx.Client(base_url=gateway_url, timeout=30, follow_redirects=False)


def start(session: httpx.Client, env, client_id: str, **params) -> tuple[httpx.Response, str]:
    """GET the authorize URL for the Open server; the page and the PKCE verifier."""
    verifier, challenge = pkce_pair()
    params.setdefault("resource", open_url(env.gateway.url))
    page = session.get(authorize_url(env.gateway.url, client_id, challenge, **params))
    return page, verifier


def post_step(session: httpx.Client, page: httpx.Response, **fields) -> httpx.Response:
    _step, form = subscriber_step(page)
    return session.post(form["action"], data={**form["hidden"], **fields})


def post_link(session: httpx.Client, page: httpx.Response, action: str) -> httpx.Response:
    """Press one of the page's small buttons (Cancel, another publication)."""
    _step, form = subscriber_step(page)
    return session.post(form["action"], data={**form["hidden"], "action": action})


def signed_in_to_consent(session, env, client_id: str, subscriber=READER, **params):
    page, verifier = start(session, env, client_id, **params)
    page = post_step(session, page, site_id=str(subscriber["site_id"]))
    page = post_step(session, page, email=subscriber["email"], password=subscriber["password"])
    assert subscriber_step(page)[0] == "consent", page.text[:500]
    return page, verifier


# --- the whole flow, from discovery ------------------------------------------------------------


@pytest.mark.sqlite
def test_discovery_registration_sign_in_consent_token_tools(mcp_env, fresh_sbx):
    base = mcp_env.gateway.url
    # 1. The Open server's 401 points to its own metadata, which names the authorization server.
    answer = mcp_post(base + "/open", None, INIT)
    assert answer.status_code == 401
    metadata_url = re.search(r'resource_metadata="([^"]+)"', answer.headers["WWW-Authenticate"]).group(1)
    resource_doc = httpx.get(metadata_url, timeout=10).json()
    assert resource_doc["resource"] == base + "/open"
    issuer = resource_doc["authorization_servers"][0]
    server_doc = httpx.get(issuer + "/.well-known/oauth-authorization-server", timeout=10).json()
    # 2. Dynamic client registration.
    registration = httpx.post(
        server_doc["registration_endpoint"],
        json={
            "client_name": "Subscriber's Assistant",
            "redirect_uris": [DEFAULT_REDIRECT_URI],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        },
        timeout=10,
    )
    assert registration.status_code == 201
    client_id = registration.json()["client_id"]
    # 3. The authorization page: publication, then e-mail and password, then consent.
    verifier, challenge = pkce_pair()
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": DEFAULT_REDIRECT_URI,
        "state": "s-42",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "scope": "read write",
        "resource": resource_doc["resource"],
    }
    with browser(base) as session:
        page = session.get(server_doc["authorization_endpoint"], params=query)
        assert page.status_code == 200 and subscriber_step(page)[0] == "site"
        assert "Subscriber&#x27;s Assistant" in page.text and "Unverified · registered itself" in page.text
        assert "an app on this computer (127.0.0.1:47123)" in page.text
        assert "Acme Daily" in page.text
        page = post_step(session, page, site_id=str(READER["site_id"]))
        assert subscriber_step(page)[0] == "sign_in" and "Acme Daily" in page.text
        wrong = post_step(session, page, email=READER["email"], password="Wrong-Password-1!")
        assert wrong.status_code == 200 and subscriber_step(wrong)[0] == "sign_in"
        assert "do not match an account of this publication" in wrong.text
        assert "Wrong-Password-1!" not in wrong.text
        consent = post_step(session, wrong, email=READER["email"], password=READER["password"])
        assert subscriber_step(consent)[0] == "consent"
        assert READER["email"] in consent.text and "Acme Daily" in consent.text
        assert "Manage subscriptions and payments" in consent.text and "Read only" in consent.text
        assert "before it moves money or does something that cannot be undone" in consent.text
        assert READER["password"] not in consent.text
        # Nothing of the Pelcro sign-in is in the page or a cookie.
        jwt_like = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")
        assert not jwt_like.search(consent.text)
        assert not any(jwt_like.search(value) for value in session.cookies.values())
        answer = post_step(session, consent, access="read_write", allow="true")
    params = redirect_params(answer)
    assert (
        params["state"] == "s-42"
        and params["iss"] == issuer
        and answer.headers["location"].startswith(DEFAULT_REDIRECT_URI)
    )
    # The consent keeps the JWT encrypted until the code is redeemed.
    consent_row = AuthorizationConsent.objects.get(application__client_id=client_id)
    subscriber = Subscriber.objects.get(site__site_id=READER["site_id"], email=READER["email"])
    assert consent_row.user_id == subscriber.user_id and consent_row.account_id == subscriber.site.account_id
    pending = ConsentCredential.objects.get(consent=consent_row)
    assert not pending.jwt_encrypted.startswith("eyJ")
    # 4. The code for a token, bound to the Open server.
    tokens = httpx.post(
        server_doc["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": params["code"],
            "code_verifier": verifier,
            "redirect_uri": DEFAULT_REDIRECT_URI,
            "client_id": client_id,
            "resource": resource_doc["resource"],
        },
        timeout=10,
    )
    assert tokens.status_code == 200, tokens.text
    token = tokens.json()
    assert token["scope"] == "read write"
    connection = Connection.objects.get(application__client_id=client_id)
    assert connection.user_id == subscriber.user_id and connection.account_id == subscriber.site.account_id
    assert connection.access == Connection.Access.READ_WRITE and connection.confirm_writes is True
    credential = SubscriberCredential.objects.get(connection=connection)
    assert credential.get_jwt().startswith("eyJ") and not ConsentCredential.objects.exists()
    access_token = get_access_token_model().objects.get(token_checksum=checksum(token["access_token"]))
    assert access_token.resource == [base + "/open"]
    # 5. The Open server takes it: initialize, tools/list (the tools built so far).
    opened = mcp_post(base + "/open", token["access_token"], INIT)
    assert opened.status_code == 200 and opened.json()["result"]["serverInfo"]
    tools = mcp_post(base + "/open", token["access_token"], TOOLS_LIST).json()["result"]["tools"]
    assert {"get_site", "list_plans", "get_my_profile"} <= {tool["name"] for tool in tools}
    profile = mcp_post(
        base + "/open",
        token["access_token"],
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "get_my_profile", "arguments": {}}},
    ).json()["result"]
    assert not profile.get("isError") and READER["email"] in str(profile["structuredContent"])
    # 6. The Core server refuses it.
    refused = mcp_post(base + "/", token["access_token"], INIT)
    assert refused.status_code == 401 and "invalid_token" in refused.headers["WWW-Authenticate"]
    # 7. Refresh works, bound to the Open server again.
    renewed = refresh(base, client_id, token["refresh_token"], resource=open_url(base))
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["scope"] == "read write"
    assert mcp_post(base + "/open", renewed.json()["access_token"], INIT).status_code == 200
    assert mcp_post(base + "/open", token["access_token"], INIT).status_code == 401  # rotated out
    again = refresh(base, client_id, renewed.json()["refresh_token"], resource=None)  # resource inherited
    assert again.status_code == 200 and mcp_post(base + "/open", again.json()["access_token"], INIT).status_code == 200


def test_read_only_consent_gives_the_read_scope(mcp_env):
    tokens = obtain_open_tokens(mcp_env.gateway.url, SECOND["site_id"], SECOND["email"], SECOND["password"], "read")
    assert tokens["scope"] == "read"
    connection = Connection.objects.get(application__client_id=tokens["client_id"])
    assert connection.access == Connection.Access.READ and connection.confirm_writes is True
    assert mcp_post(mcp_env.gateway.url + "/open", tokens["access_token"], INIT).status_code == 200


def test_an_app_asking_read_only_gets_no_write_choice(mcp_env):
    client = register_client(mcp_env.gateway.url)
    with browser(mcp_env.gateway.url) as session:
        consent, _verifier = signed_in_to_consent(session, mcp_env, client["client_id"], scope="read")
        assert "Manage subscriptions and payments" not in consent.text
        refused = post_step(session, consent, access="read_write", allow="true")  # an edited page
        assert refused.status_code == 400 and "This app asked for read-only access" in refused.text
        params = redirect_params(post_step(session, refused, access="read", allow="true"))
    assert "code" in params


def test_a_site_hint_preselects_the_publication(mcp_env):
    client = register_client(mcp_env.gateway.url)
    with browser(mcp_env.gateway.url) as session:
        page, verifier = start(session, mcp_env, client["client_id"], site_id=str(WEEKLY["site_id"]))
        assert subscriber_step(page)[0] == "sign_in" and "Acme Weekly" in page.text
        # "Choose another publication" goes back to the list.
        listed = post_link(session, page, "change_site")
        assert subscriber_step(listed)[0] == "site"
        page = post_step(session, listed, site_id=str(WEEKLY["site_id"]))
        consent = post_step(session, page, email=WEEKLY["email"], password=WEEKLY["password"])
        params = redirect_params(post_step(session, consent, access="read", allow="true"))
    token = exchange_code(
        mcp_env.gateway.url, client["client_id"], params["code"], verifier, resource=open_url(mcp_env.gateway.url)
    )
    assert token.status_code == 200
    connection = Connection.objects.get(application__client_id=client["client_id"])
    assert connection.user.subscriber.site.site_id == WEEKLY["site_id"]


def test_a_disabled_or_unknown_site(mcp_env):
    Site.objects.filter(site_id=27).update(subscriber_access_enabled=False)
    client = register_client(mcp_env.gateway.url)
    with browser(mcp_env.gateway.url) as session:
        for hint in ("27", "999999", "x"):
            page, _verifier = start(session, mcp_env, client["client_id"], site_id=hint)
            assert page.status_code == 200 and subscriber_step(page)[0] == "site"
            assert "does not offer sign-in for apps here" in page.text
            assert "Other Gazette" not in page.text and "Acme Daily" in page.text
        # A disabled site sent anyway (an edited page) is refused with the list again.
        refused = post_step(session, page, site_id="27")
        assert refused.status_code == 400 and "does not offer sign-in for apps here" in refused.text
        # Switched off after the sign-in, before Allow: the app gets access_denied.
        consent, _verifier = signed_in_to_consent(session, mcp_env, client["client_id"])
        Site.objects.filter(site_id=READER["site_id"]).update(subscriber_access_enabled=False)
        params = redirect_params(post_step(session, consent, access="read", allow="true"))
    assert params["error"] == "access_denied" and "code" not in params


def test_pelcro_lock_out_shows_its_wait(mcp_env, fresh_sbx):
    fresh_sbx.configure(login_max_attempts=2)
    client = register_client(mcp_env.gateway.url)
    with browser(mcp_env.gateway.url) as session:
        page, _verifier = start(session, mcp_env, client["client_id"], site_id=str(SECOND["site_id"]))
        for attempt in range(2):
            page = post_step(session, page, email=SECOND["email"], password=f"Wrong-{attempt}-Pass!")
            assert page.status_code == 200 and "do not match" in page.text
        locked = post_step(session, page, email=SECOND["email"], password=SECOND["password"])
        assert locked.status_code == 429 and subscriber_step(locked)[0] == "sign_in"
        wait = re.search(r"Too many sign-in attempts for this account\. Try again in (\d+) seconds\.", locked.text)
        assert wait and 1 <= int(wait.group(1)) <= 300


def test_cancel_at_every_step_returns_access_denied_with_iss(mcp_env, fresh_sbx):
    client = register_client(mcp_env.gateway.url)
    with browser(mcp_env.gateway.url) as session:
        page, _verifier = start(session, mcp_env, client["client_id"], state="c-1")
        answers = [post_link(session, page, "cancel")]
        page, _verifier = start(session, mcp_env, client["client_id"], state="c-1", site_id="14")
        answers.append(post_link(session, page, "cancel"))
        consent, _verifier = signed_in_to_consent(session, mcp_env, client["client_id"], state="c-1")
        since = fresh_sbx.last_seq()
        answers.append(post_step(session, consent, allow=""))
        # Cancelled after signing in: the unused Pelcro sign-in is logged out there.
        assert [entry["path"] for entry in fresh_sbx.log(since, api="open")] == ["/api/v1/sdk/auth/logout"]
    for answer in answers:
        params = redirect_params(answer)
        assert params["error"] == "access_denied" and params["state"] == "c-1"
        assert params["iss"] == mcp_env.gateway.url
    assert (
        not AuthorizationConsent.objects.exists()
        and not Connection.objects.filter(application__client_id=client["client_id"]).exists()
    )


def test_the_consent_page_allows_the_apps_redirect_in_form_action(mcp_env):
    client = register_client(mcp_env.gateway.url, redirect_uris=["http://localhost:53682/cb"])
    with browser(mcp_env.gateway.url) as session:
        page, _verifier = start(session, mcp_env, client["client_id"], redirect_uri="http://localhost:53682/cb")
        policy = page.headers["Content-Security-Policy"]
        form_action = next(d for d in policy.split(";") if d.strip().startswith("form-action"))
        assert "http://localhost:53682" in form_action and "https:" not in form_action.split()


def test_errors_before_the_page_follow_the_operator_rules(mcp_env):
    """A self-registered https redirect URI gets errors found before the person decided as
    an error page (RFC 9700 §4.11.2); a loopback one gets the redirect, with `iss`."""
    https_client = register_client(mcp_env.gateway.url, redirect_uris=["https://app.example.com/cb"])
    loopback = register_client(mcp_env.gateway.url)
    with browser(mcp_env.gateway.url) as session:
        shown, _ = start(
            session, mcp_env, https_client["client_id"], redirect_uri="https://app.example.com/cb", prompt="none"
        )
        assert shown.status_code == 400 and "login_required" in shown.text
        sent, _ = start(session, mcp_env, loopback["client_id"], prompt="none", state="p-1")
        params = redirect_params(sent)
        assert params["error"] == "login_required" and params["iss"] == mcp_env.gateway.url
        _verifier, challenge = pkce_pair()
        url = authorize_url(
            mcp_env.gateway.url, loopback["client_id"], challenge, resource=open_url(mcp_env.gateway.url)
        )
        both = session.get(url + "&" + urlencode({"resource": mcp_env.url}))
        assert redirect_params(both)["error"] == "invalid_target"
        assert "A token is for one server" in redirect_params(both)["error_description"]


# --- one server per sign-in kind ------------------------------------------------------------


def test_an_operator_session_does_not_satisfy_the_subscriber_flow(mcp_env):
    operator = signed_in(mcp_env.gateway.url, "demo", PASSWORDS["demo"])
    try:
        client = register_client(mcp_env.gateway.url)
        page, _verifier = start(operator, mcp_env, client["client_id"])
        assert page.status_code == 200 and subscriber_step(page)[0] == "site"
        assert "demo" not in re.sub(r"<[^>]+>", "", page.text).split()  # the operator is not named
    finally:
        operator.close()


def test_a_subscriber_session_does_not_satisfy_the_operator_flow(mcp_env):
    client = register_client(mcp_env.gateway.url)
    with browser(mcp_env.gateway.url) as session:
        signed_in_to_consent(session, mcp_env, client["client_id"])  # the subscriber is signed in now
        verifier, challenge = pkce_pair()
        page = session.get(authorize_url(mcp_env.gateway.url, client["client_id"], challenge))  # the Core server
        assert page.status_code == 302 and urlsplit(page.headers["location"]).path == "/login"
        assert session.get("/connections").status_code == 302


def test_an_operator_can_never_get_an_open_token(mcp_env):
    """The operators' consent binds grants to the Core server; its code exchanged or refreshed
    for /open is refused with invalid_target naming the server it is for."""
    client = register_client(mcp_env.gateway.url)
    operator = signed_in(mcp_env.gateway.url, "demo", PASSWORDS["demo"])
    try:
        result = authorize(operator, mcp_env.gateway.url, client["client_id"], "acme")
        # The operator's consent form, re-sent with an Open server query, is not a subscriber's.
        verifier, challenge = pkce_pair()
        core_page = operator.get(authorize_url(mcp_env.gateway.url, client["client_id"], challenge))
        open_query = authorize_url(
            mcp_env.gateway.url, client["client_id"], challenge, resource=open_url(mcp_env.gateway.url)
        )
        form = next(f for f in parse_forms(core_page.text) if f["id"] == "consent-form")
        replay = operator.post(open_query, data={**form["hidden"], "allow": "true", "access": "read"})
        assert replay.status_code == 400 and "no longer waiting" in replay.text
    finally:
        operator.close()
    refused = exchange_code(
        mcp_env.gateway.url,
        client["client_id"],
        result["code"],
        result["verifier"],
        resource=open_url(mcp_env.gateway.url),
    )
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_target"
    assert "the Core server" in refused.json()["error_description"]
    tokens = exchange_code(mcp_env.gateway.url, client["client_id"], result["code"], result["verifier"])
    # The code was not spent by the refused attempt? DOT deletes it only on success.
    assert tokens.status_code == 200, tokens.text
    again = refresh(
        mcp_env.gateway.url, client["client_id"], tokens.json()["refresh_token"], resource=open_url(mcp_env.gateway.url)
    )
    assert again.status_code == 400 and again.json()["error"] == "invalid_target"


def test_a_subscriber_can_never_get_a_core_token(mcp_env):
    tokens = obtain_open_tokens(mcp_env.gateway.url, READER["site_id"], READER["email"], READER["password"])
    refused = refresh(mcp_env.gateway.url, tokens["client_id"], tokens["refresh_token"], resource=mcp_env.url)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_target"
    assert "the subscriber server" in refused.json()["error_description"]
    client = register_client(mcp_env.gateway.url)
    with browser(mcp_env.gateway.url) as session:
        _consent, verifier = signed_in_to_consent(session, mcp_env, client["client_id"])
        params = redirect_params(post_step(session, _consent, access="read", allow="true"))
    refused = exchange_code(mcp_env.gateway.url, client["client_id"], params["code"], verifier)  # resource = /
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_target"
    assert "the subscriber server" in refused.json()["error_description"]


# --- refresh rules -----------------------------------------------------------------------------


@pytest.mark.sqlite
def test_refresh_stops_when_the_site_or_subscriber_goes(mcp_env):
    base = mcp_env.gateway.url
    tokens = obtain_open_tokens(base, READER["site_id"], READER["email"], READER["password"], "read")
    Site.objects.filter(site_id=READER["site_id"]).update(subscriber_access_enabled=False)
    refused = refresh(base, tokens["client_id"], tokens["refresh_token"], resource=open_url(base))
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    Site.objects.filter(site_id=READER["site_id"]).update(subscriber_access_enabled=True)
    renewed = refresh(base, tokens["client_id"], tokens["refresh_token"], resource=open_url(base))
    assert renewed.status_code == 200, renewed.text
    connection = Connection.objects.get(application__client_id=tokens["client_id"])
    SubscriberCredential.objects.filter(connection=connection).delete()  # the Pelcro sign-in ended
    refused = refresh(base, tokens["client_id"], renewed.json()["refresh_token"], resource=open_url(base))
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"


# --- the pending request stays on the server -----------------------------------------------------


def test_csrf_and_pending_request_tampering(mcp_env):
    client = register_client(mcp_env.gateway.url)
    other = register_client(mcp_env.gateway.url, redirect_uris=["http://127.0.0.1:47999/evil"])
    with browser(mcp_env.gateway.url) as session:
        consent, _verifier = signed_in_to_consent(session, mcp_env, client["client_id"], state="t-1")
        _step, form = subscriber_step(consent)
        # No CSRF token: refused.
        no_csrf = {k: v for k, v in form["hidden"].items() if k != "csrfmiddlewaretoken"}
        assert session.post(form["action"], data={**no_csrf, "access": "read", "allow": "true"}).status_code == 403
        # A made-up pending id: nothing to decide.
        made_up = session.post(form["action"], data={**form["hidden"], "pending": "x" * 22, "allow": "true"})
        assert made_up.status_code == 400 and "no longer waiting" in made_up.text
        # Extra OAuth values in the form or a different query change nothing: the session's win.
        verifier2, challenge2 = pkce_pair()
        tampered_action = authorize_url(
            mcp_env.gateway.url,
            other["client_id"],
            challenge2,
            redirect_uri="http://127.0.0.1:47999/evil",
            resource=open_url(mcp_env.gateway.url),
            state="evil",
        )
        answer = session.post(
            tampered_action,
            data={
                **form["hidden"],
                "access": "read",
                "allow": "true",
                "client_id": other["client_id"],
                "redirect_uri": "http://127.0.0.1:47999/evil",
                "state": "evil",
                "code_challenge": challenge2,
            },
        )
        assert answer.headers["location"].startswith(DEFAULT_REDIRECT_URI)
        params = redirect_params(answer)
        assert params["state"] == "t-1"
        # One decision per pending request: sent again, the same answer (no second code).
        replay = session.post(form["action"], data={**form["hidden"], "access": "read", "allow": "true"})
        assert replay.status_code == 302 and replay.headers["location"] == answer.headers["location"]
    # Another browser cannot use this browser's pending id.
    with browser(mcp_env.gateway.url) as stranger:
        stranger.get("/open/sign-in")
        foreign = stranger.post(
            form["action"],
            data={
                "csrfmiddlewaretoken": stranger.cookies["csrftoken"],
                "pending": form["hidden"]["pending"],
                "action": "consent",
                "allow": "true",
                "access": "read",
            },
        )
        assert foreign.status_code == 400 and "no longer waiting" in foreign.text
    assert (
        exchange_code(
            mcp_env.gateway.url,
            other["client_id"],
            params["code"],
            verifier2,
            redirect_uri="http://127.0.0.1:47999/evil",
            resource=open_url(mcp_env.gateway.url),
        ).status_code
        == 400
    )


@pytest.fixture(scope="module")
def verbose_gateway(django_db_setup, django_db_blocker, unlimited_sandbox):
    from tests.test_security_logs import start_verbose_gateway

    with django_db_blocker.unblock():
        server = start_verbose_gateway(unlimited_sandbox)
    yield server
    server.stop()


def test_no_password_jwt_or_token_in_the_gateways_log(verbose_gateway, demo_users, fresh_sbx):
    """The whole flow (with a wrong password, a refresh and a tool call) against a gateway
    logging at DEBUG with its access log: none of the secrets is in its log."""
    base = verbose_gateway.url
    start_at = len(verbose_gateway.log_text())
    client = register_client(base)
    with browser(base) as session:
        verifier, challenge = pkce_pair()
        page = session.get(authorize_url(base, client["client_id"], challenge, resource=open_url(base)))
        page = post_step(session, page, site_id=str(READER["site_id"]))
        page = post_step(session, page, email=READER["email"], password="Wrong-Secret-77!")
        consent = post_step(session, page, email=READER["email"], password=READER["password"])
        params = redirect_params(post_step(session, consent, access="read_write", allow="true"))
    tokens = exchange_code(base, client["client_id"], params["code"], verifier, resource=open_url(base)).json()
    renewed = refresh(base, client["client_id"], tokens["refresh_token"], resource=open_url(base)).json()
    assert mcp_post(base + "/open", renewed["access_token"], INIT).status_code == 200
    jwt = SubscriberCredential.objects.get(connection__application__client_id=client["client_id"]).get_jwt()
    log = verbose_gateway.log_text()[start_at:]
    assert "/oauth/authorize" in log  # the access log did record the flow
    for secret in (
        jwt,
        jwt.split(".")[2],  # the signature alone
        READER["password"],
        "Wrong-Secret-77!",
        params["code"],
        verifier,
        tokens["access_token"],
        tokens["refresh_token"],
        renewed["access_token"],
        renewed["refresh_token"],
    ):
        assert secret not in log
        assert base64.b64encode(secret.encode()).decode() not in log
