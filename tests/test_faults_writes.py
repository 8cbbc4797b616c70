"""Writes are never silently repeated (issue 12), through the real gateway (MCP SDK client →
uvicorn gateway → sandbox with faults switched on at runtime).

A write tool whose request may have reached the upstream (it timed out, the upstream
answered 5xx, or the connection was reset after the request was sent) is never sent again
by the gateway, whatever its HTTP method (PUT and DELETE included). The sandbox's request
log proves ONE upstream request per write call, and the tool error says
`may_have_been_applied: true` with the read that shows whether it was. Reads are still
retried, and writes still are when nothing was sent (connection refused, 429: see
test_faults_upstream.py). Timeouts are compressed (tests.support.faults.FAST_FAIL_ENV:
0.5 s per attempt, two retries where a retry is safe).
"""

from __future__ import annotations

import pytest

from devtools.oauth_client import obtain_tokens
from mcp_bridge.servers import TOOLS
from tests.support.faults import (
    ACME_SITE,
    PLANS_ARGS,
    TcpProxy,
    call_tool,
    call_tools,
    new_customer_args,
    requests_to,
    settled_log,
    start_fault_gateway,
)
from tests.support.mcp import PASSWORDS, audit_rows, audit_rows_async, mcp_session

UNSURE = "may or may not have been applied"
SLOWER_THAN_THE_TIMEOUT = {"latency_ms": 1500}  # three times the gateway's 0.5 s
MISSING = 987654321  # no object of any kind has this id: a write to it changes nothing


def write_calls(customer_id: int) -> dict[str, tuple[dict, str, str, str]]:
    """For each write tool: its arguments, the request it makes (method, path), and the read
    tool its error must name. The objects are missing (or the write creates something
    harmless), so what the sandbox applies after the gateway gave up changes nothing."""
    site = {"site_id": ACME_SITE}
    m = MISSING
    return {
        "create_customer": (new_customer_args("w"), "POST", "/customers", "list_customers"),
        "update_customer": ({**site, "customer_id": m, "first_name": "X"}, "PUT", f"/customers/{m}", "get_customer"),
        "delete_customer": ({**site, "customer_id": m}, "DELETE", f"/customers/{m}", "get_customer"),
        "create_invoice": (
            {**site, "customer_id": m, "currency": "usd", "total": 100},
            "POST",
            "/invoices",
            "list_invoices",
        ),
        "update_invoice": ({**site, "invoice_id": m, "metadata": {"po": "1"}}, "PUT", f"/invoices/{m}", "get_invoice"),
        "pay_invoice_offline": (
            {**site, "invoice_id": m, "reference": "CHQ-1", "payment_category": "check"},
            "POST",
            f"/invoices/{m}/pay_offline",
            "get_invoice",
        ),
        "void_invoice": ({**site, "invoice_id": m}, "POST", f"/invoices/{m}/void", "get_invoice"),
        "mark_invoice_uncollectible": (
            {**site, "invoice_id": m},
            "POST",
            f"/invoices/{m}/uncollectible",
            "get_invoice",
        ),
        "apply_invoice_balance": ({**site, "invoice_id": m}, "POST", f"/invoices/{m}/apply_balance", "get_invoice"),
        "create_subscription": (
            {**site, "customer_id": m, "plan_id": m, "quantity": 1, "collection_method": "send_invoice"},
            "POST",
            "/subscriptions",
            "get_customer",
        ),
        "cancel_subscription": (
            {**site, "subscription_id": m, "mode": "now", "reason": "test"},
            "DELETE",
            f"/subscriptions/{m}",
            "get_subscription",
        ),
        "create_offline_charge": (
            {
                **site,
                "customer_id": m,
                "amount": 100,
                "currency": "usd",
                "reference": "W-1",
                "payment_category": "wire",
            },
            "POST",
            "/charges",
            "get_customer",
        ),
        "cancel_refunds": ({**site, "refund_ids": [m]}, "POST", "/refunds/cancelled", "list_refunds"),
        "create_address": (
            {**site, "customer_id": m, "type": "billing", "line1": "1 High St", "country": "GB"},
            "POST",
            "/addresses",
            "get_customer",
        ),
        "update_address": ({**site, "address_id": m, "city": "Leeds"}, "PUT", f"/addresses/{m}", "get_address"),
        "delete_address": ({**site, "address_id": m}, "DELETE", f"/addresses/{m}", "get_address"),
    }


def assert_unsure(outcome, read_tool: str) -> None:
    assert outcome.error == "upstream_unavailable", outcome
    assert outcome.structured["may_have_been_applied"] is True, outcome
    assert UNSURE in outcome.text and "not sent again" in outcome.text, outcome.text
    assert "Before trying again, " in outcome.text and read_tool in outcome.text, outcome.text


def test_every_write_tool_is_covered():
    """A new write tool must join the fault tests below (and say what to check)."""
    writes = {name for name, tool in TOOLS.items() if not tool.read_only}
    assert writes == set(write_calls(1)), writes ^ set(write_calls(1))


@pytest.mark.parametrize("fault", ["timeout", "5xx"])
def test_a_write_of_any_method_reaches_the_upstream_once_and_says_what_to_check(faults, fault):
    sandbox, token = faults.sandbox, faults.token()
    calls = write_calls(MISSING)
    sandbox.configure(**(SLOWER_THAN_THE_TIMEOUT if fault == "timeout" else {"error_rate": 1}))
    since = sandbox.last_seq()
    outcomes = call_tools(faults.url, token, [(name, args) for name, (args, *_) in calls.items()])
    entries = settled_log(sandbox, since)
    sandbox.configure(latency_ms=0, error_rate=0)

    for outcome, (name, (_, method, path, read_tool)) in zip(outcomes, calls.items(), strict=True):
        assert_unsure(outcome, read_tool)
        if fault == "timeout":
            assert outcome.seconds < 1.5, (name, outcome.seconds)  # one 0.5 s attempt, no retry
        else:
            assert outcome.structured["upstream_status"] in (500, 502, 503)
        assert len(requests_to(entries, method, path)) == 1, (name, requests_to(entries, method, path))
    assert len(entries) == len(calls)  # nothing else was sent either
    rows = audit_rows(len(calls))
    assert [(r.tool, r.outcome) for r in rows] == [(name, "error") for name in calls]
    assert all(UNSURE in r.error_message for r in rows)


def test_a_timed_out_invoice_put_is_sent_once_and_the_advice_finds_it_done(faults):
    """The reported case: an update_invoice PUT timed out, was sent three times, and was then
    reported wrongly although the first request had applied it (then a draft finalization;
    the Core API's update is metadata-only now, CORE_API.md §8.4)."""
    sandbox, token = faults.sandbox, faults.token()
    customer = sandbox.ok("POST", "/customers", 201, site_id=ACME_SITE, json=new_customer_args("draft"))
    draft = sandbox.ok(
        "POST",
        "/invoices",
        201,
        site_id=ACME_SITE,
        json={"customer_id": customer["id"], "currency": "usd", "total": 4200},
    )
    assert draft["status"] == "draft"
    sandbox.configure(**SLOWER_THAN_THE_TIMEOUT)
    since = sandbox.last_seq()
    [finalized] = call_tools(
        faults.url,
        token,
        [("update_invoice", {"site_id": ACME_SITE, "invoice_id": draft["id"], "metadata": {"po": "PO-9"}})],
    )
    entries = settled_log(sandbox, since)
    sandbox.configure(latency_ms=0)

    assert_unsure(finalized, "get_invoice")
    assert f"read invoice {draft['id']} with get_invoice" in finalized.text
    [put] = requests_to(entries, "PUT", f"/invoices/{draft['id']}")
    assert put["status"] == 200  # the one request did apply it (after the gateway gave up)
    # Following the advice shows it done, so the assistant does not try again.
    [checked] = call_tools(faults.url, token, [("get_invoice", {"site_id": ACME_SITE, "invoice_id": draft["id"]})])
    assert not checked.is_error and checked.structured["metadata"] == {"po": "PO-9"}
    assert [(r.tool, r.outcome) for r in audit_rows(2)] == [("update_invoice", "error"), ("get_invoice", "ok")]


def test_repeated_timeouts_send_each_write_once(faults):
    """The upstream stays slow while an assistant keeps trying: every call is one request
    (the caller's own tries are not multiplied), each says it may have been applied, and
    reads in between are still retried."""
    sandbox, token = faults.sandbox, faults.token()
    customer = sandbox.ok("POST", "/customers", 201, site_id=ACME_SITE, json=new_customer_args("again"))
    update = ("update_customer", {"site_id": ACME_SITE, "customer_id": customer["id"], "metadata": {"tries": "x"}})
    delete = ("delete_customer", {"site_id": ACME_SITE, "customer_id": customer["id"]})
    create = ("create_customer", new_customer_args("again"))
    plans = ("list_plans", PLANS_ARGS)
    sandbox.configure(**SLOWER_THAN_THE_TIMEOUT)
    since = sandbox.last_seq()
    outcomes = call_tools(faults.url, token, [update, update, update, plans, create, create, delete, delete])
    entries = settled_log(sandbox, since)
    sandbox.configure(latency_ms=0)

    for outcome in outcomes:
        if outcome.tool == "list_plans":
            assert outcome.error == "upstream_unavailable" and "may_have_been_applied" not in outcome.structured
        else:
            assert_unsure(outcome, "get_customer" if outcome.tool != "create_customer" else "list_customers")
    assert len(requests_to(entries, "PUT", f"/customers/{customer['id']}")) == 3
    assert len(requests_to(entries, "POST", "/customers")) == 2
    assert len(requests_to(entries, "DELETE", f"/customers/{customer['id']}")) == 2
    assert len(requests_to(entries, "GET", "/plans")) == 3  # a read: first try + 2 retries
    assert len(entries) == 3 + 2 + 2 + 3
    # The same body three times because the caller asked three times, not because of retries.
    assert len({e["body_sha256"] for e in requests_to(entries, "PUT", f"/customers/{customer['id']}")}) == 1
    assert len(audit_rows(len(outcomes))) == len(outcomes)


@pytest.fixture
def resetting_gateway(faults, fault_sandbox, django_db_blocker):
    """A gateway whose way to the sandbox goes through a `TcpProxy` that can reset
    connections after the sandbox has answered (the answer is lost)."""
    proxy = TcpProxy("127.0.0.1", fault_sandbox.port)
    with django_db_blocker.unblock():
        server = start_fault_gateway(None, CORE_API_BASE_URL=f"http://127.0.0.1:{proxy.port}/api/v1/core")
    yield server, proxy
    server.stop()
    proxy.close()


async def test_a_connection_reset_after_the_request_was_sent_never_repeats_a_write(faults, resetting_gateway):
    gateway, proxy = resetting_gateway
    sandbox = faults.sandbox
    # Confirmations off (the owner's choice at consent): this test is about what reaches the upstream.
    token = obtain_tokens(gateway.url, "demo", PASSWORDS["demo"], "acme", confirm_writes=False)["access_token"]
    customer = sandbox.ok("POST", "/customers", 201, site_id=ACME_SITE, json=new_customer_args("reset"))
    write = new_customer_args("reset")
    calls = [
        ("create_customer", write),
        ("update_customer", {"site_id": ACME_SITE, "customer_id": customer["id"], "metadata": {"reset": "1"}}),
        ("delete_customer", {"site_id": ACME_SITE, "customer_id": customer["id"]}),
        ("list_plans", PLANS_ARGS),
    ]
    proxy.reset_answers = True
    since = sandbox.last_seq()
    async with mcp_session(gateway.url + "/", token, "2026-07-28") as client:
        outcomes = [await call_tool(client, name, args) for name, args in calls]
    entries = settled_log(sandbox, since)
    proxy.reset_answers = False

    created, updated, deleted, listed = outcomes
    assert_unsure(created, "list_customers")
    assert_unsure(updated, "get_customer")
    assert_unsure(deleted, "get_customer")
    assert listed.error == "upstream_unavailable" and "connection failed" in listed.text
    assert "may_have_been_applied" not in listed.structured
    # Each write reached the sandbox once and was applied there; the read was tried thrice.
    assert [(e["method"], e["status"]) for e in entries] == [
        ("POST", 201),
        ("PUT", 200),
        ("DELETE", 204),
        ("GET", 200),
        ("GET", 200),
        ("GET", 200),
    ]
    assert (
        len(sandbox.ok("GET", "/customers", site_id=ACME_SITE, params={"filter[email]": f"eq:{write['email']}"})) == 1
    )
    assert sandbox.api("GET", f"/customers/{customer['id']}").status_code == 404  # deleted

    # The same gateway works again once answers come back.
    async with mcp_session(gateway.url + "/", token, "2026-07-28") as client:
        again = await call_tool(client, *calls[3])
    assert not again.is_error
    rows = await audit_rows_async(len(calls) + 1)
    assert [r.outcome for r in rows] == ["error"] * 4 + ["ok"]
