"""Issue 14's done-when, end to end: a real MCP client finds the Open server's sign-in on its
own (401 → RFC 9728 → RFC 8414 → DCR → PKCE), the subscriber picks the publication, signs in
and consents (the HTML forms driven with httpx, as a person's browser would), and the client
lists and cancels its own subscription; then an operator's Core tools see it canceled.

- the `mcp` Python SDK (its own OAuth client) in both protocol eras (2026-07-28, and the
  handshake era), one demo subscriber each;
- the TypeScript SDK v2 (`@modelcontextprotocol/client`, its own OAuth client,
  `devtools/ts_open_client.mjs`) pinned to each era, one demo subscriber each.

Cancellation mode `last_period_end` (the Open API's end-of-period cancel), and (issue 15)
mode `now` on site 15, which allows immediate cancellation: a person's confirmation first.
The Python SDK client declares elicitation in both eras. In 2026-07-28 the subscriber is
asked through it (the multi round-trip pattern): a no sends nothing, a yes cancels once. In
the handshake era this stateless endpoint cannot carry a server-to-client request (README
"Safe writes"), so the call fails closed to the confirmation link: the subscriber signs in
on the page with the publication, confirms, and the repeated call cancels once (the
client's elicitation is never used, nor auto-approved).
"""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import threading
import time

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata
from mcp_types import ElicitResult

from accounts.models import Connection, Subscriber
from devtools.oauth_client import redirect_params, subscriber_step
from devtools.servers import ROOT
from tests.support.mcp import audit_rows, mcp_session
from tests.support.node import ensure_node_tools, node
from tests.support.sandbox import READER, SECOND, SUBSCRIBERS
from tests.test_oauth_e2e import MemoryStorage

REDIRECT_URI = "http://127.0.0.1:47300/callback"
ACCOUNT_OF_SITE = {14: "acme", 15: "acme", 27: "other", 31: "globex"}
PYTHON_SUBSCRIBERS = {"2026-07-28": READER, "legacy": SECOND}
TS_SUBSCRIBERS = {
    "legacy": next(s for s in SUBSCRIBERS if s["site_id"] == 15),
    "2026-07-28": next(s for s in SUBSCRIBERS if s["site_id"] == 27),
}
REASON = "Reading elsewhere for a while"


class SubscriberAtTheBrowser:
    """The person: opens the authorize URL the client gives, picks the publication, signs in
    with their e-mail and password, allows "manage subscriptions and payments"."""

    def __init__(self, gateway_url: str, subscriber: dict):
        self.gateway_url, self.subscriber = gateway_url, subscriber
        self.authorize_url: str | None = None
        self.pages: list[str] = []

    async def open_browser(self, url: str) -> None:
        self.authorize_url = url

    def sign_in_and_allow(self, url: str | None = None) -> dict:
        with httpx.Client(timeout=30, follow_redirects=False) as browser:
            page = browser.get(url or self.authorize_url)
            assert page.status_code == 200, page.text[:500]
            step, form = subscriber_step(page)
            assert step == "site"
            page = browser.post(
                self.gateway_url + form["action"], data={**form["hidden"], "site_id": str(self.subscriber["site_id"])}
            )
            step, form = subscriber_step(page)
            assert step == "sign_in"
            page = browser.post(
                self.gateway_url + form["action"],
                data={**form["hidden"], "email": self.subscriber["email"], "password": self.subscriber["password"]},
            )
            step, form = subscriber_step(page)
            assert step == "consent", page.text[:500]
            self.pages.append(page.text)
            answer = browser.post(
                self.gateway_url + form["action"], data={**form["hidden"], "access": "read_write", "allow": "true"}
            )
        return redirect_params(answer)

    async def callback(self) -> AuthorizationCodeResult:
        params = await anyio.to_thread.run_sync(self.sign_in_and_allow)
        return AuthorizationCodeResult(code=params["code"], state=params.get("state"), iss=params.get("iss"))


@contextlib.asynccontextmanager
async def signed_in_session(gateway_url: str, person: SubscriberAtTheBrowser, mode: str, **options):
    """An SDK client of the Open server whose OAuth the SDK runs itself; `options` go to
    `mcp.Client` (e.g. `elicitation_callback=...`)."""
    storage = MemoryStorage()
    provider = OAuthClientProvider(
        server_url=gateway_url + "/open",
        client_metadata=OAuthClientMetadata(
            client_name=f"python-sdk-{mode}", redirect_uris=[REDIRECT_URI], token_endpoint_auth_method="none"
        ),
        storage=storage,
        redirect_handler=person.open_browser,
        callback_handler=person.callback,
    )
    async with (
        httpx2.AsyncClient(auth=provider, timeout=60) as http,
        Client(streamable_http_client(gateway_url + "/open", http_client=http), mode=mode, **options) as client,
    ):
        yield client, storage


def active_subscription(subscriptions: list[dict]) -> dict:
    return next(s for s in subscriptions if s["status"] == "active" and not s.get("cancel_at_period_end"))


async def core_sees_it_canceled(env, subscriber: dict, subscription_id: int, mode: str) -> dict:
    from asgiref.sync import sync_to_async

    account = ACCOUNT_OF_SITE[subscriber["site_id"]]
    token = await sync_to_async(env.token)(account)
    async with mcp_session(env.url, token, mode) as core:
        answer = await core.call_tool(
            "get_subscription", {"site_id": subscriber["site_id"], "subscription_id": subscription_id}
        )
    assert not answer.is_error, answer
    return answer.structured_content


@pytest.mark.sqlite
@pytest.mark.parametrize("mode", list(PYTHON_SUBSCRIBERS))
async def test_the_python_sdk_lists_and_cancels_its_own_subscription(mcp_env, fresh_sbx, mode):
    subscriber = PYTHON_SUBSCRIBERS[mode]
    person = SubscriberAtTheBrowser(mcp_env.gateway.url, subscriber)
    async with signed_in_session(mcp_env.gateway.url, person, mode) as (client, storage):
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert {"list_my_subscriptions", "cancel_my_subscription"} <= tools
        listed = await client.call_tool("list_my_subscriptions", {})
        assert not listed.is_error, listed
        target = active_subscription(listed.structured_content["subscriptions"])
        canceled = await client.call_tool(
            "cancel_my_subscription",
            {"subscription_id": target["id"], "mode": "last_period_end", "reason": REASON},
        )
        assert not canceled.is_error, canceled
        assert canceled.structured_content["id"] == target["id"]
        assert canceled.structured_content["cancel_at_period_end"] is True
        again = await client.call_tool("list_my_subscriptions", {})
        mine = next(s for s in again.structured_content["subscriptions"] if s["id"] == target["id"])
        assert mine["cancel_at_period_end"] is True and mine["cancel_at"]
    # The SDK did it all itself: the authorize URL named the Open server, the token is its.
    query = httpx.URL(person.authorize_url).params
    assert query["resource"] == mcp_env.gateway.url + "/open" and query["code_challenge_method"] == "S256"
    assert storage.tokens.scope == "read write"
    assert "python-sdk-" in person.pages[0] and "Manage subscriptions and payments" in person.pages[0]
    from mcp_bridge.orm import run_db

    connection = await run_db(lambda: Connection.objects.get(application__client_id=storage.client_info.client_id))
    subscriber_row = await run_db(lambda: Subscriber.objects.select_related("site").get(user_id=connection.user_id))
    assert subscriber_row.site.site_id == subscriber["site_id"] and subscriber_row.email == subscriber["email"]
    rows = await anyio.to_thread.run_sync(lambda: audit_rows(1, connection=connection, tool="cancel_my_subscription"))
    assert len(rows) == 1 and rows[0].outcome == "ok" and rows[0].customer_id == subscriber_row.customer_id
    # The publication's staff, through the Core server, see the cancellation.
    core = await core_sees_it_canceled(mcp_env, subscriber, target["id"], mode)
    assert core["id"] == target["id"] and core["cancel_at_period_end"] is True


# --- the TypeScript SDK v2 ---------------------------------------------------------------------


class NodeClient:
    """devtools/ts_open_client.mjs as a child process: its stdout lines in a queue (read by a
    thread, so every wait has a deadline), its stdin for the callback."""

    def __init__(self, url: str, mode: str):
        binary, env = node()
        self.proc = subprocess.Popen(
            [binary, str(ROOT / "devtools" / "ts_open_client.mjs")],
            env={**env, "MCP_URL": url, "MCP_MODE": mode, "REDIRECT_URI": REDIRECT_URI},
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put("")  # end of output

    def expect(self, prefix: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line.startswith(prefix):
                return line.removeprefix(prefix)
            if line == "" and self.proc.poll() is not None:
                break
        self.proc.kill()
        raise AssertionError(f"no {prefix!r} from the TypeScript client; stderr: {self.proc.stderr.read()[-3000:]}")

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.mark.sqlite
@pytest.mark.parametrize("mode", list(TS_SUBSCRIBERS))
def test_the_typescript_sdk_lists_and_cancels_its_own_subscription(mcp_env, fresh_sbx, mode):
    ensure_node_tools()
    subscriber = TS_SUBSCRIBERS[mode]
    person = SubscriberAtTheBrowser(mcp_env.gateway.url, subscriber)
    client = NodeClient(mcp_env.gateway.url + "/open", mode)
    try:
        authorize_url = client.expect("AUTHORIZE ")
        params = person.sign_in_and_allow(authorize_url)
        client.send("CALLBACK " + str(httpx.QueryParams(params)))
        seen = json.loads(client.expect("RESULT "))
    finally:
        client.close()
    assert client.proc.returncode == 0, client.proc.stderr.read()[-3000:]
    assert "fatal" not in seen, seen
    query = httpx.URL(authorize_url).params
    assert query["resource"] == mcp_env.gateway.url + "/open" and query["code_challenge_method"] == "S256"
    assert seen["scope"] == "read write"
    assert {"list_my_subscriptions", "cancel_my_subscription"} <= set(seen["tools"])
    target = seen["canceled"]["structuredContent"]
    assert seen["canceled"]["isError"] is False and target["cancel_at_period_end"] is True
    after = next(s for s in seen["after"]["structuredContent"]["subscriptions"] if s["id"] == target["id"])
    assert after["cancel_at_period_end"] is True
    assert f"typescript-sdk-v2-{mode}" in person.pages[0]  # the client registered itself (DCR)
    if mode == "2026-07-28":
        assert seen["protocolVersion"] == "2026-07-28"
    else:
        assert seen["protocolVersion"].startswith("2025-")  # the handshake era
    core = anyio.run(core_sees_it_canceled, mcp_env, subscriber, target["id"], "legacy")
    assert core["cancel_at_period_end"] is True and core["id"] == target["id"]


# --- cancel now, confirmed by the subscriber (issue 15) ----------------------------------------

WEEKLY = next(s for s in SUBSCRIBERS if s["site_id"] == 15)  # site 15 allows immediate cancellation
CANCEL_PATH = "/api/v1/sdk/subscription/cancel"


def cancels_sent(truth, since: int) -> list[dict]:
    return [e for e in truth.log(since=since, api="open") if (e["method"], e["path"]) == ("POST", CANCEL_PATH)]


def confirm_on_the_page(gateway_url: str, subscriber: dict, url: str) -> str:
    """The subscriber opens the confirmation link in their browser: sent to the
    publication's sign-in (the site preselected), back to the page, which shows the summary;
    they press Confirm. Returns the page's text after the answer."""
    from devtools.oauth_client import parse_forms
    from tests.test_subscriber_session import sign_in_page

    path = url.removeprefix(gateway_url)
    with httpx.Client(base_url=gateway_url, timeout=30, follow_redirects=False) as browser:
        first = browser.get(path)
        assert first.status_code == 302 and first.headers["location"].startswith("/open/sign-in")
        assert f"site_id={subscriber['site_id']}" in first.headers["location"]
        assert sign_in_page(browser, subscriber, next_url=path).headers["location"] == path
        page = browser.get(path)
        assert page.status_code == 200 and "Confirm this action?" in page.text
        form = next(f for f in parse_forms(page.text) if f["action"] and "/confirm/" in f["action"])
        answered = browser.post(form["action"], data={**form["hidden"], "answer": "confirm"})
        assert answered.status_code == 303
        return page.text + browser.get(path).text


@pytest.mark.parametrize("mode", ["2026-07-28", "legacy"])
async def test_the_python_sdk_cancels_now_once_the_subscriber_confirms(mcp_env, fresh_sbx, truth, mode):
    """Signed in through the real OAuth flow as site 15's demo subscriber, a client that
    handles elicitation cancels its own subscription with mode now: nothing is sent until
    the subscriber says yes, then once; the Core tools then see it canceled."""
    person = SubscriberAtTheBrowser(mcp_env.gateway.url, WEEKLY)
    asked: list = []
    answers = ["decline", "accept", "decline"]

    async def elicitation(context, params):
        asked.append(params)
        action = answers.pop(0)
        return ElicitResult(action=action, content={"confirm": True} if action == "accept" else None)

    async with signed_in_session(mcp_env.gateway.url, person, mode, elicitation_callback=elicitation) as (client, _s):
        listed = await client.call_tool("list_my_subscriptions", {})
        target = active_subscription(listed.structured_content["subscriptions"])
        args = {"subscription_id": target["id"], "mode": "now", "reason": REASON}
        since = truth.last_seq()
        if mode == "2026-07-28":
            declined = await client.call_tool("cancel_my_subscription", args)
            assert declined.is_error and declined.structured_content["error"] == "confirmation_declined"
            assert cancels_sent(truth, since) == []
            canceled = await client.call_tool("cancel_my_subscription", args)
            assert len(asked) == 2 and asked[0].message == asked[1].message
            summary = asked[0].message
        else:
            first = await client.call_tool("cancel_my_subscription", args)
            assert first.is_error and first.structured_content["error"] == "confirmation_required", first
            assert cancels_sent(truth, since) == []
            url = first.structured_content["confirmation_url"]
            summary = await anyio.to_thread.run_sync(confirm_on_the_page, mcp_env.gateway.url, WEEKLY, url)
            assert "Confirmed" in summary
            canceled = await client.call_tool("cancel_my_subscription", args)
            assert asked == []  # fail closed: the client's elicitation was never asked, nor assumed
        assert not canceled.is_error, canceled
        assert canceled.structured_content["id"] == target["id"] and canceled.structured_content["status"] == "canceled"
        # The same call again is asked again (its yes was used), and declined: one cancel.
        again = await client.call_tool("cancel_my_subscription", args)
        assert again.structured_content["error"] == (
            "confirmation_declined" if mode == "2026-07-28" else "confirmation_required"
        )
    # The person was told what they confirm: which subscription, that it ends now, for good.
    assert str(target["id"]) in summary and "AT ONCE" in summary and "cannot be undone" in summary.lower()
    assert "Acme Weekly" in summary
    assert len(cancels_sent(truth, since)) == 1
    connection = await anyio.to_thread.run_sync(
        lambda: Connection.objects.get(application__client_id=_s.client_info.client_id)
    )
    expected = ["asked", "declined", "asked", "confirmed", "asked", "declined"]
    if mode == "legacy":
        expected = ["asked", "confirmed", "asked"]
    rows = await anyio.to_thread.run_sync(
        lambda: audit_rows(len(expected), connection=connection, tool="cancel_my_subscription")
    )
    assert [r.confirmation for r in rows] == expected
    # The publication's staff, through the Core server, see it canceled.
    core = await core_sees_it_canceled(mcp_env, WEEKLY, target["id"], mode)
    assert core["id"] == target["id"] and core["status"] == "canceled"
