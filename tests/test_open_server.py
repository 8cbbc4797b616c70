"""The Open server at /open (issue 14 item 2): Streamable HTTP in both protocol eras, stateless,
behind the same edge gates; its RFC 9728 metadata at the path form
/.well-known/oauth-protected-resource/open (resource = PUBLIC_URL/open) and a 401 that points
there; tokens bound to their resource: a Core token is refused at /open and an Open token at /.

Subscriber sign-in is not built yet, so the Open tokens here are made the way it will make
them (a subscriber's connection holding a real Pelcro JWT from the sandbox's Open API login,
an access token bound to PUBLIC_URL/open); the Core tokens come from the real OAuth flow.
"""

from __future__ import annotations

import httpx
import pytest

from accounts.connections import revoke_connection
from accounts.models import Connection, Site
from accounts.tokens import checksum
from tests.support.mcp import ERAS, mcp_session
from tests.support.open import open_token

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}


def post(url: str, token: str | None, body=INIT, version: str = "2025-06-18") -> httpx.Response:
    headers = {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": version,
    }
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(url, json=body, headers=headers, timeout=30)


def test_protected_resource_metadata_of_open_in_the_path_form(mcp_env):
    base = mcp_env.gateway.url
    document = httpx.get(base + "/.well-known/oauth-protected-resource/open", timeout=10).json()
    assert document["resource"] == base + "/open"
    assert document["authorization_servers"] == [base]
    assert document["bearer_methods_supported"] == ["header"]
    core = httpx.get(base + "/.well-known/oauth-protected-resource", timeout=10).json()
    assert core["resource"] == base + "/"  # the Core server's stays as it was


def test_a_401_at_open_points_to_its_own_metadata(mcp_env):
    base = mcp_env.gateway.url
    answer = post(base + "/open", None)
    assert answer.status_code == 401
    challenge = answer.headers["WWW-Authenticate"]
    assert f'resource_metadata="{base}/.well-known/oauth-protected-resource/open"' in challenge
    core = post(base + "/", None)
    assert f'resource_metadata="{base}/.well-known/oauth-protected-resource"' in core.headers["WWW-Authenticate"]


def test_a_core_token_is_refused_at_open(mcp_env):
    token = mcp_env.token("acme")
    assert post(mcp_env.gateway.url + "/", token).status_code == 200
    refused = post(mcp_env.gateway.url + "/open", token)
    assert refused.status_code == 401 and "invalid_token" in refused.headers["WWW-Authenticate"]


def test_an_open_token_is_refused_at_the_core_server(mcp_env):
    token = open_token(mcp_env)
    assert post(mcp_env.gateway.url + "/open", token).status_code == 200
    refused = post(mcp_env.gateway.url + "/", token)
    assert refused.status_code == 401 and "invalid_token" in refused.headers["WWW-Authenticate"]


def test_a_subscribers_token_bound_to_the_core_resource_is_refused_at_both(mcp_env):
    """Even bound to `/` (which the authorization server never issues), a subscriber's token
    works nowhere: the Core server refuses subscribers, the Open server other resources."""
    token = open_token(mcp_env, resource=mcp_env.gateway.url + "/")
    assert post(mcp_env.gateway.url + "/", token).status_code == 401
    assert post(mcp_env.gateway.url + "/open", token).status_code == 401


def test_a_connection_without_a_pelcro_sign_in_is_refused(mcp_env):
    assert post(mcp_env.gateway.url + "/open", open_token(mcp_env, with_jwt=False)).status_code == 401


def test_open_tokens_end_with_the_connection_and_the_sites_switch(mcp_env):
    token = open_token(mcp_env)
    url = mcp_env.gateway.url + "/open"
    assert post(url, token).status_code == 200
    Site.objects.filter(site_id=14).update(subscriber_access_enabled=False)
    assert post(url, token).status_code == 401  # the operator turned subscriber access off
    Site.objects.filter(site_id=14).update(subscriber_access_enabled=True)
    assert post(url, token).status_code == 200
    other = open_token(mcp_env)
    revoke_connection(Connection.objects.get(token_bindings__access_token__token_checksum=checksum(other)), by="pelcro")
    assert post(url, other).status_code == 401


@pytest.mark.parametrize("mode", ERAS)
async def test_an_sdk_client_reaches_the_open_server_in_both_eras(mcp_env, mode):
    from asgiref.sync import sync_to_async

    token = await sync_to_async(open_token)(mcp_env)
    async with mcp_session(mcp_env.gateway.url + "/open", token, mode) as client:
        tools = await client.list_tools()
        assert {"get_site", "list_plans", "get_my_profile", "list_recent_writes"} <= {tool.name for tool in tools.tools}


@pytest.mark.parametrize("mode", ERAS)
async def test_the_open_server_answers_at_open_with_a_trailing_slash(mcp_env, mode):
    """A client configured with `…/open/` gets the Open server, not a 404: the 401 that
    starts its sign-in, then its tools; the tokens it takes stay bound to /open."""
    from asgiref.sync import sync_to_async

    base = mcp_env.gateway.url
    anonymous = await sync_to_async(post)(base + "/open/", None)
    assert anonymous.status_code == 401
    assert (
        f'resource_metadata="{base}/.well-known/oauth-protected-resource/open"' in anonymous.headers["WWW-Authenticate"]
    )
    core = await sync_to_async(lambda: post(base + "/open/", mcp_env.token()))()
    assert core.status_code == 401  # a Core token stays refused
    token = await sync_to_async(open_token)(mcp_env)
    async with mcp_session(base + "/open/", token, mode) as client:
        tools = await client.list_tools()
        assert "get_my_profile" in {tool.name for tool in tools.tools}
    # Only the Open server's path: other paths with a slash are Django's, as before.
    assert httpx.post(base + "/open//", json=INIT, timeout=10).status_code == 404


def test_a_token_is_bound_to_one_server(settings):
    """The authorization server binds a grant to the Core server or to the Open server, never
    both (which consent may issue which: tests/test_open_oauth.py)."""
    from accounts.resource import canonical_resources

    settings.PUBLIC_URL = "https://mcp.example.com"
    settings.MCP_RESOURCE_URL = "https://mcp.example.com/"
    settings.OPEN_RESOURCE_URL = "https://mcp.example.com/open"
    assert canonical_resources(["https://MCP.example.com/open/"]) == ["https://mcp.example.com/open"]
    assert canonical_resources(["https://mcp.example.com"]) == ["https://mcp.example.com/"]
    assert canonical_resources([]) == ["https://mcp.example.com/"]
    with pytest.raises(ValueError, match="A token is for one server"):
        canonical_resources(["https://mcp.example.com/", "https://mcp.example.com/open"])
    with pytest.raises(ValueError, match="not served by this authorization server"):
        canonical_resources(["https://mcp.example.com/other"])
