"""Loaded with `-p tests.run_env` (pytest.ini) before Django reads its settings.

Each test run gets its own Redis key prefix, so concurrent runs never share state and a
test run never touches a dev instance's keys. Under pytest-xdist (`make test` runs the
suite on several workers) each worker adds its id (`gw0`, `gw1`…) to the run's prefix: the
workers have their own test databases (pytest-django adds the same suffix) and must have
their own limiter windows, queues and caches too. conftest.py would be too late:
pytest-django sets Django up before conftest files are imported.
"""

import os
import uuid

_prefix = os.environ.get("REDIS_KEY_PREFIX") or f"pgwtest-{uuid.uuid4().hex[:8]}:"
# xdist sets PYTEST_XDIST_WORKER in a worker before it loads any plugin; the workers inherit
# the controller's environment, so the run's prefix is already there.
_worker = os.environ.get("PYTEST_XDIST_WORKER")
if _worker and not _prefix.endswith(f"{_worker}:"):
    _prefix += f"{_worker}:"
os.environ["REDIS_KEY_PREFIX"] = _prefix
