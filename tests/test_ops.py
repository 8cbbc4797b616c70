"""The ops dashboard, its JSON API, /metrics and the per-minute roll-up (Django in-process,
real Redis and database). The browser test is in test_ops_browser.py."""

import asyncio
import re
import time
import uuid
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts.models import Account
from mcp_bridge.models import ToolCall
from mcp_bridge.upstream.limiter import RedisRateGate
from mcp_bridge.upstream.redis_clients import close_redis_for_loop
from ops.models import UsageMinute
from ops.rollups import rollup_usage
from tests.support.ratelimit import delete_account_keys

pytestmark = pytest.mark.django_db


@pytest.fixture
def account():
    account = Account.objects.create(name="Ops Test Media", slug=f"ops-{uuid.uuid4().hex[:8]}")
    yield account
    delete_account_keys(account.id)


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_user("ops-staff", password="x-staff-pass-1", is_staff=True)
    client.force_login(user)
    return client


@pytest.fixture
def member_client(client):
    user = get_user_model().objects.create_user("ops-member", password="x-member-pass-1")
    client.force_login(user)
    return client


def use_slots(account_id: int, count: int, *, background: bool = False, upstream_429: bool = False) -> None:
    async def run():
        gate = RedisRateGate()
        for _ in range(count):
            await gate.acquire(account_id, background=background)
        if upstream_429:
            await gate.upstream_rate_limited(account_id, 30)
        await close_redis_for_loop()

    asyncio.run(run())


@pytest.mark.parametrize("path", ["/ops/", "/ops/accounts/1/"])
def test_anonymous_visitors_are_sent_to_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == "/login?next=" + path


@pytest.mark.parametrize("path", ["/ops/", "/ops/accounts/{id}/", "/ops/api/accounts", "/ops/api/accounts/{id}"])
def test_signed_in_non_staff_get_403(member_client, account, path):
    response = member_client.get(path.format(id=account.id))
    assert response.status_code == 403
    if "/api/" in path:
        assert "permission" in response.json()["detail"]
    else:  # the branded page: why, and a way back
        html = response.content.decode()
        assert "The ops dashboard is for the gateway&#x27;s staff only" in html
        assert 'href="/connections"' in html and "Error 403" in html


def test_anonymous_api_calls_get_403(client, account):
    assert client.get("/ops/api/accounts").status_code == 403


def test_dashboard_api_shows_the_live_limiter_state(staff_client, account):
    use_slots(account.id, 5)
    use_slots(account.id, 2, background=True)
    body = staff_client.get("/ops/api/accounts").json()
    assert body["limit"]["cap"] == 118 and body["limit"]["background_cap"] == 59
    row = next(r for r in body["accounts"] if r["id"] == account.id)
    assert row["in_window"] == 7
    assert row["background_in_window"] == 2
    assert row["remaining"] == 111
    assert row["calls_last_hour"] == 7
    assert row["waiting"] == 0 and row["active_connections"] == 0

    use_slots(account.id, 1, upstream_429=True)
    row = next(r for r in staff_client.get("/ops/api/accounts").json()["accounts"] if r["id"] == account.id)
    assert row["in_window"] == 8
    assert row["upstream_429s_last_hour"] == 1
    assert row["remaining"] == 0 and 29 <= row["blocked_for"] <= 30


def test_dashboard_page_renders_every_account(staff_client, account):
    use_slots(account.id, 3)
    response = staff_client.get("/ops/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Ops Test Media" in html
    assert 'src="/static/ops/dashboard.js"' in html
    assert "<script>" not in html  # CSP: script-src 'self', no inline code
    assert response["Cache-Control"] == "no-store"


def test_account_api_has_an_hour_per_minute_and_the_latest_tool_calls(staff_client, account):
    use_slots(account.id, 4)
    ToolCall.objects.create(
        created_at=timezone.now(),
        account=account,
        account_slug=account.slug,
        tool="list_invoices",
        outcome=ToolCall.Outcome.OK,
        username="demo",
        client_name="Claude",
        site_id=14,
        upstream_status=200,
        latency_ms=42,
    )
    body = staff_client.get(f"/ops/api/accounts/{account.id}").json()
    assert len(body["per_minute"]) == 60
    assert body["per_minute"][-1]["calls"] == 4
    assert sum(m["calls"] for m in body["per_minute"]) == 4
    assert body["limit"]["cap_per_minute"] == 118.0
    assert body["tool_calls"][0] == {
        "at": body["tool_calls"][0]["at"],
        "server": "core",
        "tool": "list_invoices",
        "outcome": "ok",
        "refused_locally": False,
        "user": "demo",
        "customer_id": None,
        "client": "Claude",
        "site_id": 14,
        "upstream_status": 200,
        "latency_ms": 42,
    }
    assert staff_client.get(f"/ops/accounts/{account.id}/").status_code == 200
    assert staff_client.get("/ops/api/accounts/999999999").status_code == 404


def test_metrics_expose_limiter_decisions_and_state(client, account, settings):
    settings.PELCRO_GATEWAY = {**settings.PELCRO_GATEWAY, "METRICS_TOKEN": "scrape-secret"}
    use_slots(account.id, 3)
    text = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret").content.decode()
    assert re.search(r'pelcro_ratelimit_decisions_total\{decision="granted",kind="interactive"\} \d', text)
    assert f'pelcro_ratelimit_in_window{{account="{account.slug}"}} 3.0' in text
    assert f'pelcro_ratelimit_remaining{{account="{account.slug}"}} 115.0' in text
    assert "pelcro_ratelimit_redis_up 1.0" in text
    assert "# TYPE pelcro_tool_calls_total counter" in text
    assert "# TYPE pelcro_upstream_request_duration_seconds histogram" in text


def test_without_a_metrics_token_no_account_is_named(client, account, settings):
    """Dev without METRICS_TOKEN (outside dev it is required, system check E016): /metrics
    answers anyone, so it lists no account's slug or live usage."""
    settings.PELCRO_GATEWAY = {**settings.PELCRO_GATEWAY, "METRICS_TOKEN": ""}
    use_slots(account.id, 3)
    text = client.get("/metrics").content.decode()
    assert "pelcro_ratelimit_redis_up 1.0" in text
    assert 'account="' not in text and account.slug not in text
    assert "pelcro_ratelimit_in_window" not in text


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer scrape-secret",
        "bearer scrape-secret",  # the scheme is case-insensitive (RFC 7235 §2.1)
        "BEARER scrape-secret",
        "Bearer   scrape-secret",  # 1*SP between scheme and token
        "  Bearer scrape-secret  ",  # blanks around a field value are not part of it
    ],
)
def test_metrics_take_the_token_as_a_bearer_credential(client, settings, authorization):
    settings.PELCRO_GATEWAY = {**settings.PELCRO_GATEWAY, "METRICS_TOKEN": "scrape-secret"}
    assert client.get("/metrics", HTTP_AUTHORIZATION=authorization).status_code == 200


@pytest.mark.parametrize(
    ("authorization", "error"),
    [
        (None, None),
        ("scrape-secret", None),  # the bare token: no scheme, so no Bearer credentials
        ("Basic scrape-secret", None),
        ("Bearerscrape-secret", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("Bearer wrong", "invalid_token"),
        ("Bearer scrape-secret2", "invalid_token"),
        ("Bearer scrape-secre", "invalid_token"),
        ("Bearer scrape-secret extra", "invalid_token"),
    ],
)
def test_metrics_refuse_anything_but_the_bearer_token_saying_what_to_send(client, settings, authorization, error):
    """RFC 6750 §3.1: 401 with `WWW-Authenticate: Bearer`; an error code only when Bearer
    credentials were sent and are wrong."""
    settings.PELCRO_GATEWAY = {**settings.PELCRO_GATEWAY, "METRICS_TOKEN": "scrape-secret"}
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    response = client.get("/metrics", **headers)
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert ('error="invalid_token"' in challenge) == (error == "invalid_token"), challenge
    assert "send the header 'Authorization: Bearer <METRICS_TOKEN>'" in response.content.decode()
    assert "pelcro_ratelimit" not in response.content.decode()


def test_metrics_compare_the_token_in_constant_time(client, settings, monkeypatch):
    """The token goes through hmac.compare_digest (no early exit on the first wrong byte)."""
    from ops import prometheus

    settings.PELCRO_GATEWAY = {**settings.PELCRO_GATEWAY, "METRICS_TOKEN": "scrape-secret"}
    compared = []

    def compare_digest(a, b):
        compared.append((a, b))
        return a == b

    monkeypatch.setattr(prometheus, "hmac", SimpleNamespace(compare_digest=compare_digest))
    assert client.get("/metrics", HTTP_AUTHORIZATION="bearer scrape-secret").status_code == 200
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert compared == [(b"scrape-secret", b"scrape-secret"), (b"wrong", b"scrape-secret")]


def test_record_tool_call_counts_by_tool_and_outcome(client):
    from mcp_bridge.metrics import record_tool_call

    record_tool_call("get_invoice", "rate_limited", 0.25)
    text = client.get("/metrics").content.decode()
    assert re.search(r'pelcro_tool_calls_total\{outcome="rate_limited",tool="get_invoice"\} [1-9]', text)


def test_rollup_writes_usage_minutes_with_latency_percentiles(account):
    from mcp_bridge.upstream.limiter import request_finished
    from mcp_bridge.upstream.usage import redis_time

    # Keep the whole test inside one minute of Redis time.
    seconds_into_minute = redis_time() % 60
    if seconds_into_minute > 58:
        time.sleep(60.2 - seconds_into_minute)

    async def run():
        gate = RedisRateGate()
        for ms in (10, 20, 30, 40, 500):
            await gate.acquire(account.id)
            await request_finished(account.id, ms / 1000)
        await gate.acquire(account.id, background=True)
        await gate.upstream_rate_limited(account.id, 1)
        await close_redis_for_loop()

    asyncio.run(run())
    current = int(redis_time() // 60)
    # Only complete minutes are rolled up: the current one is not, yet.
    rollup_usage()
    assert not UsageMinute.objects.filter(account=account).exists()
    rollup_usage(current_minute=current + 1)
    row = UsageMinute.objects.get(account=account)
    assert (row.calls, row.background_calls, row.upstream_429s, row.rejections) == (6, 1, 1, 0)
    assert row.latency_p50_ms == 30.0 and row.latency_p95_ms == 500.0
    assert row.minute.timestamp() == current * 60
    rollup_usage(current_minute=current + 1)  # idempotent
    assert UsageMinute.objects.filter(account=account).count() == 1
