"""What real clients send (issue 13, item 2): tolerance where it is harmless, and every
value the discovery document advertises honoured at the endpoint it names.

Scopes (accounts.scopes): values this server does not define are ignored at the
authorization endpoint, the consent POST, the token endpoint and refresh alike; the
token response always names the scope granted. Client authentication: each method in
`token_endpoint_auth_methods_supported` / `revocation_…` / `introspection_…` works at
that endpoint.
"""

import base64

import httpx
import pytest

from tests.support.oauth import (
    authorize,
    authorize_url,
    exchange_code,
    gateway_principal,
    pkce_pair,
    redirect_params,
    refresh,
    register_client,
    signed_in,
)

DEMO = ("demo", "pelcro-demo-2026")
CALLBACK = "http://127.0.0.1:47123/callback"


@pytest.fixture
def client_id(gateway_server, demo_users):
    return register_client(gateway_server.url)["client_id"]


@pytest.mark.parametrize(
    "scope, access, granted",
    [
        ("read write offline_access", "read_write", "read write"),
        ("openid profile email read write", "read_write", "read write"),
        ("offline_access", "read_write", "read write"),  # none of ours: the default
        ("mcp", "read_write", "read write"),
        ("", "read_write", "read write"),
        (None, "read_write", "read write"),
        ("read offline_access", "read", "read"),
        ("RESOURCE", "read_write", "read write"),  # the resource URL as a scope
        ("write", "read_write", "read write"),  # write implies read (accounts.scopes)
        ("write offline_access", "read_write", "read write"),
    ],
)
def test_unknown_scopes_are_ignored_at_every_step(gateway_server, client_id, scope, access, granted):
    url = gateway_server.url
    if scope == "RESOURCE":
        scope = url + "/"
    session = signed_in(url, *DEMO)
    result = authorize(session, url, client_id, "acme", access=access, scope=scope)
    session.close()
    assert "error" not in result and result["code"]
    token = exchange_code(url, client_id, result["code"], result["verifier"])
    assert token.status_code == 200, token.text
    assert token.json()["scope"] == granted and token.json()["refresh_token"]
    # Refresh, asking again with the same extras: same grant, no invalid_scope.
    data = {
        "grant_type": "refresh_token",
        "refresh_token": token.json()["refresh_token"],
        "client_id": client_id,
        "resource": url + "/",
    }
    if scope is not None:
        data["scope"] = scope
    renewed = httpx.post(url + "/oauth/token", data=data, timeout=10)
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["scope"] == granted


def test_refresh_may_narrow_but_never_widen(gateway_server, client_id):
    url = gateway_server.url
    session = signed_in(url, *DEMO)
    result = authorize(session, url, client_id, "acme", access="read", scope="read")
    session.close()
    token = exchange_code(url, client_id, result["code"], result["verifier"]).json()
    widened = httpx.post(
        url + "/oauth/token",
        timeout=10,
        data={
            "grant_type": "refresh_token",
            "refresh_token": token["refresh_token"],
            "client_id": client_id,
            "scope": "read write offline_access",
        },
    )
    assert widened.status_code == 400 and widened.json()["error"] == "invalid_scope"


@pytest.mark.parametrize("scope", ['read "write', "read\\write", "lecture é"])
def test_a_value_that_is_no_scope_token_is_refused_with_invalid_scope(gateway_server, client_id, scope):
    url = gateway_server.url
    session = signed_in(url, *DEMO)
    _, challenge = pkce_pair()
    response = session.get(authorize_url(url, client_id, challenge, scope=scope))
    session.close()
    assert redirect_params(response)["error"] == "invalid_scope"


def secret_auth(method: str, client: dict) -> dict:
    """httpx kwargs authenticating `client` with `method` (RFC 6749 §2.3.1)."""
    if method == "client_secret_basic":
        pair = f"{client['client_id']}:{client['client_secret']}".encode()
        return {"headers": {"Authorization": "Basic " + base64.b64encode(pair).decode()}, "extra": {}}
    return {"headers": {}, "extra": {"client_id": client["client_id"], "client_secret": client["client_secret"]}}


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_every_advertised_client_auth_method_works_at_every_endpoint(gateway_server, demo_users, method):
    url = gateway_server.url
    metadata = get_metadata(url)
    for field in (
        "token_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_methods_supported",
    ):
        assert method in metadata[field]
    client = register_client(url, client_name=f"backend {method}", token_endpoint_auth_method=method)
    assert client["token_endpoint_auth_method"] == method
    auth = secret_auth(method, client)
    session = signed_in(url, *DEMO)
    result = authorize(session, url, client["client_id"], "acme")
    session.close()

    def post(path, **data):
        return httpx.post(url + path, headers=auth["headers"], data={**data, **auth["extra"]}, timeout=10)

    token = post(
        "/oauth/token",
        grant_type="authorization_code",
        code=result["code"],
        code_verifier=result["verifier"],
        redirect_uri=CALLBACK,
    )
    assert token.status_code == 200, token.text
    renewed = post("/oauth/token", grant_type="refresh_token", refresh_token=token.json()["refresh_token"])
    assert renewed.status_code == 200, renewed.text
    renewed = renewed.json()
    introspected = post("/oauth/introspect", token=renewed["access_token"])
    assert introspected.status_code == 200 and introspected.json()["active"] is True
    assert post("/oauth/revoke", token=renewed["access_token"]).status_code == 200
    assert gateway_principal(url, renewed["access_token"]) is None

    # A wrong secret is refused at the token endpoint, whatever the method.
    wrong = secret_auth(method, {**client, "client_secret": "wrong"})
    refused = httpx.post(
        url + "/oauth/token",
        headers=wrong["headers"],
        timeout=10,
        data={"grant_type": "refresh_token", "refresh_token": renewed["refresh_token"], **wrong["extra"]},
    )
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"


def test_public_clients_authenticate_with_none_at_token_and_revocation(gateway_server, client_id):
    url = gateway_server.url
    assert "none" in get_metadata(url)["token_endpoint_auth_methods_supported"]
    assert "none" in get_metadata(url)["revocation_endpoint_auth_methods_supported"]
    session = signed_in(url, *DEMO)
    result = authorize(session, url, client_id, "acme")
    session.close()
    token = exchange_code(url, client_id, result["code"], result["verifier"]).json()
    assert refresh(url, client_id, token["refresh_token"]).status_code == 200
    # introspection is not advertised for public clients ("none" is absent): refused
    assert "none" not in get_metadata(url)["introspection_endpoint_auth_methods_supported"]
    anonymous = httpx.post(url + "/oauth/introspect", data={"token": token["access_token"], "client_id": client_id})
    assert anonymous.status_code in (401, 403)


def get_metadata(url: str) -> dict:
    return httpx.get(url + "/.well-known/oauth-authorization-server", timeout=10).json()


def test_discovery_scopes_are_the_ones_honoured(gateway_server):
    url = gateway_server.url
    server = get_metadata(url)
    resource = httpx.get(url + "/.well-known/oauth-protected-resource", timeout=10).json()
    # offline_access is honoured (a refresh token always comes); read/write are the resource's.
    assert server["scopes_supported"] == ["read", "write", "offline_access"]
    assert resource["scopes_supported"] == ["read", "write"]


def test_write_implies_read_everywhere(gateway_server, client_id):
    """accounts.scopes: `write` alone is granted `read write` at the authorization
    endpoint, the consent screen, the token endpoint and refresh; a refresh asking only
    `write` keeps `read` (no write-only token), and from a read-only grant it is a widening."""
    from accounts.scopes import tolerated

    assert tolerated("write") == tolerated("write read") == "read write"
    url = gateway_server.url
    session = signed_in(url, *DEMO)
    asked = authorize(session, url, client_id, "acme", access="read_write", scope="write")
    read_only = authorize(session, url, client_id, "acme", access="read", scope="write")
    session.close()
    token = exchange_code(url, client_id, asked["code"], asked["verifier"]).json()
    assert token["scope"] == "read write"
    renewed = httpx.post(
        url + "/oauth/token",
        timeout=10,
        data={
            "grant_type": "refresh_token",
            "refresh_token": token["refresh_token"],
            "client_id": client_id,
            "scope": "write",
        },
    )
    assert renewed.status_code == 200 and renewed.json()["scope"] == "read write"
    # The person chose "read only" although the app asked for write: read is what it gets.
    limited = exchange_code(url, client_id, read_only["code"], read_only["verifier"]).json()
    assert limited["scope"] == "read"
    widened = httpx.post(
        url + "/oauth/token",
        timeout=10,
        data={
            "grant_type": "refresh_token",
            "refresh_token": limited["refresh_token"],
            "client_id": client_id,
            "scope": "write",
        },
    )
    assert widened.status_code == 400 and widened.json()["error"] == "invalid_scope"
