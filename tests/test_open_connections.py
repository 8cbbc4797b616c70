"""A subscriber's connected apps at /open/connections, and operators' revoke of subscriber
connections in the admin (issue 14 items 3 and 5), against a real gateway and the sandbox's
Open API over HTTP:

- the page lists the signed-in subscriber's own apps only (access, whether it asks before
  money actions, connected / last used, recent audited calls with previews and
  confirmation decisions), never another subscriber's or an operator's;
- revoking (confirmation page, then a CSRF-checked POST) ends the app's token at once (the
  next MCP request at /open gets 401 invalid_token) and signs its Pelcro JWT out (the
  sandbox then answers 403 blacklisted for it); a Pelcro that cannot be reached never
  blocks the revoke (the JWT is then kept, unusable, for the sweep);
- another subscriber's connection id, crafted into the URL, is a 404; no CSRF token, a 403;
- the admin's subscriber connections list and its revoke action do the same for staff;
- the ops dashboard counts active subscriber connections per site;
- Chromium walks sign-in → list → revoke at desktop and phone width, with axe checks.
"""

from __future__ import annotations

import asyncio
import re
from contextlib import closing
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from accounts.models import Connection, SubscriberCredential
from devtools.oauth_client import obtain_open_tokens, obtain_tokens, parse_forms, signed_in
from mcp_bridge.models import ToolCall
from tests.support.mcp import audit_rows, mcp_session
from tests.support.open import READ, READ_WRITE, held_jwt, mcp_initialize, pelcro_status
from tests.support.sandbox import READER, SECOND, SUBSCRIBERS

pytestmark = pytest.mark.sqlite

DEMO = ("demo", "pelcro-demo-2026")
WEEKLY = next(s for s in SUBSCRIBERS if s["site_id"] == 15)  # a customer of another site of the same account


@dataclass
class App:
    connection: Connection
    token: str  # the app's access token at /open
    jwt: str  # the Pelcro JWT the connection holds


def connect(env, who: dict = READER, *, name: str, access: str = READ_WRITE, confirm_writes: bool = True) -> App:
    """An app connected by subscriber `who` through the real OAuth flow (DCR, the
    subscriber's sign-in and consent at /oauth/authorize, code exchange): its access token
    for /open and the Pelcro JWT its connection holds. `confirm_writes=False` is stored
    afterwards (the subscriber's consent always keeps it on) to show how the page says it."""
    tokens = obtain_open_tokens(env.gateway.url, who["site_id"], who["email"], who["password"], access, name)
    connection = Connection.objects.select_related("application", "user").get(
        application__client_id=tokens["client_id"]
    )
    if not confirm_writes:
        Connection.objects.filter(pk=connection.pk).update(confirm_writes=False)
        connection.refresh_from_db()
    return App(connection, tokens["access_token"], held_jwt(connection.pk))


def subscriber_session(gateway_url: str, who: dict = READER) -> httpx.Client:
    """A browser session of subscriber `who`, signed in through the real sign-in page: the
    page the connections page sends a visitor to (`?next=`), the publication hinted, then
    e-mail and password, checked by the sandbox's Open API login; it comes back to next."""
    session = httpx.Client(base_url=gateway_url, timeout=30, follow_redirects=False)
    bounced = session.get("/open/connections")
    assert bounced.status_code == 302 and bounced.headers["location"].startswith("/open/sign-in?next=")
    page = session.get(bounced.headers["location"], params={"site_id": who["site_id"]})
    assert page.status_code == 200 and "Sign in to" in page.text, page.text[:500]
    form = next(f for f in parse_forms(page.text) if f["action"] == "/open/sign-in")
    done = session.post(form["action"], data={**form["hidden"], "email": who["email"], "password": who["password"]})
    assert done.status_code == 302 and done.headers["location"] == "/open/connections", done.text[:500]
    return session


def mcp_status(env, token: str) -> httpx.Response:
    return mcp_initialize(env.gateway.url, token)


def call_tool(env, app: App, name: str, arguments: dict | None = None):
    """One real tool call at /open through the SDK client, as the app makes it."""

    async def call():
        async with mcp_session(env.gateway.url + "/open", app.token, "2026-07-28") as client:
            return await client.call_tool(name, arguments or {})

    return asyncio.run(call())


def csrf_of(page: httpx.Response, action: str | None = None, *, form_id: str | None = None) -> dict:
    """The hidden fields (the CSRF token) of the page's form posting to `action` (or with id `form_id`)."""
    forms = parse_forms(page.text)
    return next(f for f in forms if (f["id"] == form_id if form_id else f["action"] == action))["hidden"]


def audit(app: App, tool: str, seconds_ago: int = 0, **fields) -> ToolCall:
    """An audit row of a tool call through `app` (the Open tools' rows look like this)."""
    subscriber = app.connection.user.subscriber
    return ToolCall.objects.create(
        created_at=timezone.now() - timedelta(seconds=seconds_ago),
        user=app.connection.user,
        username=app.connection.user.username,
        client_id=app.connection.application.client_id,
        client_name=app.connection.application.name,
        account=app.connection.account,
        connection=app.connection,
        site_id=subscriber.site.site_id,
        customer_id=subscriber.customer_id,
        tool=tool,
        outcome=fields.pop("outcome", "ok"),
        upstream_status=fields.pop("upstream_status", 200),
        **fields,
    )


@pytest.fixture
def env(mcp_env, fresh_sbx):
    """The gateway and the freshly seeded sandbox (no lock-outs or blacklist left over);
    `env.sbx` is the sandbox's admin client (request log, knobs)."""
    mcp_env.sbx = fresh_sbx
    return mcp_env


# --- the subscriber's page -------------------------------------------------------------------


def test_the_page_lists_my_apps_only_with_their_recent_activity(env):
    mine = connect(env, name="Claude (my Acme Daily)", confirm_writes=False)
    reader = connect(env, name="Cursor reading Acme Daily", access=READ)
    theirs = connect(env, SECOND, name="Second's own app")
    weekly = connect(env, WEEKLY, name="Weekly reader's app")
    obtain_tokens(env.gateway.url, *DEMO, "acme", client_name="Operator's Cursor")
    assert not call_tool(env, mine, "get_my_profile").is_error  # a real call, audited by the gateway
    assert len(audit_rows(1, connection_id=mine.connection.pk, tool="get_my_profile")) == 1
    audit(mine, "cancel_my_subscription", 30, dry_run=True)
    audit(mine, "cancel_my_subscription", 20, confirmation=ToolCall.Confirmation.CONFIRMED)
    audit(mine, "pay_invoice", 10, confirmation=ToolCall.Confirmation.DECLINED, outcome="denied", upstream_status=None)
    audit(mine, "update_my_profile", 5, outcome="error", upstream_status=400, error_message="The e-mail is taken.")
    audit(theirs, "list_my_invoices_of_second")
    audit(weekly, "list_my_invoices_of_weekly")

    with closing(subscriber_session(env.gateway.url)) as browser:
        page = browser.get("/open/connections")
    assert page.status_code == 200
    html = page.text
    assert "Claude (my Acme Daily)" in html and "Cursor reading Acme Daily" in html
    for other in ("Second&#x27;s own app", "Weekly reader&#x27;s app", "Operator&#x27;s Cursor"):
        assert other not in html and other.replace("&#x27;", "'") not in html
    assert "list_my_invoices_of_second" not in html and "list_my_invoices_of_weekly" not in html
    assert "Acme Daily" in html and READER["email"] in html
    # Access in the subscriber's words, and whether it asks before money actions.
    claude, cursor = (
        html.split(f'id="app-{app.connection.pk}"', 1)[1].split("</section>", 1)[0] for app in (mine, reader)
    )
    assert "Manage subscriptions and payments" in claude and "Does not ask you" in claude
    assert "Read only" in cursor and "Asks you first" in cursor
    # The recent activity: newest first, previews and confirmation decisions told plainly.
    assert claude.index("get_my_profile") < claude.index("update_my_profile") < claude.index("pay_invoice")
    assert claude.index("pay_invoice") < claude.index("cancel_my_subscription")
    assert "Preview only: nothing was changed" in claude and "You confirmed it" in claude
    assert "You declined it" in claude and ">Denied<" in claude and "The e-mail is taken." in claude
    assert "No activity yet." in cursor
    assert f'href="/open/connections/{mine.connection.pk}/revoke"' in claude
    for secret in (mine.jwt, mine.token, reader.jwt):
        assert secret not in html


def test_signed_out_visitors_and_operators_go_to_the_subscriber_sign_in(env):
    anonymous = httpx.get(env.gateway.url + "/open/connections", follow_redirects=False)
    assert anonymous.status_code == 302
    assert anonymous.headers["location"] == "/open/sign-in?next=%2Fopen%2Fconnections"
    # An operator's own sign-in is not a subscriber's: the same page sends them to sign in too.
    with closing(signed_in(env.gateway.url, *DEMO)) as operator:
        assert operator.get("/connections").status_code == 200
        page = operator.get("/open/connections")
    assert page.status_code == 302 and page.headers["location"].startswith("/open/sign-in?")


def test_revoke_ends_the_token_and_signs_the_jwt_out_at_pelcro(env):
    app = connect(env, name="Claude (my Acme Daily)")
    keep = connect(env, name="Another app of mine")
    assert not call_tool(env, app, "get_my_profile").is_error
    app.jwt = held_jwt(app.connection.pk)  # the JWT it holds now (an answer may carry a fresher one)
    assert pelcro_status(env, app.jwt) == 200

    with closing(subscriber_session(env.gateway.url)) as browser:
        since = env.sbx.last_seq()  # after the sign-in page's own login and logout
        confirm = browser.get(f"/open/connections/{app.connection.pk}/revoke")
        assert confirm.status_code == 200
        assert "Revoke" in confirm.text and "cannot be undone" in confirm.text and "signed out" in confirm.text
        assert mcp_status(env, app.token).status_code == 200  # a GET changes nothing
        action = f"/open/connections/{app.connection.pk}/revoke"
        done = browser.post(action, data=csrf_of(confirm, action))
        assert done.status_code == 302 and done.headers["location"] == "/open/connections"
        after = browser.get("/open/connections").text

    # The app's token is dead on the very next request: the client must sign in again.
    refused = mcp_status(env, app.token)
    assert refused.status_code == 401 and "invalid_token" in refused.headers["WWW-Authenticate"]
    # Its Pelcro JWT is blacklisted at Pelcro, and forgotten here.
    assert pelcro_status(env, app.jwt) == 403
    assert not SubscriberCredential.objects.filter(connection=app.connection).exists()
    logouts = [e for e in env.sbx.log(since) if e["path"].endswith("/auth/logout")]
    assert len(logouts) == 1 and logouts[0]["status"] == 200
    # The other app of the same subscriber keeps working, at the gateway and at Pelcro.
    assert mcp_status(env, keep.token).status_code == 200 and pelcro_status(env, keep.jwt) == 200
    # Listed as revoked, by "you"; the marker names the subscriber.
    assert "Revoked: Claude (my Acme Daily) can no longer act for you at Acme Daily." in after
    active, revoked = after.split("<h2>Revoked</h2>", 1)
    assert f'id="app-{app.connection.pk}"' not in active and f'id="app-{keep.connection.pk}"' in active
    assert "Claude (my Acme Daily)" in revoked and '<td data-label="By">you</td>' in revoked
    app.connection.refresh_from_db()
    assert app.connection.revoked_by == f"subscriber:{app.connection.user.username}"
    assert app.jwt not in env.gateway.log_text()


def test_another_subscribers_or_an_operators_connection_is_a_404(env):
    mine = connect(env, name="Mine")
    theirs = connect(env, SECOND, name="Second's app")
    operator = obtain_tokens(env.gateway.url, *DEMO, "acme", client_name="Operator's app")
    operators = Connection.objects.get(application__client_id=operator["client_id"])
    with closing(subscriber_session(env.gateway.url)) as browser:
        own = f"/open/connections/{mine.connection.pk}/revoke"
        token = csrf_of(browser.get(own), own)  # a valid CSRF token of this session
        for connection in (theirs.connection, operators):
            path = f"/open/connections/{connection.pk}/revoke"
            assert browser.get(path).status_code == 404  # no confirmation page for it
            assert browser.post(path).status_code == 403  # no CSRF token: refused before anything
            assert browser.post(path, data=token).status_code == 404  # crafted, with a valid token: not mine
        assert browser.get("/open/connections/999999999/revoke").status_code == 404
        # And my own revoke without the CSRF token is refused too.
        assert browser.post(f"/open/connections/{mine.connection.pk}/revoke").status_code == 403
    assert mcp_status(env, theirs.token).status_code == 200 and pelcro_status(env, theirs.jwt) == 200
    assert mcp_status(env, mine.token).status_code == 200
    assert Connection.objects.filter(revoked_at__isnull=False).count() == 0


def test_a_pelcro_that_cannot_be_reached_never_blocks_the_revoke(env):
    app = connect(env, name="Claude (my Acme Daily)")
    with closing(subscriber_session(env.gateway.url)) as browser:
        confirm = browser.get(f"/open/connections/{app.connection.pk}/revoke")
        action = f"/open/connections/{app.connection.pk}/revoke"
        env.sbx.configure(error_rate=1.0)  # every answer a 5xx, as if Pelcro were down
        try:
            done = browser.post(action, data=csrf_of(confirm, action))
            after = browser.get("/open/connections").text
        finally:
            env.sbx.restore_config()
    assert done.status_code == 302
    assert mcp_status(env, app.token).status_code == 401  # revoked all the same
    assert "Revoked: Claude (my Acme Daily)" in after
    assert "could not be reached to sign out" in after and "as soon as the publication answers" in after
    assert pelcro_status(env, app.jwt) == 200  # honestly: Pelcro did not sign it out
    # So the gateway keeps it, unusable, for the sweep (tests/test_open_jwt_sweep.py).
    assert held_jwt(app.connection.pk) == app.jwt
    log = env.gateway.log_text()
    assert f"connection {app.connection.pk}: Pelcro logout failed" in log and app.jwt not in log


def test_signing_out_ends_only_the_subscriber_session(env):
    connect(env, name="Mine")
    with closing(subscriber_session(env.gateway.url)) as browser:
        page = browser.get("/open/connections")
        assert page.status_code == 200
        out = browser.post("/open/sign-out", data=csrf_of(page, "/open/sign-out"))
        assert out.status_code == 302 and out.headers["location"].startswith("/open/sign-in")
        again = browser.get("/open/connections")
    assert again.status_code == 302 and again.headers["location"].startswith("/open/sign-in?")


# --- operators -------------------------------------------------------------------------------


def test_staff_list_and_revoke_subscriber_connections_in_the_admin(env):
    app = connect(env, name="Claude (my Acme Daily)", confirm_writes=False)
    keep = connect(env, SECOND, name="Second's app")
    with closing(signed_in(env.gateway.url, *DEMO)) as staff:
        listing = staff.get("/admin/mcp_bridge/subscriberconnection/")
        assert listing.status_code == 200
        html = listing.text
        assert "Claude (my Acme Daily)" in html and "Second&#x27;s app" in html
        assert READER["email"] in html and SECOND["email"] in html and "Acme Daily (14)" in html
        assert str(app.connection.user.subscriber.customer_id) in html
        assert app.jwt not in html and keep.jwt not in html
        detail = staff.get(f"/admin/mcp_bridge/subscriberconnection/{app.connection.pk}/change/").text
        assert "held, encrypted; expires" in detail and app.jwt not in detail
        form = csrf_of(listing, form_id="changelist-form")
        done = staff.post(
            "/admin/mcp_bridge/subscriberconnection/",
            data={**form, "action": "revoke", "_selected_action": [str(app.connection.pk)]},
        )
        assert done.status_code == 302
        after = staff.get(done.headers["location"]).text
    assert "Revoked 1 connection(s)" in after and "Signed 1 subscriber sign-in(s) out at Pelcro." in after
    assert mcp_status(env, app.token).status_code == 401 and pelcro_status(env, app.jwt) == 403
    assert mcp_status(env, keep.token).status_code == 200 and pelcro_status(env, keep.jwt) == 200
    app.connection.refresh_from_db()
    assert app.connection.revoked_by == "staff:demo"
    # The subscriber sees that an administrator did it, not which one.
    with closing(subscriber_session(env.gateway.url)) as browser:
        page = browser.get("/open/connections").text
    assert '<td data-label="By">an administrator</td>' in page and "demo" not in page.split("<h2>Revoked</h2>")[1]


def test_the_operator_connection_admin_revoke_signs_subscribers_out_too(env):
    app = connect(env, name="Claude (my Acme Daily)")
    with closing(signed_in(env.gateway.url, *DEMO)) as staff:
        listing = staff.get("/admin/accounts/connection/")
        done = staff.post(
            "/admin/accounts/connection/",
            data={
                **csrf_of(listing, form_id="changelist-form"),
                "action": "revoke",
                "_selected_action": [str(app.connection.pk)],
            },
        )
    assert done.status_code == 302
    assert mcp_status(env, app.token).status_code == 401 and pelcro_status(env, app.jwt) == 403


def test_non_staff_never_reach_the_subscriber_connections_admin(env):
    connect(env, name="Mine")
    with closing(signed_in(env.gateway.url, "alice", "pelcro-alice-2026")) as member:
        page = member.get("/admin/mcp_bridge/subscriberconnection/")
    assert page.status_code == 302 and page.headers["location"].startswith("/admin/login/")
    with closing(subscriber_session(env.gateway.url)) as browser:  # a subscriber is nobody in the admin
        page = browser.get("/admin/mcp_bridge/subscriberconnection/")
    assert page.status_code == 302 and page.headers["location"].startswith("/admin/login/")


def test_the_ops_dashboard_counts_subscriber_connections_per_site(env):
    connect(env, name="One")
    connect(env, SECOND, name="Two")
    gone = connect(env, name="Three")
    connect(env, WEEKLY, name="Four")
    from accounts.connections import revoke_connection

    revoke_connection(gone.connection, by="pelcro")
    with closing(signed_in(env.gateway.url, *DEMO)) as staff:
        html = staff.get("/ops/").text
    counts = dict(re.findall(r'data-subscriber-site="(\d+)".*?data-cell="subscriber-connections">(\d+)<', html, re.S))
    assert counts["14"] == "2" and counts["15"] == "1"
    assert "/admin/mcp_bridge/subscriberconnection/" in html


# --- in a real browser ---------------------------------------------------------------------------

LONG_NAME = "Claude Desktop (my Acme Daily account) with a very long self-chosen name " + "z" * 50


def browser_sign_in(page, url: str, who: dict = READER) -> None:
    """Open /open/connections signed out: the subscriber sign-in page (publication, then
    e-mail and password, checked by the sandbox's Open API login) brings the browser back."""
    page.goto(url + "/open/connections")
    assert "/open/sign-in" in page.url
    page.check(f"input[name=site_id][value='{who['site_id']}']")
    page.click("button[type=submit][value=site]")
    page.fill("input[name=email]", who["email"])
    page.fill("input[name=password]", who["password"])
    page.click("button[type=submit]:has-text('Sign in')")
    page.wait_for_url(url + "/open/connections")


@pytest.mark.browser
def test_sign_in_list_and_revoke_in_a_browser_at_desktop_and_phone_width(env, browser):
    from tests.test_pages_browser import (
        AXE,
        SHOTS,
        WIDTHS,
        axe_violations,
        horizontal_overflow,
        unfocusable_controls,
    )

    assert AXE.exists(), "axe-core is missing: run scripts/lib.sh's ensure_node_tools (make test does)"
    url = env.gateway.url
    apps = {width: connect(env, name=f"{LONG_NAME} {width}", confirm_writes=False) for width in WIDTHS}
    reader = connect(env, name="Cursor reading Acme Daily", access=READ)
    for i, app in enumerate(apps.values()):
        audit(app, "cancel_my_subscription", 40 + i, dry_run=True)
        audit(app, "cancel_my_subscription", 30 + i, confirmation=ToolCall.Confirmation.CONFIRMED)
        audit(app, "pay_invoice", 20 + i, confirmation=ToolCall.Confirmation.DECLINED, outcome="denied")
        audit(app, "update_my_profile", 10 + i, outcome="error", upstream_status=400, error_message="x" * 300)
    gone = connect(env, name="Windsurf (an old one)")
    end_by_pelcro(gone)
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []

    def check(page, name: str, width: int) -> None:
        page.wait_for_load_state()
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
        if (overflow := horizontal_overflow(page)) > 0:
            problems.append(f"{name} at {width}px: page scrolls sideways by {overflow}px")
        for v in axe_violations(page):
            problems.append(f"{name} at {width}px: axe {v['impact']} {v['id']} ({v['help']}) at {v['nodes']}")
        if width == WIDTHS[0]:
            for control in unfocusable_controls(page):
                problems.append(f"{name}: no visible focus on {control['tag']} {control['text']!r}")

    for width in WIDTHS:
        app = apps[width]
        context = browser.new_context(viewport={"width": width, "height": 900})
        page = context.new_page()
        browser_sign_in(page, url)
        assert page.locator(f"#app-{app.connection.pk}").is_visible()
        assert page.locator(f"#app-{reader.connection.pk}").is_visible()
        check(page, "open-connections", width)

        page.click(f"a[href='/open/connections/{app.connection.pk}/revoke']")
        page.wait_for_url(f"{url}/open/connections/{app.connection.pk}/revoke")
        check(page, "open-revoke-confirm", width)
        page.click("button:has-text('Revoke access')")
        page.wait_for_url(url + "/open/connections")
        assert "can no longer act for you at Acme Daily" in page.content()
        assert page.locator(f"#app-{app.connection.pk}").count() == 0
        check(page, "open-connections-revoked", width)
        # Revoked at once, and signed out at Pelcro.
        assert mcp_status(env, app.token).status_code == 401 and pelcro_status(env, app.jwt) == 403

        page.locator("form[action='/open/sign-out'] button").click()
        page.wait_for_load_state()
        assert "/open/sign-in" in page.url
        page.goto(url + "/open/connections")
        assert "/open/sign-in" in page.url  # signed out: the page asks to sign in again
        context.close()

    assert mcp_status(env, reader.token).status_code == 200  # the app not revoked still works
    assert not problems, "\n".join(problems)


def end_by_pelcro(app: App) -> None:
    from accounts.connections import revoke_connection

    revoke_connection(app.connection, by="pelcro")
