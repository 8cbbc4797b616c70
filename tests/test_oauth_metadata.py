"""Discovery: exactly one RFC 8414, OpenID and RFC 9728 document, one issuer everywhere,
advertising only what the server does (and the server refusing what it does not)."""

import httpx
import pytest

from devtools.oauth_client import MCP_HEADERS, authorize, pkce_pair, register_client, signed_in


def get_json(url):
    # As a browser-hosted client fetches it: public documents, readable from any origin.
    response = httpx.get(url, timeout=10, headers={"Origin": "https://any-client.example"})
    assert response.status_code == 200, url
    assert response.headers["access-control-allow-origin"] == "*"
    return response.json()


@pytest.mark.sqlite
def test_one_issuer_everywhere(gateway_server, demo_users):
    url = gateway_server.url
    oauth = get_json(url + "/.well-known/oauth-authorization-server")
    oidc = get_json(url + "/.well-known/openid-configuration")
    resource = get_json(url + "/.well-known/oauth-protected-resource")

    assert oauth["issuer"] == url and not url.endswith("/")
    assert oidc == oauth  # same issuer, same endpoints
    assert resource["authorization_servers"] == [url]
    assert resource["resource"] == url + "/"  # the MCP endpoint
    assert resource["scopes_supported"] == ["read", "write"]
    assert resource["bearer_methods_supported"] == ["header"]

    client_id = register_client(url)["client_id"]
    session = signed_in(url, "demo", "pelcro-demo-2026")
    assert authorize(session, url, client_id, "acme")["iss"] == url  # RFC 9207
    session.close()


def test_authorization_server_metadata_advertises_only_what_is_supported(gateway_server):
    url = gateway_server.url
    doc = get_json(url + "/.well-known/oauth-authorization-server")
    assert doc["authorization_endpoint"] == url + "/oauth/authorize"
    assert doc["token_endpoint"] == url + "/oauth/token"
    assert doc["revocation_endpoint"] == url + "/oauth/revoke"
    assert doc["introspection_endpoint"] == url + "/oauth/introspect"
    assert doc["registration_endpoint"] == url + "/oauth/register"
    assert doc["response_types_supported"] == ["code"]
    assert doc["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert "none" in doc["token_endpoint_auth_methods_supported"]
    assert doc["introspection_endpoint_auth_methods_supported"] == ["client_secret_basic", "client_secret_post"]
    assert doc["scopes_supported"] == ["read", "write", "offline_access"]
    assert doc["authorization_response_iss_parameter_supported"] is True
    assert doc["client_id_metadata_document_supported"] is True


def test_issuer_does_not_follow_the_host_header(gateway_server):
    port = gateway_server.port
    doc = httpx.get(f"http://localhost:{port}/.well-known/oauth-authorization-server").json()
    assert doc["issuer"] == gateway_server.url
    assert doc["token_endpoint"].startswith(gateway_server.url + "/")


@pytest.mark.parametrize(
    "path",
    [
        "/.well-known/oauth-authorization-server/tenant",
        "/.well-known/oauth-protected-resource/other",
        "/.well-known/openid-configuration/",
        "/oauth/applications/",
        "/oauth/authorized_tokens/",
        "/oauth/device-authorization/",
        "/oauth/userinfo/",
    ],
)
def test_no_second_document_and_no_management_views(gateway_server, path):
    assert httpx.get(gateway_server.url + path).status_code == 404


def test_mcp_endpoint_challenge_points_at_the_resource_metadata(gateway_server):
    response = httpx.post(
        gateway_server.url + "/", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, headers=MCP_HEADERS
    )
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'resource_metadata="{gateway_server.url}/.well-known/oauth-protected-resource"' in challenge


@pytest.mark.parametrize(
    "grant",
    [
        {"grant_type": "client_credentials"},
        {"grant_type": "password", "username": "demo", "password": "pelcro-demo-2026"},
        {"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": "x"},
    ],
)
def test_unsupported_grants_are_refused(gateway_server, demo_users, grant):
    client_id = register_client(gateway_server.url)["client_id"]
    response = httpx.post(gateway_server.url + "/oauth/token", data={**grant, "client_id": client_id})
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"
    assert "access_token" not in response.json()


def test_implicit_flow_is_refused(gateway_server, demo_users):
    client_id = register_client(gateway_server.url)["client_id"]
    session = signed_in(gateway_server.url, "demo", "pelcro-demo-2026")
    _, challenge = pkce_pair()
    response = session.get(
        "/oauth/authorize",
        params={
            "response_type": "token",
            "client_id": client_id,
            "redirect_uri": "http://127.0.0.1:47123/callback",
            "state": "s",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    session.close()
    location = response.headers.get("location", "")
    assert "access_token" not in location
    assert "error=unsupported_response_type" in location or response.status_code == 400
