"""The sandbox's strict per-account limit (each account's own `api_core_rate_limit`, CORE_API.md
§2) and its fault injection, over real HTTP."""

import time

import httpx
import pytest

from tests.support.sandbox import ACME_SITE, KEYS, OTHER_SITE, SandboxClient
from tests.support.servers import start_sandbox


@pytest.fixture(scope="module")
def default_limits():
    """A sandbox with the real limits: each account's api_core_rate_limit per rolling 60 s
    (acme 120, other 360 in demo/accounts.json), no override."""
    server = start_sandbox()
    client = SandboxClient(server)
    yield client
    client.close()
    server.stop()


@pytest.fixture(scope="module")
def quick_limits():
    """A sandbox whose limit is compressed to 5 requests per rolling 0.8 s."""
    server = start_sandbox(SANDBOX_RATE_LIMIT="5", SANDBOX_RATE_WINDOW="0.8")
    client = SandboxClient(server)
    yield client
    client.close()
    server.stop()


def used(sbx, slug):
    return next(a for a in sbx.admin.get("/accounts").json()["data"] if a["slug"] == slug)["requests_in_window"]


def assert_429(response, max_retry_after):
    assert response.status_code == 429, response.text
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit() and 1 <= int(retry_after) <= max_retry_after
    assert response.json() == {
        "error": {"status": 429, "message": "Too Many Attempts.", "retry_after": int(retry_after)}
    }
    return int(retry_after)


def test_request_121_of_a_rolling_minute_is_refused(default_limits):
    sbx = default_limits
    assert sbx.admin.get("/config").json()["data"] == {
        "rate_limit": None,
        "rate_window": 60.0,
        "latency_ms": 0.0,
        "error_rate": 0.0,
        "force_429": 0.0,
        "job_delay": 2.0,
        "open_rate_limit": None,
        "login_max_attempts": 10,
        "login_lockout_window": 300.0,
    }
    assert sbx.ok("GET", "/account", site_id=None)["api_core_rate_limit"] == 120
    # Unauthenticated requests are not the account's.
    for _ in range(5):
        assert sbx.api("GET", "/customers", key="sbx_wrong").status_code == 401
    statuses = []
    for number in range(119):  # GET /account above was the first of the 120
        # Errors count too: every request the API served is one of the 120.
        statuses.append(sbx.api("GET", "/customers/1" if number % 10 == 0 else "/customers").status_code)
    assert statuses.count(200) == 107 and statuses.count(404) == 12
    assert used(sbx, "acme") == 120
    retry_after = assert_429(sbx.api("GET", "/customers"), 60)
    assert retry_after >= 55  # the oldest request left the window only ~1 minute after it came
    assert_429(sbx.api("POST", "/customers", json={"email": "late@example.com"}), 60)
    # The limit is per account: the other account and the admin API are unaffected.
    assert sbx.api("GET", "/customers", account="other", site_id=OTHER_SITE).status_code == 200
    assert sbx.admin.get("/config").status_code == 200
    # Refused requests are not counted, and they are in the request log with their status.
    assert used(sbx, "acme") == 120
    log = sbx.log(account="acme")
    assert [e["status"] for e in log[-2:]] == [429, 429] and log[-1]["method"] == "POST"


def test_each_account_gets_its_own_limit_from_its_record(default_limits):
    """`other` says 360 in GET /account and gets exactly 360 per rolling minute."""
    sbx = default_limits
    assert sbx.ok("GET", "/account", account="other", site_id=None)["api_core_rate_limit"] == 360
    start = used(sbx, "other")
    statuses = [
        sbx.api("GET", "/plans", account="other", site_id=OTHER_SITE, params={"limit": 1}).status_code
        for _ in range(360 - start)
    ]
    assert statuses == [200] * (360 - start)
    assert used(sbx, "other") == 360
    assert_429(sbx.api("GET", "/account", account="other", site_id=None), 60)
    accounts = {a["slug"]: a for a in sbx.admin.get("/accounts").json()["data"]}
    assert accounts["other"]["effective_rate_limit"] == 360 and accounts["acme"]["effective_rate_limit"] == 120


def test_an_accounts_limit_can_change_and_the_override_knob_takes_precedence(default_limits):
    sbx = default_limits
    sbx.admin.delete("/limits")
    try:
        assert (
            sbx.admin.patch("/accounts/globex", json={"api_core_rate_limit": 3}).json()["data"]["effective_rate_limit"]
            == 3
        )
        assert sbx.ok("GET", "/account", account="globex", site_id=None)["api_core_rate_limit"] == 3
        assert [sbx.api("GET", "/plans", account="globex", site_id=31).status_code for _ in range(3)] == [200, 200, 429]
        # The knob overrides every account's own limit; null hands control back to the records.
        sbx.configure(rate_limit=4)
        assert sbx.api("GET", "/plans", account="globex", site_id=31).status_code == 200
        assert sbx.api("GET", "/plans", account="globex", site_id=31).status_code == 429
        assert sbx.configure(rate_limit=None)["rate_limit"] is None
        assert sbx.api("GET", "/plans", account="globex", site_id=31).status_code == 429
        for bad in ({"api_core_rate_limit": 0}, {"api_core_rate_limit": "9"}, {"limit": 5}, [1]):
            assert sbx.admin.patch("/accounts/globex", json=bad).status_code == 400
        assert sbx.admin.patch("/accounts/nobody", json={"api_core_rate_limit": 5}).status_code == 404
    finally:
        sbx.restore_config()
        sbx.reset()
    assert sbx.ok("GET", "/account", account="globex", site_id=None)["api_core_rate_limit"] == 240


def test_requests_succeed_again_once_the_window_has_passed(quick_limits):
    sbx = quick_limits
    sbx.admin.delete("/limits")
    for _ in range(5):
        assert sbx.api("GET", "/plans").status_code == 200
    assert assert_429(sbx.api("GET", "/plans"), 1) == 1
    # Hammering through the 429 neither counts nor pushes the window out.
    for _ in range(30):
        assert sbx.api("GET", "/plans").status_code == 429
    assert used(sbx, "acme") == 5
    time.sleep(0.85)
    assert sbx.api("GET", "/plans").status_code == 200


def test_the_window_rolls_rather_than_resetting(quick_limits):
    sbx = quick_limits
    sbx.admin.delete("/limits")
    started = time.monotonic()
    for _ in range(3):
        assert sbx.api("GET", "/plans").status_code == 200
    time.sleep(0.4)
    for _ in range(2):
        assert sbx.api("GET", "/plans").status_code == 200
    assert_429(sbx.api("GET", "/plans"), 1)
    time.sleep(max(0.0, started + 0.85 - time.monotonic()))
    # The first three have left the window; the two later ones are still in it (until ~1.2 s).
    for _ in range(3):
        assert sbx.api("GET", "/plans").status_code == 200
    assert_429(sbx.api("GET", "/plans"), 1)
    assert time.monotonic() - started < 1.2, "the machine was too slow for this timing test"


def test_limit_and_window_change_at_runtime(quick_limits):
    sbx = quick_limits
    sbx.admin.delete("/limits")
    try:
        assert sbx.configure(rate_limit=2, rate_window=30)["rate_limit"] == 2
        assert sbx.api("GET", "/plans").status_code == 200
        assert sbx.api("GET", "/plans").status_code == 200
        assert assert_429(sbx.api("GET", "/plans"), 30) >= 29
        sbx.configure(rate_limit=3)
        assert sbx.api("GET", "/plans").status_code == 200
        assert sbx.api("GET", "/plans").status_code == 429
    finally:
        sbx.restore_config()
        sbx.admin.delete("/limits")
    assert sbx.admin.get("/config").json()["data"]["rate_limit"] == 5


# --- fault injection -------------------------------------------------------------------------------------


def test_config_is_validated(sbx):
    before = sbx.admin.get("/config").json()["data"]
    response = sbx.admin.put(
        "/config",
        json={
            "rate_limit": 0,
            "rate_window": -1,
            "error_rate": 2,
            "latency_ms": "slow",
            "force_429": "maybe",
            "colour": "red",
        },
    )
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {
        "rate_limit",
        "rate_window",
        "error_rate",
        "latency_ms",
        "force_429",
        "colour",
    }
    assert "job_delay" in sbx.admin.put("/config", json={"job_delay": -1}).json()["errors"]
    assert sbx.admin.put("/config", content=b"[1]").status_code == 400
    assert sbx.admin.get("/config").json()["data"] == before
    assert sbx.configure(force_429=True)["force_429"] == 1.0
    assert sbx.configure(force_429="off")["force_429"] == 0.0
    assert sbx.configure(error_rate="0.25", rate_window=0.5)["error_rate"] == 0.25


def test_added_latency(sbx):
    sbx.configure(latency_ms=250)
    started = time.perf_counter()
    assert sbx.api("GET", "/plans").status_code == 200
    assert time.perf_counter() - started >= 0.25
    sbx.configure(latency_ms=0)
    started = time.perf_counter()
    sbx.api("GET", "/plans")
    assert time.perf_counter() - started < 0.25


def test_injected_server_errors_change_nothing(sbx):
    sbx.configure(error_rate=1)
    since = sbx.last_seq()
    response = sbx.api("POST", "/customers", json={"email": "never-created@example.com"})
    assert response.status_code in (500, 502, 503)
    assert response.json()["error"]["status"] == response.status_code
    assert sbx.log(since)[-1]["fault"] == "error"
    sbx.configure(error_rate=0)
    assert sbx.ok("GET", "/customers", params={"filter[email]": "eq:never-created@example.com"}) == []


def test_a_share_of_server_errors(sbx):
    sbx.configure(error_rate=0.5)
    statuses = [sbx.api("GET", "/plans", params={"limit": 1}).status_code for _ in range(200)]
    failures = sum(1 for s in statuses if s >= 500)
    assert statuses.count(200) + failures == 200
    assert 55 <= failures <= 145  # binomial(200, 0.5): far outside 6 sigma otherwise


def test_forced_429(sbx):
    sbx.configure(force_429="on")
    since = sbx.last_seq()
    before = used(sbx, "acme")
    for _ in range(3):
        response = sbx.api("GET", "/plans")
        assert response.status_code == 429 and response.headers["retry-after"] == "1"
    assert used(sbx, "acme") == before  # forced refusals are not counted either
    assert [e["fault"] for e in sbx.log(since)] == ["force_429"] * 3
    sbx.configure(force_429=0.5)
    statuses = [sbx.api("GET", "/plans", params={"limit": 1}).status_code for _ in range(200)]
    assert 55 <= statuses.count(429) <= 145 and statuses.count(200) + statuses.count(429) == 200


def test_faults_from_the_environment():
    server = start_sandbox(SANDBOX_LATENCY_MS="200", SANDBOX_FORCE_429="on")
    try:
        client = SandboxClient(server)
        assert client.admin.get("/config").json()["data"] == {
            "rate_limit": None,
            "rate_window": 60.0,
            "latency_ms": 200.0,
            "error_rate": 0.0,
            "force_429": 1.0,
            "job_delay": 2.0,
            "open_rate_limit": None,
            "login_max_attempts": 10,
            "login_lockout_window": 300.0,
        }
        started = time.perf_counter()
        assert client.api("GET", "/plans", site_id=ACME_SITE).status_code == 429
        assert time.perf_counter() - started >= 0.2
        client.configure(force_429=0, latency_ms=0)
        assert client.api("GET", "/plans").status_code == 200
        client.close()
    finally:
        server.stop()
    error_server = start_sandbox(SANDBOX_ERROR_RATE="1")
    try:
        assert (
            httpx.get(
                error_server.url + "/api/v1/core/plans",
                params={"site_id": ACME_SITE},
                headers={"Authorization": f"Bearer {KEYS['acme']}"},
            ).status_code
            >= 500
        )
    finally:
        error_server.stop()
