"""Writing audit rows (`ToolCall`): one per tool call, on the path of every call.

PostgreSQL: rows go straight from the event loop to the database over this loop's own
`psycopg.AsyncConnection` (autocommit, opened from Django's connection parameters), as a
plain multi-row INSERT built from the model's fields: no hop to the ORM thread and no
model `save()`, which together cost more CPU than the insert itself (measured in process:
about 360 µs per row through the ORM, 140 µs direct). Rows that arrive while an insert is
in flight wait and go together in the next statement (group commit), so under load one
statement carries many rows (about 60 µs per row with 8 writers at once). The insert runs
in a task of its own, so a caller that is cancelled never interrupts it, and its row is
written anyway.

Other engines (SQLite): the ORM in asgiref's thread (`run_db`), one statement per call,
shielded so that a caller cancelled before the thread picked the row up still has it written.

Either way a caller returns once its row is committed, kept or logged:
- unreachable database (OperationalError / InterfaceError, psycopg's or Django's): the rows
  are kept in this process's backlog, oldest first, and written in one statement with the
  next rows as soon as the database answers; `mcp_bridge.orm` is told, so the token cache
  stops trusting itself. The caller gets Django's `OperationalError`.
- an insert that does not finish within STATEMENT_TIMEOUT (the server cancels it; the
  client gives up a little later if the server cannot say so): handled as unreachable, so
  a stuck database never holds a caller's answer for long.
- any other database error: the rows themselves were refused; retrying would refuse them
  again, so each is logged whole at ERROR level (`_log_lost`) and the caller gets Django's
  `DatabaseError`. A refused multi-row statement is retried row by row, so one bad row
  does not take the rows that happened to share its statement with it.

A statement that fails after it was sent may or may not have been committed; such rows
are kept (and so may be written twice), as the ORM path always did. To make that rare, a
kept connection the server has closed or written to while idle is replaced before an
insert is sent on it, never after.

Public API (the audit package re-exports the first two): `write(row)`, `flush_backlog()`,
`backlog_size()`, `discard_backlog()`; and for looking inside (tests, debugging):
`writer_for_loop()` (this event loop's `LoopWriter`: `statements` sent, `conn`,
`discard()`), `connection_params()`, `server_closed(conn)`, `keep(rows)` (what an outage
does) and `insert_with_orm(rows)` (the path of other engines).
"""

from __future__ import annotations

import asyncio
import json
import logging
import select
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from functools import cache, partial
from operator import attrgetter

import psycopg
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, InterfaceError, OperationalError, connections
from django.db.models import NOT_PROVIDED, Field
from django.forms.models import model_to_dict
from psycopg import sql

from mcp_bridge import orm
from mcp_bridge.models import ToolCall
from mcp_bridge.orm import run_db
from mcp_bridge.per_loop import PerLoop

# The rows' fate is the audit log's business: same logger as the records themselves.
logger = logging.getLogger("mcp_bridge.audit")

MAX_BACKLOG = 10_000  # rows kept while the database is unreachable; older ones are logged
MAX_STATEMENT_ROWS = 500  # a kept backlog is written in statements of at most this many rows
CONNECT_TIMEOUT = 3  # seconds (libpq's minimum is 2), unless the database OPTIONS say otherwise
# The longest an insert may take. The server cancels it (so a row kept after a timeout was
# surely not written: no duplicate); the client gives up a little later in case the server
# cannot even say so (a network that drops packets silently). Either way the caller, whose
# answer waits for its row, is not held up forever: the rows are kept as in an outage.
STATEMENT_TIMEOUT = 5.0  # seconds
CLIENT_GRACE = 2.0  # seconds past STATEMENT_TIMEOUT

# --- The backlog (both paths) ---------------------------------------------------------------

# Rows waiting for the database, oldest first. Touched from the ORM thread (other engines)
# or an event loop (PostgreSQL), never across an await: the lock is for safety, not contention.
_backlog: deque[ToolCall] = deque()
_backlog_lock = threading.Lock()


def _with_backlog(rows: Iterable[ToolCall]) -> list[ToolCall]:
    """The kept rows (taken out of the backlog) followed by `rows`."""
    with _backlog_lock:
        pending = [*_backlog, *rows]
        _backlog.clear()
    return pending


def keep(rows: list[ToolCall]) -> None:
    """Put unwritten rows back at the front of the backlog (oldest first)."""
    with _backlog_lock:
        _backlog.extendleft(reversed(rows))
        while len(_backlog) > MAX_BACKLOG:
            _log_lost(_backlog.popleft(), "the backlog is full")


def _log_lost(row: ToolCall, why: str) -> None:
    """The last resort for a row that cannot be stored: the whole row, in the log."""
    data = model_to_dict(row)
    data["created_at"] = row.created_at
    logger.error("audit row not stored (%s): %s", why, json.dumps(data, cls=DjangoJSONEncoder))


def discard_backlog() -> int:
    """Forget every kept row without writing it; returns how many there were (tests start
    from an empty backlog with it)."""
    with _backlog_lock:
        count = len(_backlog)
        _backlog.clear()
    return count


def backlog_size() -> int:
    return len(_backlog)


# --- Entry points ------------------------------------------------------------------------------


async def write(row: ToolCall) -> None:
    """Write `row` (after any kept rows); return once it is committed.

    Raises Django's `OperationalError` / `InterfaceError` when the database is unreachable
    (the row is kept for later), `DatabaseError` when the database refused it (it is logged).
    """
    if _direct():
        await writer_for_loop().submit(row)
    else:
        # Shielded: cancelled before the ORM thread picked it up, the insert would never run.
        await asyncio.shield(run_db(insert_with_orm, [row]))


async def flush_backlog() -> None:
    """Write the kept rows now (at shutdown); what still cannot be written is logged."""
    if not _backlog:
        return
    try:
        if _direct():
            await writer_for_loop().submit(None)
        else:
            await run_db(insert_with_orm, [])
    except DatabaseError:
        with _backlog_lock:
            while _backlog:
                _log_lost(_backlog.popleft(), "the database was unreachable until shutdown")


# --- Other engines: the ORM, in the ORM thread ----------------------------------------------


def insert_with_orm(rows: list[ToolCall]) -> None:
    """Insert the backlog and `rows` in one statement (all or nothing); if the database is
    unreachable, keep them all for the next try."""
    pending = _with_backlog(rows)
    try:
        if len(pending) == 1:
            pending[0].save(force_insert=True)
        elif pending:
            ToolCall.objects.bulk_create(pending)
    except (OperationalError, InterfaceError):
        keep(pending)
        raise
    except DatabaseError:
        # Not an outage: the rows themselves were refused. Retrying would refuse them again.
        for row in pending:
            _log_lost(row, "the database refused it")
        raise


# --- PostgreSQL: straight from the event loop ----------------------------------------------


@cache
def _fields() -> tuple[Field, ...] | None:
    """The columns an insert sets, in order; None when the model needs the ORM's compiler
    (a database-side default would have to be written as DEFAULT)."""
    meta = ToolCall._meta
    fields = tuple(f for f in meta.concrete_fields if f is not meta.auto_field and not f.generated)
    if any(f.db_default is not NOT_PROVIDED for f in fields):
        return None
    return fields


@cache  # the engine does not change while the process runs; every write asks
def _direct() -> bool:
    return connections["default"].vendor == "postgresql" and _fields() is not None


@cache
def _insert_sql(rows: int) -> bytes:
    """INSERT … VALUES (…), … for `rows` rows (psycopg converts the placeholders per text)."""
    quote = connections["default"].ops.quote_name
    fields = _fields()
    one = "(" + ", ".join(["%s"] * len(fields)) + ")"
    return (
        f"INSERT INTO {quote(ToolCall._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES {', '.join([one] * rows)}"
    ).encode()


@cache
def _preparers() -> tuple[tuple[Callable[[ToolCall], object], Callable], ...]:
    """Per column: how to read its value off a row (`pre_save`, skipped where it is the
    plain attribute read it is for most fields) and how to prepare it for the database."""
    return tuple(
        (
            attrgetter(f.attname) if type(f).pre_save is Field.pre_save else partial(_pre_save, f),
            f.get_db_prep_save,
        )
        for f in _fields()
    )


def _pre_save(field: Field, row: ToolCall) -> object:
    return field.pre_save(row, True)


def _params(rows: list[ToolCall]) -> list:
    """The rows' values exactly as the ORM's insert would send them (JSON, datetimes, NULLs)."""
    connection = connections["default"]
    return [prepare(value(row), connection) for row in rows for value, prepare in _preparers()]


def connection_params() -> dict:
    """psycopg's connect() arguments for Django's default database (its test database under
    pytest), OPTIONS such as sslmode included."""
    params = connections["default"].get_connection_params()
    params.pop("cursor_factory", None)  # Django's cursor class is a synchronous one
    params.setdefault("connect_timeout", CONNECT_TIMEOUT)
    params["autocommit"] = True
    timeout = f"-c statement_timeout={round(STATEMENT_TIMEOUT * 1000)}"
    params["options"] = f"{params['options']} {timeout}" if params.get("options") else timeout
    return params


def _outage(exc: BaseException) -> bool:
    """Unreachable, dropped, timed out (what Django would raise as OperationalError or
    InterfaceError), as opposed to refused rows."""
    return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError, TimeoutError))


def server_closed(conn: psycopg.AsyncConnection) -> bool:
    """True when an idle connection has something to read: nothing is due on it, so the
    server is closing it (restart, pg_terminate_backend, idle timeout) or it is broken."""
    try:
        poller = select.poll()  # poll, not select: the descriptor may be above 1024
        poller.register(conn.pgconn.socket, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError, psycopg.Error):
        return True


class LoopWriter:
    """One event loop's connection and queue; its connection never leaves that loop."""

    def __init__(self) -> None:
        self.queue: list[tuple[ToolCall | None, asyncio.Future]] = []
        self.flusher: asyncio.Task | None = None
        self.conn: psycopg.AsyncConnection | None = None
        self.cursor: psycopg.AsyncCursor | None = None
        self.opened = 0.0
        self.closer = None  # see _closed_with_loop
        self.statements = 0  # INSERT statements sent (tests prove batching with it)

    async def submit(self, row: ToolCall | None) -> None:
        """Queue `row` (None: only the backlog) and wait until it is written, kept or refused."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self.queue.append((row, done))
        if self.flusher is None:
            self.flusher = loop.create_task(self._flush())
        # Not shielded: a cancelled caller cancels only its own wait; its row stays queued.
        await done

    async def _flush(self) -> None:
        """Write what is queued, then what arrived meanwhile, until nothing is left."""
        try:
            while self.queue:
                batch, self.queue = self.queue, []
                await self._write_batch(batch)
        except BaseException:
            # Cancelled (the loop is shutting down): what is still queued is kept.
            batch, self.queue = self.queue, []
            keep([row for row, _ in batch if row is not None])
            _settle(batch, kept=None, refused={})
            raise
        finally:
            self.flusher = None

    async def _write_batch(self, batch: list[tuple[ToolCall | None, asyncio.Future]]) -> None:
        kept: list[ToolCall] | None = None  # None until known: every caller hears "kept"
        refused: dict[int, tuple[ToolCall, str]] = {}
        try:
            pending = _with_backlog(row for row, _ in batch if row is not None)
            kept, refused = await self._store(pending)
            if pending:
                orm.database_health.note(not kept)
            for row, why in refused.values():
                _log_lost(row, f"the database refused it: {why}")
        finally:
            _settle(batch, kept=kept, refused=refused)  # no caller is ever left waiting

    async def _store(self, pending: list[ToolCall]) -> tuple[list[ToolCall], dict[int, tuple[ToolCall, str]]]:
        """Insert `pending` in statements of at most MAX_STATEMENT_ROWS rows. Returns the rows
        kept for later (the database is unreachable) and the refused ones (by id, with why)."""
        todo = deque(pending[i : i + MAX_STATEMENT_ROWS] for i in range(0, len(pending), MAX_STATEMENT_ROWS))
        refused: dict[int, tuple[ToolCall, str]] = {}

        def refuse(exc: Exception) -> None:
            chunk = todo.popleft()
            if len(chunk) > 1:
                # One bad row refuses the whole statement: find it, row by row.
                todo.extendleft([row] for row in reversed(chunk))
            else:
                refused[id(chunk[0])] = (chunk[0], f"{type(exc).__name__}: {exc}")

        try:
            while todo:
                try:
                    params = _params(todo[0])
                except Exception as exc:  # a value no column can take
                    refuse(exc)
                    continue
                try:
                    await self._execute(len(todo[0]), params)
                except Exception as exc:
                    if _outage(exc) or self.conn is None or self.conn.closed:
                        raise
                    refuse(exc)
                    continue
                todo.popleft()
        except BaseException as exc:
            # Unreachable, or cancelled mid-statement: whatever was not surely written is
            # kept, and the connection (in an unknown state) is dropped.
            await self.discard()
            kept = [row for chunk in todo for row in chunk]
            keep(kept)
            if not isinstance(exc, Exception):
                raise
            logger.debug("audit insert failed, database unreachable: %s", exc)
            return kept, refused
        return [], refused

    async def _execute(self, rows: int, params: list) -> None:
        cursor = await self._cursor()
        self.statements += 1
        async with asyncio.timeout(STATEMENT_TIMEOUT + CLIENT_GRACE):
            await cursor.execute(_insert_sql(rows), params)

    async def _cursor(self) -> psycopg.AsyncCursor:
        """The kept connection's cursor, on a connection opened afresh when the kept one is
        too old (as `orm.KEEP_SECONDS`) or was closed by the server while idle."""
        if self.conn is not None and (time.monotonic() - self.opened > orm.KEEP_SECONDS or server_closed(self.conn)):
            await self.discard()
        if self.cursor is None:
            conn = await psycopg.AsyncConnection.connect(**connection_params())
            try:
                role = connections["default"].settings_dict["OPTIONS"].get("assume_role")
                if role:  # as Django does on its own connections
                    await conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
            except BaseException:
                await conn.close()
                raise
            self.conn, self.cursor, self.opened = conn, conn.cursor(), time.monotonic()
            if self.closer is None:
                self.closer = _closed_with_loop(self)
                await anext(self.closer)
        return self.cursor

    async def discard(self) -> None:
        conn, self.conn, self.cursor = self.conn, None, None
        if conn is not None:
            await conn.close()  # never suspends: safe in a task being cancelled


def _settle(batch, *, kept: list[ToolCall] | None, refused: dict[int, tuple[ToolCall, str]]) -> None:
    """Answer each waiting caller: written (None), kept (OperationalError; `kept` None: all
    of them) or refused (DatabaseError). A caller that was cancelled is not answered. A
    caller with no row (flush_backlog) hears "kept" when any row was kept."""
    kept_ids = None if kept is None else {id(row) for row in kept}
    for row, done in batch:
        if done.done():
            continue
        if kept_ids is None or (id(row) in kept_ids if row is not None else bool(kept_ids)):
            done.set_exception(OperationalError("database unreachable: the audit row is kept for later"))
        elif id(row) in refused:
            done.set_exception(DatabaseError(f"the database refused the audit row ({refused[id(row)][1]})"))
        else:
            done.set_result(None)


async def _closed_with_loop(writer: LoopWriter):
    """Suspended until the loop shuts down (asyncio.run, pytest-asyncio, uvicorn all call
    `shutdown_asyncgens()`), which closes it: then the connection closes with its loop,
    rather than whenever the garbage collector gets to it."""
    try:
        yield
    finally:
        await writer.discard()


_writers: PerLoop[LoopWriter] = PerLoop(LoopWriter)


def writer_for_loop() -> LoopWriter:
    """This event loop's writer (asyncio connections cannot cross loops)."""
    return _writers.get()
