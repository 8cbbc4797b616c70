"""The MCP Inspector CLI (the reference TypeScript client) lists and calls tools."""

import json
import os
import subprocess
import sys

import pytest

from devtools.servers import ROOT
from mcp_bridge.servers import TOOLS
from tests.support.mcp import audit_rows


@pytest.mark.sqlite
def test_the_inspector_cli_lists_the_tools_and_calls_one(mcp_env):
    token = mcp_env.token()
    result = subprocess.run(
        [str(ROOT / "scripts" / "inspector_smoke.sh"), mcp_env.url, "14"],
        env={**os.environ, "MCP_TOKEN": token, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(summary["tools"]) == set(TOOLS)  # --strict found no schema portability errors either
    assert summary["call"]["per_page"] == 2 and summary["call"]["has_more"] is True
    # The Inspector's call is audited like any client's.
    [row] = audit_rows(1)
    assert (row.tool, row.outcome, row.site_id) == ("list_plans", "ok", 14)
