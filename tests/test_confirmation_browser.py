"""The confirmation page in a real browser (headless Chromium), as the signed-in person of
the connection: a client without elicitation gets `confirmation_required` with the link;
the person signs in, reads the summary and presses Confirm (a plain form, no JavaScript
needed); the repeated call then writes once (the sandbox's request log). At desktop
(1280 px) and phone (390 px) width: no horizontal overflow, no serious or critical axe-core
violation. Screenshots: test-output/confirmation/<state>-<width>.png. The same for a
subscriber (Open server): the link sends them to the publication's sign-in first. Also: the
consent screen's "Ask me before…" box, ticked, and locked for an account where the person
is a plain member."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from mcp_types import ElicitResult
from playwright.sync_api import expect

from devtools.oauth_client import authorize_url, pkce_pair, register_client
from devtools.servers import OUTPUT_DIR
from tests.support.mcp import PASSWORDS, mcp_session
from tests.test_confirmation import TOOL, charge_args, charges_sent
from tests.test_pages_browser import axe_violations, horizontal_overflow

SHOTS = OUTPUT_DIR / "confirmation"
WIDTHS = (1280, 390)


def check_and_shoot(page, state: str) -> None:
    """At each width: nothing overflows sideways, axe finds nothing serious; a screenshot."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        assert horizontal_overflow(page) <= 0, (state, width)
        assert axe_violations(page) == [], (state, width)
        page.screenshot(path=str(SHOTS / f"{state}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def call_tool(mcp_env, token: str, args: dict):
    """One `tools/call` by a 2026-07-28 SDK client without elicitation, run on an event loop
    of its own thread (Playwright's sync API owns this thread's)."""

    async def call():
        async with mcp_session(mcp_env.url, token, "2026-07-28") as client:
            return await client.call_tool(TOOL, args)

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, call()).result()


@pytest.mark.browser
def test_confirming_on_the_page_lets_the_repeated_call_write_once(mcp_env, truth, browser):
    token = mcp_env.token()
    args = charge_args(truth)
    since = truth.last_seq()
    asked = call_tool(mcp_env, token, args)
    url = asked.structured_content["confirmation_url"]

    page = browser.new_page()
    page.goto(url)
    assert "/login" in page.url  # signed out: sign in first, then back to the page
    page.fill("input[name=username]", "demo@example.com")
    page.fill("input[name=password]", PASSWORDS["demo"])
    page.click("button[type=submit]")
    page.wait_for_url(url)
    summary = page.locator("#confirmation-summary").inner_text()
    assert str(args["customer_id"]) in summary and "12.34" in summary
    assert page.locator("h1").inner_text() == "Confirm this action?"
    check_and_shoot(page, "pending")
    assert charges_sent(truth, since) == []

    page.click("button[name=answer][value=confirm]")
    page.wait_for_selector("text=Confirmed")
    assert page.url == url and page.locator("button[name=answer]").count() == 0
    check_and_shoot(page, "confirmed")

    done = call_tool(mcp_env, token, args)
    assert not done.is_error, done.content[0].text
    assert len(charges_sent(truth, since)) == 1
    # Used: the page says so, and a second identical call asks again.
    again = call_tool(mcp_env, token, args)
    assert again.structured_content["error"] == "confirmation_required"
    page.reload()
    assert page.locator("h1").inner_text() == "Already used"
    check_and_shoot(page, "used")
    page.close()
    assert len(charges_sent(truth, since)) == 1


@pytest.mark.browser
def test_the_consent_box_is_ticked_and_locked_for_a_member(mcp_env, browser):
    gateway = mcp_env.gateway.url
    client_id = register_client(gateway)["client_id"]
    _verifier, challenge = pkce_pair()
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(gateway + authorize_url(gateway, client_id, challenge))
    page.fill("input[name=username]", "demo")
    page.fill("input[name=password]", PASSWORDS["demo"])
    page.click("button[type=submit]")
    page.wait_for_selector("#consent-form")
    box = page.locator("#confirm-writes")
    assert box.is_checked() and box.is_enabled()  # an owner may untick it
    page.check("input[name=account][data-slug=acme]")
    check_and_shoot(page, "consent-owner")
    page.close()

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(gateway + authorize_url(gateway, client_id, challenge))
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORDS["alice"])
    page.click("button[type=submit]")
    page.wait_for_selector("#consent-form")
    box = page.locator("#confirm-writes")
    expect(box).to_be_disabled()  # a member of globex may not (consent.js, once it has run)
    expect(box).to_be_checked()
    check_and_shoot(page, "consent-member")
    page.close()


def open_call(mcp_env, token: str, name: str, args: dict, seen: list):
    """One `tools/call` on the Open server by a handshake-era SDK client that declares
    elicitation (`seen` records any question it is asked: none, the call fails closed)."""

    async def elicitation(context, params):
        seen.append(params)
        return ElicitResult(action="accept", content={"confirm": True})

    async def call():
        async with mcp_session(mcp_env.gateway.url + "/open", token, "legacy", elicitation_callback=elicitation) as c:
            return await c.call_tool(name, args)

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, call()).result()


@pytest.mark.browser
def test_a_subscriber_confirms_on_the_page_and_the_repeat_writes_once(mcp_env, truth, browser):
    """An Open server `subscribe` (moves money): the link sends the subscriber's browser to
    the publication's sign-in (e-mail and password of their account there), back to the
    page with the summary (plan, amount, card); Confirm; the repeated call subscribes once."""
    from tests.support import open_data
    from tests.support.open import open_connection

    sandbox = mcp_env.sandbox.url
    who = open_data.register(sandbox, 14)
    card = open_data.add_card(sandbox, who, "tok_visa_4242")
    args = {"plan_id": open_data.plans(sandbox, 14)["Student Digital Monthly"]["id"], "payment_method_id": card["id"]}
    conn = open_connection(mcp_env, who, access="read_write")
    since = truth.last_seq()

    def subscriptions_sent() -> list[dict]:
        log = truth.log(since=since, api="open")
        return [e for e in log if (e["method"], e["path"]) == ("POST", "/api/v1/sdk/subscription")]

    seen: list = []
    asked = open_call(mcp_env, conn.token, "subscribe", args, seen)
    assert asked.structured_content["error"] == "confirmation_required", asked
    url = asked.structured_content["confirmation_url"]

    page = browser.new_page()
    page.goto(url)
    assert "/open/sign-in" in page.url  # signed out: the publication's sign-in, site preselected
    assert "Acme Daily" in page.locator("body").inner_text()
    page.fill("input[name=email]", who["email"])
    page.fill("input[name=password]", who["password"])
    page.click("button[type=submit]")
    page.wait_for_url(url)
    summary = page.locator("#confirmation-summary").inner_text()
    assert "4.99 USD" in summary and "cannot be undone" in summary
    assert page.locator("h1").inner_text() == "Confirm this action?"
    check_and_shoot(page, "subscriber-pending")
    assert subscriptions_sent() == []

    page.click("button[name=answer][value=confirm]")
    page.wait_for_selector("text=Confirmed")
    check_and_shoot(page, "subscriber-confirmed")

    done = open_call(mcp_env, conn.token, "subscribe", args, seen)
    assert not done.is_error, done.content[0].text
    again = open_call(mcp_env, conn.token, "subscribe", args, seen)
    assert again.structured_content["error"] == "confirmation_required"
    page.reload()
    assert page.locator("h1").inner_text() == "Already used"
    page.close()
    assert len(subscriptions_sent()) == 1 and seen == []
