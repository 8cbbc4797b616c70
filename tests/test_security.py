"""Security as tests: Core API keys encrypted at rest, the security headers on every page,
Secure and HttpOnly cookies in production, and unsafe production settings refused
(extending tests/test_health.py's checks; tests/test_security_logs.py covers the logs).
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.test import override_settings

from devtools.oauth_client import (
    DEFAULT_REDIRECT_URI,
    authorize_url,
    parse_forms,
    pkce_pair,
    register_client,
    signed_in,
)
from devtools.servers import ROOT
from tests.support.csp import GLOBAL_POLICY, csp_directives
from tests.support.mcp import PASSWORDS
from tests.support.sandbox import KEYS
from tests.support.servers import start_gateway

SAFE_PRD = {
    "GATEWAY_ENV": "prd",
    "DEBUG": "0",
    "SECRET_KEY": "k3Jv9-pQ2x_Lm8sT4wZ1yB6nR0cF5hD7gA2eU9iO3lK8jH4mN6bV1cX5zS0qW7rE",
    "API_KEY_ENCRYPTION_KEYS": "q3k2Zr3mJx4B1mS0v8oJbq0q2M0pZ8W3l9mZ3Yc2qkQ=",
    "PUBLIC_URL": "https://mcp.example.test",
    "FORWARDED_ALLOW_IPS": "",
    "METRICS_TOKEN": "Vq8xT2mLr5Kc9Hd1Wp4Yn7Bf3Js6Ga0Ze2Ru8Ok5Ni",
}


# --- Core API keys at rest ---------------------------------------------------------------------


def test_api_keys_are_stored_encrypted_with_the_configured_key(demo_users, settings):
    from accounts.models import Account

    current = Fernet(settings.API_KEY_ENCRYPTION_KEYS[0])
    for slug, key in KEYS.items():
        with connection.cursor() as cursor:
            cursor.execute("SELECT api_key_encrypted, api_key_last4 FROM accounts_account WHERE slug = %s", [slug])
            raw, last4 = cursor.fetchone()
        assert raw != key and key not in raw and key[4:-4] not in raw
        assert current.decrypt(raw.encode()).decode() == key
        assert last4 == key[-4:]  # all that is ever shown
        account = Account.objects.get(slug=slug)
        assert account.get_api_key() == key
        # Without the key it is unreadable.
        with (
            override_settings(API_KEY_ENCRYPTION_KEYS=[Fernet.generate_key().decode()]),
            pytest.raises(ValueError, match="cannot be decrypted"),
        ):
            account.get_api_key()
    # Fresh randomness per encryption: equal keys do not give equal ciphertexts.
    account = Account.objects.get(slug="acme")
    before = account.api_key_encrypted
    account.set_api_key(KEYS["acme"])
    assert account.api_key_encrypted != before and account.get_api_key() == KEYS["acme"]


# --- Security headers on every page ----------------------------------------------------------


def assert_security_headers(response: httpx.Response, page: str) -> None:
    headers = response.headers
    csp = headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in csp, (page, csp)
    assert "default-src 'self'" in csp and "object-src 'none'" in csp and "base-uri 'none'" in csp, (page, csp)
    assert headers.get("x-frame-options") == "DENY", page
    assert headers.get("x-content-type-options") == "nosniff", page
    assert headers.get("referrer-policy") == "same-origin", page
    assert headers.get("cross-origin-opener-policy") == "same-origin", page


def test_every_page_sends_the_security_headers(demo_users, fuzz_gateway):
    url = fuzz_gateway.url
    client = register_client(url, client_name="headers")
    session = signed_in(url, "demo", PASSWORDS["demo"])  # staff, so /ops/ renders
    anonymous = httpx.Client(base_url=url, follow_redirects=False, timeout=10)
    _, challenge = pkce_pair()
    pages = {
        "landing page": anonymous.get("/", headers={"Accept": "text/html"}),
        "login": anonymous.get("/login"),
        "consent": session.get(authorize_url(url, client["client_id"], challenge)),
        "authorize error page": session.get(authorize_url(url, "no-such-client", challenge)),
        "authorize, signed out": anonymous.get(authorize_url(url, client["client_id"], challenge)),
        "connections": session.get("/connections"),
        "ops dashboard": session.get("/ops/"),
        "admin": session.get("/admin/"),
        "not found": anonymous.get("/no-such-page"),
    }
    expected = {"authorize error page": 400, "authorize, signed out": 302, "not found": 404}
    for page, response in pages.items():
        assert response.status_code == expected.get(page, 200), (page, response.status_code)
        assert_security_headers(response, page)
        if page != "consent":
            assert csp_directives(response.headers["content-security-policy"]) == GLOBAL_POLICY, page
    # Pages with personal data or secrets in forms are never cached.
    for page in ("login", "consent", "connections", "ops dashboard"):
        assert "no-store" in pages[page].headers.get("cache-control", ""), page
    # The consent form may only be posted here or to the client's registered redirect URI.
    assert "form-action 'self' http://127.0.0.1:47123" in pages["consent"].headers["content-security-policy"]
    assert DEFAULT_REDIRECT_URI.startswith("http://127.0.0.1:47123")
    session.close()
    anonymous.close()


@pytest.mark.parametrize(
    ("redirect_uri", "origin"),
    [
        ("http://127.0.0.1:47123/callback", "http://127.0.0.1:47123"),  # a loopback app
        ("https://app.example.test/oauth/cb?x=1", "https://app.example.test"),  # a web app: origin only
        ("cursor://anysphere.cursor-retrieval/oauth/cb", None),  # a native scheme, already listed
        ("http://[::1]:47123/callback", "http:"),  # IPv6: no CSP host-source form
    ],
)
def test_the_consent_page_may_post_only_here_to_the_redirect_origin_and_the_native_schemes(
    demo_users, fuzz_gateway, settings, redirect_uri, origin
):
    """The consent page's form-action (Chromium checks every hop after the POST): this
    server, the registered redirect URI's origin, the native app schemes — nothing else;
    the rest of its policy is every page's."""
    url = fuzz_gateway.url
    client = register_client(url, client_name="form-action", redirect_uris=[redirect_uri])
    session = signed_in(url, "demo", PASSWORDS["demo"])
    _, challenge = pkce_pair()
    page = session.get(authorize_url(url, client["client_id"], challenge, redirect_uri=redirect_uri))
    session.close()
    assert page.status_code == 200, page.text
    policy = csp_directives(page.headers["content-security-policy"])
    native = [f"{scheme}:" for scheme in settings.OAUTH_NATIVE_REDIRECT_SCHEMES]
    assert native == ["cursor:", "vscode:", "vscode-insiders:", "windsurf:", "claude:"]
    assert policy.pop("form-action") == ["'self'", *([origin] if origin else []), *native]
    assert policy == {name: sources for name, sources in GLOBAL_POLICY.items() if name != "form-action"}


# --- Production: cookies, HSTS, no debug pages -------------------------------------------------------


@pytest.fixture
def prd_gateway(demo_users, django_db_blocker):
    """A gateway with safe production settings, behind a TLS-terminating proxy (the test
    client, on 127.0.0.1, plays the proxy)."""
    with django_db_blocker.unblock():
        server = start_gateway(None, **{**SAFE_PRD, "FORWARDED_ALLOW_IPS": "127.0.0.1"})
    yield server
    server.stop()


def cookie(response: httpx.Response, name: str) -> tuple[str, set[str]]:
    """(value, lower-cased attributes) of the Set-Cookie for `name`."""
    for header in response.headers.get_list("set-cookie"):
        first, *attributes = [part.strip() for part in header.split(";")]
        if first.startswith(name + "="):
            return first.split("=", 1)[1], {attribute.lower() for attribute in attributes}
    raise AssertionError(f"no {name} cookie set: {response.headers.get_list('set-cookie')}")


def test_production_sets_secure_http_only_cookies_and_hsts(prd_gateway):
    url = prd_gateway.url
    via_https = {"X-Forwarded-Proto": "https"}
    page = httpx.get(url + "/login", headers=via_https)
    assert page.status_code == 200
    assert page.headers["strict-transport-security"].startswith("max-age=31536000")
    assert_security_headers(page, "login (prd)")
    csrf, attributes = cookie(page, "csrftoken")
    assert {"secure", "samesite=lax"} <= attributes, attributes

    form_token = next(f for f in parse_forms(page.text) if f["action"] == "/login")["hidden"]["csrfmiddlewaretoken"]
    # A Secure cookie only travels over https; the proxy is https, so send it as a browser would.
    signed = httpx.post(
        url + "/login",
        headers={**via_https, "Cookie": f"csrftoken={csrf}", "Referer": f"https://127.0.0.1:{prd_gateway.port}/login"},
        data={
            "csrfmiddlewaretoken": form_token,
            "username": "demo",
            "password": PASSWORDS["demo"],
            "next": "/connections",
        },
    )
    assert signed.status_code == 302, signed.text[:300]
    _, attributes = cookie(signed, "sessionid")
    assert {"secure", "httponly", "samesite=lax"} <= attributes, attributes

    # DEBUG is off: an unknown page or a refused request shows no debug page.
    for response in (
        httpx.get(url + "/no-such-page", headers=via_https),
        httpx.post(url + "/login", headers=via_https, data={"username": "demo"}),
    ):
        assert response.status_code in (403, 404)
        assert "DEBUG = True" not in response.text and "Traceback" not in response.text


# --- Unsafe production settings are refused ----------------------------------------------------------


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=180,  # a loaded machine: Django's start-up alone can take seconds
    )


# Each rule, with its message, is tested in-process (tests/test_production_settings.py);
# this run proves the environment reaches them and `manage.py check` stops on them. The
# values are read from the environment by settings.py (ALLOWED_HOSTS, SECURE_HSTS_SECONDS,
# SECURE_COOKIES, …), so each is one the check must see through that parsing.
UNSAFE_ENV = {
    "ALLOWED_HOSTS": "mcp.example.test,*",
    "SECURE_HSTS_SECONDS": "0",
    "SECURE_COOKIES": "0",
    "SECRET_KEY": "s" * 31,
    "METRICS_TOKEN": "changeme",
    "FORWARDED_ALLOW_IPS": "10.0.0.1, *",
    "API_KEY_ENCRYPTION_KEYS": ",",
    "OAUTH_NATIVE_REDIRECT_SCHEMES": "cursor,javascript",
}
UNSAFE_SAID = [
    "pelcro_gateway.E018",
    "ALLOWED_HOSTS holds '*' when GATEWAY_ENV=prd",
    "HINT: Set ALLOWED_HOSTS to the public host of PUBLIC_URL (mcp.example.test)",
    "pelcro_gateway.E019",
    "SECURE_HSTS_SECONDS=0 is below a day (86400)",
    "pelcro_gateway.E014",
    "pelcro_gateway.E011",
    "SECRET_KEY is shorter than 32 characters (31)",
    "pelcro_gateway.E016",
    "pelcro_gateway.E015",
    "pelcro_gateway.E002",
    "API_KEY_ENCRYPTION_KEYS holds no key",
    "accounts.E002",
]
# `check --deploy` warnings that are deliberate (documented in settings/README): TLS ends at
# the proxy (no SSL redirect here), HSTS subdomains/preload are the operator's choice, and
# DOT's http warning is for loopback redirect URIs only.
EXPECTED_DEPLOY_WARNINGS = {"security.W005", "security.W008", "security.W021", "oauth2_provider.W008"}


def test_production_refuses_unsafe_settings_and_deploy_checks_pass():
    with ThreadPoolExecutor(max_workers=2) as pool:
        refused = pool.submit(manage, "check", **{**SAFE_PRD, **UNSAFE_ENV})
        deploy = pool.submit(manage, "check", "--deploy", **SAFE_PRD)
        result = refused.result()
        assert result.returncode != 0, result.stderr
        missing = [text for text in UNSAFE_SAID if text not in result.stderr]
        assert not missing, (missing, result.stderr[-3000:])
        result = deploy.result()
    assert result.returncode == 0, result.stderr
    warnings = {line.split(")")[0].lstrip("?: (") for line in result.stderr.splitlines() if line.startswith("?: (")}
    assert warnings <= EXPECTED_DEPLOY_WARNINGS, warnings - EXPECTED_DEPLOY_WARNINGS


# A value of the right type but out of range (or unreadable by the library that takes it)
# stops the start with an error naming the variable, in every environment (dev included).
OUT_OF_RANGE = [
    (
        {
            "RATE_LIMIT": "0",
            "RATE_WINDOW_SECONDS": "0",
            "CORE_API_TIMEOUT": "-3",
            "BACKGROUND_BUDGET_SHARE": "2",
            "EXPORT_PAGE_SIZE": "500",
            "ACCESS_TOKEN_SECONDS": "0",
        },
        [
            "pelcro_gateway.E017",
            "RATE_LIMIT=0",
            "RATE_WINDOW_SECONDS=0.0",
            "CORE_API_TIMEOUT=-3.0",
            "BACKGROUND_BUDGET_SHARE=2.0",
            "EXPORT_PAGE_SIZE=500",
            "ACCESS_TOKEN_SECONDS=0",
        ],
    ),
    ({"RATE_LIMIT": "10", "RATE_SAFETY_MARGIN": "10"}, ["pelcro_gateway.E017", "RATE_SAFETY_MARGIN=10 must be below"]),
    ({"LOG_LEVEL": "LOUD"}, ["LOG_LEVEL='LOUD'"]),
    ({"DATABASE_URL": "garbage"}, ["DATABASE_URL is not a database URL"]),
]


def test_out_of_range_settings_stop_the_start_naming_the_variable():
    with ThreadPoolExecutor(max_workers=len(OUT_OF_RANGE)) as pool:
        runs = [pool.submit(manage, "check", GATEWAY_ENV="dev", **override) for override, _ in OUT_OF_RANGE]
        for (override, expected), future in zip(OUT_OF_RANGE, runs, strict=True):
            result = future.result()
            assert result.returncode != 0, override
            missing = [text for text in expected if text not in result.stderr]
            assert not missing, (override, missing, result.stderr[-1200:])
