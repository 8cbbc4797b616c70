"""A person confirms money-moving and irreversible actions (issue 15 item 1; README "Safe
writes"), end to end: real `mcp` SDK clients → the gateway (uvicorn) → the sandbox, whose
request log says whether the write was sent.

- A 2026-07-28 client that handles elicitation is asked through the multi round-trip
  pattern (`InputRequiredResult` + sealed request state): declining sends nothing,
  accepting sends the write once; an altered, replayed, misdirected or expired state is
  refused.
- A 2025 client (elicitation declared or not) and a 2026 client without elicitation get
  `confirmation_required` with a link: confirming on the page as the signed-in person and
  repeating the call sends the write once; a second use, another connection or other
  arguments are refused; a declined or expired confirmation writes nothing.
- The consent's choice: a member cannot turn confirmations off (a crafted POST is
  refused), an owner can; such calls run without asking, audited `waived`.
The page in Chromium: tests/test_confirmation_browser.py.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from mcp.shared.exceptions import MCPError
from mcp_types import ElicitResult

from devtools.oauth_client import (
    authorize_url,
    consent_form,
    obtain_tokens,
    parse_forms,
    pkce_pair,
    redirect_params,
    register_client,
    signed_in,
)
from mcp_bridge.orm import run_db
from mcp_bridge.servers import TOOLS
from tests.support.mcp import PASSWORDS, audit_rows_async, mcp_session

SITE = 14
TOOL = "create_offline_charge"
CONFIRMED_TOOLS = {
    "void_invoice",
    "mark_invoice_uncollectible",
    "pay_invoice_offline",
    "create_offline_charge",
    "apply_invoice_balance",
    "delete_customer",
    "cancel_subscription",
    "create_subscription",
    "cancel_refunds",
    "delete_address",
}


def charge_args(truth, reference: str | None = None) -> dict:
    """A `create_offline_charge` call on a real customer of acme's site 14 (always allowed)."""
    customer = truth.ok("GET", "/customers", site_id=SITE, params={"limit": 1})[0]["id"]
    return {
        "site_id": SITE,
        "customer_id": customer,
        "amount": 1234,
        "currency": "usd",
        "reference": reference or f"CONF-{uuid.uuid4().hex[:8]}",
        "payment_category": "check",
    }


def charges_sent(truth, since: int) -> list[dict]:
    """The charges the gateway sent to the sandbox since `since` (its request log)."""
    return [
        e
        for e in truth.log(since=since, account="acme")
        if (e["method"], e["path"]) == ("POST", "/api/v1/core/charges")
    ]


def other_app_token(mcp_env, confirm_writes: bool = True) -> str:
    """A token of another connection of the same person and account: another app (client
    registration; an identical registration is handed back, so the name differs)."""
    tokens = obtain_tokens(
        mcp_env.gateway.url, "demo", PASSWORDS["demo"], "acme", client_name="another-app", confirm_writes=confirm_writes
    )
    return tokens["access_token"]


def answering(action: str, content: dict | None = None, seen: list | None = None):
    """An elicitation callback that answers `action` (and records each message it shows)."""

    async def callback(context, params):
        if seen is not None:
            seen.append(params)
        return ElicitResult(action=action, content=content)

    return callback


async def rows_for(count: int, **filters) -> list:
    return await audit_rows_async(count, tool=TOOL, **filters)


def confirmation_rows(**filters) -> list:
    from mcp_bridge.models import PendingConfirmation

    return list(PendingConfirmation.objects.filter(**filters).order_by("created_at"))


# --- MCP 2026-07-28: elicitation through the multi round-trip pattern ------------------------


async def test_declining_in_the_client_writes_nothing(mcp_env, truth):
    token = mcp_env.token()
    args = charge_args(truth)
    since = truth.last_seq()
    seen: list = []
    async with mcp_session(mcp_env.url, token, "2026-07-28", elicitation_callback=answering("decline", seen=seen)) as c:
        result = await c.call_tool(TOOL, args)
    assert result.is_error and result.structured_content["error"] == "confirmation_declined"
    assert "declined" in result.content[0].text and "nothing was written" in result.content[0].text
    assert charges_sent(truth, since) == []
    # The person was shown a precise summary: the customer, the amount with its currency.
    assert len(seen) == 1 and seen[0].mode == "form"
    assert str(args["customer_id"]) in seen[0].message and "12.34" in seen[0].message
    assert "usd" in seen[0].message.lower()
    assert seen[0].requested_schema["properties"]["confirm"]["type"] == "boolean"
    rows = await rows_for(2)
    assert [(r.confirmation, r.outcome) for r in rows] == [("asked", "ok"), ("declined", "error")]
    # list_recent_writes, read as text by a model checking what happened: no line reads as a write.
    async with mcp_session(mcp_env.url, token, "2026-07-28") as c:
        listed = (await c.call_tool("list_recent_writes", {"tool": TOOL})).content[0].text.splitlines()[1:]
    assert len(listed) == 2 and all("nothing written" in line for line in listed), listed
    assert "declined by the person" in listed[0] and "asked a person" in listed[1]


@pytest.mark.parametrize(
    ("action", "content"),
    [("cancel", None), ("accept", {"confirm": False}), ("accept", {})],
    ids=["cancel", "accept-unticked", "accept-empty"],
)
async def test_anything_but_a_ticked_yes_is_a_no(mcp_env, truth, action, content):
    token = mcp_env.token()
    since = truth.last_seq()
    async with mcp_session(mcp_env.url, token, "2026-07-28", elicitation_callback=answering(action, content)) as c:
        result = await c.call_tool(TOOL, charge_args(truth))
    assert result.structured_content["error"] == "confirmation_declined"
    assert charges_sent(truth, since) == []


async def test_accepting_in_the_client_writes_once(mcp_env, truth):
    token = mcp_env.token()
    args = charge_args(truth)
    since = truth.last_seq()
    async with mcp_session(
        mcp_env.url, token, "2026-07-28", elicitation_callback=answering("accept", {"confirm": True})
    ) as c:
        result = await c.call_tool(TOOL, args)
    assert not result.is_error, result.content[0].text
    assert result.structured_content["amount"] == 1234 and result.structured_content["reference"] == args["reference"]
    assert len(charges_sent(truth, since)) == 1
    rows = await rows_for(2)
    assert [(r.confirmation, r.outcome, r.upstream_status) for r in rows][1] == ("confirmed", "ok", 201)
    # The asking round does not read as a write: no upstream status (the preview's read is
    # not the write's), and it says nothing was written.
    assert (rows[0].confirmation, rows[0].upstream_status) == ("asked", None)
    assert "nothing was written" in rows[0].error_message
    used = await run_db(confirmation_rows, tool=TOOL, channel="elicitation")
    assert [(c.status, c.used_at is not None) for c in used] == [("confirmed", True)]


async def first_round(client, args: dict):
    """The first `tools/call`, driven by hand: the `InputRequiredResult` the gateway answers."""
    asked = await client.session.call_tool(TOOL, args, allow_input_required=True)
    assert asked.result_type == "input_required" and set(asked.input_requests) == {"confirm"}
    assert asked.request_state.startswith("v1.")  # sealed by the SDK's boundary (AES-256-GCM)
    return asked


YES = {"confirm": ElicitResult(action="accept", content={"confirm": True})}


def eliciting(url: str, token: str):
    """A 2026-07-28 session that declares elicitation; the tests drive its rounds by hand."""
    return mcp_session(url, token, "2026-07-28", elicitation_callback=answering("accept", {"confirm": True}))


async def test_an_altered_or_forged_request_state_is_refused(mcp_env, truth):
    token = mcp_env.token()
    args = charge_args(truth)
    since = truth.last_seq()
    async with eliciting(mcp_env.url, token) as client:
        asked = await first_round(client, args)
        state = asked.request_state
        flipped = state[:-5] + ("A" if state[-5] != "A" else "B") + state[-4:]
        for forged in (flipped, state + "x", "v1.AAAA", '{"v":1,"id":"x"}'):
            with pytest.raises(MCPError) as refused:
                await client.session.call_tool(
                    TOOL, args, input_responses=YES, request_state=forged, allow_input_required=True
                )
            assert refused.value.error.code == -32602
            assert "cannot be used" in refused.value.error.message and "Nothing was run" in refused.value.error.message
        # Sealed for these arguments: the same state with other arguments is refused too.
        with pytest.raises(MCPError):
            await client.session.call_tool(
                TOOL, {**args, "amount": 99999}, input_responses=YES, request_state=state, allow_input_required=True
            )
    assert charges_sent(truth, since) == []
    rows = await rows_for(6)
    assert [r.confirmation for r in rows] == ["asked"] + ["refused"] * 5
    assert all(r.outcome == "error" and "cannot be used" in r.error_message for r in rows[1:])


@pytest.mark.sqlite
async def test_a_request_state_works_once(mcp_env, truth):
    token = mcp_env.token()
    args = charge_args(truth)
    since = truth.last_seq()
    async with eliciting(mcp_env.url, token) as client:
        asked = await first_round(client, args)
        done = await client.session.call_tool(
            TOOL, args, input_responses=YES, request_state=asked.request_state, allow_input_required=True
        )
        assert not done.is_error, done.content[0].text
        with pytest.raises(MCPError) as replayed:
            await client.session.call_tool(
                TOOL, args, input_responses=YES, request_state=asked.request_state, allow_input_required=True
            )
        assert replayed.value.error.code == -32602 and "already used" in replayed.value.error.message
    assert len(charges_sent(truth, since)) == 1
    assert [r.confirmation for r in await rows_for(3)] == ["asked", "confirmed", "refused"]


async def test_a_request_state_is_bound_to_its_connection(mcp_env, truth):
    args = charge_args(truth)
    since = truth.last_seq()
    async with eliciting(mcp_env.url, mcp_env.token()) as client:
        asked = await first_round(client, args)
    # The same person, another connection (another app).
    async with eliciting(mcp_env.url, other_app_token(mcp_env)) as other:
        with pytest.raises(MCPError) as refused:
            await other.session.call_tool(
                TOOL, args, input_responses=YES, request_state=asked.request_state, allow_input_required=True
            )
    assert refused.value.error.code == -32602
    assert charges_sent(truth, since) == []


async def test_an_answer_after_the_confirmation_expired_writes_nothing(mcp_env, truth):
    from mcp_bridge.models import PendingConfirmation

    token = mcp_env.token()
    args = charge_args(truth)
    since = truth.last_seq()
    async with eliciting(mcp_env.url, token) as client:
        asked = await first_round(client, args)
        await run_db(
            lambda: PendingConfirmation.objects.filter(tool=TOOL).update(
                expires_at=PendingConfirmation.objects.get(tool=TOOL).created_at
            )
        )
        late = await client.session.call_tool(
            TOOL, args, input_responses=YES, request_state=asked.request_state, allow_input_required=True
        )
    assert late.is_error and late.structured_content["error"] == "confirmation_required"
    assert "expired" in late.content[0].text and "nothing was written" in late.content[0].text
    assert charges_sent(truth, since) == []
    assert [r.confirmation for r in await rows_for(2)] == ["asked", "expired"]


async def test_responses_without_the_sealed_state_only_ask_again(mcp_env, truth):
    """A client cannot confirm by itself: `inputResponses` without the request state the
    gateway sealed is a first round (the person is asked), never a yes."""
    token = mcp_env.token()
    since = truth.last_seq()
    async with eliciting(mcp_env.url, token) as client:
        again = await client.session.call_tool(TOOL, charge_args(truth), input_responses=YES, allow_input_required=True)
    assert again.result_type == "input_required"
    assert charges_sent(truth, since) == []


# --- Clients that cannot be asked: the confirmation page ------------------------------------


def page_session(mcp_env, username: str = "demo") -> httpx.Client:
    return signed_in(mcp_env.gateway.url, username, PASSWORDS[username])


def answer_on_page(session: httpx.Client, url: str, answer: str) -> httpx.Response:
    """Open the confirmation page and press Confirm or Decline (a plain form with CSRF)."""
    page = session.get(url)
    assert page.status_code == 200, page.text[:300]
    form = next(f for f in parse_forms(page.text) if f["action"] and "/confirm/" in f["action"])
    response = session.post(form["action"], data={**form["hidden"], "answer": answer})
    assert response.status_code == 303 and response.headers["location"].endswith(url.split("/confirm/")[1])
    return session.get(url)


@pytest.mark.sqlite
@pytest.mark.parametrize(
    ("mode", "callback"),
    [("2026-07-28", None), ("legacy", None), ("legacy", answering("accept", {"confirm": True}))],
    ids=["2026-no-elicitation", "2025-no-elicitation", "2025-with-elicitation"],
)
async def test_without_elicitation_the_page_confirms_and_the_repeat_writes_once(mcp_env, truth, mode, callback):
    """The 2025 era over this stateless JSON transport cannot carry a server-to-client
    elicitation (the SDK has no back channel), so even a 2025 client that declares
    elicitation gets the link: fail closed, never auto-approved."""
    token = mcp_env.token()
    args = charge_args(truth)
    since = truth.last_seq()
    options = {"elicitation_callback": callback} if callback else {}
    session = page_session(mcp_env)
    async with mcp_session(mcp_env.url, token, mode, **options) as client:
        first = await client.call_tool(TOOL, args)
        assert first.is_error and first.structured_content["error"] == "confirmation_required"
        url = first.structured_content["confirmation_url"]
        assert url.startswith(mcp_env.gateway.url + "/confirm/") and url in first.content[0].text
        assert "Nothing was written" in first.content[0].text and "same arguments" in first.content[0].text
        # Repeated before the person answered: the same link, still nothing written.
        again = await client.call_tool(TOOL, args)
        assert again.structured_content["confirmation_url"] == url
        assert charges_sent(truth, since) == []

        page = session.get(url)
        assert page.status_code == 200
        assert str(args["customer_id"]) in page.text and "12.34" in page.text and "Confirm this action?" in page.text
        confirmed = answer_on_page(session, url, "confirm")
        assert "Confirmed" in confirmed.text and "repeat the call once" in confirmed.text

        done = await client.call_tool(TOOL, args)
        assert not done.is_error, done.content[0].text
        assert len(charges_sent(truth, since)) == 1
        # The confirmation is used up: the next identical call asks again and writes nothing.
        second = await client.call_tool(TOOL, args)
        assert second.structured_content["error"] == "confirmation_required"
        assert second.structured_content["confirmation_url"] != url
    assert len(charges_sent(truth, since)) == 1
    assert "Already used" in session.get(url).text
    session.close()
    rows = await rows_for(4)
    assert [r.upstream_status for r in rows] == [None, None, 201, None]
    assert [(r.confirmation, r.outcome) for r in rows] == [
        ("asked", "error"),
        ("asked", "error"),
        ("confirmed", "ok"),
        ("asked", "error"),
    ]


async def test_a_page_confirmation_is_bound_to_its_connection_and_arguments(mcp_env, truth):
    token, other_token = mcp_env.token(), other_app_token(mcp_env)
    args = charge_args(truth)
    since = truth.last_seq()
    session = page_session(mcp_env)
    async with mcp_session(mcp_env.url, token, "2026-07-28") as client:
        url = (await client.call_tool(TOOL, args)).structured_content["confirmation_url"]
        answer_on_page(session, url, "confirm")
        # Other arguments through the same connection: not confirmed.
        changed = await client.call_tool(TOOL, {**args, "amount": 1235})
        assert changed.structured_content["error"] == "confirmation_required"
        assert changed.structured_content["confirmation_url"] != url
        # The same arguments through another connection of the same person: not confirmed.
        async with mcp_session(mcp_env.url, other_token, "2026-07-28") as other:
            elsewhere = await other.call_tool(TOOL, args)
        assert elsewhere.structured_content["error"] == "confirmation_required"
        assert charges_sent(truth, since) == []
        # Its own connection, its own arguments: runs once.
        assert not (await client.call_tool(TOOL, args)).is_error
    assert len(charges_sent(truth, since)) == 1
    session.close()


@pytest.mark.sqlite
@pytest.mark.parametrize(
    "callback", [None, answering("accept", {"confirm": True})], ids=["2025-no-elicitation", "2025-with-elicitation"]
)
async def test_declining_on_the_page_writes_nothing(mcp_env, truth, callback):
    """A 2025 client, also one that declares elicitation (never asked, never assumed a
    yes: the link is the only way), declined by the person on the page."""
    token = mcp_env.token()
    args = charge_args(truth)
    since = truth.last_seq()
    session = page_session(mcp_env)
    options = {"elicitation_callback": callback} if callback else {}
    async with mcp_session(mcp_env.url, token, "legacy", **options) as client:
        url = (await client.call_tool(TOOL, args)).structured_content["confirmation_url"]
        declined = answer_on_page(session, url, "decline")
        assert "Declined" in declined.text and 'name="answer"' not in declined.text
        told = await client.call_tool(TOOL, args)
        assert told.structured_content["error"] == "confirmation_declined"
        # Told once; asking again makes a new confirmation.
        again = await client.call_tool(TOOL, args)
        assert again.structured_content["error"] == "confirmation_required"
        assert again.structured_content["confirmation_url"] != url
    assert charges_sent(truth, since) == []
    assert [r.confirmation for r in await rows_for(3)] == ["asked", "declined", "asked"]
    session.close()


async def test_an_expired_page_confirmation_writes_nothing(mcp_env, truth):
    from mcp_bridge.models import PendingConfirmation

    def expire():
        PendingConfirmation.objects.filter(tool=TOOL).update(expires_at=timezone_now() - timedelta(seconds=1))

    token = mcp_env.token()
    args = charge_args(truth)
    since = truth.last_seq()
    session = page_session(mcp_env)
    async with mcp_session(mcp_env.url, token, "2026-07-28") as client:
        # Confirmed, then expired before the repeat.
        url = (await client.call_tool(TOOL, args)).structured_content["confirmation_url"]
        answer_on_page(session, url, "confirm")
        await run_db(expire)
        late = await client.call_tool(TOOL, args)
        assert late.structured_content["error"] == "confirmation_required"
        # The person did answer: the app must not tell them they did not.
        assert "expired before a call used it" in late.content[0].text, late.content[0].text
        assert "unanswered" not in late.content[0].text
        fresh = late.structured_content["confirmation_url"]
        assert fresh != url and "Expired" in session.get(url).text
        # Never answered, expired: the page can no longer confirm it.
        await run_db(expire)
        page = session.get(fresh)
        assert "Expired" in page.text and 'name="answer"' not in page.text
        token_input = next(f for f in parse_forms(page.text) if f["hidden"].get("csrfmiddlewaretoken"))["hidden"]
        session.post(fresh, data={**token_input, "answer": "confirm"})
        assert "Expired" in session.get(fresh).text
        unanswered = await client.call_tool(TOOL, args)
        assert unanswered.structured_content["error"] == "confirmation_required"
        assert "expired unanswered" in unanswered.content[0].text, unanswered.content[0].text
    assert charges_sent(truth, since) == []
    assert [r.confirmation for r in await rows_for(3)] == ["asked", "expired", "expired"]
    session.close()


def timezone_now():
    from django.utils import timezone

    return timezone.now()


async def test_the_page_is_only_for_the_connections_person(mcp_env, truth):
    token = mcp_env.token()
    async with mcp_session(mcp_env.url, token, "2026-07-28") as client:
        url = (await client.call_tool(TOOL, charge_args(truth))).structured_content["confirmation_url"]
    # Signed out: to the sign-in page, then back.
    anonymous = httpx.get(url, follow_redirects=False)
    assert anonymous.status_code == 302 and anonymous.headers["location"].startswith("/login?next=/confirm/")
    # Another person: refused, without the summary.
    alice = page_session(mcp_env, "alice")
    refused = alice.get(url)
    assert refused.status_code == 403 and "not yours" in refused.text and "12.34" not in refused.text
    csrf = alice.cookies.get("csrftoken")
    assert alice.post(url, data={"csrfmiddlewaretoken": csrf, "answer": "confirm"}).status_code == 403
    alice.close()
    # Still waiting: alice's POST changed nothing.
    rows = await run_db(confirmation_rows, tool=TOOL)
    assert [r.status for r in rows] == ["pending"]
    # No CSRF token: refused by Django's CSRF check.
    demo = page_session(mcp_env)
    assert demo.post(url, data={"answer": "confirm"}).status_code == 403
    assert demo.get(mcp_env.gateway.url + f"/confirm/{uuid.uuid4()}").status_code == 404
    demo.close()
    assert [r.status for r in await run_db(confirmation_rows, tool=TOOL)] == ["pending"]


# --- The consent's choice ---------------------------------------------------------------------


def consent_post(mcp_env, username: str, account: str, confirm_writes: str | None, access: str = "read_write"):
    """Sign in, open the consent screen for a new client and POST it with `confirm_writes`
    as given ("0", "1", or absent): the (possibly crafted) form a browser could send."""
    gateway = mcp_env.gateway.url
    client = register_client(gateway)
    session = signed_in(gateway, username, PASSWORDS[username])
    _verifier, challenge = pkce_pair()
    page = session.get(authorize_url(gateway, client["client_id"], challenge))
    form = consent_form(page.text)
    assert 'name="confirm_writes" value="1"' in page.text and "Ask me before money-moving" in page.text
    data = {**form["hidden"], "access": access, "allow": "true"}
    data["account"] = next(r for r in form["radios"]["account"] if r["data-slug"] == account)["value"]
    data.pop("confirm_writes", None)
    if confirm_writes is not None:
        data["confirm_writes"] = confirm_writes
    response = session.post(form["action"], data=data)
    session.close()
    return response


@pytest.mark.sqlite
def test_a_member_cannot_turn_confirmations_off(mcp_env):
    from accounts.models import AuthorizationConsent, Connection

    refused = consent_post(mcp_env, "alice", "globex", "0", access="read")
    assert refused.status_code == 400
    assert "Only an owner or admin of Globex" in refused.text
    assert not AuthorizationConsent.objects.filter(user__username="alice").exists()
    assert not Connection.objects.filter(user__username="alice").exists()
    # Left ticked (or not sent at all), the member's consent goes through, asking.
    for value in ("1", None):
        allowed = consent_post(mcp_env, "alice", "globex", value, access="read")
        assert allowed.status_code == 302 and "code" in redirect_params(allowed)
    assert list(
        AuthorizationConsent.objects.filter(user__username="alice").values_list("confirm_writes", flat=True)
    ) == [True, True]


async def test_an_owner_can_turn_confirmations_off_and_calls_are_waived(mcp_env, truth):
    from accounts.models import Connection

    # The owner's POST without the box ticked (hidden "0" only) is accepted.
    response = consent_post(mcp_env, "demo", "acme", "0")
    assert response.status_code == 302 and "code" in redirect_params(response)

    token = mcp_env.token(confirm_writes=False)
    connection = await run_db(lambda: Connection.objects.filter(user__username="demo").latest("created_at"))
    assert connection.confirm_writes is False
    since = truth.last_seq()
    async with mcp_session(mcp_env.url, token, "2026-07-28", elicitation_callback=answering("decline")) as client:
        done = await client.call_tool(TOOL, charge_args(truth))
        # A tool that needs no confirmation leaves the column blank.
        plans = await client.call_tool("list_plans", {"site_id": SITE})
    assert not done.is_error and not plans.is_error
    assert len(charges_sent(truth, since)) == 1
    rows = await rows_for(1, connection_id=connection.pk)
    assert [(r.confirmation, r.outcome) for r in rows] == [("waived", "ok")]
    assert (await audit_rows_async(1, tool="list_plans", connection_id=connection.pk))[0].confirmation == ""


async def test_turning_it_back_on_applies_to_the_next_call(mcp_env, truth):
    from accounts.models import Connection

    token = mcp_env.token(confirm_writes=False)
    await run_db(lambda: Connection.objects.filter(user__username="demo").update(confirm_writes=True))
    since = truth.last_seq()
    async with mcp_session(mcp_env.url, token, "2026-07-28") as client:
        asked = await client.call_tool(TOOL, charge_args(truth))
    assert asked.structured_content["error"] == "confirmation_required"
    assert charges_sent(truth, since) == []


def test_the_connections_page_shows_the_choice(mcp_env):
    mcp_env.token()
    other_app_token(mcp_env, confirm_writes=False)
    session = page_session(mcp_env)
    page = session.get("/connections").text
    session.close()
    assert page.count("Asks before money-moving") == 1 and page.count("Does not ask") == 1


# --- What the tools say -----------------------------------------------------------------------


def test_descriptions_say_what_needs_confirmation():
    asking = {name for name, spec in TOOLS.items() if "Needs a person's confirmation" in spec.description}
    assert asking == CONFIRMED_TOOLS
    assert 'confirmation with mode "now"' in TOOLS["cancel_subscription"].description
    assert "confirmation_url" in TOOLS["void_invoice"].description


async def test_the_activity_page_shows_confirmations(mcp_env, truth):
    token = mcp_env.token()
    async with mcp_session(mcp_env.url, token, "2026-07-28") as client:
        await client.call_tool(TOOL, charge_args(truth))
        await client.call_tool("list_plans", {"site_id": SITE})
    rows = await rows_for(1)
    session = page_session(mcp_env)
    page = session.get(f"/connections/{rows[0].connection_id}/activity").text
    session.close()
    assert "Confirmation: asked" in page


# --- A subscriber's confirmation (Open server connections) ----------------------------------


def test_a_subscribers_confirmation_is_answered_by_that_subscriber(mcp_env, sdk):
    """The page for a subscriber's connection takes the subscriber sign-in (never an
    operator's) and only that subscriber's. (The Open write tools ask through the same
    runtime; here the row is made directly.)"""
    from oauth2_provider.models import get_application_model

    from accounts.models import Connection, Site
    from accounts.subscribers import subscriber_for
    from mcp_bridge.models import PendingConfirmation
    from tests.support.sandbox import READER, SECOND
    from tests.test_subscriber_session import sign_in_page

    site = Site.objects.get(site_id=READER["site_id"])
    subscriber = subscriber_for(site, sdk.login(READER)["id"], READER["email"])
    app = get_application_model().objects.get(client_id=register_client(mcp_env.gateway.url)["client_id"])
    connection = Connection.objects.create(user=subscriber.user, application=app, account=site.account)
    row = PendingConfirmation.objects.create(
        connection=connection,
        server="open",
        tool="cancel_my_subscription",
        arguments_hash="0" * 64,
        summary="Cancel subscription 77 of your account with Acme Daily now. This cannot be undone.",
        channel=PendingConfirmation.Channel.LINK,
        expires_at=timezone_now() + timedelta(minutes=10),
    )
    path = f"/confirm/{row.pk}"

    def browser_session() -> httpx.Client:
        return httpx.Client(base_url=mcp_env.gateway.url, timeout=20, follow_redirects=False)

    with browser_session() as anonymous:
        to_sign_in = anonymous.get(path)
    assert to_sign_in.status_code == 302
    assert to_sign_in.headers["location"].startswith("/open/sign-in?next=%2Fconfirm%2F")
    assert f"site_id={READER['site_id']}" in to_sign_in.headers["location"]
    # An operator's sign-in is not the subscriber's.
    operator = page_session(mcp_env)
    assert operator.get(path).headers["location"].startswith("/open/sign-in")
    operator.close()
    # Another subscriber of the same site: refused, without the summary.
    with browser_session() as second:
        assert sign_in_page(second, SECOND, next_url=path).headers["location"] == path
        refused = second.get(path)
        assert refused.status_code == 403 and "Cancel subscription 77" not in refused.text
    # The subscriber: sees it, confirms it.
    with browser_session() as reader:
        assert sign_in_page(reader, READER, next_url=path).headers["location"] == path
        page = reader.get(path)
        assert page.status_code == 200 and "Cancel subscription 77" in page.text
        confirmed = answer_on_page(reader, mcp_env.gateway.url + path, "confirm")
        assert "Confirmed" in confirmed.text
    row.refresh_from_db()
    assert row.status == "confirmed" and row.used_at is None


async def test_a_tool_with_a_preview_asks_with_its_summary_and_only_when_its_predicate_says(mcp_env, truth):
    """cancel_subscription asks only with mode "now"; the question is its dry-run preview's
    summary; the preview says whether the call needs a person (`needs_confirmation`)."""
    subscriptions = truth.ok("GET", "/subscriptions", site_id=SITE, params={"limit": 100})
    active = [s for s in subscriptions if s["status"] == "active" and not s.get("cancel_at_period_end")]
    assert len(active) >= 2
    now_args = {"site_id": SITE, "subscription_id": active[0]["id"], "mode": "now", "reason": "test"}
    later_args = {"site_id": SITE, "subscription_id": active[1]["id"], "mode": "period_end", "reason": "test"}
    seen: list = []
    since = truth.last_seq()
    callback = answering("decline", seen=seen)
    async with mcp_session(mcp_env.url, mcp_env.token(), "2026-07-28", elicitation_callback=callback) as client:
        preview_now = (await client.call_tool("cancel_subscription", {**now_args, "dry_run": True})).structured_content
        preview_later = await client.call_tool("cancel_subscription", {**later_args, "dry_run": True})
        assert preview_now["needs_confirmation"] is True
        assert preview_later.structured_content["needs_confirmation"] is False
        declined = await client.call_tool("cancel_subscription", now_args)
        assert declined.structured_content["error"] == "confirmation_declined"
        assert len(seen) == 1 and preview_now["summary"] in seen[0].message
        later = await client.call_tool("cancel_subscription", later_args)
        assert not later.is_error, later.content[0].text
    assert len(seen) == 1  # period_end was not asked
    cancels = [e for e in truth.log(since=since, account="acme") if e["method"] == "DELETE"]
    assert [e["path"] for e in cancels] == [f"/api/v1/core/subscriptions/{active[1]['id']}"]
    rows = await audit_rows_async(5, tool="cancel_subscription")
    assert [(r.dry_run, r.confirmation) for r in rows] == [
        (True, ""),
        (True, ""),
        (False, "asked"),
        (False, "declined"),
        (False, ""),
    ]


def test_confirmations_are_deleted_a_day_after_they_expire(demo_users):
    from oauth2_provider.models import get_application_model

    from accounts.models import Account, Connection
    from mcp_bridge import tasks
    from mcp_bridge.models import PendingConfirmation

    Application = get_application_model()
    app = Application.objects.create(
        name="app", client_type="public", authorization_grant_type="authorization-code", redirect_uris=""
    )
    user = Account.objects.get(slug="acme").memberships.first().user
    connection = Connection.objects.create(user=user, application=app, account=Account.objects.get(slug="acme"))
    now = timezone_now()

    def row(expired_ago: timedelta) -> PendingConfirmation:
        return PendingConfirmation.objects.create(
            connection=connection,
            server="core",
            tool=TOOL,
            arguments_hash="0" * 64,
            summary="s",
            channel="link",
            created_at=now - expired_ago - timedelta(minutes=10),
            expires_at=now - expired_ago,
        )

    kept = [row(timedelta(hours=23)), row(-timedelta(minutes=5))]
    row(timedelta(days=1, minutes=1))
    result = tasks.delete_old_confirmations.apply()
    assert result.successful() and result.get() == 1
    assert set(PendingConfirmation.objects.values_list("pk", flat=True)) == {r.pk for r in kept}


async def test_an_open_server_write_asks_the_subscriber(mcp_env, truth):
    """`subscribe` (Open server, confirm=ALWAYS) for a subscriber: declined in the app
    (2026-07-28 elicitation) nothing is sent; without elicitation the subscriber confirms on
    the page (signed in with their publication) and the repeat subscribes once."""
    from asgiref.sync import sync_to_async

    from tests.support import open_data
    from tests.support.open import open_connection
    from tests.test_subscriber_session import sign_in_page

    sandbox = mcp_env.sandbox.url
    who = open_data.register(sandbox, SITE)
    card = open_data.add_card(sandbox, who, "tok_visa_4242")
    args = {"plan_id": open_data.plans(sandbox, SITE)["Student Digital Monthly"]["id"], "payment_method_id": card["id"]}

    def subscriptions_sent(since: int) -> list[dict]:
        return [
            e
            for e in truth.log(since=since, api="open")
            if (e["method"], e["path"]) == ("POST", "/api/v1/sdk/subscription")
        ]

    conn = await sync_to_async(open_connection)(mcp_env, who, access="read_write")
    url = mcp_env.gateway.url + "/open"
    since = truth.last_seq()
    seen: list = []
    async with mcp_session(url, conn.token, "2026-07-28", elicitation_callback=answering("decline", seen=seen)) as c:
        declined = await c.call_tool("subscribe", args)
    assert declined.structured_content["error"] == "confirmation_declined"
    assert len(seen) == 1 and "4.99 USD" in seen[0].message and "cannot be undone" in seen[0].message
    assert subscriptions_sent(since) == []

    async with mcp_session(url, conn.token, "legacy") as client:
        asked = await client.call_tool("subscribe", args)
        assert asked.structured_content["error"] == "confirmation_required"
        path = asked.structured_content["confirmation_url"].removeprefix(mcp_env.gateway.url)
        with httpx.Client(base_url=mcp_env.gateway.url, timeout=20, follow_redirects=False) as browser:
            assert sign_in_page(browser, who, next_url=path).headers["location"] == path
            page = browser.get(path)
            assert "4.99 USD" in page.text
            assert "Confirmed" in answer_on_page(browser, mcp_env.gateway.url + path, "confirm").text
        assert subscriptions_sent(since) == []
        done = await client.call_tool("subscribe", args)
        assert not done.is_error, done.content[0].text
        again = await client.call_tool("subscribe", args)
        assert again.structured_content["error"] == "confirmation_required"
    assert len(subscriptions_sent(since)) == 1
    rows = await audit_rows_async(5, tool="subscribe")
    assert [r.confirmation for r in rows] == ["asked", "declined", "asked", "confirmed", "asked"]
    assert await sync_to_async(lambda: {r.customer_id for r in rows})() == {who["customer_id"]}
