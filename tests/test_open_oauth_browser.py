"""The subscriber's sign-in for the Open server in a real browser (headless Chromium): the
authorization page's publication pick → e-mail and password (a wrong one first) → consent →
the app's redirect URI receives the code, at desktop (1280 px) and phone (390 px) width,
each step with a screenshot (test-output/open-authorize/<step>-<width>.png), no horizontal
overflow and no serious or critical axe-core violation; then the same walk with JavaScript
turned off. The subscriber sign-in page (/open/sign-in) gets the same checks."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from accounts.models import Connection, SubscriberCredential
from devtools.oauth_client import authorize_url, exchange_code, open_url, pkce_pair, register_client
from devtools.servers import OUTPUT_DIR
from tests.support.sandbox import READER
from tests.test_pages_browser import AXE, axe_violations, horizontal_overflow

CALLBACK = "http://127.0.0.1:47123/callback"
SHOTS = OUTPUT_DIR / "open-authorize"
WIDTHS = (1280, 390)


def new_page(browser, width: int, javascript: bool = True):
    context = browser.new_context(viewport={"width": width, "height": 900}, java_script_enabled=javascript)
    page = context.new_page()
    page.route(
        CALLBACK + "*",
        lambda route: route.fulfill(status=200, content_type="text/html", body="<p>You can close this window.</p>"),
    )
    return context, page


def check(page, name: str, width: int, axe: bool = True) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
    assert horizontal_overflow(page) <= 0, f"{name} at {width}px overflows"
    if axe:
        violations = axe_violations(page)
        assert not violations, f"{name} at {width}px: {violations}"


def walk(page, url: str, client_id: str, width: int, axe: bool = True) -> dict:
    """Site pick → wrong password → right password → consent → read only → Allow; the
    redirect's query, plus the PKCE `verifier`."""
    verifier, challenge = pkce_pair()
    page.goto(url + authorize_url(url, client_id, challenge, state=f"b-{width}", resource=open_url(url)))
    assert page.locator("#site-form").is_visible()
    assert page.locator(".app-name").inner_text() == "Readers' Assistant"
    check(page, "1-site", width, axe)
    page.check(f"input[name=site_id][value='{READER['site_id']}']")
    page.click("#site-form button[type=submit]")
    page.wait_for_selector("#sign-in-form")
    check(page, "2-sign-in", width, axe)
    page.fill("input[name=email]", READER["email"])
    page.fill("input[name=password]", "Not-My-Password-9!")
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector("#sign-in-form .alert-error")
    assert "do not match" in page.locator(".alert-error").inner_text()
    assert page.locator("input[name=email]").input_value() == READER["email"]
    assert page.locator("input[name=password]").input_value() == ""
    check(page, "3-wrong-password", width, axe)
    page.fill("input[name=password]", READER["password"])
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector("#consent-form")
    assert page.locator("#access-read-write").is_checked()  # what the app asked for
    assert "cannot be undone" in page.locator("#confirm-note").inner_text()
    check(page, "4-consent", width, axe)
    page.check("#access-read")
    with page.expect_request(lambda request: request.url.startswith(CALLBACK)) as redirect:
        page.click("button[name=allow][value=true]")
    page.wait_for_url(CALLBACK + "*")
    return {**{k: v[0] for k, v in parse_qs(urlsplit(redirect.value.url).query).items()}, "verifier": verifier}


@pytest.mark.browser
@pytest.mark.parametrize("width", WIDTHS)
def test_site_pick_sign_in_consent_at_desktop_and_phone_width(gateway_server, demo_users, browser, width):
    assert AXE.exists(), "axe-core is missing: run scripts/lib.sh's ensure_node_tools (make test does)"
    url = gateway_server.url
    client_id = register_client(url, client_name="Readers' Assistant")["client_id"]
    context, page = new_page(browser, width)
    try:
        params = walk(page, url, client_id, width)
        assert params["state"] == f"b-{width}" and params["iss"] == url and "code" in params
        # The standalone sign-in page, signed in by the walk: a second visit goes on at once.
        page.goto(url + "/open/sign-in?next=/health")
        assert page.url == url + "/health"
    finally:
        context.close()
    tokens = exchange_code(url, client_id, params["code"], params["verifier"], resource=open_url(url))
    assert tokens.status_code == 200 and tokens.json()["scope"] == "read"  # the read-only choice was taken
    assert Connection.objects.get(application__client_id=client_id).access == Connection.Access.READ


@pytest.mark.browser
def test_the_forms_work_without_javascript(gateway_server, demo_users, browser):
    url = gateway_server.url
    client_id = register_client(url, client_name="Readers' Assistant")["client_id"]
    context, page = new_page(browser, 390, javascript=False)
    try:
        params = walk(page, url, client_id, 390, axe=False)
    finally:
        context.close()
    assert "code" in params


@pytest.mark.browser
@pytest.mark.parametrize("width", WIDTHS)
def test_the_sign_in_page_at_desktop_and_phone_width(gateway_server, demo_users, browser, width):
    url = gateway_server.url
    context, page = new_page(browser, width)
    try:
        page.goto(url + "/open/sign-in?next=/health")
        check(page, "sign-in-page-site", width)
        page.check(f"input[name=site_id][value='{READER['site_id']}']")
        page.click("button[type=submit]")
        page.wait_for_selector("input[name=password]")
        check(page, "sign-in-page-password", width)
        page.fill("input[name=email]", READER["email"])
        page.fill("input[name=password]", READER["password"])
        page.click("button.button-primary")
        page.wait_for_url(url + "/health")
    finally:
        context.close()
    assert not SubscriberCredential.objects.exists()  # the page keeps no Pelcro sign-in


@pytest.mark.browser
def test_a_site_hint_goes_straight_to_the_password_and_the_code_is_an_open_token(gateway_server, demo_users, browser):
    url = gateway_server.url
    client_id = register_client(url, client_name="Readers' Assistant")["client_id"]
    verifier, challenge = pkce_pair()
    context, page = new_page(browser, 1280)
    try:
        page.goto(url + authorize_url(url, client_id, challenge, resource=open_url(url), site_id="14"))
        assert not page.locator("#site-form").count()
        page.fill("input[name=email]", READER["email"])
        page.fill("input[name=password]", READER["password"])
        page.click("#sign-in-form button[type=submit]")
        page.wait_for_selector("#consent-form")
        with page.expect_request(lambda request: request.url.startswith(CALLBACK)) as redirect:
            page.click("button[name=allow][value=true]")
        page.wait_for_url(CALLBACK + "*")
    finally:
        context.close()
    code = parse_qs(urlsplit(redirect.value.url).query)["code"][0]
    tokens = exchange_code(url, client_id, code, verifier, resource=open_url(url))
    assert tokens.status_code == 200 and tokens.json()["scope"] == "read write"
