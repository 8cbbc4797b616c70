"""The TypeScript MCP SDK v2 client (`devtools/ts_client_smoke.mjs`) in each negotiation
mode: it connects, reads every schema, validates a call's structuredContent, and sees the
protocol answers of `runtime.protocol` (the not-found code of its era, no prompts)."""

import json
import subprocess

import pytest

from devtools.servers import ROOT
from mcp_bridge.servers import TOOLS
from tests.support.node import ensure_node_tools, node

pytestmark = pytest.mark.sqlite


def test_the_typescript_v2_client_in_every_mode(mcp_env):
    ensure_node_tools()
    binary, env = node()
    result = subprocess.run(
        [binary, str(ROOT / "devtools" / "ts_client_smoke.mjs")],
        env={**env, "MCP_URL": mcp_env.url, "MCP_TOKEN": mcp_env.token()},
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = [
        json.loads(line.removeprefix("RESULT ")) for line in result.stdout.splitlines() if line.startswith("RESULT ")
    ]
    assert [run["mode"] for run in runs] == ["legacy", "auto", "pin 2026-07-28"]
    for run in runs:
        assert "fatal" not in run, run
        assert set(run["tools"]) == set(TOOLS)
        assert run["call"]["isError"] is False and len(run["call"]["structuredContent"]["items"]) == 2
        assert run["failure"]["isError"] is True
        assert run["failure"]["structuredContent"]["error"] == "unknown_site"
        assert "prompts" not in (run["capabilities"] or {})
        # Without the capability the client answers an empty list itself (or the server -32601).
        prompts = run["listPrompts"]
        assert prompts.get("ok") == {"prompts": []} or prompts["error"]["code"] == -32601, prompts
        # The client turns -32002 (2025) and -32602 with data.uri (2026) alike into its
        # ResourceNotFoundError; the wire codes themselves are in test_mcp_protocol.py.
        missing = run["missingResource"]["error"]
        assert missing["name"] == "ResourceNotFoundError" and "No finished export 424242" in missing["message"], run
