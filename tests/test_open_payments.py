"""The Open server's invoice and payment-method tools (issue 14 item 4; previews and
confirmation declarations of issue 15): list_my_invoices, pay_invoice,
list_my_payment_methods, set_default_payment_method, delete_payment_method.

Real parts: the sandbox's Open and Core APIs over one data world, the gateway process, SDK
clients. Each test registers its own subscribers (`tests.support.open_data`), so it knows
exactly what they have. For every write tool and every rule of OPEN_API.md §5.5/§5.7, a
dry run's verdict is compared with what the real call then does, and the sandbox's request
log shows that the dry run wrote nothing.
"""

from __future__ import annotations

import re

import pytest
from asgiref.sync import sync_to_async

from mcp_bridge.open.payment_methods import PaymentMethod
from mcp_bridge.servers import OPEN_TOOLS
from tests.support import open_data
from tests.support.mcp import ERAS, audit_rows_async
from tests.support.open import READ_WRITE, open_session
from tests.support.sandbox import SandboxClient

PAYMENT_TOOLS = (
    "list_my_invoices",
    "pay_invoice",
    "list_my_payment_methods",
    "set_default_payment_method",
    "delete_payment_method",
)


@pytest.fixture
def sandbox(mcp_env):
    client = SandboxClient(mcp_env.sandbox)
    yield client
    client.close()


def fresh(env, site_id: int = 14, cards: int = 1) -> dict:
    """A new subscriber of `site_id` with `cards` saved cards (the first is the default)."""
    subscriber = open_data.register(env.sandbox.url, site_id)
    subscriber["cards"] = [
        open_data.add_card(env.sandbox.url, subscriber, f"tok_visa_{4000 + n}") for n in range(cards)
    ]
    return subscriber


def session(env, subscriber: dict, **options):
    return open_session(env, subscriber, access=READ_WRITE, confirm_writes=False, **options)


# --- Declarations --------------------------------------------------------------------------


def test_the_tools_are_served_with_honest_annotations_and_confirmation():
    assert set(PAYMENT_TOOLS) <= set(OPEN_TOOLS)
    hints = {name: (s.read_only, s.destructive, s.idempotent) for name, s in OPEN_TOOLS.items()}
    assert hints["list_my_invoices"] == hints["list_my_payment_methods"] == (True, False, True)
    assert hints["pay_invoice"] == (False, False, False)  # a second call would charge again
    assert hints["set_default_payment_method"] == (False, False, True)
    assert hints["delete_payment_method"] == (False, True, True)
    for name in ("pay_invoice", "delete_payment_method"):
        spec = OPEN_TOOLS[name]
        assert spec.needs_confirmation(spec.args_model.model_construct()) and "confirm" in spec.description
    assert OPEN_TOOLS["set_default_payment_method"].confirm is None
    for name in ("pay_invoice", "set_default_payment_method", "delete_payment_method"):
        assert OPEN_TOOLS[name].preview is not None
        assert {"dry_run", "idempotency_key"} <= set(OPEN_TOOLS[name].input_schema()["properties"])


# --- Invoices ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ERAS)
async def test_list_my_invoices_shows_only_mine_with_what_is_owed(mcp_env, mode):
    me = await sync_to_async(fresh)(mcp_env)
    other = await sync_to_async(fresh)(mcp_env)
    url = mcp_env.sandbox.url
    owed = await sync_to_async(open_data.invoice)(url, me, total=1500)
    draft = await sync_to_async(open_data.invoice)(url, me, status="draft", total=700)
    paid = await sync_to_async(open_data.invoice)(url, me, status="paid", total=2500)
    theirs = await sync_to_async(open_data.invoice)(url, other, total=999)
    async with session(mcp_env, me, mode=mode) as (client, conn):
        answer = await client.call_tool("list_my_invoices", {})
        assert not answer.is_error, answer
        data = answer.structured_content
        assert [i["id"] for i in data["invoices"]] == [paid["id"], draft["id"], owed["id"]]  # newest first
        assert theirs["id"] not in {i["id"] for i in data["invoices"]}
        assert data["owed"] == [{"currency": "usd", "amount": 1500, "invoices": 1}]
        first = data["invoices"][-1]
        assert first["amount_remaining"] == 1500 and re.fullmatch(
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", first["created_at"]
        )
        assert "owed now: 15.00 USD on 1 invoice(s)" in answer.content[0].text
        only_open = await client.call_tool("list_my_invoices", {"status_in": ["open", "past_due"]})
        assert [i["id"] for i in only_open.structured_content["invoices"]] == [owed["id"]]
    rows = await audit_rows_async(2, connection_id=conn.connection_id)
    assert {(r.site_id, r.customer_id, r.outcome) for r in rows} == {(14, me["customer_id"], "ok")}


@pytest.mark.parametrize("mode", ERAS)
async def test_paying_through_open_shows_paid_in_core(mcp_env, sandbox, mode):
    me = await sync_to_async(fresh)(mcp_env, cards=2)
    card = me["cards"][1]  # not the default: the one named is the one charged
    bill = await sync_to_async(open_data.invoice)(mcp_env.sandbox.url, me, total=1500)
    async with session(mcp_env, me, mode=mode) as (client, conn):
        seq = sandbox.last_seq()
        preview = await client.call_tool(
            "pay_invoice", {"invoice_id": bill["id"], "payment_method_id": card["id"], "dry_run": True}
        )
        assert not preview.is_error, preview
        dry = preview.structured_content
        assert dry["dry_run"] is True and dry["allowed"] is True and dry["needs_confirmation"] is True
        assert dry["would_send"] == {
            "method": "POST",
            "path": f"/invoices/{bill['id']}/pay",
            "query": {"site_id": 14},
            "body": {"source_id": card["id"]},
        }
        summary = dry["summary"]
        for part in (
            "Acme Daily (site 14)",
            bill["number"],
            "15.00 USD",
            f"visa ending {card['last4']}",
            "cannot be undone",
        ):
            assert part in summary, (part, summary)
        assert {"field": f"invoice {bill['id']} status", "before": "open", "after": "paid"} in dry["changes"]
        assert "bank" in dry["not_checked"][0]  # a decline shows only when charged
        assert open_data.requests_since(sandbox, seq) == [("POST", "/api/v1/sdk/customer")]  # one read, no write
        assert open_data.core_api(mcp_env.sandbox.url, "GET", f"/invoices/{bill['id']}", 14)["status"] == "open"

        paid = await client.call_tool("pay_invoice", {"invoice_id": bill["id"], "payment_method_id": card["id"]})
        assert not paid.is_error, paid
        assert paid.structured_content["paid"] is True
        assert paid.structured_content["payment_method"]["id"] == card["id"]
        assert f"Paid invoice {bill['number']}" in paid.content[0].text
    core = open_data.core_api(mcp_env.sandbox.url, "GET", f"/invoices/{bill['id']}", 14)
    assert core["status"] == "paid" and core["amount_paid"] == 1500 and core["amount_remaining"] == 0
    pays = [e for e in sandbox.log(since=seq, api="open") if e["path"].endswith("/pay")]
    assert len(pays) == 1 and pays[0]["status"] == 200  # the dry run sent none
    rows = await audit_rows_async(2, connection_id=conn.connection_id, tool="pay_invoice")
    assert [(r.dry_run, r.outcome, r.site_id, r.customer_id) for r in rows] == [
        (True, "ok", 14, me["customer_id"]),
        (False, "ok", 14, me["customer_id"]),
    ]


async def test_pay_invoice_uses_the_default_card_when_none_is_named(mcp_env):
    me = await sync_to_async(fresh)(mcp_env, cards=2)
    bill = await sync_to_async(open_data.invoice)(mcp_env.sandbox.url, me, total=800)
    async with session(mcp_env, me) as (client, _):
        dry = (await client.call_tool("pay_invoice", {"invoice_id": bill["id"], "dry_run": True})).structured_content
        assert dry["would_send"]["body"] == {"source_id": me["cards"][0]["id"]} and dry["allowed"]
        paid = await client.call_tool("pay_invoice", {"invoice_id": bill["id"]})
        assert not paid.is_error and paid.structured_content["payment_method"]["id"] == me["cards"][0]["id"]


@pytest.mark.parametrize(
    "arguments",
    [
        {"card_number": "4242424242424242"},
        {"cvc": "123"},
        {"gateway_token": "tok_visa"},
        {"payment_gateway": "stripe", "token": "tok_visa"},
    ],
)
async def test_card_data_is_never_accepted(mcp_env, sandbox, arguments):
    me = await sync_to_async(fresh)(mcp_env)
    bill = await sync_to_async(open_data.invoice)(mcp_env.sandbox.url, me)
    async with session(mcp_env, me) as (client, _):
        seq = sandbox.last_seq()
        answer = await client.call_tool("pay_invoice", {"invoice_id": bill["id"], **arguments})
        assert answer.is_error and answer.structured_content["error"] == "invalid_arguments"
        assert "adds a card on the publication's own website" in answer.content[0].text
        assert "4242424242424242" not in answer.content[0].text
        assert sandbox.log(since=seq, api="open") == []
    assert "card_number" not in OPEN_TOOLS["pay_invoice"].input_schema()["properties"]


# --- Previews match the real calls, rule by rule --------------------------------------------------------


def _invoice_case(env, case: str) -> tuple[dict, dict, bool]:
    """(subscriber, pay_invoice arguments, allowed) for one rule of OPEN_API.md §5.7."""
    url = env.sandbox.url
    me = fresh(env, cards=1 if case != "no card" else 0)
    card = me["cards"][0]["id"] if me["cards"] else None
    if case == "open":
        return me, {"invoice_id": open_data.invoice(url, me)["id"], "payment_method_id": card}, True
    if case in ("paid", "void", "uncollectible", "draft"):
        return me, {"invoice_id": open_data.invoice(url, me, status=case)["id"], "payment_method_id": card}, False
    if case == "unknown invoice":
        return me, {"invoice_id": 2_000_000_000, "payment_method_id": card}, False
    if case == "another customer's invoice":
        return me, {"invoice_id": open_data.invoice(url, fresh(env))["id"], "payment_method_id": card}, False
    if case == "another site's invoice":
        return me, {"invoice_id": open_data.invoice(url, fresh(env, 15))["id"], "payment_method_id": card}, False
    if case == "another customer's card":
        return (
            me,
            {"invoice_id": open_data.invoice(url, me)["id"], "payment_method_id": fresh(env)["cards"][0]["id"]},
            False,
        )
    if case == "another site's card":
        return (
            me,
            {"invoice_id": open_data.invoice(url, me)["id"], "payment_method_id": fresh(env, 15)["cards"][0]["id"]},
            False,
        )
    if case == "no card":
        return me, {"invoice_id": open_data.invoice(url, me)["id"]}, False
    raise AssertionError(case)


PAY_CASES = [
    "open",
    "paid",
    "void",
    "uncollectible",
    "draft",
    "unknown invoice",
    "another customer's invoice",
    "another site's invoice",
    "another customer's card",
    "another site's card",
    "no card",
]


@pytest.mark.parametrize("case", PAY_CASES)
async def test_pay_invoice_preview_matches_the_real_call(mcp_env, sandbox, case):
    me, arguments, allowed = await sync_to_async(_invoice_case)(mcp_env, case)
    async with session(mcp_env, me) as (client, _):
        seq = sandbox.last_seq()
        dry = await client.call_tool("pay_invoice", {**arguments, "dry_run": True})
        assert not dry.is_error, dry
        assert dry.structured_content["allowed"] is allowed, dry.structured_content
        assert open_data.writes_since(sandbox, seq) == []
        assert len(sandbox.log(since=seq, api="open")) == 1  # at most one upstream read
        real = await client.call_tool("pay_invoice", arguments)
        assert real.is_error is (not allowed), real
        if not allowed:
            assert real.structured_content["error"] == "refused"
    status = (
        open_data.core_api(mcp_env.sandbox.url, "GET", f"/invoices/{arguments['invoice_id']}", 14) if allowed else None
    )
    assert status is None or status["status"] == "paid"


async def test_another_customers_or_sites_ids_answer_exactly_as_unknown_ones(mcp_env):
    """Nothing leaks: an invoice or card of another customer, or of another site, gets the
    answer of an id that does not exist (the id itself aside), from every tool that takes one."""
    url = mcp_env.sandbox.url
    me = await sync_to_async(fresh)(mcp_env, cards=2)
    neighbour = await sync_to_async(fresh)(mcp_env)
    elsewhere = await sync_to_async(fresh)(mcp_env, 15)
    mine = await sync_to_async(open_data.invoice)(url, me)
    invoices = {
        "unknown": 2_000_000_001,
        "neighbour": (await sync_to_async(open_data.invoice)(url, neighbour))["id"],
        "elsewhere": (await sync_to_async(open_data.invoice)(url, elsewhere))["id"],
    }
    cards = {
        "unknown": 2_000_000_002,
        "neighbour": neighbour["cards"][0]["id"],
        "elsewhere": elsewhere["cards"][0]["id"],
    }

    def same(answers: dict[str, tuple[bool, str]], ids: dict[str, int]) -> None:
        shapes = {who: (is_error, text.replace(str(ids[who]), "<id>")) for who, (is_error, text) in answers.items()}
        assert len(set(shapes.values())) == 1, shapes
        assert all(is_error for is_error, _ in shapes.values())

    async with session(mcp_env, me) as (client, _):
        for dry_run in (True, False):
            answers = {}
            for who, invoice_id in invoices.items():
                args = {"invoice_id": invoice_id, "payment_method_id": me["cards"][0]["id"]}
                answer = await client.call_tool("pay_invoice", {**args, "dry_run": dry_run})
                data = answer.structured_content
                answers[who] = (answer.is_error or not data["allowed"], data.get("verdict") or answer.content[0].text)
            same(answers, invoices)
            for tool in ("pay_invoice", "set_default_payment_method", "delete_payment_method"):
                answers = {}
                for who, card_id in cards.items():
                    args = {"payment_method_id": card_id} | (
                        {"invoice_id": mine["id"]} if tool == "pay_invoice" else {}
                    )
                    answer = await client.call_tool(tool, {**args, "dry_run": dry_run})
                    data = answer.structured_content
                    answers[who] = (
                        answer.is_error or not data["allowed"],
                        data.get("verdict") or answer.content[0].text,
                    )
                same(answers, cards)
        listed = await client.call_tool("list_my_payment_methods", {})
        assert {m["id"] for m in listed.structured_content["payment_methods"]} == {c["id"] for c in me["cards"]}
    # Nothing of theirs changed.
    assert open_data.core_api(url, "GET", f"/invoices/{invoices['neighbour']}", 14)["status"] == "open"
    assert open_data.core_api(url, "GET", f"/invoices/{invoices['elsewhere']}", 15)["status"] == "open"


# --- Payment methods --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ERAS)
async def test_list_and_set_default_payment_method(mcp_env, sandbox, mode):
    me = await sync_to_async(fresh)(mcp_env, cards=2)
    first, second = me["cards"]
    async with session(mcp_env, me, mode=mode) as (client, conn):
        listed = await client.call_tool("list_my_payment_methods", {})
        assert not listed.is_error, listed
        data = listed.structured_content
        assert data["default_id"] == first["id"]
        assert [(m["id"], m["is_default"], m["deletable"]) for m in data["payment_methods"]] == [
            (first["id"], True, False),
            (second["id"], False, True),
        ]
        assert data["payment_methods"][0]["created_at"].endswith("Z")
        assert set(data["payment_methods"][0]) == set(PaymentMethod.model_fields)  # nothing untyped passes
        seq = sandbox.last_seq()
        dry = (
            await client.call_tool("set_default_payment_method", {"payment_method_id": second["id"], "dry_run": True})
        ).structured_content
        assert dry["allowed"] and dry["needs_confirmation"] is False
        assert {"field": f"payment method {first['id']} is_default", "before": True, "after": False} in dry["changes"]
        assert f"visa ending {second['last4']}" in dry["summary"] and "Acme Daily (site 14)" in dry["summary"]
        assert open_data.requests_since(sandbox, seq) == [("GET", "/api/v1/sdk/payment_methods")]
        done = await client.call_tool("set_default_payment_method", {"payment_method_id": second["id"]})
        assert not done.is_error and done.structured_content["is_default"] is True
        again = (
            await client.call_tool("set_default_payment_method", {"payment_method_id": second["id"], "dry_run": True})
        ).structured_content
        assert again["allowed"] and again["changes"] == [] and "already" in again["verdict"]
    profile = open_data.open_api(mcp_env.sandbox.url, "POST", "/customer", 14, jwt=me["jwt"])["data"]
    assert profile["default_source"]["id"] == second["id"]


def _delete_case(env, case: str) -> tuple[dict, int, bool, str | None]:
    """(subscriber, payment_method_id, allowed, refusal words) for one rule of §5.5."""
    me = fresh(env, cards=2)
    first, second = me["cards"]
    if case == "unused, not default":
        return me, second["id"], True, None
    if case == "default":
        return me, first["id"], False, "default payment method cannot be deleted"
    if case == "used by a subscription":
        open_data.subscribe(env.sandbox.url, me, second["id"])
        return me, second["id"], False, "used by a subscription"
    if case == "unknown":
        return me, 2_000_000_003, False, "not found"
    if case == "another customer's":
        return me, fresh(env, cards=2)["cards"][1]["id"], False, "not found"
    if case == "another site's":
        return me, fresh(env, 15, cards=2)["cards"][1]["id"], False, "not found"
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    ["unused, not default", "default", "used by a subscription", "unknown", "another customer's", "another site's"],
)
async def test_delete_payment_method_preview_matches_the_real_call(mcp_env, sandbox, case):
    me, method_id, allowed, words = await sync_to_async(_delete_case)(mcp_env, case)
    async with session(mcp_env, me) as (client, _):
        seq = sandbox.last_seq()
        answer = await client.call_tool("delete_payment_method", {"payment_method_id": method_id, "dry_run": True})
        dry = answer.structured_content
        assert dry["allowed"] is allowed and dry["irreversible"] is True and dry["needs_confirmation"] is True
        assert open_data.requests_since(sandbox, seq) == [("GET", "/api/v1/sdk/payment_methods")]  # one read, no write
        if allowed:
            assert "cannot be undone" in dry["summary"] and f"ending {me['cards'][1]['last4']}" in dry["summary"]
        else:
            assert words in dry["verdict"]
        real = await client.call_tool("delete_payment_method", {"payment_method_id": method_id})
        assert real.is_error is (not allowed), real
        if allowed:
            assert real.structured_content["deleted"] is True
            left = await client.call_tool("list_my_payment_methods", {})
            assert method_id not in {m["id"] for m in left.structured_content["payment_methods"]}
        else:
            assert real.structured_content["error"] == "refused" and words in real.content[0].text


async def test_set_default_preview_matches_the_real_call_for_foreign_ids(mcp_env, sandbox):
    me = await sync_to_async(fresh)(mcp_env, cards=1)
    theirs = (await sync_to_async(fresh)(mcp_env, 15))["cards"][0]["id"]
    async with session(mcp_env, me) as (client, _):
        seq = sandbox.last_seq()
        dry = await client.call_tool("set_default_payment_method", {"payment_method_id": theirs, "dry_run": True})
        assert dry.structured_content["allowed"] is False
        assert open_data.writes_since(sandbox, seq) == []
        real = await client.call_tool("set_default_payment_method", {"payment_method_id": theirs})
        assert real.is_error and real.structured_content["error"] == "refused"
