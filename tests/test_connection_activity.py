"""A person sees the tool calls made through their own connection (the audit trail, read-only)."""

import pytest

from accounts.models import Connection
from devtools.oauth_client import signed_in
from tests.fixtures_mcp import audit_rows_async, mcp_session

pytestmark = pytest.mark.sqlite


async def test_connection_activity_shows_own_calls_only(mcp_env):
    from asgiref.sync import sync_to_async

    token = await sync_to_async(mcp_env.token)("acme")
    async with mcp_session(mcp_env.url, token, "2026-07-28") as client:
        ok = await client.call_tool("list_plans", {"site_id": 14, "per_page": 2})
        refused = await client.call_tool("get_customer", {"site_id": 27, "customer_id": 1})
    assert not ok.is_error and refused.is_error
    await audit_rows_async(2)  # written just after the answers

    def pages():
        connection = Connection.objects.get(user__username="demo", account__slug="acme")
        mine = signed_in(mcp_env.gateway.url, "demo", "pelcro-demo-2026")
        listing = mine.get("/connections").text
        activity = mine.get(f"/connections/{connection.pk}/activity")
        theirs = signed_in(mcp_env.gateway.url, "alice", "pelcro-alice-2026").get(
            f"/connections/{connection.pk}/activity"
        )
        return connection, listing, activity, theirs

    connection, listing, activity, theirs = await sync_to_async(pages)()
    assert f"/connections/{connection.pk}/activity" in listing
    assert activity.status_code == 200
    assert "list_plans" in activity.text and "get_customer" in activity.text
    assert ">OK<" in activity.text and ">Error<" in activity.text
    assert "is not a site of the connected account" in activity.text  # the refused call's reason
    assert token not in activity.text
    assert theirs.status_code == 404  # someone else's connection does not exist for alice
