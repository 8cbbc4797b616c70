"""OAuth test helpers and fixtures, reusable by every feature's tests.

`obtain_tokens(gateway_url, username, password, account_slug, access=...)` runs the real
flow over HTTP against a live gateway — dynamic client registration, sign-in, the consent
form (parsed and submitted like a browser), PKCE S256, code exchange — and returns the
token response plus the client's registration. `gateway_principal(gateway_url, token)`
checks a token the way that gateway's MCP endpoint does. The smaller helpers it is built from
(`register_client`, `signed_in`, `authorize`, `exchange_code`, `refresh`) are here too for
tests that need to bend one step.

Fixtures: `demo_users` seeds the demo accounts, sites, keys and users
(`accounts.demo.seed_demo()`) into the test database and returns the spec.
"""

import base64
import hashlib
import os
import secrets
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import redis
from django.conf import settings as django_settings
from django.contrib.auth.hashers import ScryptPasswordHasher

from tests.fixtures_servers import start_gateway

# Every test registers clients from 127.0.0.1 against the session's gateways; the
# per-IP registration cap itself is tested on a dedicated gateway (test_oauth_dcr.py).
os.environ.setdefault("DCR_PER_IP_PER_HOUR", "100000")

DEFAULT_REDIRECT_URI = "http://127.0.0.1:47123/callback"
# Headers of an MCP Streamable HTTP request.
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}


def mcp_url(gateway_url: str) -> str:
    """The MCP resource identifier of a gateway (PUBLIC_URL + "/")."""
    return gateway_url.rstrip("/") + "/"


def pkce_pair() -> tuple[str, str]:
    """A PKCE (verifier, S256 challenge) pair."""
    verifier = secrets.token_urlsafe(64)[:96]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def register_client(gateway_url: str, client_name: str = "pelcro-test", redirect_uris=None, **metadata) -> dict:
    """RFC 7591 registration of a public client; returns the registration response."""
    body = {
        "client_name": client_name,
        "redirect_uris": redirect_uris or [DEFAULT_REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        **metadata,
    }
    response = httpx.post(gateway_url + "/oauth/register", json=body, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()


class FormParser(HTMLParser):
    """Collects each <form>'s action and inputs (hidden values and radio options)."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._current: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self._current = {"id": attrs.get("id"), "action": attrs.get("action"), "hidden": {}, "radios": {}}
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None:
            kind = attrs.get("type", "text")
            if kind == "hidden":
                self._current["hidden"][attrs["name"]] = attrs.get("value", "")
            elif kind == "radio":
                self._current["radios"].setdefault(attrs["name"], []).append(attrs)

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


def parse_forms(html: str) -> list[dict]:
    parser = FormParser()
    parser.feed(html)
    return parser.forms


def signed_in(gateway_url: str, username: str, password: str) -> httpx.Client:
    """An httpx session signed in through /login (CSRF token from the form, like a browser)."""
    session = httpx.Client(base_url=gateway_url, timeout=10, follow_redirects=False)
    page = session.get("/login")
    token = next(f for f in parse_forms(page.text) if f["action"] == "/login")["hidden"]["csrfmiddlewaretoken"]
    response = session.post("/login", data={"csrfmiddlewaretoken": token, "username": username,
                                            "password": password, "next": "/connections"})
    assert response.status_code == 302, f"login failed ({response.status_code})"
    return session


def authorize_url(gateway_url: str, client_id: str, challenge: str, redirect_uri: str = DEFAULT_REDIRECT_URI,
                  scope: str | None = "read write", state: str = "st-1", method: str | None = "S256",
                  resource: str | None = "default", **extra) -> str:
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "state": state}
    if challenge is not None:
        params["code_challenge"] = challenge
    if method is not None:
        params["code_challenge_method"] = method
    if scope is not None:
        params["scope"] = scope
    if resource is not None:
        params["resource"] = mcp_url(gateway_url) if resource == "default" else resource
    params.update(extra)
    return "/oauth/authorize?" + urlencode(params)


def consent_form(page_html: str) -> dict:
    return next(f for f in parse_forms(page_html) if f["id"] == "consent-form")


def submit_consent(session: httpx.Client, page: httpx.Response, account_slug: str | None,
                   access: str = "read_write", allow: bool = True) -> httpx.Response:
    """Fill in and submit the consent form the way a browser would."""
    form = consent_form(page.text)
    data = dict(form["hidden"])
    if account_slug is not None:
        radio = next(r for r in form["radios"]["account"] if r["data-slug"] == account_slug)
        data["account"] = radio["value"]
    data["access"] = access
    data["allow"] = "true" if allow else ""
    return session.post(form["action"], data=data)


def redirect_params(response: httpx.Response) -> dict[str, str]:
    """The query parameters of an authorization response redirect."""
    assert response.status_code == 302, (response.status_code, response.text[:500])
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}


def authorize(session: httpx.Client, gateway_url: str, client_id: str, account_slug: str,
              access: str = "read_write", redirect_uri: str = DEFAULT_REDIRECT_URI, **url_params) -> dict:
    """GET the authorize URL, submit the consent form; returns code, state, iss and verifier."""
    verifier, challenge = pkce_pair()
    page = session.get(authorize_url(gateway_url, client_id, challenge, redirect_uri=redirect_uri, **url_params))
    assert page.status_code == 200, (page.status_code, page.text[:500])
    params = redirect_params(submit_consent(session, page, account_slug, access))
    return {**params, "verifier": verifier}


def exchange_code(gateway_url: str, client_id: str, code: str, verifier: str,
                  redirect_uri: str = DEFAULT_REDIRECT_URI, resource: str | None = "default") -> httpx.Response:
    data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "redirect_uri": redirect_uri, "client_id": client_id}
    if resource is not None:
        data["resource"] = mcp_url(gateway_url) if resource == "default" else resource
    return httpx.post(gateway_url + "/oauth/token", data=data, timeout=10)


def refresh(gateway_url: str, client_id: str, refresh_token: str, resource: str | None = "default") -> httpx.Response:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}
    if resource is not None:
        data["resource"] = mcp_url(gateway_url) if resource == "default" else resource
    return httpx.post(gateway_url + "/oauth/token", data=data, timeout=10)


def obtain_tokens(gateway_url: str, username: str, password: str, account_slug: str,
                  access: str = "read_write", client_name: str = "pelcro-test") -> dict:
    """Run DCR + sign-in + consent + code exchange over HTTP; return the token response
    (access_token, refresh_token, scope, expires_in, …) plus `client_id`."""
    client = register_client(gateway_url, client_name=client_name)
    session = signed_in(gateway_url, username, password)
    try:
        result = authorize(session, gateway_url, client["client_id"], account_slug, access)
    finally:
        session.close()
    response = exchange_code(gateway_url, client["client_id"], result["code"], result["verifier"])
    assert response.status_code == 200, response.text
    return {**response.json(), "client_id": client["client_id"]}


def gateway_principal(gateway_url: str, raw_token: str, resource: str | None = None):
    """The token check's principal as the gateway at `gateway_url` sees it (its MCP URL is
    the resource), run in the test process against the shared test database."""
    from django.test import override_settings

    from accounts.tokens import credentials_for_token

    with override_settings(PUBLIC_URL=gateway_url, MCP_RESOURCE_URL=mcp_url(gateway_url)):
        credentials = credentials_for_token(raw_token, resource or mcp_url(gateway_url))
    return credentials.principal if credentials else None


class QuickScryptHasher(ScryptPasswordHasher):
    """Test-only scrypt with a tiny work factor, so seeding users takes milliseconds. The
    encoded hash carries its parameters, so gateways (default hashers) verify it."""

    work_factor = 2**4
    parallelism = 1


@pytest.fixture
def demo_users(transactional_db, settings):
    """The demo accounts/sites/keys/users (demo/accounts.json), committed so live gateways
    see them. Returns the spec: users[i]["username"/"password"], accounts[i]["slug"]…
    Users this test creates get quickly-hashed passwords too."""
    from accounts.demo import seed_demo

    settings.PASSWORD_HASHERS = ["tests.fixtures_oauth.QuickScryptHasher"]
    return seed_demo()


# A gateway with tight limits for lock-out and registration-cap tests. It has its own
# Redis key prefix, so its counters never touch the session gateway's.
STRICT_LIMITS = {
    "LOGIN_MAX_FAILURES": "3",
    "LOGIN_MAX_FAILURES_PER_IP": "5",
    "LOGIN_LOCKOUT_SECONDS": "60",
    "DCR_PER_IP_PER_HOUR": "3",
}


@pytest.fixture(scope="session")
def _strict_gateway(django_db_setup, django_db_blocker):
    prefix = os.environ["REDIS_KEY_PREFIX"] + "strict:"
    with django_db_blocker.unblock():
        server = start_gateway(None, REDIS_KEY_PREFIX=prefix, **STRICT_LIMITS)
    server.redis_prefix = prefix
    yield server
    server.stop()


def _clear_redis_prefix(prefix: str) -> None:
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    try:
        for key in client.scan_iter(match=prefix + "*", count=1000):
            client.delete(key)
    finally:
        client.close()


@pytest.fixture
def strict_gateway(transactional_db, _strict_gateway):
    """A live gateway with STRICT_LIMITS, its counters reset for each test."""
    _clear_redis_prefix(_strict_gateway.redis_prefix)
    yield _strict_gateway
    _clear_redis_prefix(_strict_gateway.redis_prefix)
