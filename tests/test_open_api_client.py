"""Contract: the gateway's Open API client (mcp_bridge.open.client) and the connection's
Pelcro JWT (mcp_bridge.open.credentials) against the running sandbox (issue 14).

site_id on every call, the customer's JWT as Bearer, login / refresh / logout, typed errors
(401/403 → CustomerTokenRejected, login 404 → InvalidCredentials, login 429 → LoginLocked
without slowing the account down), refresh before expiry, and the connection ending when
Pelcro refuses its JWT.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from oauth2_provider.models import Application

from accounts.models import Connection, Site, SubscriberCredential
from accounts.subscribers import subscriber_for
from mcp_bridge.open.client import (
    CustomerTokenRejected,
    InvalidCredentials,
    LoginLocked,
    OpenAPIClient,
    jwt_times,
    refresh_due,
)
from mcp_bridge.open.credentials import ConnectionEnded, SubscriberCaller
from mcp_bridge.orm import run_db
from mcp_bridge.upstream.errors import NotFound, ValidationFailed
from mcp_bridge.upstream.gate import OpenGate
from tests.support.sandbox import ACME_SITE, ACME_SITE_2, READER, SECOND

ACCOUNT = 7_700_001  # limiter key; the gate below lets everything through


class RecordingGate(OpenGate):
    """Lets everything through and remembers when the client reported an upstream 429."""

    def __init__(self):
        self.rate_limited: list[float] = []

    async def upstream_rate_limited(self, account_id, retry_after):
        self.rate_limited.append(retry_after)


@pytest.fixture
async def open_api(fresh_sbx):
    gate = RecordingGate()
    client = OpenAPIClient(fresh_sbx.url + "/api/v1/sdk", gate=gate, max_retries=2, backoff_base=0.01)
    client.recording_gate = gate
    yield client
    await client.aclose()


async def sign_in(client, who=READER):
    return await client.login(account_id=ACCOUNT, site_id=who["site_id"], email=who["email"], password=who["password"])


async def test_login_gives_the_customer_its_jwt_and_expiry(open_api, fresh_sbx):
    since = fresh_sbx.last_seq()
    signed_in = await sign_in(open_api)
    assert signed_in.customer["email"] == READER["email"] and signed_in.customer_id > 0
    lifetime = signed_in.expires_at - signed_in.issued_at
    assert lifetime == timedelta(days=60)  # the site's auth_token_ttl_days (OPEN_API.md §2)
    assert abs(signed_in.expires_at - datetime.now(UTC) - lifetime) < timedelta(minutes=5)
    (entry,) = fresh_sbx.log(since)
    assert entry["api"] == "open" and entry["path"].endswith("/auth/login") and "site_id=14" in entry["query"], entry


async def test_protected_calls_carry_the_jwt_and_the_site(open_api):
    signed_in = await sign_in(open_api)
    answer = await open_api.request("POST", "/customer", account_id=ACCOUNT, site_id=ACME_SITE, jwt=signed_in.jwt)
    assert answer.data["id"] == signed_in.customer_id and answer.token
    with pytest.raises(CustomerTokenRejected) as no_token:
        await open_api.request("POST", "/customer", account_id=ACCOUNT, site_id=ACME_SITE)
    assert no_token.value.status == 401 and not no_token.value.blacklisted
    with pytest.raises(CustomerTokenRejected) as other_site:  # a site-14 JWT on site 15
        await open_api.request("POST", "/customer", account_id=ACCOUNT, site_id=ACME_SITE_2, jwt=signed_in.jwt)
    assert other_site.value.status == 401


async def test_wrong_password_and_unknown_email_are_one_answer(open_api):
    for email, password in ((READER["email"], "Wrong-Pass-1!"), ("nobody@example.com", READER["password"])):
        with pytest.raises(InvalidCredentials, match="Invalid credentials"):
            await open_api.login(account_id=ACCOUNT, site_id=ACME_SITE, email=email, password=password)


async def test_login_lock_out_is_the_customers_not_the_accounts_rate_limit(open_api, fresh_sbx):
    for _ in range(10):  # 10 failures in 5 minutes (OPEN_API.md §2)
        with pytest.raises(InvalidCredentials):
            await open_api.login(account_id=ACCOUNT, site_id=ACME_SITE, email=SECOND["email"], password="Wrong-1!x")
    since = fresh_sbx.last_seq()
    with pytest.raises(LoginLocked) as locked:
        await sign_in(open_api, SECOND)
    assert locked.value.retry_after >= 1 and "Too many login attempts" in locked.value.message
    assert len(fresh_sbx.log(since)) == 1  # not retried
    assert open_api.recording_gate.rate_limited == []  # the account is not slowed down
    await sign_in(open_api, READER)  # another customer of the site still signs in


async def test_refresh_replaces_the_jwt_and_blacklists_the_old_one(open_api):
    first = await sign_in(open_api)
    await asyncio.sleep(1.1)  # a later iat, so the new JWT differs
    second = await open_api.refresh(account_id=ACCOUNT, site_id=ACME_SITE, jwt=first.jwt)
    assert second.jwt != first.jwt and second.customer_id == first.customer_id
    assert second.expires_at > first.expires_at
    with pytest.raises(CustomerTokenRejected) as old:
        await open_api.request("POST", "/customer", account_id=ACCOUNT, site_id=ACME_SITE, jwt=first.jwt)
    assert old.value.status == 403 and old.value.blacklisted and "blacklisted" in old.value.message
    await open_api.logout(account_id=ACCOUNT, site_id=ACME_SITE, jwt=second.jwt)
    with pytest.raises(CustomerTokenRejected):
        await open_api.request("POST", "/customer", account_id=ACCOUNT, site_id=ACME_SITE, jwt=second.jwt)
    await open_api.logout(account_id=ACCOUNT, site_id=ACME_SITE, jwt=second.jwt)  # already out: no error


async def test_validation_and_business_refusals_are_typed(open_api):
    signed_in = await sign_in(open_api)
    with pytest.raises(ValidationFailed) as invalid:
        await open_api.request(
            "PUT", "/customer", account_id=ACCOUNT, site_id=ACME_SITE, jwt=signed_in.jwt, json={"email": "not-an-email"}
        )
    assert "email" in invalid.value.fields
    with pytest.raises(NotFound) as refused:  # the Open API's business refusals are 404s (OPEN_API.md §4)
        await open_api.request(
            "POST",
            "/subscription/cancel",
            account_id=ACCOUNT,
            site_id=ACME_SITE,
            jwt=signed_in.jwt,
            json={"subscription_id": 999999999},
        )
    assert refused.value.message and refused.value.status == 404


def test_refresh_is_due_a_day_before_expiry_or_at_half_a_short_life(settings):
    settings.PELCRO_GATEWAY = {**settings.PELCRO_GATEWAY, "OPEN_JWT_REFRESH_BEFORE_SECONDS": 86400}
    now = datetime(2026, 1, 1, tzinfo=UTC)
    sixty = timedelta(days=60)
    assert not refresh_due(now + sixty, now, now)
    assert not refresh_due(now + timedelta(days=2), now + timedelta(days=2) - sixty, now)
    assert refresh_due(now + timedelta(hours=23), now + timedelta(hours=23) - sixty, now)
    # A 1-day token: refreshed once half of it is gone, not on every call from its start.
    assert not refresh_due(now + timedelta(hours=13), now + timedelta(hours=13) - timedelta(days=1), now)
    assert refresh_due(now + timedelta(hours=11), now + timedelta(hours=11) - timedelta(days=1), now)


# --- the connection's JWT (credentials.SubscriberCaller) -----------------------------------------


def _connection_with(jwt: str, customer_id: int, site_id: int = ACME_SITE) -> int:
    site = Site.objects.get(site_id=site_id)
    subscriber = subscriber_for(site, customer_id, "s@example.com")
    application = Application.objects.create(
        name="App",
        client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris="http://127.0.0.1/cb",
    )
    connection = Connection.objects.create(
        user=subscriber.user, application=application, account=site.account, access=Connection.Access.READ
    )
    credential = SubscriberCredential(connection=connection)
    credential.set_jwt(jwt, jwt_times(jwt)[0])
    credential.save()
    return connection.pk


@pytest.fixture
async def caller(open_api, demo_users, close_limiter_redis):
    async def make():
        signed_in = await sign_in(open_api)
        connection_id = await run_db(_connection_with, signed_in.jwt, signed_in.customer_id)
        return SubscriberCaller(open_api, connection_id, ACME_SITE, ACCOUNT), signed_in

    return make


async def test_a_caller_acts_with_the_stored_jwt(caller):
    subscriber, signed_in = await caller()
    answer = await subscriber.call("POST", "/customer")
    assert answer.data["id"] == signed_in.customer_id


def later(subscriber: SubscriberCaller, by: timedelta) -> SubscriberCaller:
    """The same caller with its clock `by` later (Pelcro's clock is not moved)."""
    return dataclasses.replace(subscriber, now=lambda: datetime.now(UTC) + by)


async def test_a_jwt_is_used_as_is_until_a_day_before_expiry(caller, fresh_sbx):
    subscriber, signed_in = await caller()
    since = fresh_sbx.last_seq()
    answer = await later(subscriber, timedelta(days=58)).call("POST", "/customer")
    assert [e["path"].rsplit("/", 1)[-1] for e in fresh_sbx.log(since)] == ["customer"]  # no refresh
    credential = await run_db(SubscriberCredential.objects.get, connection_id=subscriber.connection_id)
    # Kept as signed in: the new JWT the answer carries is not stored while the stored one is
    # good (storing each would be a database write per call), and it is not a refresh.
    assert answer.token not in (None, signed_in.jwt)  # a new JWT came back (a random jti)...
    assert credential.refreshed_at is None
    assert credential.get_jwt() == signed_in.jwt  # ...and was not stored


async def test_a_jwt_near_its_expiry_is_refreshed_and_stored(caller, open_api):
    subscriber, signed_in = await caller()
    await asyncio.sleep(1.1)  # a later iat, so the new JWT differs
    await later(subscriber, timedelta(days=59, hours=1)).call("POST", "/customer")
    credential = await run_db(SubscriberCredential.objects.get, connection_id=subscriber.connection_id)
    assert credential.refreshed_at is not None and credential.get_jwt() != signed_in.jwt
    assert credential.expires_at > signed_in.expires_at
    with pytest.raises(CustomerTokenRejected):  # Pelcro blacklisted the old one
        await open_api.request("POST", "/customer", account_id=ACCOUNT, site_id=ACME_SITE, jwt=signed_in.jwt)


async def test_concurrent_refreshes_never_end_the_connection(caller, fresh_sbx):
    subscriber, _ = await caller()
    subscriber = later(subscriber, timedelta(days=59, hours=1))
    await asyncio.sleep(1.1)
    since = fresh_sbx.last_seq()
    answers = await asyncio.gather(*(subscriber.call("POST", "/customer") for _ in range(4)))
    assert all(a.status == 200 for a in answers)
    paths = [e["path"] for e in fresh_sbx.log(since)]
    assert sum(p.endswith("/customer/refresh") for p in paths) == 1, paths  # one refresh, then the new JWT
    connection = await run_db(Connection.objects.get, pk=subscriber.connection_id)
    assert connection.revoked_at is None


async def test_a_jwt_pelcro_blacklisted_ends_the_connection(caller, open_api):
    subscriber, signed_in = await caller()
    await open_api.logout(account_id=ACCOUNT, site_id=ACME_SITE, jwt=signed_in.jwt)  # signed out elsewhere
    with pytest.raises(ConnectionEnded) as ended:
        await subscriber.call("POST", "/customer")
    assert ended.value.status == 403 and "Sign in again" in ended.value.message
    connection = await run_db(Connection.objects.get, pk=subscriber.connection_id)
    assert connection.revoked_at is not None and connection.revoked_by == "pelcro"
    assert connection.revoked_at <= timezone.now()
    with pytest.raises(ConnectionEnded) as again:  # nothing more is sent for it
        await subscriber.call("POST", "/customer")
    assert again.value.status == 401
