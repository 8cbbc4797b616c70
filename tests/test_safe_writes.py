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
