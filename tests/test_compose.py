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
