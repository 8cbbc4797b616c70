"""The Open server's address and newsletter tools (issue 14 item 4; previews of issue 15):
list_my_addresses, add_address, update_address, list_my_newsletters,
update_my_newsletters.

Real parts: the sandbox's Open API, the gateway process, SDK clients. Each test registers
its own subscribers. For every rule of OPEN_API.md §5.6 (with Core's §8.9 rules) the dry
run's verdict is compared with what the real call then does, and the request log shows
that a dry run wrote nothing. Site 27 ("other") validates taxes; site 14 does not.
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from mcp_bridge.servers import OPEN_TOOLS
from tests.support import open_data
from tests.support.mcp import ERAS, audit_rows_async
from tests.support.open import READ_WRITE, open_session
from tests.support.sandbox import SandboxClient

TAXED_SITE = 27


@pytest.fixture
def sandbox(mcp_env):
    client = SandboxClient(mcp_env.sandbox)
    yield client
    client.close()


def session(env, subscriber: dict, **options):
    return open_session(env, subscriber, access=READ_WRITE, confirm_writes=False, **options)


def test_declarations():
    hints = {name: (s.read_only, s.destructive, s.idempotent, s.confirm) for name, s in OPEN_TOOLS.items()}
    assert hints["list_my_addresses"] == hints["list_my_newsletters"] == (True, False, True, None)
    assert hints["add_address"] == (False, False, False, None)  # each call adds one more
    assert hints["update_address"] == hints["update_my_newsletters"] == (False, False, True, None)
    for name in ("add_address", "update_address", "update_my_newsletters"):
        assert OPEN_TOOLS[name].preview is not None
        assert "email" not in OPEN_TOOLS[name].input_schema()["properties"]


# --- Addresses -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ERAS)
async def test_add_then_list_and_update_my_address(mcp_env, sandbox, mode):
    me = await sync_to_async(open_data.register)(mcp_env.sandbox.url)
    other = await sync_to_async(open_data.register)(mcp_env.sandbox.url)
    await sync_to_async(open_data.add_address)(mcp_env.sandbox.url, other, line1="9 Their Road")
    args = {"line1": "5 Elm Street", "city": "Springfield", "state": "IL", "country": "us", "is_default": True}
    async with session(mcp_env, me, mode=mode) as (client, conn):
        seq = sandbox.last_seq()
        dry = await client.call_tool("add_address", {**args, "dry_run": True})
        assert not dry.is_error, dry
        preview = dry.structured_content
        assert preview["allowed"] and preview["needs_confirmation"] is False
        assert preview["would_send"] == {
            "method": "POST",
            "path": "/address",
            "query": {"site_id": 14},
            "body": {"type": "shipping", **args, "country": "US"},
        }
        assert "Acme Daily (site 14)" in preview["summary"] and "5 Elm Street" in preview["summary"]
        assert open_data.requests_since(sandbox, seq) == [("GET", "/api/v1/sdk/site")]  # one read, no write
        added = await client.call_tool("add_address", args)
        assert not added.is_error, added
        address = added.structured_content
        assert (address["line1"], address["country"], address["type"], address["is_default"]) == (
            "5 Elm Street",
            "US",
            "shipping",
            True,
        )
        assert address["created_at"].endswith("Z")
        listed = (await client.call_tool("list_my_addresses", {})).structured_content
        assert [a["line1"] for a in listed["addresses"]] == ["5 Elm Street"]  # not the other customer's
        updated = await client.call_tool("update_address", {"address_id": address["id"], "city": "Chicago"})
        assert not updated.is_error and updated.structured_content["city"] == "Chicago"
    rows = await audit_rows_async(4, connection_id=conn.connection_id)
    assert [(r.tool, r.dry_run, r.site_id, r.customer_id) for r in rows] == [
        ("add_address", True, 14, me["customer_id"]),
        ("add_address", False, 14, me["customer_id"]),
        ("list_my_addresses", False, 14, me["customer_id"]),
        ("update_address", False, 14, me["customer_id"]),
    ]


@pytest.mark.parametrize(
    ("site_id", "fields", "allowed"),
    [
        (14, {"country": "US", "state": "NY"}, True),  # no postal code: fine without tax validation
        (TAXED_SITE, {"country": "US", "state": "NY"}, False),  # the publication validates taxes
        (TAXED_SITE, {"country": "US", "state": "NY", "postal_code": "10001"}, True),
        (TAXED_SITE, {"country": "GB"}, True),
    ],
)
async def test_add_address_preview_matches_the_real_call(mcp_env, sandbox, site_id, fields, allowed):
    me = await sync_to_async(open_data.register)(mcp_env.sandbox.url, site_id)
    args = {"line1": "1 Main Street", **fields}
    async with session(mcp_env, me) as (client, _):
        seq = sandbox.last_seq()
        dry = (await client.call_tool("add_address", {**args, "dry_run": True})).structured_content
        assert dry["allowed"] is allowed, dry
        assert open_data.writes_since(sandbox, seq) == [] and len(sandbox.log(since=seq, api="open")) == 1
        real = await client.call_tool("add_address", args)
        assert real.is_error is (not allowed), real
        if not allowed:
            assert "postal code" in dry["verdict"]
            assert (
                real.structured_content["error"] == "validation_failed"
                and "postal_code" in real.structured_content["fields"]
            )


async def test_bad_address_input_is_refused_before_anything_is_sent(mcp_env, sandbox):
    me = await sync_to_async(open_data.register)(mcp_env.sandbox.url)
    async with session(mcp_env, me) as (client, _):
        seq = sandbox.last_seq()
        no_state = await client.call_tool("add_address", {"line1": "1 A St", "country": "US"})
        assert no_state.is_error and "a US address needs a state" in no_state.content[0].text
        bad_type = await client.call_tool("update_address", {"address_id": 1, "type": "billing"})
        assert bad_type.is_error and "type cannot change" in bad_type.content[0].text
        nothing = await client.call_tool("update_address", {"address_id": 1})
        assert nothing.is_error and "at least one field" in nothing.content[0].text
        assert sandbox.log(since=seq, api="open") == []


def _update_case(env, case: str) -> tuple[dict, dict, bool, str | None]:
    """(subscriber, update_address arguments, allowed, refusal words) for one rule."""
    url = env.sandbox.url
    site_id = TAXED_SITE if case == "US without a postal code, taxes validated" else 14
    me = open_data.register(url, site_id)
    mine = open_data.add_address(url, me)  # GB, no state, no postal code
    if case == "city":
        return me, {"address_id": mine["id"], "city": "Leeds"}, True, None
    if case == "unknown":
        return me, {"address_id": 2_000_000_004, "city": "Leeds"}, False, "not found"
    if case == "another customer's":
        theirs = open_data.add_address(url, open_data.register(url))
        return me, {"address_id": theirs["id"], "city": "Leeds"}, False, "not found"
    if case == "another site's":
        theirs = open_data.add_address(url, open_data.register(url, 15))
        return me, {"address_id": theirs["id"], "city": "Leeds"}, False, "not found"
    if case == "US without a state":
        return me, {"address_id": mine["id"], "country": "US"}, False, "state"
    if case == "US without a postal code, taxes validated":
        return me, {"address_id": mine["id"], "country": "US", "state": "NY"}, False, "postal code"
    if case in ("country of an address in use", "city of an address in use"):
        card = open_data.add_card(url, me)
        open_data.subscribe(url, me, card["id"], address_id=mine["id"])
        if case == "city of an address in use":
            return me, {"address_id": mine["id"], "city": "York"}, True, None
        return me, {"address_id": mine["id"], "country": "FR"}, False, "subscription uses this address"
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    [
        "city",
        "unknown",
        "another customer's",
        "another site's",
        "US without a state",
        "US without a postal code, taxes validated",
        "country of an address in use",
        "city of an address in use",
    ],
)
async def test_update_address_preview_matches_the_real_call(mcp_env, sandbox, case):
    me, args, allowed, words = await sync_to_async(_update_case)(mcp_env, case)
    async with session(mcp_env, me) as (client, _):
        if "taxes" in case:
            await client.call_tool("get_site", {})  # the gateway keeps the site's tax setting
        seq = sandbox.last_seq()
        dry = (await client.call_tool("update_address", {**args, "dry_run": True})).structured_content
        assert dry["allowed"] is allowed, dry
        assert open_data.writes_since(sandbox, seq) == []
        reads = open_data.requests_since(sandbox, seq)
        # One read: the customer resource (the site's tax setting is the copy the gateway keeps).
        assert reads == [("POST", "/api/v1/sdk/customer")]
        real = await client.call_tool("update_address", args)
        assert real.is_error is (not allowed), real
        if allowed:
            assert real.structured_content["city"] == args["city"]
            assert {"field": "city", "before": "London", "after": args["city"]} in dry["changes"]
        else:
            assert words in dry["verdict"]
            assert real.structured_content["error"] in ("refused", "validation_failed")


async def test_foreign_address_ids_answer_exactly_as_unknown_ones(mcp_env):
    url = mcp_env.sandbox.url
    me = await sync_to_async(open_data.register)(url)
    neighbour = await sync_to_async(open_data.register)(url)
    elsewhere = await sync_to_async(open_data.register)(url, 15)
    ids = {
        "unknown": 2_000_000_005,
        "neighbour": (await sync_to_async(open_data.add_address)(url, neighbour))["id"],
        "elsewhere": (await sync_to_async(open_data.add_address)(url, elsewhere))["id"],
    }
    async with session(mcp_env, me) as (client, _):
        for dry_run in (True, False):
            shapes = set()
            for address_id in ids.values():
                answer = await client.call_tool(
                    "update_address", {"address_id": address_id, "city": "Leeds", "dry_run": dry_run}
                )
                data = answer.structured_content
                refused = answer.is_error or not data["allowed"]
                text = data.get("verdict") or answer.content[0].text
                shapes.add((refused, text.replace(str(address_id), "<id>")))
            assert len(shapes) == 1 and next(iter(shapes))[0] is True, shapes
    assert (
        open_data.open_api(url, "POST", "/customer", 14, jwt=neighbour["jwt"])["data"]["addresses"][0]["city"]
        == "London"
    )


# --- Newsletters ---------------------------------------------------------------------------


def _sign_up(env, email: str, site_id: int = 14):
    response = open_data.httpx.get(
        f"{env.sandbox.url}/api/v1/sdk/newsletter/{email}", params={"site_id": site_id}, timeout=10
    )
    return response.json()["data"] if response.status_code == 200 else None


@pytest.mark.parametrize("mode", ERAS)
async def test_newsletters_sign_up_change_and_leave(mcp_env, sandbox, mode):
    url = mcp_env.sandbox.url
    me = await sync_to_async(open_data.register)(url)
    neighbour = await sync_to_async(open_data.register)(url)
    open_data.open_api(url, "POST", "/newsletter", 14, json={"email": neighbour["email"]})
    async with session(mcp_env, me, mode=mode) as (client, conn):
        listed = (await client.call_tool("list_my_newsletters", {})).structured_content
        assert listed["email"] == me["email"] and listed["subscribed"] is False and listed["lists"] == []
        assert listed["available_lists"] == [{"id": "default", "name": "Newsletter"}]

        seq = sandbox.last_seq()
        dry = (
            await client.call_tool("update_my_newsletters", {"subscribed": True, "dry_run": True})
        ).structured_content
        assert (
            dry["allowed"]
            and dry["would_send"]["method"] == "POST"
            and dry["would_send"]["body"]["email"] == me["email"]
        )
        assert f"sign {me['email']} up for default" in dry["summary"]
        # The e-mail (from the customer resource), then its sign-up: nothing written.
        assert open_data.requests_since(sandbox, seq) == [
            ("POST", "/api/v1/sdk/customer"),
            ("GET", f"/api/v1/sdk/newsletter/{me['email']}"),
        ]
        assert _sign_up(mcp_env, me["email"]) is None

        joined = await client.call_tool("update_my_newsletters", {"subscribed": True})
        assert not joined.is_error and joined.structured_content["action"] == "subscribed"
        entry = _sign_up(mcp_env, me["email"])
        assert (entry["lists"], entry["source"], entry["consent_type"]) == ("default", "other", "explicit")

        seq = sandbox.last_seq()
        same = await client.call_tool("update_my_newsletters", {"subscribed": True, "lists": ["default"]})
        assert same.structured_content["changed"] is False and open_data.writes_since(sandbox, seq) == []

        changed = await client.call_tool("update_my_newsletters", {"subscribed": True, "lists": ["default", "sports"]})
        assert changed.structured_content["action"] == "updated"
        assert _sign_up(mcp_env, me["email"])["lists"] == "default,sports"
        listed = (await client.call_tool("list_my_newsletters", {})).structured_content
        assert (
            listed["subscribed"] and listed["lists"] == ["default", "sports"] and listed["subscribed_at"].endswith("Z")
        )

        dry = (
            await client.call_tool("update_my_newsletters", {"subscribed": False, "dry_run": True})
        ).structured_content
        assert dry["would_send"]["method"] == "DELETE" and _sign_up(mcp_env, me["email"]) is not None
        left = await client.call_tool("update_my_newsletters", {"subscribed": False})
        assert left.structured_content["action"] == "unsubscribed" and _sign_up(mcp_env, me["email"]) is None
        again = await client.call_tool("update_my_newsletters", {"subscribed": False})
        assert again.structured_content["changed"] is False

        named = await client.call_tool("update_my_newsletters", {"subscribed": False, "email": neighbour["email"]})
        assert named.is_error and named.structured_content["error"] == "invalid_arguments"
    assert _sign_up(mcp_env, neighbour["email"]) is not None  # never touched
    rows = await audit_rows_async(10, connection_id=conn.connection_id)
    assert {(r.site_id, r.customer_id) for r in rows} == {(14, me["customer_id"])}
