"""Each account's own Core API limit, read from Pelcro (GET /account on the sandbox): when
an admin saves a key, on a schedule (Celery task), in the shared limiter, on the ops pages
and in /metrics. The compressed-window test through the gateway is in
test_ratelimit_gateway.py."""

import asyncio
import uuid

import pytest
from django.contrib.auth import get_user_model

from accounts.models import Account, Site
from mcp_bridge.core.account_refresh import refresh_account
from mcp_bridge.core.tasks import refresh_account as refresh_account_task
from mcp_bridge.core.tasks import refresh_accounts
from mcp_bridge.upstream.limiter import LimitConfig, RedisRateGate
from mcp_bridge.upstream.redis_clients import close_redis_for_loop
from tests.support.ratelimit import delete_account_keys
from tests.support.sandbox import KEYS

pytestmark = pytest.mark.django_db


@pytest.fixture
def upstream(sbx, settings):
    """The gateway in this process talks to the session's sandbox."""
    settings.PELCRO_GATEWAY = {**settings.PELCRO_GATEWAY, "CORE_API_BASE_URL": sbx.base}
    return sbx


@pytest.fixture
def other(db):
    """The demo account "other" (360 requests per minute in the sandbox), without its sites."""
    account = Account.objects.create(name="Other Press", slug=f"other-{uuid.uuid4().hex[:6]}")
    account.set_api_key(KEYS["other"])
    account.save()
    yield account
    delete_account_keys(account.id)


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("limits-root", "root@example.com", "pw-for-tests-1")
    client.force_login(user)
    return client


def account_form(account: Account, **changes) -> dict:
    return {
        "name": account.name,
        "slug": account.slug,
        "api_key": "",
        "api_core_rate_limit": "",
        "sites-TOTAL_FORMS": "0",
        "sites-INITIAL_FORMS": "0",
        "sites-MIN_NUM_FORMS": "0",
        "sites-MAX_NUM_FORMS": "1000",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
        **changes,
    }


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_refresh_reads_the_limit_and_sites_from_get_account(upstream, other):
    before = upstream.last_seq()
    outcome = refresh_account(other, background=False)
    assert outcome.ok, outcome.message
    other.refresh_from_db()
    assert (other.rate_limit, other.rate_limit_source) == (360, Account.LimitSource.UPSTREAM)
    assert other.upstream_read_at is not None and other.upstream_read_error == ""
    site = Site.objects.get(account=other)
    assert (site.site_id, site.name, site.source) == (27, "Other Gazette", Site.Source.UPSTREAM)
    assert site.url.startswith("https://")
    # One request, GET /account, without a site_id.
    sent = upstream.log(since=before, account="other")
    assert [(e["method"], e["path"], e["query"]) for e in sent] == [("GET", "/api/v1/core/account", "")]
    Site.objects.filter(account=other).delete()


def test_a_key_that_cannot_read_account_keeps_what_is_stored(upstream, other):
    other.set_api_key("sbx_not_a_real_key_0000")
    other.save()
    outcome = refresh_account(other, background=False)
    assert not outcome.ok and "rejected the API key (401)" in outcome.message
    other.refresh_from_db()
    assert (other.rate_limit, other.rate_limit_source) == (120, Account.LimitSource.DEFAULT)
    assert "401" in other.upstream_read_error and not Site.objects.filter(account=other).exists()


def test_saving_a_key_in_the_admin_reads_the_account(upstream, other, admin_client):
    url = f"/admin/accounts/account/{other.pk}/change/"
    response = admin_client.post(url, account_form(other, api_key=KEYS["other"]), follow=True)
    assert response.status_code == 200
    message = next(m for m in messages_of(response) if "GET /account" in m)
    assert "Read from Pelcro (GET /account): rate limit 360/min (was 120); sites added: 27." in message
    other.refresh_from_db()
    assert other.rate_limit == 360 and Site.objects.filter(account=other, site_id=27).exists()
    Site.objects.filter(account=other).delete()


def test_a_key_the_admin_saves_that_cannot_read_account_is_saved_with_a_clear_message(upstream, other, admin_client):
    url = f"/admin/accounts/account/{other.pk}/change/"
    response = admin_client.post(
        url,
        account_form(
            other,
            api_key="sbx_typo_key_1234",
            api_core_rate_limit="300",
            **{"sites-TOTAL_FORMS": "1", "sites-0-site_id": "27", "sites-0-name": "Typed by hand", "sites-0-url": ""},
        ),
        follow=True,
    )
    message = next(m for m in messages_of(response) if "GET /account" in m)
    assert "could not read GET /account" in message and "rejected the API key (401)" in message
    assert "stays 300/min (manual)" in message and "sites can be entered by hand" in message
    other.refresh_from_db()
    assert other.api_key_last4 == "1234" and other.rate_limit == 300  # saved anyway
    assert Site.objects.get(site_id=27).source == Site.Source.MANUAL
    assert "sbx_typo_key_1234" not in response.content.decode()  # the key is never shown
    Site.objects.filter(account=other).delete()


def test_the_scheduled_task_reads_every_account_with_a_key(upstream, other, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from pelcro_gateway.celery import app

    app.conf.task_always_eager = True
    try:
        keyless = Account.objects.create(name="No key", slug=f"nokey-{uuid.uuid4().hex[:6]}")
        assert refresh_accounts.apply().get() == Account.objects.exclude(api_key_encrypted="").count()
        other.refresh_from_db()
        assert other.rate_limit == 360 and other.rate_limit_source == Account.LimitSource.UPSTREAM
        keyless.refresh_from_db()
        assert keyless.upstream_read_at is None
        assert refresh_account_task.apply(args=[other.id]).get() is True
    finally:
        app.conf.task_always_eager = False
        Site.objects.filter(account=other).delete()
    assert "refresh-accounts" in settings.CELERY_BEAT_SCHEDULE


def test_the_limiter_grants_each_account_its_own_limit_minus_the_margin(other):
    config = LimitConfig(limit=120, window=60.0, margin=2, wait_budget=0.0, background_share=0.5)
    default_account = other.id
    own_account = other.id + 10_000_000  # a second key space: the limiter only keys by id

    async def granted(account_id: int, limit: int | None) -> int:
        gate = RedisRateGate(config)
        count = 0
        for _ in range(400):
            if not (await gate.try_acquire(account_id, limit=limit)).allowed:
                break
            count += 1
        await close_redis_for_loop()
        return count

    try:
        assert asyncio.run(granted(default_account, None)) == 118
        assert asyncio.run(granted(own_account, 360)) == 358
        assert config.for_limit(1).cap == 1  # the margin never leaves less than one
    finally:
        delete_account_keys(own_account)


def test_ops_pages_and_metrics_show_each_accounts_limit_and_its_source(upstream, other, client, settings):
    staff = get_user_model().objects.create_user("limits-staff", password="x-staff-pass-1", is_staff=True)
    client.force_login(staff)
    manual = Account.objects.create(
        name="Hand Typed",
        slug=f"hand-{uuid.uuid4().hex[:6]}",
        api_core_rate_limit=200,
        rate_limit_source=Account.LimitSource.MANUAL,
    )
    assert refresh_account(other, background=False).ok
    try:
        rows = {row["id"]: row for row in client.get("/ops/api/accounts").json()["accounts"]}
        # remaining: the GET /account itself went through the limiter and counts.
        assert {k: rows[other.id][k] for k in ("limit", "limit_source", "cap", "remaining", "limit_read_error")} == {
            "limit": 360,
            "limit_source": "upstream",
            "cap": 358,
            "remaining": 357,
            "limit_read_error": "",
        }
        assert rows[other.id]["limit_read_at"].endswith("Z")
        assert (rows[manual.id]["limit"], rows[manual.id]["limit_source"], rows[manual.id]["cap"]) == (
            200,
            "manual",
            198,
        )
        detail = client.get(f"/ops/api/accounts/{other.id}").json()
        assert (detail["limit"]["limit"], detail["limit"]["cap"], detail["account"]["limit"]) == (360, 358, 360)
        page = client.get("/ops/").content.decode()
        assert '<td class="num" data-label="Limit" data-cell="limit">360 <span class="account-slug">from Pelcro' in page
        account_page = client.get(f"/ops/accounts/{other.id}/").content.decode()
        assert "358 requests per 60 s (limit 360, from Pelcro's GET /account)" in account_page
        settings.PELCRO_GATEWAY = {**settings.PELCRO_GATEWAY, "METRICS_TOKEN": "scrape-secret"}
        metrics = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret").content.decode()
        assert f'pelcro_ratelimit_cap{{account="{other.slug}"}} 358.0' in metrics
    finally:
        Site.objects.filter(account=other).delete()
        delete_account_keys(manual.id)
