"""The ops dashboard in a real browser (headless Chromium): while tool calls from other
processes load an account, the numbers change without a page reload. Screenshots:
test-output/ops.png (all accounts) and test-output/ops-account.png (one account)."""

import threading
import time

import pytest

from devtools.oauth_client import mcp_url, obtain_tokens
from devtools.servers import OUTPUT_DIR
from tests.support.mcp import PASSWORDS
from tests.support.ratelimit import run_tool_callers

LOAD_SECONDS = 9


def signed_in_page(browser, base_url: str, username: str, password: str, path: str):
    page = browser.new_page(viewport={"width": 1320, "height": 900})
    page.goto(base_url + path)
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    return page


def wait_until(page, expression: str, timeout: float = 15.0) -> None:
    """Poll a JS expression from here (page.wait_for_function would need eval, which the
    pages' CSP forbids)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        page.wait_for_timeout(200)


def cell(page, account_id: int, name: str) -> int:
    return int(page.locator(f'tr[data-account="{account_id}"] [data-cell="{name}"]').inner_text())


@pytest.mark.browser
@pytest.mark.sqlite
def test_dashboard_numbers_change_live_while_load_runs(acme, tight_gateways, browser):
    gateway = tight_gateways[0]
    tokens = [obtain_tokens(g.url, "demo", PASSWORDS["demo"], "acme")["access_token"] for g in tight_gateways]
    page = signed_in_page(browser, gateway.url, "demo", PASSWORDS["demo"], "/ops/")
    assert page.url.endswith("/ops/")
    page.wait_for_selector(f'tr[data-account="{acme.id}"]')
    page.evaluate("window.__notReloaded = true")
    assert cell(page, acme.id, "in_window") == 0

    # The load's window opens once its processes have their sessions open (however long
    # that takes on a busy machine); the page is watched for the whole window.
    window: list[float] = []
    opened = threading.Event()
    failure: list[BaseException] = []

    def load_runner():
        try:
            run_tool_callers(
                targets=[(mcp_url(g.url), t) for g, t in zip(tight_gateways, tokens, strict=True)],
                tool="list_plans",
                arguments={"site_id": 14, "per_page": 1},
                processes=2,
                sessions=4,
                seconds=LOAD_SECONDS,
                on_start=lambda start, until: window.extend((start, until)) or opened.set(),
            )
        except BaseException as exc:  # reported by the test thread below
            failure.append(exc)
            opened.set()

    load = threading.Thread(target=load_runner)
    load.start()
    assert opened.wait(timeout=180) and not failure, failure or "the load never started"
    seen = {"in_window": set(), "waiting": set(), "calls_last_hour": set()}
    _, deadline = window
    screenshot_taken = False
    while time.time() < deadline:
        for name in seen:
            seen[name].add(cell(page, acme.id, name))
        busy = cell(page, acme.id, "in_window") > 0 and cell(page, acme.id, "waiting") > 0
        if not screenshot_taken and (busy or time.time() > deadline - 1.5):
            OUTPUT_DIR.mkdir(exist_ok=True)
            page.screenshot(path=str(OUTPUT_DIR / "ops.png"), full_page=True)
            screenshot_taken = True
        page.wait_for_timeout(400)
    load.join(timeout=60)
    assert not failure, failure

    assert page.evaluate("window.__notReloaded") is True, "updated in place, no reload"
    assert screenshot_taken
    assert len(seen["calls_last_hour"]) >= 3, seen  # grew step by step as the load ran
    assert max(seen["in_window"]) == 20  # the whole budget in use…
    assert max(seen["waiting"]) > 0  # …with callers waiting for slots
    assert page.locator('[data-total="in_window"]').inner_text() != "–"

    # One account: the per-minute chart against the limit line, and the latest tool calls.
    page.goto(gateway.url + f"/ops/accounts/{acme.id}/")
    wait_until(
        page,
        "[...document.querySelectorAll('svg.chart rect.bar-interactive')].some(r => +r.getAttribute('height') > 0)",
    )
    page.wait_for_selector('[data-field="tool-calls"] tr:has-text("list_plans")')
    assert page.locator("svg.chart line.limit").count() == 1
    assert page.locator("svg.chart .limit-label").text_content() == "limit 400/min"
    assert int(page.locator('[data-stat="in_window"]').inner_text()) >= 0
    page.screenshot(path=str(OUTPUT_DIR / "ops-account.png"), full_page=True)
    page.close()


@pytest.mark.browser
@pytest.mark.sqlite
def test_non_staff_users_get_403(demo_users, tight_gateways, browser):
    page = signed_in_page(browser, tight_gateways[0].url, "alice", PASSWORDS["alice"], "/ops/")
    response = page.goto(tight_gateways[0].url + "/ops/")
    assert response.status == 403
    assert page.goto(tight_gateways[0].url + "/ops/api/accounts").status == 403
    page.close()
