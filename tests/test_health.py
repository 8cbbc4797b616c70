"""/health (liveness, Pelcro's exact shape) and /health/ready (DB + Redis)."""

import httpx
import pytest

from devtools.servers import free_port
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
            SECRET_KEY="Sg4kP9wX2rN7vB1mQ6tZ3yL8cH5jD0fA2eU7iO4lK9nM",
            API_KEY_ENCRYPTION_KEYS="q3k2Zr3mJx4B1mS0v8oJbq0q2M0pZ8W3l9mZ3Yc2qkQ=",
            PUBLIC_URL="https://mcp-staging.example.test",
            METRICS_TOKEN="Mt7xR2mLq5Kc9Hd1Wp4Yn7Bf3Js6Ga0Ze2Ru8Ok5Ni",
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


# Safe production settings (each unsafe one is refused with its message in
# tests/test_production_settings.py; tests/test_security.py runs `manage.py check`).
SAFE_PRD = {
    "GATEWAY_ENV": "prd",
    "DEBUG": "0",
    "SECRET_KEY": "Xk4pP9wX2rN7vB1mQ6tZ3yL8cH5jD0fA2eU7iO4lK9nMxR3",
    "API_KEY_ENCRYPTION_KEYS": "q3k2Zr3mJx4B1mS0v8oJbq0q2M0pZ8W3l9mZ3Yc2qkQ=",
    "PUBLIC_URL": "https://mcp.example.test",
    "FORWARDED_ALLOW_IPS": "",
    "METRICS_TOKEN": "Yt7xR2mLq5Kc9Hd1Wp4Yn7Bf3Js6Ga0Ze2Ru8Ok5Ni",
}


def test_unsafe_production_server_refuses_to_start(django_db_setup, django_db_blocker):
    """The ASGI start-up runs the checks: an unsafe setting and the server never serves;
    its log says what is wrong and what to set instead."""
    unsafe = {"DEBUG": "1", "PUBLIC_URL": "https://127.0.0.1", "ALLOWED_HOSTS": "*"}
    with django_db_blocker.unblock(), pytest.raises(RuntimeError) as refused:
        start_gateway(None, **{**SAFE_PRD, **unsafe}).stop()
    log = str(refused.value)
    assert "pelcro_gateway.E010: DEBUG must be off when GATEWAY_ENV=prd" in log, log
    assert "pelcro_gateway.E018: ALLOWED_HOSTS holds '*'" in log, log
    assert "HINT: Set ALLOWED_HOSTS to the public host of PUBLIC_URL (127.0.0.1)" in log, log
