"""Every page in a real browser (headless Chromium), as a new user walks them, at desktop
(1280 px) and phone (390 px) width:

- no horizontal page overflow (tables become stacked rows on a phone);
- no serious or critical accessibility violation reported by axe-core (the npm package,
  pinned in package.json and installed into node_modules by scripts/lib.sh);
- at desktop width, every control reached with Tab shows a clearly visible focus ring.

Screenshots: test-output/pages/<page>-<width>.png. The pages keep their real CSP: axe is
injected through the DevTools protocol (page.evaluate), which CSP does not govern.
"""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import OperationalError
from django.test import RequestFactory
from django.utils import timezone

from devtools.servers import OUTPUT_DIR, ROOT
from tests.support.mcp import PASSWORDS
from tests.support.oauth import authorize_url, obtain_tokens, pkce_pair, register_client

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = OUTPUT_DIR / "pages"
WIDTHS = (1280, 390)
LONG_NAME = "Claude Code (pelcro-acme) with a very long self-chosen name " + "x" * 60
# No spaces at all: the kind of name that once widened the consent page to 1,131 px.
UNBROKEN_NAME = "Averyveryverylongappnamewithoutanyspaces_" + "y" * 70

# Focus is visible when the focused element draws a solid outline of at least 2 px (a
# faint box-shadow ring does not count): WCAG 2.4.7, checked on the computed style.
FOCUS_RING = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const s = getComputedStyle(el);
  const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2;
  return {tag: el.tagName, text: (el.innerText || el.value || el.name || '').slice(0, 40),
          visible: outline};
}"""


def axe_violations(page) -> list[dict]:
    """axe-core's serious and critical violations on the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    found = page.evaluate(
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))})))"
    )
    return [v for v in found if v["impact"] in ("serious", "critical")]


def horizontal_overflow(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


def unfocusable_controls(page, limit: int = 40) -> list[dict]:
    """Tab through the page (up to `limit` stops); the controls whose focus is not visible."""
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.mouse.click(1, 1)  # start from the top of the document
    missing, seen = [], 0
    for _ in range(limit):
        page.keyboard.press("Tab")
        state = page.evaluate(FOCUS_RING)
        if state is None:
            break
        seen += 1
        if not state["visible"]:
            missing.append(state)
    assert seen > 0, "nothing on the page takes keyboard focus"
    return missing


def serve(html: str, status: int):
    """A Playwright route handler answering with `html`."""
    return lambda route: route.fulfill(status=status, content_type="text/html; charset=utf-8", body=html)


def sign_in(page, base_url: str, username: str) -> None:
    page.goto(base_url + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORDS[username])
    page.click("button[type=submit]")
    page.wait_for_load_state()


def error_page_html(status: int) -> str:
    """The 500 or 503 page exactly as the handler answers (503: a database outage)."""
    from django.contrib.auth.models import AnonymousUser

    from pelcro_gateway.errors import server_error

    request = RequestFactory().get("/connections")
    request.user = AnonymousUser()
    try:
        raise OperationalError("connection refused") if status == 503 else RuntimeError("boom")
    except Exception:
        response = server_error(request)
    assert response.status_code == status
    return response.content.decode()


@pytest.fixture
def walked_data(gateway_server, demo_users):
    """What a page needs to show everything: a connection with a long name and 60 tool
    calls (more than a page), a revoked one, per-minute usage with refusals and 429s."""
    from accounts.connections import revoke_connection
    from accounts.models import Connection
    from mcp_bridge.models import ToolCall

    url = gateway_server.url
    obtain_tokens(url, "demo", PASSWORDS["demo"], "acme", client_name=LONG_NAME)
    obtain_tokens(url, "demo", PASSWORDS["demo"], "other", access="read", client_name="Windsurf (pelcro-other)")
    connection = Connection.objects.get(application__name=LONG_NAME)
    gone = Connection.objects.get(application__name="Windsurf (pelcro-other)")
    revoke_connection(gone, by="user:demo")
    now, rng = timezone.now(), random.Random(7)
    ToolCall.objects.bulk_create(
        [
            ToolCall(
                created_at=now - timedelta(seconds=7 * i),
                user=connection.user,
                username="demo",
                client_id=connection.application.client_id,
                client_name=LONG_NAME,
                account=connection.account,
                account_slug="acme",
                connection=connection,
                site_id=14,
                tool="list_customers",
                arguments={"site_id": 14, "email": "ann@example.com", "api_key": "[redacted]"},
                outcome=rng.choice(["ok", "ok", "rate_limited", "error"]),
                upstream_status=None if i % 4 == 2 else 200,
                latency_ms=rng.randint(5, 12000),
            )
            for i in range(60)
        ]
    )
    client_id = register_client(url, client_name=UNBROKEN_NAME)["client_id"]
    _, challenge = pkce_pair()
    return {"connection": connection, "revoked": gone, "consent": authorize_url(url, client_id, challenge)}


@pytest.mark.browser
@pytest.mark.sqlite
def test_every_page_fits_a_phone_and_a_desktop_and_passes_axe(gateway_server, walked_data, browser):
    assert AXE.exists(), "axe-core is missing: run scripts/lib.sh's ensure_node_tools (make test does)"
    url = gateway_server.url
    connection = walked_data["connection"]
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    visited: list[str] = []

    def check(page, name: str, width: int, *, focus: bool = True) -> None:
        visited.append(f"{name}@{width}")
        page.wait_for_load_state()
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
        overflow = horizontal_overflow(page)
        if overflow > 0:
            problems.append(f"{name} at {width}px: page scrolls sideways by {overflow}px")
        for violation in axe_violations(page):
            problems.append(
                f"{name} at {width}px: axe {violation['impact']} {violation['id']} "
                f"({violation['help']}) at {violation['nodes']}"
            )
        if focus and width == WIDTHS[0]:
            for control in unfocusable_controls(page):
                problems.append(f"{name}: no visible focus on {control['tag']} {control['text']!r}")

    for width in WIDTHS:
        context = browser.new_context(viewport={"width": width, "height": 900})
        page = context.new_page()
        # Anonymous visitor.
        for name, path in [
            ("landing", "/"),
            ("login", "/login"),
            # From an app that named no resource: with the subscribers' way on.
            ("login-from-an-app", "/login?next=" + quote("/oauth/authorize?response_type=code&client_id=x")),
            ("admin-login", "/admin/login/"),
            ("not-found", "/no/such/page"),
        ]:
            response = page.goto(url + path)
            assert response.status == (404 if name == "not-found" else 200), name
            if name == "login-from-an-app":
                assert page.get_by_role("link", name="Sign in with your publication").is_visible()
            check(page, name, width)
        assert "Page not found" in page.content()
        # 500 and 503 as the handler renders them, served at a gateway URL so the real CSS loads.
        for status in (500, 503):
            html = error_page_html(status)
            page.route(url + f"/_preview/{status}", serve(html, status))
            page.goto(url + f"/_preview/{status}")
            check(page, f"error-{status}", width)

        # A signed-in person who is not staff, at the ops dashboard: a 403 that says why.
        sign_in(page, url, "alice")
        response = page.goto(url + "/ops/")
        assert response.status == 403
        assert "staff only" in page.content() and page.locator("a.button", has_text="connected apps").count() == 1
        check(page, "forbidden-ops", width)
        page.locator("form[action='/logout'] button").click()
        page.wait_for_load_state()
        assert "You are signed out." in page.content()
        check(page, "signed-out", width)

        # The demo person (staff): consent, connections, activity, revoke, ops, admin.
        sign_in(page, url, "demo")
        page.goto(url + walked_data["consent"])
        assert page.locator(".unverified-tag").is_visible()
        check(page, "consent", width)
        for name, path in [
            ("connections", "/connections"),
            ("activity", f"/connections/{connection.pk}/activity"),
            ("activity-page-2", f"/connections/{connection.pk}/activity?page=2"),
            ("revoke-confirm", f"/connections/{connection.pk}/revoke"),
            ("ops", "/ops/"),
            ("ops-account", f"/ops/accounts/{connection.account_id}/"),
            ("admin", "/admin/"),
            ("admin-connections", "/admin/accounts/connection/"),
        ]:
            assert page.goto(url + path).status == 200, name
            if name.startswith("ops"):
                page.wait_for_selector('.live:not(.stale) [data-field="updated"]:text-matches("updated")')
                page.wait_for_timeout(300)
            check(page, name, width)
        context.close()

    assert not problems, "\n".join(problems)
    assert len(visited) == 2 * 18
    assert all(Path(SHOTS / f"{v.replace('@', '-')}.png").exists() for v in visited)
