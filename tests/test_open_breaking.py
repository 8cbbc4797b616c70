"""The Open server and the dry-run previews, attacked as a hostile subscriber and a demanding
user would (issues 14 and 15): what a review found, each kept as a test.

Real parts: the sandbox's Open and Core APIs, the gateway process, MCP SDK clients (both
protocol eras where the answer could differ). Each test registers its own subscribers
(`tests.support.open_data`), so it knows exactly what they have; the sandbox's request log
says what reached Pelcro.

- A JSON boolean is never an id or an amount (pydantic's lax mode reads `true` as 1, so
  `{"invoice_id": true}` acted on invoice 1).
- A card number is refused wherever it appears in an Open tool's arguments (free text,
  metadata keys or values, address lines, coupon codes), with the advice to add the card
  on the publication's website, and never stored in an audit row, on either server.
- The newsletter tools act only for an e-mail the subscriber has shown is theirs (the one
  they signed in with, or a confirmed one): Pelcro's newsletter sign-ups are public and
  keyed by e-mail, and a profile e-mail can be changed to anyone's without confirmation.
- A failed read never says a change may have been applied, and says what to do.
- Every dry run of every Open write tool, with any arguments, sends no write upstream; an
  id of another customer or site costs the same requests as an unknown one.
"""

from __future__ import annotations

import json
import re

import httpx
import pytest
import redis as redis_lib
from asgiref.sync import sync_to_async
from django.conf import settings

from mcp_bridge.servers import OPEN_TOOLS, TOOLS
from tests.support import open_data
from tests.support.mcp import ERAS, audit_rows_async, mcp_session
from tests.support.open import READ_WRITE, open_session
from tests.support.sandbox import SandboxClient

TAXED_SITE = 27  # its account validates taxes (tests/test_open_addresses.py)
VISA = "4111111111111111"  # a test card number (Luhn-valid)
ADD_ON_THE_SITE = "publication's"  # every card refusal says the card is added on the publication's website


@pytest.fixture
def sandbox(mcp_env):
    client = SandboxClient(mcp_env.sandbox)
    yield client
    client.restore_config()
    client.close()


def session(env, subscriber: dict, **options):
    return open_session(env, subscriber, access=READ_WRITE, confirm_writes=False, **options)


def text_of(answer) -> str:
    return " ".join(getattr(block, "text", "") for block in answer.content)


def forget_site(site_id: int) -> None:
    """Drop the site configuration the gateway keeps for previews (`open.site`)."""
    client = redis_lib.Redis.from_url(settings.REDIS_URL)
    try:
        client.delete(f"{settings.REDIS_KEY_PREFIX}open-site:{site_id}")
    finally:
        client.close()


# --- A boolean is not a number -----------------------------------------------------------------


def _integer_fields(spec) -> list[str]:
    properties = spec.input_schema().get("properties", {})

    def integer(schema: dict) -> bool:
        kinds = [schema.get("type")] + [option.get("type") for option in schema.get("anyOf", [])]
        return "integer" in kinds or "number" in kinds

    return [name for name, schema in properties.items() if integer(schema)]


@pytest.mark.parametrize("spec", [*TOOLS.values(), *OPEN_TOOLS.values()], ids=lambda s: f"{s.server}:{s.name}")
def test_no_tool_reads_true_or_false_as_a_number(spec):
    """Every integer or number argument of every tool (ids, amounts, pages) refuses a JSON
    boolean, as its schema says (`type: integer`); pydantic's lax mode would read `true` as 1."""
    for name in _integer_fields(spec):
        for value in (True, False):
            errors = _errors(spec, {name: value})
            assert name in errors and "not true or false" in " ".join(errors[name]), (spec.name, name, errors)


def _errors(spec, arguments: dict) -> dict[str, list[str]]:
    from pydantic import ValidationError

    try:
        spec.input_model.model_validate(arguments)
    except ValidationError as exc:
        found: dict[str, list[str]] = {}
        for item in exc.errors(include_url=False, include_input=False):
            found.setdefault(".".join(str(p) for p in item["loc"]), []).append(item["msg"])
        return found
    return {}


@pytest.mark.parametrize("mode", ERAS)
async def test_true_as_an_id_reaches_nobody(mcp_env, sandbox, mode):
    url = mcp_env.sandbox.url
    me = await sync_to_async(open_data.register)(url)
    await sync_to_async(open_data.add_card)(url, me, default=True)
    async with session(mcp_env, me, mode=mode) as (client, conn):
        seq = sandbox.last_seq()
        for tool, arguments in (
            ("pay_invoice", {"invoice_id": True}),
            ("cancel_my_subscription", {"subscription_id": True, "dry_run": True}),
            ("update_address", {"address_id": True, "city": "Leeds"}),
            ("delete_payment_method", {"payment_method_id": True}),
        ):
            answer = await client.call_tool(tool, arguments)
            assert answer.is_error and answer.structured_content["error"] == "invalid_arguments", answer
            assert "not true or false" in text_of(answer)
        assert sandbox.log(since=seq, api="open") == []  # nothing reached Pelcro


# --- Card numbers -------------------------------------------------------------------------------

CARD_DATA_CALLS = [
    ("cancel_my_subscription", {"subscription_id": 5, "reason": f"charge {VISA} instead", "dry_run": True}),
    ("cancel_my_subscription", {"subscription_id": 5, "reason": "my card is 4111 1111 1111 1111"}),
    ("update_my_profile", {"metadata": {"note": VISA}, "dry_run": True}),
    ("update_my_profile", {"metadata": {VISA: "x"}}),
    ("update_my_profile", {"first_name": "4111-1111-1111-1111"}),
    ("add_address", {"line1": "1 Main St", "line2": f"card {VISA}", "country": "GB"}),
    ("update_address", {"address_id": 5, "line1": f"{VISA[:8]} {VISA[8:]}", "dry_run": True}),
    ("subscribe", {"plan_id": 1006, "coupon_code": VISA, "dry_run": True}),
    ("preview_subscription", {"plan_id": 1006, "coupon_code": VISA}),
    ("subscribe", {"plan_id": 1006, "number": VISA, "dry_run": True}),
    ("pay_invoice", {"invoice_id": 5, "cvc": "123", "card_number": VISA}),
]


async def test_card_numbers_anywhere_in_open_arguments_are_refused_and_never_stored(mcp_env, sandbox):
    """A card number in any argument of any Open tool (free text, metadata keys or values,
    address lines, a coupon code, an argument of its own) is refused before anything is
    sent, with the advice to add the card on the publication's website; the audit rows
    keep no card number."""
    me = await sync_to_async(open_data.register)(mcp_env.sandbox.url)
    async with session(mcp_env, me) as (client, conn):
        seq = sandbox.last_seq()
        for tool, arguments in CARD_DATA_CALLS:
            answer = await client.call_tool(tool, arguments)
            assert answer.is_error, (tool, arguments, answer)
            assert answer.structured_content["error"] == "invalid_arguments", (tool, answer)
            text = text_of(answer)
            assert "Card details are never accepted" in text and ADD_ON_THE_SITE in text, (tool, text)
            assert VISA not in text and "4111 1111" not in text and ".." not in text
        assert sandbox.log(since=seq, api="open") == []
    rows = await audit_rows_async(len(CARD_DATA_CALLS), connection_id=conn.connection_id)
    assert [r.tool for r in rows] == [tool for tool, _ in CARD_DATA_CALLS]
    for row in rows:
        stored = json.dumps(row.arguments) + row.error_message
        assert "4111" not in stored, stored


async def test_numbers_that_are_not_card_numbers_pass(mcp_env, sandbox):
    """No false alarm: phone numbers, postal codes and long digit strings that are not card
    numbers (Luhn check, card prefixes) are accepted."""
    me = await sync_to_async(open_data.register)(mcp_env.sandbox.url)
    async with session(mcp_env, me) as (client, _):
        for arguments in (
            {"phone": "+86 138 0013 8000"},  # 13 digits after a +: a phone number
            {"metadata": {"order": "4111111111111112"}},  # 16 digits, fails the Luhn check
            {"metadata": {"ref": "1234567890123456"}},  # no card starts with 1
            {"organization": "Plant 4111 1111"},  # too short for a card
        ):
            answer = await client.call_tool("update_my_profile", {**arguments, "dry_run": True})
            assert not answer.is_error and answer.structured_content["allowed"], (arguments, answer)


async def test_a_core_call_never_stores_a_card_number_in_its_audit_row(mcp_env):
    token = await sync_to_async(mcp_env.token)("acme")
    async with mcp_session(mcp_env.url, token, "2026-07-28") as client:
        answer = await client.call_tool(
            "create_customer",
            {
                "site_id": 14,
                "email": "pan-in-metadata@example.com",
                "metadata": {"number": VISA, "note": "card 4111 1111 1111 1111"},
                "dry_run": True,
            },
        )
        assert not answer.is_error, answer
    (row,) = await audit_rows_async(1, tool="create_customer", dry_run=True)
    assert "4111" not in json.dumps(row.arguments), row.arguments
    assert row.arguments["metadata"]["number"] == "[redacted]"


# --- Newsletters ------------------------------------------------------------------------------


async def test_newsletters_never_reach_an_email_not_shown_to_be_yours(mcp_env, sandbox):
    """Pelcro's newsletter sign-ups are public and keyed by e-mail, and a subscriber may
    change their profile e-mail to anyone's (it is then unconfirmed). The newsletter tools
    then refuse: they never read or change the sign-up of an address the subscriber has not
    signed in with or confirmed."""
    url = mcp_env.sandbox.url
    me = await sync_to_async(open_data.register)(url)
    victim = f"nl-victim-{me['customer_id']}@example.com"
    made = httpx.post(
        f"{url}/api/v1/sdk/newsletter", params={"site_id": 14}, json={"email": victim, "lists": "default,sports"}
    )
    assert made.status_code == 201, made.text
    async with session(mcp_env, me) as (client, _):
        changed = await client.call_tool("update_my_profile", {"email": victim})
        assert not changed.is_error and changed.structured_content["email_confirm"] is False
        seq = sandbox.last_seq()
        for tool, arguments in (
            ("list_my_newsletters", {}),
            ("update_my_newsletters", {"subscribed": False, "dry_run": True}),
            ("update_my_newsletters", {"subscribed": False}),
            ("update_my_newsletters", {"subscribed": True, "lists": ["default"]}),
        ):
            answer = await client.call_tool(tool, arguments)
            assert answer.is_error and answer.structured_content["error"] == "refused", (tool, answer)
            text = text_of(answer)
            assert "not confirmed" in text and "sign in again" in text, text
            assert "sports" not in text  # nothing of the sign-up shows
        paths = [e["path"] for e in sandbox.log(since=seq, api="open")]
        assert paths.count("/api/v1/sdk/customer") == 4 and not [p for p in paths if "newsletter" in p], paths
    kept = httpx.get(f"{url}/api/v1/sdk/newsletter/{victim}", params={"site_id": 14}).json()["data"]
    assert kept["lists"] == "default,sports"


# --- Failures say what happened and what to do ----------------------------------------------------


async def test_a_failed_read_never_says_a_change_may_have_been_applied(mcp_env, sandbox):
    """POST /customer and POST /order only read (OPEN_API.md §5.3, §5.4): a 5xx on them is
    a failed read, not a write of unknown fate. Every failed read says to try again."""
    me = await sync_to_async(open_data.register)(mcp_env.sandbox.url)
    async with session(mcp_env, me) as (client, _):
        sandbox.configure(error_rate=1)
        for tool, arguments in (
            ("get_my_profile", {}),
            ("list_my_subscriptions", {}),
            ("preview_subscription", {"plan_id": 1006}),
            ("get_site", {}),
            ("cancel_my_subscription", {"subscription_id": 5, "dry_run": True}),
        ):
            answer = await client.call_tool(tool, arguments)
            data = answer.structured_content
            assert answer.is_error and data["error"] == "upstream_unavailable", (tool, answer)
            assert not data.get("may_have_been_applied"), (tool, data)
            text = text_of(answer)
            assert "may or may not have been applied" not in text, (tool, text)
            assert "Nothing was changed" in text and "try again" in text, (tool, text)


async def test_a_tool_without_arguments_says_it_takes_none(mcp_env):
    me = await sync_to_async(open_data.register)(mcp_env.sandbox.url)
    async with session(mcp_env, me) as (client, _):
        answer = await client.call_tool("get_site", {"site_id": 15})
        text = text_of(answer)
        assert answer.is_error and "get_site takes no arguments" in text and "takes: ." not in text, text


# --- Previews -------------------------------------------------------------------------------------


async def test_update_address_preview_reads_once_even_for_the_tax_rule(mcp_env, sandbox):
    """Issue 15 item 3: a preview reads the current state with at most one upstream request.
    The postal-code rule depends on the site's tax setting, which the preview takes from the
    site configuration the gateway keeps (`open.site`), or names as not checked."""
    url = mcp_env.sandbox.url
    me = await sync_to_async(open_data.register)(url, TAXED_SITE)
    mine = await sync_to_async(open_data.add_address)(url, me)
    arguments = {"address_id": mine["id"], "country": "US", "state": "NY", "dry_run": True}
    async with session(mcp_env, me) as (client, _):
        assert not (await client.call_tool("get_site", {})).is_error  # the gateway keeps the site
        seq = sandbox.last_seq()
        kept = (await client.call_tool("update_address", arguments)).structured_content
        assert kept["allowed"] is False and "postal code" in kept["verdict"], kept
        assert len(sandbox.log(since=seq, api="open")) == 1
        await sync_to_async(forget_site)(TAXED_SITE)
        seq = sandbox.last_seq()
        unknown = (await client.call_tool("update_address", arguments)).structured_content
        assert unknown["allowed"] is True and any("postal code" in rule for rule in unknown["not_checked"]), unknown
        assert len(sandbox.log(since=seq, api="open")) == 1
        real = await client.call_tool("update_address", {k: v for k, v in arguments.items() if k != "dry_run"})
        assert real.is_error and "postal_code" in real.structured_content["fields"]


async def test_a_refused_subscribe_preview_names_what_is_wrong(mcp_env):
    url = mcp_env.sandbox.url
    me = await sync_to_async(open_data.register)(url)
    card = await sync_to_async(open_data.add_card)(url, me, default=True)
    theirs = await sync_to_async(open_data.add_address)(url, await sync_to_async(open_data.register)(url))
    async with session(mcp_env, me) as (client, _):
        arguments = {"plan_id": 1006, "payment_method_id": card["id"], "address_id": theirs["id"], "dry_run": True}
        data = (await client.call_tool("subscribe", arguments)).structured_content
        assert data["allowed"] is False and f"Address {theirs['id']} not found" in data["verdict"], data
        assert "(plan 1006)" not in data["verdict"]
        assert "Nothing would be created" in data["summary"] and "canceled later" not in data["summary"], data


# --- Dry runs never write, whatever the arguments --------------------------------------------------


def _dry_run_calls(me: dict, them: dict, elsewhere: dict) -> dict[str, list[dict]]:
    """Argument sets for every Open write tool: the subscriber's own objects, another
    customer's, another site's, unknown ids, and edge values."""
    unknown = 2_000_000_123
    return {
        "update_my_profile": [{"first_name": "Dry"}, {"email": them["email"]}, {"metadata": {"k": None}}],
        "subscribe": [
            {"plan_id": 1006, "payment_method_id": me["card"]},
            {"plan_id": 1006, "payment_method_id": them["card"]},
            {"plan_id": 1006, "address_id": them["address"]},
            {"plan_id": elsewhere["plan"]},
            {"plan_id": unknown, "coupon_code": "NOPE"},
        ],
        "cancel_my_subscription": [
            {"subscription_id": me["subscription"], "mode": mode} for mode in ("now", "current_period_end")
        ]
        + [{"subscription_id": sid} for sid in (them["subscription"], elsewhere["subscription"], unknown)],
        "reactivate_my_subscription": [
            {"subscription_id": sid} for sid in (me["subscription"], them["subscription"], unknown)
        ],
        "pay_invoice": [
            {"invoice_id": me["invoice"]},
            {"invoice_id": them["invoice"]},
            {"invoice_id": me["invoice"], "payment_method_id": them["card"]},
            {"invoice_id": elsewhere["invoice"]},
        ],
        "set_default_payment_method": [{"payment_method_id": pid} for pid in (me["card"], them["card"], unknown)],
        "delete_payment_method": [{"payment_method_id": pid} for pid in (me["card"], them["card"], unknown)],
        "add_address": [{"line1": "1 Dry St", "country": "US", "state": "NY"}, {"line1": "x", "country": "GB"}],
        "update_address": [
            {"address_id": me["address"], "country": "FR"},
            {"address_id": them["address"], "city": "Leeds"},
            {"address_id": elsewhere["address"], "city": "Leeds"},
        ],
        "update_my_newsletters": [{"subscribed": True}, {"subscribed": False}, {"subscribed": True, "lists": ["x"]}],
    }


def _customer(url: str, site_id: int) -> dict:
    who = open_data.register(url, site_id)
    who["card"] = open_data.add_card(url, who, default=True)["id"]
    who["address"] = open_data.add_address(url, who)["id"]
    who["subscription"] = open_data.subscribe(url, who, who["card"], plan="Digital Monthly")["id"]
    who["invoice"] = open_data.invoice(url, who)["id"]
    who["plan"] = next(iter(open_data.plans(url, site_id).values()))["id"]
    return who


async def test_no_dry_run_of_any_open_write_tool_writes(mcp_env, sandbox):
    url = mcp_env.sandbox.url
    me, them = await sync_to_async(_customer)(url, 14), await sync_to_async(_customer)(url, 14)
    elsewhere = await sync_to_async(_customer)(url, 15)
    calls = _dry_run_calls(me, them, elsewhere)
    assert set(calls) == {name for name, spec in OPEN_TOOLS.items() if not spec.read_only}
    async with session(mcp_env, me, mode="legacy") as (client, _):
        seq = sandbox.last_seq()
        for tool, argument_sets in calls.items():
            for arguments in argument_sets:
                answer = await client.call_tool(tool, {**arguments, "dry_run": True})
                assert not answer.is_error and answer.structured_content["dry_run"] is True, (tool, answer)
        assert open_data.writes_since(sandbox, seq) == []


async def test_another_customers_ids_cost_the_same_requests_as_unknown_ones(mcp_env, sandbox):
    """No existence oracle by timing class either: for every Open tool that takes an id, an
    id of another customer, of another site or of nothing makes the same upstream requests,
    in a dry run and for real."""
    url = mcp_env.sandbox.url
    me, them = await sync_to_async(_customer)(url, 14), await sync_to_async(_customer)(url, 14)
    elsewhere = await sync_to_async(_customer)(url, 15)
    unknown = {"card": 2_000_000_201, "address": 2_000_000_202, "subscription": 2_000_000_203, "invoice": 2_000_000_204}
    shapes = {
        "pay_invoice": lambda who: {"invoice_id": who["invoice"]},
        "set_default_payment_method": lambda who: {"payment_method_id": who["card"]},
        "delete_payment_method": lambda who: {"payment_method_id": who["card"]},
        "cancel_my_subscription": lambda who: {"subscription_id": who["subscription"]},
        "reactivate_my_subscription": lambda who: {"subscription_id": who["subscription"]},
        "update_address": lambda who: {"address_id": who["address"], "city": "Leeds"},
        "subscribe": lambda who: {"plan_id": 1006, "address_id": who["address"], "payment_method_id": me["card"]},
        "preview_subscription": lambda who: {"plan_id": 1006, "address_id": who["address"]},
    }
    async with session(mcp_env, me) as (client, _):
        for tool, shape in shapes.items():
            for dry_run in (True, False) if tool != "preview_subscription" else (None,):
                seen = set()
                for who in (them, elsewhere, unknown):
                    arguments = shape(who) | ({} if dry_run is None else {"dry_run": dry_run})
                    seq = sandbox.last_seq()
                    answer = await client.call_tool(tool, arguments)
                    refused = answer.is_error or not answer.structured_content.get("allowed", True)
                    assert refused, (tool, arguments, answer)
                    requests = sandbox.log(since=seq, api="open")
                    seen.add(tuple((e["method"], re.sub(r"/\d+", "/<id>", e["path"])) for e in requests))
                assert len(seen) == 1, (tool, dry_run, seen)


# --- Read-only connections ---------------------------------------------------------------------


async def test_a_read_only_connection_sees_no_write_tool_and_its_refused_write_names_the_subscriber(mcp_env, sandbox):
    """tools/list of a read-only subscriber connection shows only the read tools; a write
    call (dry run or not) is refused before the server, sends nothing, and its audit row
    names the connection's site and customer like every other Open call."""
    from mcp.shared.exceptions import MCPError

    me = await sync_to_async(open_data.register)(mcp_env.sandbox.url)
    async with open_session(mcp_env, me) as (client, conn):
        listed = {tool.name for tool in (await client.list_tools()).tools}
        assert listed == {name for name, spec in OPEN_TOOLS.items() if spec.read_only}
        seq = sandbox.last_seq()
        for arguments in ({"first_name": "Ro"}, {"first_name": "Ro", "dry_run": True}):
            with pytest.raises(MCPError, match="insufficient_scope: update_my_profile changes data"):
                await client.call_tool("update_my_profile", arguments)
        assert sandbox.log(since=seq, api="open") == []
    rows = await audit_rows_async(2, connection_id=conn.connection_id)
    assert [(r.tool, r.outcome, r.site_id, r.customer_id) for r in rows] == [
        ("update_my_profile", "denied", 14, me["customer_id"])
    ] * 2


async def test_a_profile_preview_says_what_pelcro_keeps(mcp_env, sandbox):
    """E-mails are kept in lower case (CORE_API.md §8.2): the own address in other letters
    changes nothing, and the preview says so; a new one in capitals is shown as stored."""
    me = await sync_to_async(open_data.register)(mcp_env.sandbox.url)
    async with session(mcp_env, me) as (client, _):
        same = await client.call_tool("update_my_profile", {"email": me["email"].upper(), "dry_run": True})
        assert same.structured_content["changes"] == [], same.structured_content
        real = await client.call_tool("update_my_profile", {"email": me["email"].upper()})
        assert real.structured_content["email"] == me["email"]
        new = f"New-{me['email']}".upper()
        other = (await client.call_tool("update_my_profile", {"email": new, "dry_run": True})).structured_content
        assert {"field": "email", "before": me["email"], "after": new.lower()} in other["changes"], other


def test_descriptions_say_the_rules_the_tools_apply():
    """What an assistant reads matches what the tools do (the review's findings)."""
    for name in ("list_my_newsletters", "update_my_newsletters"):
        assert "confirmed" in OPEN_TOOLS[name].description and "signed in with" in OPEN_TOOLS[name].description
    assert "newsletter tools refuse it" in OPEN_TOOLS["update_my_profile"].description
    # Pelcro refuses a second end-of-period cancellation, not an immediate one (OPEN_API.md §5.4).
    assert "(except with mode now) for one already set to" in OPEN_TOOLS["cancel_my_subscription"].description


async def test_an_update_with_nothing_to_change_is_refused_and_sends_nothing(mcp_env, sandbox, truth):
    """update_my_profile (/open), update_address and update_customer (/) refuse a call that
    names no field to change ("give at least one field to change"), with or without
    dry_run, and a field given as null is no change either: such a call was sent upstream
    as an empty write (PUT /customer {}) and answered as a success, which a model asking to
    clear a field reads as done. (Two of them checked, but counted the runtime's own
    `dry_run` option as a field; update_customer did not check.)"""
    me = await sync_to_async(open_data.register)(mcp_env.sandbox.url)
    address = open_data.add_address(mcp_env.sandbox.url, me)
    seq = sandbox.last_seq()
    async with session(mcp_env, me) as (client, _):
        for arguments in ({}, {"first_name": None}, {"dry_run": True}, {"idempotency_key": "nothing-1"}):
            answer = await client.call_tool("update_my_profile", arguments)
            assert answer.is_error, (arguments, answer.structured_content)
            assert answer.structured_content["error"] == "invalid_arguments", answer.structured_content
            assert "give at least one field to change" in answer.structured_content["message"]
    async with mcp_session(mcp_env.url, mcp_env.token(), "2026-07-28") as client:
        for extra in ({}, {"last_name": None}, {"dry_run": True}):
            for tool, target in (
                ("update_address", {"address_id": address["id"]}),
                ("update_customer", {"customer_id": me["customer_id"]}),
            ):
                arguments = {"site_id": 14, **target, **extra}
                answer = await client.call_tool(tool, arguments)
                assert answer.is_error, (tool, arguments, answer.structured_content)
                assert "give at least one field to change" in answer.structured_content["message"]
    assert [e for e in truth.log(since=seq) if e["method"] == "PUT"] == []


async def test_a_profile_value_pelcro_would_refuse_or_replace_is_refused_first(mcp_env, sandbox):
    """update_my_profile's preview must say what the real call does (issue 15 item 3). A
    phone with fewer than 5 (or more than 20) digits: the preview said allowed, then Pelcro
    refused it (OPEN_API.md §5.1: 5 to 20 digits once the rest is dropped). A language
    Pelcro does not offer (OPEN_API.md §1: en, fr, it, ko, es, de; any other falls back to
    en): the preview said the profile would take it, and the real call set en instead,
    silently replacing the subscriber's language. Both are refused before anything is
    read or sent, saying what is accepted; an offered language changes as previewed."""
    me = await sync_to_async(open_data.register)(mcp_env.sandbox.url)
    async with session(mcp_env, me) as (client, _):
        seq = sandbox.last_seq()
        for arguments, words in (
            ({"phone": "abc"}, "5 to 20 digits"),
            ({"phone": "12-34"}, "5 to 20 digits"),
            ({"phone": "1" * 21}, "5 to 20 digits"),
            ({"language": "ja"}, "fr"),
        ):
            for dry_run in (True, False):
                answer = await client.call_tool("update_my_profile", {**arguments, "dry_run": dry_run})
                assert answer.is_error, (arguments, answer.structured_content)
                assert answer.structured_content["error"] == "invalid_arguments", answer.structured_content
                assert words in answer.structured_content["message"], answer.structured_content["message"]
        assert open_data.requests_since(sandbox, seq) == []
        dry = await client.call_tool(
            "update_my_profile", {"language": "fr", "phone": "+44 20 7946 0000", "dry_run": True}
        )
        changes = {c["field"]: c["after"] for c in dry.structured_content["changes"]}
        assert changes == {"language": "fr", "phone": "442079460000"}, dry.structured_content
        real = await client.call_tool("update_my_profile", {"language": "fr", "phone": "+44 20 7946 0000"})
        assert (real.structured_content["language"], real.structured_content["phone"]) == ("fr", "442079460000")
