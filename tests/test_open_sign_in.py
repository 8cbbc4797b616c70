"""A subscriber's sign-in through the Open API login (mcp_bridge.open.sign_in, issue 14
item 3): only on sites with subscriber access, one message for a wrong password and an
unknown e-mail, the lock-out's wait, the subscriber record made once, the password never
logged; against the running sandbox."""

from __future__ import annotations

import logging

import pytest
from oauth2_provider.models import get_application_model

from accounts.models import Connection, Site, Subscriber, SubscriberCredential
from mcp_bridge.open.client import OpenAPIClient
from mcp_bridge.open.sign_in import SignInRefused, keep_jwt, sign_in_subscriber
from mcp_bridge.orm import run_db
from mcp_bridge.upstream.gate import OpenGate
from tests.support.sandbox import ACME_SITE, READER, SECOND


@pytest.fixture
async def open_api(fresh_sbx, demo_users):
    client = OpenAPIClient(fresh_sbx.url + "/api/v1/sdk", gate=OpenGate(), backoff_base=0.01)
    yield client
    await client.aclose()


async def test_a_subscriber_signs_in_once_and_is_the_same_next_time(open_api, caplog):
    caplog.set_level(logging.DEBUG)
    first = await sign_in_subscriber(open_api, site_id=ACME_SITE, email=READER["email"], password=READER["password"])
    assert first.subscriber.site.site_id == ACME_SITE and first.subscriber.email == READER["email"]
    assert first.subscriber.customer_id == first.customer.customer_id
    again = await sign_in_subscriber(
        open_api, site_id=ACME_SITE, email=f"  {READER['email']} ", password=READER["password"]
    )
    assert again.subscriber.pk == first.subscriber.pk
    assert await run_db(Subscriber.objects.count) == 1
    assert READER["password"] not in caplog.text and first.customer.jwt not in caplog.text


async def test_wrong_password_and_unknown_email_get_one_message(open_api):
    messages = set()
    for email, password in ((READER["email"], "Wrong-Pass-1!"), ("nobody@example.com", "Wrong-Pass-1!")):
        with pytest.raises(SignInRefused) as refused:
            await sign_in_subscriber(open_api, site_id=ACME_SITE, email=email, password=password)
        messages.add(refused.value.message)
    assert len(messages) == 1 and "do not match" in messages.pop()
    assert not await run_db(Subscriber.objects.exists)


async def test_only_sites_with_subscriber_access(open_api, fresh_sbx):
    await run_db(lambda: Site.objects.filter(site_id=ACME_SITE).update(subscriber_access_enabled=False))
    since = fresh_sbx.last_seq()
    for site_id in (ACME_SITE, 999_999):  # switched off; unknown to the gateway
        with pytest.raises(SignInRefused, match="does not offer sign-in"):
            await sign_in_subscriber(open_api, site_id=site_id, email=READER["email"], password=READER["password"])
    assert fresh_sbx.log(since) == []  # the password was never sent anywhere


async def test_the_lock_out_says_how_long_to_wait(open_api):
    for _ in range(10):
        with pytest.raises(SignInRefused):
            await sign_in_subscriber(open_api, site_id=ACME_SITE, email=SECOND["email"], password="Wrong-1!x")
    with pytest.raises(SignInRefused, match="Too many sign-in attempts") as locked:
        await sign_in_subscriber(open_api, site_id=ACME_SITE, email=SECOND["email"], password=SECOND["password"])
    assert locked.value.retry_after >= 1


async def test_empty_fields_are_refused_before_pelcro(open_api, fresh_sbx):
    since = fresh_sbx.last_seq()
    with pytest.raises(SignInRefused, match="Enter the e-mail address and password"):
        await sign_in_subscriber(open_api, site_id=ACME_SITE, email=" ", password="")
    assert fresh_sbx.log(since) == []


async def test_the_connection_keeps_the_jwt(open_api):
    signed_in = await sign_in_subscriber(
        open_api, site_id=ACME_SITE, email=READER["email"], password=READER["password"]
    )

    def connect():
        application = get_application_model().objects.create(
            name="App",
            client_type="public",
            authorization_grant_type="authorization-code",
            redirect_uris="http://127.0.0.1/cb",
        )
        connection = Connection.objects.create(
            user=signed_in.subscriber.user, application=application, account_id=signed_in.subscriber.site.account_id
        )
        keep_jwt(connection, signed_in.customer)
        keep_jwt(connection, signed_in.customer)  # replaced, not duplicated
        return SubscriberCredential.objects.get(connection=connection)

    credential = await run_db(connect)
    assert credential.get_jwt() == signed_in.customer.jwt and credential.expires_at == signed_in.customer.expires_at
    assert signed_in.customer.jwt not in credential.jwt_encrypted
