"""Breaking the safe writes (issue 15; README "Safe writes"): what an attacker, a confused
model or a buggy client could try against the confirmation, the idempotency keys and the
previews, on both servers, end to end (real SDK clients and raw JSON-RPC → the gateway →
the sandbox, whose request log says whether a write was sent).

- the sealed request state of the 2026-07-28 multi round-trip pattern: replayed after a
  decline, sent with another tool, on the other server, through another gateway process,
  twice at once, with other idempotency keys; answers of the wrong shape;
- no model-settable bypass: no argument, header or `_meta` field confirms a call;
- idempotency keys across tools and servers, with reordered arguments, with dry_run;
- the confirmation page: another operator of the same account, a subscriber's browser,
  a revoked connection, a double submit, concurrent repeats after one yes;
- the consent: a subscriber's crafted "do not ask" is ignored;
- a write whose handler crashes after sending says it may have been applied.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
from mcp.shared.exceptions import MCPError
from mcp_types import (
    CLIENT_CAPABILITIES_META_KEY,
    CLIENT_INFO_META_KEY,
    PROTOCOL_VERSION_META_KEY,
    ElicitResult,
)

from mcp_bridge.orm import run_db
from mcp_bridge.servers import OPEN_TOOLS, TOOLS
from tests.support.mcp import audit_rows_async, mcp_session
from tests.support.servers import start_gateway
from tests.test_confirmation import (
    SITE,
    TOOL,
    YES,
    answer_on_page,
    charge_args,
    charges_sent,
    confirmation_rows,
    eliciting,
    first_round,
    page_session,
)

MODERN = "2026-07-28"
NO = {"confirm": ElicitResult(action="decline")}


async def rows_of(count: int, tool: str = TOOL, **filters) -> list:
    return await audit_rows_async(count, tool=tool, **filters)


def writes_sent(truth, since: int) -> list[dict]:
    """Every write the sandbox received since `since` (both APIs): not the reads, nor the
    Open API sign-ins the test helpers make."""
    from tests.support.open_data import READING

    return [
        e
        for e in truth.log(since=since)
        if e["method"] != "GET" and (e["method"], e["path"]) not in READING and "/auth/" not in e["path"]
    ]


# --- raw 2026-07-28 JSON-RPC (for what an SDK client would never send) ---------------------


def modern_call(env_url: str, token: str, name: str, arguments: dict, *, capabilities: dict | None = None, **extra):
    """One raw 2026-07-28 `tools/call` (its own envelope in `_meta`); `extra` joins params
    (`inputResponses`, `requestState`, more `_meta`); headers via `headers=`."""
    headers = extra.pop("headers", {})
    status = extra.pop("status", 200)
    meta = {
        PROTOCOL_VERSION_META_KEY: MODERN,
        CLIENT_CAPABILITIES_META_KEY: capabilities if capabilities is not None else {"elicitation": {"form": {}}},
        CLIENT_INFO_META_KEY: {"name": "raw", "version": "1"},
        **extra.pop("meta", {}),
    }
    params = {"name": name, "arguments": arguments, "_meta": meta, **extra}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
    base = {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "Authorization": f"Bearer {token}",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": "tools/call",
        "Mcp-Name": name,
        **headers,
    }
    response = httpx.post(env_url, content=json.dumps(body), headers=base, timeout=30)
    assert response.status_code == status, response.text[:500]
    return response.json()


# --- the sealed request state -------------------------------------------------------------


async def test_a_declined_request_state_cannot_be_replayed_as_a_yes(mcp_env, truth):
    args = charge_args(truth)
    since = truth.last_seq()
    async with eliciting(mcp_env.url, mcp_env.token()) as client:
        asked = await first_round(client, args)
        declined = await client.session.call_tool(
            TOOL, args, input_responses=NO, request_state=asked.request_state, allow_input_required=True
        )
        assert declined.is_error and declined.structured_content["error"] == "confirmation_declined"
        with pytest.raises(MCPError) as replayed:
            await client.session.call_tool(
                TOOL, args, input_responses=YES, request_state=asked.request_state, allow_input_required=True
            )
    assert replayed.value.error.code == -32602 and "already used" in replayed.value.error.message
    assert charges_sent(truth, since) == []
    assert [(r.confirmation, r.outcome) for r in await rows_of(3)] == [
        ("asked", "ok"),
        ("declined", "error"),
        ("refused", "error"),
    ]


async def test_a_request_state_cannot_confirm_another_tool(mcp_env, truth):
    """A yes for a charge, sent with delete_customer (same site, same customer): refused by
    the seal's binding to the tool, nothing deleted."""
    args = charge_args(truth)
    other = {"site_id": SITE, "customer_id": args["customer_id"]}
    since = truth.last_seq()
    async with eliciting(mcp_env.url, mcp_env.token()) as client:
        asked = await first_round(client, args)
        with pytest.raises(MCPError) as refused:
            await client.session.call_tool(
                "delete_customer", other, input_responses=YES, request_state=asked.request_state
            )
        # The state is still good for its own call.
        done = await client.session.call_tool(
            TOOL, args, input_responses=YES, request_state=asked.request_state, allow_input_required=True
        )
    assert refused.value.error.code == -32602 and "Nothing was run" in refused.value.error.message
    assert not done.is_error, done.content[0].text
    assert [(e["method"], e["path"]) for e in writes_sent(truth, since)] == [("POST", "/api/v1/core/charges")]
    [row] = await rows_of(1, "delete_customer")
    assert (row.confirmation, row.outcome) == ("refused", "error")


async def test_a_request_state_with_another_idempotency_key_is_refused(mcp_env, truth):
    """The key is part of the exact arguments a yes is bound to."""
    args = {**charge_args(truth), "idempotency_key": f"k-{uuid.uuid4().hex}"}
    since = truth.last_seq()
    async with eliciting(mcp_env.url, mcp_env.token()) as client:
        asked = await first_round(client, args)
        for changed in (
            {**args, "idempotency_key": f"k-{uuid.uuid4().hex}"},
            {k: v for k, v in args.items() if k != "idempotency_key"},
        ):
            with pytest.raises(MCPError) as refused:
                await client.session.call_tool(
                    TOOL, changed, input_responses=YES, request_state=asked.request_state, allow_input_required=True
                )
            assert refused.value.error.code == -32602
    assert charges_sent(truth, since) == []


async def test_a_used_request_state_with_its_idempotency_key_replays_and_writes_nothing(mcp_env, truth):
    """The idempotency lookup comes first (README "Safe writes"): a repeat of the accepted
    round with the same key gets the first outcome, never a second write."""
    args = {**charge_args(truth), "idempotency_key": f"k-{uuid.uuid4().hex}"}
    since = truth.last_seq()
    async with eliciting(mcp_env.url, mcp_env.token()) as client:
        asked = await first_round(client, args)
        done = await client.session.call_tool(
            TOOL, args, input_responses=YES, request_state=asked.request_state, allow_input_required=True
        )
        again = await client.session.call_tool(
            TOOL, args, input_responses=YES, request_state=asked.request_state, allow_input_required=True
        )
        plain = await client.call_tool(TOOL, args)
    assert not done.is_error, done.content[0].text
    assert again.structured_content == done.structured_content == plain.structured_content
    assert len(charges_sent(truth, since)) == 1
    rows = await rows_of(4)
    assert [(r.confirmation, r.replayed) for r in rows] == [
        ("asked", False),
        ("confirmed", False),
        ("", True),
        ("", True),
    ]


async def test_the_same_request_state_sent_three_times_at_once_writes_once(mcp_env, truth):
    args = charge_args(truth)
    since = truth.last_seq()
    token = mcp_env.token()
    async with eliciting(mcp_env.url, token) as client:
        asked = await first_round(client, args)

    async def answer():
        async with eliciting(mcp_env.url, token) as client:
            try:
                return await client.session.call_tool(
                    TOOL, args, input_responses=YES, request_state=asked.request_state, allow_input_required=True
                )
            except MCPError as refused:
                return refused

    outcomes = await asyncio.gather(*(answer() for _ in range(3)))
    done = [o for o in outcomes if not isinstance(o, MCPError)]
    refused = [o for o in outcomes if isinstance(o, MCPError)]
    assert len(done) == 1 and not done[0].is_error and len(refused) == 2, outcomes
    assert all(r.error.code == -32602 for r in refused)
    assert len(charges_sent(truth, since)) == 1
    assert sorted(r.confirmation for r in await rows_of(4)) == ["asked", "confirmed", "refused", "refused"]


async def open_subscriber_and_args(mcp_env, access: str = "read_write"):
    """A new subscriber of site 14 with a saved card, its /open connection, and the
    arguments of a `subscribe` (confirm=ALWAYS) to a paid plan."""
    from asgiref.sync import sync_to_async

    from tests.support import open_data
    from tests.support.open import open_connection

    sandbox = mcp_env.sandbox.url
    who = open_data.register(sandbox, SITE)
    card = open_data.add_card(sandbox, who, "tok_visa_4242")
    plan = open_data.plans(sandbox, SITE)["Student Digital Monthly"]["id"]
    conn = await sync_to_async(open_connection)(mcp_env, who, access=access)
    return who, conn, {"plan_id": plan, "payment_method_id": card["id"]}


async def test_a_request_state_from_one_server_is_refused_on_the_other(mcp_env, truth):
    """Sealed by the Core server, sent to the Open server (and the other way round), with
    the same tool name and arguments: refused (the seal names its server and connection);
    the Open server's row names the subscriber, as all its rows do."""
    who, conn, subscribe_args = await open_subscriber_and_args(mcp_env)
    open_url = mcp_env.gateway.url + "/open"
    core_token = mcp_env.token()
    args = charge_args(truth)
    since = truth.last_seq()
    async with eliciting(open_url, conn.token) as subscriber:
        open_asked = await subscriber.session.call_tool("subscribe", subscribe_args, allow_input_required=True)
        assert open_asked.result_type == "input_required"
    async with eliciting(mcp_env.url, core_token) as staff:
        core_asked = await first_round(staff, args)
        with pytest.raises(MCPError) as on_core:
            await staff.session.call_tool(
                "subscribe", subscribe_args, input_responses=YES, request_state=open_asked.request_state
            )
    async with eliciting(open_url, conn.token) as subscriber:
        with pytest.raises(MCPError) as on_open:
            await subscriber.session.call_tool(TOOL, args, input_responses=YES, request_state=core_asked.request_state)
    for refused in (on_core, on_open):
        assert refused.value.error.code == -32602 and "Nothing was run" in refused.value.error.message
    assert writes_sent(truth, since) == []
    [open_row] = await rows_of(1, TOOL, confirmation="refused")
    assert open_row.connection_id == conn.connection_id
    assert (open_row.site_id, open_row.customer_id) == (SITE, who["customer_id"])
    [core_row] = await rows_of(1, "subscribe", confirmation="refused")
    assert core_row.customer_id is None and core_row.connection_id != conn.connection_id


@pytest.fixture(scope="module")
def replica(django_db_setup, django_db_blocker, mcp_gateway, mcp_sandbox):
    """A second gateway process of the MCP tests' deployment: the same PUBLIC_URL (so its
    tokens work here), database, Redis prefix and SECRET_KEY."""
    from tests.support.mcp import OUT_OF_REACH

    with django_db_blocker.unblock():
        server = start_gateway(
            mcp_sandbox,
            RATE_LIMIT=OUT_OF_REACH,
            OPEN_SITE_RATE_LIMIT=OUT_OF_REACH,
            OPEN_SUBSCRIBER_RATE_LIMIT=OUT_OF_REACH,
            PUBLIC_URL=mcp_gateway.url,
        )
    yield server
    server.stop()


async def test_a_request_state_works_once_across_gateway_processes(mcp_env, truth, replica):
    """Asked by one process, answered through another (replicas share the seal's keys):
    written once; sent again to either process: refused."""
    token = mcp_env.token()
    args = charge_args(truth)
    since = truth.last_seq()
    async with eliciting(mcp_env.url, token) as first:
        asked = await first_round(first, args)
    async with eliciting(replica.url + "/", token) as second:
        done = await second.session.call_tool(
            TOOL, args, input_responses=YES, request_state=asked.request_state, allow_input_required=True
        )
        assert not done.is_error, done.content[0].text
        with pytest.raises(MCPError) as again_here:
            await second.session.call_tool(TOOL, args, input_responses=YES, request_state=asked.request_state)
    async with eliciting(mcp_env.url, token) as first:
        with pytest.raises(MCPError) as again_there:
            await first.session.call_tool(TOOL, args, input_responses=YES, request_state=asked.request_state)
    for refused in (again_here, again_there):
        assert refused.value.error.code == -32602 and "already used" in refused.value.error.message
    assert len(charges_sent(truth, since)) == 1
    assert [r.confirmation for r in await rows_of(4)] == ["asked", "confirmed", "refused", "refused"]


# --- answers of the wrong shape ---------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        {"action": "accept"},
        {"action": "accept", "content": None},
        {"action": "accept", "content": {"confirm": "true"}},
        {"action": "accept", "content": {"confirm": 1}},
        {"action": "accept", "content": {"Confirm": True}},
        {"action": "accept", "content": {"confirm": True, "also_delete": True}},
        {"roots": []},
    ],
    ids=[
        "accept-without-content",
        "accept-null-content",
        "string-true",
        "one",
        "other-field-name",
        "extra-field",
        "not-an-elicit-result",
    ],
)
async def test_an_answer_that_is_not_exactly_a_ticked_yes_writes_nothing(mcp_env, truth, answer):
    args = charge_args(truth)
    token = mcp_env.token()
    since = truth.last_seq()
    asked = modern_call(mcp_env.url, token, TOOL, args)["result"]
    assert asked["resultType"] == "input_required", asked
    answered = modern_call(
        mcp_env.url, token, TOOL, args, inputResponses={"confirm": answer}, requestState=asked["requestState"]
    )
    result = answered["result"]
    assert result["isError"] is True and result["structuredContent"]["error"] == "confirmation_declined", answered
    assert charges_sent(truth, since) == []
    assert [r.confirmation for r in await rows_of(2)] == ["asked", "declined"]


@pytest.mark.parametrize(
    "responses",
    [
        {"confirm": "yes"},
        {"confirm": True},
        {"confirm": {"action": "accept", "content": {"confirm": [True]}}},
        {"confirm": {"action": "yes"}},
    ],
    ids=["string", "bare-true", "list-content", "unknown-action"],
)
async def test_input_responses_the_mcp_schema_refuses_are_refused_before_anything_runs(mcp_env, truth, responses):
    """inputResponses that are no MCP input response at all: the SDK refuses the request
    (-32602, naming the field), before any tool code; nothing is written and the person's
    confirmation is not used up (a JSON-RPC error leaves no audit row, like every
    request refused before the tool: tests/test_bad_input_mcp.py)."""
    args = charge_args(truth)
    token = mcp_env.token()
    since = truth.last_seq()
    asked = modern_call(mcp_env.url, token, TOOL, args)["result"]
    refused = modern_call(
        mcp_env.url, token, TOOL, args, inputResponses=responses, requestState=asked["requestState"], status=400
    )
    assert refused["error"]["code"] == -32602 and "inputResponses" in refused["error"]["message"], refused
    assert charges_sent(truth, since) == []
    assert [r.status for r in await run_db(confirmation_rows, tool=TOOL)] == ["pending"]
    assert [r.confirmation for r in await rows_of(1)] == ["asked"]


@pytest.mark.parametrize(
    "responses",
    [{"other": {"action": "accept", "content": {"confirm": True}}}, {}],
    ids=["under-another-key", "empty"],
)
async def test_input_responses_without_our_answer_are_a_no(mcp_env, truth, responses):
    args = charge_args(truth)
    token = mcp_env.token()
    since = truth.last_seq()
    asked = modern_call(mcp_env.url, token, TOOL, args)["result"]
    answered = modern_call(mcp_env.url, token, TOOL, args, inputResponses=responses, requestState=asked["requestState"])
    assert answered["result"]["structuredContent"]["error"] == "confirmation_declined", answered
    assert charges_sent(truth, since) == []
    assert [r.confirmation for r in await rows_of(2)] == ["asked", "declined"]


# --- no model-settable bypass -----------------------------------------------------------------


def confirmed_tools() -> list:
    return [spec for spec in [*TOOLS.values(), *OPEN_TOOLS.values()] if spec.confirm is not None]


@pytest.mark.parametrize("spec", confirmed_tools(), ids=lambda s: f"{s.server}-{s.name}")
def test_no_argument_of_a_confirmed_tool_can_say_yes(spec):
    """The published schema takes only the tool's own arguments and the two safe-write
    options, none of which confirms anything, and refuses any other property."""
    schema = spec.input_schema()
    assert schema.get("additionalProperties") is False, spec.name
    assert set(schema["properties"]) == set(spec.args_model.model_fields) | {"idempotency_key", "dry_run"}
    suspicious = {"confirm", "confirmed", "approve", "approved", "force", "skip", "bypass", "yes", "consent"}
    assert not [p for p in schema["properties"] if any(word in p.lower() for word in suspicious)]


async def test_no_argument_header_or_meta_field_confirms_a_call(mcp_env, truth):
    args = charge_args(truth)
    token = mcp_env.token()
    since = truth.last_seq()
    # An argument the model might invent: refused as not an argument of the tool.
    for name in ("confirm", "confirmed", "_confirmed"):
        answered = modern_call(mcp_env.url, token, TOOL, {**args, name: True}, capabilities={})["result"]
        assert answered["structuredContent"]["error"] == "invalid_arguments"
        assert "is not an argument of this tool" in answered["content"][0]["text"]
    # Headers and `_meta` fields that sound like a yes: the call still asks (the link).
    tries = [
        {"headers": {"X-Confirm": "true", "X-MCP-Confirmed": "1", "Mcp-Confirmation": "yes"}},
        {"meta": {"confirmed": True, "confirmation": "yes", "io.modelcontextprotocol/confirmed": True}},
        {"meta": {"requestState": "x", "inputResponses": YES_WIRE}},
        {"requestState": None, "inputResponses": YES_WIRE},
    ]
    for extra in tries:
        answered = modern_call(mcp_env.url, token, TOOL, args, capabilities={}, **extra)["result"]
        assert answered["structuredContent"]["error"] == "confirmation_required", (extra, answered)
    assert charges_sent(truth, since) == []


YES_WIRE = {"confirm": {"action": "accept", "content": {"confirm": True}}}


# --- the confirmation page --------------------------------------------------------------------


def acme_admin(username: str = "bob", password: str = "Bob-pelcro-2026!") -> tuple[str, str]:
    """Another operator of acme (an admin, so allowed to see and do everything there)."""
    from django.contrib.auth import get_user_model

    from accounts.models import Account, Membership

    user = get_user_model().objects.create_user(username, f"{username}@example.com", password)
    Membership.objects.create(user=user, account=Account.objects.get(slug="acme"), role=Membership.Role.ADMIN)
    return username, password


async def link_for(mcp_env, token: str, args: dict, mode: str = MODERN) -> str:
    async with mcp_session(mcp_env.url, token, mode) as client:
        asked = await client.call_tool(TOOL, args)
    assert asked.structured_content["error"] == "confirmation_required", asked
    return asked.structured_content["confirmation_url"]


def post_answer(session: httpx.Client, url: str, answer: str) -> httpx.Response:
    """POST an answer with the session's CSRF token (as the page's form would)."""
    from devtools.oauth_client import parse_forms

    page = session.get(url)
    token = next(f for f in parse_forms(page.text) if f["hidden"].get("csrfmiddlewaretoken"))["hidden"]
    return session.post(url, data={**token, "answer": answer})


async def test_another_operator_of_the_same_account_cannot_answer(mcp_env, truth):
    """bob administers acme too, but the call came through demo's connection: only demo
    answers it (bob sees neither the summary nor the arguments)."""
    from asgiref.sync import sync_to_async

    from devtools.oauth_client import signed_in

    args = charge_args(truth)
    since = truth.last_seq()
    token = mcp_env.token()
    url = await link_for(mcp_env, token, args)
    username, password = await sync_to_async(acme_admin)()
    bob = signed_in(mcp_env.gateway.url, username, password)
    seen = bob.get(url)
    assert seen.status_code == 403 and "12.34" not in seen.text and args["reference"] not in seen.text
    assert post_answer(bob, url, "confirm").status_code == 403
    bob.close()
    assert [r.status for r in await run_db(confirmation_rows, tool=TOOL)] == ["pending"]
    async with mcp_session(mcp_env.url, token, MODERN) as client:
        again = await client.call_tool(TOOL, args)
    assert again.structured_content["error"] == "confirmation_required"
    assert again.structured_content["confirmation_url"] == url
    assert charges_sent(truth, since) == []


async def test_a_subscribers_browser_cannot_answer_an_operators_confirmation(mcp_env, truth, sdk):
    """A browser signed in as a subscriber (the Open server's sign-in) is no operator: the
    operator's link sends it to the operator sign-in, without the summary."""
    from tests.support.sandbox import READER
    from tests.test_subscriber_session import sign_in_page

    args = charge_args(truth)
    since = truth.last_seq()
    url = await link_for(mcp_env, mcp_env.token(), args)
    path = url.removeprefix(mcp_env.gateway.url)
    with httpx.Client(base_url=mcp_env.gateway.url, timeout=20, follow_redirects=False) as reader:
        assert sign_in_page(reader, READER, next_url=path).headers["location"] == path
        page = reader.get(path)
        assert page.status_code == 302 and page.headers["location"].startswith("/login?next=/confirm/")
        assert reader.post(path, data={"answer": "confirm"}).status_code in (302, 403)
    assert [r.status for r in await run_db(confirmation_rows, tool=TOOL)] == ["pending"]
    assert charges_sent(truth, since) == []


async def test_a_revoked_connection_cannot_be_confirmed_nor_use_a_yes(mcp_env, truth):
    """Pending when the connection is revoked: the page says so and takes no answer. A yes
    given before the revoke is not carried to the person's new connection."""
    from asgiref.sync import sync_to_async

    from accounts.connections import revoke_connections
    from accounts.models import Connection

    def revoke_all() -> None:
        revoke_connections(list(Connection.objects.filter(user__username="demo")), by="user:demo")

    args = charge_args(truth)
    since = truth.last_seq()
    session = page_session(mcp_env)
    pending = await link_for(mcp_env, mcp_env.token(), args)
    await run_db(revoke_all)
    page = session.get(pending)
    assert page.status_code == 200 and "revoked" in page.text.lower() and 'name="answer"' not in page.text
    post_answer(session, pending, "confirm")
    # Confirmed, then the connection revoked: the person reconnects the app; the new
    # connection is asked afresh.
    token = await sync_to_async(mcp_env.token)()
    confirmed = await link_for(mcp_env, token, args)
    answer_on_page(session, confirmed, "confirm")
    await run_db(revoke_all)
    fresh = await sync_to_async(mcp_env.token)()
    async with mcp_session(mcp_env.url, fresh, MODERN) as client:
        asked = await client.call_tool(TOOL, args)
    assert asked.structured_content["error"] == "confirmation_required"
    assert asked.structured_content["confirmation_url"] not in (pending, confirmed)
    session.close()
    rows = await run_db(confirmation_rows, tool=TOOL)
    assert [r.status for r in rows] == ["pending", "confirmed", "pending"]
    assert charges_sent(truth, since) == []


async def test_a_double_submitted_answer_keeps_the_first(mcp_env, truth):
    args = charge_args(truth)
    since = truth.last_seq()
    token = mcp_env.token()
    session = page_session(mcp_env)
    url = await link_for(mcp_env, token, args)
    answer_on_page(session, url, "confirm")
    assert post_answer(session, url, "confirm").status_code == 303
    assert post_answer(session, url, "decline").status_code == 303
    assert "Confirmed" in session.get(url).text
    [row] = await run_db(confirmation_rows, tool=TOOL)
    assert row.status == "confirmed"
    # Declined first, then a confirm: still declined, nothing written.
    other = {**args, "amount": 4321}
    declined_url = await link_for(mcp_env, token, other)
    answer_on_page(session, declined_url, "decline")
    assert post_answer(session, declined_url, "confirm").status_code == 303
    assert "Declined" in session.get(declined_url).text
    async with mcp_session(mcp_env.url, token, MODERN) as client:
        told = await client.call_tool(TOOL, other)
    assert told.structured_content["error"] == "confirmation_declined"
    session.close()
    assert charges_sent(truth, since) == []


async def test_repeats_at_once_after_one_yes_write_once(mcp_env, truth):
    """Three identical repeats at the same moment after the person's one yes on the page:
    one uses it (a conditional update), the others are asked again."""
    args = charge_args(truth)
    since = truth.last_seq()
    token = mcp_env.token()
    session = page_session(mcp_env)
    url = await link_for(mcp_env, token, args)
    answer_on_page(session, url, "confirm")
    session.close()

    async def repeat():
        async with mcp_session(mcp_env.url, token, MODERN) as client:
            return await client.call_tool(TOOL, args)

    outcomes = await asyncio.gather(*(repeat() for _ in range(3)))
    assert sum(not o.is_error for o in outcomes) == 1, outcomes
    assert sorted(o.structured_content.get("error", "") for o in outcomes) == [
        "",
        "confirmation_required",
        "confirmation_required",
    ]
    assert len(charges_sent(truth, since)) == 1


# --- idempotency keys -------------------------------------------------------------------------


async def test_an_idempotency_key_belongs_to_one_tool_and_one_connection(mcp_env, truth):
    """The same key on another tool, or on the other server, is another write (README: per
    connection, tool and key): each runs once, each repeat replays its own outcome."""
    from tests.support.faults import new_customer_args
    from tests.support.open import open_session

    key = f"shared-{uuid.uuid4().hex[:12]}"
    token = mcp_env.token(confirm_writes=False)
    charge = {**charge_args(truth), "idempotency_key": key}
    customer = {**new_customer_args("idem-cross"), "site_id": SITE, "idempotency_key": key}
    since = truth.last_seq()
    async with mcp_session(mcp_env.url, token, MODERN) as client:
        charged = await client.call_tool(TOOL, charge)
        created = await client.call_tool("create_customer", customer)
        again = [await client.call_tool(TOOL, charge), await client.call_tool("create_customer", customer)]
    assert not charged.is_error and not created.is_error, (charged, created)
    assert [a.structured_content for a in again] == [charged.structured_content, created.structured_content]
    async with open_session(mcp_env, mode=MODERN, access="read_write") as (subscriber, _conn):
        address = {"first_name": "Rita", "last_name": "Reader", "line1": "1 Key St", "city": "Springfield"}
        address |= {"country": "US", "state": "IL", "postal_code": "62701", "idempotency_key": key}
        added = await subscriber.call_tool("add_address", address)
        added_again = await subscriber.call_tool("add_address", address)
    assert not added.is_error, added.content[0].text
    assert added_again.structured_content == added.structured_content
    sent = [(e["method"], e["path"]) for e in writes_sent(truth, since)]
    assert sorted(sent) == sorted(
        [("POST", "/api/v1/core/charges"), ("POST", "/api/v1/core/customers"), ("POST", "/api/v1/sdk/address")]
    )


async def test_equal_arguments_in_another_order_or_spelling_are_the_same_write(mcp_env, truth):
    """Keys in another order, an optional argument sent as its default (null), the currency
    in capitals: the same validated arguments, so a replay and no second request."""
    token = mcp_env.token(confirm_writes=False)
    args = {**charge_args(truth), "idempotency_key": f"k-{uuid.uuid4().hex}"}
    shuffled = dict(reversed(list(args.items()))) | {"currency": "USD", "invoice_id": None}
    since = truth.last_seq()
    async with mcp_session(mcp_env.url, token, MODERN) as client:
        done = await client.call_tool(TOOL, args)
        again = await client.call_tool(TOOL, shuffled)
    assert not done.is_error and again.structured_content == done.structured_content
    assert len(charges_sent(truth, since)) == 1
    assert [r.replayed for r in await rows_of(2)] == [False, True]


async def test_a_dry_run_neither_claims_nor_answers_from_a_key(mcp_env, truth):
    """dry_run with a key already used: a preview (not the kept outcome, no write); with
    other arguments: a preview too (it writes nothing); then the real repeat still replays,
    and a key first seen in a dry run is free for the real call."""
    token = mcp_env.token(confirm_writes=False)
    key = f"k-{uuid.uuid4().hex}"
    args = {**charge_args(truth), "idempotency_key": key}
    since = truth.last_seq()
    async with mcp_session(mcp_env.url, token, MODERN) as client:
        done = await client.call_tool(TOOL, args)
        previews = [
            await client.call_tool(TOOL, {**args, "dry_run": True}),
            await client.call_tool(TOOL, {**args, "amount": 999, "dry_run": True}),
        ]
        replay = await client.call_tool(TOOL, args)
        fresh = {**args, "idempotency_key": f"k-{uuid.uuid4().hex}", "reference": "DRY-FIRST"}
        first_dry = await client.call_tool(TOOL, {**fresh, "dry_run": True})
        real = await client.call_tool(TOOL, fresh)
    assert all(p.structured_content["dry_run"] is True and not p.is_error for p in previews), previews
    assert replay.structured_content == done.structured_content
    assert first_dry.structured_content["dry_run"] is True and not real.is_error
    assert real.structured_content["reference"] == "DRY-FIRST"
    assert len(charges_sent(truth, since)) == 2
    rows = await rows_of(6)
    assert [(r.dry_run, r.replayed, r.confirmation) for r in rows] == [
        (False, False, "waived"),
        (True, False, ""),
        (True, False, ""),
        (False, True, ""),
        (True, False, ""),
        (False, False, "waived"),
    ]


# --- the consent ------------------------------------------------------------------------------


def test_a_subscribers_crafted_do_not_ask_is_ignored(mcp_env, fresh_sbx):
    """The subscriber's consent screen has no such choice; a POST that adds
    `confirm_writes=0` anyway still makes a connection that asks."""
    from accounts.models import Connection
    from devtools.oauth_client import exchange_code, open_url, redirect_params, register_client, subscriber_step
    from tests.test_open_oauth import browser, signed_in_to_consent

    client_id = register_client(mcp_env.gateway.url)["client_id"]
    with browser(mcp_env.gateway.url) as session:
        page, verifier = signed_in_to_consent(session, mcp_env, client_id)
        assert 'name="confirm_writes"' not in page.text
        _step, form = subscriber_step(page)
        data = {**form["hidden"], "access": "read_write", "allow": "true", "confirm_writes": "0"}
        answer = session.post(form["action"], data=data)
    code = redirect_params(answer)["code"]
    tokens = exchange_code(mcp_env.gateway.url, client_id, code, verifier, resource=open_url(mcp_env.gateway.url))
    assert tokens.status_code == 200, tokens.text
    connection = Connection.objects.get(application__client_id=client_id)
    assert connection.confirm_writes is True


# --- what the tools say -----------------------------------------------------------------------


def test_open_tool_descriptions_say_what_needs_confirmation():
    asking = {name for name, spec in OPEN_TOOLS.items() if "Needs a person's confirmation" in spec.description}
    assert asking == {"subscribe", "pay_invoice", "cancel_my_subscription", "delete_payment_method"}
    assert 'confirmation with mode "now"' in OPEN_TOOLS["cancel_my_subscription"].description


async def test_the_published_descriptions_say_it_too(mcp_env):
    """What a client reads (tools/list on each server), not only the registry."""
    from tests.support.open import open_session

    async with mcp_session(mcp_env.url, mcp_env.token(), MODERN) as client:
        core = {t.name: t.description for t in (await client.list_tools()).tools}
    async with open_session(mcp_env, mode="legacy", access="read_write") as (subscriber, _conn):
        opened = {t.name: t.description for t in (await subscriber.list_tools()).tools}
    for published, registry in ((core, TOOLS), (opened, OPEN_TOOLS)):
        for name, description in published.items():
            asks = registry[name].confirm is not None
            assert ("Needs a person's confirmation" in description) is asks, name


# --- a crash after the write was sent ---------------------------------------------------------


def crashing_write(sent: list, *, preview_crashes: bool = False):
    """A write tool (in process) whose handler sends, then crashes: a bug after the
    upstream request, e.g. in rendering its answer."""
    from pydantic import create_model

    from mcp_bridge.runtime.registry import ToolDef
    from mcp_bridge.runtime.schemas import SiteInput, ToolFailure
    from mcp_bridge.runtime.writes import UpstreamRequest, WriteOptions, WritePreview

    async def handler(call, args):
        sent.append(args.site_id)
        raise KeyError("data")

    async def crashing_preview(call, args):
        raise KeyError("preview")

    async def fine_preview(call, args):
        request = UpstreamRequest(method="POST", path="/x")
        return WritePreview(tool="crash_write", would_send=request, allowed=True, verdict="ok", summary="s")

    published = create_model("CrashInput", __base__=(SiteInput, WriteOptions))
    return ToolDef(
        name="crash_write",
        title="Crash",
        description="Writes, then crashes.",
        input_model=published,
        output_model=ToolFailure,
        handler=handler,
        read_only=False,
        destructive=False,
        idempotent=False,
        open_world=True,
        args_model=SiteInput,
        preview=crashing_preview if preview_crashes else fine_preview,
    )


async def test_a_write_that_crashes_after_sending_says_it_may_have_been_applied(transactional_db, caplog):
    """`internal_error` of a write never invites a blind retry: it says the write may have
    been applied and how to check (the audit row says error); a read's or a preview's crash
    says only try again."""
    from mcp_bridge.runtime.server import GatewayMCPServer
    from tests.test_mcp_server import as_principal_context

    principal = await run_db(crash_principal)
    sent: list = []
    server = GatewayMCPServer({"crash_write": crashing_write(sent)}, name="t")
    with as_principal_context(principal):
        crashed = await server.call_tool("crash_write", {"site_id": 14})
        previewed = await server.call_tool("crash_write", {"site_id": 14, "dry_run": True})
    failure = crashed.structured_content
    assert sent == [14] and crashed.is_error and failure["error"] == "internal_error"
    assert failure["may_have_been_applied"] is True
    assert "may have been applied" in failure["message"] and "list_recent_writes" in failure["message"]
    assert "Try again later" not in failure["message"] and "KeyError" not in failure["message"]
    assert not previewed.is_error and previewed.structured_content["dry_run"] is True

    server = GatewayMCPServer({"crash_write": crashing_write(sent, preview_crashes=True)}, name="t")
    with as_principal_context(principal):
        preview_crash = await server.call_tool("crash_write", {"site_id": 14, "dry_run": True})
    assert preview_crash.structured_content["error"] == "internal_error"
    assert not preview_crash.structured_content.get("may_have_been_applied") and sent == [14]
    rows = await audit_rows_async(3, tool="crash_write")
    assert [(r.outcome, r.dry_run) for r in rows] == [("error", False), ("ok", True), ("error", True)]
    assert "may have been applied" in rows[0].error_message


def crash_principal():
    from datetime import UTC, datetime, timedelta

    from accounts.models import Account
    from accounts.principal import Principal

    account = Account.objects.create(name="Crash Co", slug="crash")
    return Principal(
        user_id=None,
        username="tester",
        account_id=account.pk,
        account_slug="crash",
        connection_id=None,
        client_id="cid",
        client_name="Unit",
        scopes=frozenset({"read", "write"}),
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )


async def test_a_failure_after_the_write_was_accepted_says_it_was_most_likely_applied(mcp_env, truth):
    """The subscriber confirms paying invoice A; meanwhile the publication's staff create
    another invoice whose due date no calendar can show (Pelcro takes any Unix seconds). The
    payment goes through, but its answer (the customer resource, with every invoice) cannot
    be read: the failure must say the payment was most likely made, and a repeat with the
    same idempotency key gets that answer again instead of a second payment attempt."""
    from tests.support import open_data

    sandbox = mcp_env.sandbox.url
    who, conn, _subscribe = await open_subscriber_and_args(mcp_env)
    card = open_data.add_card(sandbox, who, "tok_visa_4242")
    bill = open_data.invoice(sandbox, who, status="open", total=1500)
    args = {"invoice_id": bill["id"], "payment_method_id": card["id"], "idempotency_key": f"k-{uuid.uuid4().hex}"}
    open_url = mcp_env.gateway.url + "/open"
    since = truth.last_seq()
    async with eliciting(open_url, conn.token) as client:
        asked = await client.session.call_tool("pay_invoice", args, allow_input_required=True)
        assert asked.result_type == "input_required", asked
        body = {"customer_id": who["customer_id"], "currency": "usd", "total": 100, "status": "draft"}
        open_data.core_api(sandbox, "POST", "/invoices", SITE, json={**body, "due_date": 10**13})
        paid = await client.session.call_tool(
            "pay_invoice", args, input_responses=YES, request_state=asked.request_state, allow_input_required=True
        )
        again = await client.session.call_tool("pay_invoice", args, allow_input_required=True)
    pays = [e for e in writes_sent(truth, since) if e["path"] == f"/api/v1/sdk/invoices/{bill['id']}/pay"]
    assert len(pays) == 1 and pays[0]["status"] == 200
    assert paid.is_error, paid
    failure = paid.structured_content
    assert failure["may_have_been_applied"] is True, failure
    assert "most likely applied" in failure["message"] and "list_recent_writes" in failure["message"]
    assert again.result_type == "complete" and again.structured_content == failure  # kept: no second attempt
    rows = await rows_of(3, "pay_invoice")
    assert [(r.confirmation, r.replayed, r.outcome) for r in rows] == [
        ("asked", False, "ok"),
        ("confirmed", False, "error"),
        ("", True, "error"),
    ]


# --- money moved by a tool outside the list -------------------------------------------


async def test_a_core_subscription_charged_to_a_saved_card_needs_a_person(mcp_env, truth):
    """create_subscription charges the customer's saved card (collection_method
    charge_automatically, the default), as the Open server's subscribe does: a person
    confirms first. Billed by invoice (send_invoice), nothing is charged: no question."""
    from tests.test_previews_core_customers import World

    world = World(truth)
    customer = world.with_card()
    charged = {
        "site_id": SITE,
        "customer_id": customer["id"],
        "plan_id": world.plan["id"],
        "quantity": 1,
        "source_id": customer["default_source_id"],
    }
    invoiced = {**charged, "collection_method": "send_invoice", "source_id": None}
    since = truth.last_seq()

    def created() -> list[dict]:
        log = truth.log(since=since, account="acme")
        return [e for e in log if (e["method"], e["path"]) == ("POST", "/api/v1/core/subscriptions")]

    async with mcp_session(mcp_env.url, mcp_env.token(), MODERN) as client:
        asked = await client.call_tool("create_subscription", charged)
        assert asked.structured_content["error"] == "confirmation_required", asked
        assert created() == []
        billed = await client.call_tool("create_subscription", invoiced)
        assert not billed.is_error, billed.content[0].text
    assert len(created()) == 1
    assert TOOLS["create_subscription"].needs_confirmation(TOOLS["create_subscription"].args_model(**charged))
    assert "Needs a person's confirmation" in TOOLS["create_subscription"].description


@pytest.mark.parametrize(
    ("capabilities", "answer"),
    [
        ({}, "link"),
        ({"elicitation": {"url": {}}}, "link"),  # url mode only: no form to ask a yes in
        ({"elicitation": {}}, "asked"),  # a bare elicitation capability is form mode (MCP 2025-11-25)
        ({"elicitation": {"form": {}, "url": {}}}, "asked"),
    ],
    ids=["none", "url-only", "bare", "form-and-url"],
)
async def test_what_a_client_declares_only_chooses_how_the_person_is_asked(mcp_env, truth, capabilities, answer):
    args = charge_args(truth)
    since = truth.last_seq()
    result = modern_call(mcp_env.url, mcp_env.token(), TOOL, args, capabilities=capabilities)["result"]
    if answer == "link":
        assert result["structuredContent"]["error"] == "confirmation_required", result
    else:
        assert result["resultType"] == "input_required" and result["requestState"].startswith("v1."), result
    assert charges_sent(truth, since) == []


async def test_two_confirmed_rounds_with_one_key_at_once_through_two_processes_charge_once(mcp_env, truth, replica):
    """The model asked twice for the same charge (same key), and the person said yes to
    both questions; the two yes rounds arrive together at two gateway processes: the
    idempotency claim lets one charge, the other answers its outcome."""
    token = mcp_env.token()
    args = {**charge_args(truth), "idempotency_key": f"k-{uuid.uuid4().hex}"}
    since = truth.last_seq()
    async with eliciting(mcp_env.url, token) as client:
        states = [(await first_round(client, args)).request_state for _ in range(2)]

    async def answer(url: str, state: str):
        async with eliciting(url, token) as client:
            return await client.session.call_tool(
                TOOL, args, input_responses=YES, request_state=state, allow_input_required=True
            )

    first, second = await asyncio.gather(answer(mcp_env.url, states[0]), answer(replica.url + "/", states[1]))
    assert not first.is_error and not second.is_error, (first, second)
    assert first.structured_content == second.structured_content
    assert len(charges_sent(truth, since)) == 1
    rows = await rows_of(4)
    assert sorted((r.confirmation, r.replayed) for r in rows if not r.replayed) == [
        ("asked", False),
        ("asked", False),
        ("confirmed", False),
    ]
    # The other yes got the kept outcome: found by the lookup before its confirmation was
    # used (blank), or after it, waiting for the claim (confirmed).
    [replay] = [r for r in rows if r.replayed]
    assert replay.confirmation in ("", "confirmed") and replay.upstream_status is None


# --- what the person confirmed is what is done ------------------------------------------------


@pytest.mark.parametrize("channel", ["elicitation", "link"])
async def test_a_confirmed_payment_goes_to_the_card_the_person_saw(mcp_env, truth, channel):
    """pay_invoice without payment_method_id pays with the default card, and the person is
    asked about that card ("charged now to your visa ending 4242"). Between their yes and
    the call that uses it, the model makes another card the default (which needs no
    confirmation): the payment must still go to the card the person confirmed, never to
    one they were not shown."""
    from asgiref.sync import sync_to_async

    from tests.support import open_data
    from tests.support.previews import OPEN_BASE, sent_as_previewed
    from tests.test_subscriber_session import sign_in_page

    sandbox = mcp_env.sandbox.url
    who, conn, subscribe = await open_subscriber_and_args(mcp_env)  # a visa ending 4242, the default
    other = open_data.add_card(sandbox, who, "tok_mastercard_5555")
    bill = open_data.invoice(sandbox, who, status="open", total=2300)
    args = {"invoice_id": bill["id"]}
    open_url = mcp_env.gateway.url + "/open"
    make_default = {"payment_method_id": other["id"]}
    since = truth.last_seq()
    if channel == "elicitation":
        async with eliciting(open_url, conn.token) as client:
            asked = await client.session.call_tool("pay_invoice", args, allow_input_required=True)
            assert "visa ending 4242" in asked.input_requests["confirm"].params.message
            assert not (await client.call_tool("set_default_payment_method", make_default)).is_error
            paid = await client.session.call_tool(
                "pay_invoice", args, input_responses=YES, request_state=asked.request_state, allow_input_required=True
            )
    else:
        async with mcp_session(open_url, conn.token, MODERN) as client:
            asked = await client.call_tool("pay_invoice", args)
            assert "visa ending 4242" in asked.structured_content["message"]
            url = asked.structured_content["confirmation_url"]
            path = url.removeprefix(mcp_env.gateway.url)

            def confirm_on_page() -> None:
                with httpx.Client(base_url=mcp_env.gateway.url, timeout=20, follow_redirects=False) as browser:
                    assert sign_in_page(browser, who, next_url=path).headers["location"] == path
                    assert "Confirmed" in answer_on_page(browser, url, "confirm").text

            await sync_to_async(confirm_on_page)()
            assert not (await client.call_tool("set_default_payment_method", make_default)).is_error
            paid = await client.call_tool("pay_invoice", args)
    assert not paid.is_error, paid.content[0].text
    assert paid.structured_content["payment_method"]["last4"] == "4242", paid.structured_content
    [pay] = [e for e in writes_sent(truth, since) if e["path"] == f"{OPEN_BASE}/invoices/{bill['id']}/pay"]
    sent = {"method": "POST", "path": f"/invoices/{bill['id']}/pay", "query": {"site_id": SITE}}
    sent_as_previewed({**sent, "body": {"source_id": subscribe["payment_method_id"]}}, pay, OPEN_BASE)


# --- a yes covers what the question showed ----------------------------------------------------


async def test_a_yes_to_cancel_every_pending_refund_covers_the_refunds_the_question_listed(mcp_env, truth, fresh_sbx):
    """The person is asked to cancel "every pending refund" and shown which; before the
    call that uses the yes, a new refund becomes pending (made in Pelcro's dashboard). The
    yes covers the refunds it listed: those are canceled, the new one is still to be issued."""
    from asgiref.sync import sync_to_async

    try:
        token = await sync_to_async(mcp_env.token)()
        refunds = truth.ok("GET", "/refunds", params={"limit": 100})
        listed = {r["id"] for r in refunds if r["status"] == "to_issue" and r["created_at"]}
        assert listed, "the seed has pending refunds"
        charge = truth.ok("GET", "/charges", params={"limit": 1})[0]
        args = {"site_id": SITE, "all_pending": True}
        async with eliciting(mcp_env.url, token) as staff:
            asked = await staff.session.call_tool("cancel_refunds", args, allow_input_required=True)
            assert asked.result_type == "input_required", asked
            question = asked.input_requests["confirm"].params.message
            assert all(f"refund {refund_id} " in question for refund_id in sorted(listed)[:10])
            made = fresh_sbx.admin.post(f"/sites/{SITE}/refunds", json={"charge_id": charge["id"], "amount": 1})
            assert made.status_code == 201, made.text
            late = made.json()["data"]["id"]
            done = await staff.session.call_tool(
                "cancel_refunds", args, input_responses=YES, request_state=asked.request_state
            )
        assert not done.is_error, done
        assert set(done.structured_content["queued"]) == listed
        assert fresh_sbx.admin.post("/jobs/run").status_code == 200
        after = {r["id"]: r["status"] for r in truth.ok("GET", "/refunds", params={"limit": 100})}
        assert after[late] == "to_issue"  # not in the question: untouched
        assert {after[refund_id] for refund_id in listed} == {"canceled"}
        rows = await rows_of(2, "cancel_refunds")
        assert [(r.confirmation, r.outcome) for r in rows] == [("asked", "ok"), ("confirmed", "ok")]
    finally:
        fresh_sbx.reset()  # the other tests of this worker find the seed's pending refunds again
