"""Bad input and upstream failures: every one is a clear `isError` result naming what is
wrong (never a 500, a traceback or a protocol failure), and every one is audited."""

import asyncio

import pytest

from devtools.oauth_client import obtain_tokens, signed_in
from devtools.servers import free_port
from mcp_bridge.orm import run_db
from tests.support.mcp import ERAS, OUT_OF_REACH, audit_rows_async, mcp_session
from tests.support.servers import start_gateway

pytestmark = pytest.mark.sqlite

# (tool, arguments, {argument: part of its message})
BAD_INPUT = [
    ("list_customers", {"site_id": "fourteen"}, {"site_id": "valid integer"}),
    ("list_customers", {}, {"site_id": "is required"}),
    ("list_customers", {"site_id": 14, "per_page": 101}, {"per_page": "less than or equal to 100"}),
    ("list_customers", {"site_id": 14, "per_page": 0}, {"per_page": "greater than or equal to 1"}),
    ("list_customers", {"site_id": 14, "page": 0}, {"page": "greater than or equal to 1"}),
    ("list_customers", {"site_id": 14, "sort": "balance"}, {"sort": "'id', '-id', 'email'"}),
    ("list_invoices", {"site_id": 14, "sort": "-amount"}, {"sort": "'status'"}),
    ("list_invoices", {"site_id": 14, "status_in": ["overdue"]}, {"status_in.0": "'draft'"}),
    ("list_invoices", {"site_id": 14, "customer_id": 5}, {"customer_id": "is not an argument of this tool"}),
    ("list_customers", {"site_id": 14, "limit": 5}, {"limit": "is not an argument of this tool"}),
    ("list_customers", {"site_id": 14, "sort": "created_at"}, {"sort": "'id', '-id', 'email'"}),
    ("list_customers", {"site_id": 14, "metadata": {"company": "Acme, Inc"}}, {"metadata.company": "pattern"}),
    ("list_customers", {"site_id": 14, "match": "some"}, {"match": "'all' or 'any'"}),
    ("list_subscriptions", {"site_id": 14, "status": "active"}, {"status": "is not an argument of this tool"}),
    ("get_customer", {"site_id": 14, "customer_id": "12abc"}, {"customer_id": "valid integer"}),
    ("get_customer", {"site_id": 14, "customer_id": 1.5}, {"customer_id": "integer"}),
    ("get_customer", {"site_id": 14, "customer_id": 1, "expand": ["invoices"]}, {"expand.0": "'subscriptions'"}),
    ("create_customer", {"site_id": 14, "first_name": "No Email"}, {"arguments": "email, a display_name"}),
    ("create_customer", {"site_id": 14, "email": "not-an-email"}, {"email": "pattern"}),
    ("create_customer", {"site_id": 14, "email": "a@b.co", "metadata": ["x"]}, {"metadata": "valid dictionary"}),
    ("create_customer", {"site_id": 14, "email": "a@b.co", "phone": "12-34"}, {"phone": "5 to 20 digits"}),
    (
        "create_subscription",
        {"site_id": 14, "customer_id": 1, "plan_id": 2, "quantity": 1},
        {"arguments": "needs source_id"},
    ),
    (
        "create_subscription",
        {"site_id": 14, "customer_id": 1, "plan_id": 2, "collection_method": "send_invoice"},
        {"quantity": "required"},
    ),
    (
        "create_subscription",
        {
            "site_id": 14,
            "customer_id": 1,
            "plan_id": 2,
            "quantity": 1,
            "coupon_id": 3,
            "collection_method": "send_invoice",
        },
        {"coupon_id": "is not an argument"},
    ),
    ("cancel_subscription", {"site_id": 14, "subscription_id": 1, "reason": "x"}, {"mode": "required"}),
    (
        "cancel_subscription",
        {"site_id": 14, "subscription_id": 1, "mode": "later", "reason": "x"},
        {"mode": "'period_end' or 'now'"},
    ),
    ("create_invoice", {"site_id": 14, "customer_id": 1, "currency": "dollars", "total": 5}, {"currency": "pattern"}),
    (
        "create_invoice",
        {
            "site_id": 14,
            "customer_id": 1,
            "currency": "usd",
            "total": 5,
            "line_items": [{"description": "x", "unit_price": 5, "quantity": 1}],
        },
        {"arguments": "exactly one"},
    ),
    (
        "create_invoice",
        {
            "site_id": 14,
            "customer_id": 1,
            "currency": "usd",
            "line_items": [{"description": "x", "unit_price": -5, "quantity": 1, "colour": "red"}],
        },
        {"line_items.0.unit_price": "greater than or equal to 0", "line_items.0.colour": "not an argument"},
    ),
    (
        "create_invoice",
        {"site_id": 14, "customer_id": 1, "currency": "usd", "total": 5, "due_date": "soon"},
        {"due_date": "ISO 8601"},
    ),
    (
        "pay_invoice_offline",
        {"site_id": 14, "invoice_id": 1, "reference": "R", "payment_category": "2"},
        {"payment_category": "'check'"},
    ),
    (
        "update_invoice",
        {"site_id": 14, "invoice_id": 1, "due_date": "2027-01-01", "metadata": {}},
        {"due_date": "is not an argument"},
    ),
    (
        "create_offline_charge",
        {"site_id": 14, "customer_id": 1, "amount": 0, "currency": "usd", "reference": "R"},
        {"amount": "greater than or equal to 1"},
    ),
    ("cancel_refunds", {"site_id": 14}, {"arguments": "refund_ids, or all_pending"}),
    (
        "create_address",
        {"site_id": 14, "customer_id": 1, "type": "shipping", "line1": "1 Main", "country": "US"},
        {"arguments": "needs a state"},
    ),
    (
        "create_address",
        {"site_id": 14, "customer_id": 1, "type": "home", "line1": "1 Main", "country": "usa"},
        {"type": "'shipping'", "country": "pattern"},
    ),
]


@pytest.mark.parametrize("mode", ERAS)
async def test_bad_arguments_are_named_one_by_one(mcp_env, truth, mode):
    token = mcp_env.token()
    before = truth.last_seq()
    async with mcp_session(mcp_env.url, token, mode) as client:
        for name, arguments, expected in BAD_INPUT:
            result = await client.call_tool(name, arguments)
            assert result.is_error, (name, arguments)
            failure = result.structured_content
            assert failure["error"] == "invalid_arguments", (name, arguments)
            for field, text in expected.items():
                assert any(text in message for message in failure["fields"][field]), (field, failure["fields"])
                assert field in result.content[0].text
            assert "Traceback" not in result.content[0].text and "pydantic" not in result.content[0].text
    # Refused before the upstream: nothing reached the sandbox.
    assert truth.log(since=before) == []
    rows = await audit_rows_async(len(BAD_INPUT))
    assert len(rows) == len(BAD_INPUT)
    assert all(r.outcome == "error" and r.error_message.startswith("Invalid arguments for") for r in rows)


async def test_upstream_errors_come_back_field_by_field(mcp_env, truth):
    token = mcp_env.token(confirm_writes=False)  # the writes reach the upstream without asking
    taken = truth.ok("GET", "/customers", site_id=14, params={"limit": 1})[0]["email"]
    async with mcp_session(mcp_env.url, token, "2026-07-28") as client:
        duplicate = await client.call_tool("create_customer", {"site_id": 14, "email": taken})
        assert duplicate.is_error
        failure = duplicate.structured_content
        assert (failure["error"], failure["upstream_status"]) == ("validation_failed", 400)
        assert failure["fields"] == {"email": ["The email has already been taken."]}
        assert "- email: The email has already been taken." in duplicate.content[0].text

        customer = truth.ok("GET", "/customers", site_id=14, params={"limit": 1})[0]["id"]
        paid = truth.ok("GET", "/invoices", site_id=14, params={"filter[status]": "eq:paid", "limit": 1})[0]
        mismatch = await client.call_tool(
            "create_offline_charge",
            {
                "site_id": 14,
                "customer_id": customer,
                "amount": 100,
                "currency": "eur",
                "reference": "R",
                "payment_category": "check",
                "invoice_id": paid["id"],
            },
        )
        assert mismatch.is_error and mismatch.structured_content["error"] == "validation_failed"
        assert "currency" in mismatch.structured_content["fields"]  # the invoice is in usd

        refused = await client.call_tool(
            "pay_invoice_offline",
            {"site_id": 14, "invoice_id": paid["id"], "reference": "again", "payment_category": "cash"},
        )
        assert refused.structured_content["error"] == "refused"
        assert "already paid" in refused.content[0].text

        missing = await client.call_tool("get_invoice", {"site_id": 14, "invoice_id": 987654})
        assert missing.structured_content == {
            "error": "not_found",
            "upstream_status": 404,
            "message": "Invoice 987654 was not found on site 14.",
        }
    rows = await audit_rows_async(4)
    assert [(r.tool, r.outcome, r.upstream_status) for r in rows] == [
        ("create_customer", "error", 400),
        ("create_offline_charge", "error", 400),
        ("pay_invoice_offline", "error", 400),
        ("get_invoice", "error", 404),
    ]


async def test_a_missing_or_rejected_account_key_is_explained(mcp_env):
    from accounts.models import Account

    token = mcp_env.token()

    def set_key(value):
        account = Account.objects.get(slug="acme")
        if value is None:
            account.api_key_encrypted = ""
        else:
            account.set_api_key(value)
        account.save()

    async with mcp_session(mcp_env.url, token, "2026-07-28") as client:
        await run_db(set_key, "sbx_acme_wrong_key_000")
        rejected = await client.call_tool("list_plans", {"site_id": 14})
        await run_db(set_key, None)
        missing = await client.call_tool("list_plans", {"site_id": 14})
    assert rejected.structured_content == {
        "error": "unauthorized",
        "upstream_status": 401,
        "message": "The Core API rejected the account's API key; an account administrator must replace it.",
    }
    assert missing.structured_content["error"] == "unauthorized"
    assert "no usable Core API key" in missing.content[0].text
    assert "sbx_" not in rejected.content[0].text + missing.content[0].text


@pytest.fixture
def limited_gateway(transactional_db, demo_users, mcp_sandbox):
    """A gateway whose own limiter allows 3 calls a minute and never waits."""
    server = start_gateway(
        mcp_sandbox, RATE_LIMIT="3", RATE_SAFETY_MARGIN="0", RATE_WINDOW_SECONDS="60", RATE_WAIT_BUDGET_SECONDS="0"
    )
    yield server
    server.stop()


async def test_rate_limited_calls_say_when_to_retry(limited_gateway):
    token = obtain_tokens(limited_gateway.url, "demo", "pelcro-demo-2026", "other")["access_token"]
    async with mcp_session(limited_gateway.url + "/", token, "2026-07-28") as client:
        results = [await client.call_tool("list_plans", {"site_id": 27}) for _ in range(5)]
    assert [r.is_error for r in results] == [False, False, False, True, True]
    limited = results[3]
    retry_after = limited.structured_content["retry_after"]
    assert limited.structured_content["error"] == "rate_limited" and 1 <= retry_after <= 60
    assert limited.content[0].text == f"rate limit for this account reached, retry in {retry_after} s"
    rows = await audit_rows_async(5)
    assert [row.outcome for row in rows] == ["ok", "ok", "ok", "rate_limited", "rate_limited"]
    # The gateway's own limiter refused them: the Core API never answered, so no upstream
    # status, neither in the audit nor in the tool's answer (a local refusal is not a 429).
    assert [row.upstream_status for row in rows] == [200, 200, 200, None, None]
    assert limited.structured_content.get("upstream_status") is None
    # The ops JSON counts them as the gateway's refusals, apart from Pelcro's 429s.
    session = await asyncio.to_thread(signed_in, limited_gateway.url, "demo", "pelcro-demo-2026")
    try:
        account = (await asyncio.to_thread(session.get, f"/ops/api/accounts/{rows[0].account_id}")).json()
    finally:
        session.close()
    assert (account["account"]["rejections_last_hour"], account["account"]["upstream_429s_last_hour"]) == (2, 0)
    assert [(c["outcome"], c["refused_locally"], c["upstream_status"]) for c in account["tool_calls"][:2]] == [
        ("rate_limited", True, None),
        ("rate_limited", True, None),
    ]


@pytest.fixture
def orphan_gateway(transactional_db, demo_users):
    """A gateway whose Core API is down (nothing listens on its port)."""
    server = start_gateway(
        None,
        CORE_API_BASE_URL=f"http://127.0.0.1:{free_port()}/api/v1/core",
        CORE_API_MAX_RETRIES="0",
        RATE_LIMIT=OUT_OF_REACH,
    )
    yield server
    server.stop()


async def test_an_unreachable_upstream_is_a_clear_tool_error(orphan_gateway):
    token = obtain_tokens(orphan_gateway.url, "demo", "pelcro-demo-2026", "acme")["access_token"]
    async with mcp_session(orphan_gateway.url + "/", token, "legacy") as client:
        result = await client.call_tool("get_customer", {"site_id": 14, "customer_id": 1})
    assert result.is_error
    assert result.structured_content["error"] == "upstream_unavailable"
    assert "unreachable" in result.content[0].text
    [row] = await audit_rows_async(1)
    assert (row.outcome, row.upstream_status) == ("error", None)
