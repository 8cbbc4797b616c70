"""The machine-checked rules (`make lint`) fail when broken: each check runs on a scratch
copy of the project with one forbidden import added, and must exit non-zero naming it."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.servers import ROOT

BIN = Path(sys.executable).parent
PACKAGES = ["pelcro_gateway", "ops", "mcp_bridge", "accounts", "sandbox", "bench", "devtools", "tests"]


@pytest.fixture
def project_copy(tmp_path):
    """The project's packages and lint configuration, copied to a scratch directory."""
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "static", "templates", "migrations")
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=skip)
    for name in (".importlinter", "ruff.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def add_import(module: Path, statement: str) -> None:
    module.write_text(module.read_text() + f"\n{statement}  # the forbidden import\n")


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120)


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    return run([str(BIN / "lint-imports"), "--no-cache"], cwd)


def test_the_project_as_it_is_keeps_every_contract(project_copy):
    result = lint_imports(project_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "statement", "contract"),
    [
        # A shared part of mcp_bridge reaching into a server's package.
        ("mcp_bridge/runtime/registry.py", "import mcp_bridge.core.client", "never import core, open or exports"),
        ("mcp_bridge/upstream/limiter.py", "import mcp_bridge.exports.jobs", "never import core, open or exports"),
        # The apps' one-way rule: accounts below mcp_bridge.
        ("accounts/tokens.py", "import mcp_bridge.audit", "pelcro_gateway -> ops -> mcp_bridge -> accounts"),
        # The benchmarks and the tests.
        ("bench/overhead.py", "import tests.support.mcp", "never import the tests"),
        # The sandbox is an upstream, both ways.
        ("sandbox/__main__.py", "import accounts.models", "imports nothing of the gateway"),
        ("mcp_bridge/core/client.py", "import sandbox", "imports the sandbox"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(project_copy, module, statement, contract):
    add_import(project_copy / module, statement)
    result = lint_imports(project_copy)
    assert result.returncode != 0, result.stdout
    broken = [line for line in result.stdout.splitlines() if line.endswith("BROKEN")]
    assert any(contract in line for line in broken) or contract in result.stdout.split("Broken contracts")[-1], (
        result.stdout
    )


def test_a_module_cycle_is_found(project_copy):
    # Two modules of one package importing each other: no contract between siblings sees it.
    add_import(project_copy / "mcp_bridge/upstream/errors.py", "import mcp_bridge.upstream.gate")
    add_import(project_copy / "mcp_bridge/upstream/gate.py", "import mcp_bridge.upstream.errors")
    result = run([sys.executable, "-m", "devtools.import_cycles"], project_copy)
    assert result.returncode == 1, result.stdout
    assert "mcp_bridge.upstream.errors, mcp_bridge.upstream.gate" in result.stdout


def test_ruff_finds_an_unused_import(project_copy):
    add_import(project_copy / "mcp_bridge/runtime/read_only.py", "import os")
    result = run([str(BIN / "ruff"), "check", "--no-cache", "mcp_bridge/runtime/read_only.py"], project_copy)
    assert result.returncode != 0 and "F401" in result.stdout, result.stdout
