"""Loaded with `-p tests.run_env` (pytest.ini) before Django reads its settings.

Each test run gets its own Redis key prefix, so concurrent runs never share state and a
test run never touches a dev instance's keys. conftest.py would be too late: pytest-django
sets Django up before conftest files are imported.
"""

import os
import uuid

os.environ.setdefault("REDIS_KEY_PREFIX", f"pgwtest-{uuid.uuid4().hex[:8]}:")
