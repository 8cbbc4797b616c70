"""CORS for browser-hosted clients (pelcro_gateway/cors.py), against a real gateway with
MCP_ALLOWED_ORIGINS set: preflights answered before authentication on every endpoint a
browser client calls, grants and exposed headers on real answers (401s included), no grant
for other origins or on pages; then the whole flow in headless Chromium from a page served
by a static server on another loopback port, and the same page from a disallowed origin.
"""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from devtools.oauth_client import MCP_HEADERS, authorize, exchange_code, pkce_pair, register_client, signed_in
from devtools.servers import free_port
from tests.support.mcp import PASSWORDS
from tests.support.servers import start_gateway

CLIENT_DIR = Path(__file__).resolve().parent / "browser_client"
MCP_REQUEST_HEADERS = [
    "Authorization",
    "Content-Type",
    "Mcp-Session-Id",
    "MCP-Protocol-Version",
    "Mcp-Method",
    "Mcp-Name",
    "Last-Event-ID",
]
EXPOSED = {"mcp-session-id", "mcp-protocol-version", "www-authenticate"}
# Every endpoint a browser-hosted client calls with fetch (discovery is open to any origin).
CLIENT_ENDPOINTS = ["/", "/oauth/register", "/oauth/register/some-client-id", "/oauth/token", "/oauth/revoke"]
DISCOVERY = [
    "/.well-known/oauth-protected-resource",
    "/.well-known/oauth-authorization-server",
    "/.well-known/openid-configuration",
]
# Pages and endpoints that are not for cross-origin scripts: never a grant.
NOT_FOR_SCRIPTS = [
    "/login",
    "/oauth/authorize",
    "/oauth/introspect",
    "/connections",
    "/admin/login/",
    "/ops/",
    "/health",
    "/metrics",
]


class StaticSite:
    """tests/browser_client/ served on 127.0.0.1:<port> (another origin than the gateway's);
    any other path (the OAuth callback) gets the index page too."""

    def __init__(self):
        handler = functools.partial(_QuietHandler, directory=str(CLIENT_DIR))
        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        if urlsplit(self.path).path != "/":
            self.path = "/index.html"
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def sites():
    allowed, other = StaticSite(), StaticSite()
    yield allowed, other
    allowed.close()
    other.close()


@pytest.fixture(scope="module")
def _cors_gateway(django_db_setup, django_db_blocker, sandbox_server, sites):
    allowed, _ = sites
    with django_db_blocker.unblock():
        # Written the way people write it (trailing slash); the gateway normalizes it.
        server = start_gateway(sandbox_server, MCP_ALLOWED_ORIGINS=f"https://app.example.test, {allowed.origin}/")
    yield server
    server.stop()


@pytest.fixture
def cors_gateway(transactional_db, _cors_gateway):
    return _cors_gateway


def preflight(url: str, origin: str, method: str = "POST", headers=MCP_REQUEST_HEADERS) -> httpx.Response:
    return httpx.options(
        url,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": ", ".join(h.lower() for h in headers),
        },
    )


def listed(value: str | None) -> set[str]:
    return {item.strip().lower() for item in (value or "").split(",") if item.strip()}


def test_preflights_are_answered_before_authentication(cors_gateway, sites):
    allowed, other = sites
    for path in CLIENT_ENDPOINTS:
        for method in ("POST", "GET", "DELETE", "PUT"):
            response = preflight(cors_gateway.url + path, allowed.origin, method)
            assert response.status_code == 200, (path, method, response.status_code, response.text)
            assert response.headers["access-control-allow-origin"] == allowed.origin, path
            assert method.lower() in listed(response.headers["access-control-allow-methods"]), (path, method)
            assert {h.lower() for h in MCP_REQUEST_HEADERS} <= listed(response.headers["access-control-allow-headers"])
            assert "origin" in listed(response.headers["vary"])
            assert "access-control-allow-credentials" not in response.headers  # bearer tokens, never cookies
        # Another origin: no grant (the middleware says why in its 400).
        refused = preflight(cors_gateway.url + path, other.origin)
        assert refused.status_code == 400 and "origin" in refused.text, path
        assert "access-control-allow-origin" not in refused.headers, path
    # The other configured origin, and the deployment's own origin, are granted too.
    assert preflight(cors_gateway.url + "/", "https://app.example.test").status_code == 200
    assert preflight(cors_gateway.url + "/", cors_gateway.url).status_code == 200


def test_answers_carry_the_grant_and_expose_the_mcp_headers(cors_gateway, sites):
    allowed, other = sites
    url = cors_gateway.url
    # The 401 of the MCP endpoint: readable by the page, challenge included.
    response = httpx.post(
        url + "/",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={**MCP_HEADERS, "Origin": allowed.origin},
    )
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == allowed.origin
    assert "origin" in listed(response.headers["vary"])
    assert listed(response.headers["access-control-expose-headers"]) >= EXPOSED
    assert "resource_metadata=" in response.headers["www-authenticate"]
    # Another origin: still refused by the MCP Origin gate, and no grant.
    response = httpx.post(
        url + "/",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={**MCP_HEADERS, "Origin": other.origin},
    )
    assert response.status_code == 403 and "access-control-allow-origin" not in response.headers

    registered = httpx.post(
        url + "/oauth/register",
        headers={"Origin": allowed.origin},
        json={
            "client_name": "cors",
            "redirect_uris": [allowed.origin + "/callback"],
            "token_endpoint_auth_method": "none",
        },
    )
    assert registered.status_code == 201 and registered.headers["access-control-allow-origin"] == allowed.origin
    bad_grant = httpx.post(
        url + "/oauth/token",
        headers={"Origin": allowed.origin},
        data={
            "grant_type": "authorization_code",
            "code": "nope",
            "code_verifier": "x" * 43,
            "client_id": registered.json()["client_id"],
            "redirect_uri": allowed.origin + "/callback",
        },
    )
    assert bad_grant.status_code == 400 and bad_grant.headers["access-control-allow-origin"] == allowed.origin
    revoked = httpx.post(
        url + "/oauth/revoke",
        headers={"Origin": allowed.origin},
        data={"token": "unknown", "client_id": registered.json()["client_id"]},
    )
    assert revoked.status_code == 200 and revoked.headers["access-control-allow-origin"] == allowed.origin
    for path in ("/oauth/token", "/oauth/revoke"):
        response = httpx.post(url + path, headers={"Origin": other.origin}, data={"grant_type": "refresh_token"})
        assert "access-control-allow-origin" not in response.headers, path
        assert "origin" in listed(response.headers.get("vary")), path  # caches keep answers per origin


def test_discovery_is_open_to_any_origin(cors_gateway, sites):
    _, other = sites
    for path in DISCOVERY:
        response = httpx.get(
            cors_gateway.url + path, headers={"Origin": other.origin, "MCP-Protocol-Version": "2025-11-25"}
        )
        assert response.status_code == 200 and response.headers["access-control-allow-origin"] == "*", path
        answer = preflight(cors_gateway.url + path, other.origin, "GET", ["MCP-Protocol-Version"])
        assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == "*", path
        assert preflight(cors_gateway.url + path, other.origin, "POST").status_code == 400, path  # read-only


def test_pages_grant_no_origin(cors_gateway, sites):
    allowed, _ = sites
    for path in NOT_FOR_SCRIPTS:
        response = httpx.get(cors_gateway.url + path, headers={"Origin": allowed.origin})
        assert "access-control-allow-origin" not in response.headers, path
        answer = preflight(cors_gateway.url + path, allowed.origin, "POST", ["Content-Type"])
        assert "access-control-allow-origin" not in answer.headers, path


@pytest.mark.browser
@pytest.mark.sqlite
def test_browser_client_flow_from_an_allowed_origin(cors_gateway, sites, demo_users, browser):
    """Discovery, registration, authorization (sign-in and consent in a tab), token exchange,
    `initialize` and `tools/call`, revocation: every call a fetch from the allowed origin."""
    allowed, _ = sites
    gateway = cors_gateway.url
    callback = allowed.origin + "/callback"
    context = browser.new_context()
    app = context.new_page()
    app.goto(allowed.origin + "/")

    found = app.evaluate("gateway => discover(gateway)", gateway)
    assert found["status"] == 401 and "resource_metadata" in found["challenge"]  # an exposed header
    server = found["server"]
    assert server["issuer"] == gateway and found["resource"]["resource"] == gateway + "/"

    registered = app.evaluate("([server, uri]) => register(server, uri)", [server, callback])
    assert registered["status"] == 201
    client_id = registered["body"]["client_id"]
    pair = app.evaluate("() => pkce()")

    # Authorization happens in a tab: sign in, pick the account, allow; the callback lands
    # back on the app's origin with the code.
    query = httpx.QueryParams(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": callback,
            "scope": "read write",
            "state": "browser-cors",
            "code_challenge": pair["challenge"],
            "code_challenge_method": "S256",
            "resource": gateway + "/",
        }
    )
    tab = context.new_page()
    tab.goto(f"{server['authorization_endpoint']}?{query}")
    tab.fill("input[name=username]", "demo")
    tab.fill("input[name=password]", PASSWORDS["demo"])
    tab.click("button[type=submit]")
    tab.wait_for_selector("#consent-form")
    tab.check("input[name=account][data-slug=acme]")
    tab.click("button[name=allow][value=true]")
    tab.wait_for_url(callback + "*")
    params = {k: v[0] for k, v in parse_qs(urlsplit(tab.url).query).items()}
    assert params["state"] == "browser-cors"
    tab.close()

    tokens = app.evaluate(
        "([url, fields]) => form(url, fields)",
        [
            server["token_endpoint"],
            {
                "grant_type": "authorization_code",
                "code": params["code"],
                "code_verifier": pair["verifier"],
                "client_id": client_id,
                "redirect_uri": callback,
                "resource": gateway + "/",
            },
        ],
    )
    assert tokens["status"] == 200, tokens
    access = tokens["body"]["access_token"]

    init = app.evaluate(
        "([g, t, p]) => mcp(g, t, 1, 'initialize', p)",
        [
            gateway,
            access,
            {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "browser client", "version": "1.0"},
            },
        ],
    )
    assert init["status"] == 200 and init["body"]["result"]["serverInfo"], init
    call = app.evaluate(
        "([g, t, p]) => mcp(g, t, 2, 'tools/call', p)",
        [gateway, access, {"name": "list_plans", "arguments": {"site_id": 14, "per_page": 1}}],
    )
    assert call["status"] == 200 and call["body"]["result"]["isError"] is False, call
    assert call["body"]["result"]["structuredContent"]["items"], call

    revoked = app.evaluate(
        "([url, fields]) => form(url, fields)",
        [server["revocation_endpoint"], {"token": tokens["body"]["refresh_token"], "client_id": client_id}],
    )
    assert revoked["status"] == 200
    after = app.evaluate("([g, t]) => mcp(g, t, 3, 'tools/list', {})", [gateway, access])
    assert after["status"] == 401 and 'error="invalid_token"' in after["challenge"]
    context.close()


@pytest.mark.browser
def test_browser_client_from_another_origin_is_refused(cors_gateway, sites, demo_users, browser):
    """The same page served from an origin that is not configured: discovery documents are
    readable (public), but registration, token, revocation and MCP calls are blocked."""
    _, other = sites
    gateway = cors_gateway.url
    # A token obtained elsewhere, so the MCP call is refused for its origin, not its token.
    client_id = register_client(gateway)["client_id"]
    session = signed_in(gateway, "demo", PASSWORDS["demo"])
    grant = authorize(session, gateway, client_id, "acme")
    access = exchange_code(gateway, client_id, grant["code"], grant["verifier"]).json()["access_token"]
    page = browser.new_page()
    page.goto(other.origin + "/")

    metadata = page.evaluate(
        """url => attempt(async () => (await fetch(url)).json())""", gateway + "/.well-known/oauth-authorization-server"
    )
    assert metadata["issuer"] == gateway
    assert page.evaluate("gateway => attempt(() => discover(gateway))", gateway)["blocked"]  # the MCP 401 is unreadable
    server = {"registration_endpoint": gateway + "/oauth/register"}
    assert page.evaluate("([s, uri]) => attempt(() => register(s, uri))", [server, other.origin + "/cb"])["blocked"]
    verifier, _ = pkce_pair()
    assert page.evaluate(
        "([url, fields]) => attempt(() => form(url, fields))",
        [
            gateway + "/oauth/token",
            {"grant_type": "authorization_code", "code": "x", "code_verifier": verifier, "client_id": client_id},
        ],
    )["blocked"]
    assert page.evaluate("([g, t]) => attempt(() => mcp(g, t, 1, 'tools/list', {}))", [gateway, access])["blocked"]
    # A form POST is a "simple" request: the browser sends it but hides the answer.
    assert page.evaluate(
        "([url, fields]) => attempt(() => form(url, fields))",
        [gateway + "/oauth/revoke", {"token": access, "client_id": client_id}],
    )["blocked"]
    page.close()
