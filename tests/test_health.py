"""/health (liveness, Pelcro's exact shape) and /health/ready (DB + Redis)."""

import subprocess
import sys

import httpx
import pytest

from devtools.servers import ROOT, free_port
from tests.support.servers import start_gateway

pytestmark = pytest.mark.sqlite


@pytest.fixture(scope="module")
def bare_gateway(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        server = start_gateway(None)
    yield server
    server.stop()


def test_health_answers_exactly_pelcros_shape(bare_gateway):
    response = httpx.get(bare_gateway.url + "/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": "1.0.0", "environment": "dev"}
    assert response.headers["cache-control"].startswith("max-age=0")


def test_health_reports_the_configured_environment(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        server = start_gateway(
            None,
            GATEWAY_ENV="stg",
            SECRET_KEY="s" * 50,
            API_KEY_ENCRYPTION_KEYS="q3k2Zr3mJx4B1mS0v8oJbq0q2M0pZ8W3l9mZ3Yc2qkQ=",
            PUBLIC_URL="https://mcp-staging.example.test",
            METRICS_TOKEN="m" * 43,
        )
    try:
        assert httpx.get(server.url + "/health").json()["environment"] == "stg"
    finally:
        server.stop()


def test_readiness_ok_when_database_and_redis_answer(bare_gateway):
    response = httpx.get(bare_gateway.url + "/health/ready")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok"}


def test_readiness_names_redis_when_it_is_down(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        server = start_gateway(None, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    try:
        response = httpx.get(server.url + "/health/ready")
        assert response.status_code == 503
        body = response.json()
        assert body["failed"] == ["redis"]
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["redis"].startswith("fail")
        # Liveness stays green: a dependency outage must not get the process killed.
        assert httpx.get(server.url + "/health").status_code == 200
    finally:
        server.stop()


def test_readiness_names_the_database_when_it_is_down(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        server = start_gateway(None, DATABASE_URL=f"postgres://postgres@127.0.0.1:{free_port()}/nope")
    try:
        response = httpx.get(server.url + "/health/ready")
        assert response.status_code == 503
        assert response.json()["failed"] == ["database"]
    finally:
        server.stop()


def _check(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**__import__("os").environ, **env},
        capture_output=True,
        text=True,
    )


SAFE_PRD = {
    "GATEWAY_ENV": "prd",
    "DEBUG": "0",
    "SECRET_KEY": "x" * 50,
    "API_KEY_ENCRYPTION_KEYS": "q3k2Zr3mJx4B1mS0v8oJbq0q2M0pZ8W3l9mZ3Yc2qkQ=",
    "PUBLIC_URL": "https://mcp.example.test",
    "FORWARDED_ALLOW_IPS": "",
    "METRICS_TOKEN": "y" * 43,
}


def test_production_settings_pass_the_checks_when_safe():
    result = _check(SAFE_PRD)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "override, error_id",
    [
        ({"DEBUG": "1"}, "pelcro_gateway.E010"),
        ({"SECRET_KEY": "dev-insecure-secret-key-change-me"}, "pelcro_gateway.E011"),
        ({"API_KEY_ENCRYPTION_KEYS": "ZGV2LWluc2VjdXJlLWVuY3J5cHRpb24ta2V5LTMyYic="}, "pelcro_gateway.E012"),
        ({"PUBLIC_URL": "http://mcp.example.test"}, "pelcro_gateway.E013"),
        ({"API_KEY_ENCRYPTION_KEYS": "not-a-key"}, "pelcro_gateway.E002"),
    ],
)
def test_production_refuses_unsafe_settings(override, error_id):
    result = _check({**SAFE_PRD, **override})
    assert result.returncode != 0
    assert error_id in result.stderr


def test_unsafe_production_server_refuses_to_start(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), pytest.raises(RuntimeError, match="pelcro_gateway.E010"):
        start_gateway(None, **{**SAFE_PRD, "DEBUG": "1", "PUBLIC_URL": "https://127.0.0.1"}).stop()
