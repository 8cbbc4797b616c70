"""The Open server's tool machinery (issue 14 item 5): every Open tool call goes through
`open.calls.open_api` as the connection's subscriber (site and customer from the verified
token, never from arguments), leaves an audit row naming both, and a Pelcro JWT that Pelcro
stops accepting ("logout elsewhere") ends the connection: the call says the sign-in ended
and the next MCP request gets 401 invalid_token.

Real parts: the sandbox's Open API, the gateway process, SDK clients in both eras.
"""

from __future__ import annotations

import httpx
import pytest
from asgiref.sync import sync_to_async

from mcp_bridge.runtime.registry import REGISTRY, tool
from mcp_bridge.runtime.schemas import ToolInput
from mcp_bridge.servers import OPEN_TOOLS, TOOLS
from tests.support.mcp import ERAS, audit_rows_async, mcp_session
from tests.support.open import held_jwt, open_connection, open_session
from tests.support.sandbox import READER, SECOND, SUBSCRIBERS

WEEKLY = SUBSCRIBERS[2]  # site 15, the same account as READER's site 14


# --- Declarations --------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(OPEN_TOOLS))
def test_open_tools_are_declared_for_the_open_server_only(name):
    spec = OPEN_TOOLS[name]
    assert spec.server == "open" and spec is REGISTRY["open"][name]
    assert name not in TOOLS or TOOLS[name] is not spec  # list_plans exists on both, separately
    schema = spec.input_schema()
    assert schema.get("additionalProperties") is False
    assert not {"site_id", "customer_id"} & set(schema.get("properties", {}))  # the connection decides
    annotations = spec.annotations.model_dump(by_alias=True)
    for hint in ("readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"):
        assert isinstance(annotations[hint], bool), (name, hint)
    # They reach the Open API; list_recent_writes reads the gateway's own audit log.
    assert annotations["openWorldHint"] is (name != "list_recent_writes")
    assert len(spec.description) > 60
    assert spec.read_only or spec.preview is not None  # every write tool answers dry_run


@pytest.mark.parametrize("argument", ["site_id", "customer_id"])
def test_an_open_tool_taking_a_site_or_customer_is_refused_at_declaration(argument):
    from pydantic import create_model

    model = create_model("Chosen", __base__=ToolInput, **{argument: (int, ...)})
    with pytest.raises(ValueError, match="may not take"):
        tool(
            "chooses_its_own",
            title="x",
            input=model,
            output=ToolInput,
            read_only=True,
            destructive=False,
            idempotent=True,
            open_world=True,
            server="open",
        )(_doc)
    assert "chooses_its_own" not in REGISTRY["open"]


async def _doc(call, args):
    """A tool that would choose its own site or customer."""


# --- Calls ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ERAS)
async def test_the_public_and_own_reads_of_the_connection(mcp_env, mode):
    async with open_session(mcp_env, READER, mode=mode) as (client, conn):
        site = await client.call_tool("get_site", {})
        assert not site.is_error, site
        assert site.structured_content["id"] == 14 and site.structured_content["name"] == "Acme Daily"
        plans = await client.call_tool("list_plans", {})
        assert not plans.is_error
        amounts = {p["id"]: p["amount"] for p in plans.structured_content["plans"]}
        assert amounts[1006] == 999 and "Digital Monthly (plan 1006): 9.99 USD every month" in plans.content[0].text
        profile = await client.call_tool("get_my_profile", {})
        assert not profile.is_error, profile
        data = profile.structured_content
        assert data["id"] == conn.customer_id and data["email"] == READER["email"]
        assert data["created_at"].endswith("Z")  # ISO 8601 UTC, not Unix seconds
        text = " ".join(block.text for block in profile.content)
        assert "eyJ" not in text and "auth_token" not in text  # no JWT (base64 of {"...) ever shows
    rows = await audit_rows_async(3, connection_id=conn.connection_id)
    assert [r.tool for r in rows] == ["get_site", "list_plans", "get_my_profile"]
    assert {(r.site_id, r.customer_id, r.outcome, r.upstream_status) for r in rows} == {
        (14, conn.customer_id, "ok", 200)
    }


async def test_another_site_or_customer_cannot_be_named(mcp_env):
    """No Open tool takes a site or customer: naming one is refused before anything is sent,
    and the audit row still names the connection's own site and customer."""
    async with open_session(mcp_env, READER) as (client, conn):
        for arguments in ({"site_id": 15}, {"customer_id": 1}):
            answer = await client.call_tool("get_my_profile", arguments)
            assert answer.is_error and answer.structured_content["error"] == "invalid_arguments"
            assert "is not an argument of this tool" in answer.content[0].text
        other_site = await client.call_tool("get_site", {"site_id": 15})
        assert other_site.is_error
    rows = await audit_rows_async(3, connection_id=conn.connection_id)
    assert {(r.site_id, r.customer_id, r.outcome) for r in rows} == {(14, conn.customer_id, "error")}


async def test_each_subscriber_sees_only_their_own_profile_and_site(mcp_env):
    async with open_session(mcp_env, SECOND) as (client, conn):
        profile = (await client.call_tool("get_my_profile", {})).structured_content
        assert profile["email"] == SECOND["email"] and profile["id"] == conn.customer_id
    async with open_session(mcp_env, WEEKLY) as (client, conn):
        site = (await client.call_tool("get_site", {})).structured_content
        assert site["id"] == 15
        plans = (await client.call_tool("list_plans", {})).structured_content["plans"]
        assert {p["id"] for p in plans} == {p["id"] for p in site["plans"]} and plans
        profile = (await client.call_tool("get_my_profile", {})).structured_content
        assert profile["email"] == WEEKLY["email"]


@pytest.mark.parametrize("mode", ERAS)
async def test_a_jwt_logged_out_elsewhere_ends_the_connection(mcp_env, mode):
    """The subscriber signs out on the publication's site with the same Pelcro JWT (the
    sandbox blacklists it, 403): the next tool call says the sign-in ended, the connection
    is revoked, and the following MCP request is refused with 401 invalid_token."""
    from accounts.models import Connection

    conn = await sync_to_async(open_connection)(mcp_env, READER)
    url = mcp_env.gateway.url + "/open"
    async with mcp_session(url, conn.token, mode) as client:
        assert not (await client.call_tool("get_my_profile", {})).is_error
        jwt = await sync_to_async(held_jwt)(conn.connection_id)  # maybe fresher than the login's
        logout = httpx.post(
            f"{mcp_env.sandbox.url}/api/v1/sdk/auth/logout",
            params={"site_id": conn.site_id},
            headers={"Authorization": f"Bearer {jwt}"},
            timeout=10,
        )
        assert logout.status_code == 200, logout.text
        ended = await client.call_tool("get_my_profile", {})
        assert ended.is_error and ended.structured_content["error"] == "unauthorized"
        assert "sign-in to Acme Daily (site 14) has ended" in ended.content[0].text
        assert ended.structured_content["upstream_status"] == 403  # blacklisted (OPEN_API.md §2)
    connection = await sync_to_async(Connection.objects.get)(pk=conn.connection_id)
    assert connection.revoked_at is not None and connection.revoked_by == "pelcro"
    answer = httpx.post(
        url,
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}},
        headers={
            "Authorization": f"Bearer {conn.token}",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": "2025-06-18",
        },
        timeout=10,
    )
    assert answer.status_code == 401 and 'error="invalid_token"' in answer.headers["WWW-Authenticate"]
    rows = await audit_rows_async(2, connection_id=conn.connection_id)
    assert [(r.tool, r.outcome, r.upstream_status) for r in rows] == [
        ("get_my_profile", "ok", 200),
        ("get_my_profile", "error", 403),
    ]


async def test_the_ops_page_shows_open_calls_next_to_core_ones(mcp_env, client):
    """Staff see a subscriber's calls in the account's latest tool calls: server open, site,
    customer id, client, outcome; a Core call of the same account next to them."""
    from django.contrib.auth import get_user_model

    from accounts.models import Account

    async with open_session(mcp_env, READER) as (session, conn):
        assert not (await session.call_tool("get_my_profile", {})).is_error
    token = await sync_to_async(mcp_env.token)("acme")
    async with mcp_session(mcp_env.url, token, "2026-07-28") as core:
        assert not (await core.call_tool("list_plans", {"site_id": 14})).is_error
    await audit_rows_async(1, connection_id=conn.connection_id)

    def ops_calls() -> list[dict]:
        staff = get_user_model().objects.create_user("ops-open", password="x-staff-pass-1", is_staff=True)
        client.force_login(staff)
        account = Account.objects.get(slug="acme")
        return client.get(f"/ops/api/accounts/{account.id}").json()["tool_calls"]

    calls = await sync_to_async(ops_calls)()
    mine = next(c for c in calls if c["tool"] == "get_my_profile" and c["customer_id"] == conn.customer_id)
    assert mine["server"] == "open" and mine["site_id"] == 14 and mine["outcome"] == "ok"
    assert mine["client"] == "Open test app" and mine["upstream_status"] == 200
    staff_call = next(c for c in calls if c["tool"] == "list_plans")
    assert staff_call["server"] == "core" and staff_call["customer_id"] is None


async def test_a_write_is_never_sent_twice_and_a_reading_post_is_retried(mcp_env, truth):
    """Pelcro answers 5xx: a cancellation (a write) is sent once and says it may have been
    applied, with how to check; the profile read (a POST that only reads) is retried like a
    GET and never says so."""
    from tests.support import open_data

    url = mcp_env.sandbox.url
    who = await sync_to_async(open_data.register)(url)
    card = await sync_to_async(open_data.add_card)(url, who)
    subscription = await sync_to_async(open_data.subscribe)(url, who, card["id"], plan="Weekly Pass")
    async with open_session(mcp_env, who, access="read_write") as (client, conn):
        truth.configure(error_rate=1.0)
        try:
            before = truth.last_seq()
            cancel = await client.call_tool(
                "cancel_my_subscription", {"subscription_id": subscription["id"], "mode": "last_period_end"}
            )
            profile = await client.call_tool("get_my_profile", {})
            log = truth.log(before, api="open")
        finally:
            truth.restore_config()
    assert [e["status"] for e in log if e["path"].endswith("/subscription/cancel")] in ([500], [502], [503])
    failed = cancel.structured_content
    assert cancel.is_error and failed["error"] == "upstream_unavailable" and failed["may_have_been_applied"] is True
    assert (
        f"Before trying again, read subscription {subscription['id']} with list_my_subscriptions" in failed["message"]
    )
    assert len([e for e in log if e["path"].endswith("/customer")]) == 3  # the first try and 2 retries
    assert profile.is_error and profile.structured_content["error"] == "upstream_unavailable"
    assert "may_have_been_applied" not in profile.structured_content
    rows = await audit_rows_async(2, connection_id=conn.connection_id)
    assert [(r.tool, r.outcome) for r in rows] == [("cancel_my_subscription", "error"), ("get_my_profile", "error")]
