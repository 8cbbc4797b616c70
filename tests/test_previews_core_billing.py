"""`dry_run` previews of the Core invoice, charge and refund write tools (issue 15 item 3),
table-driven: one row per rule of docs/CORE_API.md §8.4, §8.7 and §8.8 for these tools.

Each row sets an object's state up through the sandbox's own Core API (as the account,
with its key), then, through a real SDK client and the live gateway: the tool with
`dry_run: true` must answer the row's verdict while the sandbox request log shows only
the preview's reads (GETs, as many as the row says: one, two for a payable invoice's
balance); then the real call must agree: allowed → it succeeds, sends exactly the request
the preview showed (method, path, query, body hash), and the objects change as the
preview's `changes` said (and were as its `before` values said); refused → the Core API
refuses it (the row's error kind) and nothing changes.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from mcp_bridge.orm import run_db
from tests.support.mcp import ERAS, audit_rows_async, mcp_session
from tests.support.previews import CORE_BASE, sent_as_previewed
from tests.support.sandbox import ACME_SITE_2, SandboxClient

SITE = 14  # acme
_unique = itertools.count()


# --- Setting states up through the sandbox's Core API (as the account acme) -----------------


class World:
    """Objects of site `site` made or found through the Core API; `ids` names what a row
    set up (invoice, customer, refunds), for reading it before and after."""

    def __init__(self, truth: SandboxClient, site: int = SITE):
        self.truth, self.site = truth, site

    def ok(self, method: str, path: str, status: int = 200, **kwargs):
        return self.truth.ok(method, path, status, site_id=self.site, **kwargs)

    def customer(self) -> dict:
        return self.ok(
            "POST", "/customers", 201, json={"email": f"preview{next(_unique)}-{time.time_ns()}@example.com"}
        )

    def credit(self, customer_id: int, amount: int, currency: str = "usd") -> dict:
        body = {"customer_id": customer_id, "amount": amount, "currency": currency, "reference": "credit"}
        return self.ok("POST", "/charges", 201, json=body)

    def invoice(self, customer_id: int | None = None, status: str = "open", amount: int = 5000, **extra) -> dict:
        customer_id = customer_id or self.customer()["id"]
        body = {"customer_id": customer_id, "currency": "usd", "total": amount, "status": status, **extra}
        return self.ok("POST", "/invoices", 201, json=body)

    def subscription(self, customer_id: int) -> dict:
        plan = next(p for p in self.ok("GET", "/plans", params={"limit": 100}) if p["nickname"] == "Digital Monthly")
        body = {"user_id": customer_id, "plan_id": plan["id"], "quantity": 1, "collection_method": "send_invoice"}
        return self.ok("POST", "/subscriptions", 201, json=body)

    def invoice_in(self, state: str) -> dict:
        """An invoice in `state`: made through the API, or (past_due, advance) from the seed."""
        if state in ("past_due", "advance"):
            status = "open" if state == "advance" else state
            listed = self.ok("GET", "/invoices", params={"limit": 100, "filter[status]": f"eq:{status}", "sort": "-id"})
            return next(
                i
                for i in listed
                if i["amount_paid"] == 0 and i["is_advance"] == (state == "advance") and not self.forced(i)
            )
        if state == "forced":  # an open invoice of a subscription canceled at once (mode now)
            subscription = self.subscription(self.customer()["id"])
            self.ok("DELETE", f"/subscriptions/{subscription['id']}", json={"mode": "now"})
            return self.ok("GET", f"/invoices/{subscription['latest_invoice']}")
        if state == "period_end":  # an open invoice of a subscription set to end with its period
            subscription = self.subscription(self.customer()["id"])
            self.ok("DELETE", f"/subscriptions/{subscription['id']}", json={"mode": "period_end"})
            return self.ok("GET", f"/invoices/{subscription['latest_invoice']}")
        if state == "partly_paid":
            customer = self.customer()
            self.credit(customer["id"], 1000)
            invoice = self.invoice(customer["id"])
            return self.ok("POST", f"/invoices/{invoice['id']}/apply_balance")
        invoice = self.invoice(status="draft" if state == "draft" else "open")
        if state == "paid":
            body = {"reference": "CHK-1", "payment_category": "2"}
            return self.ok("POST", f"/invoices/{invoice['id']}/pay_offline", json=body)
        if state in ("void", "uncollectible"):
            return self.ok("POST", f"/invoices/{invoice['id']}/{state}")
        return invoice

    def forced(self, invoice: dict) -> bool:
        """Whether the invoice bills a subscription that was canceled at once (CORE_API.md §8.4)."""
        if invoice["subscription_id"] is None:
            return False
        response = self.truth.api("GET", f"/subscriptions/{invoice['subscription_id']}", site_id=self.site)
        subscription = response.json()["data"] if response.status_code == 200 else {"status": "canceled"}
        return subscription["status"] == "canceled" and not subscription.get("cancel_at_period_end")

    def refunds(self) -> list[dict]:
        return self.ok("GET", "/refunds", params={"limit": 100})


@dataclass
class Setup:
    """What a row set up: the tool's arguments and the objects they concern."""

    args: dict
    invoice: dict | None = None
    customer_id: int | None = None


@dataclass
class Row:
    name: str
    tool: str
    setup: Callable[[World], Setup]
    allowed: bool
    verdict: str  # in the preview's verdict: the rule, in its words
    real: str | None = None  # refused: the real call's error kind (refused, not_found, validation_failed)
    reads: int = 1  # the preview's upstream GETs
    not_checked: str | None = None  # in the rules the preview says it could not check


def on_invoice(state: str, **args) -> Callable[[World], Setup]:
    def setup(world: World) -> Setup:
        invoice = world.invoice_in(state)
        return Setup({"invoice_id": invoice["id"], **args}, invoice, invoice["customer_id"])

    return setup


def missing_invoice(**args) -> Callable[[World], Setup]:
    return lambda world: Setup({"invoice_id": 987_654_321, **args})


def with_credit(credit: int, amount: int = 5000) -> Callable[[World], Setup]:
    def setup(world: World) -> Setup:
        customer = world.customer()
        if credit:
            world.credit(customer["id"], credit)
        invoice = world.invoice(customer["id"], amount=amount)
        return Setup({"invoice_id": invoice["id"]}, invoice, customer["id"])

    return setup


def new_invoice_for(make: Callable[[World], tuple[int, dict]]) -> Callable[[World], Setup]:
    """create_invoice of `make(world)` → (customer id, arguments besides customer_id)."""

    def setup(world: World) -> Setup:
        customer_id, args = make(world)
        return Setup({"customer_id": customer_id, "currency": "usd", **args}, None, customer_id)

    return setup


def _holding_usd(world: World) -> int:
    customer = world.customer()["id"]
    world.credit(customer, 700)
    return customer


def _someone_elses_subscription(world: World) -> tuple[int, dict]:
    other = world.customer()["id"]
    return world.customer()["id"], {"total": 1999, "subscription_id": world.subscription(other)["id"]}


def _own_subscription(world: World) -> tuple[int, dict]:
    customer = world.customer()["id"]
    lines = [{"description": "Back issue", "unit_price": 450, "quantity": 3}]
    return customer, {"line_items": lines, "subscription_id": world.subscription(customer)["id"]}


def charge_for(state: str | None, *, amount: int | None = None, currency: str = "usd", other_customer: bool = False):
    """create_offline_charge: paying an invoice in `state`, or (None) to a new customer's balance."""

    def setup(world: World) -> Setup:
        base = {"reference": "WIRE-7", "payment_category": "wire", "currency": currency}
        if state is None:
            customer = world.customer()["id"]
            return Setup({**base, "customer_id": customer, "amount": amount or 2500}, None, customer)
        invoice = world.invoice_in(state)
        customer = world.customer()["id"] if other_customer else invoice["customer_id"]
        paid = amount if amount is not None else invoice["amount_remaining"] or 1
        return Setup({**base, "customer_id": customer, "invoice_id": invoice["id"], "amount": paid}, invoice, customer)

    return setup


def credit_in_usd_charged_in(currency: str) -> Callable[[World], Setup]:
    def setup(world: World) -> Setup:
        customer = _holding_usd(world)
        args = {"customer_id": customer, "amount": 100, "currency": currency, "reference": "R-9"}
        return Setup(args, None, customer)

    return setup


def refunds_named(pick: Callable[[list[dict]], list[int]]) -> Callable[[World], Setup]:
    return lambda world: Setup({"refund_ids": pick(world.refunds())})


def _pending(refunds: list[dict]) -> list[dict]:
    return [r for r in refunds if r["status"] == "to_issue" and r["created_at"]]


ROWS = [
    # create_invoice (§8.4 create): the customer exists, owns the subscription, takes the currency.
    Row("create", "create_invoice", new_invoice_for(lambda w: (w.customer()["id"], {"total": 1999, "status": "open"})),
        True, "may be invoiced in USD"),
    Row("create with lines, on the customer's subscription", "create_invoice", new_invoice_for(_own_subscription),
        True, "owns subscription"),
    Row("create for a missing customer", "create_invoice",
        new_invoice_for(lambda w: (987_654_321, {"total": 1999})), False, "was not found on site 14", "not_found"),
    Row("create with lines adding up to nothing", "create_invoice", new_invoice_for(
        lambda w: (w.customer()["id"], {"line_items": [{"description": "Free", "unit_price": 0, "quantity": 2}]})),
        False, "must add up to 1 to", "validation_failed"),
    Row("create on another customer's subscription", "create_invoice", new_invoice_for(_someone_elses_subscription),
        False, "is not a subscription of customer", "validation_failed"),
    Row("create in another currency than the customer's balance", "create_invoice",
        new_invoice_for(lambda w: (_holding_usd(w), {"total": 1999, "currency": "eur"})),
        False, "must be customer", "validation_failed"),
    # The account's currencies are not in the one object a preview reads: said, not judged.
    Row("create in a currency the account lacks (not checked)", "create_invoice",
        new_invoice_for(lambda w: (w.customer()["id"], {"total": 1999, "currency": "eur"})),
        True, "may be invoiced in EUR", "validation_failed", not_checked="whether EUR is one of the account's currencies"),
    # update_invoice (§8.4 update): metadata only, on any invoice.
    Row("update an open invoice", "update_invoice", on_invoice("open", metadata={"po": "A-1"}), True,
        "metadata of any invoice can be changed"),
    Row("update a paid invoice", "update_invoice", on_invoice("paid", metadata={"po": "B-2"}), True,
        "metadata of any invoice can be changed"),
    Row("update a missing invoice", "update_invoice", missing_invoice(metadata={"po": "C"}), False,
        "was not found on site 14", "not_found"),
    # pay_invoice_offline (§8.4 pay offline): open/past_due, not of a forcefully canceled subscription.
    *(
        Row(f"pay offline: {state}", "pay_invoice_offline",
            on_invoice(state, reference="CHQ-77", payment_category="check"), allowed, verdict,
            None if allowed else "refused")
        for state, allowed, verdict in [
            ("open", True, "pays its whole remaining amount"),
            ("past_due", True, "pays its whole remaining amount"),
            ("partly_paid", True, "pays its whole remaining amount"),
            ("period_end", True, "pays its whole remaining amount"),
            ("draft", False, "is draft; only open or past_due invoices can be paid"),
            ("paid", False, "is already paid"),
            ("void", False, "is void; only open or past_due"),
            ("uncollectible", False, "is uncollectible; only open or past_due"),
            ("forced", False, "canceled forcefully"),
        ]
    ),
    Row("pay offline: missing", "pay_invoice_offline",
        missing_invoice(reference="CHQ-1", payment_category="cash"), False, "was not found on site 14", "not_found"),
    # void_invoice (§8.4 void): not advance, not void/paid/uncollectible, not partly paid.
    *(
        Row(f"void: {state}", "void_invoice", on_invoice(state), allowed, verdict, None if allowed else "refused")
        for state, allowed, verdict in [
            ("open", True, "it can be voided"),
            ("draft", True, "it can be voided"),
            ("past_due", True, "it can be voided"),
            ("advance", False, "is an advance invoice"),
            ("partly_paid", False, "is partly paid"),
            ("paid", False, "is paid; a void, paid or uncollectible invoice cannot be voided"),
            ("void", False, "is void; a void, paid or uncollectible invoice cannot be voided"),
            ("uncollectible", False, "is uncollectible; a void, paid or uncollectible invoice cannot be voided"),
        ]
    ),
    Row("void: missing", "void_invoice", missing_invoice(), False, "was not found on site 14", "not_found"),
    # mark_invoice_uncollectible (§8.4 uncollectible): open/past_due only; then final.
    *(
        Row(f"uncollectible: {state}", "mark_invoice_uncollectible", on_invoice(state), allowed, verdict,
            None if allowed else "refused")
        for state, allowed, verdict in [
            ("open", True, "an open or past_due invoice can be written off"),
            ("past_due", True, "an open or past_due invoice can be written off"),
            ("draft", False, "only open or past_due invoices can be marked uncollectible"),
            ("paid", False, "only open or past_due invoices can be marked uncollectible"),
            ("void", False, "only open or past_due invoices can be marked uncollectible"),
            ("uncollectible", False, "only open or past_due invoices can be marked uncollectible"),
        ]
    ),
    # apply_invoice_balance (§8.4 apply balance): open/past_due, a credit balance; in full or in part.
    Row("apply balance: part", "apply_invoice_balance", with_credit(250), True, "holds 2.50 USD of credit", reads=2),
    Row("apply balance: in full", "apply_invoice_balance", with_credit(6000), True, "holds 60.00 USD", reads=2),
    Row("apply balance: no credit", "apply_invoice_balance", with_credit(0), False, "has no credit balance",
        "refused", reads=2),
    *(
        Row(f"apply balance: {state}", "apply_invoice_balance", on_invoice(state), False,
            "only open or past_due invoices take a balance", "refused")
        for state in ("draft", "paid", "void", "uncollectible")
    ),
    Row("apply balance: missing", "apply_invoice_balance", missing_invoice(), False, "was not found on site 14", "not_found"),
    # create_offline_charge (§8.7): to the balance, or paying an open/past_due invoice exactly.
    Row("charge to the balance", "create_offline_charge", charge_for(None), True, "may be credited in USD"),
    Row("charge to a balance in another currency", "create_offline_charge", credit_in_usd_charged_in("eur"), False,
        "must be customer", "validation_failed"),
    Row("charge for a missing customer", "create_offline_charge",
        lambda w: Setup({"customer_id": 987_654_321, "amount": 100, "currency": "usd", "reference": "R"}),
        False, "was not found on site 14", "not_found"),
    Row("charge paying an open invoice", "create_offline_charge", charge_for("open"), True, "exactly what it still owes"),
    Row("charge paying a past_due invoice", "create_offline_charge", charge_for("past_due"), True, "exactly what"),
    Row("charge paying a forcefully canceled subscription's invoice", "create_offline_charge", charge_for("forced"),
        True, "exactly what it still owes"),
    Row("charge of another amount than owed", "create_offline_charge", charge_for("open", amount=1234), False,
        "must equal", "refused"),
    Row("charge paying a draft", "create_offline_charge", charge_for("draft"), False,
        "only open or past_due invoices can be paid", "refused"),
    Row("charge paying a paid invoice", "create_offline_charge", charge_for("paid", amount=5000), False,
        "is already paid", "refused"),
    Row("charge paying another customer's invoice", "create_offline_charge", charge_for("open", other_customer=True),
        False, "belongs to customer", "validation_failed"),
    Row("charge in another currency than the invoice's", "create_offline_charge", charge_for("open", currency="eur"),
        False, "currency must be the invoice's (USD)", "validation_failed"),
    Row("charge paying a missing invoice", "create_offline_charge",
        lambda w: Setup({"customer_id": w.customer()["id"], "invoice_id": 987_654_321, "amount": 100,
                         "currency": "usd", "reference": "R"}), False, "was not found on site 14", "not_found"),
    # cancel_refunds (§8.8): only pending refunds with a creation date; others left, no error.
    Row("cancel a pending refund among others", "cancel_refunds", refunds_named(
        lambda refunds: [_pending(refunds)[0]["id"]] + [r["id"] for r in refunds if r["status"] != "to_issue"][:2]
        + [r["id"] for r in refunds if r["status"] == "to_issue" and not r["created_at"]]),
        True, "1 refund(s) would be queued"),
    Row("cancel every pending refund", "cancel_refunds", lambda w: Setup({"all_pending": True}), True,
        "would be queued for cancellation"),
    Row("cancel refunds that are not pending", "cancel_refunds", refunds_named(
        lambda refunds: [r["id"] for r in refunds if r["status"] in ("issued", "canceled")][:3]),
        True, "0 refund(s) would be queued"),
]  # fmt: skip
TOOLS = sorted({row.tool for row in ROWS})


# --- Reading the outcome -----------------------------------------------------------------


def log_since(truth: SandboxClient, seq: int) -> list[dict]:
    return truth.log(since=seq, account="acme", api="core")


class Objects:
    """The current value of a preview's change field (`invoice.status`, `customer.balance`,
    `invoice.metadata.po`, `refund.12.status`, `charge.amount`) for one row."""

    def __init__(self, world: World, setup: Setup, result: dict | None = None):
        self.world, self.setup, self.result = world, setup, result or {}

    def value(self, field: str):
        kind, _, rest = field.partition(".")
        if kind == "invoice":
            invoice_id = self.setup.invoice["id"] if self.setup.invoice else self.result["id"]
            invoice = self.world.ok("GET", f"/invoices/{invoice_id}")
            return invoice["metadata"].get(rest.split(".", 1)[1]) if rest.startswith("metadata.") else invoice[rest]
        if kind == "customer":
            return self.world.ok("GET", f"/customers/{self.setup.customer_id}")[rest]
        if kind == "refund":
            refund_id, _, name = rest.partition(".")
            return next(r for r in self.world.refunds() if r["id"] == int(refund_id))[name]
        if kind == "charge":  # the charge the write recorded: its answer, or the invoice's newest
            if "amount" in self.result and "invoice_id" in self.result and "reference" in self.result:
                return self.result[rest]
            meta = self.world.truth.api("GET", "/charges", site_id=SITE, params={"limit": 100}).json()["meta"]
            last = self.world.ok("GET", "/charges", params={"limit": 100, "page": meta["last_page"]})
            return max((c for c in last if c["invoice_id"] == self.setup.invoice["id"]), key=lambda c: c["id"])[rest]
        raise AssertionError(f"unknown change field {field}")

    def new(self, field: str) -> bool:
        """A field of an object the write creates (no value before it)."""
        return field.startswith("charge.") or (field.startswith("invoice.") and self.setup.invoice is None)

    def snapshot(self) -> dict:
        """What a refused write must leave as it is."""
        state = {}
        if self.setup.invoice:
            state["invoice"] = self.world.ok("GET", f"/invoices/{self.setup.invoice['id']}")
        if (
            self.setup.customer_id
            and self.world.truth.api("GET", f"/customers/{self.setup.customer_id}", site_id=SITE).status_code == 200
        ):
            state["customer"] = self.world.ok("GET", f"/customers/{self.setup.customer_id}")
        state["refunds"] = self.world.refunds()
        return state


async def confirm_nothing(mcp_env) -> None:
    """This test judges previews against real calls, not confirmations: the connection does
    not ask before money-moving actions (Connection.confirm_writes, README "Safe writes")."""
    from accounts.models import Connection

    await run_db(lambda: Connection.objects.filter(account__slug="acme").update(confirm_writes=False))


# --- The table ---------------------------------------------------------------------------


@pytest.mark.parametrize("tool", TOOLS)
async def test_dry_run_verdicts_match_the_real_calls(mcp_env, fresh_sbx, truth, tool):
    token = mcp_env.token("acme")
    await confirm_nothing(mcp_env)
    world = World(truth)
    rows = [row for row in ROWS if row.tool == tool]
    async with mcp_session(mcp_env.url, token, "2026-07-28") as client:
        await client.list_tools()  # the SDK client then checks every result against its outputSchema
        for row in rows:
            setup = row.setup(world)
            arguments = {"site_id": SITE, **{k: v for k, v in setup.args.items() if v is not None}}
            objects = Objects(world, setup)
            before = objects.snapshot()

            seq = truth.last_seq()
            dry = await client.call_tool(tool, {**arguments, "dry_run": True})
            assert not dry.is_error, (row.name, dry.content[0].text)
            preview = dry.structured_content
            reads = log_since(truth, seq)
            assert [e["method"] for e in reads] == ["GET"] * row.reads, (row.name, reads)
            assert preview["dry_run"] is True and preview["tool"] == tool
            assert preview["allowed"] is row.allowed, (row.name, preview["verdict"])
            said = f"{preview['verdict']} | {preview['rule']}"  # the verdict, and the rule it names
            assert row.verdict in said, (row.name, said)
            assert preview["rule"].startswith("CORE_API.md §"), row.name
            if row.not_checked is not None:  # an allowed verdict that holds only as far as these go
                assert any(row.not_checked in rule for rule in preview["not_checked"]), (row.name, preview)
            assert preview["needs_confirmation"] is (tool not in ("create_invoice", "update_invoice")), row.name
            assert dry.content[0].text.startswith(
                "Dry run, nothing was written. " + ("Allowed: " if row.allowed else "Would be refused: ")
            )
            summary = preview["summary"]
            assert "site 14 (" in summary and "account acme" in summary, (row.name, summary)
            assert ("This cannot be undone." in summary) is preview["irreversible"], row.name
            for change in preview["changes"]:  # the before values are the state the preview read
                if not objects.new(change["field"]):
                    assert objects.value(change["field"]) == change["before"], (row.name, change)
            assert objects.snapshot() == before, row.name  # nothing changed

            seq = truth.last_seq()
            real = await client.call_tool(tool, arguments)
            writes = [e for e in log_since(truth, seq) if e["method"] != "GET"]
            assert len(writes) == 1, (row.name, writes)  # exactly the one write, once
            sent_as_previewed(preview["would_send"], writes[0], CORE_BASE)
            if row.real is not None:  # refused upstream, as the preview said (or warned)
                assert real.is_error and real.structured_content["error"] == row.real, (row.name, real.content)
                assert writes[0]["status"] >= 400
                assert objects.snapshot() == before, row.name
                continue
            assert not real.is_error, (row.name, real.content[0].text)
            if tool == "cancel_refunds":
                queued = [int(c["field"].split(".")[1]) for c in preview["changes"]]
                assert real.structured_content["queued"] == queued, row.name
                world.truth.admin.post("/jobs/run").raise_for_status()
            after = Objects(world, setup, real.structured_content)
            assert preview["changes"] or tool == "cancel_refunds", row.name
            for change in preview["changes"]:
                assert after.value(change["field"]) == change["after"], (row.name, change)

        rows_written = await audit_rows_async(2 * len(rows), tool=tool)
        assert [r.dry_run for r in rows_written] == [True, False] * len(rows)
        assert all(r.outcome == "ok" for r in rows_written[::2])  # a preview answers, even "refused"


# --- Around the table --------------------------------------------------------------------


@pytest.mark.parametrize("mode", ERAS)
async def test_a_preview_reads_and_says_what_a_person_must_know(mcp_env, fresh_sbx, truth, mode):
    """The void preview's answer in full: what would be sent, the rule, the changes, and a
    summary naming the account and site, the customer, the invoice and the amount owed."""
    world = World(truth)
    invoice = world.invoice(amount=1999)
    token = mcp_env.token("acme")
    async with mcp_session(mcp_env.url, token, mode) as client:
        seq = truth.last_seq()
        result = await client.call_tool("void_invoice", {"site_id": SITE, "invoice_id": invoice["id"], "dry_run": True})
        entries = log_since(truth, seq)
    assert [(e["method"], e["path"]) for e in entries] == [("GET", f"/api/v1/core/invoices/{invoice['id']}")]
    preview = result.structured_content
    assert preview == {
        "dry_run": True,
        "tool": "void_invoice",
        "would_send": {
            "method": "POST",
            "path": f"/invoices/{invoice['id']}/void",
            "query": {"site_id": SITE},
            "body": None,
        },
        "allowed": True,
        "verdict": f"Invoice {invoice['number']} (id {invoice['id']}) is open, unpaid and not an advance invoice: "
        "it can be voided.",
        "rule": "CORE_API.md §8.4 (void)",
        "changes": [{"field": "invoice.status", "before": "open", "after": "void"}],
        "summary": f"On site 14 (Acme Daily) of account acme: void invoice {invoice['number']} (id {invoice['id']}) "
        f"of customer {invoice['customer_id']} (19.99 USD owed, open); nothing would be owed. This cannot be undone.",
        "irreversible": True,
        "needs_confirmation": True,
        "not_checked": [],
    }
    assert (
        result.content[0].text
        == "Dry run, nothing was written. Allowed: " + preview["verdict"] + "\n" + preview["summary"]
    )
    (row,) = await audit_rows_async(1, tool="void_invoice")
    assert (row.dry_run, row.outcome, row.upstream_status, row.site_id) == (True, "ok", 200, SITE)
    assert truth.ok("GET", f"/invoices/{invoice['id']}", site_id=SITE)["status"] == "open"


async def test_a_preview_on_another_site_of_the_account_names_that_site(mcp_env, fresh_sbx, truth):
    world = World(truth, ACME_SITE_2)
    customer = world.customer()
    token = mcp_env.token("acme")
    async with mcp_session(mcp_env.url, token, "2026-07-28") as client:
        result = await client.call_tool(
            "create_offline_charge",
            {"site_id": ACME_SITE_2, "customer_id": customer["id"], "amount": 123456, "currency": "usd",
             "reference": "LOCKBOX-4", "dry_run": True},
        )  # fmt: skip
    preview = result.structured_content
    assert preview["allowed"] is True and preview["irreversible"] is True
    assert f"site {ACME_SITE_2} (Acme Weekly) of account acme" in preview["summary"]
    assert (
        "1,234.56 USD" in preview["summary"]
        and f"customer {customer['id']} ({customer['email']})" in preview["summary"]
    )
    assert preview["changes"] == [
        {"field": "charge.amount", "before": None, "after": 123456},
        {"field": "customer.balance", "before": 0, "after": 123456},
        {"field": "customer.currency", "before": None, "after": "usd"},
    ]
    assert world.ok("GET", f"/customers/{customer['id']}")["balance"] == 0


async def test_an_invoice_preview_says_when_it_is_due_and_its_period(mcp_env, fresh_sbx, truth):
    """The dates a new invoice is given are part of what would change (ISO 8601, as the
    invoice will show them), and the summary says when it is due."""
    customer = World(truth).customer()
    token = mcp_env.token("acme")
    args = {"site_id": SITE, "customer_id": customer["id"], "currency": "usd", "total": 2500, "status": "open",
            "period_start": "2027-01-01", "period_end": "2027-01-31", "due_date": 1801440000, "dry_run": True}  # fmt: skip
    async with mcp_session(mcp_env.url, token, "2026-07-28") as client:
        preview = (await client.call_tool("create_invoice", args)).structured_content
    assert preview["allowed"] is True, preview
    assert "create an open invoice of 25.00 USD" in preview["summary"]
    assert "owed at once, due 2027-02-01T00:00:00Z" in preview["summary"]
    assert {c["field"]: c["after"] for c in preview["changes"]}.items() >= {
        "invoice.period_start": "2027-01-01T00:00:00Z",
        "invoice.period_end": "2027-01-31T00:00:00Z",
        "invoice.due_date": "2027-02-01T00:00:00Z",
    }.items()


async def test_a_read_only_connection_cannot_dry_run_a_write_tool(mcp_env, fresh_sbx, truth):
    """Kept on purpose: the edge's write-scope gate refuses every write tool to a read-only
    token before any tool code runs (README), dry runs included; nothing is read upstream."""
    from mcp.shared.exceptions import MCPError

    token = mcp_env.token("acme", access="read")
    seq = truth.last_seq()
    async with mcp_session(mcp_env.url, token, "2026-07-28") as client:
        with pytest.raises(MCPError, match="read-only"):
            await client.call_tool("void_invoice", {"site_id": SITE, "invoice_id": 1, "dry_run": True})
    assert log_since(truth, seq) == []
    (row,) = await audit_rows_async(1, tool="void_invoice")
    assert row.outcome == "denied"
