"""The test databases of a run: quick commits on PostgreSQL, and no database left behind by
an earlier run.

- Each test run (each pytest-xdist worker) has its own database, named after its process
  id (`pelcro_gateway.settings`: `test_<name>_<pid>` on PostgreSQL, `var/test-<pid>.sqlite3`
  on SQLite). A run whose teardown could not drop it (a server still connected, a killed
  run) leaves it; `drop_stale_test_databases` drops those of processes that no longer run,
  so a machine that runs the suite every day does not fill up.
- `synchronous_commit = off` for the run's PostgreSQL database only (`ALTER DATABASE`, never
  the server's configuration): a commit no longer waits for its WAL to reach the disk. The
  suite commits thousands of times (every test's demo data, every tool call's audit row),
  and a crash of the test server is not something it tests; what a commit makes visible
  to other sessions is unchanged (PostgreSQL docs, "Asynchronous Commit").
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

# Databases this project's test settings name: test_<database>_<pid>.
_POSTGRES_TEST_DB = re.compile(r"^test_.+_(\d+)$")
_SQLITE_TEST_DB = re.compile(r"^test-(\d+)\.sqlite3(-wal|-shm|-journal)?$")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: running
        return True
    return True


def stale_postgres_databases(names: list[str]) -> list[str]:
    """The test databases among `names` whose process no longer runs."""
    return [name for name in names if (m := _POSTGRES_TEST_DB.match(name)) and not _running(int(m.group(1)))]


def drop_stale_test_databases(settings_dict: dict, var_dir: Path) -> list[str]:
    """Drop the test databases of runs whose process has ended (on the PostgreSQL server of
    `settings_dict`, or the SQLite files in `var_dir`); returns what was dropped. Best
    effort: a server that cannot be reached is left for the test run to report."""
    dropped: list[str] = []
    if settings_dict["ENGINE"].endswith("sqlite3"):
        for path in var_dir.glob("test-*.sqlite3*"):
            if (m := _SQLITE_TEST_DB.match(path.name)) and not _running(int(m.group(1))):
                with contextlib.suppress(OSError):
                    path.unlink()
                    dropped.append(path.name)
        return dropped
    import psycopg
    from psycopg import sql

    params = {
        "host": settings_dict.get("HOST") or "127.0.0.1",
        "port": settings_dict.get("PORT") or 5432,
        "user": settings_dict.get("USER") or None,
        "password": settings_dict.get("PASSWORD") or None,
        "dbname": "postgres",
        "connect_timeout": 5,
    }
    with contextlib.suppress(psycopg.Error), psycopg.connect(autocommit=True, **params) as conn:
        names = [row[0] for row in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'test\\_%'")]
        for name in stale_postgres_databases(names):
            with contextlib.suppress(psycopg.Error):
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
                dropped.append(name)
    return dropped


def quick_commits(connection) -> None:
    """`synchronous_commit = off` for the test database of `connection` (PostgreSQL only),
    for every session opened from now on (the gateways the run starts)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        name = connection.ops.quote_name(connection.settings_dict["NAME"])
        cursor.execute(f"ALTER DATABASE {name} SET synchronous_commit TO off")
        cursor.execute("SET synchronous_commit TO off")  # this session too
