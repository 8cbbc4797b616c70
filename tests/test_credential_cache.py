"""The per-process cache of token checks (mcp_bridge.edge.credential_cache) and the auth epoch.

A cached check must be reused while nothing it relied on changed, and must stop being
used on the very next request once something did: through the epoch (every save and
delete of what a check reads, and the revocation paths' bulk updates), through its maximum
age (changes made behind Django's back), when Redis cannot be read, and while the
database looks unreachable. The in-process tests use real Redis and the real database; the
end-to-end ones go through a live gateway.
"""

import asyncio
import time

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings
from django.utils import timezone
from oauth2_provider.models import get_access_token_model

from accounts import auth_epoch
from accounts.connections import revoke_connection
from accounts.models import Account, Connection, Membership, Site
from devtools.oauth_client import mcp_url, obtain_tokens
from mcp_bridge.edge.credential_cache import CredentialCache
from mcp_bridge.orm import DatabaseHealth
from tests.support.mcp import PASSWORDS

pytestmark = pytest.mark.sqlite


@pytest.fixture
def issued(mcp_env):
    """(raw access token of demo on acme, read and write; a cache for the gateway's resource)."""
    tokens = obtain_tokens(mcp_env.gateway.url, "demo", PASSWORDS["demo"], "acme")
    resource = mcp_url(mcp_env.gateway.url)
    with override_settings(PUBLIC_URL=mcp_env.gateway.url, MCP_RESOURCE_URL=resource):
        yield tokens["access_token"], CredentialCache(resource, database=DatabaseHealth(), max_age=60)


# One event loop (so one Redis connection) per test, as a gateway process has: checks are
# only reused on the connection they were made on. Between checks the test thread is free
# to use the ORM.
_loop: asyncio.AbstractEventLoop | None = None


@pytest.fixture(autouse=True)
def gateway_loop():
    global _loop
    _loop = asyncio.new_event_loop()
    yield _loop
    from mcp_bridge.upstream.redis_clients import close_redis_for_loop

    _loop.run_until_complete(close_redis_for_loop())
    _loop.close()
    _loop = None


def check(cache: CredentialCache, token: str):
    return _loop.run_until_complete(cache.credentials(token))


def revoke_behind_djangos_back() -> None:
    """Revoke the token's connection with hand-written SQL: no signal, no publishing
    QuerySet, so no new epoch (only the cache's maximum age bounds such changes)."""
    from django.db import connection as db

    with db.cursor() as cursor:
        cursor.execute(f"UPDATE {Connection._meta.db_table} SET revoked_at = %s", [timezone.now()])


def test_a_cached_check_is_reused_until_the_epoch_changes(issued):
    token, cache = issued
    first = check(cache, token)
    assert first is not None and first.principal.account_slug == "acme" and first.api_key
    assert 14 in first.sites and first.api_key not in repr(first)
    revoke_behind_djangos_back()
    assert check(cache, token) is first  # cached: the bulk update changed no epoch
    auth_epoch.bump()
    assert check(cache, token) is None  # the next request after a new epoch checks again


def test_every_revocation_path_changes_the_epoch(issued):
    token, cache = issued
    assert check(cache, token) is not None
    principal = check(cache, token).principal
    assert revoke_connection(Connection.objects.get(pk=principal.connection_id))
    assert check(cache, token) is None


def test_a_deactivated_user_is_refused_on_the_next_request(issued):
    token, cache = issued
    assert check(cache, token) is not None
    user = get_user_model().objects.get(username="demo")
    user.is_active = False
    user.save()
    assert check(cache, token) is None


def test_a_demoted_member_loses_write_on_the_next_request(issued):
    token, cache = issued
    assert check(cache, token).principal.can_write
    membership = Membership.objects.get(user__username="demo", account__slug="acme")
    membership.role = Membership.Role.MEMBER
    membership.save()  # its signal also revokes the read-write connection
    assert check(cache, token) is None


def test_new_sites_and_a_new_api_key_apply_on_the_next_request(issued):
    token, cache = issued
    before = check(cache, token)
    account = Account.objects.get(slug="acme")
    Site.objects.create(site_id=4242, account=account, name="Acme Extra")
    account.set_api_key("pk_test_rotated_0001")
    account.save()
    after = check(cache, token)
    assert after is not before
    assert after.sites[4242] == "Acme Extra" and after.api_key == "pk_test_rotated_0001"


def test_the_maximum_age_bounds_changes_made_behind_djangos_back(issued):
    token, _ = issued
    cache = CredentialCache(issued[1].resource, database=DatabaseHealth(), max_age=0.3)
    assert check(cache, token) is not None
    revoke_behind_djangos_back()
    assert check(cache, token) is not None  # still within the maximum age
    time.sleep(0.35)
    assert check(cache, token) is None


def test_an_expired_token_is_never_served_from_the_cache(issued):
    token, cache = issued
    row = get_access_token_model().objects.get(token_checksum__isnull=False, binding__isnull=False)
    row.expires = timezone.now() + timezone.timedelta(seconds=1)
    row.save()
    assert check(cache, token) is not None
    time.sleep(1.05)
    assert check(cache, token) is None


def test_without_redis_every_request_checks_the_database(issued, settings):
    token, cache = issued
    assert check(cache, token) is not None
    from mcp_bridge.upstream.redis_clients import close_redis_for_loop

    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there: the epoch is unreadable
    _loop.run_until_complete(close_redis_for_loop())  # the next client uses that URL
    revoke_behind_djangos_back()
    assert check(cache, token) is None


def test_while_the_database_looks_down_the_cache_is_not_trusted(issued):
    token, _ = issued
    database = DatabaseHealth()  # what the cache is told about the database
    cache = CredentialCache(issued[1].resource, database=database, max_age=60)
    assert check(cache, token) is not None
    database.note(False)  # a database call just found it unreachable
    revoke_behind_djangos_back()
    assert check(cache, token) is None


def test_bookkeeping_writes_do_not_change_the_epoch(issued):
    """Sign-ins write last_login and requests last_used_at; neither may flush every cache."""
    token, cache = issued
    first = check(cache, token)
    user = get_user_model().objects.get(username="demo")
    user.last_login = timezone.now()
    user.save(update_fields=["last_login"])
    assert check(cache, token) is first


def test_an_epoch_change_waits_for_the_commit(issued):
    """Inside a transaction the epoch changes only at commit: a reader that checked before
    the commit must not keep a stamp that outlives it."""
    from django.db import transaction

    token, cache = issued
    epoch_before = auth_epoch.redis_client().get(auth_epoch.epoch_key())
    with transaction.atomic():
        Site.objects.create(site_id=4343, account=Account.objects.get(slug="acme"), name="Late")
        assert auth_epoch.redis_client().get(auth_epoch.epoch_key()) == epoch_before
    assert auth_epoch.redis_client().get(auth_epoch.epoch_key()) != epoch_before


# --- Publishing fails closed (issue 12): a change that cannot reach Redis is refused ---------

DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens there


def test_bulk_updates_through_the_manager_apply_on_the_next_request(issued):
    """QuerySet.update() sends no signal; the models' PublishingQuerySet publishes it."""
    token, cache = issued
    assert check(cache, token).principal.can_write
    Membership.objects.filter(user__username="demo", account__slug="acme").update(role=Membership.Role.MEMBER)
    assert check(cache, token) is None  # read-write is no longer allowed to a member


def test_bookkeeping_bulk_updates_publish_nothing(issued):
    token, cache = issued
    first = check(cache, token)
    Connection.objects.filter(pk=first.principal.connection_id).update(last_used_at=timezone.now())
    assert check(cache, token) is first


@pytest.mark.parametrize(
    "change",
    [
        "revoke_connection",
        "deactivate_user",
        "demote_with_save",
        "demote_with_queryset_update",
        "remove_member",
        "delete_access_token",
        "rotate_api_key",
    ],
)
def test_a_change_that_cannot_be_published_is_refused_and_nothing_changes(issued, settings, change):
    from accounts.connections import revoke_connections

    token, cache = issued
    principal = check(cache, token).principal
    membership = Membership.objects.get(user__username="demo", account__slug="acme")
    user = get_user_model().objects.get(username="demo")
    account = Account.objects.get(slug="acme")

    def make_change():
        if change == "revoke_connection":
            revoke_connections(Connection.objects.filter(pk=principal.connection_id))
        elif change == "deactivate_user":
            user.is_active = False
            user.save()
        elif change == "demote_with_save":
            membership.role = Membership.Role.MEMBER
            membership.save()
        elif change == "demote_with_queryset_update":
            Membership.objects.filter(pk=membership.pk).update(role=Membership.Role.MEMBER)
        elif change == "remove_member":
            membership.delete()
        elif change == "delete_access_token":
            get_access_token_model().objects.filter(binding__connection_id=principal.connection_id).delete()
        elif change == "rotate_api_key":
            account.set_api_key("pk_test_rotated_0002")
            account.save()

    def state():
        return (
            Connection.objects.filter(pk=principal.connection_id, revoked_at__isnull=True).exists(),
            get_user_model().objects.get(pk=user.pk).is_active,
            list(Membership.objects.filter(pk=membership.pk).values_list("role", flat=True)),
            get_access_token_model().objects.filter(binding__connection_id=principal.connection_id).count(),
            Account.objects.get(pk=account.pk).api_key_last4,
        )

    before, redis_url = state(), settings.REDIS_URL
    settings.REDIS_URL = DEAD_REDIS  # this process cannot reach Redis; other processes can
    with pytest.raises(auth_epoch.EpochUnavailable, match="Nothing was changed"):
        make_change()
    assert state() == before
    settings.REDIS_URL = redis_url  # Redis is back
    make_change()
    assert state() != before
    after = check(cache, token)
    assert after is None or after.api_key == "pk_test_rotated_0002"


def test_while_a_change_is_in_flight_no_check_is_cached(issued):
    """Between hold (before the write) and release (after the commit) a check may read rows
    the change is about to replace: it is neither reused nor kept."""
    token, cache = issued
    first = check(cache, token)
    auth_epoch.hold()
    try:
        during = check(cache, token)
        assert during is not first and check(cache, token) is not during  # database every time
        assert len(cache) == 0
    finally:
        auth_epoch.release()
    again = check(cache, token)
    assert check(cache, token) is again  # cached again once nothing is in flight


def test_a_lost_release_keeps_caches_off_until_the_hold_expires_then_nothing_old_is_trusted(issued):
    """Redis went away after `hold` (the change committed, its release failed): every process
    stays off its cache while the hold lives, and no check from before the hold is reused
    after it (the epoch changed at the hold)."""
    token, cache = issued
    first = check(cache, token)
    assert first is not None
    auth_epoch.hold()  # and no release
    assert 0 < auth_epoch.redis_client().ttl(auth_epoch.holds_key()) <= auth_epoch.HOLD_SECONDS
    revoke_behind_djangos_back()  # the change, committed
    assert check(cache, token) is None
    auth_epoch.redis_client().delete(auth_epoch.holds_key())  # the hold expires
    assert check(cache, token) is None


# --- Through a live gateway -------------------------------------------------------------------


def call(name: str, arguments: dict, request_id: int = 1) -> dict:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }


def test_gateway_applies_a_role_change_on_the_next_request(mcp_env):
    token = mcp_env.token("acme")
    assert mcp_env.post(call("list_plans", {"site_id": 14}), token).status_code == 200  # now cached
    membership = Membership.objects.get(user__username="demo", account__slug="acme")
    membership.role = Membership.Role.MEMBER
    membership.save()
    response = mcp_env.post(call("list_plans", {"site_id": 14}), token)
    assert response.status_code == 401


def test_gateway_sees_a_new_site_on_the_next_request(mcp_env):
    token = mcp_env.token("acme")
    refused = mcp_env.post(call("list_plans", {"site_id": 4444}), token).json()["result"]
    assert refused["isError"] and refused["structuredContent"]["error"] == "unknown_site"
    Site.objects.create(site_id=4444, account=Account.objects.get(slug="acme"), name="Acme New")
    answer = mcp_env.post(call("list_plans", {"site_id": 4444}), token).json()["result"]
    # The site is the account's now; the sandbox does not know it, so the upstream answers.
    assert answer["structuredContent"].get("error") != "unknown_site"


def test_old_checks_are_forgotten(issued):
    """Checks hold decrypted API keys: past their maximum age they leave memory at the next
    check (of any token)."""
    token, _ = issued
    cache = CredentialCache(issued[1].resource, database=DatabaseHealth(), max_age=0.2)
    assert check(cache, token) is not None and len(cache) == 1
    time.sleep(0.25)
    assert check(cache, "not-a-token") is None
    assert len(cache) == 0


def test_nothing_checked_before_a_redis_reconnection_is_trusted_after_it(issued):
    """A Redis restarted from disk may hold an epoch from before a change made while it was
    down (whose bump failed): checks made before the reconnection are not reused."""
    from mcp_bridge.upstream.redis_clients import redis_for_loop

    async def drop_connection():
        await redis_for_loop().aclose()  # the client stays; its next command reconnects

    token, cache = issued
    first = check(cache, token)
    assert check(cache, token) is first  # cached on this connection
    revoke_behind_djangos_back()  # as if the bump had been lost with a Redis that was down
    _loop.run_until_complete(drop_connection())
    assert check(cache, token) is None
