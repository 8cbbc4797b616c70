"""The consent flow in a real browser (headless Chromium): login → account picker →
authorize → the app's redirect URI receives the code. Screenshots go to test-output/."""

from urllib.parse import parse_qs, urlsplit

import pytest

from devtools.oauth_client import authorize_url, exchange_code, pkce_pair, register_client
from devtools.servers import OUTPUT_DIR
from tests.support.oauth import gateway_principal

CALLBACK = "http://127.0.0.1:47123/callback"


def open_page(browser):
    """A page whose requests to the app's loopback callback get the app's answer."""
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.route(
        CALLBACK + "*",
        lambda route: route.fulfill(status=200, content_type="text/html", body="<p>You can close this window.</p>"),
    )
    return page


def sign_in(page, username, password):
    assert "/login" in page.url
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_selector("#consent-form")


@pytest.mark.browser
@pytest.mark.sqlite
def test_login_pick_account_authorize_and_receive_the_code(gateway_server, demo_users, browser):
    url = gateway_server.url
    client_id = register_client(url, client_name="Claude Code (pelcro-acme)")["client_id"]
    verifier, challenge = pkce_pair()
    page = open_page(browser)

    page.goto(url + authorize_url(url, client_id, challenge, state="browser-state"))
    sign_in(page, "demo@example.com", "pelcro-demo-2026")
    assert page.locator(".app-name").inner_text() == "Claude Code (pelcro-acme)"
    assert page.locator(".alert-warning").is_visible()  # "This app registered itself"
    assert page.locator("#access-read-write").is_checked()  # read and write by default
    page.check("input[name=account][data-slug=other]")
    page.check("input[name=account][data-slug=acme]")
    OUTPUT_DIR.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT_DIR / "consent.png"), full_page=True)

    with page.expect_request(lambda request: request.url.startswith(CALLBACK)) as redirect:
        page.click("button[name=allow][value=true]")
    page.wait_for_url(CALLBACK + "*")
    assert "close this window" in page.content()  # the app's callback page was reached
    params = {k: v[0] for k, v in parse_qs(urlsplit(redirect.value.url).query).items()}
    assert params["state"] == "browser-state" and params["iss"] == url

    tokens = exchange_code(url, client_id, params["code"], verifier).json()
    principal = gateway_principal(url, tokens["access_token"])
    assert principal.account_slug == "acme" and principal.can_write

    page.goto(url + "/connections")
    assert "Claude Code (pelcro-acme)" in page.content()
    page.screenshot(path=str(OUTPUT_DIR / "connections.png"), full_page=True)
    page.close()


@pytest.mark.browser
def test_member_account_offers_read_only(gateway_server, demo_users, browser):
    url = gateway_server.url
    client_id = register_client(url, client_name="Cursor")["client_id"]
    _, challenge = pkce_pair()
    page = open_page(browser)
    page.goto(url + authorize_url(url, client_id, challenge))
    sign_in(page, "alice", "pelcro-alice-2026")
    assert page.locator("input[name=account][data-slug=globex]").is_checked()  # the only account
    assert page.locator("#access-read-write").is_disabled()
    assert page.locator("#access-read").is_checked()
    assert page.locator("#member-note").is_visible()
    with page.expect_request(lambda request: request.url.startswith(CALLBACK)) as redirect:
        page.click("button[name=allow][value=true]")
    assert "code=" in redirect.value.url
    page.close()


@pytest.mark.browser
def test_consent_page_cannot_be_framed(gateway_server, demo_users, browser):
    url = gateway_server.url
    client_id = register_client(url)["client_id"]
    _, challenge = pkce_pair()
    page = open_page(browser)
    page.goto(url + authorize_url(url, client_id, challenge))
    sign_in(page, "demo", "pelcro-demo-2026")
    consent_url = page.url
    # Another origin tries to frame the consent screen (clickjacking).
    page.route(
        "http://framer.test/",
        lambda route: route.fulfill(
            status=200, content_type="text/html", body=f'<iframe id="f" src="{consent_url}"></iframe>'
        ),
    )
    page.goto("http://framer.test/")
    page.wait_for_timeout(500)
    frame = page.frame_locator("#f")
    assert frame.locator("#consent-form").count() == 0
    page.close()
