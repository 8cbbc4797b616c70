"""Safe writes are declared with every write tool (issue 15, `runtime.writes`): a tool that
is not read-only publishes `dry_run`, and answering it needs the tool's own `preview=`
(without one, a dry run only says the tool "cannot preview (dry_run) yet"). This checks
the declarations of both servers, so a write tool added later cannot skip its preview.
What each preview answers is checked per tool against the real calls:
tests/test_previews_core_customers.py, tests/test_previews_core_billing.py and the Open
tools' tests.
"""

import inspect

from mcp_bridge.runtime.registry import REGISTRY
from mcp_bridge.servers import OPEN_TOOLS, TOOLS


def test_every_write_tool_of_both_servers_declares_a_preview():
    served = {"core": TOOLS, "open": OPEN_TOOLS}
    for server, tools in served.items():
        assert set(tools) <= set(REGISTRY[server]), server
    writes = {
        (server, name): spec for server, tools in REGISTRY.items() for name, spec in tools.items() if not spec.read_only
    }
    # Both servers have write tools (the Core customer, invoice, … tools; the Open
    # subscriber's addresses, payment methods, invoices, …).
    assert {server for server, _ in writes} == {"core", "open"}
    assert {name for server, name in writes if server == "core"} >= {"create_customer", "void_invoice"}
    missing = sorted(f"{server}:{name}" for (server, name), spec in writes.items() if spec.preview is None)
    assert missing == [], f"write tools without preview=: {missing}"
    for (server, name), spec in writes.items():
        assert inspect.iscoroutinefunction(spec.preview), f"{server}:{name}: preview(call, args) must be async"
        assert spec.input_model.model_fields["dry_run"].default is False, f"{server}:{name}"


# Write tools whose dry run is checked against the real call outside the three preview tables
# (tests/test_previews_core_customers.py, test_previews_core_billing.py and
# test_open_subscriptions.py, whose ROWS name their tools): the test that does it.
PREVIEW_CHECKED_ELSEWHERE = {
    ("open", "pay_invoice"): "tests.test_open_payments:test_pay_invoice_preview_matches_the_real_call",
    (
        "open",
        "delete_payment_method",
    ): "tests.test_open_payments:test_delete_payment_method_preview_matches_the_real_call",
    (
        "open",
        "set_default_payment_method",
    ): "tests.test_open_payments:test_set_default_preview_matches_the_real_call_for_foreign_ids",
    ("open", "add_address"): "tests.test_open_addresses:test_add_address_preview_matches_the_real_call",
    ("open", "update_address"): "tests.test_open_addresses:test_update_address_preview_matches_the_real_call",
    ("open", "update_my_newsletters"): "tests.test_open_addresses:test_newsletters_sign_up_change_and_leave",
}


def test_every_write_tool_has_its_dry_run_checked_against_the_real_call():
    """Issue 15's done-when: every write tool's `dry_run` is checked against what the real
    call then does. A write tool added later fails here until a table row (or a test listed
    above) covers it."""
    import importlib

    from tests import test_open_subscriptions, test_previews_core_billing, test_previews_core_customers

    tabled = {
        ("core", row.tool)
        for module in (test_previews_core_customers, test_previews_core_billing)
        for row in module.ROWS
    }
    tabled |= {("open", row.tool) for row in test_open_subscriptions.ROWS}
    writes = {
        (server, name)
        for server, tools in {"core": TOOLS, "open": OPEN_TOOLS}.items()
        for name, spec in tools.items()
        if not spec.read_only
    }
    assert sorted(writes - tabled - set(PREVIEW_CHECKED_ELSEWHERE)) == []
    for (_server, name), target in PREVIEW_CHECKED_ELSEWHERE.items():
        module, function = target.split(":")
        source = inspect.getsource(getattr(importlib.import_module(module), function))
        assert f'"{name}"' in source and '"dry_run": True' in source, target
