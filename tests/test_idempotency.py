"""Idempotent writes and `list_recent_writes` (issue 15 item 2, README "Safe writes").

End to end: two gateway processes behind one PUBLIC_URL (replicas of one deployment),
sharing the test database and Redis, in front of the sandbox; real OAuth tokens, the real
`mcp` SDK client, the sandbox's request log as the count of upstream requests. Then the
store itself (`mcp_bridge.runtime.idempotency`) against the real Redis: the scripts, the
waiting, the lease, Redis down.

The connections here have confirmations turned off (`Connection.confirm_writes`, as an
account owner may), so `create_offline_charge` runs without a person's confirmation.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
import redis as redis_lib
from django.conf import settings
from mcp_types import CallToolResult, TextContent

from accounts.models import Connection
from accounts.principal import Credentials, Principal
from devtools.oauth_client import obtain_tokens
from mcp_bridge.audit import CallRecord
from mcp_bridge.models import ToolCall
from mcp_bridge.runtime import idempotency
from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.results import ToolFailed
from mcp_bridge.runtime.schemas import ToolFailure
from mcp_bridge.servers import OPEN_TOOLS, TOOLS
from tests.support import open_data
from tests.support.faults import (
    ACME_SITE,
    call_tool,
    delete_prefixed_keys,
    fault_prefix,
    new_customer_args,
    post_jsonrpc,
    requests_to,
    settled_log,
    start_fault_gateway,
)
from tests.support.mcp import PASSWORDS, audit_rows, mcp_session
from tests.support.open import READ_WRITE, open_connection
from tests.support.sandbox import SandboxClient

PREFIX_TAIL = "idem:"
KEY = "charge-2026-05-01-0001"
DAY = 24 * 3600


def gateways_prefix() -> str:
    return fault_prefix() + PREFIX_TAIL


@pytest.fixture(scope="module")
def replicas(django_db_setup, django_db_blocker, fault_sandbox):
    """Two gateway processes of one deployment: one PUBLIC_URL (so a token works on both),
    one Redis prefix (one idempotency store). 2 s per upstream attempt."""
    prefix = gateways_prefix()
    with django_db_blocker.unblock():
        first = start_fault_gateway(fault_sandbox, REDIS_KEY_PREFIX=prefix, CORE_API_TIMEOUT="2")
        second = start_fault_gateway(fault_sandbox, REDIS_KEY_PREFIX=prefix, CORE_API_TIMEOUT="2", PUBLIC_URL=first.url)
    yield first, second
    for server in (first, second):
        server.stop()
    delete_prefixed_keys(prefix)


@pytest.fixture
def env(transactional_db, demo_users, replicas, fault_sandbox):
    sandbox = SandboxClient(fault_sandbox)
    sandbox.restore_config()
    delete_prefixed_keys(gateways_prefix())
    yield SimpleNamespace(gateways=replicas, sandbox=sandbox)
    sandbox.restore_config()
    sandbox.close()
    delete_prefixed_keys(gateways_prefix())


_clients = itertools.count(1)


def token_for(gateway, access: str = "read_write") -> str:
    """A new connection of demo to acme (a client registration of its own: identical
    registrations are shared), confirmations off."""
    name = f"idem-test-{next(_clients)}"
    token = obtain_tokens(gateway.url, "demo", PASSWORDS["demo"], "acme", access=access, client_name=name)
    token = token["access_token"]
    Connection.objects.update(confirm_writes=False)
    return token


def new_customer(sandbox) -> int:
    return sandbox.ok("POST", "/customers", 201, site_id=ACME_SITE, json=new_customer_args("idem"))["id"]


def charge_args(customer_id: int, amount: int = 2500, key: str | None = KEY) -> dict:
    args = {
        "site_id": ACME_SITE,
        "customer_id": customer_id,
        "amount": amount,
        "currency": "usd",
        "reference": "WIRE-77",
        "payment_category": "wire",
    }
    return {**args, "idempotency_key": key} if key else args


async def call(gateway, token: str, name: str, arguments: dict, path: str = "/"):
    async with mcp_session(gateway.url + path, token, "2026-07-28") as client:
        return await call_tool(client, name, arguments)


def call_sync(gateway, token: str, name: str, arguments: dict, path: str = "/"):
    return asyncio.run(call(gateway, token, name, arguments, path))


def charges(entries: list[dict]) -> list[dict]:
    return requests_to(entries, "POST", "/charges")


def same_answer(a, b) -> None:
    assert (a.is_error, a.structured, a.text) == (b.is_error, b.structured, b.text)


def store_ttl(connection_id: int, key: str = KEY) -> int:
    client = redis_lib.Redis.from_url(settings.REDIS_URL)
    try:
        return client.ttl(f"{gateways_prefix()}idem:{connection_id}:create_offline_charge:{key}")
    finally:
        client.close()


# --- Through two gateway processes ---------------------------------------------------------


def test_a_repeat_through_the_other_process_gets_the_first_outcome_without_a_request(env):
    first, second = env.gateways
    token = token_for(first)
    customer = new_customer(env.sandbox)
    since = env.sandbox.last_seq()

    done = call_sync(first, token, "create_offline_charge", charge_args(customer))
    again = call_sync(second, token, "create_offline_charge", charge_args(customer))
    entries = settled_log(env.sandbox, since)

    assert not done.is_error, done
    assert done.structured["amount"] == 2500 and done.structured["offline"] is True
    same_answer(done, again)
    assert len(charges(entries)) == 1 and len(entries) == 1
    original, replay = audit_rows(2, tool="create_offline_charge")
    assert (original.replayed, original.upstream_status, original.outcome) == (False, 201, "ok")
    assert (replay.replayed, replay.upstream_status, replay.outcome) == (True, None, "ok")
    assert original.idempotency_key == replay.idempotency_key == KEY
    assert original.connection_id == replay.connection_id
    # Kept 24 hours from when the outcome was stored (Redis TTL, seconds).
    assert DAY - 60 < store_ttl(original.connection_id) <= DAY


def test_concurrent_calls_through_two_processes_make_one_request(env):
    """Four calls at once, two per process, while the upstream takes 0.6 s: one request;
    the others waited for it (they started before it ended) and answer the same."""
    first, second = env.gateways
    token = token_for(first)
    customer = new_customer(env.sandbox)
    env.sandbox.configure(latency_ms=600)
    since = env.sandbox.last_seq()

    async def together():
        return await asyncio.gather(
            *(call(gateway, token, "create_offline_charge", charge_args(customer)) for gateway in [first, second] * 2)
        )

    outcomes = asyncio.run(together())
    entries = settled_log(env.sandbox, since)

    assert all(not o.is_error for o in outcomes), outcomes
    for outcome in outcomes[1:]:
        same_answer(outcomes[0], outcome)
    assert len(charges(entries)) == 1
    rows = audit_rows(4, tool="create_offline_charge")
    [original] = [r for r in rows if not r.replayed]
    assert original.upstream_status == 201
    ended = original.created_at + timedelta(milliseconds=original.latency_ms)
    replays = [r for r in rows if r.replayed]
    assert len(replays) == 3 and all(r.created_at < ended for r in replays)  # in flight: waited


def test_the_same_key_with_other_arguments_is_refused(env):
    first, second = env.gateways
    token = token_for(first)
    customer = new_customer(env.sandbox)
    since = env.sandbox.last_seq()

    done = call_sync(first, token, "create_offline_charge", charge_args(customer, amount=2500))
    other = call_sync(second, token, "create_offline_charge", charge_args(customer, amount=9900))
    entries = settled_log(env.sandbox, since)

    assert not done.is_error
    assert other.error == "idempotency_key_reused"
    assert KEY in other.text and "new key" in other.text and "Nothing was sent" in other.text
    assert len(charges(entries)) == 1
    assert [(r.outcome, r.replayed) for r in audit_rows(2, tool="create_offline_charge")] == [
        ("ok", False),
        ("error", False),
    ]


def test_connections_are_independent(env):
    first, second = env.gateways
    one, two = token_for(first), token_for(first)
    customer = new_customer(env.sandbox)
    since = env.sandbox.last_seq()

    a = call_sync(first, one, "create_offline_charge", charge_args(customer))
    b = call_sync(second, two, "create_offline_charge", charge_args(customer))
    entries = settled_log(env.sandbox, since)

    assert not a.is_error and not b.is_error
    assert a.structured["id"] != b.structured["id"]
    assert len(charges(entries)) == 2
    rows = audit_rows(2, tool="create_offline_charge")
    assert len({r.connection_id for r in rows}) == 2 and not any(r.replayed for r in rows)


def test_a_write_that_may_have_been_applied_is_kept_and_never_sent_again(env):
    """The upstream applies the charge but answers after the gateway gave up (2 s): the
    outcome is unknown, so it is kept; the retry with the key gets it, with no request."""
    first, second = env.gateways
    token = token_for(first)
    customer = new_customer(env.sandbox)
    env.sandbox.configure(latency_ms=3000)
    since = env.sandbox.last_seq()

    unsure = call_sync(first, token, "create_offline_charge", charge_args(customer))
    retried = call_sync(second, token, "create_offline_charge", charge_args(customer))  # the upstream still slow
    entries = settled_log(env.sandbox, since)  # the first request is logged once it ends
    env.sandbox.configure(latency_ms=0)

    assert unsure.error == "upstream_unavailable" and unsure.structured["may_have_been_applied"] is True
    assert "list_recent_writes" in unsure.text and "new key" in unsure.text
    same_answer(unsure, retried)
    [charge] = charges(entries)
    assert charge["status"] == 201  # it was applied, after the gateway stopped waiting
    original, replay = audit_rows(2, tool="create_offline_charge")
    assert (original.outcome, original.replayed) == ("error", False)
    assert (replay.outcome, replay.replayed, replay.upstream_status) == ("error", True, None)
    assert replay.error_message == original.error_message

    # The model follows the advice: list_recent_writes shows what happened to that key.
    listed = call_sync(first, token, "list_recent_writes", {"idempotency_key": KEY})
    assert not listed.is_error
    assert [(i["replayed"], i["outcome"]) for i in listed.structured["items"]] == [(True, "error"), (False, "error")]


def test_a_failure_that_wrote_nothing_frees_the_key(env):
    """A refusal by the upstream (no such customer) wrote nothing: the retry with the same
    key runs again (and so does a later one, once the arguments are right)."""
    first, second = env.gateways
    token = token_for(first)
    missing = 987654321
    since = env.sandbox.last_seq()

    refused = call_sync(first, token, "create_offline_charge", charge_args(missing))
    again = call_sync(second, token, "create_offline_charge", charge_args(missing))
    entries = settled_log(env.sandbox, since)

    assert refused.is_error and refused.error != "idempotency_key_reused"
    assert "may_have_been_applied" not in refused.structured
    assert again.error == refused.error
    assert len(charges(entries)) == 2
    assert not any(r.replayed for r in audit_rows(2, tool="create_offline_charge"))


def test_a_call_without_a_key_is_not_deduplicated(env):
    first, second = env.gateways
    token = token_for(first)
    customer = new_customer(env.sandbox)
    since = env.sandbox.last_seq()
    a = call_sync(first, token, "create_offline_charge", charge_args(customer, key=None))
    b = call_sync(second, token, "create_offline_charge", charge_args(customer, key=None))
    assert not a.is_error and not b.is_error and a.structured["id"] != b.structured["id"]
    assert len(charges(settled_log(env.sandbox, since))) == 2


def test_list_recent_writes_shows_this_connections_writes(env):
    first, second = env.gateways
    token, other = token_for(first), token_for(first)
    customer = new_customer(env.sandbox)
    started = datetime.now(UTC) - timedelta(seconds=1)
    call_sync(first, other, "create_customer", new_customer_args("not-mine"))  # another connection's
    call_sync(first, token, "create_offline_charge", charge_args(customer))
    call_sync(second, token, "create_offline_charge", charge_args(customer))  # a replay
    call_sync(first, token, "update_customer", {"site_id": ACME_SITE, "customer_id": customer, "first_name": "Ada"})
    call_sync(first, token, "create_offline_charge", {**charge_args(customer, key="preview-0001"), "dry_run": True})
    call_sync(first, token, "list_plans", {"site_id": ACME_SITE, "per_page": 1})  # a read: not listed

    listed = call_sync(second, token, "list_recent_writes", {})
    assert not listed.is_error, listed
    items = listed.structured["items"]
    assert listed.structured["total"] == 4 and listed.structured["has_more"] is False
    assert [i["tool"] for i in items] == [
        "create_offline_charge",
        "update_customer",
        "create_offline_charge",
        "create_offline_charge",
    ]  # newest first
    preview, update, replay, charge = items
    # A dry run writes nothing and claims no key (its arguments still show what was sent).
    assert preview["dry_run"] is True and preview["idempotency_key"] is None
    assert preview["arguments"]["idempotency_key"] == "preview-0001"
    assert (update["outcome"], update["upstream_status"], update["idempotency_key"]) == ("ok", 200, None)
    assert update["arguments"] == {"site_id": ACME_SITE, "customer_id": customer, "first_name": "Ada"}
    assert (replay["replayed"], replay["upstream_status"], replay["idempotency_key"]) == (True, None, KEY)
    assert (charge["replayed"], charge["upstream_status"], charge["outcome"]) == (False, 201, "ok")
    assert charge["arguments"]["amount"] == 2500 and charge["arguments"]["idempotency_key"] == KEY
    # Confirmations are off for these connections: the charge ran without asking, `waived`.
    assert charge["site_id"] == ACME_SITE and charge["confirmation"] == "waived"
    assert all(datetime.fromisoformat(i["at"]) >= started.replace(microsecond=0) for i in items)
    assert items[0]["at"].endswith("Z")
    assert "update_customer: ok 200" in listed.text

    # Filters and paging.
    by_key = call_sync(first, token, "list_recent_writes", {"idempotency_key": KEY})
    assert [i["replayed"] for i in by_key.structured["items"]] == [True, False]
    by_tool = call_sync(first, token, "list_recent_writes", {"tool": "update_customer"})
    assert [i["tool"] for i in by_tool.structured["items"]] == ["update_customer"]
    later = (datetime.now(UTC) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert call_sync(first, token, "list_recent_writes", {"since": later}).structured["total"] == 0
    page2 = call_sync(first, token, "list_recent_writes", {"per_page": 3, "page": 2})
    assert page2.structured["items"] == [charge] and page2.structured["last_page"] == 2
    wrong = call_sync(first, token, "list_recent_writes", {"tool": "list_plans"})
    assert wrong.error == "invalid_arguments" and "create_offline_charge" in wrong.text

    # The other connection sees only its own.
    theirs = call_sync(first, other, "list_recent_writes", {})
    assert [i["tool"] for i in theirs.structured["items"]] == ["create_customer"]


def test_list_recent_writes_is_read_only_and_served_to_read_only_connections(env):
    first, _ = env.gateways
    spec = TOOLS["list_recent_writes"]
    assert (spec.read_only, spec.destructive, spec.idempotent, spec.open_world) == (True, False, True, False)
    assert OPEN_TOOLS["list_recent_writes"].read_only
    token = token_for(first, access="read")

    async def listed_and_called():
        async with mcp_session(first.url + "/", token, "2026-07-28") as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            return tools, await call_tool(client, "list_recent_writes", {})

    tools, empty = asyncio.run(listed_and_called())
    assert "list_recent_writes" in tools and "create_offline_charge" not in tools
    hints = tools["list_recent_writes"].annotations
    assert hints.read_only_hint is True and hints.destructive_hint is False
    assert not empty.is_error and empty.structured["total"] == 0

    # A write this connection tried (refused at the edge) is listed as denied.
    refused = post_jsonrpc(
        first.url + "/",
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "create_offline_charge", "arguments": charge_args(1)},
        },
        token,
    )
    assert refused.status_code == 403
    listed = call_sync(first, token, "list_recent_writes", {})
    assert [(i["tool"], i["outcome"]) for i in listed.structured["items"]] == [("create_offline_charge", "denied")]


def test_the_open_server_is_idempotent_and_lists_its_writes(env):
    """On /open: a repeat of `add_address` with the key (through the other process) adds
    nothing more; `list_recent_writes` shows the subscriber connection's own writes."""
    first, second = env.gateways
    where = SimpleNamespace(gateway=first, sandbox=env.sandbox.server)
    me = open_data.register(env.sandbox.url)
    mine = open_connection(where, me, access=READ_WRITE, confirm_writes=False)
    theirs = open_connection(where, open_data.register(env.sandbox.url), access=READ_WRITE, confirm_writes=False)
    address = {"line1": "5 Elm Street", "city": "Springfield", "state": "IL", "country": "us", "idempotency_key": KEY}
    since = env.sandbox.last_seq()

    added = call_sync(first, mine.token, "add_address", address, path="/open")
    again = call_sync(second, mine.token, "add_address", address, path="/open")
    other = call_sync(first, theirs.token, "add_address", address, path="/open")  # the same key, elsewhere
    entries = settled_log(env.sandbox, since)

    assert not added.is_error and not other.is_error, (added, other)
    same_answer(added, again)
    posts = [e for e in entries if e["method"] == "POST" and e["path"] == "/api/v1/sdk/address"]
    assert len(posts) == 2  # one per connection
    listed = call_sync(second, mine.token, "list_recent_writes", {}, path="/open")
    assert not listed.is_error, listed
    items = listed.structured["items"]
    assert [(i["tool"], i["replayed"], i["idempotency_key"]) for i in items] == [
        ("add_address", True, KEY),
        ("add_address", False, KEY),
    ]
    assert items[1]["upstream_status"] in (200, 201) and items[0]["upstream_status"] is None
    wrong = call_sync(first, mine.token, "list_recent_writes", {"tool": "create_offline_charge"}, path="/open")
    assert wrong.error == "invalid_arguments" and "add_address" in wrong.text  # the Open server's write tools
    rows = audit_rows(3, tool="add_address", connection_id=mine.connection_id)
    assert [r.replayed for r in rows] == [False, True] and {r.customer_id for r in rows} == {me["customer_id"]}


def test_redis_down_refuses_a_keyed_write_before_anything_is_sent(
    transactional_db, demo_users, own_redis, fault_sandbox, django_db_blocker
):
    with django_db_blocker.unblock():
        gateway = start_fault_gateway(fault_sandbox, REDIS_URL=own_redis.url)
    sandbox = SandboxClient(fault_sandbox)
    try:
        token = token_for(gateway)
        customer = new_customer(sandbox)
        own_redis.proc.kill()
        own_redis.proc.wait()
        since = sandbox.last_seq()
        keyed = call_sync(gateway, token, "create_offline_charge", charge_args(customer))
        time.sleep(0.3)
        assert sandbox.log(since) == []
    finally:
        gateway.stop()
        sandbox.close()
    assert keyed.error == "upstream_unavailable" and "idempotency store" in keyed.text
    assert "not sent" in keyed.text and "may_have_been_applied" not in keyed.structured
    [row] = audit_rows(1, tool="create_offline_charge")
    assert row.outcome == "error" and row.idempotency_key == KEY


# --- The store on the real Redis (no server) -------------------------------------------------


def a_call(connection_id: int = 7) -> CallContext:
    principal = Principal(
        user_id=1,
        username="demo",
        account_id=1,
        account_slug="acme",
        connection_id=connection_id,
        client_id="c",
        client_name="c",
        scopes=frozenset({"read", "write"}),
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )
    record = CallRecord(principal=principal, tool="create_offline_charge", arguments={})
    return CallContext(
        principal=principal, credentials=Credentials(principal=principal, sites={14: "x"}), record=record
    )


SPEC = SimpleNamespace(name="create_offline_charge")


class Args(SimpleNamespace):
    def model_dump(self, mode: str = "json") -> dict:
        return dict(self.__dict__)


def result(text: str, *, error: dict | None = None) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=error or {"text": text}, is_error=bool(error)
    )


class Handler:
    """A handler that counts its runs (each a "request upstream")."""

    def __init__(self, answer=None, delay: float = 0.0, fail: ToolFailure | None = None):
        self.runs = 0
        self.answer = answer or result("charged")
        self.delay = delay
        self.fail = fail

    async def __call__(self) -> CallToolResult:
        self.runs += 1
        await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise ToolFailed(self.fail, ToolCall.Outcome.RATE_LIMITED if self.fail.error == "rate_limited" else "error")
        return self.answer


async def run_write(handler, key: str = KEY, args=None, call=None) -> tuple[CallToolResult, CallContext]:
    """What `runtime.writes.run_write` does with the key (without confirmation)."""
    call = call or a_call()
    write = idempotency.for_call(SPEC, call, args or Args(amount=1), key)
    earlier = await write.earlier_outcome()
    return (earlier if earlier is not None else await write.run(handler)), call


def test_arguments_hash_is_canonical():
    assert idempotency.arguments_hash(Args(a=1, b=[1, 2], c=None)) == idempotency.arguments_hash(
        Args(c=None, b=[1, 2], a=1)
    )
    assert idempotency.arguments_hash(Args(a=1)) != idempotency.arguments_hash(Args(a=2))
    spec = TOOLS["create_offline_charge"]
    full = spec.args_model.model_validate({**charge_args(5, key=None), "invoice_id": None})
    short = spec.args_model.model_validate(charge_args(5, key=None))
    assert idempotency.arguments_hash(full) == idempotency.arguments_hash(short)  # defaults filled in


async def test_a_kept_outcome_is_replayed_and_expires_after_a_day(redis_client, close_limiter_redis):
    handler = Handler()
    first, call1 = await run_write(handler)
    again, call2 = await run_write(handler)
    assert handler.runs == 1 and again == first
    assert (call1.record.replayed, call2.record.replayed) == (False, True)
    key = idempotency.store_key(7, SPEC.name, KEY)
    assert DAY - 5 < redis_client.ttl(key) <= DAY
    with pytest.raises(ToolFailed) as reused:
        await run_write(handler, args=Args(amount=2))
    assert reused.value.failure.error == "idempotency_key_reused" and handler.runs == 1
    # Another connection, another tool: their own keys.
    await run_write(handler, call=a_call(8))
    assert handler.runs == 2


async def test_concurrent_repeats_wait_for_the_running_call(redis_client, close_limiter_redis):
    handler = Handler(delay=0.4)
    outcomes = await asyncio.gather(*(run_write(handler) for _ in range(5)))
    assert handler.runs == 1
    assert all(answer == outcomes[0][0] for answer, _ in outcomes)
    assert sorted(call.record.replayed for _, call in outcomes) == [False] + [True] * 4


async def test_what_wrote_nothing_releases_and_what_may_have_been_applied_is_kept(redis_client, close_limiter_redis):
    limited = Handler(fail=ToolFailure(error="rate_limited", message="retry in 3 s", retry_after=3))
    for _ in range(2):
        with pytest.raises(ToolFailed):
            await run_write(limited)
    assert limited.runs == 2 and not redis_client.exists(idempotency.store_key(7, SPEC.name, KEY))

    unsure = Handler(fail=ToolFailure(error="upstream_unavailable", message="timed out", may_have_been_applied=True))
    with pytest.raises(ToolFailed):
        await run_write(unsure, key="unsure-key-1")
    replay, call = await run_write(unsure, key="unsure-key-1")
    assert unsure.runs == 1 and replay.is_error and replay.structured_content["may_have_been_applied"] is True
    assert (call.record.replayed, call.record.outcome, call.record.error_message) == (True, "error", "timed out")


async def test_a_crashed_call_leaves_an_unknown_outcome(redis_client, close_limiter_redis):
    async def crash() -> CallToolResult:
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        await run_write(crash)
    handler = Handler()
    replay, _ = await run_write(handler)
    assert handler.runs == 0 and replay.structured_content["error"] == "outcome_unknown"
    assert replay.structured_content["may_have_been_applied"] is True


async def test_a_key_held_past_its_lease_is_never_taken_over(redis_client, close_limiter_redis):
    key = idempotency.store_key(7, SPEC.name, KEY)
    write = idempotency.for_call(SPEC, a_call(), Args(amount=1), KEY)
    redis_client.hset(key, mapping={"args": write.args, "owner": "gone", "lease": 1})
    redis_client.expire(key, DAY)
    handler = Handler()
    with pytest.raises(ToolFailed) as unknown:
        await run_write(handler)
    assert handler.runs == 0
    assert unknown.value.failure.error == "outcome_unknown" and unknown.value.failure.may_have_been_applied
    assert "list_recent_writes" in unknown.value.failure.message


async def test_redis_down_fails_closed(settings, close_limiter_redis):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    handler = Handler()
    with pytest.raises(ToolFailed) as down:
        await run_write(handler)
    assert handler.runs == 0 and down.value.failure.error == "upstream_unavailable"
    assert "idempotency store" in down.value.failure.message


def test_kept_outcomes_are_json(redis_client):
    """What the store keeps is plain JSON of the result (no pickles): readable by any process."""
    kept = asyncio.run(_kept_text())
    data = json.loads(kept)
    assert data["result"]["content"][0]["text"] == "charged" and data["outcome"] == "ok"


async def _kept_text() -> str:
    from mcp_bridge.upstream.redis_clients import close_redis_for_loop

    try:
        await run_write(Handler(), key="json-key-01")
    finally:
        await close_redis_for_loop()
    client = redis_lib.Redis.from_url(settings.REDIS_URL)
    try:
        return client.hget(idempotency.store_key(7, SPEC.name, "json-key-01"), "outcome").decode()
    finally:
        client.close()


def test_write_tools_publish_the_retry_advice():
    schema = TOOLS["create_offline_charge"].input_schema()["properties"]["idempotency_key"]
    assert "REUSE the SAME key" in schema["description"]
