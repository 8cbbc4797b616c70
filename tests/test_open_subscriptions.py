"""The subscriber's profile and subscription tools on the Open server (issue 14 item 4) and
their `dry_run` previews (issue 15 item 3).

`test_dry_run_verdicts_match_the_real_calls`: one row per rule of OPEN_API.md §5.3/§5.4.
Each row registers a fresh customer through the sandbox's Open API (card, address,
subscriptions as the row needs), connects the gateway for them, calls the tool with
`dry_run: true` through a real MCP SDK client, and checks the verdict; the sandbox's request
log must show no write, at most one read (the customer resource or `/order`). Then the same
call is made for real and must agree: allowed → it succeeds as `changes` said; refused →
Pelcro refuses it too. `would_send` is what the real call sent (method, path, query, body
bytes). Rows whose rule the preview cannot settle with its one read (another object's
owner, the site's settings when no copy is kept) expect `allowed` with the rule named in
`not_checked`, and the real call's refusal.

The real calls that need a person's confirmation (subscribe, cancel with mode now) are made
over connections with `confirm_writes` off (README "Safe writes"): this judges previews,
not the confirmation flow.

Isolation: every tool given another customer's ids, or another site's, answers exactly as
for an id that does not exist, and changes nothing of theirs.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import redis as redis_lib
from django.conf import settings

from tests.support import open_data
from tests.support.mcp import audit_rows_async
from tests.support.open import READ_WRITE, open_session
from tests.support.open_data import READING as READS
from tests.support.previews import OPEN_BASE, answered_as_previewed, previewed
from tests.support.sandbox import OpenClient


class World:
    """Fresh customers made through the sandbox's Open API, as the publication's website
    makes them (`tests.support.open_data`): a subscriber dict with `customer_id`, `jwt`,
    `card_id` and `address_id` (None when not asked for)."""

    def __init__(self, url: str):
        self.url = url
        self.site_plans = self.plans(14)

    def plans(self, site_id: int) -> dict[str, dict]:
        return open_data.plans(self.url, site_id)

    def customer(self, site_id: int = 14, *, card: bool = True, address: bool = False) -> dict:
        who = open_data.register(self.url, site_id)
        who["card_id"] = open_data.add_card(self.url, who, f"tok_visa_{secrets.token_hex(3)}")["id"] if card else None
        place = {"line1": "1 Open Way", "city": "New York", "state": "NY", "country": "US", "postal_code": "10001"}
        who["address_id"] = open_data.add_address(self.url, who, **place)["id"] if address else None
        return who

    def call(self, method: str, path: str, who: dict, json=None) -> dict:
        return open_data.open_api(self.url, method, path, who["site_id"], jwt=who["jwt"], json=json)

    def subscribe(self, who: dict, plan_id: int) -> dict:
        """A new subscription of `who`, paid with their card."""
        payment = {"source_id": who["card_id"]} if who["card_id"] else {}
        data = self.call("POST", "/subscription", who, json={"plan_id": plan_id, **payment})["data"]
        return max(data["subscriptions"], key=lambda s: s["id"])

    def cancel(self, who: dict, subscription_id: int, mode: str) -> None:
        self.call("POST", "/subscription/cancel", who, json={"subscription_id": subscription_id, "mode": mode})

    def me(self, who: dict) -> dict:
        return self.call("POST", "/customer", who)["data"]

    def subscription(self, who: dict, subscription_id: int) -> dict:
        return next(s for s in self.me(who)["subscriptions"] if s["id"] == subscription_id)


@pytest.fixture
def world(mcp_env):
    return World(mcp_env.sandbox.url)


@pytest.fixture
def immediate_cancel(truth):
    """Switch site 14's immediate cancellation (OPEN_API.md §6); restored afterwards."""
    open_api = OpenClient(truth)
    before = open_api.settings(14)["immediate_cancel_enabled"]

    def switch(on: bool) -> None:
        open_api.settings(14, immediate_cancel_enabled=on)

    yield switch
    open_api.settings(14, immediate_cancel_enabled=before)
    open_api.close()


def forget_site(site_id: int = 14) -> None:
    """Drop the site configuration the gateway keeps for previews (`open.site`)."""
    client = redis_lib.Redis.from_url(settings.REDIS_URL)
    try:
        client.delete(f"{settings.REDIS_KEY_PREFIX}open-site:{site_id}")
    finally:
        client.close()


def plan(world: World, nickname: str) -> dict:
    return world.site_plans[nickname]


# --- Rows ------------------------------------------------------------------------------------------


@dataclass
class Row:
    """One rule. `setup(world)` → (the customer, the tool's arguments, a check after the real
    call or None). `immediate`: site 14's immediate-cancel switch; `kept`: whether the
    gateway holds the site's configuration (get_site read it just before)."""

    id: str
    tool: str
    setup: Callable[[World], tuple[dict, dict, Callable | None]]
    allowed: bool
    real: str = "ok"
    rule: str = ""
    unchecked: str = ""
    immediate: bool = False
    kept: bool = True


def subscribe_paid(world):
    who = world.customer()
    student = plan(world, "Student Digital Monthly")

    def then(world, preview, result):
        assert result["subscription"]["plan_id"] == student["id"] and result["subscription"]["status"] == "active"
        assert result["subscription"]["payment_method_id"] == who["card_id"]
        assert "4.99 USD is charged now" in preview["summary"] and "This cannot be undone." in preview["summary"]
        invoices = world.me(who)["invoices"]
        assert [i["status"] for i in invoices] == ["paid"] and invoices[0]["amount_paid"] == 499

    return who, {"plan_id": student["id"], "payment_method_id": who["card_id"]}, then


def subscribe_trial_with_coupon(world):
    who = world.customer()
    monthly = plan(world, "Digital Monthly")

    def then(world, preview, result):
        assert result["subscription"]["status"] == "trialing"
        assert "14-day free trial" in preview["summary"] and "coupon WELCOME10" in preview["summary"]
        assert world.me(who)["invoices"] == []  # nothing billed during the trial

    return who, {"plan_id": monthly["id"], "payment_method_id": who["card_id"], "coupon_code": "WELCOME10"}, then


def subscribe_print_with_address(world):
    who = world.customer(address=True)
    printed = plan(world, "Print + Digital Monthly")
    return who, {"plan_id": printed["id"], "payment_method_id": who["card_id"], "address_id": who["address_id"]}, None


def subscribing(nickname: str, **given):
    """A row's setup: a new customer with a saved card subscribing to plan `nickname`, paying
    with that card; `given` adds arguments (a value, or a function of the world that makes it)."""

    def setup(world):
        who = world.customer()
        args = {"plan_id": plan(world, nickname)["id"], "payment_method_id": who["card_id"]}
        return who, {**args, **{name: v(world) if callable(v) else v for name, v in given.items()}}, None

    return setup


def with_subscription(nickname: str, *, cancel: str | None = None, card: bool = True):
    def setup(world):
        who = world.customer(card=card)
        subscription = world.subscribe(who, plan(world, nickname)["id"])
        if cancel:
            world.cancel(who, subscription["id"], cancel)
        return who, subscription

    return setup


def cancel_row(nickname: str, mode: str, cancel: str | None = None, check: Callable | None = None):
    def setup(world):
        who, subscription = with_subscription(nickname, cancel=cancel)(world)
        return who, {"subscription_id": subscription["id"], "mode": mode, "reason": "moving abroad"}, check

    return setup


def reactivate_row(nickname: str, cancel: str | None, check: Callable | None = None):
    def setup(world):
        who, subscription = with_subscription(nickname, cancel=cancel)(world)
        return who, {"subscription_id": subscription["id"]}, check

    return setup


def someone_elses_subscription(tool: str):
    def setup(world):
        owner, theirs = with_subscription("Weekly Pass")(world)
        args = {"subscription_id": theirs["id"]}
        if tool == "cancel_my_subscription":
            args["mode"] = "current_period_end"
        return world.customer(), args, None

    return setup


def ended_now(world, preview, result):
    assert result["status"] == "canceled" and result["ended_at"]
    assert "AT ONCE" in preview["summary"] and "This cannot be undone." in preview["summary"]


def ends_later(world, preview, result):
    assert result["status"] == "trialing" and result["cancel_at_period_end"] is True
    fields = {c["field"]: c["after"] for c in preview["changes"]}
    assert fields["cancel_at"] == result["cancel_at"] and fields["cancel_at_period_end"] is True
    assert "reactivate_my_subscription" in preview["summary"]


def renews_again(world, preview, result):
    assert result["cancel_at_period_end"] is False and result["cancel_at"] is None and result["auto_renew"] is True


def update_row(world):
    who = world.customer()
    world.call("PUT", "/customer", who, json={"metadata": {"keep": 1, "drop": "x"}})

    def then(world, preview, result):
        assert result["first_name"] == "Patricia" and result["metadata"] == {"keep": 1, "tier": "gold"}
        fields = {c["field"]: (c["before"], c["after"]) for c in preview["changes"]}
        assert fields["first_name"] == ("Test", "Patricia")
        assert fields["metadata"] == ({"keep": 1, "drop": "x"}, {"keep": 1, "tier": "gold"})

    return who, {"first_name": "Patricia", "metadata": {"drop": None, "tier": "gold"}}, then


def username_taken(world):
    taken = world.customer()
    world.call("PUT", "/customer", taken, json={"username": f"taken-{taken['customer_id']}"})
    return world.customer(), {"username": f"taken-{taken['customer_id']}"}, None


ROWS = [
    # --- subscribe (§5.4 create) ----------------------------------------------------------------
    Row("subscribe: paid plan, saved card", "subscribe", subscribe_paid, allowed=True),
    Row("subscribe: trial plan with a coupon", "subscribe", subscribe_trial_with_coupon, allowed=True),
    Row("subscribe: printed plan with an address", "subscribe", subscribe_print_with_address, allowed=True),
    Row(
        "subscribe: another site's plan",
        "subscribe",
        lambda w: (w.customer(), {"plan_id": next(iter(w.plans(27).values()))["id"], "payment_method_id": 1}, None),
        allowed=False,
        real="refused",
        rule="Invalid plan",
    ),
    Row(
        "subscribe: an unknown coupon",
        "subscribe",
        subscribing("Weekly Pass", coupon_code="NOPE99"),
        allowed=False,
        real="refused",
        rule="Invalid coupon",
    ),
    Row(
        "subscribe: an expired coupon",
        "subscribe",
        subscribing("Weekly Pass", coupon_code="SPRING25"),
        allowed=False,
        real="refused",
        rule="coupon",
    ),
    Row(
        "subscribe: another customer's address",
        "subscribe",
        subscribing("Print + Digital Monthly", address_id=lambda w: w.customer(address=True)["address_id"]),
        allowed=False,
        real="refused",
        rule="not found",
    ),
    Row(
        "subscribe: a printed plan without an address",
        "subscribe",
        subscribing("Print + Digital Monthly"),
        allowed=False,
        real="validation_failed",
        rule="address_id is required",
    ),
    Row(
        "subscribe: printed plan, no copy of the site kept",
        "subscribe",
        subscribing("Print + Digital Monthly"),
        allowed=True,
        real="validation_failed",
        unchecked="ships",
        kept=False,
    ),
    Row(
        "subscribe: a paid plan without a payment method",
        "subscribe",
        lambda w: (w.customer(card=False), {"plan_id": plan(w, "Weekly Pass")["id"]}, None),
        allowed=False,
        real="validation_failed",
        rule="payment method",
    ),
    Row(
        "subscribe: another customer's card",
        "subscribe",
        lambda w: (
            w.customer(card=False),
            {"plan_id": plan(w, "Weekly Pass")["id"], "payment_method_id": w.customer()["card_id"]},
            None,
        ),
        allowed=True,
        real="refused",
        unchecked="is a card saved for you",
    ),
    # --- cancel_my_subscription (§5.4 cancel) ---------------------------------------------------
    Row(
        "cancel: at the end of the period",
        "cancel_my_subscription",
        cancel_row("Digital Monthly", "last_period_end", check=ends_later),
        allowed=True,
    ),
    Row(
        "cancel: current_period_end",
        "cancel_my_subscription",
        cancel_row("Digital Monthly", "current_period_end", check=ends_later),
        allowed=True,
    ),
    Row(
        "cancel: now, where the site allows it",
        "cancel_my_subscription",
        cancel_row("Weekly Pass", "now", check=ended_now),
        allowed=True,
        immediate=True,
    ),
    Row(
        "cancel: now, on a site without immediate cancellation",
        "cancel_my_subscription",
        cancel_row("Weekly Pass", "now"),
        allowed=False,
        real="refused",
        rule="immediate cancellation",
    ),
    Row(
        "cancel: now, no copy of the site kept",
        "cancel_my_subscription",
        cancel_row("Weekly Pass", "now"),
        allowed=True,
        real="refused",
        unchecked="immediate cancellation",
        kept=False,
    ),
    Row(
        "cancel: already set to cancel",
        "cancel_my_subscription",
        cancel_row("Weekly Pass", "last_period_end", cancel="last_period_end"),
        allowed=False,
        real="refused",
        rule="already set to cancel",
    ),
    Row(
        "cancel: now, when set to cancel at the period's end",
        "cancel_my_subscription",
        cancel_row("Weekly Pass", "now", cancel="last_period_end", check=ended_now),
        allowed=True,
        immediate=True,
    ),
    Row(
        "cancel: already canceled",
        "cancel_my_subscription",
        cancel_row("Weekly Pass", "last_period_end", cancel="now"),
        allowed=False,
        real="refused",
        rule="ended",
        immediate=True,
    ),
    Row(
        "cancel: another customer's subscription",
        "cancel_my_subscription",
        someone_elses_subscription("cancel_my_subscription"),
        allowed=False,
        real="refused",
        rule="not found",
    ),
    # --- reactivate_my_subscription (§5.4 reactivate) -------------------------------------------
    Row(
        "reactivate: a pending cancellation",
        "reactivate_my_subscription",
        reactivate_row("Digital Monthly", "last_period_end", check=renews_again),
        allowed=True,
    ),
    Row(
        "reactivate: nothing pending",
        "reactivate_my_subscription",
        reactivate_row("Weekly Pass", None),
        allowed=False,
        real="refused",
        rule="only a pending",
    ),
    Row(
        "reactivate: ended at once",
        "reactivate_my_subscription",
        reactivate_row("Weekly Pass", "now"),
        allowed=False,
        real="refused",
        rule="only a pending",
        immediate=True,
    ),
    Row(
        "reactivate: a plan that does not renew",
        "reactivate_my_subscription",
        reactivate_row("Day Pass", "last_period_end"),
        allowed=False,
        real="refused",
        rule="auto-renewing",
    ),
    Row(
        "reactivate: another customer's subscription",
        "reactivate_my_subscription",
        someone_elses_subscription("reactivate_my_subscription"),
        allowed=False,
        real="refused",
        rule="not found",
    ),
    # --- update_my_profile (§5.3) ----------------------------------------------------------------
    Row("update profile: fields and merged metadata", "update_my_profile", update_row, allowed=True),
    Row(
        "update profile: a username another customer has",
        "update_my_profile",
        username_taken,
        allowed=True,
        real="validation_failed",
        unchecked="username",
    ),
]


def open_log(truth, since: int) -> list[dict]:
    return [e for e in truth.log(since) if e["api"] == "open"]


async def test_dry_run_verdicts_match_the_real_calls(mcp_env, truth, world, immediate_cancel):
    dry_runs: dict[str, int] = {}
    for row in ROWS:
        where = f"row {row.id!r}"
        immediate_cancel(row.immediate)
        who, args, then = row.setup(world)
        async with open_session(mcp_env, who, access=READ_WRITE, confirm_writes=False) as (client, conn):
            forget_site()
            if row.kept:
                assert not (await client.call_tool("get_site", {})).is_error
            before = truth.last_seq()
            dry = await client.call_tool(row.tool, {**args, "dry_run": True})
            reads = open_log(truth, before)
            assert len(reads) <= 1 and all((e["method"], e["path"]) in READS for e in reads), (where, reads)
            preview = previewed(dry, row.tool, row.allowed, rule=row.rule, unchecked=row.unchecked, where=where)
            dry_runs[row.tool] = dry_runs.get(row.tool, 0) + 1
            assert "Acme Daily (site 14)" in preview["summary"], (where, preview["summary"])
            needs_person = row.tool == "subscribe" or args.get("mode") == "now"
            assert preview["needs_confirmation"] is needs_person, where

            before = truth.last_seq()
            real = await client.call_tool(row.tool, args)
            writes = [e for e in open_log(truth, before) if (e["method"], e["path"]) not in READS]
            result = answered_as_previewed(real, preview, writes, row.real, OPEN_BASE, where)
            assert writes[0]["customer"] == conn.customer_id, where
            if result is not None and then is not None:
                then(world, preview, result)
    for tool, count in dry_runs.items():
        rows = await audit_rows_async(count, tool=tool, dry_run=True)
        assert len(rows) == count and all(r.outcome == "ok" and r.site_id == 14 for r in rows), tool


# --- Reads -----------------------------------------------------------------------------------------


async def test_list_and_price(mcp_env, world):
    who = world.customer(address=True)
    weekly = plan(world, "Weekly Pass")
    mine = world.subscribe(who, weekly["id"])
    async with open_session(mcp_env, who) as (client, conn):
        listed = await client.call_tool("list_my_subscriptions", {})
        assert not listed.is_error, listed.content[0].text
        (only,) = listed.structured_content["subscriptions"]
        assert only["id"] == mine["id"] and only["plan"] == "Weekly Pass" and only["amount"] == 299
        assert only["current_period_end"].endswith("Z") and only["payment_method_id"] == who["card_id"]
        assert f"subscription {mine['id']}: Weekly Pass, active, renews " in listed.content[0].text
        priced = await client.call_tool(
            "preview_subscription", {"plan_id": plan(world, "Digital Annual")["id"], "coupon_code": "ANNUAL30"}
        )
        assert not priced.is_error, priced.content[0].text
        order = priced.structured_content
        assert (order["subtotal"], order["discount"], order["total"]) == (9900, 2970, 6930)
        assert "total 69.30 USD" in priced.content[0].text and "Nothing was created" in priced.content[0].text
        # Read-only access sees the reads, not the writes.
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"list_my_subscriptions", "preview_subscription", "get_my_profile"} <= names
        assert not {"subscribe", "cancel_my_subscription", "update_my_profile"} & names


async def test_card_data_is_never_accepted(mcp_env, world, truth):
    who = world.customer(card=False)
    async with open_session(mcp_env, who, access=READ_WRITE) as (client, conn):
        before = truth.last_seq()
        for card in ({"card_number": "4242424242424242", "cvc": "123"}, {"token": "tok_visa"}):
            answer = await client.call_tool("subscribe", {"plan_id": plan(world, "Weekly Pass")["id"], **card})
            assert answer.is_error and answer.structured_content["error"] == "invalid_arguments"
            text = answer.content[0].text
            assert "Card details are never accepted" in text and "publication's website" in text
            assert "4242" not in text
        assert open_log(truth, before) == []
    rows = await audit_rows_async(2, connection_id=conn.connection_id)
    assert all("4242" not in str(r.arguments) and "tok_visa" not in str(r.arguments) for r in rows)


# --- Isolation ---------------------------------------------------------------------------------------


UNKNOWN = 2_000_000_000


def same_answer(mine, theirs_id: int, unknown, unknown_id: int) -> None:
    """A foreign id is refused exactly as an unknown one: same error, same message."""
    assert mine.is_error and unknown.is_error
    assert mine.structured_content["error"] == unknown.structured_content["error"]
    normalized = [re.sub(str(i), "N", a.content[0].text) for a, i in ((mine, theirs_id), (unknown, unknown_id))]
    assert normalized[0] == normalized[1], normalized


async def test_another_customers_or_sites_ids_answer_as_unknown_ones(mcp_env, world, truth):
    """Every Open tool that takes an id, given one of another customer of the site, or of
    another site of the account, or of another account's site: refused exactly as an id
    that does not exist, and nothing of theirs changes."""
    other = world.customer(address=True)
    theirs = world.subscribe(other, plan(world, "Weekly Pass")["id"])
    weekly = world.customer(site_id=15)
    weekly_sub = world.subscribe(weekly, world.plans(15)["Weekly Pass"]["id"])
    gazette_plan = next(iter(world.plans(27).values()))["id"]
    me = world.customer(card=False)
    mine = plan(world, "Weekly Pass")["id"]
    async with open_session(mcp_env, me, access=READ_WRITE, confirm_writes=False) as (client, conn):

        async def both(tool: str, make: Callable[[int], dict[str, Any]], foreign: int) -> None:
            for extra in ({"dry_run": True}, {}) if tool != "preview_subscription" else ({},):
                a = await client.call_tool(tool, {**make(foreign), **extra})
                b = await client.call_tool(tool, {**make(UNKNOWN), **extra})
                if extra and not a.is_error:  # a preview: the same verdict for both
                    pa, pb = a.structured_content, b.structured_content
                    assert pa["allowed"] is pb["allowed"], (tool, pa, pb)
                    for key in ("verdict", "not_checked"):
                        seen = [re.sub(str(i), "N", str(p[key])) for p, i in ((pa, foreign), (pb, UNKNOWN))]
                        assert seen[0] == seen[1], (tool, key, seen)
                    continue
                same_answer(a, foreign, b, UNKNOWN)

        for foreign in (theirs["id"], weekly_sub["id"]):
            await both("cancel_my_subscription", lambda i: {"subscription_id": i, "mode": "now"}, foreign)
            await both("reactivate_my_subscription", lambda i: {"subscription_id": i}, foreign)
        for foreign in (gazette_plan, world.plans(15)["Weekly Pass"]["id"]):
            await both("preview_subscription", lambda i: {"plan_id": i}, foreign)
            await both("subscribe", lambda i: {"plan_id": i, "payment_method_id": other["card_id"]}, foreign)
        await both("preview_subscription", lambda i: {"plan_id": mine, "address_id": i}, other["address_id"])
        await both("subscribe", lambda i: {"plan_id": mine, "payment_method_id": i}, other["card_id"])
        await both("subscribe", lambda i: {"plan_id": mine, "payment_method_id": i}, weekly["card_id"])

        # The caller's own answers never show the others' data.
        listed = await client.call_tool("list_my_subscriptions", {})
        assert listed.structured_content["subscriptions"] == []
        updated = await client.call_tool("update_my_profile", {"first_name": "Mallory"})
        assert updated.structured_content["id"] == me["customer_id"]
    assert world.subscription(other, theirs["id"])["status"] == "active"
    assert world.subscription(other, theirs["id"])["cancel_at_period_end"] is False
    assert world.subscription(weekly, weekly_sub["id"])["status"] == "active"
    assert world.me(other)["first_name"] == "Test" and len(world.me(other)["subscriptions"]) == 1
    assert world.me(weekly)["first_name"] == "Test"
    rows = await audit_rows_async(1, connection_id=conn.connection_id)
    assert rows and {(r.site_id, r.customer_id) for r in rows} == {(14, me["customer_id"])}
