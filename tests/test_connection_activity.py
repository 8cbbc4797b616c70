"""A person sees the tool calls made through their own connection (the audit trail, read-only)."""

import pytest

from accounts.models import Connection
from devtools.oauth_client import signed_in
from tests.support.mcp import audit_rows_async, mcp_session

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


def test_activity_pages_fifty_a_page_names_sites_and_shows_redacted_arguments(gateway_server, demo_users):
    from datetime import timedelta

    from django.utils import timezone

    from devtools.oauth_client import obtain_tokens
    from mcp_bridge.models import ToolCall

    obtain_tokens(gateway_server.url, "demo", "pelcro-demo-2026", "acme", client_name="Cursor (pelcro-acme)")
    connection = Connection.objects.get(application__name="Cursor (pelcro-acme)")
    now = timezone.now()
    ToolCall.objects.bulk_create(
        [
            ToolCall(
                created_at=now - timedelta(seconds=i),
                connection=connection,
                account=connection.account,
                user=connection.user,
                username="demo",
                site_id=14,
                tool=f"list_customers_{i:02d}",
                # A row written before a redaction rule existed: the page must not show it.
                arguments={"site_id": 14, "email": f"ann{i}@example.com", "password": "hunter2-secret"},
                outcome="rate_limited" if i == 0 else "ok",
                upstream_status=None if i == 0 else 200,
                latency_ms=1234,
            )
            for i in range(55)
        ]
    )
    session = signed_in(gateway_server.url, "demo", "pelcro-demo-2026")
    first = session.get(f"/connections/{connection.pk}/activity").text
    second = session.get(f"/connections/{connection.pk}/activity?page=2").text
    session.close()
    assert "list_customers_00" in first and "list_customers_49" in first and "list_customers_50" not in first
    assert "list_customers_50" in second and "list_customers_54" in second and "list_customers_49" not in second
    assert 'href="?page=2"' in first and 'href="?page=1"' in second and "Page 1 of 2" in first
    assert "Acme Daily" in first and "#14" in first  # the site by name, not a bare id
    assert "ann0@example.com" in first  # the arguments are there…
    assert "hunter2-secret" not in first + second and "[redacted]" in first  # …without the secret
    assert "1234&nbsp;ms" in first  # the unit never wraps away from its number
    assert "Refused by the gateway" in first and "not called" in first  # a local refusal, no upstream status
