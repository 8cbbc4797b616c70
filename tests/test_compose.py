"""docker-compose.yml parses and declares every process of the design with a healthcheck."""

import shutil
import subprocess

import pytest
import yaml

from devtools.servers import ROOT

SERVICES = {"web", "worker", "beat", "sandbox", "redis", "db"}


def test_compose_file_declares_every_process():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert set(compose["services"]) == SERVICES
    for name in SERVICES - {"beat"}:
        assert "healthcheck" in compose["services"][name], name


def test_every_gateway_process_reaches_both_sandbox_apis():
    """The web, worker and beat containers call the Core API and the Open API (the /open
    server's upstream) on the sandbox service, not on their own 127.0.0.1."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name in ("web", "worker", "beat"):
        environment = compose["services"][name]["environment"]
        assert environment["CORE_API_BASE_URL"] == "${CORE_API_BASE_URL:-http://sandbox:8100/api/v1/core}", name
        assert environment["OPEN_API_BASE_URL"] == "${OPEN_API_BASE_URL:-http://sandbox:8100/api/v1/sdk}", name


def _compose_command() -> list[str] | None:
    """`docker compose` (plugin) or the standalone `docker-compose`, whichever exists."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    return [standalone] if standalone else None


def test_docker_compose_config_parses():
    command = _compose_command()
    if command is None:
        pytest.fail("no docker compose client: `make test` installs Debian's docker-compose where it can")
    result = subprocess.run([*command, "config", "--quiet"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
