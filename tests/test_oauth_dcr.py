"""Dynamic client registration (RFC 7591/7592): open, policed, capped, pruned."""

import httpx
import pytest
from django.utils import timezone
from oauth2_provider.models import get_application_model

from accounts.maintenance import prune_unused_registrations
from devtools.oauth_client import obtain_tokens, register_client

GOOD = {"client_name": "Claude Code (pelcro)", "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"]}


def post_registration(url, **metadata):
    return httpx.post(url + "/oauth/register", json={**GOOD, **metadata}, timeout=10)


@pytest.mark.parametrize("redirect_uri", [
    "http://127.0.0.1:33418/callback",
    "http://localhost:8080/callback",
    "http://[::1]:9000/cb",
    "https://claude.ai/api/mcp/auth_callback",
    "cursor://anysphere.cursor-retrieval/oauth/user-pelcro/callback",
    "vscode://vscode.github-authentication/did-authenticate",
    "windsurf://codeium.windsurf/oauth/callback",
    "claude://oauth/callback",
])
def test_redirect_uris_real_clients_use_are_accepted(gateway_server, redirect_uri):
    response = post_registration(gateway_server.url, redirect_uris=[redirect_uri])
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["redirect_uris"] == [redirect_uri]
    assert body["token_endpoint_auth_method"] == "none" and "client_secret" not in body
    app = get_application_model().objects.get(client_id=body["client_id"])
    assert app.registration_source == "dcr" and app.client_type == "public" and app.user is None


@pytest.mark.parametrize("redirect_uri, words", [
    ("http://evil.example/callback", "plain http to a non-loopback host"),
    ("javascript:alert(1)//", "unsupported scheme"),
    ("myapp://callback", "unsupported scheme"),
    ("https://app.example/cb#frag", "fragment"),
    ("https://*.example/cb", "wildcard"),
    ("https://user:pw@app.example/cb", "credentials"),
])
def test_other_redirect_uris_are_refused_with_a_clear_error(gateway_server, redirect_uri, words):
    response = post_registration(gateway_server.url, redirect_uris=[redirect_uri])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_redirect_uri"
    assert words in response.json()["error_description"]


@pytest.mark.parametrize("metadata, words", [
    ({"redirect_uris": []}, "non-empty"),
    ({"grant_types": ["client_credentials"]}, "grant_types"),
    ({"grant_types": ["authorization_code", "password"]}, "grant_types"),
    ({"response_types": ["token"]}, "response_types"),
    ({"client_name": "x" * 500}, "client_name"),
])
def test_unsupported_metadata_is_refused(gateway_server, metadata, words):
    response = post_registration(gateway_server.url, **{"redirect_uris": ["http://127.0.0.1:1/cb"], **metadata})
    assert response.status_code == 400
    assert words in response.json()["error_description"]


def test_malformed_body_is_refused(gateway_server):
    response = httpx.post(gateway_server.url + "/oauth/register", content=b"{not json",
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["error"] == "invalid_client_metadata"


def test_registration_management_cannot_bypass_the_redirect_policy(gateway_server):
    body = register_client(gateway_server.url)
    headers = {"Authorization": f"Bearer {body['registration_access_token']}"}
    update = httpx.put(body["registration_client_uri"], headers=headers,
                       json={**GOOD, "redirect_uris": ["http://evil.example/cb"]})
    assert update.status_code == 400 and update.json()["error"] == "invalid_redirect_uri"
    assert httpx.get(body["registration_client_uri"], headers=headers).json()["redirect_uris"] == \
        body["redirect_uris"]


def test_registration_is_capped_per_ip(strict_gateway):
    accepted = [post_registration(strict_gateway.url, redirect_uris=["http://127.0.0.1:1/cb"]) for _ in range(3)]
    assert [r.status_code for r in accepted] == [201, 201, 201]
    refused = post_registration(strict_gateway.url, redirect_uris=["http://127.0.0.1:1/cb"])
    assert refused.status_code == 429
    assert refused.json()["error"] == "too_many_requests"
    assert 0 < int(refused.headers["retry-after"]) <= 3600


def test_never_used_registrations_are_pruned(gateway_server, demo_users, settings):
    Application = get_application_model()
    unused = register_client(gateway_server.url, client_name="abandoned")["client_id"]
    used = obtain_tokens(gateway_server.url, "demo", "pelcro-demo-2026", "acme", client_name="in use")["client_id"]
    recent = register_client(gateway_server.url, client_name="just registered")["client_id"]
    old = timezone.now() - timezone.timedelta(hours=settings.PELCRO_GATEWAY["DCR_UNUSED_PRUNE_HOURS"] + 1)
    Application.objects.filter(client_id__in=[unused, used]).update(created=old)

    assert prune_unused_registrations() == 1
    remaining = set(Application.objects.values_list("client_id", flat=True))
    assert unused not in remaining and {used, recent} <= remaining
