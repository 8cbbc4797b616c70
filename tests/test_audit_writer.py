"""Audit rows are written cheaply and never lost (`mcp_bridge.audit.writer`).

On PostgreSQL the rows go over the event loop's own connection, batched: what is written
is what the ORM would write, concurrent saves share statements, an unreachable database
keeps the rows (and says so to the token cache) until it answers again, and a server that
drops an idle connection costs nothing. On both engines: a refused row is logged whole and
not retried, a cancelled caller's row is still written, and saving twice writes once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.forms.models import model_to_dict

from accounts.models import Account, Connection
from accounts.principal import Principal
from mcp_bridge import audit, orm
from mcp_bridge.audit import writer as audit_writer
from mcp_bridge.models import ToolCall
from mcp_bridge.orm import run_db

POSTGRES = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
postgres_only = pytest.mark.skipif(not POSTGRES, reason="the direct writer is PostgreSQL's")

ARGUMENTS = {
    "site_id": 14,
    "email": "zoë@example.com",
    "nested": {"list": [1, 2.5, None, True, "ü\u2603"], "deep": {"x": -(2**40)}, "empty": {}},
    "api_key": "sk_live_secret",  # redacted before it is stored
    "quote": 'it\'s "quoted" \\ and {braces} %s',
}


@pytest.fixture
def principal(transactional_db) -> Principal:
    """A principal whose user, account and connection all exist (every foreign key set)."""
    from django.contrib.auth import get_user_model
    from oauth2_provider.models import get_application_model

    user = get_user_model().objects.create_user("writer", password="x")
    account = Account.objects.create(name="Writer Co", slug="writer")
    application = get_application_model().objects.create(
        name="Writer client",
        client_type="public",
        authorization_grant_type="authorization-code",
        redirect_uris="http://127.0.0.1/cb",
        user=user,
    )
    link = Connection.objects.create(user=user, application=application, account=account)
    return Principal(
        user_id=user.pk,
        username="writer",
        account_id=account.pk,
        account_slug="writer",
        connection_id=link.pk,
        client_id="cid",
        client_name="Client ✓",
        scopes=frozenset({"read", "write"}),
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )


@pytest.fixture(autouse=True)
def empty_backlog():
    """Each test starts and ends with nothing kept (a leftover would be written by the next)."""
    audit_writer.discard_backlog()
    orm.database_health.note(True)
    yield
    audit_writer.discard_backlog()
    orm.database_health.note(True)


def record(principal: Principal, tool: str = "list_plans", **fields) -> audit.CallRecord:
    call = audit.CallRecord(principal=principal, tool=tool, arguments=fields.pop("arguments", {"site_id": 14}))
    for name, value in fields.items():
        setattr(call, name, value)
    return call


def twin(row: ToolCall) -> ToolCall:
    """An unsaved copy of `row` with every column equal."""
    return ToolCall(**{f.attname: getattr(row, f.attname) for f in ToolCall._meta.concrete_fields})


async def rows() -> list[ToolCall]:
    return await run_db(lambda: list(ToolCall.objects.order_by("id")))


def this_loops_writer() -> audit_writer.LoopWriter:
    return audit_writer.writer_for_loop()


# --- PostgreSQL: what is written, and how many statements ------------------------------------


@postgres_only
async def test_a_direct_row_reads_back_exactly_as_an_orm_row(principal):
    """Every column, the raw stored text of JSON and time included, for a full row and for
    one whose nullable columns are all NULL."""
    full = record(
        principal,
        "create_customer",
        arguments=ARGUMENTS,
        upstream_status=201,
        error_message="naïve \x00 text",
        outcome=ToolCall.Outcome.ERROR,
    ).row()
    anonymous = Principal(
        user_id=None,
        username="",
        account_id=None,
        account_slug="",
        connection_id=None,
        client_id="",
        client_name="",
        scopes=frozenset(),
        expires_at=principal.expires_at,
    )
    empty = record(anonymous, "x" * 300, arguments="not a dict").row()
    assert empty.site_id is None and empty.upstream_status is None and empty.arguments == {}

    for original in (full, empty):
        by_orm, direct = twin(original), twin(original)
        await run_db(audit_writer.insert_with_orm, [by_orm])
        statements = this_loops_writer().statements
        await audit_writer.write(direct)
        assert this_loops_writer().statements == statements + 1  # the direct path, not the ORM

        stored_orm, stored_direct = await run_db(
            lambda tool=original.tool: list(ToolCall.objects.filter(tool=tool).order_by("id"))
        )
        assert stored_direct.pk != stored_orm.pk
        expected = model_to_dict(stored_orm, exclude=["id"]) | {"created_at": stored_orm.created_at}
        assert model_to_dict(stored_direct, exclude=["id"]) | {"created_at": stored_direct.created_at} == expected
        assert stored_direct.created_at == original.created_at and stored_direct.created_at.tzinfo is not None
        assert stored_direct.arguments == original.arguments

        def raw(pk: int) -> tuple:
            with connection.cursor() as cursor:
                cursor.execute("SELECT * FROM mcp_bridge_toolcall WHERE id = %s", [pk])
                return cursor.fetchone()[1:]

        assert await run_db(raw, stored_direct.pk) == await run_db(raw, stored_orm.pk)

    assert full.arguments["api_key"] == audit.REDACTED and full.error_message == "naïve \ufffd text"


@postgres_only
async def test_concurrent_saves_share_statements_and_each_row_is_written_once(principal):
    writer = this_loops_writer()
    await record(principal, "warm_up").save()  # the connection is open: the rest is batching
    before = writer.statements
    calls = [record(principal, f"tool_{i}") for i in range(40)]
    await asyncio.gather(*(call.save() for call in calls))

    assert sorted(r.tool for r in await rows() if r.tool != "warm_up") == sorted(c.tool for c in calls)
    assert all(call.saved for call in calls)
    statements = writer.statements - before
    assert 1 <= statements < len(calls) / 4, f"{statements} statements for {len(calls)} rows"

    def transactions() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(DISTINCT xmin::text) FROM mcp_bridge_toolcall WHERE tool LIKE 'tool\\_%%'")
            return cursor.fetchone()[0]

    assert await run_db(transactions) == statements  # one statement, one transaction


@postgres_only
async def test_a_long_backlog_goes_in_statements_of_bounded_size(principal):
    """PostgreSQL takes at most 65535 parameters per statement: 1200 kept rows and a new
    one go in three statements, oldest first."""
    writer = this_loops_writer()
    await record(principal, "warm_up").save()
    audit_writer.keep([record(principal, f"kept_{i:04}").row() for i in range(1200)])
    before = writer.statements
    await record(principal, "new").save()
    assert writer.statements - before == 3 and audit.backlog_size() == 0
    assert [r.tool for r in await rows()] == ["warm_up", *(f"kept_{i:04}" for i in range(1200)), "new"]


@postgres_only
async def test_an_unreachable_database_keeps_the_rows_until_it_answers(principal, database_outage, monkeypatch, caplog):
    """The database goes away under an open connection: rows are kept and the token cache
    is told; when it is back, the kept rows go with the next write, each once."""
    params = audit_writer.connection_params
    monkeypatch.setattr(
        audit_writer, "connection_params", lambda: {**params(), "host": "127.0.0.1", "port": database_outage.port}
    )
    await record(principal, "before").save()

    database_outage.cut()
    with caplog.at_level(logging.WARNING, logger="mcp_bridge.audit"):
        await record(principal, "during_1").save()
        await asyncio.gather(record(principal, "during_2").save(), record(principal, "during_3").save())
    assert "audit row for during_1 kept until the database answers again" in caplog.text
    assert audit.backlog_size() == 3
    assert orm.database_health.suspect
    assert [r.tool for r in await rows()] == ["before"]

    database_outage.restore()
    await record(principal, "after").save()
    assert audit.backlog_size() == 0
    assert not orm.database_health.suspect
    assert [r.tool for r in await rows()] == ["before", "during_1", "during_2", "during_3", "after"]
    assert "not stored" not in caplog.text


@postgres_only
async def test_a_stalled_insert_is_given_up_and_its_row_kept_then_written_once(principal, monkeypatch):
    """An insert the database cannot finish (here: the table locked by someone else) must not
    hold the caller's answer forever. The server cancels it after STATEMENT_TIMEOUT, so the
    kept row was surely not written, and it is written once the table is free again."""
    import psycopg

    monkeypatch.setattr(audit_writer, "STATEMENT_TIMEOUT", 0.5)
    await record(principal, "before").save()  # the writer's connection is open

    params = audit_writer.connection_params()
    params.pop("options", None)
    locker = await psycopg.AsyncConnection.connect(**{**params, "autocommit": False})
    try:
        await locker.execute("LOCK TABLE mcp_bridge_toolcall IN ACCESS EXCLUSIVE MODE")
        # The open connection keeps its old timeout: reconnect so the short one applies.
        await this_loops_writer().discard()
        began = time.monotonic()
        await record(principal, "stalled").save()
        assert time.monotonic() - began < 2.0
        assert audit.backlog_size() == 1 and orm.database_health.suspect
    finally:
        await locker.rollback()
        await locker.close()
    await record(principal, "after").save()
    assert [r.tool for r in await rows()] == ["before", "stalled", "after"]
    assert audit.backlog_size() == 0 and not orm.database_health.suspect


@postgres_only
async def test_kept_rows_are_written_at_shutdown_or_logged(principal, database_outage, monkeypatch, caplog):
    params = audit_writer.connection_params
    monkeypatch.setattr(
        audit_writer, "connection_params", lambda: {**params(), "host": "127.0.0.1", "port": database_outage.port}
    )
    database_outage.cut()
    await record(principal, "kept_1").save()
    await record(principal, "kept_2").save()
    database_outage.restore()
    await audit.flush_backlog()  # nothing new: only the kept rows
    assert [r.tool for r in await rows()] == ["kept_1", "kept_2"] and audit.backlog_size() == 0

    database_outage.cut()
    await record(principal, "lost").save()
    with caplog.at_level(logging.ERROR, logger="mcp_bridge.audit"):
        await audit.flush_backlog()
    assert "audit row not stored (the database was unreachable until shutdown)" in caplog.text
    assert '"tool": "lost"' in caplog.text and audit.backlog_size() == 0


@postgres_only
async def test_a_connection_the_server_closed_while_idle_is_replaced_first(principal, caplog):
    """pg_terminate_backend (a restart, an idle timeout): the next row is written on a new
    connection, with no outage, nothing kept and the token cache left trusting."""
    await record(principal, "first").save()
    pid = this_loops_writer().conn.info.backend_pid

    def terminate() -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
            return cursor.fetchone()[0]

    assert await run_db(terminate)
    for _ in range(100):  # the server's goodbye reaches the socket
        if audit_writer.server_closed(this_loops_writer().conn):
            break
        await asyncio.sleep(0.01)
    with caplog.at_level(logging.WARNING, logger="mcp_bridge.audit"):
        await record(principal, "second").save()
    assert this_loops_writer().conn.info.backend_pid != pid
    assert [r.tool for r in await rows()] == ["first", "second"]
    assert audit.backlog_size() == 0 and not orm.database_health.suspect and "kept" not in caplog.text


@postgres_only
def test_the_connection_closes_with_its_event_loop(principal):
    async def save():
        await record(principal).save()
        return this_loops_writer(), this_loops_writer().conn.info.backend_pid

    writer, pid = asyncio.run(save())
    assert writer.conn is None

    def backend_alive() -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
            return cursor.fetchone()[0] > 0

    deadline = time.monotonic() + 5
    while backend_alive():  # the server's backend exits a moment after the client hangs up
        assert time.monotonic() < deadline, "the writer's connection outlived its event loop"
        time.sleep(0.02)


# --- Both engines ------------------------------------------------------------------------------


@pytest.mark.sqlite
async def test_a_refused_row_is_logged_whole_and_not_retried(principal, caplog):
    bad = record(principal, "bad_tool", upstream_status=-1)  # the column's CHECK refuses it
    with caplog.at_level(logging.ERROR, logger="mcp_bridge.audit"):
        await bad.save()  # never raises: the call it records already happened
    assert "audit row not stored (the database refused it" in caplog.text and '"tool": "bad_tool"' in caplog.text
    assert audit.backlog_size() == 0 and not orm.database_health.suspect

    caplog.clear()
    await record(principal, "good_tool").save()
    assert [r.tool for r in await rows()] == ["good_tool"]
    assert "bad_tool" not in caplog.text  # not tried again


@pytest.mark.sqlite
async def test_a_refused_row_does_not_take_the_rows_saved_with_it(principal, caplog):
    """Saved at once, the rows may share a statement; the bad one alone is refused."""
    good = [record(principal, f"good_{i}") for i in range(6)]
    bad = record(principal, "bad_tool", upstream_status=-1)
    with caplog.at_level(logging.ERROR, logger="mcp_bridge.audit"):
        outcomes = await asyncio.gather(*(call.save() for call in [*good[:3], bad, *good[3:]]), return_exceptions=True)
    assert outcomes == [None] * 7
    assert sorted(r.tool for r in await rows()) == sorted(c.tool for c in good)
    assert caplog.text.count("audit row not stored") == 1


@pytest.mark.sqlite
async def test_a_cancelled_caller_still_gets_its_row_written(principal):
    call = record(principal, "cancelled")
    task = asyncio.create_task(call.save())
    await asyncio.sleep(0)  # the save is under way
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(200):
        if await rows():
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # nothing more arrives
    assert [r.tool for r in await rows()] == ["cancelled"]


@pytest.mark.sqlite
async def test_saving_twice_writes_one_row(principal):
    call = record(principal, "twice")
    await call.save()
    await call.save()
    assert [r.tool for r in await rows()] == ["twice"]


# --- The row is committed before the answer ---------------------------------------------------


@postgres_only
async def test_the_answer_waits_for_its_committed_row(principal):
    """With the audit table locked by someone else, a tool call is not answered until its
    row is written; when the answer comes, the row is there."""
    import psycopg

    from mcp_bridge.runtime.server import GatewayMCPServer
    from tests.test_mcp_server import BROKEN, as_principal_context

    await record(principal, "before").save()  # the writer's connection is open
    params = audit_writer.connection_params()
    params.pop("options", None)
    locker = await psycopg.AsyncConnection.connect(**{**params, "autocommit": False})
    try:
        # EXCLUSIVE: inserts wait, reads (this test's) do not.
        await locker.execute("LOCK TABLE mcp_bridge_toolcall IN EXCLUSIVE MODE")

        async def unlock_soon():
            await asyncio.sleep(0.5)
            await locker.rollback()

        unlocking = asyncio.create_task(unlock_soon())
        with as_principal_context(principal):
            began = time.monotonic()
            result = await GatewayMCPServer({"broken_tool": BROKEN}, name="t").call_tool("broken_tool", {"site_id": 14})
        assert result.is_error and time.monotonic() - began >= 0.4  # it waited for the lock
        await unlocking
        assert [r.tool for r in await run_db(lambda: list(ToolCall.objects.order_by("id")))] == [
            "before",
            "broken_tool",
        ]
    finally:
        await locker.close()


@pytest.mark.sqlite
async def test_an_answered_call_has_its_row_at_once(principal):
    from mcp_bridge.runtime.server import GatewayMCPServer
    from tests.test_mcp_server import BROKEN, as_principal_context

    with as_principal_context(principal):
        await GatewayMCPServer({"broken_tool": BROKEN}, name="t").call_tool("broken_tool", {"site_id": 14})
    # No waiting: read once, straight after the answer.
    assert [r.tool for r in await run_db(lambda: list(ToolCall.objects.all()))] == ["broken_tool"]
