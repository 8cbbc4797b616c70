"""No secret in any log: an end-to-end run (registration, sign-in, consent, code exchange,
tool calls with the SDK, refresh, a duplicate refresh within the grace period, a refresh
replay after it, introspection, revocation, a stray token in a URL) against a gateway
logging at DEBUG with uvicorn's access log on (as the Dockerfile runs it), then every
access token, refresh token, authorization code, PKCE verifier, client secret,
registration token, password and Core API key is looked for in the gateway's and the
sandbox's log files. The same flow runs in-process too, captured from the gateway's own
log handler. Finally the database holds no API key in clear.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import sys
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.db import connection

from devtools.oauth_client import (
    DEFAULT_REDIRECT_URI,
    authorize,
    exchange_code,
    mcp_url,
    parse_forms,
    pkce_pair,
    refresh,
    register_client,
    signed_in,
)
from devtools.servers import ServerProcess, free_port
from pelcro_gateway.logging import RedactSecretsFilter
from tests.support.faults import PLANS_ARGS, LogWatch, call_tool, new_customer_args
from tests.support.mcp import PASSWORDS, mcp_session
from tests.support.sandbox import KEYS
from tests.support.servers import gateway_env
from tests.test_oauth_tokens import age_rotated_tokens


def start_verbose_gateway(sandbox: ServerProcess, **extra_env: str) -> ServerProcess:
    """A gateway logging at DEBUG, with uvicorn's access log (the Dockerfile's command);
    `extra_env` adds or overrides environment variables (e.g. DEBUG="1")."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "pelcro_gateway.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    env = gateway_env(sandbox, port, **{"LOG_LEVEL": "DEBUG", "RATE_LIMIT": "1000000", "ACCESS_LOG": "1", **extra_env})
    return ServerProcess("gateway-verbose", argv, port, env, "/health").start()


@pytest.fixture
def verbose_gateway(transactional_db, demo_users, fault_sandbox, django_db_blocker):
    with django_db_blocker.unblock():
        server = start_verbose_gateway(fault_sandbox)
    yield server
    server.stop()


class Secrets:
    """Every secret the run handles, by what it is."""

    def __init__(self):
        self.items: dict[str, str] = {f"api key of {slug}": key for slug, key in KEYS.items()}
        self.items.update({f"password of {name}": password for name, password in PASSWORDS.items()})

    def add(self, what: str, value: str | None) -> None:
        assert value, what
        self.items[what] = value

    def found_in(self, text: str) -> list[str]:
        return [what for what, value in self.items.items() if value in text]


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


async def use_tools(url: str, token: str) -> list:
    async with mcp_session(url, token, "2026-07-28") as client:
        return [
            await call_tool(client, "list_plans", PLANS_ARGS),
            await call_tool(
                client, "create_customer", {**new_customer_args("seclog"), "metadata": {"api_key": KEYS["acme"]}}
            ),
            await call_tool(client, "get_customer", {"site_id": 14, "customer_id": 999999999}),
            await call_tool(client, "list_plans", {"site_id": 27}),  # another account's site
        ]


def run_end_to_end(gateway_url: str, secrets: Secrets) -> None:
    """The whole life of two connections, over HTTP, collecting each secret on the way."""
    url = mcp_url(gateway_url)
    public = register_client(gateway_url, client_name="seclog-public")
    confidential = register_client(
        gateway_url, client_name="seclog-confidential", token_endpoint_auth_method="client_secret_basic"
    )
    secrets.add("registration token (public)", public["registration_access_token"])
    secrets.add("registration token (confidential)", confidential["registration_access_token"])
    secrets.add("client secret", confidential["client_secret"])

    session = signed_in(gateway_url, "demo", PASSWORDS["demo"])
    grant = authorize(session, gateway_url, public["client_id"], "acme")
    secrets.add("authorization code", grant["code"])
    secrets.add("code verifier", grant["verifier"])
    tokens = exchange_code(gateway_url, public["client_id"], grant["code"], grant["verifier"]).json()
    secrets.add("access token", tokens["access_token"])
    secrets.add("refresh token", tokens["refresh_token"])

    outcomes = asyncio.run(use_tools(url, tokens["access_token"]))
    assert [o.is_error for o in outcomes] == [False, False, True, True]

    renewed = refresh(gateway_url, public["client_id"], tokens["refresh_token"]).json()
    secrets.add("refreshed access token", renewed["access_token"])
    secrets.add("refreshed refresh token", renewed["refresh_token"])
    assert not asyncio.run(use_tools(url, renewed["access_token"]))[0].is_error
    # A duplicate refresh within REFRESH_TOKEN_GRACE_SECONDS (a second process of the same
    # client) gets the same pair back, unsealed from the old token...
    duplicate = refresh(gateway_url, public["client_id"], tokens["refresh_token"])
    assert duplicate.status_code == 200
    assert {k: duplicate.json()[k] for k in ("access_token", "refresh_token")} == {
        k: renewed[k] for k in ("access_token", "refresh_token")
    }
    # ...past the grace period it is a replay: refused, and the family revoked (and logged).
    age_rotated_tokens(public["client_id"])
    assert refresh(gateway_url, public["client_id"], tokens["refresh_token"]).status_code == 400
    # A replayed code: refused too (and what it issued is revoked).
    assert exchange_code(gateway_url, public["client_id"], grant["code"], grant["verifier"]).status_code == 400

    # The confidential client: its secret on the token, introspection and revocation calls.
    grant = authorize(session, gateway_url, confidential["client_id"], "other")
    secrets.add("authorization code (confidential)", grant["code"])
    secrets.add("code verifier (confidential)", grant["verifier"])
    auth = {"Authorization": basic(confidential["client_id"], confidential["client_secret"])}
    own = httpx.post(
        gateway_url + "/oauth/token",
        headers=auth,
        data={
            "grant_type": "authorization_code",
            "code": grant["code"],
            "code_verifier": grant["verifier"],
            "redirect_uri": DEFAULT_REDIRECT_URI,
            "resource": url,
        },
    ).json()
    secrets.add("access token (confidential)", own["access_token"])
    secrets.add("refresh token (confidential)", own["refresh_token"])
    assert (
        httpx.post(gateway_url + "/oauth/introspect", headers=auth, data={"token": own["access_token"]}).json()[
            "active"
        ]
        is True
    )
    assert (
        httpx.post(gateway_url + "/oauth/revoke", headers=auth, data={"token": own["refresh_token"]}).status_code == 200
    )
    session.close()

    # Clients that get it wrong: a made-up token, a token in the query string, a secret
    # presented as a bearer token.
    stray = "pgw-stray-" + pkce_pair()[0][:40]
    secrets.add("made-up bearer token", stray)
    for headers, query in [
        ({"Authorization": f"Bearer {stray}"}, ""),
        ({}, f"?access_token={renewed['access_token']}"),
        ({"Authorization": f"Bearer {confidential['client_secret']}"}, ""),
    ]:
        response = httpx.post(
            url + query,
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18", **headers},
        )
        assert response.status_code == 401


def test_no_secret_reaches_the_server_logs(verbose_gateway, fault_sandbox):
    gateway_log, sandbox_log = LogWatch(verbose_gateway), LogWatch(fault_sandbox)
    secrets = Secrets()
    run_end_to_end(verbose_gateway.url, secrets)

    logged = gateway_log.text()
    # The capture is live: DEBUG records and access-log lines of this very run are in it.
    assert " DEBUG " in logged and '"POST /oauth/token HTTP/1.1" 200' in logged
    assert "/?access_token=" in logged or '"POST /?' in logged  # the stray query string was logged
    assert secrets.found_in(logged) == [], "secrets in the gateway's log"
    assert secrets.found_in(sandbox_log.text()) == [], "secrets in the sandbox's log"
    assert_no_api_key_in_clear_in_the_database()


def assert_no_api_key_in_clear_in_the_database() -> None:
    """Every row of every table, as text: no Core API key appears."""
    keys = list(KEYS.values())
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                text = repr(row)
                assert not any(key in text for key in keys), f"an API key in clear in {table}"


# --- In-process ------------------------------------------------------------------------------


@pytest.fixture
def captured_log():
    """What the gateway's own console handler (the one with the redaction filter) writes,
    with every logger at DEBUG, for the duration of the test."""
    root = logging.getLogger()
    handler = next(h for h in root.handlers if any(isinstance(f, RedactSecretsFilter) for f in h.filters))
    stream = io.StringIO()
    previous_stream, previous_level = handler.setStream(stream), root.level
    quiet = {name: logging.getLogger(name).level for name in ("httpx", "httpcore")}
    root.setLevel(logging.DEBUG)
    for name in quiet:
        logging.getLogger(name).setLevel(logging.DEBUG)  # stricter than production: even these
    yield stream
    handler.setStream(previous_stream)
    root.setLevel(previous_level)
    for name, level in quiet.items():
        logging.getLogger(name).setLevel(level)


def test_no_secret_in_the_gateways_own_log_output_in_process(captured_log, demo_users, fault_sandbox, settings):
    """The OAuth flow through Django's test client and Core API calls through the gateway's
    client, in this process: what the configured handler writes holds no secret."""
    from django.test import Client

    from mcp_bridge.core.client import CoreAPIClient
    from mcp_bridge.upstream.gate import OpenGate

    # This process's registrations count against the same per-IP cap as every live
    # gateway's of the run (same Redis prefix, same 127.0.0.1): lift it here.
    settings.PELCRO_GATEWAY = {**settings.PELCRO_GATEWAY, "DCR_PER_IP_PER_HOUR": 10**6}
    secrets = Secrets()
    browser = Client(REMOTE_ADDR="127.0.0.9")
    registered = browser.post(
        "/oauth/register",
        content_type="application/json",
        data={
            "client_name": "inproc",
            "redirect_uris": [DEFAULT_REDIRECT_URI],
            "token_endpoint_auth_method": "client_secret_post",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
        },
    ).json()
    secrets.add("client secret", registered["client_secret"])
    secrets.add("registration token", registered["registration_access_token"])
    assert browser.post("/login", {"username": "demo", "password": PASSWORDS["demo"]}).status_code == 302
    verifier, challenge = pkce_pair()
    secrets.add("code verifier", verifier)
    resource = settings.MCP_RESOURCE_URL
    query = {
        "response_type": "code",
        "client_id": registered["client_id"],
        "redirect_uri": DEFAULT_REDIRECT_URI,
        "state": "s",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "scope": "read write",
        "resource": resource,
    }
    page = browser.get("/oauth/authorize", query)
    assert page.status_code == 200
    form = next(f for f in parse_forms(page.content.decode()) if f["id"] == "consent-form")
    account = next(r["value"] for r in form["radios"]["account"] if r["data-slug"] == "acme")
    redirect = browser.post(
        form["action"], {**form["hidden"], "account": account, "access": "read_write", "allow": "true"}
    )
    assert redirect.status_code == 302, redirect.content[:300]
    code = parse_qs(urlsplit(redirect["Location"]).query)["code"][0]
    secrets.add("authorization code", code)
    credentials = {"client_id": registered["client_id"], "client_secret": registered["client_secret"]}
    tokens = browser.post(
        "/oauth/token",
        {
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": DEFAULT_REDIRECT_URI,
            "resource": resource,
            **credentials,
        },
    ).json()
    secrets.add("access token", tokens["access_token"])
    secrets.add("refresh token", tokens["refresh_token"])
    renewed = browser.post(
        "/oauth/token",
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "resource": resource, **credentials},
    ).json()
    secrets.add("refreshed access token", renewed["access_token"])
    duplicate = browser.post(
        "/oauth/token",
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "resource": resource, **credentials},
    )
    assert duplicate.status_code == 200 and duplicate.json()["refresh_token"] == renewed["refresh_token"]  # grace
    age_rotated_tokens(registered["client_id"])  # past the grace period: a replay
    assert (
        browser.post(
            "/oauth/token",
            {
                "grant_type": "refresh_token",
                "refresh_token": tokens["refresh_token"],
                "resource": resource,
                **credentials,
            },
        ).status_code
        == 400
    )
    assert browser.post("/oauth/revoke", {"token": renewed["access_token"], **credentials}).status_code == 200

    async def core_calls():
        client = CoreAPIClient(fault_sandbox.url + "/api/v1/core", gate=OpenGate(), max_retries=0)
        try:
            await client.request("GET", "/plans", account_id=1, api_key=KEYS["acme"], site_id=14, params={"limit": 1})
        finally:
            await client.aclose()

    asyncio.run(core_calls())
    output = captured_log.getvalue()
    assert "core api GET /plans -> 200" in output  # the capture is live at DEBUG
    assert secrets.found_in(output) == []
