"""Deployment safety: demo users (published passwords) never appear outside dev unless
asked for explicitly, in compose and in `manage.py seed_demo` itself."""

import io
import stat
import subprocess

import pytest
import yaml
from django.core.management import CommandError, call_command

from devtools.servers import ROOT


def compose_web_command() -> str:
    """The web service's shell command as the container runs it (compose's `$$` → `$`)."""
    spec = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return spec["services"]["web"]["command"].replace("$$", "$")


@pytest.mark.parametrize(
    ("env", "seeds"),
    [
        ({"GATEWAY_ENV": "prd"}, False),
        ({"GATEWAY_ENV": "stg", "SEED_DEMO": "0"}, False),
        ({"GATEWAY_ENV": "dev"}, True),
        ({"GATEWAY_ENV": "stg", "SEED_DEMO": "1"}, True),
    ],
)
def test_compose_seeds_demo_users_only_in_dev_or_when_asked(tmp_path, env, seeds):
    # Stand-ins for python and uvicorn record what the web container would run.
    log = tmp_path / "ran.log"
    for name in ("python", "uvicorn"):
        stub = tmp_path / name
        stub.write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\n')
        stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    argv = ["sh", "-c", compose_web_command().removeprefix("sh -c ").strip('"').replace('\\"', '"')]
    result = subprocess.run(argv, env={"PATH": f"{tmp_path}:/usr/bin:/bin", **env}, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    ran = log.read_text()
    assert "python manage.py migrate --no-input" in ran and "uvicorn pelcro_gateway.asgi:application" in ran
    assert ("seed_demo" in ran) is seeds


def test_seed_demo_refuses_outside_dev(db, settings):
    settings.GATEWAY_ENV = "prd"
    with pytest.raises(CommandError, match="runs only in dev"):
        call_command("seed_demo")
    from django.contrib.auth import get_user_model

    assert not get_user_model().objects.filter(username="demo").exists()
    settings.PASSWORD_HASHERS = ["tests.support.oauth.QuickScryptHasher"]
    call_command("seed_demo", "--allow-outside-dev", stdout=io.StringIO())
    assert get_user_model().objects.filter(username="demo").exists()


def test_make_run_points_both_upstreams_at_its_own_sandbox():
    """`make run` with another sandbox port: the Core AND the Open API (the /open server's
    upstream) follow it. (The Open API once stayed on 8100: subscriber sign-in then answered
    "could not be reached" whenever SANDBOX_PORT was set.)"""
    result = subprocess.run(
        ["bash", "-c", 'source scripts/dev_env.sh && echo "$CORE_API_BASE_URL $OPEN_API_BASE_URL $PUBLIC_URL"'],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PORT": "8310", "SANDBOX_PORT": "8410"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "http://127.0.0.1:8410/api/v1/core",
        "http://127.0.0.1:8410/api/v1/sdk",
        "http://127.0.0.1:8310",
    ]
