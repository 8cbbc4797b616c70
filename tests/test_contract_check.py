"""`make contract-check` against the sandbox, as `make test` runs it: the same code
(`mcp_bridge.core.contract_check`) that checks a real Core API (Pelcro staging), with the
writes on. Every row must pass, and the checker must catch answers outside the contract."""

import subprocess
import sys

import pytest

from devtools.servers import ROOT
from mcp_bridge.core.contract_check import CheckRow, Target, format_table, run_contract_check
from mcp_bridge.core.customers import Customer
from mcp_bridge.core.shapes import ListEnvelope, contract_validate
from tests.support.sandbox import ACME_SITE, KEYS

READS = {
    "get account",
    "list customers",
    "list customers, sorted",
    "list customers, filtered",
    "customer 360 (expand)",
    "list subscriptions",
    "get subscription (expand plan)",
    "list invoices, sorted",
    "list invoices, filtered",
    "get invoice",
    "list plans, sorted",
    "get plan",
    "list coupons",
    "get coupon",
    "list charges",
    "get charge",
    "list refunds (include charge)",
    "list addresses",
    "get address",
}


async def test_every_check_passes_against_the_sandbox_with_writes(sbx):
    since = sbx.last_seq()
    rows = await run_contract_check(Target(sbx.base, KEYS["acme"], ACME_SITE), writes=True)
    failed = [row for row in rows if not row.passed]
    assert failed == [], format_table(rows)
    assert {row.operation for row in rows} >= READS
    assert {
        "create subscription",
        "cancel subscription (now)",
        "apply balance",
        "pay offline",
        "void invoice",
        "mark invoice uncollectible",
        "create address",
        "delete customer",
    } <= {row.operation for row in rows}
    assert all(row.outcome == "ok" for row in rows), format_table(rows)  # nothing skipped on the sandbox
    # The table shows what was sent, never the key.
    table = format_table(rows)
    assert "GET /customers/" in table and "expand=subscriptions,addresses" in table and KEYS["acme"] not in table
    # Every request was one the contract allows: the strict sandbox refused none.
    assert {e["status"] for e in sbx.log(since, account="acme")} <= {200, 201, 202, 204}


async def test_read_only_by_default(sbx):
    since = sbx.last_seq()
    rows = await run_contract_check(Target(sbx.base, KEYS["acme"], ACME_SITE))
    assert {row.operation for row in rows} == READS and all(row.passed for row in rows)
    assert {e["method"] for e in sbx.log(since, account="acme")} == {"GET"}


async def test_a_key_that_is_refused_fails_the_check(sbx):
    rows = await run_contract_check(Target(sbx.base, "sbx_wrong_key_0000", ACME_SITE))
    assert rows[0].operation == "get account" and (rows[0].status, rows[0].outcome) == (401, "error")
    assert "failed" in format_table(rows).splitlines()[-1]


def test_answers_outside_the_contract_are_mismatches():
    customer = {"id": 1, "email": "a@example.com", "created_at": "2026-11-30T04:15:31Z"}
    with pytest.raises(ValueError, match="Unix seconds"):
        contract_validate(Customer, customer)  # the contract says Unix seconds
    assert Customer.model_validate(customer).created_at.year == 2026  # tools still read it
    with pytest.raises(ValueError):
        contract_validate(ListEnvelope, {"data": [], "links": {"first": "x"}, "meta": {}})
    row = CheckRow("list customers", "GET /customers?limit=2", 200, "mismatch", "data.0.created_at: ...")
    assert not row.passed and "mismatch: data.0.created_at" in format_table([row])


def test_the_command_needs_a_target():
    done = subprocess.run(
        [sys.executable, "manage.py", "contract_check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "pelcro_gateway.settings"},
    )
    assert done.returncode != 0
    assert "CONTRACT_CHECK_BASE_URL" in done.stderr and "CONTRACT_CHECK_API_KEY" in done.stderr


def test_the_command_prints_the_table_against_the_sandbox(sbx):
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "pelcro_gateway.settings",
        "CONTRACT_CHECK_BASE_URL": sbx.base,
        "CONTRACT_CHECK_API_KEY": KEYS["acme"],
        "CONTRACT_CHECK_SITE_ID": str(ACME_SITE),
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "contract_check"], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert "read-only" in lines[0]
    assert lines[2].split() == ["operation", "request", "sent", "status", "contract"]
    assert any(line.startswith("customer 360 (expand)") and " 200 " in line and line.endswith("ok") for line in lines)
    assert lines[-1] == f"{len(READS)} checks: {len(READS)} passed (0 skipped), 0 failed."
