"""The authorization endpoint and its consent screen, against a live gateway."""

import httpx
import pytest
from oauth2_provider.models import get_grant_model

from devtools.oauth_client import (
    DEFAULT_REDIRECT_URI,
    authorize,
    authorize_url,
    consent_form,
    exchange_code,
    parse_forms,
    pkce_pair,
    redirect_params,
    register_client,
    signed_in,
    submit_consent,
)
from tests.support.csp import csp_directives
from tests.support.oauth import gateway_principal

DEMO = ("demo", "pelcro-demo-2026")
ALICE = ("alice", "pelcro-alice-2026")  # a plain member of globex


@pytest.fixture
def client_id(gateway_server, demo_users):
    return register_client(gateway_server.url, client_name="Test Assistant")["client_id"]


@pytest.fixture
def demo_session(gateway_server, demo_users):
    session = signed_in(gateway_server.url, *DEMO)
    yield session
    session.close()


def test_signed_out_person_is_sent_to_login_and_back(gateway_server, client_id):
    _, challenge = pkce_pair()
    url = authorize_url(gateway_server.url, client_id, challenge)
    response = httpx.get(gateway_server.url + url)
    assert response.status_code == 302
    assert response.headers["location"].startswith("/login?next=")
    assert httpx.URL(response.headers["location"]).params["next"] == url


def test_consent_page_shows_app_redirect_and_only_own_accounts(gateway_server, client_id, demo_session):
    _, challenge = pkce_pair()
    page = demo_session.get(authorize_url(gateway_server.url, client_id, challenge))
    assert page.status_code == 200
    assert "Test Assistant" in page.text
    assert "registered itself" in page.text
    assert "127.0.0.1:47123" in page.text  # where the browser goes next
    form = consent_form(page.text)
    assert sorted(r["data-slug"] for r in form["radios"]["account"]) == ["acme", "other"]  # not globex
    assert [r["value"] for r in form["radios"]["access"]] == ["read_write", "read"]
    assert "checked" in next(r for r in form["radios"]["access"] if r["value"] == "read_write")
    # Not frameable, and the form may only post here, to the client's redirect origin and
    # on to the native app schemes a callback may forward to (Chromium checks every hop).
    assert page.headers["x-frame-options"] == "DENY"
    csp = csp_directives(page.headers["content-security-policy"])
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["form-action"] == [
        "'self'",
        "http://127.0.0.1:47123",
        "cursor:",
        "vscode:",
        "vscode-insiders:",
        "windsurf:",
        "claude:",
    ]
    assert page.headers["cache-control"].startswith("no-store") or "no-store" in page.headers["cache-control"]


def test_single_account_is_preselected(gateway_server, client_id):
    session = signed_in(gateway_server.url, *ALICE)
    _, challenge = pkce_pair()
    page = session.get(authorize_url(gateway_server.url, client_id, challenge))
    session.close()
    (radio,) = consent_form(page.text)["radios"]["account"]
    assert radio["data-slug"] == "globex" and "checked" in radio


def test_authorize_redirects_with_code_state_and_issuer(gateway_server, client_id, demo_session):
    result = authorize(demo_session, gateway_server.url, client_id, "acme", state="xyz-123")
    assert result["state"] == "xyz-123"
    assert result["iss"] == gateway_server.url  # RFC 9207, identical to the metadata issuer
    assert len(result["code"]) >= 20


def test_cancel_returns_access_denied_to_the_app(gateway_server, client_id, demo_session):
    _, challenge = pkce_pair()
    page = demo_session.get(authorize_url(gateway_server.url, client_id, challenge, state="s1"))
    params = redirect_params(submit_consent(demo_session, page, None, allow=False))
    assert params["error"] == "access_denied" and params["state"] == "s1"
    assert params["iss"] == gateway_server.url  # RFC 9207: on error responses too
    assert "code" not in params


TAMPERED = {
    "redirect_uri": "https://attacker.example/cb",
    "client_id": "someone-else",
    "code_challenge": "A" * 43,
    "code_challenge_method": "plain",
    "scope": "read write admin",
    "resource": "https://attacker.example/mcp",
    "state": "forged",
    "response_type": "token",
}


@pytest.mark.parametrize("allow", [False, True])
def test_the_consent_post_takes_the_request_from_the_server_not_the_page(
    gateway_server, client_id, demo_session, allow
):
    """Every OAuth value of the consent POST comes from the validated request kept on the
    server: edited or added form fields change nothing (issue 13, item 6)."""
    url = gateway_server.url
    verifier, challenge = pkce_pair()
    page = demo_session.get(authorize_url(url, client_id, challenge, state="s1"))
    form = consent_form(page.text)
    # Nothing else to edit: `confirm_writes` is the unticked value of a choice on the page
    # (the "Ask me before…" box), not part of the OAuth request.
    assert set(form["hidden"]) == {"csrfmiddlewaretoken", "pending", "confirm_writes"}
    data = {**form["hidden"], **TAMPERED, "access": "read_write", "allow": "true" if allow else ""}
    data["account"] = next(r["value"] for r in form["radios"]["account"] if r["data-slug"] == "acme")
    response = demo_session.post(form["action"], data=data)
    assert response.headers["location"].startswith(DEFAULT_REDIRECT_URI + "?")
    params = redirect_params(response)
    assert params["state"] == "s1"
    if not allow:
        assert params["error"] == "access_denied"
        return
    # The code is bound to the challenge, client, scope and resource of the real request.
    token = exchange_code(url, client_id, params["code"], verifier)
    assert token.status_code == 200, token.text
    assert token.json()["scope"] == "read write"
    assert gateway_principal(url, token.json()["access_token"]).client_id == client_id


def test_a_consent_answer_counts_once(gateway_server, client_id, demo_session):
    _, challenge = pkce_pair()
    page = demo_session.get(authorize_url(gateway_server.url, client_id, challenge))
    first = submit_consent(demo_session, page, "acme")
    assert "code" in redirect_params(first)
    # A resubmission (Back, then Allow again; or a double click) gets the same answer: the
    # one code the decision made, never a second one (tests/test_open_breaking_signin.py).
    again = submit_consent(demo_session, page, "acme", access="read")
    assert again.status_code == 302 and again.headers["location"] == first.headers["location"]
    assert get_grant_model().objects.filter(application__client_id=client_id).count() == 1


def test_a_consent_post_from_another_session_is_refused(gateway_server, client_id, demo_session, demo_users):
    _, challenge = pkce_pair()
    page = demo_session.get(authorize_url(gateway_server.url, client_id, challenge))
    other = signed_in(gateway_server.url, *DEMO)
    try:
        form = consent_form(page.text)
        other_page = other.get("/oauth/authorize")  # any page, for the other session's CSRF cookie
        token = other.cookies.get("csrftoken") or ""
        response = other.post(
            form["action"],
            data={**form["hidden"], "csrfmiddlewaretoken": token, "account": "1", "access": "read", "allow": "true"},
        )
        assert other_page.status_code in (200, 400)
        assert response.status_code in (400, 403) and "location" not in response.headers
    finally:
        other.close()


def test_member_may_grant_read_only_but_not_write(gateway_server, client_id):
    session = signed_in(gateway_server.url, *ALICE)
    _, challenge = pkce_pair()
    page = session.get(authorize_url(gateway_server.url, client_id, challenge))
    refused = submit_consent(session, page, "globex", access="read_write")
    assert refused.status_code == 400
    assert "read-only" in refused.text and "location" not in refused.headers
    granted = redirect_params(submit_consent(session, page, "globex", access="read"))
    session.close()
    assert "code" in granted


def test_account_outside_the_users_memberships_is_refused(gateway_server, client_id, demo_users):
    from accounts.models import Account

    session = signed_in(gateway_server.url, *ALICE)
    _, challenge = pkce_pair()
    page = session.get(authorize_url(gateway_server.url, client_id, challenge))
    data = dict(
        consent_form(page.text)["hidden"], allow="true", access="read", account=str(Account.objects.get(slug="acme").pk)
    )
    response = session.post(consent_form(page.text)["action"], data=data)
    session.close()
    assert response.status_code == 400 and "location" not in response.headers


def test_person_without_accounts_gets_a_clear_page(gateway_server, client_id, demo_users):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user("loner", "loner@example.com", "loner-password-2026")
    session = signed_in(gateway_server.url, "loner", "loner-password-2026")
    _, challenge = pkce_pair()
    page = session.get(authorize_url(gateway_server.url, client_id, challenge, state="s2"))
    assert page.status_code == 403
    assert "don't belong to any Pelcro account" in page.text
    form = next(f for f in parse_forms(page.text) if "pending" in f["hidden"])
    back = session.post(form["action"], data={**form["hidden"], "allow": ""})
    session.close()
    assert redirect_params(back)["error"] == "access_denied"


def test_consent_post_requires_csrf(gateway_server, client_id, demo_session):
    _, challenge = pkce_pair()
    page = demo_session.get(authorize_url(gateway_server.url, client_id, challenge))
    form = consent_form(page.text)
    data = {k: v for k, v in form["hidden"].items() if k != "csrfmiddlewaretoken"}
    response = demo_session.post(
        form["action"],
        data={**data, "allow": "true", "access": "read", "account": form["radios"]["account"][0]["value"]},
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    "overrides, error",
    [
        ({"challenge": None, "method": None}, "invalid_request"),  # PKCE missing
        ({"method": "plain"}, "invalid_request"),  # PKCE plain refused
        ({"method": None}, "invalid_request"),  # no method means plain: refused
        ({"resource": "https://evil.example/mcp"}, "invalid_target"),  # RFC 8707: another resource
        ({"scope": 'read "admin'}, "invalid_scope"),  # not a scope token (RFC 6749 §3.3); unknown ones are ignored
        ({"prompt": "none"}, "consent_required"),
    ],
)
def test_bad_authorization_requests_go_back_to_the_app_with_an_error(
    gateway_server, client_id, demo_session, overrides, error
):
    _, challenge = pkce_pair()
    kwargs = {"challenge": challenge, "state": "st", **overrides}
    response = demo_session.get(authorize_url(gateway_server.url, client_id, kwargs.pop("challenge"), **kwargs))
    params = redirect_params(response)
    assert params["error"] == error
    assert params["state"] == "st"
    assert params["iss"] == gateway_server.url
    assert response.headers["location"].startswith(DEFAULT_REDIRECT_URI)


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1:47123/other-path",
        "https://evil.example/callback",
        DEFAULT_REDIRECT_URI + "?extra=1",
    ],
)
def test_unregistered_redirect_uri_gets_an_error_page_not_a_redirect(
    gateway_server, client_id, demo_session, redirect_uri
):
    _, challenge = pkce_pair()
    response = demo_session.get(authorize_url(gateway_server.url, client_id, challenge, redirect_uri=redirect_uri))
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "cannot continue" in response.text


def test_loopback_redirect_may_use_any_port(gateway_server, client_id, demo_session):
    # RFC 8252 §7.3: native apps bind an ephemeral port at request time.
    result = authorize(
        demo_session, gateway_server.url, client_id, "acme", redirect_uri="http://127.0.0.1:50999/callback"
    )
    assert "code" in result


def test_unknown_client_gets_an_error_page(gateway_server, demo_session):
    _, challenge = pkce_pair()
    response = demo_session.get(authorize_url(gateway_server.url, "no-such-client", challenge))
    assert response.status_code == 400 and "location" not in response.headers


@pytest.fixture
def web_client_id(gateway_server, demo_users):
    """A self-registered client whose redirect URI is an https site (anyone could register it)."""
    return register_client(gateway_server.url, client_name="web app", redirect_uris=["https://app.example/cb"])[
        "client_id"
    ]


@pytest.mark.parametrize(
    "overrides",
    [
        {"method": "plain"},  # a bad request
        {"resource": "https://evil.example/mcp"},  # another resource
        {"prompt": "none"},  # no interaction allowed
    ],
)
def test_errors_before_consent_never_redirect_to_a_self_registered_https_site(
    gateway_server, web_client_id, demo_session, overrides
):
    """RFC 9700 §4.11.2: otherwise this server redirects anyone to any site that registered itself."""
    _, challenge = pkce_pair()
    response = demo_session.get(
        authorize_url(gateway_server.url, web_client_id, challenge, redirect_uri="https://app.example/cb", **overrides)
    )
    assert response.status_code == 400 and "location" not in response.headers
    assert "cannot continue" in response.text


def test_a_signed_out_visitor_with_prompt_none_is_not_redirected_either(gateway_server, web_client_id):
    _, challenge = pkce_pair()
    response = httpx.get(
        gateway_server.url
        + authorize_url(
            gateway_server.url, web_client_id, challenge, redirect_uri="https://app.example/cb", prompt="none"
        )
    )
    assert response.status_code == 400 and "location" not in response.headers


def test_after_the_person_decided_the_answer_goes_to_the_app(gateway_server, web_client_id, demo_session):
    _, challenge = pkce_pair()
    page = demo_session.get(
        authorize_url(gateway_server.url, web_client_id, challenge, redirect_uri="https://app.example/cb")
    )
    response = submit_consent(demo_session, page, "acme", allow=False)
    assert response.headers["location"].startswith("https://app.example/cb?")
    assert redirect_params(response)["error"] == "access_denied"


def test_a_client_registered_by_an_administrator_gets_its_errors(gateway_server, demo_session, demo_users):
    from oauth2_provider.models import get_application_model

    Application = get_application_model()
    app = Application.objects.create(
        name="Admin-made",
        client_type=Application.CLIENT_PUBLIC,
        redirect_uris="https://trusted.example/cb",
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        client_secret="",
        registration_source=Application.RegistrationSource.MANUAL,
    )
    _, challenge = pkce_pair()
    response = demo_session.get(
        authorize_url(
            gateway_server.url, app.client_id, challenge, redirect_uri="https://trusted.example/cb", prompt="none"
        )
    )
    assert redirect_params(response)["error"] == "consent_required"
