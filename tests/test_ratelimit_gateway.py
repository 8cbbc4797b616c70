"""Contention through the real gateway: MCP tool calls from several processes, through two
gateway processes sharing Redis, against a sandbox with the same (compressed) limit.

The sandbox's own request log is the judge: zero 429s, never more than its limit in any
rolling window, and at least 95% of what it would have accepted, over 4 windows.
"""

import pytest

from devtools.oauth_client import mcp_url, obtain_tokens
from tests.support.mcp import PASSWORDS
from tests.support.ratelimit import TIGHT_LIMIT, TIGHT_WINDOW, log_times, max_in_window, run_tool_callers
from tests.support.sandbox import SandboxClient

pytestmark = pytest.mark.sqlite
WINDOWS = 4


def test_many_processes_use_the_budget_without_a_single_upstream_429(acme, tight_sandbox, tight_gateways):
    targets = [
        (mcp_url(gateway.url), obtain_tokens(gateway.url, "demo", PASSWORDS["demo"], "acme")["access_token"])
        for gateway in tight_gateways
    ]
    sandbox = SandboxClient(tight_sandbox)
    since = sandbox.last_seq()
    # More callers than slots, so every slot that frees has a caller waiting for it. The
    # window opens once every process has its sessions open.
    results = run_tool_callers(
        targets, "list_plans", {"site_id": 14, "per_page": 1}, processes=4, sessions=6,
        seconds=WINDOWS * TIGHT_WINDOW + 1.0,
    )

    entries = sandbox.log(since, account="acme")
    statuses = {e["status"] for e in entries}
    assert statuses == {200}, f"the upstream answered {statuses}"
    times = log_times(entries)
    assert max_in_window(times, TIGHT_WINDOW) <= TIGHT_LIMIT

    # Budget use: requests the sandbox served in WINDOWS consecutive windows from the
    # first one, against the most it would ever accept in that time.
    first = min(times)
    served = sum(1 for t in times if t < first + WINDOWS * TIGHT_WINDOW)
    theoretical = WINDOWS * TIGHT_LIMIT
    assert served >= 0.95 * theoretical, f"{served} of {theoretical}"

    # Every process got its share. Callers waited for slots; the only failures allowed
    # are "retry in N s" for a caller that lost the race past its wait budget, and those
    # never reached the upstream.
    assert all(r["ok"] > 0 for r in results), results
    assert sum(r["ok"] for r in results) == len(entries)
    assert all(set(r["errors"]) <= {"rate_limited"} for r in results), results
