"""Unsafe production settings are refused, each with its own message: the system checks
(`pelcro_gateway/checks.py`, `accounts/checks.py`) called in this process on settings
overridden from a safe production baseline. That they run at `manage.py check` and stop
the server's start is proven once each, by subprocess: tests/test_security.py
(`manage.py check`) and tests/test_health.py (the ASGI start-up).
"""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings

from accounts.checks import check_oauth_safety
from pelcro_gateway.checks import check_production_safety

SAFE_KEY = "q3k2Zr3mJx4B1mS0v8oJbq0q2M0pZ8W3l9mZ3Yc2qkQ="
METRICS_TOKEN = "Vq8xT2mLr5Kc9Hd1Wp4Yn7Bf3Js6Ga0Ze2Ru8Ok5Ni"
# The settings a safe `prd` start ends with (what settings.py derives from SAFE_PRD's
# environment in tests/test_security.py), so each case below changes one thing.
SAFE_PRD_SETTINGS = {
    "GATEWAY_ENV": "prd",
    "IS_DEV": False,
    "DEBUG": False,
    "SECRET_KEY": "k3Jv9-pQ2x_Lm8sT4wZ1yB6nR0cF5hD7gA2eU9iO3lK8jH4mN6bV1cX5zS0qW7rE",
    "API_KEY_ENCRYPTION_KEYS": [SAFE_KEY],
    "PUBLIC_URL": "https://mcp.example.test",
    "ALLOWED_HOSTS": ["mcp.example.test", "127.0.0.1", "localhost"],
    "SESSION_COOKIE_SECURE": True,
    "CSRF_COOKIE_SECURE": True,
    "SECURE_HSTS_SECONDS": 31536000,
    "CIMD_DEV_LOOPBACK_CA_FILE": "",
}


@pytest.fixture
def prd(settings, monkeypatch):
    """Safe production settings; returns a function giving the errors of the checks after
    `overrides` (settings; PELCRO_GATEWAY keys by name) and `environ` (None unsets) apply."""
    for name, value in SAFE_PRD_SETTINGS.items():
        setattr(settings, name, value)
    settings.PELCRO_GATEWAY = {**django_settings.PELCRO_GATEWAY, "METRICS_TOKEN": METRICS_TOKEN}
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "")
    monkeypatch.delenv("BEHIND_PROXY", raising=False)

    def errors(environ: dict | None = None, **overrides) -> list:
        for name, value in overrides.items():
            if name in settings.PELCRO_GATEWAY:
                settings.PELCRO_GATEWAY = {**settings.PELCRO_GATEWAY, name: value}
            else:
                setattr(settings, name, value)
        for name, value in (environ or {}).items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        return [*check_production_safety(), *check_oauth_safety()]

    return errors


def test_the_safe_production_baseline_passes(prd):
    assert prd() == []
    # Staging has the same rules.
    assert prd(GATEWAY_ENV="stg") == []


def only(errors: list, error_id: str) -> str:
    """The one error's message and hint, asserting it is the only error and has `error_id`."""
    assert [e.id for e in errors] == [error_id], [(e.id, e.msg) for e in errors]
    return f"{errors[0].msg} {errors[0].hint or ''}"


# --- ALLOWED_HOSTS (E018) --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hosts", "named"),
    [
        (["*"], "'*'"),
        (["mcp.example.test", "*"], "'*'"),  # one wildcard among real names is as open
        (["mcp.example.test", ""], "''"),
        (["mcp.example.test", "  "], "'  '"),
        (["."], "'.'"),
        ([".test"], "'.test'"),  # a leading dot over a whole top-level domain
    ],
)
def test_a_wildcard_allowed_host_is_refused_saying_what_to_set(prd, hosts, named):
    text = only(prd(ALLOWED_HOSTS=hosts), "pelcro_gateway.E018")
    assert f"ALLOWED_HOSTS holds {named} when GATEWAY_ENV=prd" in text
    assert "lets any Host header through" in text
    assert "Set ALLOWED_HOSTS to the public host of PUBLIC_URL (mcp.example.test)" in text
    assert "ALLOWED_HOSTS=mcp.example.test,127.0.0.1" in text


def test_allowed_hosts_must_not_be_empty_and_must_cover_the_public_host(prd):
    text = only(prd(ALLOWED_HOSTS=[]), "pelcro_gateway.E018")
    assert "ALLOWED_HOSTS is empty when GATEWAY_ENV=prd: every request would be refused (400)" in text
    text = only(prd(ALLOWED_HOSTS=["127.0.0.1", "web"]), "pelcro_gateway.E018")
    assert "ALLOWED_HOSTS (127.0.0.1,web) does not cover PUBLIC_URL's host 'mcp.example.test'" in text
    assert "public host of PUBLIC_URL (mcp.example.test)" in text


def test_a_parent_domain_pattern_covering_the_public_host_is_accepted(prd):
    assert prd(ALLOWED_HOSTS=[".example.test"]) == []
    assert prd(ALLOWED_HOSTS=["MCP.Example.Test"]) == []  # host names are case-insensitive


# --- HSTS (E019) -----------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [0, -1, 3600, 86399])
def test_hsts_below_a_day_is_refused(prd, seconds):
    text = only(prd(SECURE_HSTS_SECONDS=seconds), "pelcro_gateway.E019")
    assert f"SECURE_HSTS_SECONDS={seconds} is below a day (86400) when GATEWAY_ENV=prd" in text
    assert "set 86400 or more" in text


def test_hsts_of_a_day_or_more_is_accepted(prd):
    assert prd(SECURE_HSTS_SECONDS=86400) == []
    assert prd(SECURE_HSTS_SECONDS=63072000) == []


# --- Secrets: SECRET_KEY (E011), METRICS_TOKEN (E016), encryption keys (E002, E012) ------------


@pytest.mark.parametrize(
    ("secret", "said"),
    [
        ("dev-insecure-secret-key-change-me", "SECRET_KEY is the dev default"),
        ("s" * 31, "SECRET_KEY is shorter than 32 characters (31)"),
        ("x" * 50, "SECRET_KEY has fewer than 5 distinct characters"),
        ("abab" * 16, "SECRET_KEY has fewer than 5 distinct characters"),
        ("django-insecure-" + "k3Jv9pQ2xLm8sT4wZ1yB6nR0cF5hD7gA", "a key Django generated as insecure"),
    ],
)
def test_a_guessable_secret_key_is_refused(prd, secret, said):
    text = only(prd(SECRET_KEY=secret), "pelcro_gateway.E011")
    assert said in text and "secrets.token_urlsafe" in text
    # An empty SECRET_KEY never gets this far: Django refuses it on first use.


@pytest.mark.parametrize(
    ("token", "said"),
    [
        ("", "METRICS_TOKEN is empty"),
        ("   ", "METRICS_TOKEN is empty"),
        ("changeme", "METRICS_TOKEN is shorter than 32 characters (8)"),
        ("y" * 43, "METRICS_TOKEN has fewer than 5 distinct characters"),
    ],
)
def test_a_missing_or_guessable_metrics_token_is_refused(prd, token, said):
    text = only(prd(METRICS_TOKEN=token), "pelcro_gateway.E016")
    assert said in text and "/metrics lists every account's live usage" in text


def test_encryption_keys_must_be_real_keys_and_not_the_dev_one(prd):
    text = only(prd(API_KEY_ENCRYPTION_KEYS=[]), "pelcro_gateway.E002")
    assert "API_KEY_ENCRYPTION_KEYS holds no key" in text and "Fernet.generate_key()" in text
    text = only(prd(API_KEY_ENCRYPTION_KEYS=[SAFE_KEY, "not-a-key"]), "pelcro_gateway.E002")
    assert "not a Fernet key" in text
    text = only(prd(API_KEY_ENCRYPTION_KEYS=[SAFE_KEY, django_settings.DEV_ENCRYPTION_KEY]), "pelcro_gateway.E012")
    assert "dev default key" in text


def test_no_encryption_key_is_refused_in_dev_too(prd):
    errors = prd(GATEWAY_ENV="dev", API_KEY_ENCRYPTION_KEYS=[])
    assert [e.id for e in errors] == ["pelcro_gateway.E002"]


# --- The rest: environment, DEBUG, PUBLIC_URL, cookies, proxies, OAuth ------------------------


@pytest.mark.parametrize(
    ("overrides", "environ", "error_id", "said"),
    [
        ({"GATEWAY_ENV": "production"}, {}, "pelcro_gateway.E001", "GATEWAY_ENV must be prd, stg or dev"),
        ({"DEBUG": True}, {}, "pelcro_gateway.E010", "DEBUG must be off when GATEWAY_ENV=prd"),
        ({"GATEWAY_ENV": "stg", "DEBUG": True}, {}, "pelcro_gateway.E010", "DEBUG must be off when GATEWAY_ENV=stg"),
        (
            {"PUBLIC_URL": "http://mcp.example.test", "SESSION_COOKIE_SECURE": True},
            {},
            "pelcro_gateway.E013",
            "PUBLIC_URL must be an https URL with a host name when GATEWAY_ENV=prd, not 'http://mcp.example.test'",
        ),
        ({"PUBLIC_URL": "https://"}, {}, "pelcro_gateway.E013", "not 'https://'"),
        ({"SESSION_COOKIE_SECURE": False}, {}, "pelcro_gateway.E014", "cookies must be Secure"),
        ({"CSRF_COOKIE_SECURE": False}, {}, "pelcro_gateway.E014", "cookies must be Secure"),
        ({}, {"FORWARDED_ALLOW_IPS": None}, "pelcro_gateway.E015", "FORWARDED_ALLOW_IPS is not set"),
        ({}, {"FORWARDED_ALLOW_IPS": "10.0.0.1, *"}, "pelcro_gateway.E015", "FORWARDED_ALLOW_IPS is '*'"),
        ({}, {"BEHIND_PROXY": "1"}, "pelcro_gateway.E005", "BEHIND_PROXY is no longer read"),
        ({"CIMD_DEV_LOOPBACK_CA_FILE": "/tmp/ca.pem"}, {}, "accounts.E001", "dev and tests only"),
        (
            {"OAUTH_NATIVE_REDIRECT_SCHEMES": ["cursor", "javascript"]},
            {},
            "accounts.E002",
            "may not contain javascript",
        ),
    ],
)
def test_each_other_unsafe_setting_is_refused_with_its_message(prd, overrides, environ, error_id, said):
    assert said in only(prd(environ, **overrides), error_id)


@pytest.mark.parametrize("name", ["CORE_API_BASE_URL", "OPEN_API_BASE_URL"])
def test_a_plain_http_upstream_off_this_machine_is_warned_about(prd, name):
    """A warning (the start goes on): a staging instance may use the compose sandbox."""
    errors = prd(**{name: "http://sandbox:8100/api/v1/x"})
    assert [(e.id, e.is_serious()) for e in errors] == [("pelcro_gateway.W001", False)]
    assert f"{name}=http://sandbox:8100/api/v1/x is plain http when GATEWAY_ENV=prd" in errors[0].msg
    assert "in clear text" in errors[0].msg and "https" in errors[0].hint
    for url in ("http://127.0.0.1:8100/api/v1/x", "http://localhost:8100/x", "http://[::1]:8100/x", "https://h/x"):
        assert prd(**{name: url}) == [], url


def test_dev_keeps_its_conveniences(prd):
    """Dev (the default for `make run` and tests) takes a wildcard host, no HSTS, http and
    the dev secrets: these rules are for prd and stg only."""
    errors = prd(
        {"FORWARDED_ALLOW_IPS": None},
        GATEWAY_ENV="dev",
        DEBUG=True,
        ALLOWED_HOSTS=["*"],
        SECURE_HSTS_SECONDS=0,
        PUBLIC_URL="http://127.0.0.1:8000",
        SESSION_COOKIE_SECURE=False,
        CSRF_COOKIE_SECURE=False,
        SECRET_KEY=django_settings.DEV_SECRET_KEY,
        API_KEY_ENCRYPTION_KEYS=[django_settings.DEV_ENCRYPTION_KEY],
        METRICS_TOKEN="",
        CORE_API_BASE_URL="http://sandbox:8100/api/v1/core",
    )
    assert errors == []


def test_the_start_up_stops_on_errors_with_their_hints_and_logs_warnings(prd, caplog):
    """What the ASGI lifespan runs (pelcro_gateway.asgi): errors stop it, one line each with
    what to set instead; warnings are logged and the start goes on."""
    from django.core.management.base import SystemCheckError

    from pelcro_gateway.checks import run_startup_checks

    prd(CORE_API_BASE_URL="http://sandbox:8100/api/v1/core")
    with caplog.at_level("WARNING", logger="pelcro_gateway.checks"):
        run_startup_checks()
    assert "pelcro_gateway.W001: CORE_API_BASE_URL=http://sandbox:8100/api/v1/core is plain http" in caplog.text
    prd(ALLOWED_HOSTS=["*"], SECURE_HSTS_SECONDS=0)
    with pytest.raises(SystemCheckError) as refused:
        run_startup_checks()
    lines = str(refused.value).splitlines()
    assert [line.split(":")[0] for line in lines] == ["pelcro_gateway.E018", "pelcro_gateway.E019"], lines
    assert "HINT: Set ALLOWED_HOSTS to the public host of PUBLIC_URL (mcp.example.test)" in lines[0]
    assert "HINT: Unset it (one year, 31536000, the default) or set 86400 or more" in lines[1]
