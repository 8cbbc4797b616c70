"""The suite's own hygiene (tests/support/databases.py): test databases of ended runs are
dropped, those of running ones never; the run's PostgreSQL database commits without waiting
for the disk."""

import subprocess
import sys

import pytest
from django.db import connection

from tests.support.databases import drop_stale_test_databases, stale_postgres_databases


def ended_pid() -> int:
    """The id of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_only_the_databases_of_ended_runs_are_stale():
    import os

    dead, alive = ended_pid(), os.getpid()
    names = [f"test_test_{dead}", f"test_test_{alive}", "test", "test_other", f"pgw_bench_{dead}"]
    assert stale_postgres_databases(names) == [f"test_test_{dead}"]


def test_stale_sqlite_files_are_removed_and_live_ones_kept(tmp_path):
    import os

    dead, alive = ended_pid(), os.getpid()
    files = [f"test-{dead}.sqlite3", f"test-{dead}.sqlite3-wal", f"test-{alive}.sqlite3", "gateway.sqlite3"]
    for name in files:
        (tmp_path / name).write_text("x")
    dropped = drop_stale_test_databases({"ENGINE": "django.db.backends.sqlite3"}, tmp_path)
    assert sorted(dropped) == sorted(files[:2])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(files[2:])


@pytest.mark.django_db
def test_the_runs_postgresql_database_commits_without_waiting_for_the_disk():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT setconfig FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase "
            "WHERE d.datname = current_database()"
        )
        settings = [value for (row,) in cursor.fetchall() for value in row]
    assert "synchronous_commit=off" in settings
