"""The MCP endpoint at "/": auth, Host/Origin, protocol versions, read-only scope,
malformed requests, audit rows, the landing page."""

import json
import re

import httpx
import pytest
from mcp.shared.exceptions import MCPError

from mcp_bridge.models import ToolCall
from mcp_bridge.orm import run_db
from mcp_bridge.servers import TOOLS
from tests.support.mcp import CORE_TOOLS, ERAS, WRITE_TOOLS, audit_rows, audit_rows_async, mcp_session

pytestmark = pytest.mark.sqlite

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
}


def call(name, arguments, request_id=7):
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }


# --- Authentication --------------------------------------------------------------------


def test_missing_token_is_401_with_the_resource_metadata_challenge(mcp_env):
    response = mcp_env.post(INIT, token=None)
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'resource_metadata="{mcp_env.gateway.url}/.well-known/oauth-protected-resource"' in challenge
    assert 'scope="read write"' in challenge
    assert "error=" not in challenge  # RFC 6750: no error code when no credentials were sent
    # The metadata document it points to exists and names this resource.
    metadata = httpx.get(mcp_env.gateway.url + "/.well-known/oauth-protected-resource").json()
    assert metadata["resource"].rstrip("/") == mcp_env.gateway.url


@pytest.mark.parametrize("authorization", ["Bearer not-a-token", "Basic ZGVtbzpkZW1v", "Bearer", "Bearer " + "x" * 600])
def test_bad_token_is_401_invalid_token(mcp_env, authorization):
    response = mcp_env.post(INIT, token=None, Authorization=authorization)
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert "resource_metadata=" in challenge and 'scope="read write"' in challenge
    if authorization.startswith("Bearer "):
        assert 'error="invalid_token"' in challenge
    assert "Traceback" not in response.text


def test_a_revoked_connection_is_refused_at_once(mcp_env):
    from accounts.connections import revoke_connections
    from accounts.models import Connection

    token = mcp_env.token()
    assert mcp_env.post(call("list_plans", {"site_id": 14}), token).status_code == 200
    revoke_connections(Connection.objects.all())
    response = mcp_env.post(call("list_plans", {"site_id": 14}), token)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_a_token_for_another_resource_is_refused(mcp_env):
    from oauth2_provider.models import AccessToken

    token = mcp_env.token()
    AccessToken.objects.update(resource=["https://elsewhere.example/"])
    assert mcp_env.post(INIT, token).status_code == 401


# --- Host and Origin -------------------------------------------------------------------


def test_a_foreign_origin_is_403_before_anything_else(mcp_env):
    token = mcp_env.token()
    for origin in ("https://evil.example", "null", "http://127.0.0.1:1"):
        response = mcp_env.post(INIT, token, Origin=origin)
        assert response.status_code == 403, origin
        assert response.json()["error"]["message"] == "Origin not allowed for this server"
    # Without credentials too: the origin check comes first.
    assert mcp_env.post(INIT, None, Origin="https://evil.example").status_code == 403


def test_this_deployments_own_origin_and_no_origin_are_served(mcp_env):
    token = mcp_env.token()
    assert mcp_env.post(INIT, token, Origin=mcp_env.gateway.url).status_code == 200
    assert mcp_env.post(INIT, token).status_code == 200


def test_configured_extra_origins_are_served(transactional_db, demo_users, mcp_sandbox):
    from devtools.oauth_client import obtain_tokens
    from tests.support.servers import start_gateway

    gateway = start_gateway(mcp_sandbox, MCP_ALLOWED_ORIGINS="https://app.example.com, http://localhost:6274")
    try:
        token = obtain_tokens(gateway.url, "demo", "pelcro-demo-2026", "acme")["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"}
        for origin, status in [
            ("https://app.example.com", 200),
            ("http://localhost:6274", 200),
            ("https://APP.example.com:443", 200),
            ("https://app.example.com:8443", 403),
            ("https://example.com", 403),
        ]:
            response = httpx.post(gateway.url + "/", json=INIT, headers={**headers, "Origin": origin})
            assert response.status_code == status, origin
    finally:
        gateway.stop()


def test_an_unknown_host_is_refused(mcp_env):
    token = mcp_env.token()
    response = mcp_env.post(INIT, token, Host="attacker.example")
    assert response.status_code == 400
    assert "Host" in response.json()["error"]["message"]


# --- Protocol versions -----------------------------------------------------------------


@pytest.mark.parametrize("version", ["2025-03-26", "2025-06-18", "2025-11-25"])
def test_handshake_versions_are_served_statelessly(mcp_env, version):
    token = mcp_env.token()
    init = {**INIT, "params": {**INIT["params"], "protocolVersion": version}}
    response = mcp_env.post(init, token, version=None)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert "mcp-session-id" not in response.headers  # stateless: any replica answers
    assert response.json()["result"]["protocolVersion"] == version
    listed = mcp_env.post({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, token, version=version).json()
    names = {tool["name"] for tool in listed["result"]["tools"]}
    assert names >= CORE_TOOLS and len(names) == len(TOOLS)
    result = mcp_env.post(call("list_plans", {"site_id": 14, "per_page": 3}), token, version=version).json()["result"]
    assert result["isError"] is False
    data = json.loads(result["content"][1]["text"])  # the JSON text block every version gets
    assert len(data["items"]) == 3 and data["per_page"] == 3


@pytest.mark.parametrize("method", ["GET", "DELETE", "PUT"])
def test_only_post_is_served_no_stream_is_left_open(mcp_env, method):
    token = mcp_env.token()
    response = httpx.request(
        method,
        mcp_env.url,
        timeout=5,
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "text/event-stream",
            "MCP-Protocol-Version": "2025-06-18",
        },
    )
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert "stateless" in response.json()["error"]["message"]


@pytest.mark.parametrize("mode", ERAS + ["auto"])
async def test_sdk_client_negotiates_each_era(mcp_env, mode):
    token = mcp_env.token()
    async with mcp_session(mcp_env.url, token, mode) as client:
        expected = "2025-11-25" if mode == "legacy" else "2026-07-28"
        assert client.protocol_version == expected
        if mode != "2026-07-28":  # a pinned version adopts without asking the server
            assert client.server_info.name == "pelcro"
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert names >= CORE_TOOLS and len(names) == len(TOOLS)


# --- Read-only connections ---------------------------------------------------------------


async def test_read_only_connection_lists_only_read_tools_and_is_refused_writes(mcp_env):
    token = mcp_env.token(access="read")
    for mode in ERAS:
        async with mcp_session(mcp_env.url, token, mode) as client:
            tools = (await client.list_tools()).tools
            assert all(tool.annotations.read_only_hint for tool in tools)
            names = {tool.name for tool in tools}
            assert names >= CORE_TOOLS - WRITE_TOOLS and not names & WRITE_TOOLS
            result = await client.call_tool("list_plans", {"site_id": 14})
            assert not result.is_error
            with pytest.raises(MCPError, match="read-only"):
                await client.call_tool("void_invoice", {"site_id": 14, "invoice_id": 1})

    response = mcp_env.post(call("delete_customer", {"site_id": 14, "customer_id": 5}, request_id="abc"), token)
    assert response.status_code == 403
    challenge = response.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="read write"' in challenge
    assert "resource_metadata=" in challenge
    body = response.json()
    assert body["id"] == "abc" and body["error"]["data"]["error"] == "insufficient_scope"

    denied = await audit_rows_async(3, outcome=ToolCall.Outcome.DENIED)
    assert [row.tool for row in denied] == ["void_invoice", "void_invoice", "delete_customer"]
    assert denied[-1].site_id == 14 and denied[-1].arguments == {"site_id": 14, "customer_id": 5}
    assert "read-only" in denied[-1].error_message


# --- Malformed requests --------------------------------------------------------------------


@pytest.mark.parametrize("version", ["2026-07-28", "2025-06-18"])
def test_malformed_json_rpc_gets_clear_errors_never_500(mcp_env, version):
    token = mcp_env.token()
    cases = [
        b"{not json",
        b"[]",
        json.dumps({"jsonrpc": "2.0", "id": 1}).encode(),
        json.dumps({"jsonrpc": "1.0", "id": 1, "method": "tools/list"}).encode(),
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": 5}}).encode(),
        json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": "list_plans", "arguments": "site_id=14"},
            }
        ).encode(),
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": "no/such/method"}).encode(),
    ]
    for body in cases:
        response = mcp_env.post(body, token, version=version)
        assert 400 <= response.status_code < 500 or response.json().get("error"), (body, response.status_code)
        assert response.status_code < 500, (body, response.text)
        assert "Traceback" not in response.text
        assert response.json()["error"]["message"], body
    wrong_type = mcp_env.post(b"{}", token, version=version, **{"Content-Type": "text/plain"})
    assert 400 <= wrong_type.status_code < 500


async def test_unknown_tool_is_a_clear_protocol_error_and_audited(mcp_env):
    token = mcp_env.token()
    for mode in ERAS:
        async with mcp_session(mcp_env.url, token, mode) as client:
            with pytest.raises(MCPError, match="Unknown tool: 'refund_everything'") as caught:
                await client.call_tool("refund_everything", {"site_id": 14})
            assert caught.value.error.code == -32602
    rows = await audit_rows_async(2, tool="refund_everything")
    assert len(rows) == 2 and {row.outcome for row in rows} == {"error"}


# --- Audit ---------------------------------------------------------------------------------


async def test_every_call_leaves_exactly_one_audit_row(mcp_env):
    token = mcp_env.token()
    async with mcp_session(mcp_env.url, token, "2026-07-28") as client:
        ok = await client.call_tool("list_plans", {"site_id": 14, "per_page": 2})
        wrong_site = await client.call_tool("list_plans", {"site_id": 27})
        bad_args = await client.call_tool("list_plans", {"site_id": 14, "per_page": 0, "api_key": "sk_live_secret"})
        missing = await client.call_tool("get_plan", {"site_id": 14, "plan_id": 999999})
    assert not ok.is_error and wrong_site.is_error and bad_args.is_error and missing.is_error
    await run_db(check_audit_rows, await audit_rows_async(4))


def check_audit_rows(rows: list[ToolCall]):
    from accounts.models import Account, Connection
    from mcp_bridge.audit import recent_calls_for_connection

    assert len(rows) == 4
    connection = Connection.objects.get()
    acme = Account.objects.get(slug="acme")
    for row in rows:
        assert row.connection_id == connection.pk and row.account_id == acme.pk
        assert row.username == "demo" and row.client_id == connection.application.client_id
        assert row.client_name == "pelcro-test" and row.latency_ms >= 0
    assert (rows[0].tool, rows[0].outcome, rows[0].upstream_status, rows[0].site_id) == ("list_plans", "ok", 200, 14)
    assert (rows[1].outcome, rows[1].upstream_status, rows[1].site_id) == ("error", None, 27)
    assert "not a site of the connected account" in rows[1].error_message
    assert rows[2].outcome == "error" and rows[2].arguments["api_key"] == "[redacted]"
    assert "per_page" in rows[2].error_message and "sk_live_secret" not in json.dumps(rows[2].arguments)
    assert (rows[3].outcome, rows[3].upstream_status) == ("error", 404)
    recent = recent_calls_for_connection(connection.pk, limit=3)
    assert [row.pk for row in recent] == [rows[3].pk, rows[2].pk, rows[1].pk]
    connection.refresh_from_db()
    assert connection.last_used_at is not None


def test_audit_log_is_read_only_in_the_admin(mcp_env):
    from devtools.oauth_client import signed_in

    token = mcp_env.token()
    mcp_env.post(call("list_plans", {"site_id": 14}), token)
    [row] = audit_rows(1)
    admin = signed_in(mcp_env.gateway.url, "demo", "pelcro-demo-2026")
    listing = admin.get("/admin/mcp_bridge/toolcall/")
    assert listing.status_code == 200 and "list_plans" in listing.text
    detail = admin.get(f"/admin/mcp_bridge/toolcall/{row.pk}/change/")
    assert detail.status_code == 200
    assert 'name="tool"' not in detail.text  # shown, not editable
    assert admin.get("/admin/mcp_bridge/toolcall/add/").status_code == 403


# --- Landing page ------------------------------------------------------------------------


def test_browser_get_is_the_landing_page_with_this_deployments_url(mcp_env):
    response = httpx.get(mcp_env.url, headers={"Accept": "text/html,application/xhtml+xml"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    url = mcp_env.url
    assert f"claude mcp add --transport http pelcro-api-core {url}" in page
    # Both servers, under Pelcro's names, for every client (issue 14 item 5).
    open_url = url.rstrip("/") + "/open"
    assert f"claude mcp add --transport http pelcro-api-open {open_url}" in page
    assert f"&quot;pelcro-api-open&quot;: {{\n      &quot;url&quot;: &quot;{open_url}&quot;" in page  # Cursor
    assert f"&quot;serverUrl&quot;: &quot;{open_url}&quot;" in page  # Windsurf
    assert f"&quot;type&quot;: &quot;http&quot;,\n      &quot;url&quot;: &quot;{open_url}&quot;" in page  # VS Code
    assert "pelcro-api-open</code> with" in page  # ChatGPT
    for client in ("Claude Code", "Cursor", "VS Code", "Windsurf", "ChatGPT", "Any other client"):
        assert client in page
    assert f"&quot;url&quot;: &quot;{url}&quot;" in page  # Cursor / VS Code JSON, escaped in HTML
    assert "&quot;serverUrl&quot;" in page  # Windsurf's key
    assert "void_invoice" in page and "list_customers" in page
    href = re.search(r'href="(/static/mcp_bridge/landing[^"]*\.css)"', page).group(1)
    stylesheet = httpx.get(mcp_env.gateway.url + href)
    assert stylesheet.status_code == 200 and "server-url" in stylesheet.text
    # A non-browser GET is MCP traffic, not the page.
    assert "claude mcp add" not in httpx.get(url, headers={"Accept": "application/json"}).text
