"""The MCP path's database connection (mcp_bridge/orm.py): kept across requests on
PostgreSQL (opening one per request cost more than the request's queries), replaced when
the server dropped it, fresh per request on SQLite, and the "database suspect" flag."""

import pytest
from django.db import OperationalError, connection
from django.db.backends.signals import connection_created

from mcp_bridge import orm
from mcp_bridge.orm import RequestConnections, run_db


def _backend_identity() -> tuple:
    """Which server-side session (PostgreSQL) or connection object (SQLite) served this."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_backend_pid()")
            return ("pid", cursor.fetchone()[0])
        cursor.execute("SELECT 1")
        return ("object", id(connection.connection))


@pytest.fixture(autouse=True)
async def close_kept_connection():
    """The ORM thread's kept connection would outlive the test (and its database)."""
    yield
    await run_db(lambda: connection.close())


async def in_request(fn, *args):
    """Run `fn` through run_db inside an MCP HTTP request, as the gateway does."""
    results = []

    async def app(scope, receive, send):
        results.append(await run_db(fn, *args))

    await RequestConnections(app)({"type": "http"}, None, None)
    return results[0]


def _terminate(pid: int) -> None:
    import psycopg

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", (pid,))


@pytest.mark.sqlite
@pytest.mark.django_db(transaction=True)
async def test_postgresql_keeps_its_connection_sqlite_reopens_the_file():
    opened = []

    def count(sender, connection, **kwargs):
        opened.append(connection.vendor)

    connection_created.connect(count)
    try:
        for _ in range(3):
            await in_request(_backend_identity)
    finally:
        connection_created.disconnect(count)
    if connection.vendor == "postgresql":
        assert len(opened) == 1  # kept, not reopened
    else:
        assert len(opened) == 3  # each request sees the database file as it is now


@pytest.mark.django_db(transaction=True)
async def test_a_kept_connection_the_server_dropped_is_replaced_before_use(monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only (make test runs this file's other tests on SQLite)")
    first = await in_request(_backend_identity)

    await run_db(_terminate, first[1])  # the server drops it (restart, idle timeout, admin)
    monkeypatch.setattr(orm, "IDLE_CHECK_SECONDS", 0.0)  # as if it had been idle a while
    replaced = await in_request(_backend_identity)  # pinged first, so no request fails
    assert replaced != first
    assert not orm.database_health.suspect


@pytest.mark.sqlite
@pytest.mark.django_db(transaction=True)
async def test_an_unreachable_database_makes_the_process_suspect_until_it_answers():
    def unreachable():
        raise OperationalError("connection refused")

    with pytest.raises(OperationalError):
        await in_request(unreachable)
    assert orm.database_health.suspect
    await in_request(_backend_identity)
    assert not orm.database_health.suspect
