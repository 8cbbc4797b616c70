"""`dry_run` of the Core customer, subscription and address write tools (issue 15 item 3),
one table row per rule of their contract (docs/CORE_API.md §8.2, §8.3, §8.9).

For each row: the state is set up through the sandbox (the Core API, with the account's own
key), the tool is called with `dry_run: true` through a real MCP SDK client against the
test gateway, and the preview's verdict is checked; the sandbox's request log must show no
write, only the preview's reads (at most one GET). Then the same call is made for real and
its outcome must agree: allowed → it succeeds and the state changed as `changes` said;
refused → the upstream refuses it too (the same kind of error). `would_send` is checked
against the write the real call sent (method, path, query, body bytes). Rows whose rule
the preview cannot settle with its one read (another object, an account setting) expect
`allowed` with that rule named in `not_checked`, and the real call's refusal.

Rules without a row: the TAP payment gateway's required customer fields (no demo account
uses TAP; the preview names the rule in `not_checked` whenever a field it needs is
missing), a coupon in another currency (every plan and coupon of a site shares its
currency), and the identity rules of an update (the tools cannot blank a field).

The real calls of `delete_customer`, `delete_address` and `cancel_subscription` with mode
now need a person's confirmation once the confirmation machinery is in place (issue 15
item 1): they are made over a connection whose `confirm_writes` an account owner turned off
(`accounts.models.Connection.confirm_writes`), so this test judges the previews, not the
confirmation flow (which has its own tests).
"""

from __future__ import annotations

import contextlib
import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mcp_bridge.core.results import money
from mcp_bridge.orm import run_db
from tests.support.mcp import audit_rows_async, mcp_session
from tests.support.previews import CORE_BASE, answered_as_previewed, previewed
from tests.support.sandbox import ACME_SITE, ACME_SITE_2, OTHER_SITE

NOUN = {
    "create_customer": "customer",
    "update_customer": "customer",
    "delete_customer": "customer",
    "create_subscription": "subscription",
    "cancel_subscription": "subscription",
    "create_address": "address",
    "update_address": "address",
    "delete_address": "address",
}
IRREVERSIBLE = {"delete_customer", "delete_address"}
_unique = itertools.count()


def unique_email() -> str:
    return f"preview-{uuid.uuid4().hex[:8]}-{next(_unique)}@example.com"


class World:
    """The sandbox as the rows set it up: the Core API with the accounts' own keys."""

    def __init__(self, truth):
        self.truth = truth
        plans = truth.ok("GET", "/plans", site_id=ACME_SITE, params={"limit": 100})
        self.plan = next(p for p in plans if p["active"] == "active" and p["agency_id"] is None)
        self.archived = next(p for p in plans if p["active"] != "active")
        self.agency = next(p for p in plans if p["agency_id"] is not None)
        annual = next(p for p in plans if p["nickname"] == "Digital Annual")
        assert self.plan["id"] != annual["id"]
        coupons = truth.ok("GET", "/coupons", site_id=ACME_SITE, params={"limit": 100})
        self.annual_only = next(c for c in coupons if c["plans"] == [annual["id"]])

    def api(self, method: str, path: str, status: int, *, site_id: int = ACME_SITE, **kwargs) -> Any:
        account = "other" if site_id == OTHER_SITE else "acme"
        return self.truth.ok(method, path, status, site_id=site_id, account=account, **kwargs)

    def customer(self, site_id: int = ACME_SITE, **fields) -> dict:
        return self.api("POST", "/customers", 201, site_id=site_id, json={"email": unique_email(), **fields})

    def with_card(self) -> dict:
        """A customer with a saved card (their default payment method)."""
        return self.customer(import_payment_methods=True, payment_gateway_id=f"cus_{uuid.uuid4().hex[:10]}")

    def address(self, customer_id: int, site_id: int = ACME_SITE, **fields) -> dict:
        body = {"customer_id": customer_id, "type": "shipping", "line1": "1 Preview Way", "country": "GB", **fields}
        return self.api("POST", "/addresses", 201, site_id=site_id, json=body)

    def subscription(self, customer_id: int, plan_id: int | None = None, **fields) -> dict:
        body = {
            "user_id": customer_id,
            "plan_id": plan_id or self.plan["id"],
            "quantity": 1,
            "collection_method": "send_invoice",
            **fields,
        }
        return self.api("POST", "/subscriptions", 201, json=body)

    def seeded_subscription(self, test: Callable[[dict], bool]) -> dict:
        """A seeded subscription of site 14 that passes `test`."""
        for page in range(1, 100):
            found = self.truth.api("GET", "/subscriptions", params={"limit": 100, "page": page}).json()
            match = next((s for s in found["data"] if test(s)), None)
            if match is not None:
                return match
            if page >= found["meta"]["last_page"]:
                break
        raise AssertionError("the seed has no such subscription")

    def gone(self, path: str, site_id: int = ACME_SITE) -> None:
        response = self.truth.api("GET", path, site_id=site_id)
        assert response.status_code == 404, (path, response.status_code)

    def get(self, path: str, site_id: int = ACME_SITE, **params) -> dict:
        return self.api("GET", path, 200, site_id=site_id, params=params)

    def deleted_customer(self) -> dict:
        customer = self.customer()
        assert self.truth.api("DELETE", f"/customers/{customer['id']}").status_code == 204
        return customer


@dataclass
class Row:
    """One rule: `setup(world)` → (the tool's arguments, a check after the real call or None).

    `allowed`: the preview's verdict (None: the arguments break an input rule, so both calls
    answer invalid_arguments and nothing reaches the sandbox). `rule`: a part of the
    refusing rule's name; `unchecked`: a part of the `not_checked` entry of a rule the
    preview could not settle. `real`: "ok" or the real call's error kind. `reads`: the GETs
    the dry run makes."""

    id: str
    tool: str
    setup: Callable[[World], tuple[dict, Callable[[World, dict, dict], None] | None]]
    allowed: bool | None
    real: str = "ok"
    rule: str = ""
    unchecked: str = ""
    reads: int = 1
    site_id: int = ACME_SITE


def args_only(make: Callable[[World], dict]):
    return lambda world: (make(world), None)


def subscribing(**given):
    """A row's create_subscription arguments: a new customer of site 14, the site's plan, one
    of it, paid by invoice; `given` replaces or adds arguments (a value, or a function of the
    world that makes it)."""

    def make(world: World) -> dict:
        given_now = {name: value(world) if callable(value) else value for name, value in given.items()}
        customer_id = given_now.pop("customer_id", None) or world.customer()["id"]
        base = {"plan_id": world.plan["id"], "quantity": 1, "collection_method": "send_invoice"}
        return {"customer_id": customer_id, **base, **given_now}

    return args_only(make)


# --- Setups with a check after the real call ------------------------------------------------------


def delete_with_everything(world: World):
    customer = world.customer(first_name="Grace", last_name="Hopper")
    address = world.address(customer["id"])
    running = world.subscription(customer["id"])
    ended = world.subscription(customer["id"])
    world.api("DELETE", f"/subscriptions/{ended['id']}", 200, json={"mode": "now", "reason": "setup"})

    def then(world: World, preview: dict, result: dict) -> None:
        fields = {c["field"]: (c["before"], c["after"]) for c in preview["changes"]}
        assert fields[f"subscription {running['id']}.status"] == ("active", "canceled")
        assert f"subscription {ended['id']}.status" not in fields  # ended already
        assert fields["customer.subscriptions"] == (2, 0) and fields["customer.addresses"] == (1, 0)
        assert "CANCELED AT ONCE" in preview["summary"] and "Grace Hopper" in preview["summary"]
        for path in (f"/customers/{customer['id']}", f"/addresses/{address['id']}", f"/subscriptions/{running['id']}"):
            world.gone(path)

    return {"customer_id": customer["id"]}, then


def new_default_address(world: World):
    customer = world.customer()
    old = world.address(customer["id"], is_default=True)
    billing = world.address(customer["id"], type="billing", is_default=True)

    def then(world: World, preview: dict, result: dict) -> None:
        fields = {c["field"]: (c["before"], c["after"]) for c in preview["changes"]}
        assert fields[f"address {old['id']}.is_default"] == (True, False)
        assert f"address {billing['id']}.is_default" not in fields  # another type keeps its default
        assert world.get(f"/addresses/{old['id']}")["is_default"] is False
        assert world.get(f"/addresses/{billing['id']}")["is_default"] is True

    args = {
        "customer_id": customer["id"],
        "type": "shipping",
        "line1": "2 New Street",
        "city": "Albany",
        "state": "NY",
        "country": "US",
        "is_default": True,
    }
    return args, then


def subscribe_with_card(world: World):
    customer = world.with_card()
    world.subscription(customer["id"])

    def then(world: World, preview: dict, result: dict) -> None:
        fields = {c["field"]: (c["before"], c["after"]) for c in preview["changes"]}
        assert fields["customer.subscriptions_not_ended"] == (1, 2)
        live = world.get(f"/customers/{customer['id']}", expand="subscriptions")["subscriptions"]
        assert len([s for s in live if s["status"] not in ("canceled", "expired")]) == 2
        assert "ending 4242" in preview["summary"]

    args = {
        "customer_id": customer["id"],
        "plan_id": world.plan["id"],
        "quantity": 2,
        "source_id": customer["default_source_id"],
        "trial_period_days": 7,
    }
    return args, then


def cancel_at_period_end(world: World):
    subscription = world.subscription(world.customer()["id"])

    def then(world: World, preview: dict, result: dict) -> None:
        assert result["status"] == "active"  # unchanged until the period ends
        plan = world.plan
        assert money(plan["amount"], plan["currency"]) in preview["summary"]

    return {"subscription_id": subscription["id"], "mode": "period_end", "reason": "moving abroad"}, then


def used_address_elsewhere(world: World):
    customer = world.customer()
    address = world.address(customer["id"], country="GB")
    world.subscription(customer["id"], address_id=address["id"])
    return {"address_id": address["id"], "country": "DE"}


def address_in_use(world: World):
    customer = world.customer()
    address = world.address(customer["id"])
    world.subscription(customer["id"], address_id=address["id"])
    return {"address_id": address["id"]}


def full_customer(world: World, count: int) -> dict:
    customer = world.customer()
    for _ in range(count):
        world.subscription(customer["id"])
    return customer


def canceled(world: World, mode: str) -> dict:
    subscription = world.subscription(world.customer()["id"])
    world.api("DELETE", f"/subscriptions/{subscription['id']}", 200, json={"mode": mode, "reason": "setup"})
    return subscription


ROWS = [
    # --- create_customer (§8.2) ---------------------------------------------------------------
    Row(
        "create: allowed",
        "create_customer",
        args_only(
            lambda w: {
                "email": unique_email(),
                "first_name": "Ada",
                "phone": "+1 (416) 555-0100",
                "metadata": {"source": "preview"},
                "mail_marketing": True,
            }
        ),
        allowed=True,
    ),
    Row(
        "create: email unique per site",
        "create_customer",
        args_only(lambda w: {"email": w.customer()["email"]}),
        allowed=False,
        real="validation_failed",
        rule="unique per site",
    ),
    Row(
        "create: email DNS check",
        "create_customer",
        args_only(lambda w: {"email": f"x{next(_unique)}@nowhere.invalid"}),
        allowed=False,
        real="validation_failed",
        rule="DNS",
        reads=0,
    ),
    Row(
        "create: old_provider_id unique per account (other site)",
        "create_customer",
        args_only(
            lambda w: {
                "display_name": "Legacy",
                "old_provider_id": w.customer(ACME_SITE_2, old_provider_id=f"legacy-{uuid.uuid4().hex[:8]}")[
                    "old_provider_id"
                ],
            }
        ),
        allowed=True,
        real="validation_failed",
        unchecked="old_provider_id",
        reads=0,
    ),
    Row(
        "create: needs an identity (input)",
        "create_customer",
        args_only(lambda w: {"first_name": "Nobody"}),
        allowed=None,
        real="invalid_arguments",
    ),
    # --- update_customer (§8.2) ---------------------------------------------------------------
    Row(
        "update: allowed (fields, merged metadata, e-mail)",
        "update_customer",
        args_only(
            lambda w: {
                "customer_id": w.customer(first_name="Ada", metadata={"keep": 1, "drop": "x"})["id"],
                "first_name": "Augusta",
                "email": unique_email(),
                "metadata": {"drop": None, "tier": "gold"},
            }
        ),
        allowed=True,
    ),
    Row(
        "update: customer not found",
        "update_customer",
        args_only(lambda w: {"customer_id": 987654321, "first_name": "X"}),
        allowed=False,
        real="not_found",
        rule="404",
    ),
    Row(
        "update: email unique per site",
        "update_customer",
        args_only(lambda w: {"customer_id": w.customer()["id"], "email": w.customer()["email"]}),
        allowed=False,
        real="validation_failed",
        rule="unique per site",
    ),
    Row(
        "update: email DNS check",
        "update_customer",
        args_only(lambda w: {"customer_id": w.customer()["id"], "email": "someone@nowhere.invalid"}),
        allowed=False,
        real="validation_failed",
        rule="DNS",
    ),
    Row(
        "update: default_source_id must be the customer's",
        "update_customer",
        args_only(
            lambda w: {"customer_id": w.customer()["id"], "default_source_id": w.with_card()["default_source_id"]}
        ),
        allowed=True,
        real="validation_failed",
        unchecked="payment method",
    ),
    # --- delete_customer (§8.2) ---------------------------------------------------------------
    Row("delete customer: allowed, takes everything", "delete_customer", delete_with_everything, allowed=True),
    Row(
        "delete customer: not found (already deleted)",
        "delete_customer",
        args_only(lambda w: {"customer_id": w.deleted_customer()["id"]}),
        allowed=False,
        real="not_found",
        rule="404",
    ),
    # --- create_subscription (§8.3) -----------------------------------------------------------
    Row(
        "subscribe: allowed (send_invoice)",
        "create_subscription",
        subscribing(quantity=3),
        allowed=True,
    ),
    Row("subscribe: allowed (card, trial)", "create_subscription", subscribe_with_card, allowed=True),
    Row(
        "subscribe: customer not found",
        "create_subscription",
        subscribing(customer_id=987654321),
        allowed=False,
        real="not_found",
        rule="404",
    ),
    Row(
        "subscribe: address must be the customer's",
        "create_subscription",
        subscribing(address_id=lambda w: w.address(w.customer()["id"])["id"]),
        allowed=False,
        real="validation_failed",
        rule="address",
    ),
    Row(
        "subscribe: customer at the maximum",
        "create_subscription",
        subscribing(customer_id=lambda w: full_customer(w, 25)["id"]),
        allowed=False,
        real="refused",
        rule="maximum",
    ),
    Row(
        "subscribe: archived plan",
        "create_subscription",
        subscribing(plan_id=lambda w: w.archived["id"]),
        allowed=True,
        real="refused",
        unchecked="archived",
    ),
    Row(
        "subscribe: coupon restricted to other plans",
        "create_subscription",
        subscribing(coupon_code=lambda w: w.annual_only["code"]),
        allowed=True,
        real="refused",
        unchecked="restricted to other plans",
    ),
    Row(
        "subscribe: payment method must be the customer's",
        "create_subscription",
        args_only(
            lambda w: {
                "customer_id": w.customer()["id"],
                "plan_id": w.plan["id"],
                "quantity": 1,
                "source_id": w.with_card()["default_source_id"],
            }
        ),
        allowed=True,
        real="validation_failed",
        unchecked="payment method",
    ),
    Row(
        "subscribe: charge_automatically needs source_id (input)",
        "create_subscription",
        args_only(lambda w: {"customer_id": w.customer()["id"], "plan_id": w.plan["id"], "quantity": 1}),
        allowed=None,
        real="invalid_arguments",
    ),
    # --- cancel_subscription (§8.3) -----------------------------------------------------------
    Row("cancel: period_end allowed", "cancel_subscription", cancel_at_period_end, allowed=True),
    Row(
        "cancel: now allowed",
        "cancel_subscription",
        args_only(
            lambda w: {"subscription_id": w.subscription(w.customer()["id"])["id"], "mode": "now", "reason": "fraud"}
        ),
        allowed=True,
    ),
    Row(
        "cancel: now, after period_end was set, allowed",
        "cancel_subscription",
        args_only(lambda w: {"subscription_id": canceled(w, "period_end")["id"], "mode": "now", "reason": "sooner"}),
        allowed=True,
    ),
    Row(
        "cancel: period_end twice",
        "cancel_subscription",
        args_only(lambda w: {"subscription_id": canceled(w, "period_end")["id"], "mode": "period_end", "reason": "x"}),
        allowed=False,
        real="refused",
        rule="period_end",
    ),
    Row(
        "cancel: already canceled",
        "cancel_subscription",
        args_only(lambda w: {"subscription_id": canceled(w, "now")["id"], "mode": "now", "reason": "again"}),
        allowed=False,
        real="refused",
        rule="ended",
    ),
    Row(
        "cancel: gift recipient",
        "cancel_subscription",
        args_only(
            lambda w: {
                "subscription_id": w.seeded_subscription(
                    lambda s: s["is_gift_recipient"] and s["status"] not in ("canceled", "expired")
                )["id"],
                "mode": "period_end",
                "reason": "x",
            }
        ),
        allowed=False,
        real="refused",
        rule="gift-recipient",
    ),
    Row(
        "cancel: agency-managed",
        "cancel_subscription",
        args_only(
            lambda w: {
                "subscription_id": w.subscription(w.customer()["id"], w.agency["id"])["id"],
                "mode": "now",
                "reason": "x",
            }
        ),
        allowed=False,
        real="refused",
        rule="agency",
    ),
    Row(
        "cancel: pending payment (incomplete)",
        "cancel_subscription",
        args_only(
            lambda w: {
                "subscription_id": w.seeded_subscription(lambda s: s["status"] == "incomplete")["id"],
                "mode": "now",
                "reason": "x",
            }
        ),
        allowed=False,
        real="refused",
        rule="pending-payment",
    ),
    Row(
        "cancel: not found",
        "cancel_subscription",
        args_only(lambda w: {"subscription_id": 987654321, "mode": "period_end", "reason": "x"}),
        allowed=False,
        real="not_found",
        rule="404",
    ),
    # --- create_address (§8.9) ----------------------------------------------------------------
    Row("address: allowed, the new default", "create_address", new_default_address, allowed=True),
    Row(
        "address: customer not found",
        "create_address",
        args_only(lambda w: {"customer_id": 987654321, "type": "billing", "line1": "1 A St", "country": "GB"}),
        allowed=False,
        real="not_found",
        rule="404",
    ),
    Row(
        "address: postal code for US with taxes enabled",
        "create_address",
        args_only(
            lambda w: {
                "customer_id": w.customer(OTHER_SITE)["id"],
                "type": "billing",
                "line1": "1 Tax St",
                "state": "NY",
                "country": "US",
            }
        ),
        allowed=True,
        real="validation_failed",
        unchecked="postal_code",
        site_id=OTHER_SITE,
    ),
    Row(
        "address: state for US (input)",
        "create_address",
        args_only(lambda w: {"customer_id": w.customer()["id"], "type": "billing", "line1": "1 A St", "country": "US"}),
        allowed=None,
        real="invalid_arguments",
    ),
    # --- update_address (§8.9) ----------------------------------------------------------------
    Row(
        "update address: allowed",
        "update_address",
        args_only(lambda w: {"address_id": w.address(w.customer()["id"])["id"], "city": "Leeds", "line2": "Flat 2"}),
        allowed=True,
    ),
    Row(
        "update address: not found",
        "update_address",
        args_only(lambda w: {"address_id": 987654321, "city": "Leeds"}),
        allowed=False,
        real="not_found",
        rule="404",
    ),
    Row(
        "update address: a US address needs a state",
        "update_address",
        args_only(lambda w: {"address_id": w.address(w.customer()["id"])["id"], "country": "US"}),
        allowed=False,
        real="validation_failed",
        rule="state",
    ),
    Row(
        "update address: country of an address a subscription uses",
        "update_address",
        args_only(used_address_elsewhere),
        allowed=True,
        real="validation_failed",
        unchecked="subscription uses this address",
    ),
    # --- delete_address (§8.9) ----------------------------------------------------------------
    Row(
        "delete address: allowed",
        "delete_address",
        lambda w: (
            (args := {"address_id": w.address(w.customer()["id"])["id"]}),
            lambda world, preview, result: world.gone(f"/addresses/{args['address_id']}"),
        ),
        allowed=True,
    ),
    Row(
        "delete address: used by a subscription",
        "delete_address",
        args_only(address_in_use),
        allowed=True,
        real="refused",
        unchecked="subscription",
    ),
    Row(
        "delete address: not found",
        "delete_address",
        args_only(lambda w: {"address_id": 987654321}),
        allowed=False,
        real="not_found",
        rule="404",
    ),
]


# --- Checks ------------------------------------------------------------------------------------


def requests_since(truth, since: int) -> list[dict]:
    return truth.log(since=since)


def _recent(value: str) -> bool:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return abs((datetime.now(UTC) - moment).total_seconds()) < 120


def changed_as_previewed(tool: str, preview: dict, result: dict) -> int:
    """Every change to the object the tool writes is in the real call's answer; returns how
    many were checked (changes to other objects are the row's own check)."""
    noun, checked = NOUN[tool], 0
    if tool.startswith("delete_"):
        return 0  # the answer is a receipt, not the object: the row checks that it is gone
    for change in preview["changes"]:
        owner, _, name = change["field"].partition(".")
        if owner != noun or name == "deleted" or name in ("coupon_code", "trial_period_days"):
            continue
        value: Any = result
        for part in name.split("."):
            value = (value or {}).get(part)
        if change["after"] == "now":
            assert value and _recent(value), (change, value)
        else:
            assert value == change["after"], (change, value)
        checked += 1
    return checked


async def waive_confirmation(account: str) -> None:
    """The account owner turns "ask before money-moving or irreversible actions" off for
    this test's connection (README "Safe writes")."""
    from accounts.models import Connection

    def waive() -> int:
        return Connection.objects.filter(account__slug=account, revoked_at=None).update(confirm_writes=False)

    assert await run_db(waive) == 1


async def test_dry_run_verdicts_match_the_real_calls(mcp_env, truth):
    world = World(truth)
    async with contextlib.AsyncExitStack() as stack:
        clients = {}
        for account, site_id in (("acme", ACME_SITE), ("other", OTHER_SITE)):
            token = mcp_env.token(account)
            await waive_confirmation(account)
            clients[site_id] = await stack.enter_async_context(mcp_session(mcp_env.url, token, "2026-07-28"))
        dry_runs = {}
        for row in ROWS:
            where = f"row {row.id!r}"
            args, then = row.setup(world)
            args = {"site_id": row.site_id, **args}
            client = clients[row.site_id]

            before = truth.last_seq()
            dry = await client.call_tool(row.tool, {**args, "dry_run": True})
            reads = requests_since(truth, before)
            assert all(entry["method"] == "GET" for entry in reads), (where, reads)
            if row.allowed is None:
                assert dry.is_error and dry.structured_content["error"] == row.real, (where, dry.content)
                assert reads == [], where
                real = await client.call_tool(row.tool, args)
                assert real.is_error and real.structured_content["error"] == row.real, where
                assert requests_since(truth, before) == [], where
                continue
            preview = previewed(dry, row.tool, row.allowed, rule=row.rule, unchecked=row.unchecked, where=where)
            assert len(reads) == row.reads <= 1, (where, reads)
            dry_runs[row.tool] = dry_runs.get(row.tool, 0) + 1
            assert f"site {row.site_id} (" in preview["summary"] and "of account " in preview["summary"], where
            irreversible = row.tool in IRREVERSIBLE or args.get("mode") == "now"
            assert preview["irreversible"] is irreversible, where
            # Exactly these need a person: the irreversible ones, and a subscription charged to a card.
            charges = row.tool == "create_subscription" and args.get("collection_method") != "send_invoice"
            assert preview["needs_confirmation"] is (irreversible or charges), where
            if irreversible and row.allowed:
                assert "This cannot be undone." in preview["summary"], where
            if not irreversible:
                assert "cannot be undone" not in preview["summary"], where

            before = truth.last_seq()
            real = await client.call_tool(row.tool, args)
            writes = [e for e in requests_since(truth, before) if e["method"] != "GET"]
            result = answered_as_previewed(real, preview, writes, row.real, CORE_BASE, where)
            if result is not None:
                checked = changed_as_previewed(row.tool, preview, result)
                assert checked or row.tool in ("delete_customer", "delete_address"), where
                if then is not None:
                    then(world, preview, result)

    # A dry run leaves its audit row, marked as one (and a real call's is not).
    for tool, count in dry_runs.items():
        rows = await audit_rows_async(count, tool=tool, dry_run=True)
        assert len(rows) == count, tool
        assert all(r.outcome == "ok" for r in rows), tool
