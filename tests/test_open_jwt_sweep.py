"""No subscriber's Pelcro sign-in outlives its connection (issue 14): however an Open
connection ends, its Pelcro JWT is signed out at Pelcro and deleted
(`mcp_bridge.open.sign_out`, `mcp_bridge.open.tasks`), against the sandbox's real Open API
over HTTP, the test database and Redis:

- the app revoking its own token (RFC 7009 `/oauth/revoke`) at a live gateway queues the
  sign-out on commit, and a real Celery worker signs the JWT out within seconds: the sandbox
  then refuses it (403) and no credential row is left; neither log holds the JWT;
- a connection Pelcro ended (`revoked_by = "pelcro"`): its JWT is deleted with no logout
  request (the sandbox's log);
- a site's subscriber access turned off (a save: at once; a bulk update: by the sweep) ends
  its subscribers' connections, and their JWTs are signed out; another site's stay; a site
  deleted ends them too;
- the sweep ends dead connections (no usable OAuth token left; a JWT past its expiry) and
  leaves live ones alone;
- Pelcro down: the JWT is kept for the next run and the failure logged without it; the next
  run signs it out; each run handles at most OPEN_JWT_SWEEP_BATCH;
- the JWT of an authorization code never redeemed is signed out once the code has expired.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_refresh_token_model

from accounts import crypto
from accounts.connections import revoke_connection
from accounts.models import AuthorizationConsent, Connection, ConsentCredential, Site, SubscriberCredential
from devtools.oauth_client import obtain_open_tokens, register_client, subscriber_authorize
from mcp_bridge.open import tasks
from tests.support.mcp import OUT_OF_REACH
from tests.support.open import mcp_initialize, open_connection, pelcro_status
from tests.support.ratelimit import WorkerProcess
from tests.support.sandbox import READER, SECOND, SUBSCRIBERS
from tests.support.servers import start_gateway

pytestmark = pytest.mark.sqlite

WEEKLY = next(s for s in SUBSCRIBERS if s["site_id"] == 15)  # a customer of acme's other site


@pytest.fixture
def env(mcp_env, fresh_sbx, settings):
    """The session's gateway and the freshly seeded sandbox (`env.sbx`: its log and knobs);
    the tasks called here reach that sandbox's Open API."""
    mcp_env.sbx = fresh_sbx
    settings.PELCRO_GATEWAY = {**settings.PELCRO_GATEWAY, "OPEN_API_BASE_URL": mcp_env.sandbox.url + "/api/v1/sdk"}
    return mcp_env


def logouts(env, since: int) -> list[dict]:
    return [e for e in env.sbx.log(since) if e["path"].endswith("/auth/logout")]


def mcp_status(gateway_url: str, token: str) -> int:
    return mcp_initialize(gateway_url, token).status_code


def held(connection_id: int) -> bool:
    return SubscriberCredential.objects.filter(connection_id=connection_id).exists()


# --- the prompt path: a real worker --------------------------------------------------------------


@pytest.fixture(scope="module")
def sweep_stack(django_db_setup, django_db_blocker, mcp_sandbox):
    """A gateway and a Celery worker of their own (their own Redis key prefix, so the queue
    is theirs: no other test's worker takes these tasks, and theirs none of others')."""
    from django.conf import settings
    from django.db import connection

    from devtools.servers import database_url_of

    prefix = settings.REDIS_KEY_PREFIX + "jwtsweep:"
    common = {
        "REDIS_KEY_PREFIX": prefix,
        "RATE_LIMIT": OUT_OF_REACH,
        "OPEN_SITE_RATE_LIMIT": OUT_OF_REACH,
        "OPEN_SUBSCRIBER_RATE_LIMIT": OUT_OF_REACH,
        "AUTH_CACHE_SECONDS": "0",  # the test process publishes its changes under another prefix
    }
    with django_db_blocker.unblock():
        gateway = start_gateway(mcp_sandbox, **common)
        worker = WorkerProcess(
            {
                **common,
                "DATABASE_URL": database_url_of(connection.settings_dict),
                "OPEN_API_BASE_URL": mcp_sandbox.url + "/api/v1/sdk",
                "CORE_API_BASE_URL": mcp_sandbox.url + "/api/v1/core",
            }
        ).start()
    yield gateway, worker
    worker.stop()
    gateway.stop()


def test_an_app_revoking_its_token_gets_its_jwt_signed_out_by_the_worker(env, sweep_stack):
    gateway, worker = sweep_stack
    tokens = obtain_open_tokens(
        gateway.url, READER["site_id"], READER["email"], READER["password"], client_name="Revoker"
    )
    connection = Connection.objects.get(application__client_id=tokens["client_id"])
    jwt = SubscriberCredential.objects.get(connection=connection).get_jwt()
    assert mcp_status(gateway.url, tokens["access_token"]) == 200 and pelcro_status(env, jwt) == 200
    since = env.sbx.last_seq()

    revoked = httpx.post(
        gateway.url + "/oauth/revoke",
        data={"token": tokens["access_token"], "client_id": tokens["client_id"]},
        timeout=30,
    )
    assert revoked.status_code == 200, revoked.text
    connection.refresh_from_db()
    assert connection.revoked_by == "client" and mcp_status(gateway.url, tokens["access_token"]) == 401

    # Nobody calls anything: the worker signs the JWT out from the task queued on commit.
    deadline = time.monotonic() + 30
    while held(connection.pk) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not held(connection.pk), f"still held after 30 s; worker log:\n{worker.log_text()[-3000:]}"
    assert pelcro_status(env, jwt) == 403  # blacklisted at Pelcro
    assert [e["status"] for e in logouts(env, since)] == [200]
    assert "mcp_bridge.open.tasks.sign_out_connections" in worker.log_text()
    assert jwt not in worker.log_text() and jwt not in gateway.log_text()


# --- calling the tasks directly -------------------------------------------------------------------


def test_a_connection_pelcro_ended_has_its_jwt_deleted_without_a_logout(env):
    mine = open_connection(env)
    since = env.sbx.last_seq()
    assert revoke_connection(Connection.objects.get(pk=mine.connection_id), by="pelcro")

    assert tasks.sign_out_connections([mine.connection_id]) == {"dropped": 1}
    assert not held(mine.connection_id)
    assert logouts(env, since) == []  # Pelcro refused it already: nothing sent
    assert pelcro_status(env, mine.jwt) == 200  # (here it did not really: proof no logout went out)


def test_turning_a_sites_subscriber_access_off_ends_its_connections_and_signs_them_out(env):
    reader, second = open_connection(env, READER), open_connection(env, SECOND)
    weekly = open_connection(env, WEEKLY)  # site 15: stays
    site = Site.objects.get(site_id=READER["site_id"])
    site.subscriber_access_enabled = False
    site.save()

    # At once: revoked (marked "site") and refused at /open, before any sweep.
    for mine in (reader, second):
        assert Connection.objects.get(pk=mine.connection_id).revoked_by == "site"
        assert mcp_status(env.gateway.url, mine.token) == 401
    since = env.sbx.last_seq()
    done = tasks.sweep_sign_ins()
    assert done == {"ended": 0, "signed_out": 2}
    for mine in (reader, second):
        assert not held(mine.connection_id) and pelcro_status(env, mine.jwt) == 403
    assert len(logouts(env, since)) == 2
    # The other site's subscriber keeps their connection and sign-in.
    assert Connection.objects.get(pk=weekly.connection_id).revoked_at is None and held(weekly.connection_id)
    assert mcp_status(env.gateway.url, weekly.token) == 200 and pelcro_status(env, weekly.jwt, 15) == 200


def test_a_site_pelcro_no_longer_lists_ends_its_connections(env, caplog):
    reader = open_connection(env)
    Site.objects.get(site_id=READER["site_id"]).delete()  # as an account refresh does
    connection = Connection.objects.get(pk=reader.connection_id)
    assert connection.revoked_by == "site" and mcp_status(env.gateway.url, reader.token) == 401
    # Its subscriber record went with it: no site to sign out at, so the JWT is only deleted.
    assert tasks.sign_out_connections([reader.connection_id]) == {"dropped": 1}
    assert not held(reader.connection_id)
    assert f"connection {reader.connection_id}: its subscriber record is gone" in caplog.text
    assert reader.jwt not in caplog.text


def test_a_bulk_switch_off_is_caught_by_the_sweep(env):
    reader = open_connection(env)
    Site.objects.filter(site_id=READER["site_id"]).update(subscriber_access_enabled=False)  # no signal
    assert Connection.objects.get(pk=reader.connection_id).revoked_at is None
    assert mcp_status(env.gateway.url, reader.token) == 401  # refused all the same

    assert tasks.sweep_sign_ins() == {"ended": 1, "signed_out": 1}
    assert Connection.objects.get(pk=reader.connection_id).revoked_by == "site"
    assert not held(reader.connection_id) and pelcro_status(env, reader.jwt) == 403


def test_the_sweep_ends_dead_connections_and_leaves_live_ones(env):
    now = timezone.now()
    old = now - timedelta(minutes=10)
    AccessToken, RefreshToken = get_access_token_model(), get_refresh_token_model()

    # No token left that works or refreshes: ended and signed out.
    abandoned = open_connection(env)
    AccessToken.objects.filter(binding__connection_id=abandoned.connection_id).update(expires=now - timedelta(hours=1))
    # A JWT past its expiry (Pelcro refuses it): ended, deleted without a logout.
    expired = open_connection(env, SECOND)
    SubscriberCredential.objects.filter(connection_id=expired.connection_id).update(
        expires_at=now - timedelta(minutes=1)
    )
    # Its access token expired, but its refresh token still works: kept.
    refreshable = open_connection(env)
    token = AccessToken.objects.get(binding__connection_id=refreshable.connection_id)
    AccessToken.objects.filter(pk=token.pk).update(expires=now - timedelta(hours=1))
    RefreshToken.objects.create(user=token.user, application=token.application, token="r-live", access_token=token)
    # Dead by its tokens but only just made: kept (the code exchange may still be writing it).
    young = open_connection(env, WEEKLY)
    AccessToken.objects.filter(binding__connection_id=young.connection_id).update(expires=now - timedelta(hours=1))
    live = open_connection(env, SECOND)
    Connection.objects.exclude(pk=young.connection_id).update(created_at=old)
    since = env.sbx.last_seq()

    assert tasks.sweep_sign_ins() == {"ended": 2, "signed_out": 1, "dropped": 1}
    for mine in (abandoned, expired):
        assert Connection.objects.get(pk=mine.connection_id).revoked_by == "expired"
        assert not held(mine.connection_id)
    assert pelcro_status(env, abandoned.jwt) == 403
    assert len(logouts(env, since)) == 1  # the expired JWT's logout was not sent
    for mine in (refreshable, young, live):
        assert Connection.objects.get(pk=mine.connection_id).revoked_at is None and held(mine.connection_id)
    assert pelcro_status(env, live.jwt) == 200 and mcp_status(env.gateway.url, live.token) == 200


def test_pelcro_down_keeps_the_jwt_for_the_next_run_and_logs_no_secret(env, caplog):
    mine = open_connection(env)
    assert revoke_connection(Connection.objects.get(pk=mine.connection_id), by="client")
    env.sbx.configure(error_rate=1.0)  # every answer a 5xx, as if Pelcro were down
    try:
        with caplog.at_level(logging.WARNING, logger="mcp_bridge.open.sign_out"):
            assert tasks.sweep_sign_ins() == {"ended": 0, "failed": 1}
    finally:
        env.sbx.restore_config()
    assert SubscriberCredential.objects.get(connection_id=mine.connection_id).get_jwt() == mine.jwt  # nothing lost
    assert pelcro_status(env, mine.jwt) == 200  # and honestly not signed out yet
    assert f"connection {mine.connection_id}: Pelcro logout failed" in caplog.text
    assert mine.jwt not in caplog.text

    since = env.sbx.last_seq()
    assert tasks.sweep_sign_ins() == {"ended": 0, "signed_out": 1}  # Pelcro is back
    assert not held(mine.connection_id) and pelcro_status(env, mine.jwt) == 403
    assert [e["status"] for e in logouts(env, since)] == [200]


def test_each_run_signs_out_at_most_a_batch(env, settings):
    settings.PELCRO_GATEWAY = {**settings.PELCRO_GATEWAY, "OPEN_JWT_SWEEP_BATCH": 2}
    mine = [open_connection(env, who) for who in (READER, SECOND, READER)]
    for each in mine:
        assert revoke_connection(Connection.objects.get(pk=each.connection_id), by="client")

    assert tasks.sweep_sign_ins() == {"ended": 0, "signed_out": 2}
    assert sum(held(each.connection_id) for each in mine) == 1
    assert tasks.sweep_sign_ins() == {"ended": 0, "signed_out": 1}
    assert not any(held(each.connection_id) for each in mine)
    assert all(pelcro_status(env, each.jwt) == 403 for each in mine)
    assert tasks.sweep_sign_ins() == {"ended": 0}  # nothing left: an idle run


def test_the_jwt_of_a_code_never_redeemed_is_signed_out_once_the_code_expired(env):
    client = register_client(env.gateway.url, client_name="Never comes back")
    with httpx.Client(base_url=env.gateway.url, timeout=30, follow_redirects=False) as session:
        subscriber_authorize(
            session, env.gateway.url, client["client_id"], READER["site_id"], READER["email"], READER["password"]
        )
    pending = ConsentCredential.objects.get(consent__application__client_id=client["client_id"])
    jwt = crypto.decrypt(pending.jwt_encrypted)
    assert pelcro_status(env, jwt) == 200

    assert tasks.sweep_sign_ins() == {"ended": 0}  # its code may still be redeemed: left alone
    assert ConsentCredential.objects.filter(pk=pending.pk).exists()
    ConsentCredential.objects.filter(pk=pending.pk).update(created_at=timezone.now() - timedelta(minutes=3))
    since = env.sbx.last_seq()
    assert tasks.sweep_sign_ins() == {"ended": 0, "signed_out": 1}
    assert not ConsentCredential.objects.filter(pk=pending.pk).exists()
    assert AuthorizationConsent.objects.filter(pk=pending.consent_id).exists()  # the clean-up's, a day later
    assert pelcro_status(env, jwt) == 403 and [e["status"] for e in logouts(env, since)] == [200]


def test_an_unredeemed_codes_jwt_a_connection_holds_too_is_never_signed_out(env):
    """Two codes of one sign-in (what a double-clicked Allow once made): signing the unused
    code's copy out would end the connection made with the other."""
    client = register_client(env.gateway.url, client_name="Double click")
    with httpx.Client(base_url=env.gateway.url, timeout=30, follow_redirects=False) as session:
        subscriber_authorize(
            session, env.gateway.url, client["client_id"], READER["site_id"], READER["email"], READER["password"]
        )
    pending = ConsentCredential.objects.get(consent__application__client_id=client["client_id"])
    live = open_connection(env)
    SubscriberCredential.objects.filter(connection_id=live.connection_id).update(jwt_encrypted=pending.jwt_encrypted)
    ConsentCredential.objects.filter(pk=pending.pk).update(created_at=timezone.now() - timedelta(minutes=3))
    since = env.sbx.last_seq()

    assert tasks.sweep_sign_ins() == {"ended": 0, "dropped": 1}
    assert not ConsentCredential.objects.filter(pk=pending.pk).exists() and logouts(env, since) == []
    assert pelcro_status(env, crypto.decrypt(pending.jwt_encrypted)) == 200
    assert mcp_status(env.gateway.url, live.token) == 200
