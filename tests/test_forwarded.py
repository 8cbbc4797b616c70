"""Per-IP limits count the real peer: uvicorn trusts X-Forwarded-For only from the proxies
in FORWARDED_ALLOW_IPS, and every launcher (Procfile, Dockerfile, docker-compose.yml) runs
it trusting none unless told. Each case starts a real uvicorn the way the launcher does.
"""

from __future__ import annotations

import os
import shlex
import sys
import uuid
from pathlib import Path

import httpx
import pytest
import yaml

from devtools.oauth_client import DEFAULT_REDIRECT_URI
from devtools.servers import ROOT, ServerProcess, free_port
from tests.support.servers import gateway_env

VENV_BIN = str(Path(sys.executable).parent)


def register(url: str, forwarded_for: str) -> int:
    """Register a new public client (a name of its own: an identical registration would be
    shared back without using up the per-IP cap, accounts.registrations)."""
    response = httpx.post(
        url + "/oauth/register",
        headers={"X-Forwarded-For": forwarded_for},
        json={
            "client_name": f"xff-{uuid.uuid4().hex[:8]}",
            "redirect_uris": [DEFAULT_REDIRECT_URI],
            "token_endpoint_auth_method": "none",
        },
    )
    return response.status_code


def launcher_command(launcher: str, port: int) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) of the web process as `launcher` starts it, bound to 127.0.0.1:port."""
    if launcher == "Procfile":
        line = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
        return ["sh", "-c", line.split(":", 1)[1].strip()], {}
    if launcher == "Dockerfile":
        env, argv = {}, []
        for line in (ROOT / "Dockerfile").read_text().splitlines():
            if line.startswith("ENV "):
                env.update(item.split("=", 1) for item in shlex.split(line[4:]) if "=" in item)
            elif line.startswith("CMD "):
                argv = yaml.safe_load(line[4:])  # the exec form is a JSON array
        return argv, env
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    service = compose["services"]["web"]
    inner = shlex.split(service["command"])[-1]  # sh -c "migrate && seed && exec uvicorn …"
    env = {}
    for name, value in service["environment"].items():
        value = str(value)
        if value.startswith("${") and ":-" in value:  # ${NAME:-default}, with NAME unset
            value = value[value.index(":-") + 2 : -1]
        env[name] = value
    # The uvicorn step, as the container's shell runs it ($$ is compose's escaped $).
    return ["sh", "-c", inner.split("&&")[-1].strip().replace("$$", "$")], env


def start_as(launcher: str, **extra: str) -> ServerProcess:
    port = free_port()
    argv, launcher_env = launcher_command(launcher, port)
    argv = [arg.replace("0.0.0.0", "127.0.0.1").replace("--port 8000", f"--port {port}") for arg in argv]
    argv = [str(port) if arg == "8000" else arg for arg in argv]
    base = gateway_env(
        None,
        port,
        REDIS_KEY_PREFIX=os.environ["REDIS_KEY_PREFIX"] + f"xff{port}:",
        DCR_PER_IP_PER_HOUR="1",
        PATH=VENV_BIN + os.pathsep + os.environ["PATH"],
    )
    base.pop("FORWARDED_ALLOW_IPS", None)  # what the launcher itself says (or not) is under test
    # The launcher's own variables, except the deployment's addresses and secrets.
    keep = {name: value for name, value in launcher_env.items() if name in {"FORWARDED_ALLOW_IPS", "PYTHONUNBUFFERED"}}
    server = ServerProcess(f"gateway-{launcher.lower()}", argv, port, {**base, **keep, **extra}, "/health")
    if "FORWARDED_ALLOW_IPS" not in {**keep, **extra}:
        server.env.pop("FORWARDED_ALLOW_IPS", None)  # nor whatever the test runner's shell has
    return server.start()


@pytest.fixture
def launched(transactional_db, django_db_blocker):
    servers = []

    def launch(launcher: str, **extra: str) -> ServerProcess:
        with django_db_blocker.unblock():
            servers.append(start_as(launcher, **extra))
        return servers[-1]

    yield launch
    for server in servers:
        server.stop()


@pytest.mark.parametrize("launcher", ["Procfile", "Dockerfile", "docker-compose.yml"])
def test_launchers_trust_no_forwarded_for_by_default(launched, launcher):
    url = launched(launcher).url
    assert register(url, "203.0.113.1") == 201
    # A made-up X-Forwarded-For does not make a new client: the per-IP cap (1) holds.
    assert register(url, "203.0.113.2") == 429


def test_a_configured_proxy_is_trusted(launched):
    url = launched("Procfile", FORWARDED_ALLOW_IPS="127.0.0.1").url
    assert register(url, "203.0.113.1") == 201
    assert register(url, "203.0.113.2") == 201  # two clients behind the proxy
    assert register(url, "203.0.113.1") == 429  # each with its own count


def test_login_ip_limit_ignores_forwarded_for(strict_gateway, demo_users):
    """Five failures (the strict gateway's per-IP cap) under five made-up addresses still
    lock the one real address out."""
    from tests.test_login import LOCKED, login

    url = strict_gateway.url
    for index in range(5):
        client = httpx.Client(base_url=url, timeout=10, headers={"X-Forwarded-For": f"198.51.100.{index + 1}"})
        assert login(url, f"nobody-{index}", "guess", client=client)[0].status_code == 200
    client = httpx.Client(base_url=url, timeout=10, headers={"X-Forwarded-For": "198.51.100.77"})
    response, _ = login(url, "alice", "pelcro-alice-2026", client=client)
    assert response.status_code == 429 and LOCKED in response.text


def test_production_refuses_to_start_without_a_proxy_decision():
    import subprocess

    from tests.test_health import SAFE_PRD

    env = {**os.environ, **SAFE_PRD}
    env.pop("FORWARDED_ALLOW_IPS")
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0 and "pelcro_gateway.E015" in result.stderr
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**env, "BEHIND_PROXY": "1", "FORWARDED_ALLOW_IPS": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "pelcro_gateway.E005" in result.stderr
