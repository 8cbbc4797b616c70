"""Open server (`/open`) test helpers: a demo subscriber's connection and an MCP session on it.

Subscriber sign-in through the OAuth server is built separately; until tests drive it,
`open_token` makes what it makes: a subscriber's gateway record (`subscriber_for`), a
connection holding a real Pelcro JWT from the sandbox's Open API login, and an access
token bound to `PUBLIC_URL/open`. `open_session` opens a real SDK client on it.

    async with open_session(mcp_env, SECOND, access=READ_WRITE) as (client, conn):
        await client.call_tool("get_my_profile", {})

Whether a token and a Pelcro sign-in still work: `mcp_initialize(gateway_url, token)` (a
bare MCP initialize at /open) and `pelcro_status(env, jwt)` (the sandbox's answer to it).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import httpx

from tests.support.mcp import mcp_session
from tests.support.sandbox import READER

READ = "read"
READ_WRITE = "read_write"


@dataclass(frozen=True)
class OpenConnection:
    """A subscriber's connection made by `open_connection`."""

    token: str  # the raw access token for /open
    connection_id: int
    site_id: int
    customer_id: int
    jwt: str  # the Pelcro JWT the connection holds (as the sandbox issued it)


def open_connection(
    env,
    subscriber: dict = READER,
    *,
    access: str = READ,
    resource: str | None = None,
    with_jwt: bool = True,
    confirm_writes: bool = True,
) -> OpenConnection:
    """A connection of demo `subscriber` (a dict of `tests.support.sandbox.SUBSCRIBERS`),
    bound to /open unless `resource` says otherwise; it holds the Pelcro JWT of a fresh Open
    API login unless `with_jwt` is False. `access`: "read" or "read_write"."""
    from django.utils import timezone
    from oauth2_provider.models import get_access_token_model, get_application_model

    from accounts.access import scopes_for
    from accounts.models import Connection, Site, SubscriberCredential, TokenBinding
    from accounts.subscribers import subscriber_for
    from mcp_bridge.open.client import jwt_times

    site_id = subscriber["site_id"]
    login = httpx.post(
        f"{env.sandbox.url}/api/v1/sdk/auth/login",
        params={"site_id": site_id},
        json={"email": subscriber["email"], "password": subscriber["password"]},
        timeout=10,
    )
    assert login.status_code == 200, login.text
    customer = login.json()["data"]
    site = Site.objects.get(site_id=site_id)
    record = subscriber_for(site, customer["id"], customer["email"])
    application = get_application_model().objects.create(
        name="Open test app",
        client_type="public",
        authorization_grant_type="authorization-code",
        redirect_uris="http://127.0.0.1/cb",
    )
    connection = Connection.objects.create(
        user=record.user, application=application, account=site.account, access=access, confirm_writes=confirm_writes
    )
    if with_jwt:
        credential = SubscriberCredential(connection=connection)
        credential.set_jwt(customer["auth_token"], jwt_times(customer["auth_token"])[0])
        credential.save()
    raw = secrets.token_urlsafe(32)
    token = get_access_token_model().objects.create(
        user=record.user,
        application=application,
        token=raw,
        scope=" ".join(scopes_for(access)),
        expires=timezone.now() + timedelta(hours=1),
        resource=[resource or env.gateway.url + "/open"],
    )
    TokenBinding.objects.create(access_token=token, connection=connection)
    return OpenConnection(
        token=raw, connection_id=connection.id, site_id=site_id, customer_id=customer["id"], jwt=customer["auth_token"]
    )


def held_jwt(connection_id: int) -> str:
    """The Pelcro JWT the connection holds now: a customer resource answer carries a fresh
    one, which the gateway keeps when it outlives the stored one (`open.credentials`)."""
    from accounts.models import SubscriberCredential

    return SubscriberCredential.objects.get(connection_id=connection_id).get_jwt()


def open_token(env, subscriber: dict = READER, **options) -> str:
    """The raw /open access token of `open_connection(env, subscriber, **options)`."""
    return open_connection(env, subscriber, **options).token


@contextlib.asynccontextmanager
async def open_session(
    env, subscriber: dict = READER, *, mode: str = "2026-07-28", **options
) -> AsyncIterator[tuple[object, OpenConnection]]:
    """A real SDK client on `/open` for a new connection of `subscriber` (`open_connection`
    options), with that connection."""
    from asgiref.sync import sync_to_async

    connection = await sync_to_async(open_connection)(env, subscriber, **options)
    async with mcp_session(env.gateway.url + "/open", connection.token, mode) as client:
        yield client, connection


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}


def mcp_initialize(gateway_url: str, token: str) -> httpx.Response:
    """A bare MCP initialize at the gateway's /open with bearer `token` (200 while the
    token is good; 401 with its WWW-Authenticate once refused)."""
    return httpx.post(
        gateway_url + "/open",
        json=INITIALIZE,
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": "2025-06-18",
        },
        timeout=30,
    )


def pelcro_status(env, jwt: str, site_id: int = READER["site_id"]) -> int:
    """What the sandbox's Open API answers for a protected call made with `jwt` (200 while
    the sign-in is live, 403 once logged out)."""
    return httpx.post(
        f"{env.sandbox.url}/api/v1/sdk/customer",
        params={"site_id": site_id},
        headers={"Authorization": f"Bearer {jwt}"},
        timeout=10,
    ).status_code
